"""Row reduction: sums each block of P consecutive valid rows (C accumulator lanes) into one.

A linear layer with few outputs leaves most PEs idle at batch 1 (mnist_cnn fc1: 64 outputs on
256 PEs). With a K split of P (``hwgen.schedule.lower``), the P rows of a block compute the
same C outputs over P disjoint parts of the input vector; the write-back sums them here,
after the deskew, before the requant. ``split_m1`` = P - 1 (0: every row passes through).

Timing: one register stage. A block's sum is on ``o_valid``/``o_data`` in the cycle after
its P-th row arrived; other rows produce no output. Sums wrap modulo 2**acc_width like the
PEs' accumulators (the quantizer's overflow proof bounds every partial sum and the total).
``start`` rewinds the block counter.
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["RowReduce", "row_reduce_golden", "SPLIT_BITS"]

SPLIT_BITS = 5  # split_m1 field: P up to 32 (the largest array side)


class RowReduce(wiring.Component):
    def __init__(self, *, cols: int, acc_width: int) -> None:
        self.cols = cols
        self.acc_width = acc_width
        lanes = data.ArrayLayout(signed(acc_width), cols)
        super().__init__(
            {
                "start": In(1),
                "split_m1": In(unsigned(SPLIT_BITS)),
                "i_valid": In(1),
                "i_data": In(lanes),
                "o_valid": Out(1),
                "o_data": Out(lanes),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        cnt = Signal(unsigned(SPLIT_BITS))
        first = Signal(init=1)  # cnt == 0, a flag set with cnt (timing: no compare before
        block_end = cnt == self.split_m1  # the 32-bit adds)
        # The sums are reset-less: read only with o_valid, and a block's first row (cnt = 0
        # after reset and start) overwrites them.
        sums = [Signal(signed(self.acc_width), name=f"sum{j}", reset_less=True)
                for j in range(self.cols)]
        m.d.comb += [self.o_data[j].eq(sums[j]) for j in range(self.cols)]
        m.d.sync += self.o_valid.eq(self.i_valid & block_end)
        with m.If(self.start):
            m.d.sync += [cnt.eq(0), first.eq(1), self.o_valid.eq(0)]
        with m.Elif(self.i_valid):
            m.d.sync += [cnt.eq(Mux(block_end, 0, cnt + 1)), first.eq(block_end)]
        # The sums take every valid row, also in a start cycle (timing: their enable is the
        # input's valid flip-flop, no LUT in front of the C x acc_width enables). A row in a
        # start cycle is dropped all the same: start sets `first`, so the next row overwrites
        # what it added, and o_valid stays low.
        with m.If(self.i_valid):
            for j, acc in enumerate(sums):
                # the block's first row restarts the sum (no separate clear cycle)
                m.d.sync += acc.eq(Mux(first, 0, acc) + self.i_data[j])
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
