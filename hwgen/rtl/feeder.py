"""Per-row window-address generation: turns the shared element stream into row i's operands.

Row i handles output pixel p0+i of a tile. Its token arrives one cycle after row i-1's (that
is the systolic skew) and on a tile's first element it takes row i-1's freshly latched pixel
and moves one pixel right (wrapping to the next output row) — additions only. Whether a
pixel ends its output row travels with it as a one-hot distance (``dist_onehot``), shifted a
bit per row, so the wrap is one LUT from flip-flops rather than a compare of x positions; row
i-1 registers row i's latch-and-wrap (``wraps``) from its own distance a cycle early, so the
step row i+1 adds is selected straight from a flip-flop. Then:

    stage P: on a first token, latch the row's pixel (step from row i-1's); token registered
    stage A: addr = base + off, (iy, ix) = origin + (ky, kx)
    stage B: read the activation buffer through the row's own (registered) read port:
             port A or B of copy i//2, which rows 2k and 2k+1 share (see top.py); the
             bounds compare of (iy, ix) -> out-of-bounds (padding zero), registered
    stage M: register the memory's output words (nothing between block RAM and a flip-flop)
    stage G: pick the buffer (a per-layer select), register (timing: the two words come
             from two block RAMs' output registers, each by its own RAM; a 2:1 mux after
             each route, not a LUT and a PFUMX behind both)
    stage C: pick the lane's low bits (a few candidate bytes), zeroed when out of bounds,
             register
    stage D: pick the candidate by the lane's high bits -> register -> row_in[i] (timing:
             stage C's multiplexers sit by the block RAMs, the PE's multiplier elsewhere on
             the die; the route between them gets a cycle of its own, with one small mux)

so row_in[i] carries element k ``FEEDER_LATENCY`` = 7 cycles after the token reached the row.
In direct mode (linear layers) row i reads K part i % P of the input vector (P = ``ksplit``,
hwgen.rtl.reduce): the same stepping with ``out_w`` replaced by P, ``step1`` the words per
part, and no bounds check (past the input the weights are zero). The per-layer constants a row
needs (``feed_cfg_layout``: descriptor fields and ``out_w - 1`` with its one-hot distance,
``step1 + wrap_delta``, ``stride - wrap_ix``) travel down the rows with the systolic skew:
row 0 registers them from the descriptor, row i from row i-1 (``cfg_in``/``cfg_out``), so no
descriptor net fans out to every row. Row i's copy is valid i+1 cycles after the descriptor
(``wrap_dist``, read by rows i >= 1 only, i+2 cycles: `_wrap_dists`); its first token comes
i+3 cycles after it (the start a cycle after the descriptor, then the sequencer's two issue
cycles: sim/test_window.py checks every row's stream at that cycle).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .attrs import UNSHARED
from .descriptor import DESC_LAYOUT
from .sequencer import PIXEL_LAYOUT, TOKEN_LAYOUT

__all__ = ["ROW_IN_LAYOUT", "RowFeeder", "FEEDER_LATENCY", "dist_bits", "dist_onehot",
           "feed_cfg", "feed_cfg_layout"]

FEEDER_LATENCY = 7
A = 24

ROW_IN_LAYOUT = data.StructLayout({"valid": 1, "first": 1, "last": 1, "a": signed(8)})

_F = DESC_LAYOUT.members


def feed_cfg_layout(rows: int) -> data.StructLayout:
    """The per-layer constants a row needs, for an array of ``rows`` rows."""
    return data.StructLayout(
        {
            "mode": _F["mode"],
            "src": _F["src"],
            "in_h": _F["in_h"],
            "in_w": _F["in_w"],
            "stride": _F["stride"],
            "step1": _F["step1"],
            # the distance of an output row's first pixel to its last, one-hot
            # (`dist_onehot`): a wrapping row's new distance
            "wrap_dist": unsigned(dist_bits(rows)),
            "wrap_base": signed(A),
            "wrap_x": signed(17),
        }
    )


# the step from row i-1's latched pixel to row i's: a wrap's (wrap_base, wrap_x, stride) or
# the next pixel's (step1, stride, 0), selected and registered in row i-1 (`_stage_p`)
INC_LAYOUT = data.StructLayout({"base": signed(A), "ix": signed(17), "iy": _F["stride"]})


def dist_bits(rows: int) -> int:
    """The one-hot distance's width: a tile's last row (``rows`` - 1 shifts from row 0) has
    no next row to tell of a wrap, so a distance of ``rows`` - 1 or more is never read."""
    return max(rows - 1, 1)


def dist_onehot(left, rows: int, plus: int = 0) -> Cat:
    """``left`` - ``plus`` (the pixels to the output row's last) one-hot in
    ``dist_bits(rows)`` bits: bit k for left == k + plus, none for a longer distance. Row
    i's distance is row i-1's shifted down a bit (a wrap reloads it) and its bit 0 is row
    i's wrap flag, read by row i+1."""
    return Cat(*(left == k + plus for k in range(dist_bits(rows))))


def _token_reg(m: Module, tok: data.View, name: str) -> data.View:
    """``tok`` one cycle later. Only valid, first and last are reset: the rest is read with
    a valid token only, so those flip-flops stay off the reset net. The flags are this
    register's own (UNSHARED): a row's `tok_r` and `p_tok` hold equal values, and merged
    (opt_merge) one flip-flop drove both this row's stage A and the next row's pixel latch
    across the die (feed1's `pix_out.ox` reset from feed0's `p_tok.first`, 7.05 ns routed)."""
    ctl = Signal(3, name=f"{name}_ctl", attrs=UNSHARED)
    pay = Signal(TOKEN_LAYOUT, name=f"{name}_pay", reset_less=True)
    m.d.sync += [ctl.eq(Cat(tok.valid, tok.first, tok.last)), pay.eq(tok)]
    out = Signal(TOKEN_LAYOUT, name=name)
    m.d.comb += [out.eq(pay), out.valid.eq(ctl[0]), out.first.eq(ctl[1]), out.last.eq(ctl[2])]
    return out


def feed_cfg(m: Module, desc, rem, rows: int, path_regs: bool = True) -> data.View:
    """Row 0's registered copy of the per-layer constants, from the descriptor; ``rem`` (the
    sequencer's remainder-tile flag, a register) switches to a conv layer's remainder tile's
    stepping: direct mode, K part i % P at rem_step1 words per row, rem_wrap to the next
    pixel. Registered beside the sequencer's token, so each row switches with its first
    token of the tile. Without ``path_regs`` (trait `path_registers`, a small device) the
    plain copies (src, in_h, in_w, stride) are the descriptor's own flip-flops: it holds
    them through the layer, from the cycle before the sequencer's start."""
    cfg = Signal(feed_cfg_layout(rows), name="feed_cfg0", reset_less=True)
    direct = desc.mode | rem
    copies = [
        cfg.src.eq(desc.src),
        cfg.in_h.eq(desc.in_h),
        cfg.in_w.eq(desc.in_w),
        cfg.stride.eq(desc.stride),
    ]
    if not path_regs:
        m.d.comb += copies
        copies = []
    m.d.sync += [
        cfg.mode.eq(direct),
        *copies,
        cfg.step1.eq(Mux(rem, desc.rem_step1, desc.step1)),
        cfg.wrap_dist.eq(Mux(direct, *_wrap_dists(m, desc, rows))),
        cfg.wrap_base.eq(Mux(rem, desc.rem_wrap, desc.step1 + desc.wrap_delta)),
        cfg.wrap_x.eq(desc.stride - desc.wrap_ix),
    ]
    return cfg


def _wrap_dists(m: Module, desc, rows: int) -> tuple[Signal, Signal]:
    """Each source's one-hot wrap distance, registered from the descriptor alone (direct
    mode's ``ksplit_m1``; a conv's ``out_w - 1``, compared as ``out_w == k + 1``), so that
    `feed_cfg` only selects. Timing: the compares share their LUTs with the write-back's
    (the pool's ``in_w == 1``) by the descriptor; compare, route and select in one cycle
    were feed 0's wrap_dist D, 8.28 ns on the 12x16 of cee1cc6 seed 1. The extra cycle is
    free: row i reads it on its tile's first token (row 0 for row 1's wrap flag, `wraps_out`;
    row i >= 1 for its own distance), i + 3 cycles after the descriptor; its copy is
    valid i + 2 cycles after it, a cycle to spare (two cycles later, sim/test_window.py
    fails: a mutation, session 43)."""
    direct = Signal(dist_bits(rows), name="wrap_dist_direct", reset_less=True)
    conv = Signal(dist_bits(rows), name="wrap_dist_conv", reset_less=True)
    m.d.sync += [direct.eq(dist_onehot(desc.ksplit_m1, rows)),
                 conv.eq(dist_onehot(desc.out_w, rows, 1))]
    return direct, conv


# stage C's and G's per-candidate data registers: each its own flip-flops (see `_selects`)
_UNS = {"reset_less": True, "attrs": UNSHARED}


@dataclass(frozen=True)
class _Lanes:
    """How stages C and D pick a lane's byte (`_lanes`): the low bits within a candidate
    group of bytes, the high bits among the ``n_cand`` candidates."""

    lane_bits: int
    lo_bits: int
    group: int  # lanes per candidate
    n_cand: int


def _lanes(cols: int) -> _Lanes:
    """The lane split of a row of ``cols`` bytes."""
    lane_bits = max(1, (cols - 1).bit_length())
    lo_bits = lane_bits // 2
    group = 1 << lo_bits  # lanes per candidate
    n_cand = -(-cols // group)
    return _Lanes(lane_bits, lo_bits, group, n_cand)


class _P(NamedTuple):
    """Stage P's registers (`RowFeeder._stage_p`)."""

    latched: data.View
    tok: data.View
    direct: Signal


class _A(NamedTuple):
    """Stage A's registers (`RowFeeder._stage_a`)."""

    addr: Signal
    iy: Signal
    ix: Signal
    direct: Signal
    lane: Signal
    flags: Signal


class _B(NamedTuple):
    """Stage B's registers (`RowFeeder._stage_b`)."""

    oob_y: Signal
    oob_x: Signal
    lane: Signal
    flags: Signal


class _M(NamedTuple):
    """Stage M's registers (`RowFeeder._stage_m`)."""

    word0: Signal
    word1: Signal
    lane: Signal
    flags: Signal


class _Sel(NamedTuple):
    """Stage C's select registers, one per candidate (`RowFeeder._selects`)."""

    src: list[Signal]
    lo: list[Signal]
    oob: list[Signal]


class _G(NamedTuple):
    """Stage G's registers (`RowFeeder._stage_g`)."""

    grp: list[Signal]
    lo: list[Signal]
    oob: list[Signal]
    lane: Signal
    flags: Signal


class _C(NamedTuple):
    """Stage C's registers (`RowFeeder._stage_c`)."""

    cand: Signal
    hi: Signal
    flags: Signal


class RowFeeder(wiring.Component):
    def __init__(self, *, index: int, rows: int, cols: int, addr_width: int) -> None:
        self.index = index
        self.rows = rows
        self.cols = cols
        self.addr_width = addr_width
        cfg = feed_cfg_layout(rows)
        super().__init__(
            {
                "cfg_in": In(cfg),  # this row's constants (feed_cfg or row i-1's cfg_out)
                "cfg_out": Out(cfg),  # cfg_in one cycle later, for row i+1
                "tok_in": In(TOKEN_LAYOUT),
                "pix_in": In(PIXEL_LAYOUT),  # sequencer (row 0) or row i-1's latched pixel
                "tok_out": Out(TOKEN_LAYOUT),
                "pix_out": Out(PIXEL_LAYOUT),  # (its `left`: row 0's, unread past row 0)
                # the latched pixel's distance to its output row's last, one-hot
                # (`dist_onehot`; row 0 computes its own from the sequencer's `left`)
                "dist_in": In(dist_bits(rows)),
                "dist_out": Out(dist_bits(rows)),
                # row i+1's pixel-latch controls, registered here beside tok_out (timing:
                # the latch's enable and its `ox` reset were a LUT of row i's token flags
                # and wrap flag, routed across to row i+1, up to 6.8 ns on oob13):
                # latch_out is high when row i+1's token is a tile's first (tok_out.valid &
                # tok_out.first); wrap_out with it when the pixel this row latched in that
                # cycle is the last of its output row (distance 0), so row i+1 steps to the
                # next output row
                "latch_in": In(1),
                "latch_out": Out(1),
                "wrap_in": In(1),
                "wrap_out": Out(1),
                # row i+1's `wraps` (its latch and its wrap flag: it steps to the next output
                # row), computed here a cycle early from this row's distance, so row i+1's
                # step select (`inc_out`) is a flip-flop's fan-out (timing: latch_out -> the
                # wrap LUT -> feed 6's inc_out.base D, 8.43 ns on the 12x16 of 823c12c, the
                # register pulled to a die corner by its ~80 clock-enable loads)
                "wraps_in": In(1),
                "wraps_out": Out(1),
                # with them, the step row i+1 adds to this row's latched pixel (INC_LAYOUT),
                # selected by wrap_out's flag here (timing: row i+1's add and a select by
                # the flag from row i in one cycle, feed 6's base D 8.19 ns at 125 MHz)
                "inc_in": In(INC_LAYOUT),
                "inc_out": Out(INC_LAYOUT),
                "raddr": Out(unsigned(addr_width)),
                # stage A's address one cycle early (unregistered): top.py registers row 0's
                # port-A address itself, after its mux with the debug/result reads
                "raddr_next": Out(unsigned(addr_width)),
                "rdata0": In(unsigned(8 * cols)),
                "rdata1": In(unsigned(8 * cols)),
                "row": Out(ROW_IN_LAYOUT),
                "word0": Out(unsigned(8 * cols)),  # stage M's registered words, for the
                "word1": Out(unsigned(8 * cols)),  # result transfer (row 0 only)
            }
        )

    def follow(self, prev: RowFeeder) -> list:
        """The assignments that chain this row after row ``prev`` (its token, pixel, wrap
        flag and per-layer constants, one cycle later)."""
        return [self.tok_in.eq(prev.tok_out), self.pix_in.eq(prev.pix_out),
                self.dist_in.eq(prev.dist_out),
                self.latch_in.eq(prev.latch_out), self.wrap_in.eq(prev.wrap_out),
                self.wraps_in.eq(prev.wraps_out),
                self.inc_in.eq(prev.inc_out),
                self.cfg_in.eq(prev.cfg_out)]

    def elaborate(self, platform) -> Module:
        """The forwarding registers, then stages P, A, B, M, G, C and D (module docstring)."""
        m = Module()
        self._forward(m)
        p = self._stage_p(m)
        a = self._stage_a(m, p)
        b = self._stage_b(m, a)
        mw = self._stage_m(m, b)
        ln = _lanes(self.cols)
        sel = self._selects(m, b, ln)
        g = self._stage_g(m, mw, sel, ln)
        c = self._stage_c(m, g, ln)
        self._stage_d(m, c, ln)
        return m

    def _forward(self, m: Module) -> None:
        """The token and the per-layer constants to the next row, one cycle later."""
        # The token moves on to the next row one cycle later (the systolic skew), and so do
        # the per-layer constants.
        # (per-layer constants: no reset needed)
        cfg_r = Signal(feed_cfg_layout(self.rows), reset_less=True)
        m.d.sync += cfg_r.eq(self.cfg_in)
        m.d.comb += [self.tok_out.eq(_token_reg(m, self.tok_in, "tok_r")),
                     self.cfg_out.eq(cfg_r)]

    def _step(self, m: Module) -> tuple[data.View, Signal, Signal, Signal]:
        """Stage P's next pixel, its distance, `wraps` (latch & wrap flag) and the latch
        enable."""
        d, tok = self.cfg_in, self.tok_in
        # Row i-1 latched its pixel one cycle earlier with the same tile's constants (they
        # travel with the skew). The wrap flag (this row's pixel ends its output row) is
        # bit 0 of the one-hot distance, a shift of row i-1's (timing: one LUT from flip-
        # flops across the rows, not a 12-bit compare of row i-1's ox, 8.47 ns routed);
        # row i-1 registers it, ANDed with the latch, as `wraps_in`
        prev = self.pix_in
        step = Signal(PIXEL_LAYOUT)
        dist = Signal(dist_bits(self.rows))
        wraps = Signal()  # latch, and step is its output row's last pixel
        latch = Signal()  # this row's token is a tile's first: latch `step`
        if self.index == 0:
            # the sequencer already computed row 0's pixel and its distance to its output
            # row's last, `left` (registers): its one-hot distance is compares of `left`,
            # its bit 0 (the wrap flag, left == 0) the sequencer's `row_end` flip-flop
            onehot = dist_onehot(prev.left, self.rows)
            m.d.comb += [step.eq(prev), dist.eq(Cat(prev.row_end, onehot[1:])),
                         latch.eq(tok.valid & tok.first), wraps.eq(latch & prev.row_end)]
            return step, dist, wraps, latch
        # (left: row 0's passed on, read by no row after it; synthesis removes the copies)
        # (wraps: row i-1's register of latch & dist[0], `_stage_p`)
        m.d.comb += [latch.eq(self.latch_in), wraps.eq(self.wraps_in), step.left.eq(prev.left),
                     step.row_end.eq(prev.row_end),
                     step.ix0.eq(prev.ix0 + self.inc_in.ix),
                     step.iy0.eq(prev.iy0 + self.inc_in.iy),
                     step.base.eq(prev.base + self.inc_in.base),
                     dist.eq(Mux(self.wrap_in, d.wrap_dist, self.dist_in[1:]))]
        return step, dist, wraps, latch

    def _stage_p(self, m: Module) -> _P:
        """Stage P: the row's pixel, latched on a tile's first token; the token registered."""
        tok = self.tok_in
        # --- stage P: pixel of this row for the current tile (latched on its first token)
        step, dist, wraps, latch = self._step(m)
        # Reset-less: each tile's first token latches it in every row (row i-1 first) before
        # any valid token reads it.
        latched = Signal(PIXEL_LAYOUT, reset_less=True)
        latched_dist = Signal(dist_bits(self.rows), reset_less=True)
        with m.If(latch):
            m.d.sync += [latched.eq(step), latched_dist.eq(dist)]
        latch_out = Signal()
        wrap_out = Signal()
        inc = Signal(INC_LAYOUT, name="inc_r", reset_less=True)
        wraps_out = Signal()
        d = self.cfg_in  # row i+1's constants one cycle later (they travel with the skew)
        # row i+1's wrap flag when it latches next cycle: bit 0 of its distance, which is
        # this one's shifted down a bit or, after a wrap here, the constants' (see `_step`)
        nxt = Mux(wraps, d.wrap_dist[0], dist[1] if len(dist) > 1 else 0)
        m.d.sync += [latch_out.eq(tok.valid & tok.first), wrap_out.eq(wraps),
                     wraps_out.eq(latch & nxt),
                     inc.base.eq(Mux(wraps, d.wrap_base, d.step1)),
                     inc.ix.eq(Mux(wraps, d.wrap_x, d.stride)),
                     inc.iy.eq(Mux(wraps, d.stride, 0))]
        m.d.comb += [self.pix_out.eq(latched), self.dist_out.eq(latched_dist),
                     self.latch_out.eq(latch_out),
                     self.wrap_out.eq(wrap_out), self.wraps_out.eq(wraps_out),
                     self.inc_out.eq(inc)]
        p_tok = _token_reg(m, tok, "p_tok")
        # the mode of this token's tile (it may change with the next token: a remainder tile)
        p_direct = Signal(reset_less=True)
        m.d.sync += p_direct.eq(self.cfg_in.mode)
        return _P(latched, p_tok, p_direct)

    def _stage_a(self, m: Module, p: _P) -> _A:
        """Stage A: the read address (``raddr_next``) and the window position, registered."""
        # --- stage A: address and window position. From here on the data (address,
        # position, lane, byte) is reset-less and only the flags (valid, first, last) are reset.
        addr = Signal(signed(A + 1))
        m.d.comb += addr.eq(p.latched.base + p.tok.off)
        m.d.comb += self.raddr_next.eq(addr)
        a_addr = Signal(self.addr_width, reset_less=True)
        a_iy = Signal(signed(17), reset_less=True)
        a_ix = Signal(signed(17), reset_less=True)
        a_direct = Signal(reset_less=True)
        a_lane = Signal(8, reset_less=True)
        a_flags = Signal(3)
        m.d.sync += [
            a_addr.eq(addr),
            a_iy.eq(p.latched.iy0 + p.tok.ky),
            a_ix.eq(p.latched.ix0 + p.tok.kx),
            a_direct.eq(p.direct),
            a_lane.eq(p.tok.lane),
            a_flags.eq(Mux(p.tok.valid, p.tok.as_value()[:3], 0)),
        ]
        return _A(a_addr, a_iy, a_ix, a_direct, a_lane, a_flags)

    def _stage_b(self, m: Module, a: _A) -> _B:
        """Stage B: the memory read (``raddr``) and the bounds compares, registered."""
        d = self.cfg_in
        # --- stage B: registered memory read; the bounds compare beside it (not after
        # stage A's adds, `_stage_a`: add + compare in one cycle was a 7.9 ns path on the
        # routed 8x8). Direct mode has no padding; a K part past the input reads words whose
        # weights are 0.
        m.d.comb += self.raddr.eq(a.addr)
        # The row and column verdicts are registered apart and ORed into stage C's c_oob
        # (timing: both compares' carry chains, their OR and the mode behind one PFUMX
        # failed in every feeder of land13's routed seeds, up to 7.41 ns).
        b_oob_y = Signal(reset_less=True)
        b_oob_x = Signal(reset_less=True)
        b_lane = Signal(8, reset_less=True)
        b_flags = Signal(3)
        m.d.sync += [b_oob_y.eq(~a.direct & ((a.iy < 0) | (a.iy >= d.in_h))),
                     b_oob_x.eq(~a.direct & ((a.ix < 0) | (a.ix >= d.in_w))),
                     b_lane.eq(a.lane), b_flags.eq(a.flags)]
        return _B(b_oob_y, b_oob_x, b_lane, b_flags)

    def _stage_m(self, m: Module, b: _B) -> _M:
        """Stage M: the memory's output words registered (``word0``/``word1``)."""
        # --- stage M: the memory outputs straight into registers
        m_word0 = Signal(8 * self.cols, reset_less=True)
        m_word1 = Signal(8 * self.cols, reset_less=True)
        m_lane = Signal(8, reset_less=True)
        m_flags = Signal(3)
        m.d.sync += [
            m_word0.eq(self.rdata0),
            m_word1.eq(self.rdata1),
            m_lane.eq(b.lane),
            m_flags.eq(b.flags),
        ]
        m.d.comb += [self.word0.eq(m_word0), self.word1.eq(m_word1)]
        return _M(m_word0, m_word1, m_lane, m_flags)

    def _selects(self, m: Module, b: _B, ln: _Lanes) -> _Sel:
        """Stage C's selects (buffer, lane's low bits, padding), one copy per candidate."""
        src = self.cfg_in.src
        # Stage C's selects, one copy per candidate byte beside stage M (timing: the buffer
        # select `src` came from row i-1's constants and, with the lane's low bits and the
        # padding flag, each drove all 8 * n_cand byte bits of the row: 32+ loads per net on
        # the 8x8). `src` is a per-layer constant, here one cycle later than cfg_in: the
        # layer's first token reaches stage C several cycles after that (see the module
        # docstring).
        n_cand, lo_bits = ln.n_cand, ln.lo_bits
        c_src = [Signal(name=f"c_src{q}", **_UNS) for q in range(n_cand)]
        c_lo = [Signal(max(lo_bits, 1), name=f"c_lo{q}", **_UNS) for q in range(n_cand)]
        c_oob = [Signal(name=f"c_oob{q}", **_UNS) for q in range(n_cand)]
        for q in range(n_cand):
            m.d.sync += [c_src[q].eq(src), c_lo[q].eq(b.lane[:lo_bits]),
                         c_oob[q].eq(b.oob_y | b.oob_x)]
        return _Sel(c_src, c_lo, c_oob)

    def _stage_g(self, m: Module, mw: _M, sel: _Sel, ln: _Lanes) -> _G:
        """Stage G: each candidate's group of bytes from the selected buffer, registered."""
        n_cand, lo_bits, group = ln.n_cand, ln.lo_bits, ln.group
        # --- stage G: the buffer, one 2:1 mux per bit (the lane and flags wait beside it)
        g_grp = [Signal(8 * group, name=f"g_grp{q}", reset_less=True) for q in range(n_cand)]
        g_lo = [Signal(max(lo_bits, 1), name=f"g_lo{q}", **_UNS) for q in range(n_cand)]
        g_oob = [Signal(name=f"g_oob{q}", **_UNS) for q in range(n_cand)]
        g_lane = Signal(8, reset_less=True)
        g_flags = Signal(3)
        for q in range(n_cand):
            sl = slice(8 * group * q, 8 * group * (q + 1))  # (zero-padded past the last lane)
            m.d.sync += [g_grp[q].eq(Mux(sel.src[q], mw.word1[sl], mw.word0[sl])),
                         g_lo[q].eq(sel.lo[q]), g_oob[q].eq(sel.oob[q])]
        m.d.sync += [g_lane.eq(mw.lane), g_flags.eq(mw.flags)]
        return _G(g_grp, g_lo, g_oob, g_lane, g_flags)

    def _stage_c(self, m: Module, g: _G, ln: _Lanes) -> _C:
        """Stage C: each candidate's byte by the lane's low bits, zero if out of bounds."""
        lo_bits = ln.lo_bits
        # --- stage C: the lane's low bits -> candidate bytes, padding zero. The 16:1 byte
        # select (+ buffer, + padding) in one cycle was a 9.3 ns path on the routed 8x8.
        c_cand = Signal(8 * ln.n_cand, reset_less=True)
        c_hi = Signal(ln.lane_bits - lo_bits, reset_less=True)
        c_flags = Signal(3)
        for q in range(ln.n_cand):
            grp = g.grp[q]
            byte = grp.word_select(g.lo[q][:lo_bits], 8) if lo_bits else grp
            m.d.sync += c_cand[8 * q : 8 * (q + 1)].eq(Mux(g.oob[q], 0, byte))
        m.d.sync += [c_flags.eq(g.flags), c_hi.eq(g.lane[lo_bits : ln.lane_bits])]
        return _C(c_cand, c_hi, c_flags)

    def _stage_d(self, m: Module, c: _C, ln: _Lanes) -> None:
        """Stage D: the candidate by the lane's high bits, registered into ``row``."""
        # --- stage D: the candidate by the lane's high bits, into row_in[i]
        row_a = Signal(signed(8), reset_less=True)
        pick = c.cand.word_select(c.hi, 8) if ln.n_cand > 1 else c.cand
        m.d.sync += [
            self.row.valid.eq(c.flags[0]),
            self.row.first.eq(c.flags[1]),
            self.row.last.eq(c.flags[2]),
            row_a.eq(pick),
        ]
        m.d.comb += self.row.a.eq(row_a)
