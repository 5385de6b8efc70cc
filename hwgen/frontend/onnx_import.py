"""ONNX -> float IR (hwgen.ir.Graph): the same graph the torch front end produces.

``import_onnx(path)`` reads an ONNX model (``torch.onnx.export``, either exporter, or another
framework), walks its nodes through a per-op handler table, folds BatchNormalization into the
conv before it, checks the DAG and verifies the IR numerically against onnxruntime (like
``import_model`` verifies against torch). Op forms understood:

* Conv (weights and bias from initializers or Constant nodes), Gemm (``alpha = beta = 1``,
  ``transA = 0``, either ``transB``), MatMul by a constant followed by an Add of a constant
  bias (the two become one Linear), Relu, MaxPool, AveragePool, BatchNormalization
  (inference form), Flatten (``axis = 1``) and Reshape to (batch, -1);
* graphs beyond a chain: Add of two computed tensors of the same shape (a residual add, no
  broadcasting) and Concat on the channel axis (``axis = 1``) of CxHxW maps;
* Constant, Identity and Dropout (inference) are not layers; Cast/Shape/Gather/... on
  constants only are not supported (the exporters fold them away for static shapes).

Anything else — an op, an attribute value or a graph shape the hardware flow cannot express —
raises :class:`UnsupportedLayerError` naming the node, its op type and the reason, as the
torch front end does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from hwgen import ir
from hwgen.ir import Graph, TensorType

from .errors import FrontendError, UnsupportedLayerError
from .handlers import _out_size, _pool, _square
from .passes import check_graph, fold_batchnorm
from .reference import run_float

__all__ = ["import_onnx", "verify_onnx", "supported_onnx_ops"]

_VERIFY_SEED = 1234


@dataclass
class OnnxContext:
    """What an ONNX handler sees: the node, its attributes, the type of the one tensor it
    consumes and the constant values of its other inputs (duck-types the torch handlers'
    ``OpContext`` for the shared checks: ``name``, ``in_type``, ``fail``, ``chw``)."""

    node: Any  # onnx.NodeProto
    name: str
    in_type: TensorType
    consts: list[np.ndarray | None]  # per input: its constant value, None for the tensor
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def desc(self) -> str:
        return f"node '{self.node.name or self.name}' ({self.node.op_type})"  # as in the file

    def fail(self, reason: str) -> UnsupportedLayerError:
        return UnsupportedLayerError(f"{self.desc}: {reason}")

    def chw(self) -> tuple[int, int, int]:
        if len(self.in_type.shape) != 3:
            raise self.fail(f"needs a CxHxW feature map input, but its input is {self.in_type}")
        c, h, w = self.in_type.shape
        return c, h, w

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    def const(self, i: int, what: str, required: bool = True) -> np.ndarray | None:
        """Input ``i`` as a constant (an initializer or a Constant node)."""
        if i >= len(self.consts) or self.node.input[i] == "":
            if required:
                raise self.fail(f"has no {what} input")
            return None
        value = self.consts[i]
        if value is None:
            raise self.fail(f"its {what} must be a constant (an initializer), not computed")
        return value


Handler = Callable[[OnnxContext], "ir.Node | None"]
_HANDLERS: dict[str, Handler] = {}


def _handles(*ops: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for op in ops:
            _HANDLERS[op] = fn
        return fn

    return register


def supported_onnx_ops() -> list[str]:
    return sorted(_HANDLERS)


def _f32(a: np.ndarray) -> np.ndarray:
    out = np.array(a, dtype=np.float32)  # a copy: the IR's arrays are its own, read-only
    out.setflags(write=False)
    return out


def _hw_pair(ctx: OnnxContext, what: str, value: Any, default: int, rule: str) -> int:
    """A per-spatial-axis attribute (strides, dilations, kernel_shape) as one int."""
    if value is None:
        return default
    return _square(ctx, what, list(value), rule)


def _pads(ctx: OnnxContext, rule: str) -> int:
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    if auto_pad not in ("NOTSET", "VALID"):
        raise ctx.fail(f"auto_pad={auto_pad!r} is not supported (give explicit pads)")
    pads = ctx.attr("pads")
    if auto_pad == "VALID" or pads is None:
        return 0
    if len(set(pads)) != 1:
        raise ctx.fail(f"pads={tuple(pads)} is not supported ({rule})")
    return int(pads[0])


def _no_dilation(ctx: OnnxContext) -> None:
    dil = ctx.attr("dilations")
    if dil is not None and any(d != 1 for d in dil):
        raise ctx.fail(f"dilations={tuple(dil)} is not supported (dilation must be 1)")


# --- Conv, Gemm, MatMul (+ Add), BatchNormalization ---------------------------------------


@_handles("Conv")
def _conv(ctx: OnnxContext) -> ir.Node:
    c, h, w = ctx.chw()
    weight = ctx.const(1, "weight")
    assert weight is not None
    if weight.ndim != 4:
        raise ctx.fail(f"weight of shape {weight.shape} is not a 2-D convolution")
    cout, cin, kh, kw = weight.shape
    if ctx.attr("group", 1) != 1:
        raise ctx.fail(f"group={ctx.attr('group')} is not supported (groups must be 1)")
    _no_dilation(ctx)
    k = _square(ctx, "kernel_shape", [kh, kw], "kernels must be square")
    s = _hw_pair(ctx, "strides", ctx.attr("strides"), 1, "the stride must be the same in H and W")
    p = _pads(ctx, "padding must be the same on every side")
    if cin != c:
        raise ctx.fail(f"expects {cin} input channels, but its input is {ctx.in_type}")
    bias = ctx.const(2, "bias", required=False)
    ho, wo = _out_size(ctx, h, w, k, s, p)
    return ir.Conv2d(
        name=ctx.name,
        in_type=ctx.in_type,
        out_type=TensorType((cout, ho, wo)),
        weight=_f32(weight),
        bias=_f32(np.zeros(cout) if bias is None else bias),
        kernel=k,
        stride=s,
        padding=p,
    )


def _linear(ctx: OnnxContext, weight: np.ndarray, bias: np.ndarray | None) -> ir.Node:
    """``weight`` in PyTorch's [N, K] layout."""
    if len(ctx.in_type.shape) != 1:
        raise ctx.fail(
            f"needs a flattened input (a Flatten or Reshape before it), but its input is "
            f"{ctx.in_type}"
        )
    n, k = weight.shape
    if ctx.in_type.shape[0] != k:
        raise ctx.fail(f"expects {k} inputs, but its input is {ctx.in_type}")
    if bias is not None and bias.size not in (1, n):
        raise ctx.fail(f"bias of shape {bias.shape} does not match {n} outputs")
    b = np.zeros(n) if bias is None else np.broadcast_to(bias.reshape(-1), (n,))
    return ir.Linear(
        name=ctx.name,
        in_type=ctx.in_type,
        out_type=TensorType((n,)),
        weight=_f32(weight),
        bias=_f32(b),
    )


