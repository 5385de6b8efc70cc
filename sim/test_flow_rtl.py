"""The build driver end to end in Verilator: a non-MNIST shipped model through `hwgen sim`,
and the Python API's ``Design.simulate`` on a model defined in memory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import hwgen
from hwgen.cli import main


@pytest.mark.rtl
def test_digits_cnn_bit_exact_in_rtl(tmp_path: Path, capsys) -> None:
    """sklearn 8x8 digits (signed float inputs, derived input scale) on a non-square array."""
    rc = main(["--workdir", str(tmp_path), "sim", "--model", "digits_cnn", "--array", "4x8",
               "-n", "4"])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0, out
    rep = json.loads((tmp_path / "reports" / "digits_cnn_4x8.json").read_text())
    assert rep["n"] == 4 and rep["n_match"] == 4 and rep["all_match"]
    assert "360 sklearn digits test images" in out
    assert rep["accuracy"]["int8_acc"] > 85


@pytest.mark.rtl
def test_design_simulate_equals_golden(tmp_path: Path, monkeypatch) -> None:
    """An in-memory 2-channel model without a pool: RTL logits == golden logits."""
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(5)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 6, 3, stride=2), torch.nn.ReLU(), torch.nn.Flatten(),
        torch.nn.Linear(6 * 4 * 4, 7),
    )  # fmt: skip
    x = np.random.default_rng(2).normal(size=(30, 2, 9, 9)).astype(np.float32)
    design = hwgen.compile(net, calib=x, array="3x4", name="api_net")
    got = design.simulate(x[:3], gap=0.2)
    assert np.array_equal(got, design.golden(x[:3]).astype(np.int64))
    assert "bit-exact: 3/3" in design.report()
