"""Bad input: every user error is one line naming the thing and the reason, exit status 2, no
traceback, and it comes before any long work (the accuracy pass, Verilator)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hwgen.cli import main
from hwgen.datasets import DatasetError, load_mnist_sample


def fails(capsys: pytest.CaptureFixture, argv: list[str], *needles: str) -> str:
    """Run the CLI in-process: exit 2, one stderr line naming the thing, nothing long ran."""
    assert main(argv) == 2
    cap = capsys.readouterr()
    lines = [ln for ln in cap.err.splitlines() if ln.strip()]
    assert len(lines) == 1, cap.err
    assert lines[0].startswith("hwgen: error: "), lines[0]
    assert "Traceback" not in cap.err + cap.out
    assert "measuring" not in cap.out and "Verilator" not in cap.out, cap.out
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


SMALL = ["--model", "net.py:Small", "--weights", "w.pt", "--calib", "cal.npz"]


@pytest.mark.parametrize(
    "args,needles",
    [
        (["sim", "--gap", "1.5"], ["--gap 1.5", "[0, 1)"]),
        (["sim", "--gap", "-1"], ["--gap -1.0", "[0, 1)"]),
        (["sim", "--gap", "nan"], ["--gap nan"]),
        (["sim", "-n", "-3"], ["-n -3", ">= 1"]),
        (["sim", "-n", "0"], ["-n 0", ">= 1"]),
        (["sim", "-n", "20000"], ["-n 20000", "10000"]),
        (["eval", "-n", "0"], ["-n 0"]),
        (["sim", "--array", "33x1"], ["--array", "1..32", "33"]),
        (["generate", "--array", "4x0"], ["--array", "1..32"]),
        (["bench", "--array", "8by8"], ["--array", "RxC"]),
        (["sim", "--model", "nope"], ["'nope'", "mnist_cnn"]),
        (["sim", "--frobnicate"], ["--frobnicate"]),
    ],
)
def test_bad_options(ws: Path, capsys, args: list[str], needles: list[str]) -> None:
    fails(capsys, args, *needles)


def test_one_array_limit() -> None:
    from hwgen.config import MAX_ARRAY_DIM, ArrayConfig
    from hwgen.rtl.systolic import MAX_DIM

    assert MAX_DIM is MAX_ARRAY_DIM
    ArrayConfig(MAX_ARRAY_DIM, MAX_ARRAY_DIM)
    with pytest.raises(ValueError, match=f"1..{MAX_ARRAY_DIM}"):
        ArrayConfig(MAX_ARRAY_DIM + 1, 1)


def test_sim_more_images_than_the_calib_file(ws: Path, capsys) -> None:
    fails(capsys, ["sim", *SMALL, "-n", "13"], "-n 13", "(12)")


def test_model_file_errors(ws: Path, capsys) -> None:
    fails(capsys, ["quantize", "--model", "missing.py:Net"], "missing.py", "not found")
    fails(capsys, ["quantize", "--model", "net.py:Nope", "--calib", "cal.npz"], "'Nope'", "Small")
    fails(capsys, ["quantize", "--model", "net.py", "--calib", "cal.npz"], "net.py:Class")
    (ws / "broken.py").write_text("import torch\ndef (:\n")
    fails(capsys, ["quantize", "--model", "broken.py:Net", "--calib", "cal.npz"], "broken.py",
          "SyntaxError")  # fmt: skip
    fails(capsys, ["quantize", "--model", "net.py:Small"], "--calib")


def test_weights_file_errors(ws: Path, capsys) -> None:
    base = ["quantize", "--model", "net.py:Small", "--calib", "cal.npz", "--weights"]
    raw = (ws / "w.pt").read_bytes()
    (ws / "trunc.pt").write_bytes(raw[: len(raw) // 2])
    fails(capsys, [*base, "trunc.pt"], "trunc.pt", "not a readable PyTorch weights file")
    fails(capsys, [*base, "none.pt"], "none.pt", "not found")
    sd = torch.load(ws / "w.pt")
    sd["conv.weight"][0, 0, 1, 1] = float("nan")
    torch.save(sd, ws / "nan.pt")
    fails(capsys, [*base, "nan.pt"], "nan.pt", "'conv.weight'", "NaN")
    sd = torch.load(ws / "w.pt")
    sd["fc.bias"][2] = float("inf")
    torch.save(sd, ws / "inf.pt")
    fails(capsys, [*base, "inf.pt"], "'fc.bias'", "infinite")
    sd = torch.load(ws / "w.pt")
    del sd["fc.bias"]
    torch.save(sd, ws / "short.pt")
    fails(capsys, [*base, "short.pt"], "short.pt", "fc.bias")
    # a zoo model with a weights file from another model
    fails(capsys, ["quantize", "--model", "tiny_cnn", "--weights", "w.pt"], "w.pt", "tiny_cnn")


def test_calib_file_errors(ws: Path, capsys) -> None:
    base = ["quantize", "--model", "net.py:Small", "--weights", "w.pt", "--calib"]
    raw = (ws / "cal.npz").read_bytes()
    (ws / "trunc.npz").write_bytes(raw[: len(raw) // 2])
    fails(capsys, [*base, "trunc.npz"], "trunc.npz", "not a readable")
    (ws / "trunc.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
    fails(capsys, [*base, "trunc.npy"], "trunc.npy", "not a readable")
    np.save(ws / "shape.npy", np.zeros((4, 3, 9, 9), np.float32))
    fails(capsys, [*base, "shape.npy"], "shape.npy", "3x9x9", "input channels")
    np.save(ws / "nan.npy", np.full((4, 8, 8), np.nan, np.float32))
    fails(capsys, [*base, "nan.npy"], "nan.npy", "NaN")
    np.savez(ws / "lbl.npz", images=np.zeros((4, 8, 8), np.uint8), labels=np.zeros(3, int))
    fails(capsys, [*base, "lbl.npz"], "lbl.npz", "labels")
    fails(capsys, [*base, "cal.txt"], "cal.txt")


def test_truncated_sample_names_the_file(tmp_path: Path) -> None:
    from hwgen.datasets import SAMPLE_PATH

    raw = SAMPLE_PATH.read_bytes()
    bad = tmp_path / "sample.npz"
    bad.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(DatasetError, match="sample.npz"):
        load_mnist_sample(bad)


def test_truncated_sample_in_sim_is_one_line(ws: Path, capsys, monkeypatch) -> None:
    from hwgen import datasets

    bad = ws / "sample.npz"
    bad.write_bytes(datasets.SAMPLE_PATH.read_bytes()[:1000])
    monkeypatch.setattr(datasets, "SAMPLE_PATH", bad)
    fails(capsys, ["sim", "--model", "tiny_cnn", "-n", "2"], "sample.npz")


def test_unsupported_op_and_schedule_errors(ws: Path, capsys) -> None:
    fails(capsys, ["sim", "--model", "net.py:Adds", "--calib", "cal.npz", "-n", "2"], "add")
    fails(capsys, ["sim", "--model", "net.py:NoVector", "--calib", "cal.npz", "-n", "2"], "vector")
    np.save(ws / "big.npy", np.random.default_rng(0).random((2, 1, 16, 16)).astype(np.float32))
    msg = fails(capsys, ["sim", "--model", "net.py:big", "--calib", "big.npy", "--array", "2x2",
                         "-n", "2"])  # fmt: skip
    assert "layer" in msg and "memory" in msg and ">" in msg, msg


def test_edited_cached_manifest_is_detected(ws: Path, capsys) -> None:
    """An edited act_max in build/<model>/qmodel/manifest.json is caught by its seal: the model
    is rebuilt (with a one-line notice) instead of trusted."""
    assert main(["quantize", *SMALL]) == 0
    man_path = ws / "build" / "net_small" / "qmodel" / "manifest.json"
    man = json.loads(man_path.read_text())
    assert man["layers"][0]["params"]["act_max"] == 127
    man["layers"][0]["params"]["act_max"] = 100
    man_path.write_text(json.dumps(man))
    capsys.readouterr()
    assert main(["quantize", *SMALL]) == 0
    out = capsys.readouterr().out
    assert "manifest_sha256 does not match" in out and "rebuilding" in out
    assert json.loads(man_path.read_text())["layers"][0]["params"]["act_max"] == 127


def test_accuracy_cache_covers_the_model(ws: Path, capsys) -> None:
    """The cached accuracy is keyed by the QModel (and data, code): new weights re-measure."""
    assert main(["eval", *SMALL]) == 0
    first = json.loads((ws / "build" / "net_small" / "accuracy.json").read_text())
    sd = torch.load(ws / "w.pt")
    sd["fc.weight"] = -sd["fc.weight"]
    torch.save(sd, ws / "w2.pt")
    assert (
        main(["eval", "--model", "net.py:Small", "--weights", "w2.pt", "--calib", "cal.npz"]) == 0
    )
    second = json.loads((ws / "build" / "net_small" / "accuracy.json").read_text())
    assert first["cache_key"] != second["cache_key"]
    assert "measuring" in capsys.readouterr().out


def test_subprocess_exit_status_and_no_traceback(ws: Path) -> None:
    for argv in (["sim", "--gap", "1.5"], ["quantize", "--model", "net.py:Small", "--weights",
                                           "missing.pt", "--calib", "cal.npz"]):  # fmt: skip
        r = subprocess.run(
            [sys.executable, "-m", "hwgen.cli", *argv],
            capture_output=True,
            text=True,
            cwd=ws,
            timeout=300,
        )
        assert r.returncode == 2, (r.returncode, r.stderr)
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("hwgen: error: "), r.stderr
        assert "Traceback" not in r.stderr


def test_no_remainder_tiles_switch(ws: Path) -> None:
    """`--no-remainder-tiles` reaches the schedule through the array: the generated program
    has no direct-mode remainder tile (tiny_cnn 4x4: conv3 has one by default)."""
    from hwgen.cli import main

    assert main(["--workdir", str(ws), "generate", "--model", "tiny_cnn", "--array", "4x4",
                 "--no-remainder-tiles"]) == 0
    text = next(ws.rglob("program.txt")).read_text()
    assert "conv3" in text and "last tile direct" not in text


@pytest.mark.parametrize(("argv", "schedule"), [
    (["sim"], True), (["sim", "--no-remainder-tiles"], False), (["generate"], True),
    (["sim", "--remainder-stream"], "stream"), (["bench", "--no-remainder-tiles"], False),
    (["build"], "stream"), (["build", "--no-remainder-stream"], True),
    (["build", "--no-remainder-tiles", "--remainder-stream"], False),
    (["sweep", "--arrays", "2x4"], "stream"), (["sweep", "--arrays", "2x4",
                                                "--no-remainder-tiles"], False),
    (["estimate"], "stream"), (["estimate", "--no-remainder-stream"], True)])
def test_remainder_tile_default_per_command(argv: list[str], schedule: bool | str) -> None:
    """Two switches, one schedule: the direct form for simulation, the two-stream form for
    board builds, sweeps and estimates; --no-remainder-tiles wins over either."""
    from hwgen.cli import _parser, _with_schedule

    assert _with_schedule(_parser().parse_args(argv)).remainder_tiles == schedule
