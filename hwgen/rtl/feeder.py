"""Per-row window-address generation: turns the shared element stream into row i's operands.

Row i handles output pixel p0+i of a tile. Its token arrives one cycle after row i-1's (that
is the systolic skew) and on a tile's first element it takes row i-1's freshly latched pixel
and moves one pixel right (wrapping to the next output row) — additions only. Then:

    stage A: addr = base + off, (iy, ix) = origin + (ky, kx), out-of-bounds -> padding zero
    stage B: read the activation buffer through the row's own (registered) read port:
             port A or B of copy i//2, which rows 2k and 2k+1 share (see top.py)
    stage C: pick the lane, zero it when out of bounds, register -> array row_in[i]

so row_in[i] carries element k three cycles after the token reached the row.
In direct mode (linear layers) every row uses the same pixel.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .descriptor import DESC_LAYOUT
from .sequencer import PIXEL_LAYOUT, TOKEN_LAYOUT

__all__ = ["ROW_IN_LAYOUT", "RowFeeder", "FEEDER_LATENCY"]

FEEDER_LATENCY = 3
A = 24

ROW_IN_LAYOUT = data.StructLayout({"valid": 1, "first": 1, "last": 1, "a": signed(8)})


class RowFeeder(wiring.Component):
    def __init__(self, *, index: int, cols: int, addr_width: int) -> None:
        self.index = index
        self.cols = cols
        self.addr_width = addr_width
        super().__init__(
            {
                "desc": In(DESC_LAYOUT),
                "tok_in": In(TOKEN_LAYOUT),
                "pix_in": In(PIXEL_LAYOUT),  # sequencer (row 0) or row i-1's latched pixel
                "tok_out": Out(TOKEN_LAYOUT),
                "pix_out": Out(PIXEL_LAYOUT),
                "raddr": Out(unsigned(addr_width)),
                "rdata0": In(unsigned(8 * cols)),
                "rdata1": In(unsigned(8 * cols)),
                "row": Out(ROW_IN_LAYOUT),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        d = self.desc
        tok = self.tok_in

        # The token moves on to the next row one cycle later (the systolic skew).
        m.d.sync += self.tok_out.eq(tok)

        # --- pixel of this row for the current tile
        cur = Signal(PIXEL_LAYOUT)
        prev = self.pix_in
        step = Signal(PIXEL_LAYOUT)
        if self.index == 0:
            m.d.comb += step.eq(prev)  # the sequencer already computed row 0's pixel
        else:
            with m.If(d.mode == 1):
                m.d.comb += step.eq(prev)  # linear layer: all rows read the same vector
            with m.Elif(prev.ox + 1 == d.out_w):
                m.d.comb += [
                    step.ox.eq(0),
                    step.ix0.eq(prev.ix0 + d.stride - d.wrap_ix),
                    step.iy0.eq(prev.iy0 + d.stride),
                    step.base.eq(prev.base + d.step1 + d.wrap_delta),
                ]
            with m.Else():
                m.d.comb += [
                    step.ox.eq(prev.ox + 1),
                    step.ix0.eq(prev.ix0 + d.stride),
                    step.iy0.eq(prev.iy0),
                    step.base.eq(prev.base + d.step1),
                ]
        latched = Signal(PIXEL_LAYOUT)
        with m.If(tok.valid & tok.first):
            m.d.sync += latched.eq(step)
        m.d.comb += cur.eq(Mux(tok.valid & tok.first, step, latched))
        m.d.comb += self.pix_out.eq(latched)

        # --- stage A: address and bounds
        addr = Signal(signed(A + 1))
        iy = Signal(signed(17))
        ix = Signal(signed(17))
        m.d.comb += [
            addr.eq(cur.base + tok.off),
            iy.eq(cur.iy0 + tok.ky),
            ix.eq(cur.ix0 + tok.kx),
        ]
        oob = (iy < 0) | (iy >= d.in_h) | (ix < 0) | (ix >= d.in_w)
        a_addr = Signal(self.addr_width)
        a_oob = Signal()
        a_lane = Signal(8)
        a_flags = Signal(3)
        m.d.sync += [
            a_addr.eq(addr),
            a_oob.eq(oob),
            a_lane.eq(tok.lane),
            a_flags.eq(Mux(tok.valid, tok.as_value()[:3], 0)),
        ]
        # --- stage B: registered memory read
        m.d.comb += self.raddr.eq(a_addr)
        b_oob = Signal()
        b_lane = Signal(8)
        b_flags = Signal(3)
        m.d.sync += [b_oob.eq(a_oob), b_lane.eq(a_lane), b_flags.eq(a_flags)]
        # --- stage C: lane select, padding zero
        word = Signal(8 * self.cols)
        m.d.comb += word.eq(Mux(d.src, self.rdata1, self.rdata0))
        byte = Signal(signed(8))
        m.d.comb += byte.eq(word.word_select(b_lane[: max(1, (self.cols - 1).bit_length())], 8))
        m.d.sync += [
            self.row.valid.eq(b_flags[0]),
            self.row.first.eq(b_flags[1]),
            self.row.last.eq(b_flags[2]),
            self.row.a.eq(Mux(b_oob, 0, byte)),
        ]
        return m
