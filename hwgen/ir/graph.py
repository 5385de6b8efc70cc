"""Float layer IR: a DAG of typed nodes (frozen dataclasses) in topological order.

Every node names the tensors it consumes in ``inputs`` (node names, or ``INPUT`` for the
graph input); an empty ``inputs`` means "the previous node's output" (the graph input for the
first node), so a straight-line chain needs no names. ``normalize_inputs`` writes every node
in that canonical form: explicit names only where the chain rule does not hold, so the same
network gives the same IR whichever front end built it.

Shapes exclude the batch dimension: feature maps are (C, H, W), vectors are (N,).
Weights are float32 NumPy arrays in PyTorch layout (Conv: [Cout, Cin, kh, kw]; Linear:
[N, K] with K in PyTorch's CHW flatten order).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "TensorType",
    "Node",
    "Conv2d",
    "Linear",
    "ReLU",
    "MaxPool2d",
    "AvgPool2d",
    "Flatten",
    "BatchNorm2d",
    "Add",
    "Concat",
    "Graph",
    "INPUT",
    "normalize_inputs",
]

INPUT = "<input>"  # the graph input's name in ``inputs`` (cannot clash with a node name)


@dataclass(frozen=True)
class TensorType:
    shape: tuple[int, ...]
    dtype: str = "float32"

    def __str__(self) -> str:
        return f"{self.dtype}[{'x'.join(map(str, self.shape))}]"


@dataclass(frozen=True, eq=False)
class Node:
    """Base class: every node has a name (the torch.fx node name) and in/out types."""

    name: str
    in_type: TensorType
    out_type: TensorType
    inputs: tuple[str, ...] = ()  # () = the previous node (see the module docstring)

    @property
    def op(self) -> str:
        return type(self).__name__


@dataclass(frozen=True, eq=False)
class Conv2d(Node):
    weight: np.ndarray = field(repr=False, default=None)  # [Cout, Cin, k, k]
    bias: np.ndarray = field(repr=False, default=None)  # [Cout]
    kernel: int = 1
    stride: int = 1
    padding: int = 0


@dataclass(frozen=True, eq=False)
class Linear(Node):
    weight: np.ndarray = field(repr=False, default=None)  # [N, K]
    bias: np.ndarray = field(repr=False, default=None)  # [N]


@dataclass(frozen=True, eq=False)
class ReLU(Node):
    pass


@dataclass(frozen=True, eq=False)
class MaxPool2d(Node):
    kernel: int = 2
    stride: int = 2


@dataclass(frozen=True, eq=False)
class AvgPool2d(Node):
    kernel: int = 2
    stride: int = 2


@dataclass(frozen=True, eq=False)
class Flatten(Node):
    pass


@dataclass(frozen=True, eq=False)
class BatchNorm2d(Node):
    """Only exists between tracing and the fold pass; never reaches quantization."""

    gamma: np.ndarray = field(repr=False, default=None)
    beta: np.ndarray = field(repr=False, default=None)
    mean: np.ndarray = field(repr=False, default=None)
    var: np.ndarray = field(repr=False, default=None)
    eps: float = 1e-5


@dataclass(frozen=True, eq=False)
class Add(Node):
    """Elementwise sum of two tensors of the same shape (``in_type``), no broadcasting."""


@dataclass(frozen=True, eq=False)
class Concat(Node):
    """Concatenation along the channel axis (dim 1 with the batch); ``in_types`` per input."""

    in_types: tuple[TensorType, ...] = ()


def _resolved(nodes: tuple[Node, ...] | list[Node]) -> list[tuple[str, ...]]:
    out, prev = [], INPUT
    for n in nodes:
        out.append(tuple(n.inputs) or (prev,))
        prev = n.name
    return out


def normalize_inputs(nodes: list[Node] | tuple[Node, ...]) -> tuple[Node, ...]:
    """Canonical ``inputs``: () where a node consumes exactly the previous node, else names."""
    from dataclasses import replace

    out, prev = [], INPUT
    for n, ins in zip(nodes, _resolved(nodes), strict=True):
        out.append(replace(n, inputs=() if ins == (prev,) else ins))
        prev = n.name
    return tuple(out)


@dataclass(frozen=True)
class Graph:
    """A network: nodes in topological order, each consuming the tensors it names."""

    name: str
    in_type: TensorType
    nodes: tuple[Node, ...]

    @property
    def out_type(self) -> TensorType:
        return self.nodes[-1].out_type if self.nodes else self.in_type

    def inputs_of(self, node: Node) -> tuple[str, ...]:
        """The names ``node`` consumes, with the chain rule resolved."""
        i = next(k for k, n in enumerate(self.nodes) if n is node)
        return _resolved(self.nodes)[i]

    def resolved_inputs(self) -> list[tuple[str, ...]]:
        """``inputs_of`` for every node, in order."""
        return _resolved(self.nodes)

    def consumers(self) -> dict[str, list[str]]:
        """Tensor name (INPUT or a node) -> names of the nodes that consume it."""
        out: dict[str, list[str]] = {INPUT: [], **{n.name: [] for n in self.nodes}}
        for n, ins in zip(self.nodes, _resolved(self.nodes), strict=True):
            for i in ins:
                out[i].append(n.name)
        return out

    @property
    def is_chain(self) -> bool:
        return all(not n.inputs for n in normalize_inputs(self.nodes))

    def summary(self) -> str:
        lines = [f"graph {self.name}: input {self.in_type}"]
        for n in self.nodes:
            src = f" <- {', '.join(n.inputs)}" if n.inputs else ""
            lines.append(f"  {n.name:<12} {n.op:<10} {n.in_type} -> {n.out_type}{src}")
        return "\n".join(lines)
