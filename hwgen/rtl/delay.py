"""A fixed delay of a data word: ``o`` in cycle t is ``i`` of cycle t - ``depth``.

The write-back's deskew delays column j of the array by C-1-j cycles: as flip-flop chains,
C(C-1)/2 x acc_width flip-flops (3,000 of the 12x16's 61,600); the conv weight lanes' column
skew and the requant lanes' side data are delays too. A long delay is cheaper as a
circular buffer in LUT RAM (on the ECP5 a TRELLIS_DPR16X4 holds 16 words of 4 bits, a
chain of 16 such words 64 flip-flops): ``depth - 1`` words written at ``ptr`` every cycle,
the same slot read (asynchronously, before the write lands: the word of ``depth - 1``
cycles ago) into one output register. Below ``ram_from`` the delay stays a chain.

The words are reset-less either way (as the chain's data registers were): a ``valid`` that
must be cleared by reset travels beside them in flip-flops (hwgen.rtl.writeback).
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth import Module, Mux, Shape, Signal
from amaranth.hdl import ShapeLike
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["DELAY_RAM_FROM", "DelayLine", "chain", "delay_golden", "registered"]

# delays of this many cycles or more in LUT RAM by default (hwgen.rtl.traits
# ``delay_ram_from``): at 4 cycles a 25-bit word costs 7 TRELLIS_DPR16X4 and 27 flip-flops,
# where the chain is 100 flip-flops
DELAY_RAM_FROM = 4


class DelayLine(wiring.Component):
    """``o`` = ``i`` delayed ``depth`` cycles (``depth`` >= 1); a LUT-RAM circular buffer if
    ``depth >= ram_from`` (and ``depth`` >= 3, where it holds two words or more), else a
    chain of registers. ``ram_from`` = 0: always a chain."""

    def __init__(self, shape: ShapeLike, depth: int, *, ram_from: int = 0) -> None:
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"DelayLine depth must be an integer >= 1, not {depth!r}")
        self.shape, self.depth = Shape.cast(shape), depth
        self.in_ram = ram_from > 0 and depth >= max(ram_from, 3)
        super().__init__({"i": In(self.shape), "o": Out(self.shape)})

    def elaborate(self, platform) -> Module:
        m = Module()
        out = Signal(self.shape, name="out", reset_less=True)
        m.d.comb += self.o.eq(out)
        if not self.in_ram:
            x = self.i
            for s in range(self.depth - 1):
                nx = Signal(self.shape, name=f"d{s}", reset_less=True)
                m.d.sync += nx.eq(x)
                x = nx
            m.d.sync += out.eq(x)
            return m
        n = self.depth - 1  # words: the output register is the last cycle of the delay
        m.submodules.ram = ram = memory.Memory(shape=self.shape, depth=n, init=[],
                                               attrs={"ram_style": "distributed"})
        wp, rp = ram.write_port(), ram.read_port(domain="comb")
        ptr = Signal(range(n), reset_less=True)
        m.d.sync += ptr.eq(Mux(ptr == n - 1, 0, ptr + 1))
        m.d.comb += [wp.en.eq(1), wp.addr.eq(ptr), wp.data.eq(self.i), rp.addr.eq(ptr)]
        m.d.sync += out.eq(rp.data)  # the word written n cycles ago, before this write
        return m


def registered(m, v, name: str, on: bool = True, attrs: dict | None = None):
    """``v`` one cycle later through a reset-less register named ``name`` (with ``attrs``,
    e.g. UNSHARED), or ``v`` itself when not ``on`` (a platform trait that leaves a path
    register out)."""
    if not on:
        return v
    r = Signal(v.shape(), name=name, reset_less=True, attrs=attrs or {})
    m.d.sync += r.eq(v)
    return r


def chain(m, v, names: Sequence[str | None], *, reset_less: bool = True):
    """``v`` ``len(names)`` cycles later through a chain of registers, one per name (None:
    the name Amaranth gives it); a short delay that stays in flip-flops (`DelayLine` puts a
    long one in LUT RAM)."""
    for name in names:
        nxt = Signal.like(v, name=name, reset_less=reset_less)
        m.d.sync += nxt.eq(v)
        v = nxt
    return v


def delay_golden(seq: Sequence[int], depth: int, fill: int | None = None) -> list[int | None]:
    """``seq`` delayed ``depth`` cycles: the first ``depth`` outputs are ``fill`` (unknown)."""
    if depth < 1:
        raise ValueError(f"delay depth must be >= 1, not {depth}")
    return [fill] * depth + list(seq)[: max(len(seq) - depth, 0)]
