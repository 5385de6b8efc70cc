"""The quantized model: the integer contract between quantization, golden model and hardware.

Activations are int8, symmetric (zero point 0) per tensor; weights int8 symmetric per output
channel; bias int32 at scale in_scale * w_scale[c]; requantization by (multiplier, shift) per
output channel (see fixedpoint.requantize). A fused ReLU is the clamp act_min = 0.

Feature maps are (C, H, W) as in PyTorch; Flatten uses PyTorch's CHW order. Hardware layouts
are the schedule's business, never the contract's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "INPUT",
    "QConv",
    "QLinear",
    "QMaxPool",
    "QAvgPool",
    "QFlatten",
    "QAdd",
    "QConcat",
    "QLayer",
    "QModel",
]

INPUT = "<input>"  # the model input's name in a layer's ``inputs``


@dataclass(frozen=True, eq=False)
class _QBase:
    name: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    inputs: tuple[str, ...] = ()  # layer names (or INPUT); () = the previous layer

    @property
    def kind(self) -> str:
        return type(self).__name__


@dataclass(frozen=True, eq=False)
class _QMac(_QBase):
    weight: np.ndarray = field(repr=False, default=None)  # int8
    bias: np.ndarray = field(repr=False, default=None)  # int32 [Cout]
    multiplier: np.ndarray = field(repr=False, default=None)  # int32 [Cout], in [2**30, 2**31)
    shift: np.ndarray = field(repr=False, default=None)  # int32 [Cout], right shift 0..31
    act_min: int = -128  # 0 when a ReLU is fused
    act_max: int = 127
    in_scale: float = 1.0  # informational: real = q * scale
    out_scale: float = 1.0
    w_scale: np.ndarray = field(repr=False, default=None)  # float64 [Cout], informational

    @property
    def relu(self) -> bool:
        return self.act_min >= 0


@dataclass(frozen=True, eq=False)
class QConv(_QMac):
    kernel: int = 1
    stride: int = 1
    padding: int = 0

    @property
    def macs(self) -> int:
        cout, oh, ow = self.out_shape
        return cout * oh * ow * self.in_shape[0] * self.kernel * self.kernel


@dataclass(frozen=True, eq=False)
class QLinear(_QMac):
    @property
    def macs(self) -> int:
        return int(self.weight.size)


@dataclass(frozen=True, eq=False)
class QMaxPool(_QBase):
    kernel: int = 2
    stride: int = 2


@dataclass(frozen=True, eq=False)
class QAvgPool(_QBase):
    """Average over a power-of-two window: RoundingDivideByPOT(sum, log2(k*k)), same scale."""

    kernel: int = 2
    stride: int = 2


@dataclass(frozen=True, eq=False)
class QFlatten(_QBase):
    pass


@dataclass(frozen=True, eq=False)
class QAdd(_QMac):
    """Residual add of two int8 tensors of the same shape (``inputs`` = (a, b)):

        acc = weight[0]*a + weight[1]*b     (int8 weights: the two scales' ratio, so the
                                             sum is at one accumulator scale in_scale)
        out = clamp(RDBPOT(SRDHM(acc + bias[c], M[c]), shift[c]), act_min, act_max)

    i.e. both branches brought to a common scale by integer multipliers, then the ordinary
    gemmlowp requant to the output scale (the same (M, shift) in every channel; bias is 0).
    The hardware runs it as a 1x1 conv over the two operands placed side by side."""

    @property
    def macs(self) -> int:
        return 2 * int(np.prod(self.out_shape))


@dataclass(frozen=True, eq=False)
class QConcat(_QBase):
    """Channel concatenation; every input is already at the output's scale (the quantizer
    forces the producers' output scales), so it moves no value."""


QLayer = QConv | QLinear | QMaxPool | QAvgPool | QFlatten | QAdd | QConcat


def resolve_inputs(layers) -> list[tuple[str, ...]]:
    """Every layer's input names with the chain rule (``inputs == ()``) resolved."""
    out, prev = [], INPUT
    for lay in layers:
        out.append(tuple(lay.inputs) or (prev,))
        prev = lay.name
    return out


@dataclass(frozen=True, eq=False)
class QModel:
    name: str
    in_shape: tuple[int, ...]  # (C, H, W)
    in_scale: float  # input real value = q * in_scale
    layers: tuple[QLayer, ...]

    @property
    def macs(self) -> int:
        return sum(getattr(lay, "macs", 0) for lay in self.layers)

    def summary(self) -> str:
        out = [f"quantized {self.name}: input int8{list(self.in_shape)} scale {self.in_scale:.6g}"]
        for lay in self.layers:
            extra = ""
            if isinstance(lay, (QConv, QLinear, QAdd)):
                extra = f" relu={lay.relu} macs={lay.macs}"
            if lay.inputs:
                extra += f" <- {', '.join(lay.inputs)}"
            out.append(f"  {lay.name:<12} {lay.kind:<9} {lay.in_shape} -> {lay.out_shape}{extra}")
        return "\n".join(out)