@_handles("Gemm")
def _gemm(ctx: OnnxContext) -> ir.Node:
    if ctx.consts[0] is not None:
        raise ctx.fail("the data must be the first operand (A), the weight the second (B)")
    for key in ("alpha", "beta"):
        if float(ctx.attr(key, 1.0)) != 1.0:
            raise ctx.fail(f"{key}={ctx.attr(key)} is not supported (only 1.0)")
    if ctx.attr("transA", 0):
        raise ctx.fail("transA=1 is not supported (the data must not be transposed)")
    b = ctx.const(1, "weight (B)")
    assert b is not None
    if b.ndim != 2:
        raise ctx.fail(f"weight (B) of shape {b.shape} is not a matrix")
    weight = b if ctx.attr("transB", 0) else b.T
    return _linear(ctx, weight, ctx.const(2, "bias (C)", required=False))


@_handles("MatMul")
def _matmul(ctx: OnnxContext) -> ir.Node:
    if ctx.consts[0] is not None:
        raise ctx.fail("the data must be the first operand, the weight the second")
    b = ctx.const(1, "weight")
    assert b is not None
    if b.ndim != 2:
        raise ctx.fail(f"weight of shape {b.shape} is not a matrix")
    return _linear(ctx, b.T, None)  # a following Add of a constant becomes its bias


