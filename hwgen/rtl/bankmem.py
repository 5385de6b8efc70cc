"""A deep memory split into block-RAM-sized banks, every bank's output registered.

A memory deeper than one block RAM's 512 words becomes, in yosys, several blocks cascaded in
depth with a multiplexer after their outputs: the read path is then block-RAM clock-to-out
(5.8 ns on ECP5 without the output register) plus LUT levels and long routes. Here the banks
are explicit (``bank_depth`` words each, one block deep at 18 bits), each bank's read data
goes straight into a register (which the board flow moves into the block RAM's own output
register, ``hwgen.boards.outreg``), and the bank select is a registered multiplexer after
that.

Read contract: the word at ``r_addr`` in cycle c is on ``r_data`` in cycle c + READ_LATENCY
(3). A write in cycle c (``w_en``) is registered once (the bank's enable decoded in front
of that register, so every block's write enable, address and data come straight from
flip-flops: timing) and lands at the end of cycle c + 1: it is seen by reads from cycle
c + WRITE_LATENCY (2) on. A read of the word being written in the same cycle is undefined on
the board (``no_rw_check``: no bypass logic after the block RAM) and must not be made.
"""

from __future__ import annotations

from amaranth import Module, Signal, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BankedMemory", "READ_LATENCY", "WRITE_LATENCY", "banked_golden"]

READ_LATENCY = 3
WRITE_LATENCY = 2  # a write in cycle c is seen by reads from cycle c + 2 on
BANK_DEPTH = 1024  # one ECP5 DP16KD holds 1,024 words of 18 bits (x18: both ports usable)


def banked_golden(writes: list[tuple[int, int]], reads: list[int], depth: int) -> list[int]:
    """Words read at ``reads`` after ``writes`` ((addr, value) in order) on a zeroed memory."""
    mem = [0] * depth
    for a, v in writes:
        mem[a] = v
    return [mem[a] for a in reads]


class BankedMemory(wiring.Component):
    """``depth`` words of ``width`` bits in banks of ``bank_depth``; see the module docstring."""

    def __init__(self, *, width: int, depth: int, bank_depth: int = BANK_DEPTH) -> None:
        if width < 1 or depth < 1:
            raise ValueError(f"BankedMemory needs width and depth >= 1, not {width}x{depth}")
        if bank_depth < 1 or bank_depth & (bank_depth - 1):
            raise ValueError(f"bank_depth must be a power of two, not {bank_depth}")
        self.width, self.depth = width, depth
        self.bank_depth = min(bank_depth, 1 << max(0, (depth - 1).bit_length()))
        self.n_banks = -(-depth // self.bank_depth)
        aw = max(1, (depth - 1).bit_length())
        super().__init__(
            {
                "w_en": In(1),
                "w_addr": In(unsigned(aw)),
                "w_data": In(unsigned(width)),
                "r_addr": In(unsigned(aw)),
                "r_data": Out(unsigned(width)),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        lo = max(1, (self.bank_depth - 1).bit_length()) if self.n_banks > 1 else len(self.r_addr)
        sel = Signal(range(max(2, self.n_banks)))
        sel_d = Signal.like(sel, reset_less=True)
        m.d.sync += [sel.eq(self.r_addr[lo:]), sel_d.eq(sel)]
        # the registered write (reset-less: a write accepted before a reset still lands)
        w_addr = Signal.like(self.w_addr, reset_less=True)
        w_data = Signal.like(self.w_data, reset_less=True)
        m.d.sync += [w_addr.eq(self.w_addr), w_data.eq(self.w_data)]
        out = 0
        for b in range(self.n_banks):
            words = min(self.bank_depth, self.depth - b * self.bank_depth)
            # no_rw_check: a read of the word written in the same cycle is never made (weights
            # are written only while no inference runs), so yosys need not add a bypass mux
            # between the block's read data and the register after it
            mem = memory.Memory(shape=unsigned(self.width), depth=words, init=[],
                                attrs={"no_rw_check": 1})
            m.submodules[f"bank{b}"] = mem
            wp, rp = mem.write_port(), mem.read_port()
            q = Signal(self.width, name=f"q{b}", reset_less=True)  # -> the block's output reg
            w_en = Signal(name=f"w_en{b}", reset_less=True)
            in_bank = (self.w_addr[lo:] == b) if self.n_banks > 1 else 1
            m.d.sync += w_en.eq(self.w_en & in_bank)
            m.d.comb += [
                wp.en.eq(w_en),
                wp.addr.eq(w_addr[:lo]),
                wp.data.eq(w_data),
                rp.addr.eq(self.r_addr[:lo]),
            ]
            m.d.sync += q.eq(rp.data)
            out = out | (q & (sel_d == b).replicate(self.width))
        r = Signal(self.width, reset_less=True)
        m.d.sync += r.eq(out)
        m.d.comb += self.r_data.eq(r)
        return m
