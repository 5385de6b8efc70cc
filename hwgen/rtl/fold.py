"""Row fold: a two-stream remainder tile's rows i and i + Q summed into one (Q = R/2).

The two-stream remainder tile (hwgen.schedule.lower._remainder_stream) orders its rows
part-major: row i computes part 0 of pixel i, row i + Q part 1 of the same pixel. After the
deskew a tile's rows arrive on consecutive cycles, so row i + Q comes exactly Q cycles after
row i: the fold delays every row Q cycles (a `DelayLine`: a LUT-RAM circular buffer ending
in a register from ``ram_from`` cycles on, else a register chain) and, on a row marked
``add``, outputs it plus the row of Q cycles before; a row marked ``drop`` (part 0) is not
passed on. Other rows pass through.

Timing: one register stage (``RowFold.latency``). Sums wrap modulo 2**acc_width like the
PE accumulators (the quantizer's overflow proof bounds every partial and total sum).
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .delay import DELAY_RAM_FROM, DelayLine

__all__ = ["RowFold", "row_fold_golden"]


class RowFold(wiring.Component):
    """Ports: ``i_valid``/``i_data`` the deskewed rows, ``drop``/``add`` the row's part (with
    the row; ``add`` one bit per lane, equal values: each lane's adders take their own
    flip-flop, not one flag routed to every lane across the die), ``o_valid``/``o_data`` one
    cycle later."""

    latency = 1

    def __init__(self, *, cols: int, acc_width: int, q: int,
                 ram_from: int = DELAY_RAM_FROM) -> None:
        if q < 1:
            raise ValueError(f"RowFold q must be >= 1, not {q}")
        self.cols, self.acc_width, self.q, self.ram_from = cols, acc_width, q, ram_from
        lanes = data.ArrayLayout(signed(acc_width), cols)
        super().__init__({"i_valid": In(1), "i_data": In(lanes), "drop": In(1), "add": In(cols),
                          "o_valid": Out(1), "o_data": Out(lanes)})

    def elaborate(self, platform) -> Module:
        m = Module()
        lanes = data.ArrayLayout(signed(self.acc_width), self.cols)
        # the row of Q cycles before, from a register (timing: the sum's carry chain starts
        # from flip-flops, not behind the LUT-RAM read; on the routed 12x8 the row index
        # compare, that read and the 25-bit add were 8.6 ns, 25 levels)
        m.submodules.delay = line = DelayLine(lanes, self.q, ram_from=self.ram_from)
        m.d.comb += line.i.eq(self.i_data)
        old = lanes(line.o)
        o_data = Signal(lanes, reset_less=True)
        for j in range(self.cols):
            m.d.sync += o_data[j].eq(self.i_data[j] + Mux(self.add[j], old[j], 0))
        m.d.sync += self.o_valid.eq(self.i_valid & ~self.drop)
        m.d.comb += self.o_data.eq(o_data)
        return m


def _wrap(v: int, bits: int) -> int:
    return ((v + (1 << (bits - 1))) % (1 << bits)) - (1 << (bits - 1))


def row_fold_golden(rows: Sequence[tuple[Sequence[int] | None, bool, bool]], q: int,
                    acc_width: int = 32) -> list[list[int] | None]:
    """Cycle model: ``rows[t]`` = (row or None, drop, add) in cycle t; the output of each
    cycle (None: not valid), ``RowFold.latency`` cycles later: a dropped row gives none, an
    added one the wrapped sum with the row of cycle t - q (which must be a row)."""
    out: list[list[int] | None] = [None] * (len(rows) + RowFold.latency)
    for t, (row, drop, add) in enumerate(rows):
        if row is None or drop:
            continue
        prev = (rows[t - q][0] if t >= q else None) if add else row
        if prev is None:
            raise ValueError(f"cycle {t}: an added row needs a row {q} cycles before")
        out[t + RowFold.latency] = [_wrap(x + p, acc_width) if add else x
                                    for x, p in zip(row, prev, strict=True)]
    return out
