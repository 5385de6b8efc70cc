"""Quantization: fixed-point primitives, calibration, the quantized model and its artifact."""
