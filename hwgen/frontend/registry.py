"""The per-op handler registry: fx call target -> function building one IR node.

A key is an ``nn.Module`` class (``call_module``; matched by exact type, so a user subclass
with its own forward() is never mistaken for the torch layer), a function object
(``call_function``: ``F.relu``, ``torch.flatten``, ...) or a :class:`Method` (``call_method``:
``x.relu()``, ``x.view(...)``). A handler returns an IR node, or ``None`` for an inference
no-op (Dropout, Identity), and raises via :meth:`OpContext.fail` for anything unsupported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch.fx as fx
from torch import nn
from torch.fx.node import _get_qualified_name

from hwgen.ir import Node, TensorType

from .errors import UnsupportedLayerError

__all__ = [
    "BATCH",
    "HANDLERS",
    "MULTI_INPUT",
    "Handler",
    "Method",
    "OpContext",
    "describe",
    "handler",
    "lookup",
    "supported_layers",
]


@dataclass(frozen=True)
class Method:
    """Registry key for a ``call_method`` node, e.g. ``Method("relu")`` for ``x.relu()``."""

    name: str


class _Batch:
    """The (symbolic) batch size, as produced by ``x.size(0)`` or ``x.shape[0]``."""

    def __repr__(self) -> str:
        return "BATCH"


BATCH = _Batch()


def target_name(target: Any) -> str:
    if isinstance(target, str):
        return target
    try:
        name = _get_qualified_name(target)
    except Exception:  # any odd callable: fall back to its repr
        name = repr(target)
    return name.replace("_operator.", "operator.")


def describe(node: fx.Node, module: nn.Module | None = None) -> str:
    """``node 'conv1' (Conv2d)`` / ``node 'add' (call_function operator.add)``."""
    if node.op == "call_module" and module is not None:
        what = type(module).__name__
    elif node.op in ("placeholder", "output"):
        what = node.op
    elif node.op == "call_module":
        what = f"call_module {node.target}"
    else:
        what = f"{node.op} {target_name(node.target)}"
    return f"node '{node.name}' ({what})"


@dataclass
class OpContext:
    """What a handler sees: the fx node, its module (call_module only), the type of the one
    tensor it consumes and the values of shape scalars (``x.size(0)``) it may use."""

    node: fx.Node
    module: nn.Module | None
    in_type: TensorType
    scalars: Mapping[fx.Node, Any]
    # multi-input handlers (Add, Concat): every tensor-valued fx node's type and IR name
    types: Mapping[fx.Node, TensorType] | None = None
    names: Mapping[fx.Node, str] | None = None

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def desc(self) -> str:
        return describe(self.node, self.module)

    def fail(self, reason: str) -> UnsupportedLayerError:
        return UnsupportedLayerError(f"{self.desc}: {reason}")

    def arg(self, pos: int, key: str, default: Any = None) -> Any:
        """Argument ``pos`` (the tensor input is position 0) or keyword ``key``, resolving
        shape scalars to their values; a tensor-valued argument is rejected."""
        if pos < len(self.node.args):
            value = self.node.args[pos]
        else:
            value = self.node.kwargs.get(key, default)
        return self.resolve(value, key)

    def resolve(self, value: Any, what: str) -> Any:
        if isinstance(value, fx.Node):
            if value in self.scalars:
                return self.scalars[value]
            raise self.fail(f"argument {what!r} depends on a run-time tensor value")
        if isinstance(value, (tuple, list)):
            return type(value)(self.resolve(v, what) for v in value)
        return value

    def chw(self) -> tuple[int, int, int]:
        """The input's (C, H, W); a flattened input is an error."""
        if len(self.in_type.shape) != 3:
            raise self.fail(f"needs a CxHxW feature map input, but its input is {self.in_type}")
        c, h, w = self.in_type.shape
        return c, h, w


Handler = Callable[[OpContext], Node | None]
HANDLERS: dict[Any, Handler] = {}
MULTI_INPUT: set[Handler] = set()  # handlers that consume several tensors (set their inputs)


def handler(*keys: Any, multi: bool = False) -> Callable[[Handler], Handler]:
    """Register ``fn`` for every key (module class, function or :class:`Method`). A
    ``multi`` handler reads its tensor operands itself (``ctx.types``/``ctx.names``) and
    returns a node with ``inputs`` set; any other handler consumes exactly one tensor."""

    def register(fn: Handler) -> Handler:
        for key in keys:
            if key in HANDLERS:
                raise RuntimeError(f"duplicate front-end handler for {key!r}")
            HANDLERS[key] = fn
        if multi:
            MULTI_INPUT.add(fn)
        return fn

    return register


def lookup(node: fx.Node, module: nn.Module | None) -> Handler | None:
    if node.op == "call_module":
        return HANDLERS.get(type(module))
    if node.op == "call_method":
        return HANDLERS.get(Method(str(node.target)))
    if node.op == "call_function":
        try:
            return HANDLERS.get(node.target)
        except TypeError:  # an unhashable target cannot be registered
            return None
    return None


def supported_layers() -> list[str]:
    return sorted({k.__name__ for k in HANDLERS if isinstance(k, type)})
