"""Per-op handlers: each checks every option of one torch op and builds its IR node.

Options the hardware flow cannot express are rejected here, by name, rather than ignored:
an ignored option (a dilation, a ceil_mode, a divisor_override) would mean wrong numbers.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from hwgen import ir
from hwgen.ir import TensorType

from .registry import BATCH, Method, OpContext, handler

__all__: list[str] = []  # importing this module registers the handlers


def _array(t: torch.Tensor | None, n: int | None = None) -> np.ndarray:
    """float32 copy, read-only: the IR dataclasses are frozen, so are their arrays."""
    a = np.zeros(n, np.float32) if t is None else t.detach().cpu().numpy().astype(np.float32)
    a.setflags(write=False)
    return a


def _square(ctx: OpContext, what: str, value: Any, rule: str) -> int:
    """An int, or a pair of equal ints (symmetric/square); anything else is an error."""
    if isinstance(value, (tuple, list)):
        if len(value) == 1:
            value = value[0]
        elif len(value) == 2 and value[0] == value[1]:
            value = value[0]
        else:
            raise ctx.fail(f"{what}={tuple(value)} is not supported ({rule})")
    if not isinstance(value, int) or isinstance(value, bool):
        raise ctx.fail(f"{what}={value!r} is not supported ({rule})")
    return value


def _out_size(ctx: OpContext, h: int, w: int, k: int, s: int, p: int) -> tuple[int, int]:
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    if ho < 1 or wo < 1:
        raise ctx.fail(f"a {k}x{k} window does not fit its {h}x{w} input (padding {p})")
    return ho, wo


# --- Conv2d, Linear, BatchNorm2d ----------------------------------------------------------


@handler(nn.Conv2d)
def conv2d(ctx: OpContext) -> ir.Node:
    m = ctx.module
    assert isinstance(m, nn.Conv2d)
    c, h, w = ctx.chw()
    if m.groups != 1:
        raise ctx.fail(f"groups={m.groups} is not supported (groups must be 1)")
    if tuple(m.dilation) != (1, 1):
        raise ctx.fail(f"dilation={tuple(m.dilation)} is not supported (dilation must be 1)")
    if m.padding_mode != "zeros":
        raise ctx.fail(f"padding_mode={m.padding_mode!r} is not supported (only 'zeros')")
    k = _square(ctx, "kernel_size", tuple(m.kernel_size), "kernels must be square")
    s = _square(ctx, "stride", tuple(m.stride), "the stride must be the same in H and W")
    if m.padding == "valid":
        p = 0
    elif m.padding == "same":
        if k % 2 == 0:  # torch pads an even kernel asymmetrically
            raise ctx.fail(f"padding='same' with an even kernel ({k}) is asymmetric")
        p = k // 2
    else:
        p = _square(ctx, "padding", m.padding, "padding must be the same on every side")
    if m.in_channels != c:
        raise ctx.fail(f"expects {m.in_channels} input channels, but its input is {ctx.in_type}")
    ho, wo = _out_size(ctx, h, w, k, s, p)
    return ir.Conv2d(
        name=ctx.name,
        in_type=ctx.in_type,
        out_type=TensorType((m.out_channels, ho, wo)),
        weight=_array(m.weight),
        bias=_array(m.bias, m.out_channels),  # bias=False becomes an explicit zero bias
        kernel=k,
        stride=s,
        padding=p,
    )


@handler(nn.Linear)
def linear(ctx: OpContext) -> ir.Node:
    m = ctx.module
    assert isinstance(m, nn.Linear)
    if len(ctx.in_type.shape) != 1:
        raise ctx.fail(
            f"needs a flattened input (add nn.Flatten or torch.flatten(x, 1) before it), "
            f"but its input is {ctx.in_type}"
        )
    if ctx.in_type.shape[0] != m.in_features:
        raise ctx.fail(f"expects {m.in_features} inputs, but its input is {ctx.in_type}")
    return ir.Linear(
        name=ctx.name,
        in_type=ctx.in_type,
        out_type=TensorType((m.out_features,)),
        weight=_array(m.weight),
        bias=_array(m.bias, m.out_features),
    )


@handler(nn.BatchNorm2d)
def batchnorm2d(ctx: OpContext) -> ir.Node:
    """Kept as a node only until passes.fold_batchnorm merges it into the conv before it."""
    m = ctx.module
    assert isinstance(m, nn.BatchNorm2d)
    c, _, _ = ctx.chw()
    if m.num_features != c:
        raise ctx.fail(f"expects {m.num_features} channels, but its input is {ctx.in_type}")
    if m.running_mean is None or m.running_var is None:
        raise ctx.fail("track_running_stats=False (batch statistics at inference) is not supported")
    return ir.BatchNorm2d(
        name=ctx.name,
        in_type=ctx.in_type,
        out_type=ctx.in_type,
        gamma=_array(m.weight) if m.affine else _array(None, c) + 1,
        beta=_array(m.bias, c),
        mean=_array(m.running_mean),
        var=_array(m.running_var),
        eps=float(m.eps),
    )


# --- ReLU ---------------------------------------------------------------------------------


@handler(nn.ReLU, F.relu, torch.relu, torch.relu_, Method("relu"), Method("relu_"))
def relu(ctx: OpContext) -> ir.Node:
    # inplace=True changes nothing here: the straight-line check already guarantees that
    # nothing else reads the tensor being overwritten.
    return ir.ReLU(name=ctx.name, in_type=ctx.in_type, out_type=ctx.in_type)


# --- pooling ------------------------------------------------------------------------------


def _pool(
    ctx: OpContext,
    cls: type[ir.MaxPool2d] | type[ir.AvgPool2d],
    kernel: Any,
    stride: Any,
    padding: Any,
    ceil_mode: bool,
) -> ir.Node:
    _, h, w = ctx.chw()
    k = _square(ctx, "kernel_size", kernel, "pooling windows must be square")
    # stride None (or an empty tuple, as F.*_pool2d default it) means stride = kernel.
    s = k if stride is None or stride == () or stride == [] else stride
    s = _square(ctx, "stride", s, "the stride must be the same in H and W")
    if _square(ctx, "padding", padding, "pooling padding must be 0") != 0:
        raise ctx.fail(f"padding={padding!r} is not supported (pooling padding must be 0)")
    if ceil_mode:
        raise ctx.fail("ceil_mode=True is not supported (output sizes round down)")
    ho, wo = _out_size(ctx, h, w, k, s, 0)
    c = ctx.in_type.shape[0]
    return cls(
        name=ctx.name, in_type=ctx.in_type, out_type=TensorType((c, ho, wo)), kernel=k, stride=s
    )


def _max_pool(
    ctx: OpContext,
    kernel: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    ceil_mode: bool,
    return_indices: bool,
) -> ir.Node:
    if _square(ctx, "dilation", dilation, "dilation must be 1") != 1:
        raise ctx.fail(f"dilation={dilation!r} is not supported (dilation must be 1)")
    if return_indices:
        raise ctx.fail("return_indices=True is not supported")
    return _pool(ctx, ir.MaxPool2d, kernel, stride, padding, ceil_mode)


def _avg_pool(
    ctx: OpContext, kernel: Any, stride: Any, padding: Any, ceil_mode: bool, divisor_override: Any
) -> ir.Node:
    if divisor_override is not None:
        raise ctx.fail(f"divisor_override={divisor_override!r} is not supported")
    node = _pool(ctx, ir.AvgPool2d, kernel, stride, padding, ceil_mode)
    assert isinstance(node, ir.AvgPool2d)
    k = node.kernel
    if k & (k - 1):  # the integer divide by k*k is a rounding shift: k*k must be 2**n
        raise ctx.fail(
            f"kernel_size={k} is not supported (AvgPool2d needs kernel*kernel = {k * k} to be "
            f"a power of two)"
        )
    return node


@handler(nn.MaxPool2d)
def max_pool_module(ctx: OpContext) -> ir.Node:
    m = ctx.module
    assert isinstance(m, nn.MaxPool2d)
    return _max_pool(
        ctx, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode, m.return_indices
    )


@handler(F.max_pool2d)
def max_pool_function(ctx: OpContext) -> ir.Node:
    return _max_pool(
        ctx,
        ctx.arg(1, "kernel_size"),
        ctx.arg(2, "stride"),
        ctx.arg(3, "padding", 0),
        ctx.arg(4, "dilation", 1),
        ctx.arg(5, "ceil_mode", False),
        ctx.arg(6, "return_indices", False),
    )


@handler(nn.AvgPool2d)
def avg_pool_module(ctx: OpContext) -> ir.Node:
    m = ctx.module
    assert isinstance(m, nn.AvgPool2d)
    # count_include_pad only matters with padding, which is rejected.
    return _avg_pool(ctx, m.kernel_size, m.stride, m.padding, m.ceil_mode, m.divisor_override)


@handler(F.avg_pool2d)
def avg_pool_function(ctx: OpContext) -> ir.Node:
    return _avg_pool(
        ctx,
        ctx.arg(1, "kernel_size"),
        ctx.arg(2, "stride"),
        ctx.arg(3, "padding", 0),
        ctx.arg(4, "ceil_mode", False),
        ctx.arg(6, "divisor_override"),
    )


# --- Flatten and view/reshape -------------------------------------------------------------


def _flatten(ctx: OpContext) -> ir.Node | None:
    if len(ctx.in_type.shape) == 1:
        return None  # already flat: a no-op
    n = int(np.prod(ctx.in_type.shape))
    return ir.Flatten(name=ctx.name, in_type=ctx.in_type, out_type=TensorType((n,)))


def _flatten_dims(ctx: OpContext, start: Any, end: Any) -> ir.Node | None:
    ndim = len(ctx.in_type.shape) + 1  # with the batch dimension
    if start != 1:
        raise ctx.fail(
            f"start_dim={start} is not supported (only flattening all but the batch "
            f"dimension: start_dim=1)"
        )
    if end not in (-1, ndim - 1):
        raise ctx.fail(f"end_dim={end} is not supported (only end_dim=-1)")
    return _flatten(ctx)


@handler(nn.Flatten)
def flatten_module(ctx: OpContext) -> ir.Node | None:
    m = ctx.module
    assert isinstance(m, nn.Flatten)
    return _flatten_dims(ctx, m.start_dim, m.end_dim)


@handler(torch.flatten, Method("flatten"))
def flatten_call(ctx: OpContext) -> ir.Node | None:
    return _flatten_dims(ctx, ctx.arg(1, "start_dim", 0), ctx.arg(2, "end_dim", -1))


@handler(Method("view"), Method("reshape"), torch.reshape)
def view(ctx: OpContext) -> ir.Node | None:
    """Only the flattening idioms: ``x.view(x.size(0), -1)``, ``x.view(-1, C*H*W)`` and the
    same with reshape (``x.shape[0]`` works as well as ``x.size(0)``)."""
    args = ctx.node.args[1:] or (ctx.node.kwargs.get("shape", ctx.node.kwargs.get("size")),)
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    shape = tuple(ctx.resolve(a, "shape") for a in args)
    n = int(np.prod(ctx.in_type.shape))
    if len(shape) == 2 and (
        (shape[0] is BATCH and shape[1] in (-1, n)) or (shape[0] == -1 and shape[1] == n)
    ):
        return _flatten(ctx)
    shown = tuple("N" if d is BATCH else d for d in shape)
    raise ctx.fail(
        f"reshape to {shown} is not supported (only flattening: (x.size(0), -1) or (-1, {n}))"
    )


# --- graphs beyond a chain: residual Add, channel Concat --------------------------------


def _operand(ctx: OpContext, value: Any, what: str) -> tuple[str, TensorType]:
    """A tensor operand of a multi-input op: its IR name and type (constants are refused)."""
    if isinstance(value, fx.Node) and value in ctx.types:
        return ctx.names[value], ctx.types[value]
    raise ctx.fail(
        f"{what} is {value!r}, not a tensor computed by the model (adding or concatenating "
        f"constants is not supported)"
    )


@handler(operator.add, operator.iadd, torch.add, Method("add"), Method("add_"), multi=True)
def add(ctx: OpContext) -> ir.Node:
    args = ctx.node.args
    other = args[1] if len(args) > 1 else ctx.node.kwargs.get("other")
    alpha = ctx.resolve(ctx.node.kwargs.get("alpha", args[2] if len(args) > 2 else 1), "alpha")
    if alpha != 1:
        raise ctx.fail(f"alpha={alpha} is not supported (only x + y)")
    na, ta = _operand(ctx, args[0], "the first operand")
    nb, tb = _operand(ctx, other, "the second operand")
    if ta.shape != tb.shape:
        raise ctx.fail(
            f"adds {ta} and {tb}: broadcasting is not supported (both operands must have "
            f"the same shape)"
        )
    return ir.Add(name=ctx.name, in_type=ta, out_type=ta, inputs=(na, nb))


@handler(torch.cat, torch.concat, multi=True)
def cat(ctx: OpContext) -> ir.Node:
    parts = ctx.node.args[0] if ctx.node.args else ctx.node.kwargs.get("tensors")
    dim = ctx.resolve(
        ctx.node.args[1] if len(ctx.node.args) > 1 else ctx.node.kwargs.get("dim", 0), "dim"
    )
    if not isinstance(parts, (tuple, list)) or len(parts) < 2:
        raise ctx.fail("needs a list of at least two tensors")
    ops = [_operand(ctx, p, f"input {i}") for i, p in enumerate(parts)]
    types = [t for _, t in ops]
    if any(len(t.shape) != 3 for t in types):
        raise ctx.fail(f"concatenates {', '.join(map(str, types))}: only CxHxW feature maps")
    if dim not in (1, -3):
        raise ctx.fail(f"dim={dim} is not supported (only the channel axis, dim=1)")
    if len({t.shape[1:] for t in types}) != 1:
        raise ctx.fail(
            f"concatenates {', '.join(map(str, types))}: the height and width must match"
        )
    c = sum(t.shape[0] for t in types)
    out = TensorType((c, *types[0].shape[1:]))
    return ir.Concat(
        name=ctx.name, in_type=types[0], out_type=out,
        inputs=tuple(n for n, _ in ops), in_types=tuple(types),
    )  # fmt: skip


# --- inference no-ops ---------------------------------------------------------------------


@handler(nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d)
def no_op_module(ctx: OpContext) -> None:
    return None  # identity at inference (the import traces the model in eval mode)


@handler(F.dropout, F.dropout1d, F.dropout2d)
def dropout_function(ctx: OpContext) -> None:
    if ctx.arg(2, "training", True):
        raise ctx.fail("training=True: dropout that stays active at inference is not supported")
    return None
