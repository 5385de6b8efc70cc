"""Streaming 2-D pooling (max or power-of-two average), C channel lanes, fused after requant.

One unit serves every layer: the geometry comes from ``cfg`` at run time (valid from the
cycle before ``start`` on and held constant during the layer, as the controller holds the
descriptor a cycle before a layer's start; so the layer before's last beat comes two cycles
before ``start`` at the latest), and a one-cycle ``start`` pulse resets
the position counters before each layer (beats before the first start after reset are
ignored). Window k x k, stride k, floor mode: rows and columns at or beyond ``out * k`` are
dropped. 1 <= k <= max_kernel, ``in_w // k <= max_out_width``; avg needs k a power of two and
``avg_shift = log2(k*k)``. Nothing checks these in hardware.

Input: one conv-output pixel (C int8 lanes) per beat, raster order (y, x) over the
``in_h x in_w`` map; after the whole map the counters wrap to (0, 0) for the next channel
group, any number of times. ``valid`` may have gaps; back-to-back beats are fine. There is no
backpressure. A beat in the same cycle as ``start`` is dropped.

Output: one pooled pixel per window, raster order per group, :attr:`Pool2d.latency` cycles
after the window's last pixel (bottom-right) was accepted.

Structure: the horizontal partial of the current window lives in registers; the vertical
partials of one output row live in a line buffer (``Memory``, depth ``max_out_width``, C lanes
of ``sum_width`` bits). The buffer's read is issued in the cycle a pixel arrives (address =
its output column), so the data is there the next cycle when the horizontal partial is
complete; the update is written two cycles after that. The next read of that column is one
input row (``in_w >= k >= 2`` beats) later: only with ``in_w = 2`` and back-to-back beats does
it meet that write, and then the read (not transparent) returns the old word, so the word
written, held one cycle in a register, is taken instead (``s1_fwd``). (k = 1 never touches
the buffer.)

Pipeline (t = cycle the window's last pixel is accepted):
  t:   counters -> flags; hacc <= hacc (+|max) pixel; line-buffer read issued
  t+1: line-buffer word (or the word just written) compared with and added to hacc
  t+2: vsum = the pick of the sum, the larger, or hacc (first row); written back unless last
       row; else registered
  t+3: vsum >> avg_shift (shift 0 for max), its half bit and sticky bits, registered
  t+4: + the round-up (RDBPOT) -> output register
  t+5: output beat valid
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from amaranth import Cat, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.hdl import Value
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory, ReadPort, WritePort
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for, ceil_log2

from hwgen.golden import ops
from hwgen.rtl.attrs import UNSHARED
from hwgen.rtl.requant import rdbpot_round_up, rdbpot_split

__all__ = ["Pool2d", "PoolMode", "pool_cfg_layout", "pool_golden"]


class PoolMode(enum.Enum, shape=1):
    MAX = 0
    AVG = 1


def pool_cfg_layout(max_kernel: int, dim_width: int = 12) -> data.StructLayout:
    """Per-layer configuration: conv output map size, kernel (= stride), mode, log2(k*k)."""
    return data.StructLayout(
        {
            "in_w": unsigned(dim_width),
            "in_h": unsigned(dim_width),
            "k": unsigned(bits_for(max_kernel)),
            "mode": PoolMode,
            "avg_shift": unsigned(bits_for(2 * ceil_log2(max_kernel))),
        }
    )


def pool_golden(x: np.ndarray, k: int, mode: PoolMode | int | str) -> np.ndarray:
    """Reference: ``x[H, W, C]`` int8 -> ``[H//k, W//k, C]`` (stride k, floor mode).

    Max: max over the window. Avg: ``RDBPOT(sum, log2(k*k))`` (k a power of two). Delegates to
    :mod:`hwgen.golden.ops` (which works on (C, H, W)); a map smaller than k gives no output.
    """
    mode = PoolMode[mode.upper()] if isinstance(mode, str) else PoolMode(mode)
    x = np.asarray(x, dtype=np.int64)
    h, w, c = x.shape
    if h < k or w < k:
        return np.zeros((h // k, w // k, c), dtype=np.int64)
    op = ops.maxpool_int if mode is PoolMode.MAX else ops.avgpool_int
    return np.moveaxis(op(np.moveaxis(x, -1, 0), k, k), 0, -1)


def _combine(avg: Value, a: Value, b: Value) -> Value:
    """hacc's step: ``a + b`` (avg) or the larger of ``a`` and ``b`` (max)."""
    # Widths: a sum of up to max_kernel**2 int8 fits lane (assignment truncates).
    # a > b as the sign of b - a: one carry chain (yosys maps a `>` beside the `+` of
    # the same operands into LUT levels).
    # The max's pick is an AND-OR, not a mux: with `a` the register being written
    # (hacc), yosys would turn "keep a" into the register's clock enable, and the
    # compare's carry chain would sit in front of ~100 enables (timing).
    n = len(a)
    keep = (b - a)[-1].replicate(n)
    b_n = Cat(b, b[-1].replicate(n - len(b)))  # b sign-extended to a's width
    larger = ((a.as_unsigned() & keep) | (b_n & ~keep)).as_signed()
    return Mux(avg, a + b, larger)


@dataclass(frozen=True)
class _Counters:
    """The next pixel's position counters (`Pool2d._counters`)."""

    xl2: Signal
    yl2: Signal
    kl3: Signal
    vl3: Signal
    ox: Signal
    wleft: Signal
    vleft: Signal


@dataclass(frozen=True)
class _Consts:
    """The per-layer constants, registered (`Pool2d._layer_consts`)."""

    in_w_m3: Signal
    in_h_m3: Signal
    k_m3: Signal
    w_one: Signal
    h_one: Signal
    k_one: Signal
    in_w_mk: Signal
    in_h_mk: Signal


@dataclass(frozen=True)
class _Flags:
    """The position's flags and the loop ends' next values (`Pool2d._flags`)."""

    h_first: Signal
    v_first: Signal
    x_last: Signal
    y_last: Signal
    h_last: Signal
    v_last: Signal
    h_step: Signal
    v_step: Signal
    x_last_n: Signal
    y_last_n: Signal
    h_last_n: Signal
    v_last_n: Signal


class _S1(NamedTuple):
    """Stage 1's registers (`Pool2d._stage1`)."""

    go: Signal
    vf: Signal
    vl: Signal
    col: Signal
    avg: Signal
    shift: Signal
    fwd: list[Signal]  # per lane (UNSHARED copies)


class _S2(NamedTuple):
    """Stage 2's registers (`Pool2d._stage2`)."""

    go: Signal
    vf: list[Signal]  # per lane (UNSHARED copies)
    vl: Signal
    col: Signal
    avg: list[Signal]  # per lane (UNSHARED copies)
    shift: Signal
    a: Signal
    h: Signal
    add: Signal
    gt: Signal


class Pool2d(wiring.Component):
    """Runtime-configured k x k / stride k pooling over ``lanes`` channels (see module doc).

    Parameters (keyword-only): ``lanes`` (C), ``max_kernel`` (largest k), ``max_out_width``
    (largest ``in_w // k``: the line-buffer depth), ``dim_width`` (bits of in_w/in_h).

    Ports: ``cfg`` In(:func:`pool_cfg_layout`), ``start`` In(1), ``i_stream`` /
    ``o_stream`` (payload ``ArrayLayout(signed(8), lanes)``, always ready).
    """

    def __init__(
        self, *, lanes: int, max_kernel: int = 4, max_out_width: int = 16, dim_width: int = 12
    ) -> None:
        for name, v in (
            ("lanes", lanes),
            ("max_kernel", max_kernel),
            ("max_out_width", max_out_width),
            ("dim_width", dim_width),
        ):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"Pool {name} must be a positive integer, not {v!r}")
        self.lanes = lanes
        self.max_kernel = max_kernel
        self.max_out_width = max_out_width
        # The line buffer and its column counter: at least 2 deep, since a 1-deep memory has a
        # 0-bit address (`wire [-1:0]` in the Verilog, which fails lint).
        self.buf_depth = max(2, max_out_width)
        self.dim_width = dim_width
        # A window sum of max_kernel**2 int8 values.
        self.sum_width = 8 + ceil_log2(max_kernel * max_kernel)
        pixels = data.ArrayLayout(signed(8), lanes)
        super().__init__(
            {
                "cfg": In(pool_cfg_layout(max_kernel, dim_width)),
                "start": In(1),
                "i_stream": In(stream.Signature(pixels, always_ready=True)),
                "o_stream": Out(stream.Signature(pixels, always_ready=True)),
            }
        )

    @property
    def latency(self) -> int:
        """Cycles from a window's last input pixel to its output beat."""
        return 5

    def elaborate(self, platform) -> Module:
        """Position counters and flags, horizontal partial, line buffer, vertical pick, RDBPOT."""
        m = Module()
        cfg = self.cfg
        inp = self.i_stream
        lane = signed(self.sum_width)
        partials = data.ArrayLayout(lane, self.lanes)
        is_avg = cfg.mode == PoolMode.AVG

        cnt = self._counters()
        c = self._layer_consts(m)
        fl = self._flags(m)
        # the current window ends inside the map (wend <= in_w, vend <= in_h)
        w_in, v_in = ~cnt.wleft[-1], ~cnt.vleft[-1]
        # Counters are meaningless until the first start: beats before it are ignored.
        armed = Signal()
        active = inp.valid & ~self.start & armed & w_in & v_in
        self._position_steps(m, cnt, c, fl, armed)

        hacc = self._hacc(m, partials, fl.h_first, self._lane_modes(m, is_avg))
        rd, wr = self._line_buffer(m, partials, cnt.ox)
        s1 = self._stage1(m, is_avg, active, fl, cnt.ox, wr)
        s2, s3_sum = self._stage2(m, partials, s1, hacc, rd)
        s3_valid, s3_shift = self._vertical_pick(m, partials, s2, wr, s3_sum)
        self._rdbpot(m, lane, s3_valid, s3_sum, s3_shift)
        return m

    def _counters(self) -> _Counters:
        """The next pixel's position counters (reset-less: `start` loads them)."""
        k = self.cfg.k
        # Position of the next pixel. wleft/vleft: in_w - wend / in_h - vend, with wend/vend
        # the exclusive end of the current window's columns/rows, counted down by k: the
        # pixel is inside an output window iff both are >= 0, i.e. their sign bits are clear
        # (timing: a flip-flop, no compare). xl2/yl2: the columns/rows left after this one,
        # minus 2, counted down: the next x_last/y_last is their sign bit (no compare).
        dw = self.dim_width
        # (the position is reset-less: `start` loads all of it, and beats before the first
        # start are ignored, see `armed` in `elaborate`; timing: the reset pins are `start`
        # with a flag, without the design reset beside it)
        rl = {"reset_less": True}
        xl2 = Signal(signed(dw + 2), **rl)
        yl2 = Signal(signed(dw + 2), **rl)
        # kl3/vl3: the window's columns/rows left after this one, minus 2 (likewise)
        kl3 = Signal(signed(len(k) + 2), **rl)
        vl3 = Signal(signed(len(k) + 2), **rl)
        ox = Signal(range(self.buf_depth), **rl)
        wleft = Signal(signed(dw + 2), **rl)
        vleft = Signal(signed(dw + 2), **rl)
        return _Counters(xl2, yl2, kl3, vl3, ox, wleft, vleft)

    def _layer_consts(self, m: Module) -> _Consts:
        """Per-layer constants from ``cfg``, registered every cycle."""
        cfg, k, dw = self.cfg, self.cfg.k, self.dim_width
        rl = {"reset_less": True}
        # Per-layer constants, registered (cfg is stable from the cycle before `start` on):
        # the start's loads and the loop tests (`_counter_steps`) read registers, no add in
        # front of a compare. (Registered every cycle, read from start on: no reset needed.)
        in_w_m3 = Signal(signed(dw + 2), **rl)
        in_h_m3 = Signal(signed(dw + 2), **rl)
        k_m3 = Signal(signed(len(k) + 2), **rl)
        w_one = Signal(**rl)  # in_w == 1
        h_one = Signal(**rl)  # in_h == 1
        k_one = Signal(**rl)  # k == 1
        in_w_mk = Signal(signed(dw + 1), **rl)
        in_h_mk = Signal(signed(dw + 1), **rl)
        m.d.sync += [
            in_w_m3.eq(cfg.in_w - 3), in_h_m3.eq(cfg.in_h - 3), k_m3.eq(k - 3),
            w_one.eq(cfg.in_w == 1), h_one.eq(cfg.in_h == 1), k_one.eq(k == 1),
            in_w_mk.eq(cfg.in_w - k), in_h_mk.eq(cfg.in_h - k),
        ]
        return _Consts(in_w_m3, in_h_m3, k_m3, w_one, h_one, k_one, in_w_mk, in_h_mk)

    def _flags(self, m: Module) -> _Flags:
        """The position's flags: window starts, loop ends, their products, and next values."""
        rl = {"reset_less": True}
        # the pixel is the first of its window's row / of its window (kx == 0 / ky == 0),
        # flags: the pixel before ended a window's row / the row before ended the window
        h_first = Signal(**rl)
        v_first = Signal(**rl)
        # The loop ends are flags set with their counters (x == in_w - 1, y == in_h - 1,
        # kx == k - 1, ky == k - 1): each branch of `_counter_steps` and `_next_flags` is
        # decided by flip-flops, not by a wide compare in front of the counters' muxes
        # (timing). They are set from their next values (`_n`), and so are the products that
        # enable or reset the counters: each counter's enable and reset is then one LUT of
        # flip-flops (timing: `valid` and `start`, with a flag): h_step (x_last | h_last: the
        # window's column ends) and v_step (x_last & (y_last | v_last): the window's row
        # ends with this row).
        x_last = Signal(**rl)
        y_last = Signal(**rl)
        h_last = Signal(**rl)
        v_last = Signal(**rl)
        h_step = Signal(**rl)
        v_step = Signal(**rl)
        x_last_n = Signal()
        y_last_n = Signal()
        h_last_n = Signal()
        v_last_n = Signal()
        m.d.comb += [x_last_n.eq(x_last), y_last_n.eq(y_last), h_last_n.eq(h_last),
                     v_last_n.eq(v_last)]  # fmt: skip
        m.d.sync += [x_last.eq(x_last_n), y_last.eq(y_last_n), h_last.eq(h_last_n),
                     v_last.eq(v_last_n), h_step.eq(x_last_n | h_last_n),
                     v_step.eq(x_last_n & (y_last_n | v_last_n))]  # fmt: skip
        return _Flags(h_first, v_first, x_last, y_last, h_last, v_last, h_step, v_step,
                      x_last_n, y_last_n, h_last_n, v_last_n)

    def _position_steps(self, m: Module, cnt: _Counters, c: _Consts, fl: _Flags,
                        armed: Signal) -> None:
        """`start` loads the position and arms the unit; each beat steps it."""
        # The start loads the per-layer registers (`_layer_consts`: cfg is valid from the
        # cycle before start), no subtract or compare on cfg (timing: the compares on the
        # descriptor shared their LUTs with feed 0's, and the start value of v_step, three
        # of them ANDed, was M 7.64 ns on the 12x16 of cee1cc6 seed 1)
        with m.If(self.start):
            m.d.sync += [
                armed.eq(1),
                cnt.xl2.eq(c.in_w_m3),
                cnt.yl2.eq(c.in_h_m3),
                cnt.kl3.eq(c.k_m3),
                cnt.vl3.eq(c.k_m3),
                fl.h_first.eq(1),
                fl.v_first.eq(1),
                cnt.ox.eq(0),
                cnt.wleft.eq(c.in_w_mk),
                cnt.vleft.eq(c.in_h_mk),
            ]
            m.d.comb += [
                fl.x_last_n.eq(c.w_one),
                fl.y_last_n.eq(c.h_one),
                fl.h_last_n.eq(c.k_one),
                fl.v_last_n.eq(c.k_one),
            ]
        with m.Elif(self.i_stream.valid):
            # (each register under one flag: its enable or reset is that flag with `valid`
            # and `start`; the flags' next values in `_next_flags`)
            self._counter_steps(m, cnt, c, fl)
            self._next_flags(m, cnt, c, fl)

    def _counter_steps(self, m: Module, cnt: _Counters, c: _Consts, fl: _Flags) -> None:
        """A beat's counter steps, each under one flag."""
        k = self.cfg.k
        m.d.sync += cnt.xl2.eq(Mux(fl.x_last, c.in_w_m3, cnt.xl2 - 1))
        with m.If(fl.h_step):  # the window's column ends (with the row, or not)
            m.d.sync += [cnt.kl3.eq(c.k_m3), cnt.ox.eq(Mux(fl.x_last, 0, cnt.ox + 1)),
                         cnt.wleft.eq(Mux(fl.x_last, c.in_w_mk, cnt.wleft - k))]  # fmt: skip
        with m.Else():
            m.d.sync += cnt.kl3.eq(cnt.kl3 - 1)
        m.d.sync += fl.h_first.eq(fl.h_step)
        with m.If(fl.x_last):  # end of row
            m.d.sync += cnt.yl2.eq(Mux(fl.y_last, c.in_h_m3, cnt.yl2 - 1))
        with m.If(fl.v_step):  # the window's row ends (with the map, or not)
            m.d.sync += [cnt.vl3.eq(c.k_m3),
                         cnt.vleft.eq(Mux(fl.y_last, c.in_h_mk, cnt.vleft - k))]  # fmt: skip
        with m.Elif(fl.x_last):
            m.d.sync += cnt.vl3.eq(cnt.vl3 - 1)
        with m.If(fl.x_last):
            m.d.sync += fl.v_first.eq(fl.v_step)

    def _next_flags(self, m: Module, cnt: _Counters, c: _Consts, fl: _Flags) -> None:
        """The loop-end flags' next values after a beat."""
        # the flags' next values
        with m.If(fl.x_last):
            m.d.comb += [fl.x_last_n.eq(c.w_one), fl.h_last_n.eq(c.k_one)]
            with m.If(fl.y_last):
                m.d.comb += [fl.y_last_n.eq(c.h_one), fl.v_last_n.eq(c.k_one)]
            with m.Else():
                m.d.comb += fl.y_last_n.eq(cnt.yl2[-1])
                with m.If(fl.v_last):
                    m.d.comb += fl.v_last_n.eq(c.k_one)
                with m.Else():
                    m.d.comb += fl.v_last_n.eq(cnt.vl3[-1])
        with m.Else():
            m.d.comb += fl.x_last_n.eq(cnt.xl2[-1])
            with m.If(fl.h_last):
                m.d.comb += fl.h_last_n.eq(c.k_one)
            with m.Else():
                m.d.comb += fl.h_last_n.eq(cnt.kl3[-1])

    def _lane_modes(self, m: Module, is_avg: Value) -> list[Signal]:
        """``is_avg`` registered every cycle, one copy per lane (UNSHARED; timing: the mode
        bit of ``cfg`` drove every lane's add-or-max logic, one of the most congested nets of
        the routed 12x8). Like the other per-layer constants (`_layer_consts`) it is valid
        from `start` on; it is read only on a window row's second beat or later (a row's
        first beat is taken as it is), at `start` + 2 at the earliest. The last beat of the
        layer before, two cycles before `start` at the latest, still sees its own."""
        avg = [Signal(name=f"avg{c}", reset_less=True, attrs=UNSHARED)
               for c in range(self.lanes)]  # fmt: skip
        m.d.sync += [a.eq(is_avg) for a in avg]
        return avg

    def _hacc(self, m: Module, partials: data.ArrayLayout, h_first: Signal,
              avg: list[Signal]) -> Signal:
        """The current window row's horizontal partial, hacc (lane c's mode: ``avg[c]``)."""
        inp = self.i_stream
        # Horizontal partial of the current window. It takes every beat (timing: its enable
        # is the input's valid flip-flop, no LUT in front of its ~100 enables; that decode
        # was 8.0 ns routed on the 8x8): a beat outside a window, before the first start or
        # in a start cycle writes a partial nothing reads. hacc is read only by stage 2 at
        # the end of the s1_go cycle (a beat in that cycle lands after it), and each window
        # row's first beat (kx == 0, also right after start or a row end) overwrites it.
        hacc = Signal(partials, reset_less=True)
        with m.If(inp.valid):
            for c in range(self.lanes):
                m.d.sync += hacc[c].eq(
                    Mux(h_first, inp.payload[c], _combine(avg[c], hacc[c], inp.payload[c]))
                )
        return hacc

    def _line_buffer(self, m: Module, partials: data.ArrayLayout, ox: Signal
                     ) -> tuple[ReadPort, WritePort]:
        """The line buffer of vertical partials, read at the pixel's output column."""
        # Line buffer of vertical partials, one row per output column.
        m.submodules.linebuf = mem = Memory(shape=partials, depth=self.buf_depth, init=[])
        rd = mem.read_port()  # sync, 1 cycle; not transparent (s1_fwd, `_stage1`)
        wr = mem.write_port()
        m.d.comb += rd.addr.eq(ox)
        return rd, wr

    def _stage1(self, m: Module, is_avg: Value, active: Value, fl: _Flags, ox: Signal,
                wr: WritePort) -> _S1:
        """Stage 1: a window row finished; its flags, column, mode and shift registered."""
        cfg = self.cfg
        s1_go = Signal()  # a window row finished last cycle: hacc is complete
        s1_vf = Signal(reset_less=True)
        s1_vl = Signal(reset_less=True)
        s1_col = Signal.like(ox, reset_less=True)
        # The mode and shift ride with the data: the next layer's cfg may arrive (a cycle
        # before its start pulse) while this layer's last windows are still in the pipe.
        s1_avg = Signal(reset_less=True)
        s1_shift = Signal.like(cfg.avg_shift, reset_less=True)
        # The read met a write of its own column (in_w = 2, back-to-back beats) and so returned
        # the old word; the new one is s3_sum now.
        # (one copy per lane, UNSHARED: one flip-flop drove every lane's `above` mux, the
        # routed 12x8's worst path on seed 2, 4.49 ns of routing to a far lane)
        s1_fwd = [Signal(name=f"s1_fwd{c}", reset_less=True, attrs=UNSHARED)
                  for c in range(self.lanes)]  # fmt: skip
        # A write meets a window row's end of its own column only if in_w = 2: then every
        # column is 0 (out_w = 1); with in_w >= 3 a column's row ends are >= 3 beats apart,
        # and two row ends 2 beats apart are of different columns. So the flag is the write
        # enable and "in_w = 2", a per-layer register per lane (like `_lane_modes`), not the
        # address compare (timing: its LUTs fanned out to every lane, 8.38 ns on the 12x16).
        w_two = [Signal(name=f"w_two{c}", reset_less=True, attrs=UNSHARED)
                 for c in range(self.lanes)]  # fmt: skip
        m.d.sync += [w.eq(cfg.in_w == 2) for w in w_two]
        m.d.sync += [
            s1_avg.eq(is_avg),
            s1_shift.eq(Mux(is_avg, cfg.avg_shift, 0)),  # max: RDBPOT by 0 = identity
            s1_go.eq(active & fl.h_last),
            s1_vf.eq(fl.v_first),
            s1_vl.eq(fl.v_last),
            s1_col.eq(ox),
            *(f.eq(wr.en & w) for f, w in zip(s1_fwd, w_two, strict=True)),
        ]
        return _S1(s1_go, s1_vf, s1_vl, s1_col, s1_avg, s1_shift, s1_fwd)

    def _stage2(self, m: Module, partials: data.ArrayLayout, s1: _S1, hacc: Signal,
                rd: ReadPort) -> tuple[_S2, Signal]:
        """Stage 2: the vertical partial's compare and sum with hacc (and s3_sum, forwarded)."""
        # s2: the vertical partial's compare and sum, registered; the mux that picks from
        # them is the next stage (compare and muxes in one were the pool's deepest path).
        s3_sum = Signal(partials, reset_less=True)
        above = Signal(partials)
        m.d.comb += [above[c].eq(Mux(s1.fwd[c], s3_sum[c], rd.data[c]))
                     for c in range(self.lanes)]  # fmt: skip
        s2_go = Signal()
        # (the picks' selects, one copy per lane, UNSHARED: each drove every lane's mux)
        s2_vf = [Signal(name=f"s2_vf{c}", reset_less=True, attrs=UNSHARED)
                 for c in range(self.lanes)]  # fmt: skip
        s2_vl = Signal(reset_less=True)
        s2_col = Signal.like(s1.col, reset_less=True)
        s2_avg = [Signal(name=f"s2_avg{c}", reset_less=True, attrs=UNSHARED)
                  for c in range(self.lanes)]  # fmt: skip
        s2_shift = Signal.like(s1.shift, reset_less=True)
        s2_a = Signal(partials, reset_less=True)
        s2_h = Signal(partials, reset_less=True)
        s2_add = Signal(partials, reset_less=True)
        s2_gt = Signal(self.lanes, reset_less=True)  # above > hacc, per lane
        m.d.sync += [
            s2_go.eq(s1.go), s2_vl.eq(s1.vl), s2_col.eq(s1.col),
            *(v.eq(s1.vf) for v in s2_vf), *(a.eq(s1.avg) for a in s2_avg),
            s2_shift.eq(s1.shift), s2_a.eq(above), s2_h.eq(hacc),
        ]
        for c in range(self.lanes):
            # above > hacc as the sign of one subtraction (see `_combine`)
            m.d.sync += [s2_gt[c].eq((hacc[c] - above[c])[-1]), s2_add[c].eq(above[c] + hacc[c])]
        s2 = _S2(s2_go, s2_vf, s2_vl, s2_col, s2_avg, s2_shift, s2_a, s2_h, s2_add, s2_gt)
        return s2, s3_sum

    def _vertical_pick(self, m: Module, partials: data.ArrayLayout, s2: _S2, wr: WritePort,
                       s3_sum: Signal) -> tuple[Signal, Signal]:
        """vsum, written back unless the window's last row, else registered (stage 3)."""
        vsum = Signal(partials)
        for c in range(self.lanes):
            pick = Mux(s2.avg[c], s2.add[c], Mux(s2.gt[c], s2.a[c], s2.h[c]))
            m.d.comb += vsum[c].eq(Mux(s2.vf[c], s2.h[c], pick))
        m.d.comb += [
            wr.addr.eq(s2.col),
            wr.data.eq(vsum),
            wr.en.eq(s2.go & ~s2.vl),
        ]

        s3_valid = Signal()
        s3_shift = Signal.like(s2.shift, reset_less=True)
        m.d.sync += [s3_valid.eq(s2.go & s2.vl), s3_sum.eq(vsum), s3_shift.eq(s2.shift)]
        return s3_valid, s3_shift

    def _rdbpot(self, m: Module, lane: Shape, s3_valid: Signal, s3_sum: Signal,
                s3_shift: Signal) -> None:
        """Stages 4 and 5: the window's sum RDBPOT-shifted (by 0 for max) to the output."""
        # Average: RDBPOT by log2(k*k), in two stages (timing: the shift, the round-up
        # decision and the add in one were three LUT levels and a carry chain, 7.4 ns routed
        # on the 8x8): s4 the shifted sum, its half bit and sticky bits; then the round-up
        # (one LUT) and the add (a short carry chain straight into the output register).
        # The rounded mean of int8 values is an int8, so the low byte is exact.
        # (the payload registers are reset-less: read only with valid, which keeps its reset)
        s4_valid = Signal()
        s4_floor = [Signal(lane, name=f"s4_floor{c}", reset_less=True) for c in range(self.lanes)]
        s4_half = Signal(self.lanes, reset_less=True)
        s4_neg = Signal(self.lanes, reset_less=True)
        s4_sticky = []
        m.d.sync += s4_valid.eq(s3_valid)
        for c in range(self.lanes):
            floor, half, sticky = rdbpot_split(s3_sum[c], s3_shift)
            st = Signal(len(sticky), name=f"s4_sticky{c}", reset_less=True)
            s4_sticky.append(st)
            m.d.sync += [s4_floor[c].eq(floor), s4_half[c].eq(half), st.eq(sticky),
                         s4_neg[c].eq(s3_sum[c][-1])]  # fmt: skip
        o_data = Signal.like(self.o_stream.payload, reset_less=True)
        for c in range(self.lanes):
            up = rdbpot_round_up(s4_neg[c], s4_half[c], s4_sticky[c])
            m.d.sync += o_data[c].eq((s4_floor[c] + up)[:8])
        m.d.sync += self.o_stream.valid.eq(s4_valid)
        m.d.comb += self.o_stream.payload.eq(o_data)