@_handles("BatchNormalization")
def _batchnorm(ctx: OnnxContext) -> ir.Node:
    c, _, _ = ctx.chw()
    if ctx.attr("training_mode", 0) or len(ctx.node.output) > 1:
        raise ctx.fail("training_mode (batch statistics) is not supported, only inference")
    gamma, beta, mean, var = (ctx.const(i, what) for i, what in enumerate(
        ("scale", "bias", "mean", "var"), start=1
    ))  # fmt: skip
    for what, a in (("scale", gamma), ("bias", beta), ("mean", mean), ("var", var)):
        assert a is not None
        if a.shape != (c,):
            raise ctx.fail(f"{what} of shape {a.shape} does not match {c} channels")
    return ir.BatchNorm2d(
        name=ctx.name,
        in_type=ctx.in_type,
        out_type=ctx.in_type,
        gamma=_f32(gamma),
        beta=_f32(beta),
        mean=_f32(mean),
        var=_f32(var),
        eps=float(ctx.attr("epsilon", 1e-5)),
    )


# --- Relu, pools, Flatten/Reshape, no-ops -------------------------------------------------


@_handles("Relu")
def _relu(ctx: OnnxContext) -> ir.Node:
    return ir.ReLU(name=ctx.name, in_type=ctx.in_type, out_type=ctx.in_type)


def _pool_common(ctx: OnnxContext, cls: type) -> ir.Node:
    kernel = ctx.attr("kernel_shape")
    if kernel is None or len(kernel) != 2:
        raise ctx.fail(f"kernel_shape={kernel!r} is not supported (a 2-D pooling window)")
    stride = ctx.attr("strides")
    padding = _pads(ctx, "pooling padding must be 0")
    return _pool(ctx, cls, list(kernel), list(stride) if stride else None, padding,
                 bool(ctx.attr("ceil_mode", 0)))  # fmt: skip


@_handles("MaxPool")
def _max_pool(ctx: OnnxContext) -> ir.Node:
    if len(ctx.node.output) > 1 and ctx.node.output[1]:
        raise ctx.fail("the Indices output is not supported")
    _no_dilation(ctx)
    if ctx.attr("storage_order", 0):
        raise ctx.fail("storage_order=1 is not supported")
    return _pool_common(ctx, ir.MaxPool2d)


@_handles("AveragePool")
def _avg_pool(ctx: OnnxContext) -> ir.Node:
    _no_dilation(ctx)
    # count_include_pad only matters with padding, which _pool_common rejects.
    node = _pool_common(ctx, ir.AvgPool2d)
    k = node.kernel  # type: ignore[attr-defined]
    if k & (k - 1):
        raise ctx.fail(
            f"kernel_shape={k} is not supported (AveragePool needs kernel*kernel = {k * k} to "
            f"be a power of two)"
        )
    return node


def _flatten_node(ctx: OnnxContext) -> ir.Node | None:
    if len(ctx.in_type.shape) == 1:
        return None
    n = int(np.prod(ctx.in_type.shape))
    return ir.Flatten(name=ctx.name, in_type=ctx.in_type, out_type=TensorType((n,)))


@_handles("Flatten")
def _flatten(ctx: OnnxContext) -> ir.Node | None:
    axis = ctx.attr("axis", 1)
    if axis != 1:
        raise ctx.fail(f"axis={axis} is not supported (only flattening all but the batch: axis=1)")
    return _flatten_node(ctx)


@_handles("Reshape")
def _reshape(ctx: OnnxContext) -> ir.Node | None:
    shape = ctx.const(1, "shape")
    assert shape is not None
    shape_t = tuple(int(d) for d in shape.reshape(-1))
    n = int(np.prod(ctx.in_type.shape))
    if len(shape_t) == 2:
        # batch: 1 (a fixed-batch export), -1, or 0 = "copy the input's" unless allowzero
        b, k = shape_t
        batch_ok = b in (1, -1) or (b == 0 and not ctx.attr("allowzero", 0))
        if batch_ok and (k == n or (k == -1 and b != -1)):
            return _flatten_node(ctx)
    raise ctx.fail(f"reshape to {shape_t} is not supported (only flattening: (N, -1) or (N, {n}))")


