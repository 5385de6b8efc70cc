"""Post-training quantization: float IR Graph + calibration images -> QModel (the int contract).

* Weights: int8 symmetric per output channel, range +-127, w_scale[c] = max|w[c]| / 127.
* Activations: int8 symmetric per tensor, scale = calibrated range / 127 (see calibrate.py).
  Input: for uint8 pixels (x = p/255) the scale is fixed at 1/127 (q = (254p + 255) // 510);
  for any other input ``in_scale=None`` derives it from the calibration data: max|x| / 127.
* Bias: int32 at scale in_scale * w_scale[c].
* Requant: (M, shift) = quantize_multiplier(in_scale * w_scale[c] / out_scale).
* ReLU: fused into the Conv/Linear that produces its input (act_min = 0). A ReLU after a
  MaxPool/Flatten moves back to that Conv/Linear: clamping commutes with max and reshapes, so
  this is exact. A ReLU on a tensor already known non-negative is dropped (a no-op). A ReLU
  after an AvgPool of a signed tensor has no integer op here and raises, naming the node.
* Pools and Flatten keep the scale.

Every output channel is proven overflow-free: 128 * sum|w_q| + |bias_q| <= 2**31 - 1
(|activation| <= 128), else AccumulatorOverflowError names the layer, channel and bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hwgen.config import QuantConfig
from hwgen.errors import HwgenError
from hwgen.ir.graph import (
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Flatten,
    Graph,
    Linear,
    MaxPool2d,
    Node,
    ReLU,
)
from hwgen.quant.calibrate import TensorRange, calibrate
from hwgen.quant.fixedpoint import INT32_MAX, quantize_multiplier
from hwgen.quant.qmodel import QAvgPool, QConv, QFlatten, QLayer, QLinear, QMaxPool, QModel

__all__ = ["IN_SCALE", "QuantizationError", "AccumulatorOverflowError", "quantize"]

IN_SCALE = 1.0 / 127.0  # fixed by the contract: x = p/255 in [0, 1] maps onto 0..127


class QuantizationError(HwgenError, ValueError):
    """The float graph cannot be expressed in the integer contract (message names the layer)."""


class AccumulatorOverflowError(QuantizationError):
    """An output channel's int32 accumulator could overflow."""


@dataclass
class _Step:
    node: Node
    relu: bool = False


def _plan(graph: Graph, nonneg_input: bool = True) -> list[_Step]:
    """Check the graph and fuse/move/drop its ReLUs; returns the layers to quantize."""
    steps: list[_Step] = []
    shape = tuple(graph.in_type.shape)
    nonneg = nonneg_input  # e.g. x = p/255 >= 0: a first ReLU is the identity
    for node in graph.nodes:
        if tuple(node.in_type.shape) != shape:
            raise QuantizationError(
                f"node {node.name}: input shape {node.in_type.shape} != previous output {shape}"
            )
        shape = tuple(node.out_type.shape)
        if isinstance(node, ReLU):
            if nonneg:
                continue  # ReLU of a non-negative tensor is the identity
            for prev in reversed(steps):
                if isinstance(prev.node, (Conv2d, Linear)):
                    prev.relu = True
                    break
                if not isinstance(prev.node, (MaxPool2d, Flatten)):
                    raise QuantizationError(
                        f"node {node.name}: ReLU after {prev.node.op} {prev.node.name} of a "
                        "signed tensor cannot be fused into a Conv/Linear (no standalone int8 "
                        "ReLU in the contract); put the ReLU before the pool"
                    )
            nonneg = True
            continue
        if isinstance(node, BatchNorm2d):
            raise QuantizationError(
                f"node {node.name}: BatchNorm2d must be folded into the preceding conv first"
            )
        if isinstance(node, (Conv2d, Linear)):
            _check_mac_shapes(node)  # before calibration runs the float graph
            nonneg = False
        elif not isinstance(node, (MaxPool2d, AvgPool2d, Flatten)):
            raise QuantizationError(f"node {node.name}: unsupported op {node.op}")
        steps.append(_Step(node))
    if not any(isinstance(s.node, (Conv2d, Linear)) for s in steps):
        raise QuantizationError(f"graph {graph.name} has no Conv2d/Linear layer")
    return steps


def _check_mac_shapes(node: Node) -> None:
    w = node.weight
    if isinstance(node, Conv2d):
        cin, cout = node.in_type.shape[0], node.out_type.shape[0]
        want = (cout, cin, node.kernel, node.kernel)
        if len(node.in_type.shape) != 3:
            raise QuantizationError(f"layer {node.name}: conv input must be (C, H, W)")
    else:
        want = (node.out_type.shape[0], node.in_type.shape[0])
        if len(node.in_type.shape) != 1:
            raise QuantizationError(f"layer {node.name}: linear input must be a vector (N,)")
    if w is None or tuple(w.shape) != want:
        got = None if w is None else tuple(w.shape)
        raise QuantizationError(f"layer {node.name}: weight shape {got}, expected {want}")
    if node.bias is not None and tuple(node.bias.shape) != (want[0],):
        raise QuantizationError(f"layer {node.name}: bias shape {node.bias.shape} != ({want[0]},)")
    if not np.all(np.isfinite(w)) or (node.bias is not None and not np.all(np.isfinite(node.bias))):
        raise QuantizationError(f"layer {node.name}: non-finite weight or bias")


