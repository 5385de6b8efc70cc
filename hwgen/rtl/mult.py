"""The multiplier seam: every MAC multiply in the design goes through this one component.

In simulation (and for yosys inference) it is a plain ``*`` followed by ``latency`` pipeline
registers. On an ECP5 board the same interface will be an instantiated MULT18X18D with its
input, pipeline and output registers on (three clock edges, Lattice sysDSP), so the board
build swaps the implementation without changing the latency or a single bit of the result.
"""

from __future__ import annotations

from amaranth import Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Multiplier", "mult_golden"]


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
        self.latency = latency
        super().__init__(
            {
                "a": In(shape(a_width)),
                "b": In(shape(b_width)),
                "p": Out(shape(a_width + b_width)),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        # Register the operands first (the DSP's input registers), the rest is the pipeline.
        # Datapath registers carry no reset (like the DSP's): validity travels beside them.
        a_r = Signal.like(self.a, reset_less=True)
        b_r = Signal.like(self.b, reset_less=True)
        m.d.sync += [a_r.eq(self.a), b_r.eq(self.b)]
        stage = Signal.like(self.p, reset_less=True)
        m.d.sync += stage.eq(a_r * b_r)
        for _ in range(self.latency - 2):
            nxt = Signal.like(self.p, reset_less=True)
            m.d.sync += nxt.eq(stage)
            stage = nxt
        if self.latency == 1:
            m.d.comb += self.p.eq(a_r * b_r)
        else:
            m.d.comb += self.p.eq(stage)
        return m
