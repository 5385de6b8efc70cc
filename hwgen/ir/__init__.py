"""Typed layer IR: the front end produces it, quantization consumes it."""

from .graph import (
    INPUT,
    Add,
    AvgPool2d,
    BatchNorm2d,
    Concat,
    Conv2d,
    Flatten,
    Graph,
    Linear,
    MaxPool2d,
    Node,
    ReLU,
    TensorType,
    normalize_inputs,
)

__all__ = [
    "INPUT",
    "Add",
    "Concat",
    "normalize_inputs",
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
