"""Issue stage: walks one layer's tiles and emits row 0's element stream and weight reads.

Loop nest (see hwgen.schedule.lower for why): for g in groups: for tile in ptiles:
for t in interval: element k = t is valid while t < K. The K loop runs (ky, kx, c) with c
innermost; the word offset inside the window is kept incrementally (+1 per lane wrap or
channel-loop end, +row_jump when the kernel's x loop wraps), so nothing multiplies. The
channel-loop-end step is the descriptor's ``c_step``: 1 when the input fills its pixels'
words, more when it is one part of a wider Concat/Add region (hwgen.schedule.alloc).
All outputs are registered; every consumer sees the same one-cycle issue latency.
"""


from typing import NamedTuple

from amaranth import Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .attrs import UNSHARED
from .descriptor import DESC_LAYOUT
from .traits import trait

__all__ = ["TOKEN_LAYOUT", "PIXEL_LAYOUT", "Sequencer"]

A = 24
TOKEN_LAYOUT = data.StructLayout(
    {
        "valid": 1,
        "first": 1,
        "last": 1,
        "off": signed(A),
        "lane": unsigned(8),
        "ky": unsigned(12),
        "kx": unsigned(12),
    }
)
# Window origin of a row's output pixel; only meaningful with a `first` token.
PIXEL_LAYOUT = data.StructLayout(
    # left: the pixels from row 0's to its output row's last (the layer's last x position,
    # direct mode's last K part, minus ox): row 0's wrap flag and one-hot distance are
    # compares of a flip-flop (timing: a subtract in front of them was feed 0's
    # latched_dist D, 7.78 ns on the 12x16 of 74c9adf seed 2)
    # (row_end: left == 0, registered beside it: row 0's wrap flag selects its step for row
    # 1, 45 flip-flops; the compare in front of that select was 8.65 ns on ad6745c seed 1)
    {"left": unsigned(12), "row_end": 1, "iy0": signed(16), "ix0": signed(16),
     "base": signed(A)}
)


# The Sequencer's ports (a design with two-stream remainder tiles adds w2_*, __init__)
_PORTS = {
    "desc": In(DESC_LAYOUT),
    # one-cycle pulse; desc must be stable from the cycle before it until done (the per-layer
    # registers, `Sequencer._layer_regs`, are computed from desc in that cycle)
    "start": In(1),
    # high exactly in the cycle before `start` (the controller knows it a cycle ahead): the
    # K-loop restart flag is registered from it
    "start_next": In(1),
    "busy": Out(1),
    "tok": Out(TOKEN_LAYOUT),
    "pix": Out(PIXEL_LAYOUT),
    "convw_en": Out(1),
    "convw_addr": Out(unsigned(A)),
    "directw_en": Out(1),
    "directw_addr": Out(unsigned(A)),
    # the tile being issued is a conv layer's remainder tile (direct mode, K split; see
    # hwgen.schedule.lower._remainder): a register, valid in the cycle the token is issued
    # (so registered beside it, it lines up with `tok`)
    "rem": Out(1),
}


class _Part1(NamedTuple):
    """The part-1 stream's registers the main loop steps (see ``Sequencer._part1``)."""

    g2base: Signal  # the group's part-1 base: gbase + rem_k_len
    z1: Signal  # part 1's real elements are over in this tile
    k1_m1: Signal  # k_len - rem_k_len - 1


class _Loops(NamedTuple):
    """The loop counters and positions, and `running` (see ``Sequencer._counters``)."""

    t: Signal
    g: Signal
    tp: Signal
    ky: Signal
    kx: Signal
    lane: Signal
    off: Signal
    ox: Signal
    iy0: Signal
    ix0: Signal
    base: Signal
    gbase: Signal
    dptr: Signal
    running: Signal


class _Tile(NamedTuple):
    """The current tile's registers and the direct-word flags (``Sequencer._tile_regs``)."""

    rem_t: Signal  # a remainder tile
    cur_k_m1: Signal  # the tile's K - 1
    tl: Signal  # interval - 3 - t of the tile, counted down
    tail_on: Signal
    tail_left: Signal
    dir_on: Signal
    dir_c: Signal
    tail_c: Signal
    rd_direct: Signal


