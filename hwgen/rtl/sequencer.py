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

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .attrs import UNSHARED
from .descriptor import DESC_LAYOUT

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
    {"ox": unsigned(12), "iy0": signed(16), "ix0": signed(16), "base": signed(A)}
)


# The Sequencer's ports (a design with two-stream remainder tiles adds w2_*, __init__)
_PORTS = {
    "desc": In(DESC_LAYOUT),
    # one-cycle pulse; desc must be stable from the cycle before it until done (the per-layer
    # registers below are computed from desc in that cycle)
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

    def elaborate(self, platform) -> Module:
        m = Module()
        d = self.desc
        C = self.cols

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
        # Per tile: the remainder tile's flag and the loop ends of the current tile (its K
        # and interval differ from the layer's), registers set at the tile steps.
        rem_t = Signal()
        cur_k_m1 = Signal(20, reset_less=True)
        # tl = interval - 3 - t of the current tile, counted down: t == interval - 2 (the
        # tile's last-but-one cycle, `last_t`) is its sign bit (timing: no 20-bit compare in
        # front of t_end/stop/kr). Loaded at every tile step with the next tile's value.
        tl = Signal(signed(21), reset_less=True)
        m.d.comb += self.rem.eq(rem_t)
        tail_len = self.rows + self.cols - 2
        tail_on = Signal(attrs=UNSHARED)  # (and tail_c: see dir_on)
        tail_left = Signal(range(tail_len + 1))
        # dir_on == running & (d.mode | rem_t) in every cycle, a flag set with rem_t at the
        # tile steps (0 at the last, the stop step: g_end). dptr's enable, start | dir_on |
        # tail_on, reads copies of the two flags (UNSHARED; timing: one LUT of three
        # flip-flops, where running & (mode | rem_t) | tail_on with `start` was two levels,
        # 6.69 ns routed on b24ce83; with the same flip-flops ABC reuses rd_direct's LUT).
        dir_on, dir_c = Signal(attrs=UNSHARED), Signal(attrs=UNSHARED)
        tail_c = Signal(attrs=UNSHARED)
        rd_direct = Signal()
        m.d.comb += rd_direct.eq(dir_on | tail_on)

        m.d.comb += self.busy.eq(running | self.start)

        # Per-layer constants derived from the descriptor, registered every cycle. The
        # controller holds the whole descriptor in `desc` for a cycle before `start`, so they
        # are valid in the start cycle: the start branch, the loop-end tests and the tile
        # steps read registers, not compares or adds on the descriptor.
        # (Rewritten every cycle, so reset-less: off the reset net.)
        rl = {"reset_less": True}
        k_m1 = Signal(20, **rl)
        pt_m2, g_m2 = Signal(16, **rl), Signal(12, **rl)
        pt_one, g_one = Signal(**rl), Signal(**rl)
        cin_one, kw_one = Signal(**rl), Signal(**rl)  # cin == 1, kw == 1
        # (all ones when cin / kw is 1: never equal)
        # the K loop's channel and kernel-x counts minus 3 (the down-counters' start values)
        cin_m3, kw_m3 = Signal(signed(14), **rl), Signal(signed(14), **rl)
        k_row = Signal(signed(A), **rl)
        c_step = Signal(unsigned(12), **rl)
        wrap_dix, wrap_diy = Signal(signed(17), **rl), Signal(signed(17), **rl)
        wrap_dbase = Signal(signed(A + 1), **rl)
        rk_m1 = Signal(20, **rl)
        int_m3, rint_m3 = Signal(signed(21), **rl), Signal(signed(21), **rl)
        rem_on = Signal(**rl)
        # the remainder tile is issued after its K part, the next tile beside its last
        # R + C - 2 weight words (hwgen.schedule.lower._remainder)
        rem_ovl = Signal(**rl)
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

        # Loop-end flags, registered one step ahead (t == interval-1, tp == ptiles-1,
        # g == groups-1, t < k_len): the wide compares feed these flags, not the enables.
        # Needs interval >= 2 (hwgen.schedule.lower guarantees it): a tile step's effects are
        # registered before the next one.
        t_end, tp_end, g_end, elem = Signal(), Signal(), Signal(), Signal()
        last_t = tl[-1]  # t == interval - 2 (valid while running and not t_end)
        # The tile-step events, registered with t_end (so each enable below is one flag, not
        # a chain of nested conditions): t_end & ~tp_end, t_end & tp_end, and the last step.
        p_step, g_step, stop = Signal(), Signal(), Signal()
        # next tile step's x position, precomputed from ox (which changes only at tile steps)
        # (ox + dx >= out_w is ox >= out_w - dx, with out_w - dx a per-layer register: one
        # carry chain per flag, not an add in front of a compare)
        nox, nox_wrap, ox_wraps = Signal(12, **rl), Signal(12, **rl), Signal(**rl)
        ow_dx = Signal(signed(len(d.out_w) + 1), **rl)
        m.d.sync += [
            ow_dx.eq(d.out_w - d.dx),
            nox.eq(ox + d.dx),
            nox_wrap.eq(ox - ow_dx),
            ox_wraps.eq(ox >= ow_dx),
        ]

        # tp == ptiles - 2 (the next tile step ends the group's pixel tiles), registered every
        # cycle: tp changes only at tile steps, which are >= 2 cycles apart (interval >= 2), so
        # it is valid at every tile step (timing: no 16-bit compare in front of the remainder
        # tile's selects)
        tp_pen = Signal(**rl)
        m.d.sync += tp_pen.eq(tp == pt_m2)
        # tl's load values, registers (timing: the remainder selects in front of tl's 21 bits
        # with its step and load enables were 12 inputs, 6.87 ns routed on s14 seed 2): at
        # start and a group step the group's first tile's (a per-layer register from the
        # descriptor, which holds through the layer), at a pixel-tile step the next tile's
        # (registered every cycle like tp_pen, and valid at every tile step for the same reason)
        tl_first, tl_p = Signal.like(tl, **rl), Signal.like(tl, **rl)
        m.d.sync += [tl_first.eq(Mux(d.rem & (d.ptiles == 1), d.rem_interval - 3, d.interval - 3)),
                     tl_p.eq(Mux(rem_on & (tp == pt_m2), rint_m3, int_m3))]

        # c == cin - 1 and kx == kw - 1 (c: the channel), kept as flags (timing: the K loop's
        # offset add is selected by flip-flops, not by two 12-bit compares)
        c_end, kx_end = Signal(reset_less=True), Signal(reset_less=True)
        # the channels / kernel columns left after the current one, minus 2, counted down:
        # the next end flag is the counter's sign bit (no 12-bit compare in front of it)
        c_l2, kx_l2 = Signal(signed(14), **rl), Signal(signed(14), **rl)  # (start loads them)
        # lane == C - 1, a flag set with lane (timing: no compare in front of the lane's and
        # the offset's reset/step selects)
        lane_end = Signal(init=C == 1, reset_less=True)

        def reset_kloop():
            return [ky.eq(0), kx.eq(0), lane.eq(0), lane_end.eq(C == 1), off.eq(0),
                    c_end.eq(cin_one), c_l2.eq(cin_m3), kx_end.eq(kw_one),
                    kx_l2.eq(kw_m3)]  # fmt: skip

        def reset_pixel():
            return [ox.eq(0), iy0.eq(d.init_pos), ix0.eq(d.init_pos), base.eq(d.init_base)]

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
            self.directw_en.eq(rd_direct),
            directw_addr.eq(dptr),
        ]

        # iss == running & ~start in every cycle, a flip-flop set from their next values
        # (start's is start_next): the issued token's flags are reset by this one flip-flop
        # (timing: start | ~running was a LUT in front of the token flags' and the pixel's
        # LSR pins, 7.3 ns routed on the 8x8). running's next value is start | running & ~stop.
        iss = Signal()
        iss_next = (self.start | (running & ~stop)) & ~self.start_next
        m.d.sync += iss.eq(iss_next)
        p1 = self._part1(m, d, t, elem, rem_t, iss) if self.stream else None
        # tgo == iss & ~t_end (a running cycle that is not a tile step: t counts on) in every
        # cycle, one flip-flop from their next values (t_end's is tgo & last_t). t_end and the
        # tile-step events are then plain ANDs of flip-flops, with no synchronous reset: the
        # design reset → (start | t_end | ~running) LUT → their LSR pins was the critical path
        # of every seed of the 8x8 build of 560e7b1 (8.6-8.9 ns routed).
        tgo = Signal()
        m.d.sync += tgo.eq(iss_next & ~(tgo & last_t))
        m.d.sync += [t_end.eq(tgo & last_t), p_step.eq(tgo & last_t & ~tp_end),
                     g_step.eq(tgo & last_t & tp_end), stop.eq(tgo & last_t & tp_end & g_end)]
        # the token's valid: an AND with iss (no synchronous-reset LUT with the design reset
        # in front of its LSR pin, 7.7 ns routed on feed0's tok_in); first/last are read only
        # with valid (the feeders mask them), so they are held data like the rest (tok_d)
        m.d.sync += self.tok.valid.eq(iss & elem)
        with m.If(iss):
            m.d.sync += self._issue(d, held, elem, t, cur_k_m1, off, lane, ky, kx, ox,
                                    iy0, ix0, base, gbase, rem_t)
        with m.If(self.start):
            m.d.sync += [running.eq(1), g.eq(0), tp.eq(0)]
            if self.stream:
                m.d.sync += p1.g2base.eq(d.wbase + d.rem_k_len)
            m.d.sync += [tp_end.eq(pt_one), g_end.eq(g_one)]  # (t_end: 0, tgo is low)
            m.d.sync += [elem.eq(1), gbase.eq(d.wbase)]
            m.d.sync += reset_pixel()
            m.d.sync += self._tile_ends(rem_on & pt_one, rem_t, cur_k_m1, tl, tl_first,
                                        k_m1, rk_m1, (dir_on, dir_c), d.mode)
        with m.Else():
            with m.If(tail_on):
                m.d.sync += tail_left.eq(tail_left - 1)
            with m.If(t_end & rem_t & rem_ovl):
                m.d.sync += tail_left.eq(tail_len - 1)
            # (elem implies running: it is cleared at the stop step)
            with m.If(elem & (t == cur_k_m1)):
                m.d.sync += elem.eq(0)
            if self.stream:
                with m.If(elem & (t == p1.k1_m1)):
                    m.d.sync += p1.z1.eq(1)
            # Tile steps (t_end implies running: t_end is set only while running and cleared
            # at every tile step, the last included).
            # (t_end, p_step, g_step and stop are set from tgo above; t is reset by kr)
            with m.If(t_end):
                m.d.sync += elem.eq(~stop)
            with m.If(tgo):
                m.d.sync += [t.eq(t + 1), tl.eq(tl - 1)]
            with m.If(p_step):
                m.d.sync += [tp.eq(tp + 1), tp_end.eq(tp_pen)]
                m.d.sync += self._tile_ends(rem_on & tp_pen, rem_t, cur_k_m1, tl, tl_p,
                                            k_m1, rk_m1, (dir_on, dir_c), d.mode)
                # Row 0 moves R pixels on: (ox, window origin, base) += per-tile steps.
                with m.If(ox_wraps):
                    m.d.sync += [
                        ox.eq(nox_wrap),
                        ix0.eq(ix0 + wrap_dix),
                        iy0.eq(iy0 + wrap_diy),
                        base.eq(base + wrap_dbase),
                    ]
                with m.Else():
                    m.d.sync += [
                        ox.eq(nox),
                        ix0.eq(ix0 + d.tile_dix),
                        iy0.eq(iy0 + d.tile_diy),
                        base.eq(base + d.tile_dbase),
                    ]
            with m.If(g_step):
                m.d.sync += [tp.eq(0), tp_end.eq(pt_one), g.eq(g + 1)]
                m.d.sync += [gbase.eq(gbase + d.k_len), g_end.eq(g == g_m2)]
                if self.stream:
                    m.d.sync += p1.g2base.eq(p1.g2base + d.k_len)
                m.d.sync += self._tile_ends(rem_on & pt_one, rem_t, cur_k_m1, tl, tl_first,
                                            k_m1, rk_m1, (dir_on, dir_c), d.mode,
                                            on=~g_end)  # (the stop step: g_end)
                m.d.sync += reset_pixel()
            with m.If(stop):
                m.d.sync += running.eq(0)
        # K loop: (ky, kx, c), c innermost; off tracks the word offset in the window. Outside
        # the start branch's Else: in a start cycle kr (below, last) restarts every one of
        # these registers anyway, so their enables are elem and the loop flags alone (timing:
        # `start` in them made ky's clock enable three LUT levels, 7.58 ns routed on the 8x8).
        with m.If(elem):
            with m.If(c_end):
                m.d.sync += [lane.eq(0), lane_end.eq(C == 1), c_end.eq(cin_one),
                             c_l2.eq(cin_m3)]  # fmt: skip
                with m.If(kx_end):
                    m.d.sync += [kx.eq(0), ky.eq(ky + 1), off.eq(off + k_row),
                                 kx_end.eq(kw_one), kx_l2.eq(kw_m3)]  # fmt: skip
                with m.Else():
                    # (not the end: at least one column left, so kx_l2 >= -1)
                    m.d.sync += [kx.eq(kx + 1), off.eq(off + c_step), kx_end.eq(kx_l2[-1]),
                                 kx_l2.eq(kx_l2 - 1)]  # fmt: skip
            with m.Else():
                m.d.sync += [c_end.eq(c_l2[-1]), c_l2.eq(c_l2 - 1)]
                with m.If(lane_end):
                    m.d.sync += [lane.eq(0), lane_end.eq(C == 1), off.eq(off + 1)]
                with m.Else():
                    m.d.sync += [lane.eq(lane + 1), lane_end.eq(lane == C - 2)]
        # The tail: on after an overlapped remainder tile's last cycle, for tail_len cycles;
        # off at start. Written as one AND-OR of flip-flops (no `If` chain: yosys then finds
        # no synchronous reset in it; timing, the start-or-reset LUT drove its LSR pin).
        tail_next = ~self.start & ((tail_on & (tail_left != 0)) | (t_end & rem_t & rem_ovl))
        m.d.sync += [tail_on.eq(tail_next), tail_c.eq(tail_next)]
        # Direct words: one per cycle of a direct tile (linear layer or remainder tile) and of
        # the tail after an overlapped remainder tile, also past the layer's last tile; start
        # loads the layer's first. (Reset-less: read only with a direct tile.)
        with m.If(self.start | dir_c | tail_c):
            m.d.sync += dptr.eq(Mux(self.start, Mux(d.mode, d.wbase, d.rem_wbase), dptr + 1))
        # The K loop restarts at start and at every tile step: kr == start | t_end in every
        # cycle, a flip-flop set from their next values (start_next; t_end's is
        # tgo & last_t, see above), so the counters'
        # synchronous reset is kr alone (timing: start | t_end was two LUTs in front of
        # ~90 LSR pins, 7.9 ns routed on the 8x8). Last: it wins over the K-loop steps.
        kr = Signal()
        m.d.sync += kr.eq(self.start_next | (tgo & last_t))
        with m.If(kr):  # (t restarts with the K loop: its reset is kr alone)
            m.d.sync += [*reset_kloop(), t.eq(0)]
            if self.stream:
                m.d.sync += p1.z1.eq(0)
        return m

    def _tile_ends(self, rem_next, rem_t, cur_k_m1, tl, tl_load, k_m1, rk_m1, dir_on, mode,
                   on=1):
        """At a tile step (t = 0 next): the next tile's remainder flag, loop ends and
        direct-word flags (``dir_on``, ``on``: not the stop step; the layer's mode is stable
        while it runs)."""
        direct_rem = 0 if self.stream else rem_next  # a two-stream remainder tile: conv mode
        return [rem_t.eq(rem_next), cur_k_m1.eq(Mux(rem_next, rk_m1, k_m1)),
                tl.eq(tl_load),
                *(f.eq((mode | direct_rem) & on) for f in dir_on)]

    def _issue(self, d, held, elem, t, k_m1, off, lane, ky, kx, ox, iy0, ix0, base, gbase,
               rem_t):
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
            pix_d.ox.eq(Mux(rem_t, 0, ox)),  # a remainder tile's row 0 is K part 0
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
