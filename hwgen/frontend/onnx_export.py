"""torch.nn.Module -> ONNX file, the way ``hwgen export-onnx`` writes it.

A thin wrapper over ``torch.onnx.export`` (torch 2.13: the dynamo/onnxscript exporter) with
one fixed-size example input (batch 1, the model's ``in_shape``), eval mode and the weights
inside the file, so that ``hwgen sim --model net.onnx`` can read it back with
:func:`hwgen.frontend.onnx_import.import_onnx`.
"""

from __future__ import annotations

import contextlib
import io
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
    module.eval()
    x = torch.zeros((1, *in_shape), dtype=torch.float32)
    try:
        # The exporter reports its progress on stdout and warns about versions: keep quiet.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (x,), str(path), dynamo=True, external_data=False)
    finally:
        module.train(was_training)
    return path