@_handles("Identity", "Dropout")
def _no_op(ctx: OnnxContext) -> None:
    if ctx.node.op_type == "Dropout" and len(ctx.node.input) > 2 and ctx.node.input[2]:
        mode = ctx.const(2, "training_mode")
        if mode is not None and bool(np.asarray(mode).reshape(-1)[0]):
            raise ctx.fail("training_mode=True: dropout that stays active is not supported")
    return None


# --- the walk -----------------------------------------------------------------------------


def _load(path: Path):
    import onnx

    if not path.is_file():
        raise UnsupportedLayerError(f"{path}: ONNX file not found")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as e:  # DecodeError, ValidationError, ...: one line naming the file
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UnsupportedLayerError(f"{path}: not a valid ONNX model ({reason})") from None
    return model


def _attrs(node) -> dict[str, Any]:
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v  # STRING attributes are bytes
    return out


def _in_shape(graph, consts: dict[str, np.ndarray], path: Path) -> tuple[str, tuple[int, ...]]:
    inputs = [i for i in graph.input if i.name not in consts]
    if len(inputs) != 1:
        raise UnsupportedLayerError(
            f"{path}: the model takes {len(inputs)} inputs; exactly one input tensor is supported"
        )
    inp = inputs[0]
    dims = inp.type.tensor_type.shape.dim
    shape = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if len(shape) not in (2, 4) or any(d is None or d < 1 for d in shape[1:]):
        raise UnsupportedLayerError(
            f"{path}: input '{inp.name}' has shape {shape}; expected (N, C, H, W) or (N, K) with "
            f"static C, H, W / K"
        )
    return inp.name, tuple(int(d) for d in shape[1:])


def _node_name(node, i: int, seen: set[str]) -> str:
    """The IR name: the ONNX node's name as an identifier ("/conv1/Conv" -> "conv1_Conv"; it
    becomes artifact keys and report rows), unique, or op_index for an unnamed node."""
    base = re.sub(r"[^0-9A-Za-z_]+", "_", node.name).strip("_") or f"{node.op_type.lower()}_{i}"
    name, n = base, 1
    while name in seen:
        name, n = f"{base}_{n}", n + 1
    seen.add(name)
    return name


def _fold_bias_add(node, ctx_name: str, prev: ir.Node, const: np.ndarray) -> ir.Node:
    """An Add of a constant right after a MatMul's Linear (or a bias-less Conv) is its bias."""
    if isinstance(prev, ir.Linear) and const.size in (1, prev.bias.size):
        b = prev.bias + np.broadcast_to(const.reshape(-1), prev.bias.shape)
        return ir.Linear(
            name=prev.name, in_type=prev.in_type, out_type=prev.out_type,
            weight=prev.weight, bias=_f32(b),
        )  # fmt: skip
    if isinstance(prev, ir.Conv2d):
        cout = prev.bias.size
        if const.size in (1, cout) and const.reshape(-1).size == const.size and (
            const.ndim <= 1 or const.shape[-2:] in ((1, 1), ())
        ):
            b = prev.bias + np.broadcast_to(const.reshape(-1), (cout,))
            return replace(prev, bias=_f32(b))
    raise UnsupportedLayerError(
        f"node '{ctx_name}' (Add): only adding a constant bias right after a MatMul/Gemm/Conv "
        f"is supported; it follows "
        f"{prev.op} '{prev.name}' with a constant of shape {const.shape}"
    )


