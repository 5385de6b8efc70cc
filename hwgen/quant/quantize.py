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
* Add (residual, graphs beyond a chain): both branches brought to one accumulator scale by
  int8 weights (wa, wb) whose ratio is the ratio of the branch scales (chosen to minimise
  its rounding error), summed in int32 and requantized like a conv (M, shift) to the
  output scale from calibration (hwgen.quant.qmodel.QAdd). A ReLU after it is fused.
* Concat: no arithmetic; its inputs' producers (the Conv/Linear/Add behind any pools) all
  get the largest of their calibrated output ranges, so every input is already at the
  common scale. A Concat input that carries the model input's scale is an error.

Every output channel is proven overflow-free: 128 * sum|w_q| + |bias_q| <= 2**31 - 1
(|activation| <= 128), else AccumulatorOverflowError names the layer, channel and bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from hwgen.config import QuantConfig
from hwgen.errors import HwgenError
from hwgen.ir.graph import (
    INPUT,
    Add,
    AvgPool2d,
    BatchNorm2d,
    Concat,
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
from hwgen.quant.qmodel import (
    QAdd,
    QAvgPool,
    QConcat,
    QConv,
    QFlatten,
    QLayer,
    QLinear,
    QMaxPool,
    QModel,
)

__all__ = ["IN_SCALE", "QuantizationError", "AccumulatorOverflowError", "quantize"]

IN_SCALE = 1.0 / 127.0  # fixed by the contract: x = p/255 in [0, 1] maps onto 0..127


class QuantizationError(HwgenError, ValueError):
    """The float graph cannot be expressed in the integer contract (message names the layer)."""


class AccumulatorOverflowError(QuantizationError):
    """An output channel's int32 accumulator could overflow."""


@dataclass
class _Step:
    node: Node
    inputs: tuple[str, ...]  # quantized tensors it reads (step names or INPUT)
    relu: bool = False


_SCALE_KEEPING = (MaxPool2d, AvgPool2d, Flatten)  # output scale = input scale


def _plan(graph: Graph, nonneg_input: bool = True) -> list[_Step]:
    """Check the graph and fuse/move/drop its ReLUs; returns the layers to quantize, each
    with the quantized tensors it reads (a dropped or fused ReLU is its input's tensor)."""
    consumers = graph.consumers()
    steps: dict[str, _Step] = {}
    alias: dict[str, str] = {INPUT: INPUT}  # IR tensor -> the quantized tensor it is
    nonneg: dict[str, bool] = {INPUT: nonneg_input}  # e.g. x = p/255 >= 0
    types = {INPUT: graph.in_type, **{n.name: n.out_type for n in graph.nodes}}
    for node, ins in zip(graph.nodes, graph.resolved_inputs(), strict=True):
        srcs = tuple(alias[i] for i in ins)
        want = node.in_types if isinstance(node, Concat) else (node.in_type,) * len(ins)
        for i, t in zip(ins, want, strict=True):
            if tuple(t.shape) != tuple(types[i].shape):
                raise QuantizationError(
                    f"node {node.name}: input shape {t.shape} != the output {types[i].shape} "
                    f"of {i}"
                )
        if isinstance(node, ReLU):
            if not nonneg[srcs[0]]:  # else: ReLU of a non-negative tensor is the identity
                _fuse_relu(node, srcs[0], steps, consumers)
            alias[node.name], nonneg[srcs[0]] = srcs[0], True
            continue
        if isinstance(node, BatchNorm2d):
            raise QuantizationError(
                f"node {node.name}: BatchNorm2d must be folded into the preceding conv first"
            )
        if isinstance(node, (Conv2d, Linear)):
            _check_mac_shapes(node)  # before calibration runs the float graph
        elif not isinstance(node, (*_SCALE_KEEPING, Add, Concat)):
            raise QuantizationError(f"node {node.name}: unsupported op {node.op}")
        steps[node.name] = _Step(node, srcs)
        alias[node.name] = node.name
        keeps = isinstance(node, _SCALE_KEEPING) or isinstance(node, Concat)
        nonneg[node.name] = keeps and all(nonneg[t] for t in srcs)
    if not any(isinstance(s.node, (Conv2d, Linear)) for s in steps.values()):
        raise QuantizationError(f"graph {graph.name} has no Conv2d/Linear layer")
    return list(steps.values())


def _fuse_relu(node: Node, t: str, steps: dict[str, _Step], consumers: dict) -> None:
    """Fuse a ReLU on tensor ``t`` into the Conv/Linear/Add that produces it, moving it back
    through MaxPool/Flatten (clamping commutes with max and reshapes), as long as every
    tensor on the way has no other consumer."""
    while True:
        prev = steps.get(t)
        if prev is None or (isinstance(prev.node, Concat)):
            what = "the model input" if prev is None else f"Concat {t}"
            raise QuantizationError(
                f"node {node.name}: ReLU of {what} (a signed tensor) cannot be fused into a "
                "Conv/Linear/Add (no standalone int8 ReLU in the contract)"
            )
        if len(consumers.get(t, ())) > 1:
            raise QuantizationError(
                f"node {node.name}: ReLU of {prev.node.op} {t}, whose output is also used "
                "without the ReLU: it cannot be fused (no standalone int8 ReLU in the contract)"
            )
        if isinstance(prev.node, (Conv2d, Linear, Add)):
            prev.relu = True
            return
        if not isinstance(prev.node, (MaxPool2d, Flatten)):
            raise QuantizationError(
                f"node {node.name}: ReLU after {prev.node.op} {prev.node.name} of a "
                "signed tensor cannot be fused into a Conv/Linear (no standalone int8 "
                "ReLU in the contract); put the ReLU before the pool"
            )
        t = prev.inputs[0]


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


def _quantize_mac(node: Node, relu: bool, in_scale: float, out_range: float) -> QLayer:
    w = node.weight.astype(np.float64)
    cout = w.shape[0]
    wmax = np.abs(w).reshape(cout, -1).max(axis=1)
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
    forced = _common_ranges(steps, ranges)

    layers: list[QLayer] = []
    scales: dict[str, float] = {INPUT: float(in_scale)}
    for st in steps:
        lay = _quantize_step(st, scales, ranges, forced)
        scales[lay.name] = lay.out_scale if isinstance(lay, _QMAC) else _kept_scale(st, scales)
        layers.append(lay)
    return QModel(
        name=graph.name,
        in_shape=tuple(graph.in_type.shape),
        in_scale=float(in_scale),
        layers=_chain_inputs(layers),
    )


_QMAC = (QConv, QLinear, QAdd)


def _kept_scale(st: _Step, scales: dict[str, float]) -> float:
    got = {scales[t] for t in st.inputs}
    assert len(got) == 1, f"{st.node.name}: inputs at scales {got}"  # _common_ranges did it
    return got.pop()


def _out_range(st: _Step, ranges: dict[str, TensorRange]) -> float:
    rng = ranges[st.node.name]
    return rng.posmax if st.relu else rng.absmax


def _common_ranges(steps: list[_Step], ranges: dict[str, TensorRange]) -> dict[str, float]:
    """Concat inputs must share one scale: trace each input back through scale-keeping
    layers to the Conv/Linear/Add that sets it, and give every such producer of one Concat
    (transitively) the largest of their calibrated output ranges."""
    by_name = {st.node.name: st for st in steps}
    parent: dict[str, str] = {}

    def find(a: str) -> str:
        while parent.get(a, a) != a:
            a = parent[a]
        return a

    def root(t: str, cat: Node) -> str:
        st = by_name.get(t)
        while st is not None and isinstance(st.node, (*_SCALE_KEEPING, Concat)):
            st = by_name.get(st.inputs[0])
        if st is None:
            raise QuantizationError(
                f"node {cat.name} (Concat): input {t} carries the model input's fixed scale; "
                "only outputs of a Conv/Linear/Add (optionally pooled) can be concatenated"
            )
        return st.node.name

    for st in steps:
        if isinstance(st.node, Concat):
            roots = [find(root(t, st.node)) for t in st.inputs]
            for r in roots:
                parent.setdefault(r, r)
            for r in roots[1:]:
                parent[find(r)] = find(roots[0])
    groups: dict[str, float] = {}
    for name in parent:
        g = find(name)
        groups[g] = max(groups.get(g, 0.0), _out_range(by_name[name], ranges))
    return {name: groups[find(name)] for name in parent}


def _quantize_step(
    st: _Step, scales: dict[str, float], ranges: dict[str, TensorRange], forced: dict
) -> QLayer:
    n = st.node
    io = dict(
        name=n.name,
        in_shape=tuple(n.in_type.shape),
        out_shape=tuple(n.out_type.shape),
        inputs=st.inputs,
    )
    out_range = forced.get(n.name, None)
    if isinstance(n, (Conv2d, Linear)):
        if out_range is None:
            out_range = _out_range(st, ranges)
        lay = _quantize_mac(n, st.relu, scales[st.inputs[0]], out_range)
        return replace(lay, inputs=st.inputs)
    if isinstance(n, Add):
        rng = _out_range(st, ranges) if out_range is None else out_range
        return _quantize_add(n, st, [scales[t] for t in st.inputs], rng)
    if isinstance(n, Concat):
        return QConcat(**io)
    if isinstance(n, MaxPool2d):
        return QMaxPool(**io, kernel=n.kernel, stride=n.stride)
    if isinstance(n, AvgPool2d):
        k2 = n.kernel * n.kernel
        if k2 & (k2 - 1):
            raise QuantizationError(
                f"layer {n.name}: AvgPool2d window {n.kernel}x{n.kernel} is not a power "
                "of two (the integer average is a rounding shift)"
            )
        return QAvgPool(**io, kernel=n.kernel, stride=n.stride)
    return QFlatten(**io)


def _branch_weights(sa: float, sb: float, lo_w: float) -> tuple[int, int]:
    """int8 weights (wa, wb) with wb/wa ~ sb/sa: the branch at the larger scale gets w in
    (lo_w, 127] (lo_w keeps the output multiplier below 1), the other round(w * ratio);
    the pair with the smallest error of the smaller branch's coefficient wins."""
    swap = sb > sa
    big, small = (sb, sa) if swap else (sa, sb)
    r = small / big
    best: tuple[float, int, int] | None = None
    for w in range(max(1, math.floor(lo_w) + 1), 128):
        v = min(127, round(w * r))
        err = abs(v / w - r)  # coefficient error, in units of the larger scale
        if best is None or err < best[0] - 1e-15:
            best = (err, w, v)
    if best is None:
        raise ValueError("no int8 weight keeps the output multiplier below 1")
    _, w, v = best
    return (v, w) if swap else (w, v)


def _quantize_add(n: Add, st: _Step, in_scales: list[float], out_range: float) -> QAdd:
    """acc = wa*a + wb*b at scale s_acc = sa/wa (= sb/wb up to the weight rounding), then the
    gemmlowp requant (M, shift) = quantize_multiplier(s_acc / out_scale)."""
    sa, sb = in_scales
    if not (out_range > 0 and math.isfinite(out_range)):
        out_range = 127 * max(sa, sb)  # dead on the calibration set: any scale will do
    out_scale = out_range / 127
    big = max(sa, sb)
    try:
        wa, wb = _branch_weights(sa, sb, big / out_scale)  # s_acc = big/w < out_scale
    except ValueError:
        raise QuantizationError(
            f"layer {n.name}: output range {out_range:.4g} is too small for the inputs' "
            f"scales {sa:.4g}, {sb:.4g} (requant multiplier >= 1)"
        ) from None
    s_acc = sa / wa if wa else sb / wb
    mult, shift = quantize_multiplier(s_acc / out_scale)
    cout = n.out_type.shape[0]
    return QAdd(
        name=n.name,
        in_shape=tuple(n.in_type.shape),
        out_shape=tuple(n.out_type.shape),
        inputs=st.inputs,
        weight=np.array([wa, wb], dtype=np.int8),
        bias=np.zeros(cout, dtype=np.int32),
        multiplier=np.full(cout, mult, dtype=np.int32),
        shift=np.full(cout, shift, dtype=np.int32),
        act_min=0 if st.relu else -128,
        act_max=127,
        in_scale=float(s_acc),
        out_scale=float(out_scale),
        w_scale=np.full(cout, s_acc, dtype=np.float64),
    )


def _chain_inputs(layers: list[QLayer]) -> tuple[QLayer, ...]:
    """Canonical ``inputs``: () where a layer reads exactly the previous layer's output."""
    out, prev = [], INPUT
    for lay in layers:
        ins = tuple(lay.inputs) or (prev,)
        out.append(replace(lay, inputs=() if ins == (prev,) else ins))
        prev = lay.name
    return tuple(out)
