"""The arithmetic seam of the MAC (Gemmini's ``Arithmetic[T]`` pattern).

One frozen object says what a PE computes: operand shapes, accumulator shape and the wrap
rule, and it builds the PE's product (always through ``hwgen.rtl.mult.Multiplier``) and its
accumulate step. The PE and the SystolicArray take it; nothing else in them knows a width.

* ``Arithmetic.plaintext(8, 8, 32)`` (= ``INT8``, the default): signed int8 × int8 products,
  int32 accumulator. The accumulator must hold a product (a+w bits); the quantizer proves
  the sums never overflow it.
* ``Arithmetic.shares(k)``: additive secret shares, operands and accumulator k bits, every
  product and sum modulo 2**k (the ring Z_2^k of ``hwgen.secure``). Overflow is the
  intended arithmetic, so no width relation is required.

The PE accumulates in two halves (``lo_width`` low bits, then the rest one cycle later with
the low half's registered carry), so no carry chain between registers is longer than about
half the accumulator; the sum modulo 2**acc_width is the same in either arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth import Mux, signed
from amaranth.hdl import Shape, Value

from hwgen.config import ArrayConfig
from hwgen.rtl.mult import Multiplier

__all__ = ["Arithmetic", "INT8"]


def _check_width(value: object, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise TypeError(f"{what} must be a positive integer, not {value!r}")


@dataclass(frozen=True)
class Arithmetic:
    a_width: int = 8
    w_width: int = 8
    acc_width: int = 32
    ring: bool = False  # True: shares mod 2**acc_width (operands are ring elements too)

    def __post_init__(self) -> None:
        _check_width(self.a_width, "Activation width")
        _check_width(self.w_width, "Weight width")
        _check_width(self.acc_width, "Accumulator width")
        if self.ring:
            if not self.a_width == self.w_width == self.acc_width:
                raise ValueError(
                    f"Share arithmetic needs equal operand and accumulator widths (the ring "
                    f"width), not {self.a_width}/{self.w_width}/{self.acc_width}"
                )
        elif self.acc_width < self.a_width + self.w_width:
            raise ValueError(
                f"Accumulator width {self.acc_width} is narrower than a product "
                f"({self.a_width}+{self.w_width} bits)"
            )

    @classmethod
    def plaintext(cls, a_width: int = 8, w_width: int = 8, acc_width: int = 32) -> Arithmetic:
        return cls(a_width, w_width, acc_width, ring=False)

    @classmethod
    def shares(cls, k: int) -> Arithmetic:
        return cls(k, k, k, ring=True)

    @classmethod
    def from_config(cls, cfg: ArrayConfig) -> Arithmetic:
        return cls(cfg.a_width, cfg.w_width, cfg.acc_width, ring=cfg.arithmetic == "ring")

    # shapes: two's-complement bit patterns; in the ring a k-bit pattern is the residue.
    @property
    def a_shape(self) -> Shape:
        return signed(self.a_width)

    @property
    def w_shape(self) -> Shape:
        return signed(self.w_width)

    @property
    def acc_shape(self) -> Shape:
        return signed(self.acc_width)

    def multiplier(self, latency: int) -> Multiplier:
        """The PE's product unit (the one multiplier seam)."""
        return Multiplier(a_width=self.a_width, b_width=self.w_width, latency=latency)

    @property
    def lo_width(self) -> int:
        """Bits of the accumulator's low half (the high half has the rest, maybe none)."""
        return (self.acc_width + 1) // 2

    def accumulate(self, acc: Value, first: Value, product: Value, carry: Value | int = 0
                   ) -> Value:
        """One half's next value: the product (plus ``carry``) alone on ``first``, else acc +
        product + carry. The result is wider than ``acc``: with unsigned operands of
        ``len(acc)`` bits and no carry in, bit ``len(acc)`` is the carry out; the caller
        keeps the bits it needs (the wrap modulo 2**width)."""
        total = Mux(first, 0, acc) + product
        return total if isinstance(carry, int) and carry == 0 else total + carry

    def golden_dot(self, a: np.ndarray, w: np.ndarray, axis: int = -1) -> np.ndarray:
        """Σ a·w along ``axis`` reduced like the hardware (signed acc_width residue)."""
        from hwgen.rtl.pe import wrap_signed

        a_, w_ = np.asarray(a, dtype=object), np.asarray(w, dtype=object)
        return wrap_signed((a_ * w_).sum(axis=axis), self.acc_width)

    def __str__(self) -> str:
        kind = f"shares mod 2^{self.acc_width}" if self.ring else "plaintext"
        return f"{kind} (a{self.a_width} w{self.w_width} acc{self.acc_width})"


INT8 = Arithmetic.plaintext()
