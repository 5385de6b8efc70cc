"""hwgen.flow: BuildConfig, the named steps, model sources, and the Python API (no RTL)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import hwgen
from hwgen.errors import HwgenError, UsageError
from hwgen.flow import STEPS, BuildConfig, run
from hwgen.quant.quantize import IN_SCALE


def test_build_config_validates_before_work() -> None:
    cfg = BuildConfig(array="4x8")  # type: ignore[arg-type]
    assert (cfg.array.rows, cfg.array.cols) == (4, 8)
    for kw, needle in (
        (dict(gap=1.0), "--gap"),
        (dict(n=0), "-n 0"),
        (dict(array="33x1"), "1..32"),
        (dict(steps=("import", "synth")), "synth"),
        (dict(seed=1.5), "--seed"),
    ):
        with pytest.raises(UsageError, match=needle):
            BuildConfig(**kw)  # type: ignore[arg-type]
    # steps always run in pipeline order
    assert BuildConfig(steps=("schedule", "import")).steps == ("import", "schedule")
    assert STEPS[0] == "import" and STEPS[-1] == "report"


def test_import_is_lazy() -> None:
    import subprocess
    import sys

    code = (
        "import sys, hwgen; assert 'torch' not in sys.modules and 'hwgen.flow' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_zoo_mnist_keeps_the_uint8_contract(tmp_path: Path) -> None:
    st = run(BuildConfig(model="mnist_cnn", build_dir=tmp_path, steps=("import", "quantize")))
    assert st.qmodel.in_scale == IN_SCALE  # exactly 1/127: q = (254p + 255) // 510
    assert st.done == ["import", "quantize"]


def test_run_until_and_resume(tmp_path: Path) -> None:
    cfg = BuildConfig(model="tiny_cnn", build_dir=tmp_path, steps=STEPS[:3])
    st = run(cfg, until="quantize")
    assert st.done == ["import", "quantize"] and st.program is None
    st = run(cfg, state=st)
    assert st.done == ["import", "quantize", "schedule"] and st.program is not None


MODEL = textwrap.dedent(
    """
    import torch
    from torch import nn

    def build():
        torch.manual_seed(1)
        return nn.Sequential(
            nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
            nn.Conv2d(5, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 3 * 3, 4),
        )
    """
)


def test_model_file_outside_the_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 3-channel 10x10 model from a file in a temp dir, float calibration data with labels:
    imports, quantizes (cached under the work dir), schedules; the cache is reused."""
    monkeypatch.delenv("HWGEN_WORKDIR", raising=False)
    (tmp_path / "net.py").write_text(MODEL)
    rng = np.random.default_rng(0)
    x = (rng.random((40, 3, 10, 10)) * 4 - 2).astype(np.float32)
    np.savez(tmp_path / "data.npz", images=x, labels=rng.integers(0, 4, 40))
    cfg = BuildConfig(
        model=str(tmp_path / "net.py") + ":build",
        calib=tmp_path / "data.npz",
        workdir=tmp_path / "wd",
        array="3x5",  # type: ignore[arg-type]
        steps=("import", "quantize", "schedule", "evaluate"),
    )
    st = run(cfg)
    assert st.name == "net_build" and st.qmodel.in_shape == (3, 10, 10)
    assert st.qmodel.in_scale == pytest.approx(float(np.abs(x).max()) / 127)
    assert st.qmodel_dir == tmp_path / "wd" / "build" / "net_build" / "qmodel"
    assert st.accuracy is not None and st.accuracy["n"] == 40 and "int8_acc" in st.accuracy
    stamp = (st.qmodel_dir / "manifest.json").stat().st_mtime_ns
    run(cfg)
    assert (st.qmodel_dir / "manifest.json").stat().st_mtime_ns == stamp  # cache hit


def test_compile_api_golden_matches_the_quantized_model() -> None:
    from hwgen.datasets import load_digits
    from hwgen.golden.run import predict
    from hwgen.zoo import get_model

    x, y = load_digits("train")
    design = hwgen.compile(get_model("digits_cnn"), calib=x[:300], array="4x4", name="digits_api")
    assert design.qmodel.in_scale == pytest.approx(float(np.abs(x[:300]).max()) / 127)
    tx, ty = load_digits("test")
    logits = design.golden(tx)
    assert logits.shape == (len(tx), 10)
    assert np.array_equal(logits, predict(design.qmodel, tx))
    assert (logits.argmax(1) == ty).mean() > 0.85
    assert "DIRECT" in design.report()
    with pytest.raises(HwgenError, match="calib"):
        hwgen.compile(get_model("digits_cnn"), calib=None)
    with pytest.raises(HwgenError, match="NaN"):
        hwgen.compile(get_model("digits_cnn"), calib=np.full((2, 8, 8), np.nan, np.float32))


