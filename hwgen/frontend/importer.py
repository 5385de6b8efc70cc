"""torch.nn.Module -> hwgen.ir.Graph: trace with torch.fx, walk the nodes through the handler
registry, fold BatchNorm, check the chain, and verify numerically against torch."""

from __future__ import annotations

import operator
from dataclasses import replace
from typing import Any

import numpy as np
import torch
import torch.fx as fx
from torch import nn

from hwgen.ir import INPUT, Graph, Node, TensorType, normalize_inputs

from . import handlers as _handlers  # noqa: F401 - importing registers the handlers
from .errors import FrontendError, UnsupportedLayerError
from .passes import check_graph, fold_batchnorm
from .reference import run_float
from .registry import BATCH, MULTI_INPUT, OpContext, describe, lookup, supported_layers

__all__ = ["import_model", "verify_graph"]

_VERIFY_SEED = 1234


def _unsupported_op(desc: str) -> UnsupportedLayerError:
    return UnsupportedLayerError(
        f"{desc}: unsupported op — only the supported layers "
        f"({', '.join(supported_layers())}, and their functional forms), residual adds "
        f"(x + y) and channel concatenation (torch.cat(dim=1)) are supported"
    )


def _shape_value(node: fx.Node, types: dict[fx.Node, TensorType], scalars: dict) -> Any:
    """The static value of a shape query (``x.size(d)``, ``x.shape``, ``x.shape[i]``), or
    None if ``node`` is not one. The batch dimension is the symbol BATCH."""
    args = node.args
    if node.op == "call_method" and node.target == "size" and args and args[0] in types:
        full = (BATCH, *types[args[0]].shape)
        dim = args[1] if len(args) > 1 else node.kwargs.get("dim")
        return full if dim is None else full[dim]
    if node.op == "call_function" and node.target is getattr and args[0] in types:
        if args[1] == "shape":
            return (BATCH, *types[args[0]].shape)
    if node.op == "call_function" and node.target is operator.getitem and args[0] in scalars:
        return scalars[args[0]][args[1]]
    return None


def _trace(module: nn.Module, name: str) -> fx.GraphModule:
    try:
        return fx.symbolic_trace(module)
    except Exception as e:  # TraceError, or anything the forward() does with a Proxy
        raise UnsupportedLayerError(
            f"model {name!r} cannot be traced by torch.fx ({type(e).__name__}: {e}); "
            f"data-dependent control flow is not supported"
        ) from e


def _walk(gm: fx.GraphModule, in_type: TensorType, name: str) -> Graph:
    """The fx graph as a DAG of IR nodes: every tensor-valued fx node gets its type and the
    name of the IR tensor it is (an inference no-op is its input's tensor)."""
    modules = dict(gm.named_modules())
    types: dict[fx.Node, TensorType] = {}  # tensor-valued nodes and their types
    names: dict[fx.Node, str] = {}  # ... and the IR tensor each one is
    scalars: dict[fx.Node, Any] = {}  # shape queries and their static values
    nodes: list[Node] = []
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            if types:
                raise UnsupportedLayerError(
                    f"{describe(node)}: the model takes more than one input; exactly one "
                    f"input tensor is supported"
                )
            types[node], names[node] = in_type, INPUT
            continue
        if node.op == "get_attr":
            continue  # a parameter used in forward(): fails where it is consumed
        if node.op == "output":
            _check_output(node, names, nodes)
            break
        value = _shape_value(node, types, scalars)
        if value is not None:
            scalars[node] = value
            continue
        module = modules.get(str(node.target)) if node.op == "call_module" else None
        fn = lookup(node, module)
        if fn is None:
            if node.op == "call_module":
                raise UnsupportedLayerError(
                    f"{describe(node, module)}: unsupported layer (supported: "
                    f"{', '.join(supported_layers())})"
                )
            raise _unsupported_op(describe(node, module))
        tensors = [n for n in node.all_input_nodes if n not in scalars]
        if fn in MULTI_INPUT:
            ctx = OpContext(node, module, types[tensors[0]], scalars, types, names)
            ir_node = fn(ctx)
        else:
            if len(tensors) != 1 or tensors[0] not in types:
                got = ", ".join(f"'{n}'" for n in tensors) or "no tensor"
                raise UnsupportedLayerError(
                    f"{describe(node, module)}: consumes {got}; this op takes exactly one "
                    f"tensor computed by the model"
                )
            (src,) = tensors
            ir_node = fn(OpContext(node, module, types[src], scalars))
            if ir_node is not None:
                ir_node = replace(ir_node, inputs=(names[src],))
            else:
                types[node], names[node] = types[src], names[src]  # a no-op: same tensor
                continue
        types[node], names[node] = ir_node.out_type, ir_node.name
        nodes.append(ir_node)
    return Graph(name=name, in_type=in_type, nodes=normalize_inputs(nodes))