class _Layer(NamedTuple):
    """The per-layer constants, registered from the descriptor (``Sequencer._layer_regs``)."""

    k_m1: Signal
    pt_m2: Signal
    g_m2: Signal
    pt_one: Signal
    g_one: Signal
    cin_one: Signal
    kw_one: Signal
    cin_m3: Signal
    kw_m3: Signal
    k_row: Signal
    c_step: Signal
    wrap_dix: Signal
    wrap_diy: Signal
    wrap_dbase: Signal
    rk_m1: Signal
    int_m3: Signal
    rint_m3: Signal
    rem_on: Signal
    rem_ovl: Signal
    last_ox: Signal


class _Ends(NamedTuple):
    """The loop-end flags, tile-step events and next tile's loads (``Sequencer._loop_ends``)."""

    t_end: Signal
    tp_end: Signal
    g_end: Signal
    elem: Signal
    last_t: Value  # t == interval - 2
    p_step: Signal
    g_step: Signal
    stop: Signal
    nox: Signal
    nox_wrap: Signal
    ox_wraps: Signal
    tp_pen: Signal  # tp == ptiles - 2
    tl_first: Signal  # tl's load at start and a group step
    tl_p: Signal  # tl's load at a pixel-tile step


class _KFlags(NamedTuple):
    """The K loop's end flags and down-counters (``_kloop_flags``)."""

    c_end: Signal
    kx_end: Signal
    c_l2: Signal
    kx_l2: Signal
    lane_end: Signal


def _kloop_flags(C: int) -> _KFlags:
    """The K loop's end flags, and the counters they are read from."""
    rl = {"reset_less": True}
    # c == cin - 1 and kx == kw - 1 (c: the channel), kept as flags (timing: the K loop's
    # offset add is selected by flip-flops, not by two 12-bit compares)
    c_end, kx_end = Signal(name="c_end", **rl), Signal(name="kx_end", **rl)
    # the channels / kernel columns left after the current one, minus 2, counted down:
    # the next end flag is the counter's sign bit (no 12-bit compare in front of it)
    # (start loads them)
    c_l2, kx_l2 = Signal(signed(14), name="c_l2", **rl), Signal(signed(14), name="kx_l2", **rl)
    # lane == C - 1, a flag set with lane (timing: no compare in front of the lane's and
    # the offset's reset/step selects)
    lane_end = Signal(init=C == 1, reset_less=True)
    return _KFlags(c_end, kx_end, c_l2, kx_l2, lane_end)


def _reset_kloop(lp: _Loops, kf: _KFlags, lay: _Layer, C: int) -> list:
    """The K loop's restart: every counter and end flag at the loop's first element."""
    return [lp.ky.eq(0), lp.kx.eq(0), lp.lane.eq(0), kf.lane_end.eq(C == 1), lp.off.eq(0),
            kf.c_end.eq(lay.cin_one), kf.c_l2.eq(lay.cin_m3), kf.kx_end.eq(lay.kw_one),
            kf.kx_l2.eq(lay.kw_m3)]  # fmt: skip


def _reset_pixel(lp: _Loops, d: data.View) -> list:
    """Row 0's pixel at the group's first tile."""
    return [lp.ox.eq(0), lp.iy0.eq(d.init_pos), lp.ix0.eq(d.init_pos),
            lp.base.eq(d.init_base)]  # fmt: skip


