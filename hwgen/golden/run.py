"""Run a QModel on integers only: the bit-exact reference the RTL must reproduce.

Never imports torch, amaranth or cocotb (checked by tests/test_golden.py).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hwgen.golden.ops import avgpool_int, conv2d_int, linear_int, maxpool_int, requant
from hwgen.quant.inputs import quantize_images
from hwgen.quant.qmodel import (
    INPUT,
    QAdd,
    QAvgPool,
    QConcat,
    QConv,
    QFlatten,
    QLayer,
    QLinear,
    QMaxPool,
    QModel,
    resolve_inputs,
)

__all__ = ["quantize_input", "run", "predict"]


def quantize_input(images) -> np.ndarray:
    """uint8 pixels -> int8 model input, q = (254*p + 255) // 510 = round(p/255 * 127).

    Shapes: (H, W) -> (1, H, W); (N, H, W) -> (N, 1, H, W) (a 3-D array is always a batch of
    grey images); (N, C, H, W) is kept. Any integer dtype with values in 0..255 is accepted.
    """
    p = np.asarray(images)
    if p.dtype.kind not in "iu":
        raise TypeError(f"images must be uint8 pixels, got dtype {p.dtype}")
    return quantize_images(p)  # the one pixel -> int8 rule (hwgen.quant.inputs)


def add_int(lay: QAdd, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The residual add (QAdd): wa*a + wb*b, then the per-channel requant."""
    wa, wb = (int(w) for w in lay.weight)
    acc = wa * a.astype(np.int64) + wb * b.astype(np.int64)
    axis = -3 if len(lay.out_shape) == 3 else -1
    return requant(
        acc, lay.bias, lay.multiplier, lay.shift, lay.act_min, lay.act_max, channel_axis=axis
    )


def _layer_fn(lay: QLayer) -> Callable[..., np.ndarray]:
    """The integer function of one layer on a batch (N, *in_shape) -> (N, *out_shape)."""
    if isinstance(lay, QAdd):
        return lambda a, b: add_int(lay, a, b)
    if isinstance(lay, QConcat):
        return lambda *xs: np.concatenate(xs, axis=-3)
    if isinstance(lay, QConv):
        return lambda x: requant(
            conv2d_int(x, lay.weight, lay.stride, lay.padding),
            lay.bias, lay.multiplier, lay.shift, lay.act_min, lay.act_max, channel_axis=-3,
        )  # fmt: skip
    if isinstance(lay, QLinear):
        return lambda x: requant(
            linear_int(x, lay.weight),
            lay.bias, lay.multiplier, lay.shift, lay.act_min, lay.act_max, channel_axis=-1,
        )  # fmt: skip
    if isinstance(lay, QMaxPool):
        return lambda x: maxpool_int(x, lay.kernel, lay.stride)
    if isinstance(lay, QAvgPool):
        return lambda x: avgpool_int(x, lay.kernel, lay.stride)
    if isinstance(lay, QFlatten):
        return lambda x: x.reshape(x.shape[0], -1)  # PyTorch CHW order
    raise TypeError(f"layer {lay.name}: unknown layer kind {type(lay).__name__}")


def _forward(qmodel: QModel, x: np.ndarray, keep: bool) -> list[tuple[str, np.ndarray]]:
    """Batched forward pass; returns (name, int8 output) per layer, or only the last one."""
    if x.dtype != np.int8:
        raise TypeError(f"model input must be int8, got {x.dtype}")
    if tuple(x.shape[1:]) != tuple(qmodel.in_shape):
        raise ValueError(f"model {qmodel.name} expects input {qmodel.in_shape}, got {x.shape[1:]}")
    outs: list[tuple[str, np.ndarray]] = []
    env = {INPUT: x}
    for lay, ins in zip(qmodel.layers, resolve_inputs(qmodel.layers), strict=True):
        y = _layer_fn(lay)(*(env[i] for i in ins))
        if tuple(y.shape[1:]) != tuple(lay.out_shape):
            raise ValueError(f"layer {lay.name}: output {y.shape[1:]} != declared {lay.out_shape}")
        x = y.astype(np.int8)  # every value is already in int8 range (requant clamps)
        env[lay.name] = x
        if keep:
            outs.append((lay.name, x))
    return outs if keep else [(qmodel.layers[-1].name, x)]


def run(qmodel: QModel, x_int8) -> list[tuple[str, np.ndarray]]:
    """One image int8 (C, H, W) -> [(layer name, int8 output)] for every layer, in order.

    Conv/Linear outputs are post-requant (and post-ReLU when fused).
    """
    x = np.asarray(x_int8)
    return [(name, y[0]) for name, y in _forward(qmodel, x[None], keep=True)]


def predict(qmodel: QModel, images, batch: int = 500) -> np.ndarray:
    """Images (N, H, W) or (N, C, H, W) -> int8 logits (N, classes), in batches. uint8
    pixels or float model inputs (hwgen.quant.inputs.quantize_images)."""
    x = quantize_images(images, qmodel.in_scale)
    out = [_forward(qmodel, x[i : i + batch], keep=False)[0][1] for i in range(0, len(x), batch)]
    if not out:
        return np.zeros((0, *qmodel.layers[-1].out_shape), dtype=np.int8)
    return np.concatenate(out)
