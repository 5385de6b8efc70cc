"""Float reference interpreter for the IR and activation-range calibration.

The interpreter is plain NumPy (float32 storage, float64 accumulation via BLAS) so that
quantization never depends on how the frontend's torch module computes; ``hwgen.evaluate``
cross-checks it against torch.

Range statistic (``method``):

* ``"max"`` (default): max |activation| over all calibration images. Simple, never clips a
  calibration value. With per-channel weights this keeps mnist_cnn's int8 accuracy within
  0.3 points of float (measured in hwgen.evaluate; see docs/artifact.md for the numbers).
* ``"percentile"``: the ``percentile``-th percentile of |activation| over all elements;
  trades clipping of rare outliers for resolution (useful when a few outliers dominate).

For a Conv/Linear whose ReLU is fused the statistic is taken on ``max(y, 0)``: the negative
part is clamped away, so its magnitude must not cost resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

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

__all__ = ["INPUT", "TensorRange", "float_forward", "run_float", "calibrate"]


_MAX_SAMPLES = 1 << 21  # per tensor kept for percentiles: bounds memory on big layers


@dataclass(frozen=True)
class TensorRange:
    """Calibrated range of one tensor: ``absmax`` for |y|, ``posmax`` for max(y, 0)."""

    absmax: float
    posmax: float


def _windows(x: np.ndarray, k: int, stride: int) -> np.ndarray:
    return sliding_window_view(x, (k, k), axis=(-2, -1))[..., ::stride, ::stride, :, :]


def _node_forward(node: Node, x: np.ndarray) -> np.ndarray:
    """One IR node on a float batch (N, *in_shape)."""
    if isinstance(node, Conv2d):
        p = node.padding
        if p:
            x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        win = _windows(x.astype(np.float64), node.kernel, node.stride)  # N,C,OH,OW,k,k
        n, c, oh, ow = win.shape[:4]
        cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, -1)
        w = node.weight.astype(np.float64).reshape(node.weight.shape[0], -1)
        y = cols @ w.T
        if node.bias is not None:
            y = y + node.bias
        return y.reshape(n, oh, ow, -1).transpose(0, 3, 1, 2).astype(np.float32)
    if isinstance(node, Linear):
        y = x.astype(np.float64) @ node.weight.astype(np.float64).T
        if node.bias is not None:
            y = y + node.bias
        return y.astype(np.float32)
    if isinstance(node, ReLU):
        return np.maximum(x, 0)
    if isinstance(node, MaxPool2d):
        return _windows(x, node.kernel, node.stride).max(axis=(-2, -1))
    if isinstance(node, AvgPool2d):
        win = _windows(x, node.kernel, node.stride)
        return win.mean(axis=(-2, -1), dtype=np.float64).astype(np.float32)
    if isinstance(node, Flatten):
        return x.reshape(len(x), -1)
    if isinstance(node, BatchNorm2d):
        inv = (node.gamma / np.sqrt(node.var + node.eps)).reshape(-1, 1, 1)
        return ((x - node.mean.reshape(-1, 1, 1)) * inv + node.beta.reshape(-1, 1, 1)).astype(
            np.float32
        )
    raise TypeError(f"node {node.name}: unsupported op {node.op}")


def float_forward(graph: Graph, x: np.ndarray):
    """Yield (node, output) for every node of ``graph`` on a float batch (N, C, H, W)."""
    x = np.asarray(x, dtype=np.float32)
    if tuple(x.shape[1:]) != tuple(graph.in_type.shape):
        raise ValueError(f"graph {graph.name} expects input {graph.in_type.shape}, got {x.shape}")
    env = {INPUT: x}
    for node, ins in zip(graph.nodes, graph.resolved_inputs(), strict=True):
        args = [env[i] for i in ins]
        if isinstance(node, Add):
            y = (args[0].astype(np.float64) + args[1]).astype(np.float32)
        elif isinstance(node, Concat):
            y = np.concatenate(args, axis=1)
        else:
            y = _node_forward(node, args[0])
        env[node.name] = y
        yield node, y


def run_float(graph: Graph, x: np.ndarray, batch: int = 500) -> np.ndarray:
    """Float output of ``graph`` on (N, C, H, W), in batches."""
    outs = []
    for i in range(0, len(x), batch):
        y = x[i : i + batch]
        for _, out in float_forward(graph, y):
            y = out
        outs.append(y)
    return np.concatenate(outs)


def calibrate(
    graph: Graph,
    calib_x: np.ndarray,
    method: str = "max",
    percentile: float = 99.99,
    batch: int = 250,
    seed: int = 0,
) -> dict[str, TensorRange]:
    """Range of every node's output tensor (keyed by node name, input: INPUT)."""
    if method not in ("max", "percentile"):
        raise ValueError(f"calibration method must be 'max' or 'percentile', not {method!r}")
    calib_x = np.asarray(calib_x, dtype=np.float32)
    if len(calib_x) == 0:
        raise ValueError("calibration needs at least one image")
    rng = np.random.default_rng(seed)
    absmax: dict[str, float] = {}
    posmax: dict[str, float] = {}
    samples: dict[str, list[np.ndarray]] = {}

    def record(name: str, y: np.ndarray) -> None:
        a = np.abs(y).ravel()
        absmax[name] = max(absmax.get(name, 0.0), float(a.max(initial=0.0)))
        posmax[name] = max(posmax.get(name, 0.0), float(y.max(initial=0.0)))
        if method == "percentile":
            # Keep |y| and max(y,0) side by side, subsampled to bound memory.
            keep = max(1, _MAX_SAMPLES * len(y) // len(calib_x))
            if a.size > keep:
                idx = rng.choice(a.size, keep, replace=False)
                a, yv = a[idx], y.ravel()[idx]
            else:
                yv = y.ravel()
            samples.setdefault(name, []).append(np.stack([a, np.maximum(yv, 0)]))

    for i in range(0, len(calib_x), batch):
        xb = calib_x[i : i + batch]
        record(INPUT, xb)
        for node, y in float_forward(graph, xb):
            record(node.name, y)

    if method == "max":
        return {k: TensorRange(absmax[k], posmax[k]) for k in absmax}
    out = {}
    for k, parts in samples.items():
        s = np.concatenate(parts, axis=1)
        a, p = np.percentile(s, percentile, axis=1)
        out[k] = TensorRange(float(a), float(p))
    return out
