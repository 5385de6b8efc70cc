"""Typed layer IR: the front end produces it, quantization consumes it."""

from .graph import (
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Flatten,
    Graph,
    Linear,
    MaxPool2d,
    Node,
    ReLU,
    TensorType,
)

__all__ = [
    "AvgPool2d",
    "BatchNorm2d",
    "Conv2d",
    "Flatten",
    "Graph",
    "Linear",
    "MaxPool2d",
    "Node",
    "ReLU",
    "TensorType",
]
