"""Compatibility helpers over the build driver (hwgen.flow) for zoo models by name.

``build_qmodel(name)`` = the flow's import + quantize steps (cached in
``build/<name>/qmodel/``, keyed by the float graph, the calibration data, the settings and
the code). ``evaluate(name)`` = float (torch) vs int8 (golden) accuracy and top-1 agreement
on the test set. Ties between int8 logits resolve to the lowest class index (np.argmax).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from hwgen import paths
from hwgen.config import QuantConfig
from hwgen.quant.qmodel import QModel

__all__ = ["CALIB_METHOD", "build_qmodel", "qmodel_dir", "evaluate", "main"]

CALIB_METHOD = "max"  # see hwgen.quant.calibrate; measured to meet the 0.3-point budget


def qmodel_dir(name: str, build_dir: Path | None = None) -> Path:
    return (build_dir or paths.build_dir()) / name / "qmodel"


def _state(name: str, config: QuantConfig, build_dir: Path | None):
    from hwgen.flow import BuildConfig, run

    cfg = BuildConfig(
        model=name,
        quant=config,
        calib_method=CALIB_METHOD,
        build_dir=build_dir,
        steps=("import", "quantize"),
    )
    return run(cfg)


def build_qmodel(
    name: str,
    config: QuantConfig = QuantConfig(),  # noqa: B008 - frozen dataclass
    rebuild: bool = False,
    build_dir: Path | None = None,
) -> QModel:
    """The quantized zoo model ``name``, from the artifact cache when its key matches."""
    if rebuild:
        shutil.rmtree(qmodel_dir(name, build_dir), ignore_errors=True)
    return _state(name, config, build_dir).qmodel


def evaluate(
    name: str, n: int | None = None, progress: bool = True, build_dir: Path | None = None
) -> dict[str, Any]:
    """Float (torch) vs int8 (golden) accuracy and top-1 agreement on the test set
    (``ir_max_abs_diff``: the float IR interpreter vs torch on the first 1,000 images)."""
    from hwgen.flow.steps import evaluate_accuracy

    st = _state(name, QuantConfig(), build_dir)
    if progress:
        print(st.qmodel.summary(), flush=True)
    res = evaluate_accuracy(st, n, progress=progress)
    if progress:
        print(
            f"{name}: float {res['float_acc']:.2f}%  int8 {res['int8_acc']:.2f}%  "
            f"(delta {res['delta_points']:+.2f} points)  top-1 agreement {res['agreement']:.2f}%"
            f"  on {res['n']} test images in {res['seconds']} s",
            flush=True,
        )
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hwgen.evaluate", description=__doc__)
    ap.add_argument("--model", default="mnist_cnn")
    ap.add_argument("-n", type=int, default=None, help="only the first N test images")
    args = ap.parse_args(argv)
    evaluate(args.model, args.n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
