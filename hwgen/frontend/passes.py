"""Graph passes on the float IR: BatchNorm folding and the DAG consistency check."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from hwgen.ir import INPUT, Add, BatchNorm2d, Concat, Conv2d, Graph, Node, TensorType
from hwgen.ir.graph import normalize_inputs

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
    """Merge every BatchNorm2d into the Conv2d that produces its input (the conv keeps its
    name; the BatchNorm's consumers read the conv).

    A BatchNorm2d whose input is not a Conv2d used by nothing else (no-ops such as Dropout
    do not count) cannot be folded and raises UnsupportedLayerError.
    """
    consumers = graph.consumers()
    by_name = {n.name: n for n in graph.nodes}
    folded: dict[str, Node] = {}  # conv name -> folded conv
    rename: dict[str, str] = {}  # BatchNorm name -> conv name
    for node, ins in zip(graph.nodes, graph.resolved_inputs(), strict=True):
        if not isinstance(node, BatchNorm2d):
            continue
        prev = by_name.get(ins[0])
        if not isinstance(prev, Conv2d) or consumers[prev.name] != [node.name]:
            after = f"{prev.op} '{prev.name}'" if prev is not None else "the graph input"
            if isinstance(prev, Conv2d):
                after += ", whose output is also used elsewhere"
            raise UnsupportedLayerError(
                f"node '{node.name}' (BatchNorm2d): a BatchNorm2d must directly follow a "
                f"Conv2d so that it can be folded into it, but it follows {after}"
            )
        folded[prev.name] = _fold(folded.get(prev.name, prev), node)
        rename[node.name] = prev.name
    nodes: list[Node] = []
    for node, ins in zip(graph.nodes, graph.resolved_inputs(), strict=True):
        if isinstance(node, BatchNorm2d):
            continue
        node = folded.get(node.name, node)
        nodes.append(replace(node, inputs=tuple(rename.get(i, i) for i in ins)))
    return replace(graph, nodes=normalize_inputs(nodes))


def _input_types(node: Node) -> tuple[TensorType, ...]:
    if isinstance(node, Concat):
        return tuple(node.in_types)
    if isinstance(node, Add):
        return (node.in_type, node.in_type)
    return (node.in_type,)


def check_graph(graph: Graph) -> None:
    """Assert the IR invariants the later stages rely on: a non-empty DAG in topological
    order whose types connect, unique names, no BatchNorm2d left (it must have been
    folded)."""
    if not graph.nodes:
        raise UnsupportedLayerError(f"graph {graph.name!r}: the model has no layers")
    types = {INPUT: graph.in_type}
    for node, ins in zip(graph.nodes, graph.resolved_inputs(), strict=True):
        want = _input_types(node)
        if len(ins) != len(want):
            raise AssertionError(f"node {node.name!r}: {len(ins)} inputs, expects {len(want)}")
        for i, t in zip(ins, want, strict=True):
            if i not in types:
                raise AssertionError(f"node {node.name!r}: input {i!r} is not computed before")
            if types[i] != t:
                raise AssertionError(f"node {node.name!r}: input {t} but receives {types[i]}")
        if node.name in types:
            raise AssertionError(f"duplicate node name {node.name!r}")
        if isinstance(node, BatchNorm2d):
            raise AssertionError(f"node {node.name!r}: BatchNorm2d left after folding")
        types[node.name] = node.out_type
