"""Graph passes on the float IR: BatchNorm folding and the straight-line consistency check."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from hwgen.ir import BatchNorm2d, Conv2d, Graph, Node

from .errors import UnsupportedLayerError

__all__ = ["check_graph", "fold_batchnorm"]


def _fold(conv: Conv2d, bn: BatchNorm2d) -> Conv2d:
    # Eval-mode BN is a per-channel affine map y = a*x + c, so it can be absorbed exactly
    # by the conv: w' = a*w, b' = a*(b - mean) + beta, with a = gamma / sqrt(var + eps).
    # Computed in float64 so the fold adds no error beyond the final float32 rounding.
    a = bn.gamma.astype(np.float64) / np.sqrt(bn.var.astype(np.float64) + bn.eps)
    w = conv.weight.astype(np.float64) * a[:, None, None, None]
    b = (conv.bias.astype(np.float64) - bn.mean) * a + bn.beta
    w32, b32 = w.astype(np.float32), b.astype(np.float32)
    w32.setflags(write=False)
    b32.setflags(write=False)
    return replace(conv, weight=w32, bias=b32, out_type=bn.out_type)


def fold_batchnorm(graph: Graph) -> Graph:
    """Merge every BatchNorm2d into the Conv2d right before it (the conv keeps its name).

    A BatchNorm2d that does not directly follow a Conv2d (no-ops such as Dropout do not
    count) cannot be folded and raises UnsupportedLayerError.
    """
    nodes: list[Node] = []
    for node in graph.nodes:
        if not isinstance(node, BatchNorm2d):
            nodes.append(node)
            continue
        prev = nodes[-1] if nodes else None
        if not isinstance(prev, Conv2d):
            after = f"{prev.op} '{prev.name}'" if prev is not None else "the graph input"
            raise UnsupportedLayerError(
                f"node '{node.name}' (BatchNorm2d): a BatchNorm2d must directly follow a "
                f"Conv2d so that it can be folded into it, but it follows {after}"
            )
        nodes[-1] = _fold(prev, node)
    return replace(graph, nodes=tuple(nodes))


def check_graph(graph: Graph) -> None:
    """Assert the IR invariants the later stages rely on: a non-empty chain whose types
    connect, unique names, no BatchNorm2d left (it must have been folded)."""
    if not graph.nodes:
        raise UnsupportedLayerError(f"graph {graph.name!r}: the model has no layers")
    t = graph.in_type
    seen: set[str] = set()
    for node in graph.nodes:
        if node.in_type != t:
            raise AssertionError(f"node {node.name!r}: input {node.in_type} but receives {t}")
        if node.name in seen:
            raise AssertionError(f"duplicate node name {node.name!r}")
        if isinstance(node, BatchNorm2d):
            raise AssertionError(f"node {node.name!r}: BatchNorm2d left after folding")
        seen.add(node.name)
        t = node.out_type