def _check_output(node: fx.Node, names: dict[fx.Node, str], nodes: list[Node]) -> None:
    """The model returns one tensor: the last op's output; every other op's output is used."""
    result = node.args[0]
    last = nodes[-1].name if nodes else INPUT
    if not isinstance(result, fx.Node) or names.get(result) != last:
        raise UnsupportedLayerError(
            f"{describe(node)}: the model must return the last op's output ('{last}') as a "
            f"single tensor, but returns {result!r}"
        )
    used = {i for n in nodes for i in n.inputs}
    for prev, n in zip(nodes, nodes[1:], strict=False):
        if not n.inputs:
            used.add(prev.name)
    for n in nodes[:-1]:
        if n.name not in used:
            raise UnsupportedLayerError(
                f"node '{n.name}' ({n.op}): its output is never used (dead branch)"
            )


def verify_graph(
    graph: Graph, module: nn.Module, batch: int = 2, seed: int = _VERIFY_SEED, rtol: float = 1e-4
) -> float:
    """Run ``graph`` (run_float) and ``module`` (eval mode) on the same seeded inputs in
    [0, 1) and raise FrontendError unless the outputs agree to ``rtol`` of the output range.
    Returns the max abs difference."""
    rng = np.random.default_rng(seed)
    x = rng.random((batch, *graph.in_type.shape), dtype=np.float32)
    was_training = module.training
    try:
        with torch.no_grad():
            want = module.eval()(torch.from_numpy(x)).double().numpy()
    finally:
        module.train(was_training)
    got = np.stack([run_float(graph, xi)[-1][1] for xi in x]).astype(np.float64)
    if got.shape != want.shape:
        raise FrontendError(
            f"graph {graph.name!r}: output shape {got.shape[1:]} but the torch module "
            f"gives {want.shape[1:]}"
        )
    diff = float(np.max(np.abs(got - want)))
    tol = rtol * max(1.0, float(np.max(np.abs(want))))
    if not diff <= tol:
        raise FrontendError(
            f"graph {graph.name!r} does not reproduce the torch module: max abs difference "
            f"{diff:.3g} > {tol:.3g} on seeded random inputs (a front-end bug: the IR "
            f"would compute wrong numbers)"
        )
    return diff


def import_model(
    module: nn.Module, in_shape: tuple[int, ...], name: str, verify: bool = True
) -> Graph:
    """Import ``module`` (inference semantics, i.e. eval mode) as a float IR Graph.

    ``in_shape`` is one input without the batch dimension: (C, H, W), or (K,) for a model
    that starts with a Linear. BatchNorm2d is folded into the conv before it. Raises
    UnsupportedLayerError (a ValueError) naming the fx node for anything the flow cannot
    express. With ``verify`` the result is checked against the module on random inputs.
    """
    shape = tuple(in_shape)
    if len(shape) not in (1, 3) or not all(isinstance(d, int) and d > 0 for d in shape):
        raise ValueError(
            f"in_shape must be (C, H, W) or (K,) without the batch dimension, not {in_shape!r}"
        )
    was_training = module.training
    module.eval()  # trace as inference: F.dropout(training=self.training) records False
    try:
        gm = _trace(module, name)
    finally:
        module.train(was_training)
    graph = fold_batchnorm(_walk(gm, TensorType(shape), name))
    check_graph(graph)
    if verify:
        verify_graph(graph, module)
    return graph
