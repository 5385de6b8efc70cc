"""A float NumPy interpreter of the IR, to prove the IR equals the torch module.

Computes in float64 (returns float32), so it is a reference rather than a second float32
implementation with its own rounding; nothing here is used by the integer flow.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import as_strided

from hwgen import ir

__all__ = ["run_float"]


def _windows(x: np.ndarray, k: int, s: int) -> np.ndarray:
    """[C,H,W] -> read-only view [C,Ho,Wo,k,k] of every k x k window at stride s."""
    c, h, w = x.shape
    ho, wo = (h - k) // s + 1, (w - k) // s + 1
    sc, sh, sw = x.strides
    return as_strided(x, (c, ho, wo, k, k), (sc, sh * s, sw * s, sh, sw), writeable=False)


def _conv(n: ir.Conv2d, x: np.ndarray) -> np.ndarray:
    p = n.padding
    xp = np.pad(x, ((0, 0), (p, p), (p, p)))  # zero padding
    win = _windows(xp, n.kernel, n.stride)
    out = np.tensordot(n.weight.astype(np.float64), win, axes=([1, 2, 3], [0, 3, 4]))
    return out + n.bias[:, None, None]


def _linear(n: ir.Linear, x: np.ndarray) -> np.ndarray:
    return n.weight.astype(np.float64) @ x + n.bias


def _batchnorm(n: ir.BatchNorm2d, x: np.ndarray) -> np.ndarray:
    inv = 1.0 / np.sqrt(n.var.astype(np.float64) + n.eps)
    return ((x - n.mean[:, None, None]) * (n.gamma * inv)[:, None, None]) + n.beta[:, None, None]


_EXEC: dict[type, Callable[..., np.ndarray]] = {
    ir.Conv2d: _conv,
    ir.Linear: _linear,
    ir.ReLU: lambda n, x: np.maximum(x, 0.0),
    ir.MaxPool2d: lambda n, x: _windows(x, n.kernel, n.stride).max(axis=(3, 4)),
    ir.AvgPool2d: lambda n, x: _windows(x, n.kernel, n.stride).mean(axis=(3, 4)),
    ir.Flatten: lambda n, x: x.reshape(-1),  # C-order of (C,H,W) = PyTorch's CHW flatten
    ir.BatchNorm2d: _batchnorm,
}


def run_float(graph: ir.Graph, x: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Run ``graph`` on one input ``x`` (shape ``graph.in_type.shape``, e.g. [C,H,W]).

    Returns ``[(node name, float32 output), ...]`` for every node in order; the last entry
    is the network output.
    """
    x = np.asarray(x)
    if x.shape != graph.in_type.shape:
        raise ValueError(
            f"graph {graph.name!r} takes one input of shape {graph.in_type.shape}, "
            f"not {x.shape} (no batch dimension)"
        )
    env = {ir.INPUT: np.ascontiguousarray(x, dtype=np.float64)}
    outs: list[tuple[str, np.ndarray]] = []
    for node, ins in zip(graph.nodes, graph.resolved_inputs(), strict=True):
        args = [env[i] for i in ins]
        if isinstance(node, ir.Add):
            h = args[0] + args[1]
        elif isinstance(node, ir.Concat):
            h = np.concatenate(args, axis=0)
        else:
            try:
                fn = _EXEC[type(node)]
            except KeyError:
                raise TypeError(
                    f"run_float: no interpreter for node {node.name!r} ({node.op})"
                ) from None
            h = fn(node, args[0])
        h = np.ascontiguousarray(h)
        if h.shape != node.out_type.shape:  # the IR's declared shapes must be the real ones
            raise AssertionError(
                f"node {node.name!r} ({node.op}) produced {h.shape}, IR says {node.out_type}"
            )
        env[node.name] = h
        outs.append((node.name, h.astype(np.float32)))
    return outs