def test_compile_names_nan_weights() -> None:
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    with torch.no_grad():
        net[1].weight[0, 3] = float("inf")
    with pytest.raises(HwgenError, match=r"'1\.weight'"):
        hwgen.compile(net, calib=np.zeros((2, 4, 4), np.uint8))


def test_write_verilog(tmp_path: Path) -> None:
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    design = hwgen.compile(net, calib=np.arange(32, dtype=np.uint8).reshape(2, 4, 4))
    out = design.write_verilog(tmp_path / "v")
    assert "module accel" in (out / "accel.v").read_text()


def test_onnx_source_dispatches_to_the_importer(tmp_path: Path, monkeypatch) -> None:
    """`--model net.onnx` calls hwgen.frontend.onnx_import.import_onnx(path) -> (Graph,
    in_shape) (a stand-in importer here: the flow's side of the seam), and a missing
    importer is a one-line error."""
    import sys
    import types

    from hwgen.frontend import import_model

    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2 * 5 * 5, 3))
    graph = import_model(net, (2, 5, 5), "onnxnet")
    calls: list[Path] = []
    fake = types.ModuleType("hwgen.frontend.onnx_import")

    def import_onnx(path):
        calls.append(Path(path))
        return graph, (2, 5, 5)

    fake.import_onnx = import_onnx  # type: ignore[attr-defined]
    onnx_file = tmp_path / "onnxnet.onnx"
    onnx_file.write_bytes(b"stand-in")
    x = np.random.default_rng(0).random((6, 2, 5, 5)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    cfg = BuildConfig(model=str(onnx_file), calib=tmp_path / "x.npy", build_dir=tmp_path,
                      steps=("import", "quantize", "schedule"))  # fmt: skip
    monkeypatch.setitem(sys.modules, "hwgen.frontend.onnx_import", fake)
    st = run(cfg)
    assert calls == [onnx_file] and st.qmodel.in_shape == (2, 5, 5)
    np.save(tmp_path / "bad.npy", x[:, :1])
    with pytest.raises(HwgenError, match=r"bad.npy: images are \[1, 5, 5\]"):
        run(BuildConfig(model=str(onnx_file), calib=tmp_path / "bad.npy", steps=("import",)))
    monkeypatch.setitem(sys.modules, "hwgen.frontend.onnx_import", None)  # not installed
    with pytest.raises(HwgenError, match="ONNX import is not available"):
        run(BuildConfig(model=str(onnx_file), steps=("import",)))


def test_evaluate_keeps_the_int8_logits_for_the_fast_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The accuracy pass's int8 logits are kept (and cached with accuracy.json): the fast
    engine's golden reference, reused only for exactly the evaluated images."""
    from hwgen.flow import steps
    from hwgen.golden.run import predict
    from hwgen.sim.fast import _evaluated_logits

    cfg = BuildConfig(model="tiny_cnn", build_dir=tmp_path, eval_n=40,
                      steps=("import", "quantize", "evaluate"))  # fmt: skip
    st = run(cfg)
    images, _ = st.source.data.test(40)
    want = predict(st.qmodel, images)
    assert np.array_equal(st.int8_logits, want)
    assert len(list(tmp_path.glob("tiny_cnn/int8_logits_*.npy"))) == 1

    def no_pass(*a, **k):
        raise AssertionError("the accuracy pass ran again")

    monkeypatch.setattr(steps, "evaluate_accuracy", no_pass)
    again = run(cfg)  # from the cache: the same integers
    assert again.accuracy == st.accuracy and np.array_equal(again.int8_logits, want)
    assert np.array_equal(_evaluated_logits(again, images[:25]), want[:25])
    other = images[:25].copy()
    other[3, 10, 10] ^= 1  # one pixel differs: not the evaluated images
    assert _evaluated_logits(again, other) is None
    assert _evaluated_logits(again, images[:25][::-1]) is None
