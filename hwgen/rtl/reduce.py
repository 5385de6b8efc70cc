"""Row reduction: sums each block of P consecutive valid rows (C accumulator lanes) into one.

A linear layer with few outputs leaves most PEs idle at batch 1 (mnist_cnn fc1: 64 outputs on
256 PEs). With a K split of P (``hwgen.schedule.lower``), the P rows of a block compute the
same C outputs over P disjoint parts of the input vector; the write-back sums them here,
after the deskew, before the requant. ``split_m1`` = P - 1 (0: every row passes through).

Timing: one register stage. A block's sum is on ``o_valid``/``o_data`` in the cycle after
its P-th row arrived; other rows produce no output. Sums wrap modulo 2**acc_width like the
PEs' accumulators (the quantizer's overflow proof bounds every partial sum and the total).
``start`` rewinds the block counter. ``split_m1`` may change between blocks (the write-back's
remainder tiles): it must hold during a block, and ``split_one`` (split_m1 == 0, a register
kept with it) must change with it.
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hwgen.rtl.attrs import UNSHARED

__all__ = ["RowReduce", "row_reduce_golden", "SPLIT_BITS"]

SPLIT_BITS = 5  # split_m1 field: P up to 32 (the largest array side)


class RowReduce(wiring.Component):
    """Ports: ``i_valid``/``i_data`` the rows; ``lane_valid`` each lane's copy of ``i_valid``
    (the same value from its own register, see the write-back's deskew: each lane's sum
    enables hang on their own net, timing). ``sum_width`` (default ``acc_width``): the
    sums' width, sign-extended to ``acc_width`` on ``o_data`` (the program's accumulator
    bound holds for every partial and total sum, so the PE accumulator's width is enough).
    """

    def __init__(self, *, cols: int, acc_width: int, sum_width: int | None = None) -> None:
        self.cols = cols
        self.acc_width = acc_width
        self.sum_width = acc_width if sum_width is None else sum_width
        if not 1 <= self.sum_width <= acc_width:
            raise ValueError(f"RowReduce sum_width must be in 1..{acc_width}, not {sum_width}")
        lanes = data.ArrayLayout(signed(acc_width), cols)
        super().__init__(
            {
                "start": In(1),
                "split_m1": In(unsigned(SPLIT_BITS)),
                "split_one": In(1),
                "i_valid": In(1),
                "lane_valid": In(cols),
                "i_data": In(lanes),
                "o_valid": Out(1),
                "o_data": Out(lanes),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        # (cnt and first are reset-less: `start` loads them before a layer's first row;
        # timing: their reset pins are `start` alone, without the design reset)
        cnt = Signal(unsigned(SPLIT_BITS), reset_less=True)
        # block_end == (cnt == split_m1) from flags kept with cnt (timing: the compare sat
        # in front of every lane's `first` copy, 7.13 ns routed on the 8x8): at a block's
        # first row the split's own flag (it may have changed since the last block), later
        # (cnt + 1 == split_m1) registered as cnt steps (the split holds within a block)
        cnt_zero = Signal(init=1, reset_less=True)
        end_nz = Signal(reset_less=True)
        block_end = Signal()
        m.d.comb += block_end.eq(Mux(cnt_zero, self.split_one, end_nz))
        # The sums are reset-less: read only with o_valid, and a block's first row (cnt = 0
        # after reset and start) overwrites them.
        sums = [Signal(signed(self.sum_width), name=f"sum{j}", reset_less=True)
                for j in range(self.cols)]
        m.d.comb += [self.o_data[j].eq(sums[j]) for j in range(self.cols)]
        # o_valid is reset-less, so that its reset pin is `start` (a flip-flop) alone
        # (timing: `rst | start` through a LUT, shared with the sequencer's registers of the
        # same reset, drove it from across the die, 7.0 ns routed on the 8x8). After a reset
        # it is 0 again from the second reset cycle on (i_valid is), and the write-back's
        # registers behind it keep their reset: no ghost row, also if a row was in flight
        # (the board's reset lasts at least two cycles: ResetSynchronizer, FPGA init 0).
        o_valid = Signal(reset_less=True)
        m.d.comb += self.o_valid.eq(o_valid)
        m.d.sync += o_valid.eq(self.i_valid & block_end)
        with m.If(self.start):
            m.d.sync += [cnt.eq(0), cnt_zero.eq(1), o_valid.eq(0)]
        with m.Elif(self.i_valid):
            m.d.sync += [cnt.eq(Mux(block_end, 0, cnt + 1)), cnt_zero.eq(block_end),
                         end_nz.eq(cnt + 1 == self.split_m1)]
        half = (self.sum_width + 1) // 2
        for j, acc in enumerate(sums):
            # cnt == 0, a flag set with cnt, one copy per half lane (timing: no compare
            # before the adds, and each copy drives half of one lane's adder: one copy per
            # lane was placed 4.5 ns of routing from its adder on e1cfc13, up to 8.1 ns)
            firsts = [Signal(init=1, reset_less=True, name=f"first{j}_{h}", attrs=UNSHARED)
                      for h in range(2)]
            with m.If(self.start):
                m.d.sync += [f.eq(1) for f in firsts]
            with m.Elif(self.i_valid):
                m.d.sync += [f.eq(block_end) for f in firsts]
            # The sums take every valid row, also in a start cycle (timing: their enable is
            # the lane's valid flip-flop, no LUT in front of the lane's enables). A row in a
            # start cycle is dropped all the same: start sets `first`, so the next row
            # overwrites what it added, and o_valid stays low.
            with m.If(self.lane_valid[j]):
                # the block's first row restarts the sum (no separate clear cycle)
                base = Cat(Mux(firsts[0], 0, acc[:half]), Mux(firsts[1], 0, acc[half:]))
                m.d.sync += acc.eq(base.as_signed() + self.i_data[j])
        return m


def _wrap(v: int, bits: int) -> int:
    return ((v + (1 << (bits - 1))) % (1 << bits)) - (1 << (bits - 1))


def row_reduce_golden(
    rows: Sequence[Sequence[int] | None], split: int, acc_width: int = 32
) -> list[list[int] | None]:
    """Cycle model: ``rows[t]`` is the input in cycle t (None: not valid); returns the output
    in each cycle t (None: not valid): the wrapped sum of each block of ``split`` valid rows,
    one cycle after the block's last row."""
    out: list[list[int] | None] = [None] * (len(rows) + 1)
    block: list[Sequence[int]] = []
    for t, row in enumerate(rows):
        if row is None:
            continue
        block.append(row)
        if len(block) == split:
            out[t + 1] = [_wrap(sum(col), acc_width) for col in zip(*block, strict=True)]
            block = []
    return out
