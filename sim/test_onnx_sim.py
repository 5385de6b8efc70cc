"""An ONNX model through the whole flow into RTL: mnist_cnn exported by torch.onnx.export,
imported, quantized, simulated in Verilator bit-exact, and its RTL logits equal the torch
path's golden logits (the same integers the torch path's RTL produces)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hwgen.datasets import load_mnist_sample
from hwgen.flow import BuildConfig, Design, run
from hwgen.frontend.onnx_export import export_onnx
from hwgen.zoo import get_model, input_shape

STEPS = ("import", "quantize", "schedule")


@pytest.mark.slow  # ~6 min on the shared, loaded 2-core machine (export + Verilator build)
@pytest.mark.rtl
def test_onnx_mnist_cnn_rtl_equals_torch_path(tmp_path: Path) -> None:
    onnx_file = tmp_path / "mnist_cnn.onnx"
    path = export_onnx(get_model("mnist_cnn"), input_shape("mnist_cnn"), onnx_file)
    images, _ = load_mnist_sample()
    images = images[:2]
    # 4x4 keeps the Verilator build short; the flow is the one `hwgen sim --model x.onnx` runs.
    def design(model: str) -> Design:
        return Design(run(BuildConfig(model=model, array="4x4", workdir=tmp_path, steps=STEPS)))

    onnx_design, torch_design = design(str(path)), design("mnist_cnn")
    rtl = onnx_design.simulate(images)  # raises unless every logit equals its golden model
    assert np.array_equal(rtl, torch_design.golden(images))
