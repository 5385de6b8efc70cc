"""`hwgen generate`: Verilog + manifest ; the Verilog passes verilator --lint-only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwgen.cli import main
from hwgen.emit.verilog import LINT_WAIVERS


@pytest.mark.rtl
def test_generate_writes_linted_verilog_and_manifest(tmp_path: Path, capsys) -> None:
    out = tmp_path / "tiny"
    assert main(["generate", "--model", "tiny_cnn", "--array", "4x4", "--out", str(out)]) == 0
    assert "clean" in capsys.readouterr().out
    man = json.loads((out / "manifest.json").read_text())
    assert man["array"]["rows"] == 4 and man["array"]["cols"] == 4
    assert [m["name"] for m in man["memory_map"]["load_order"]] == [
        "header", "program", "conv_weights", "direct_weights", "requant_params"
    ]
    assert [lay["name"] for lay in man["schedule"]] == ["conv1", "conv2", "conv3", "fc"]
    assert set(man["lint_waivers"]) == set(LINT_WAIVERS)
    assert "module accel" in (out / "accel.v").read_text()
    assert "DIRECT" in (out / "program.txt").read_text()


@pytest.mark.rtl
def test_generate_fit_sizes_one_design_for_several_models(tmp_path: Path, capsys) -> None:
    out = tmp_path / "fit"
    args = ["generate", "--model", "tiny_cnn", "--array", "4x4", "--out", str(out),
            "--fit", "mnist_cnn"]  # fmt: skip
    assert main(args) == 0
    plan = json.loads((out / "manifest.json").read_text())["memory_plan"]
    # sized for mnist_cnn (its activation buffer 1 and 4 layers), not only tiny_cnn
    assert plan["activation_buffers"][1] == 1352 and plan["max_layers"] == 4, plan
    assert plan["pe_accumulator_bits"] == 25, plan  # mnist_cnn's bound (tiny_cnn alone: 23)
    assert "also fits mnist_cnn" in capsys.readouterr().out
    assert main(["generate", "--model", "tiny_cnn", "--fit", "nosuchmodel"]) == 2
    assert "unknown model 'nosuchmodel'" in capsys.readouterr().err