def _const_add(desc: str, nname: str, node, ops, nodes: list[ir.Node], consts) -> str:
    """An Add of a constant: the bias of the MatMul/Gemm/Conv producing the other operand
    (replaced in ``nodes``); returns that node's IR name (the Add's output is that tensor)."""
    tensors = [x for x in node.input if x not in consts]
    known = [consts[x] for x in node.input if x in consts]
    if len(node.input) != 2 or len(tensors) != 1:
        raise UnsupportedLayerError(f"{desc}: unsupported Add form")
    src = ops[tensors[0]][0]
    k = next((j for j, n in enumerate(nodes) if n.name == src), None)
    if k is None:
        raise UnsupportedLayerError(
            f"{desc}: adds a constant to the model input (only a bias after a MatMul/Gemm/Conv)"
        )
    folded = _fold_bias_add(node, node.name or nname, nodes[k], known[0])
    nodes[k] = replace(folded, inputs=nodes[k].inputs)
    return src


def _residual_add(desc: str, nname: str, node, ops) -> ir.Node:
    (na, ta), (nb, tb) = ops[node.input[0]], ops[node.input[1]]
    if ta.shape != tb.shape:
        raise UnsupportedLayerError(
            f"{desc}: adds {ta} and {tb}: broadcasting is not supported (both operands must "
            f"have the same shape)"
        )
    return ir.Add(name=nname, in_type=ta, out_type=ta, inputs=(na, nb))


def _concat(desc: str, nname: str, node, ops, attrs: dict) -> ir.Node:
    parts = [ops[x] for x in node.input]
    types = [t for _, t in parts]
    if any(len(t.shape) != 3 for t in types):
        raise UnsupportedLayerError(
            f"{desc}: concatenates {', '.join(map(str, types))}: only CxHxW feature maps"
        )
    axis = attrs.get("axis")
    if axis not in (1, -3):
        raise UnsupportedLayerError(
            f"{desc}: axis={axis} is not supported (only the channel axis, axis=1)"
        )
    if len(parts) < 2 or len({t.shape[1:] for t in types}) != 1:
        raise UnsupportedLayerError(
            f"{desc}: concatenates {', '.join(map(str, types))}: needs two or more inputs "
            f"with the same height and width"
        )
    out = TensorType((sum(t.shape[0] for t in types), *types[0].shape[1:]))
    return ir.Concat(
        name=nname, in_type=types[0], out_type=out,
        inputs=tuple(n for n, _ in parts), in_types=tuple(types),
    )  # fmt: skip


def _walk(model, path: Path, name: str) -> tuple[Graph, str]:
    """The ONNX graph (topologically sorted) as a DAG of IR nodes: ``ops`` maps every
    ONNX tensor computed by the model to (its IR tensor name, its type)."""
    from onnx import numpy_helper

    graph = model.graph
    consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    in_name, in_shape = _in_shape(graph, consts, path)
    in_type = TensorType(in_shape)
    ops: dict[str, tuple[str, TensorType]] = {in_name: (ir.INPUT, in_type)}
    nodes: list[ir.Node] = []
    seen: set[str] = set()
    for i, node in enumerate(graph.node):
        nname = _node_name(node, i, seen)
        desc = f"node '{node.name or nname}' ({node.op_type})"
        if node.domain not in ("", "ai.onnx"):
            raise UnsupportedLayerError(f"{desc}: op domain {node.domain!r} is not supported")
        if node.op_type == "Constant":
            attrs = _attrs(node)
            if "value" not in attrs:
                raise UnsupportedLayerError(
                    f"{desc}: only tensor constants ('value') are supported"
                )
            consts[node.output[0]] = numpy_helper.to_array(attrs["value"])
            continue
        tensors = [x for x in node.input if x and x not in consts]
        if node.op_type == "Identity" and not tensors:  # a constant under another name
            consts[node.output[0]] = consts[node.input[0]]
            continue
        for t in tensors:
            if t not in ops:
                raise UnsupportedLayerError(f"{desc}: consumes '{t}', which nothing computes")
        out = node.output[0]
        if node.op_type == "Add" and len(tensors) == 2:
            ir_node = _residual_add(desc, nname, node, ops)
        elif node.op_type == "Add":
            ops[out] = (_const_add(desc, nname, node, ops, nodes, consts), ops[tensors[0]][1])
            continue
        elif node.op_type == "Concat":
            ir_node = _concat(desc, nname, node, ops, _attrs(node))
        else:
            fn = _HANDLERS.get(node.op_type)
            if fn is None:
                raise UnsupportedLayerError(
                    f"{desc}: unsupported op (supported ONNX ops: "
                    f"{', '.join(supported_onnx_ops() + ['Add', 'Concat', 'Constant'])})"
                )
            if len(tensors) != 1:
                got = ", ".join(f"'{t}'" for t in tensors) or "no tensor"
                raise UnsupportedLayerError(
                    f"{desc}: consumes {got}; this op takes exactly one computed tensor"
                )
            src_name, src_type = ops[tensors[0]]
            ctx = OnnxContext(
                node=node,
                name=nname,
                in_type=src_type,
                consts=[consts.get(x) if x else None for x in node.input],
                attrs=_attrs(node),
            )
            ir_node = fn(ctx)
            if ir_node is None:
                ops[out] = ops[tensors[0]]  # a no-op: the same tensor
                continue
            ir_node = replace(ir_node, inputs=(src_name,))
        nodes.append(ir_node)
        ops[out] = (ir_node.name, ir_node.out_type)
    _check_outputs(graph, ops, nodes, path)
    return Graph(name=name, in_type=in_type, nodes=ir.normalize_inputs(nodes)), in_name


