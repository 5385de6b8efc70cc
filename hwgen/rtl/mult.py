"""The multiplier seam: every product in the design goes through this one component.

``Multiplier.elaborate(platform)`` asks the platform for its implementation, the way
Amaranth's ``lib.cdc.FFSynchronizer`` asks for ``platform.get_ff_sync``: a platform with a
``get_multiplier(multiplier)`` method returns an elaboratable that drives ``multiplier.p``
from ``multiplier.a``/``multiplier.b`` with exactly ``multiplier.latency`` register edges.
Without such a platform (simulation, plain Verilog) it is :func:`generic_multiplier`: a plain
``*`` between operand registers and pipeline registers, the same latency and the same bits.
The ECP5 implementation (instantiated MULT18X18D) is :mod:`hwgen.rtl.ecp5_dsp`.
"""

from __future__ import annotations

from amaranth import Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Multiplier", "generic_multiplier", "mult_golden"]


def mult_golden(a: list[int], b: list[int], latency: int) -> list[int | None]:
    """Product stream: output cycle t is a[t-latency]*b[t-latency] (None before the pipe fills)."""
    return [None] * latency + [x * y for x, y in zip(a, b, strict=True)]


class Multiplier(wiring.Component):
    """``p`` = ``a * b`` sampled ``latency`` edges earlier; no enable (static schedule)."""

    def __init__(
        self, *, a_width: int = 8, b_width: int = 8, latency: int = 3, is_signed: bool = True
    ) -> None:
        if latency < 1:
            raise ValueError(f"Multiplier latency must be at least 1, not {latency!r}")
        shape = signed if is_signed else unsigned
        self.a_width = a_width
        self.b_width = b_width
        self.is_signed = is_signed
        self.latency = latency
        super().__init__(
            {
                "a": In(shape(a_width)),
                "b": In(shape(b_width)),
                "p": Out(shape(a_width + b_width)),
            }
        )

    def elaborate(self, platform) -> Module:
        # The platform hook (cf. amaranth.lib.cdc get_ff_sync): a board picks its primitive.
        if hasattr(platform, "get_multiplier"):
            return platform.get_multiplier(self)
        return generic_multiplier(self)


def generic_multiplier(mult: Multiplier) -> Module:
    """The portable implementation: registered operands, ``*``, pipeline registers.

    Also the LUT fallback of a board whose DSP blocks are used up.
    """
    m = Module()
    # Register the operands first (the DSP's input registers), the rest is the pipeline.
    # Datapath registers carry no reset (like the DSP's): validity travels beside them.
    a_r = Signal.like(mult.a, reset_less=True)
    b_r = Signal.like(mult.b, reset_less=True)
    m.d.sync += [a_r.eq(mult.a), b_r.eq(mult.b)]
    if mult.latency == 1:
        m.d.comb += mult.p.eq(a_r * b_r)
        return m
    stage = Signal.like(mult.p, reset_less=True)
    m.d.sync += stage.eq(a_r * b_r)
    for _ in range(mult.latency - 2):
        nxt = Signal.like(mult.p, reset_less=True)
        m.d.sync += nxt.eq(stage)
        stage = nxt
    m.d.comb += mult.p.eq(stage)
    return m