def _quantize_mac(node: Node, relu: bool, in_scale: float, rng: TensorRange) -> QLayer:
    w = node.weight.astype(np.float64)
    cout = w.shape[0]
    wmax = np.abs(w).reshape(cout, -1).max(axis=1)
    out_range = rng.posmax if relu else rng.absmax
    if not (out_range > 0 and math.isfinite(out_range)):
        # Dead on the calibration set: any scale represents it; keep multipliers <= 0.5.
        out_range = 127 * 2 * in_scale * max(float(wmax.max()) / 127, 1.0 / 127)
    out_scale = out_range / 127
    # A zero-weight channel's scale is free: choose it so the multiplier is exactly 2**-8,
    # i.e. the bias (its only output) is held at 256x the output resolution.
    w_scale = np.where(wmax > 0, wmax / 127, out_scale / (256 * in_scale))
    ws = w_scale.reshape((cout,) + (1,) * (w.ndim - 1))
    w_q = np.clip(np.rint(w / ws), -127, 127).astype(np.int8)

    b = np.zeros(cout) if node.bias is None else node.bias.astype(np.float64)
    b_real = b / (in_scale * w_scale)
    b_q = np.rint(np.clip(b_real, -(2.0**62), 2.0**62)).astype(np.int64)  # clip: no UB cast
    bound = 128 * np.abs(w_q.reshape(cout, -1).astype(np.int64)).sum(axis=1) + np.abs(b_q)
    for c in np.flatnonzero(bound > INT32_MAX):
        raise AccumulatorOverflowError(
            f"layer {node.name} output channel {c}: 128*sum|w| + |bias| = {int(bound[c])} "
            f"> 2**31-1 = {INT32_MAX}; the int32 accumulator could overflow"
        )

    mult = np.zeros(cout, dtype=np.int32)
    shift = np.zeros(cout, dtype=np.int32)
    for c in range(cout):
        real = in_scale * float(w_scale[c]) / out_scale
        try:
            mult[c], shift[c] = quantize_multiplier(real)
        except ValueError as e:
            raise QuantizationError(
                f"layer {node.name} output channel {c}: requant multiplier in_scale*w_scale/"
                f"out_scale = {real:.6g} is not representable ({e}); the output range is too "
                "small for its input range and weights"
            ) from None

    common = dict(
        name=node.name,
        in_shape=tuple(node.in_type.shape),
        out_shape=tuple(node.out_type.shape),
        weight=w_q,
        bias=b_q.astype(np.int32),
        multiplier=mult,
        shift=shift,
        act_min=0 if relu else -128,
        act_max=127,
        in_scale=float(in_scale),
        out_scale=float(out_scale),
        w_scale=w_scale.astype(np.float64),
    )
    if isinstance(node, Conv2d):
        return QConv(**common, kernel=node.kernel, stride=node.stride, padding=node.padding)
    return QLinear(**common)


def quantize(
    graph: Graph,
    calib_x: np.ndarray,
    config: QuantConfig = QuantConfig(),  # noqa: B008 - frozen dataclass, safe default
    *,
    method: str = "max",
    percentile: float = 99.99,
    in_scale: float | None = IN_SCALE,
) -> QModel:
    """Quantize ``graph`` calibrating on ``calib_x`` (N, *in_shape) float32 model inputs.

    All of ``calib_x`` is used (the caller picks config.calib_images of them). ``method`` and
    ``percentile`` choose the range statistic (see hwgen.quant.calibrate). ``in_scale``: the
    input scale; the default 1/127 is the uint8-pixel contract (x = p/255 in [0, 1]); None
    derives it from ``calib_x`` (max|x| / 127).
    """
    if (config.act_bits, config.weight_bits, config.acc_bits) != (8, 8, 32):
        raise QuantizationError(
            "only int8 activations, int8 weights and int32 accumulators are supported, got "
            f"{config.act_bits}/{config.weight_bits}/{config.acc_bits}"
        )
    calib_x = np.asarray(calib_x, dtype=np.float32)
    if not calib_x.size or not np.all(np.isfinite(calib_x)):
        raise QuantizationError("calibration data is empty or holds NaN/infinite values")
    lo, hi = float(calib_x.min()), float(calib_x.max())
    if in_scale is None:  # derive: the largest calibration magnitude maps to 127
        absmax = max(abs(lo), abs(hi))
        if not absmax > 0:
            raise QuantizationError("calibration data is all zero: no input scale to derive")
        in_scale = absmax / 127.0
    elif max(abs(lo), abs(hi)) > 127 * in_scale * (1 + 1e-6):
        raise QuantizationError(
            f"calibration inputs span [{lo:.4g}, {hi:.4g}], outside the input range "
            f"+-{127 * in_scale:.4g} of the fixed input scale {in_scale:.6g} (uint8 pixels "
            "must be given as x = pixel/255 in [0, 1])"
        )
    steps = _plan(graph, nonneg_input=lo >= 0)
    ranges = calibrate(graph, calib_x, method=method, percentile=percentile, seed=config.seed)

    layers: list[QLayer] = []
    scale = float(in_scale)
    for st in steps:
        n = st.node
        io = dict(name=n.name, in_shape=tuple(n.in_type.shape), out_shape=tuple(n.out_type.shape))
        if isinstance(n, (Conv2d, Linear)):
            lay = _quantize_mac(n, st.relu, scale, ranges[n.name])
            scale = lay.out_scale
        elif isinstance(n, MaxPool2d):
            lay = QMaxPool(**io, kernel=n.kernel, stride=n.stride)
        elif isinstance(n, AvgPool2d):
            k2 = n.kernel * n.kernel
            if k2 & (k2 - 1):
                raise QuantizationError(
                    f"layer {n.name}: AvgPool2d window {n.kernel}x{n.kernel} is not a power "
                    "of two (the integer average is a rounding shift)"
                )
            lay = QAvgPool(**io, kernel=n.kernel, stride=n.stride)
        else:
            lay = QFlatten(**io)
        layers.append(lay)
    return QModel(
        name=graph.name,
        in_shape=tuple(graph.in_type.shape),
        in_scale=float(in_scale),
        layers=tuple(layers),
    )