def _check_outputs(graph, ops: dict, nodes: list[ir.Node], path: Path) -> None:
    """One output, the last op's; no op whose output nothing uses."""
    outs = [o.name for o in graph.output]
    last = nodes[-1].name if nodes else ir.INPUT
    if len(outs) != 1 or ops.get(outs[0], (None,))[0] != last:
        raise UnsupportedLayerError(
            f"{path}: the model must return the last op's output ('{last}') as its single "
            f"output, but returns {outs}"
        )
    used = {i for n in nodes for i in n.inputs}
    for n in nodes[:-1]:
        if n.name not in used:
            raise UnsupportedLayerError(
                f"node '{n.name}' ({n.op}): its output is never used (dead branch)"
            )


def verify_onnx(
    graph: Graph, path: Path, batch: int = 2, seed: int = _VERIFY_SEED, rtol: float = 1e-4
) -> float:
    """Run ``graph`` (run_float) and the ONNX model (onnxruntime) on the same seeded inputs in
    [0, 1); raise FrontendError unless they agree to ``rtol`` of the output range. Returns the
    max abs difference."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # the machine's cores are shared
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    rng = np.random.default_rng(seed)
    x = rng.random((batch, *graph.in_type.shape), dtype=np.float32)
    # One image per call: an exported graph often has a fixed batch of 1.
    want = np.concatenate([sess.run(None, {inp.name: xi[None]})[0] for xi in x]).astype(np.float64)
    got = np.stack([run_float(graph, xi)[-1][1] for xi in x]).astype(np.float64)
    if got.shape != want.shape:
        raise FrontendError(
            f"graph {graph.name!r}: output shape {got.shape[1:]} but onnxruntime gives "
            f"{want.shape[1:]}"
        )
    diff = float(np.max(np.abs(got - want)))
    tol = rtol * max(1.0, float(np.max(np.abs(want))))
    if not diff <= tol:
        raise FrontendError(
            f"graph {graph.name!r} does not reproduce {path} under onnxruntime: max abs "
            f"difference {diff:.3g} > {tol:.3g} on seeded random inputs (an importer bug)"
        )
    return diff


def import_onnx(
    path: str | Path, name: str | None = None, verify: bool = True
) -> tuple[Graph, tuple[int, ...]]:
    """Import the ONNX model at ``path`` as a float IR Graph; returns ``(graph, in_shape)``
    with ``in_shape`` one input without the batch dimension ((C, H, W) or (K,)). The graph is
    named ``name`` (default: the file's stem). With ``verify`` the IR is checked against
    onnxruntime on random inputs."""
    path = Path(path)
    model = _load(path)
    graph, _ = _walk(model, path, name or path.stem)
    graph = fold_batchnorm(graph)
    check_graph(graph)
    if verify:
        verify_onnx(graph, path)
    return graph, graph.in_type.shape