class Sequencer(wiring.Component):
    def __init__(self, *, cols: int, rows: int, stream: bool = False) -> None:
        self.cols = cols
        self.rows = rows
        # two-stream remainder tiles (ArrayConfig.remainder_stream): a remainder tile is a
        # conv tile of K part 0 (convw_addr) and part 1 (w2_addr: the next rem_k_len words,
        # w2_zero past its k_len - rem_k_len real ones), both registered like the token
        self.stream = stream
        sig = dict(_PORTS)
        if stream:
            sig |= {"w2_on": Out(1), "w2_zero": Out(1), "w2_addr": Out(unsigned(A))}
        super().__init__(wiring.Signature(sig))

    @property
    def _tail_len(self) -> int:
        """The tail's length in cycles: R + C - 2."""
        return self.rows + self.cols - 2

    def elaborate(self, platform) -> Module:
        """The issue stage, piece by piece (the order of the pieces fixes the netlist)."""
        m = Module()
        d = self.desc
        lp = self._counters()
        tile = self._tile_regs(m, lp.running)
        lay = self._layer_regs(m, d)
        ends = self._loop_ends(m, d, lp, tile, lay, trait(platform, "path_registers"))
        kf = _kloop_flags(self.cols)
        held = self._outputs(m, lp, tile)
        tgo, p1 = self._issue_regs(m, d, lp, tile, lay, ends, held)
        with m.If(self.start):
            self._on_start(m, d, lp, tile, lay, ends, p1)
        with m.Else():
            self._steps(m, d, lp, tile, lay, ends, p1, tgo)
        self._kloop(m, lp, kf, lay, ends.elem)
        self._tail_and_direct(m, d, lp, tile, lay, ends)
        self._kloop_restart(m, lp, kf, lay, ends, tgo, p1)
        return m

    def _counters(self) -> _Loops:
        """The loop counters and positions (reset-less), and `running`."""
        # The loop counters and positions are reset-less: `start` (t, g, tp, the pixel, the
        # weight pointers) and the K-loop restart `kr` (ky, kx, lane, off and their end
        # flags) load them before any issue reads them (timing: their synchronous reset is
        # then one flip-flop, not a LUT with the design reset in front of ~100 LSR pins).
        nr = {"reset_less": True}
        t = Signal(20, **nr)
        g = Signal(12, **nr)
        tp = Signal(16, **nr)
        ky = Signal(12, **nr)
        kx = Signal(12, **nr)
        lane = Signal(8, **nr)
        off = Signal(signed(A), **nr)
        ox = Signal(12, **nr)
        iy0 = Signal(signed(16), **nr)
        ix0 = Signal(signed(16), **nr)
        base = Signal(signed(A), **nr)
        gbase = Signal(unsigned(A), **nr)
        dptr = Signal(unsigned(A), **nr)
        running = Signal()
        return _Loops(t, g, tp, ky, kx, lane, off, ox, iy0, ix0, base, gbase, dptr, running)

    def _tile_regs(self, m: Module, running: Signal) -> _Tile:
        """The current tile's flag and loop ends, the tail's and direct words' flags, busy."""
        # Per tile: the remainder tile's flag and the loop ends of the current tile (its K
        # and interval differ from the layer's), registers set at the tile steps.
        rem_t = Signal()
        cur_k_m1 = Signal(20, reset_less=True)
        # tl = interval - 3 - t of the current tile, counted down: t == interval - 2 (the
        # tile's last-but-one cycle, `last_t`) is its sign bit (timing: no 20-bit compare in
        # front of t_end/stop/kr). Loaded at every tile step with the next tile's value.
        tl = Signal(signed(21), reset_less=True)
        m.d.comb += self.rem.eq(rem_t)
        tail_on = Signal(attrs=UNSHARED)  # (and tail_c: see dir_on)
        tail_left = Signal(range(self._tail_len + 1))
        # dir_on == running & (d.mode | rem_t) in every cycle, a flag set with rem_t at the
        # tile steps (0 at the last, the stop step: g_end). dptr's enable, start | dir_on |
        # tail_on, reads copies of the two flags (UNSHARED; timing: one LUT of three
        # flip-flops, where running & (mode | rem_t) | tail_on with `start` was two levels,
        # 6.69 ns routed on b24ce83; with the same flip-flops ABC reuses rd_direct's LUT).
        dir_on = Signal(attrs=UNSHARED)
        dir_c = Signal(attrs=UNSHARED)
        tail_c = Signal(attrs=UNSHARED)
        rd_direct = Signal()
        m.d.comb += rd_direct.eq(dir_on | tail_on)

        m.d.comb += self.busy.eq(running | self.start)
        return _Tile(rem_t, cur_k_m1, tl, tail_on, tail_left, dir_on, dir_c, tail_c, rd_direct)

    def _layer_regs(self, m: Module, d: data.View) -> _Layer:
        """The per-layer constants, registered from the descriptor in every cycle."""
        # Per-layer constants derived from the descriptor, registered every cycle. The
        # controller holds the whole descriptor in `desc` for a cycle before `start`, so they
        # are valid in the start cycle: the start branch, the loop-end tests and the tile
        # steps read registers, not compares or adds on the descriptor.
        # (Rewritten every cycle, so reset-less: off the reset net.)
        rl = {"reset_less": True}
        k_m1 = Signal(20, **rl)
        pt_m2 = Signal(16, **rl)
        g_m2 = Signal(12, **rl)
        pt_one = Signal(**rl)
        g_one = Signal(**rl)
        # cin == 1, kw == 1 (all ones when cin / kw is 1: never equal)
        cin_one, kw_one = Signal(name="cin_one", **rl), Signal(name="kw_one", **rl)
        # the K loop's channel and kernel-x counts minus 3 (the down-counters' start values)
        cin_m3 = Signal(signed(14), name="cin_m3", **rl)
        kw_m3 = Signal(signed(14), name="kw_m3", **rl)
        k_row = Signal(signed(A), **rl)
        c_step = Signal(unsigned(12), **rl)
        wrap_dix = Signal(signed(17), **rl)
        wrap_diy = Signal(signed(17), **rl)
        wrap_dbase = Signal(signed(A + 1), **rl)
        rk_m1 = Signal(20, **rl)
        int_m3 = Signal(signed(21), **rl)
        rint_m3 = Signal(signed(21), **rl)
        rem_on = Signal(**rl)
        # the remainder tile is issued after its K part, the next tile beside its last
        # R + C - 2 weight words (hwgen.schedule.lower._remainder)
        rem_ovl = Signal(**rl)
        # a tile's last x position: direct mode's last K part, a conv's last output column
        last_ox = Signal(12, **rl)
        m.d.sync += last_ox.eq(Mux(d.mode, d.ksplit_m1, d.out_w - 1))
        m.d.sync += [
            rk_m1.eq(d.rem_k_len - 1),
            rint_m3.eq(d.rem_interval - 3),
            rem_on.eq(d.rem),
            rem_ovl.eq((d.rem_interval == d.rem_k_len) & (not self.stream)),
        ]
        m.d.sync += [
            k_m1.eq(d.k_len - 1),
            int_m3.eq(d.interval - 3),
            pt_m2.eq(d.ptiles - 2),
            g_m2.eq(d.groups - 2),
            pt_one.eq(d.ptiles == 1),
            g_one.eq(d.groups == 1),
            cin_one.eq(d.cin == 1),
            kw_one.eq(d.kw == 1),
            cin_m3.eq(d.cin - 3),
            kw_m3.eq(d.kw - 3),
            c_step.eq(d.c_step),
            k_row.eq(d.c_step + d.row_jump),
            wrap_dix.eq(d.tile_dix - d.wrap_ix),
            wrap_diy.eq(d.tile_diy + d.stride),
            wrap_dbase.eq(d.tile_dbase + d.wrap_delta),
        ]
        return _Layer(k_m1, pt_m2, g_m2, pt_one, g_one, cin_one, kw_one, cin_m3, kw_m3, k_row,
                      c_step, wrap_dix, wrap_diy, wrap_dbase, rk_m1, int_m3, rint_m3, rem_on,
                      rem_ovl, last_ox)  # fmt: skip

    def _loop_ends(self, m: Module, d: data.View, lp: _Loops, tile: _Tile, lay: _Layer,
                   path_regs: bool = True) -> _Ends:
        """The loop-end flags, the tile-step events and the next tile's precomputed values."""
        rl = {"reset_less": True}
        # Loop-end flags, registered one step ahead (t == interval-1, tp == ptiles-1,
        # g == groups-1, t < k_len): the wide compares feed these flags, not the enables.
        # Needs interval >= 2 (hwgen.schedule.lower guarantees it): a tile step's effects are
        # registered before the next one.
        t_end = Signal()
        tp_end = Signal()
        g_end = Signal()
        elem = Signal()
        last_t = tile.tl[-1]  # t == interval - 2 (valid while running and not t_end)
        # The tile-step events, registered with t_end (so each enable, `_steps`, is one flag,
        # not a chain of nested conditions): t_end & ~tp_end, t_end & tp_end, and the last step.
        p_step = Signal()
        g_step = Signal()
        stop = Signal()
        # next tile step's x position, precomputed from ox (which changes only at tile steps)
        # (ox + dx >= out_w is ox >= out_w - dx, with out_w - dx a per-layer register: one
        # carry chain per flag, not an add in front of a compare)
        nox = Signal(12, **rl)
        nox_wrap = Signal(12, **rl)
        ox_wraps = Signal(**rl)
        ow_dx = Signal(signed(len(d.out_w) + 1), **rl)
        m.d.sync += [
            ow_dx.eq(d.out_w - d.dx),
            nox.eq(lp.ox + d.dx),
            nox_wrap.eq(lp.ox - ow_dx),
            ox_wraps.eq(lp.ox >= ow_dx),
        ]

        # tp == ptiles - 2 (the next tile step ends the group's pixel tiles), registered every
        # cycle: tp changes only at tile steps, which are >= 2 cycles apart (interval >= 2), so
        # it is valid at every tile step (timing: no 16-bit compare in front of the remainder
        # tile's selects)
        tp_pen = Signal(**rl)
        m.d.sync += tp_pen.eq(lp.tp == lay.pt_m2)
        # tl's load values, registers (timing: the remainder selects in front of tl's 21 bits
        # with its step and load enables were 12 inputs, 6.87 ns routed on s14 seed 2): at
        # start and a group step the group's first tile's (a per-layer register from the
        # descriptor, which holds through the layer), at a pixel-tile step the next tile's
        # (registered every cycle like tp_pen, and valid at every tile step for the same reason)
        tl_first = Signal.like(tile.tl, **rl)
        tl_p = Signal.like(tile.tl, **rl)
        if path_regs:
            m.d.sync += [
                tl_first.eq(Mux(d.rem & (d.ptiles == 1), d.rem_interval - 3, d.interval - 3)),
                tl_p.eq(Mux(lay.rem_on & (lp.tp == lay.pt_m2), lay.rint_m3, lay.int_m3))]
        else:
            # a small device (trait `path_registers`): both from the per-layer registers, the
            # way cur_k_m1 loads (the same values at start and at every tile step: the layer
            # registers hold from the cycle before start, tp_pen at every tile step)
            m.d.comb += [tl_first.eq(Mux(lay.rem_on & lay.pt_one, lay.rint_m3, lay.int_m3)),
                         tl_p.eq(Mux(lay.rem_on & tp_pen, lay.rint_m3, lay.int_m3))]
        return _Ends(t_end, tp_end, g_end, elem, last_t, p_step, g_step, stop, nox, nox_wrap,
                     ox_wraps, tp_pen, tl_first, tl_p)  # fmt: skip

    def _outputs(self, m: Module, lp: _Loops, tile: _Tile
                 ) -> tuple[data.View, data.View, Signal]:
        """The registered outputs and their defaults; returns the issue's held registers."""
        # Registered outputs (default: nothing issued this cycle). Only the token's valid and
        # the enables are reset; the token's first/last and data, the pixel and the weight
        # addresses are reset-less (read with a valid token or an enable only).
        tok_d = Signal(TOKEN_LAYOUT, reset_less=True)
        pix_d = Signal(PIXEL_LAYOUT, reset_less=True)
        convw_addr = Signal.like(self.convw_addr, reset_less=True)
        directw_addr = Signal.like(self.directw_addr, reset_less=True)
        m.d.comb += [
            self.tok.first.eq(tok_d.first),
            self.tok.last.eq(tok_d.last),
            self.tok.off.eq(tok_d.off),
            self.tok.lane.eq(tok_d.lane),
            self.tok.ky.eq(tok_d.ky),
            self.tok.kx.eq(tok_d.kx),
            self.pix.eq(pix_d),
            self.convw_addr.eq(convw_addr),
            self.directw_addr.eq(directw_addr),
        ]
        held = (tok_d, pix_d, convw_addr)
        m.d.sync += [
            self.convw_en.eq(0),
            self.directw_en.eq(tile.rd_direct),
            directw_addr.eq(lp.dptr),
        ]
        return held

    def _issue_regs(self, m: Module, d: data.View, lp: _Loops, tile: _Tile, lay: _Layer,
                    ends: _Ends, held: tuple[data.View, data.View, Signal]
                    ) -> tuple[Signal, _Part1 | None]:
        """iss, tgo and the tile-step events from them, and the issue; returns tgo, part 1."""
        # iss == running & ~start in every cycle, a flip-flop set from their next values
        # (start's is start_next): the issued token's flags are reset by this one flip-flop
        # (timing: start | ~running was a LUT in front of the token flags' and the pixel's
        # LSR pins, 7.3 ns routed on the 8x8). running's next value is start | running & ~stop.
        iss = Signal()
        iss_next = (self.start | (lp.running & ~ends.stop)) & ~self.start_next
        m.d.sync += iss.eq(iss_next)
        p1 = self._part1(m, d, lp.t, ends.elem, tile.rem_t, iss) if self.stream else None
        # tgo == iss & ~t_end (a running cycle that is not a tile step: t counts on) in every
        # cycle, one flip-flop from their next values (t_end's is tgo & last_t). t_end and the
        # tile-step events are then plain ANDs of flip-flops, with no synchronous reset: the
        # design reset → (start | t_end | ~running) LUT → their LSR pins was the critical path
        # of every seed of the 8x8 build of 560e7b1 (8.6-8.9 ns routed).
        tgo = Signal()
        last_t = ends.last_t
        m.d.sync += tgo.eq(iss_next & ~(tgo & last_t))
        m.d.sync += [ends.t_end.eq(tgo & last_t), ends.p_step.eq(tgo & last_t & ~ends.tp_end),
                     ends.g_step.eq(tgo & last_t & ends.tp_end),
                     ends.stop.eq(tgo & last_t & ends.tp_end & ends.g_end)]  # fmt: skip
        # the token's valid: an AND with iss (no synchronous-reset LUT with the design reset
        # in front of its LSR pin, 7.7 ns routed on feed0's tok_in); first/last are read only
        # with valid (the feeders mask them), so they are held data like the rest (tok_d)
        m.d.sync += self.tok.valid.eq(iss & ends.elem)
        # row 0's distance to its output row's last pixel (a remainder tile's row 0 is K
        # part 0 of ksplit)
        left = Mux(tile.rem_t, d.ksplit_m1, lay.last_ox - lp.ox)
        row_end = Mux(tile.rem_t, d.ksplit_m1 == 0, lp.ox == lay.last_ox)
        with m.If(iss):
            m.d.sync += self._issue(d, held, ends.elem, lp.t, tile.cur_k_m1, lp.off, lp.lane,
                                    lp.ky, lp.kx, left, row_end, lp.iy0, lp.ix0,
                                    lp.base, lp.gbase, tile.rem_t)  # fmt: skip
        return tgo, p1

    def _on_start(self, m: Module, d: data.View, lp: _Loops, tile: _Tile, lay: _Layer,
                  ends: _Ends, p1: _Part1 | None) -> None:
        """`start`: the layer's first group, tile and pixel."""
        m.d.sync += [lp.running.eq(1), lp.g.eq(0), lp.tp.eq(0)]
        if self.stream:
            m.d.sync += p1.g2base.eq(d.wbase + d.rem_k_len)
        m.d.sync += [ends.tp_end.eq(lay.pt_one), ends.g_end.eq(lay.g_one)]  # (t_end: 0, tgo is low)
        m.d.sync += [ends.elem.eq(1), lp.gbase.eq(d.wbase)]
        m.d.sync += _reset_pixel(lp, d)
        m.d.sync += self._tile_ends(lay.rem_on & lay.pt_one, tile.rem_t, tile.cur_k_m1, tile.tl,
                                    ends.tl_first, lay.k_m1, lay.rk_m1,
                                    (tile.dir_on, tile.dir_c), d.mode)  # fmt: skip

    def _steps(self, m: Module, d: data.View, lp: _Loops, tile: _Tile, lay: _Layer,
               ends: _Ends, p1: _Part1 | None, tgo: Signal) -> None:
        """A cycle that is not a start: the tail's count, the element flags, the tile steps."""
        with m.If(tile.tail_on):
            m.d.sync += tile.tail_left.eq(tile.tail_left - 1)
        with m.If(ends.t_end & tile.rem_t & lay.rem_ovl):
            m.d.sync += tile.tail_left.eq(self._tail_len - 1)
        # (elem implies running: it is cleared at the stop step)
        with m.If(ends.elem & (lp.t == tile.cur_k_m1)):
            m.d.sync += ends.elem.eq(0)
        if self.stream:
            with m.If(ends.elem & (lp.t == p1.k1_m1)):
                m.d.sync += p1.z1.eq(1)
        # Tile steps (t_end implies running: t_end is set only while running and cleared
        # at every tile step, the last included).
        # (t_end, p_step, g_step and stop are set from tgo in `_issue_regs`; t is reset by kr,
        # `_kloop_restart`)
        with m.If(ends.t_end):
            m.d.sync += ends.elem.eq(~ends.stop)
        with m.If(tgo):
            m.d.sync += [lp.t.eq(lp.t + 1), tile.tl.eq(tile.tl - 1)]
        with m.If(ends.p_step):
            self._pixel_step(m, d, lp, tile, lay, ends)
        with m.If(ends.g_step):
            self._group_step(m, d, lp, tile, lay, ends, p1)
        with m.If(ends.stop):
            m.d.sync += lp.running.eq(0)

    def _pixel_step(self, m: Module, d: data.View, lp: _Loops, tile: _Tile, lay: _Layer,
                    ends: _Ends) -> None:
        """A pixel-tile step: the next tile of the group, R pixels on."""
        m.d.sync += [lp.tp.eq(lp.tp + 1), ends.tp_end.eq(ends.tp_pen)]
        m.d.sync += self._tile_ends(lay.rem_on & ends.tp_pen, tile.rem_t, tile.cur_k_m1, tile.tl,
                                    ends.tl_p, lay.k_m1, lay.rk_m1, (tile.dir_on, tile.dir_c),
                                    d.mode)  # fmt: skip
        # Row 0 moves R pixels on: (ox, window origin, base) += per-tile steps.
        with m.If(ends.ox_wraps):
            m.d.sync += [
                lp.ox.eq(ends.nox_wrap),
                lp.ix0.eq(lp.ix0 + lay.wrap_dix),
                lp.iy0.eq(lp.iy0 + lay.wrap_diy),
                lp.base.eq(lp.base + lay.wrap_dbase),
            ]
        with m.Else():
            m.d.sync += [
                lp.ox.eq(ends.nox),
                lp.ix0.eq(lp.ix0 + d.tile_dix),
                lp.iy0.eq(lp.iy0 + d.tile_diy),
                lp.base.eq(lp.base + d.tile_dbase),
            ]

    def _group_step(self, m: Module, d: data.View, lp: _Loops, tile: _Tile, lay: _Layer,
                    ends: _Ends, p1: _Part1 | None) -> None:
        """A group step: the next group's first tile and pixel, its weights k_len words on."""
        m.d.sync += [lp.tp.eq(0), ends.tp_end.eq(lay.pt_one), lp.g.eq(lp.g + 1)]
        m.d.sync += [lp.gbase.eq(lp.gbase + d.k_len), ends.g_end.eq(lp.g == lay.g_m2)]
        if self.stream:
            m.d.sync += p1.g2base.eq(p1.g2base + d.k_len)
        m.d.sync += self._tile_ends(lay.rem_on & lay.pt_one, tile.rem_t, tile.cur_k_m1, tile.tl,
                                    ends.tl_first, lay.k_m1, lay.rk_m1,
                                    (tile.dir_on, tile.dir_c), d.mode,
                                    on=~ends.g_end)  # (the stop step: g_end)
        m.d.sync += _reset_pixel(lp, d)

    def _kloop(self, m: Module, lp: _Loops, kf: _KFlags, lay: _Layer, elem: Signal) -> None:
        """The K loop's step at each element."""
        C = self.cols
        # K loop: (ky, kx, c), c innermost; off tracks the word offset in the window. Outside
        # the start branch's Else (`_steps`): in a start cycle kr (`_kloop_restart`, last)
        # restarts every one of these registers anyway, so their enables are elem and the
        # loop flags alone (timing: `start` in them made ky's clock enable three LUT levels,
        # 7.58 ns routed on the 8x8).
        with m.If(elem):
            with m.If(kf.c_end):
                m.d.sync += [lp.lane.eq(0), kf.lane_end.eq(C == 1), kf.c_end.eq(lay.cin_one),
                             kf.c_l2.eq(lay.cin_m3)]  # fmt: skip
                with m.If(kf.kx_end):
                    m.d.sync += [lp.kx.eq(0), lp.ky.eq(lp.ky + 1), lp.off.eq(lp.off + lay.k_row),
                                 kf.kx_end.eq(lay.kw_one), kf.kx_l2.eq(lay.kw_m3)]  # fmt: skip
                with m.Else():
                    # (not the end: at least one column left, so kx_l2 >= -1)
                    m.d.sync += [lp.kx.eq(lp.kx + 1), lp.off.eq(lp.off + lay.c_step),
                                 kf.kx_end.eq(kf.kx_l2[-1]), kf.kx_l2.eq(kf.kx_l2 - 1)]  # fmt: skip
            with m.Else():
                m.d.sync += [kf.c_end.eq(kf.c_l2[-1]), kf.c_l2.eq(kf.c_l2 - 1)]
                with m.If(kf.lane_end):
                    m.d.sync += [lp.lane.eq(0), kf.lane_end.eq(C == 1), lp.off.eq(lp.off + 1)]
                with m.Else():
                    m.d.sync += [lp.lane.eq(lp.lane + 1), kf.lane_end.eq(lp.lane == C - 2)]

    def _tail_and_direct(self, m: Module, d: data.View, lp: _Loops, tile: _Tile, lay: _Layer,
                         ends: _Ends) -> None:
        """The tail after an overlapped remainder tile, and the direct-word pointer."""
        # The tail: on after an overlapped remainder tile's last cycle, for tail_len cycles;
        # off at start. Written as one AND-OR of flip-flops (no `If` chain: yosys then finds
        # no synchronous reset in it; timing, the start-or-reset LUT drove its LSR pin).
        tail_next = ~self.start & ((tile.tail_on & (tile.tail_left != 0))
                                   | (ends.t_end & tile.rem_t & lay.rem_ovl))  # fmt: skip
        m.d.sync += [tile.tail_on.eq(tail_next), tile.tail_c.eq(tail_next)]
        # Direct words: one per cycle of a direct tile (linear layer or remainder tile) and of
        # the tail after an overlapped remainder tile, also past the layer's last tile; start
        # loads the layer's first. (Reset-less: read only with a direct tile.)
        with m.If(self.start | tile.dir_c | tile.tail_c):
            m.d.sync += lp.dptr.eq(Mux(self.start, Mux(d.mode, d.wbase, d.rem_wbase),
                                       lp.dptr + 1))  # fmt: skip

    def _kloop_restart(self, m: Module, lp: _Loops, kf: _KFlags, lay: _Layer, ends: _Ends,
                       tgo: Signal, p1: _Part1 | None) -> None:
        """kr: the K loop's restart at start and at every tile step (last: it wins)."""
        # The K loop restarts at start and at every tile step: kr == start | t_end in every
        # cycle, a flip-flop set from their next values (start_next; t_end's is
        # tgo & last_t, see `_issue_regs`), so the counters'
        # synchronous reset is kr alone (timing: start | t_end was two LUTs in front of
        # ~90 LSR pins, 7.9 ns routed on the 8x8). Last: it wins over the K-loop steps.
        kr = Signal()
        m.d.sync += kr.eq(self.start_next | (tgo & ends.last_t))
        with m.If(kr):  # (t restarts with the K loop: its reset is kr alone)
            m.d.sync += [*_reset_kloop(lp, kf, lay, self.cols), lp.t.eq(0)]
            if self.stream:
                m.d.sync += p1.z1.eq(0)

    def _tile_ends(self, rem_next, rem_t, cur_k_m1, tl, tl_load, k_m1, rk_m1, dir_on, mode,
                   on=1):
        """At a tile step (t = 0 next): the next tile's remainder flag, loop ends and
        direct-word flags (``dir_on``, ``on``: not the stop step; the layer's mode is stable
        while it runs)."""
        direct_rem = 0 if self.stream else rem_next  # a two-stream remainder tile: conv mode
        return [rem_t.eq(rem_next), cur_k_m1.eq(Mux(rem_next, rk_m1, k_m1)),
                tl.eq(tl_load),
                *(f.eq((mode | direct_rem) & on) for f in dir_on)]

    def _issue(self, d, held, elem, t, k_m1, off, lane, ky, kx, left, row_end, iy0, ix0, base,
               gbase, rem_t):
        """The registered outputs of one running cycle: row 0's token and weight reads
        (``held``: the reset-less registers behind the data outputs)."""
        tok_d, pix_d, convw_addr = held
        return [
            tok_d.first.eq(t == 0),
            tok_d.last.eq(t == k_m1),
            tok_d.off.eq(off),
            tok_d.lane.eq(lane),
            tok_d.ky.eq(ky),
            tok_d.kx.eq(kx),
            pix_d.left.eq(left),
            pix_d.row_end.eq(row_end),
            pix_d.iy0.eq(iy0),
            pix_d.ix0.eq(ix0),
            pix_d.base.eq(base),
            # (a two-stream remainder tile reads its part 0 here, a direct one no conv word)
            self.convw_en.eq(elem & (d.mode == 0) & (1 if self.stream else ~rem_t)),
            convw_addr.eq(gbase + t),
        ]

    def _part1(self, m: Module, d, t, elem, rem_t, iss) -> _Part1:
        """Two-stream remainder tiles: part 1's conv word of every element (the group's
        words from rem_k_len on) and whether it is past part 1's real ones, registered
        with the token. g2base follows the group base (``gbase`` + rem_k_len), z1 is set
        after element k_len - rem_k_len - 1 and cleared at each tile start."""
        rl = {"reset_less": True}
        g2base = Signal(unsigned(A), **rl)
        k1_m1 = Signal(20, **rl)
        z1 = Signal(**rl)
        addr = Signal.like(self.w2_addr, **rl)
        zero = Signal(**rl)
        m.d.sync += k1_m1.eq(d.k_len - d.rem_k_len - 1)
        m.d.comb += [self.w2_addr.eq(addr), self.w2_zero.eq(zero)]
        m.d.sync += self.w2_on.eq(0)
        with m.If(iss):
            m.d.sync += [self.w2_on.eq(elem & rem_t), addr.eq(g2base + t), zero.eq(z1)]
        return _Part1(g2base, z1, k1_m1)
