"""torch.nn.Module -> ONNX file, the way ``hwgen export-onnx`` writes it.

A thin wrapper over ``torch.onnx.export`` (torch 2.13: the dynamo/onnxscript exporter) with
one fixed-size example input (batch 1, the model's ``in_shape``), eval mode and the weights
inside the file, so that ``hwgen sim --model net.onnx`` can read it back with
:func:`hwgen.frontend.onnx_import.import_onnx`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import torch
from torch import nn

__all__ = ["export_onnx"]


def export_onnx(module: nn.Module, in_shape: tuple[int, ...], path: str | Path) -> Path:
    """Write ``module`` (in eval mode) to ``path`` as an ONNX model; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = module.training
    level = logging.getLogger("torch.onnx").level
    module.eval()
    x = torch.zeros((1, *in_shape), dtype=torch.float32)
    try:
        # The exporter reports its progress on stdout and warns about versions: keep quiet.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision missing"
            torch.onnx.export(module, (x,), str(path), dynamo=True, external_data=False)
    finally:
        logging.getLogger("torch.onnx").setLevel(level)
        module.train(was_training)
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m hwgen.frontend.onnx_export --model mnist_cnn -o mnist_cnn.onnx``."""
    import argparse
    import sys

    from hwgen import zoo

    ap = argparse.ArgumentParser(
        prog="python -m hwgen.frontend.onnx_export",
        description="export a shipped model (trained weights) to an ONNX file",
    )
    ap.add_argument("--model", default="mnist_cnn", help=f"one of {', '.join(zoo.model_names())}")
    ap.add_argument("-o", "--out", help="output file (default: <model>.onnx)")
    args = ap.parse_args(argv)
    if args.model not in zoo.model_names():
        print(
            f"hwgen: error: unknown model {args.model!r}; known models: "
            f"{', '.join(zoo.model_names())}",
            file=sys.stderr,
        )
        return 2
    out = export_onnx(zoo.get_model(args.model), zoo.input_shape(args.model),
                      args.out or f"{args.model}.onnx")  # fmt: skip
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
