"""Float layer IR: a straight-line graph of typed nodes (frozen dataclasses).

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
    "Graph",
]


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


@dataclass(frozen=True)
class Graph:
    """A straight-line network: nodes in execution order, each consuming the previous one."""

    name: str
    in_type: TensorType
    nodes: tuple[Node, ...]

    @property
    def out_type(self) -> TensorType:
        return self.nodes[-1].out_type if self.nodes else self.in_type

    def summary(self) -> str:
        lines = [f"graph {self.name}: input {self.in_type}"]
        for n in self.nodes:
            lines.append(f"  {n.name:<12} {n.op:<10} {n.in_type} -> {n.out_type}")
        return "\n".join(lines)
