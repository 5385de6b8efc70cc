"""Write-back: array columns -> deskew -> C requant lanes -> (pool) -> activation buffer.

The bottom of column j emits a tile's rows one cycle after column j-1 does; delaying column j
by C-1-j aligns them so that one *row* (C output channels of one pixel, or C outputs of a
linear layer) arrives per cycle. The row's address and its channels' requant parameters
come from counters that replay the schedule's loop order, so no metadata travels with the
array. Rows past the end of the map (padding rows of the last pixel tile) are dropped.
Output pixel r of group g goes to word ``dst_base + r*dst_cw + g`` (pooled pixels likewise):
``dst_cw`` is the destination region's pixel stride, so a Concat/Add operand is written in
place, at its channel-word offset inside the shared region (hwgen.schedule.alloc).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.hdl import Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .attrs import UNSHARED
from .delay import DELAY_RAM_FROM, DelayLine
from .descriptor import DESC_LAYOUT
from .fold import RowFold
from .pool import Pool2d, PoolMode
from .reduce import RowReduce
from .requant import REQUANT_MULT_LATENCY, Requant
from .traits import trait

__all__ = ["WriteBack", "PARAM_LANE_LAYOUT", "PARAM_READ_LATENCY", "START_LAYOUT",
           "col_out_layout"]

A = 24
PARAM_READ_LATENCY = 2  # address -> block RAM (registered read) -> register -> requant
PARAM_LANE_LAYOUT = data.StructLayout({"bias": signed(32), "mult": signed(32), "shift": 8})
# the layer's start pulse, one copy per part of the write-back that it loads (equal values,
# each its own flip-flop in the controller: one start register drove every part's loads
# across the die, the second most congested net of the routed 12x8, session 29)
START_LAYOUT = data.StructLayout({u: 1 for u in ("reduce", "position", "pool", "pooled",
                                                 "writes", "rows", "split")})


def col_out_layout(acc_width: int, cols: int) -> data.ArrayLayout:
    return data.ArrayLayout(data.StructLayout({"valid": 1, "data": signed(acc_width)}), cols)


@dataclass(frozen=True)
class _Pos:
    """The replayed position of the row leaving the row reduction (`WriteBack._position_regs`)."""

    rows: int
    ileft: Signal
    tl2: Signal
    g: Signal
    r: Signal
    wptr: Signal
    gptr: Signal
    m_wvalid: Signal
    m_word: Signal
    paddr: Signal
    pt_one: Signal
    pt_m3: Signal
    i_last: Signal
    tp_end: Signal
    g_end: Signal
    p_step: Signal
    i_last_n: Signal
    tp_end_n: Signal
    conv: Signal
    conv_w: Signal
    il_first: Signal
    il_rem: Signal
    left_first: Signal
    left_rem: Signal

    def first_row(self, m: Module, rem_tile: Value | None) -> None:
        """The next tile's first row: ``rem_tile`` is None for a group's first tile, else
        whether it is a remainder tile (the group's last, in a layer with ``rem``)."""
        R = self.rows
        if rem_tile is None:
            m.d.sync += self.ileft.eq(self.left_first)
            m.d.comb += self.i_last_n.eq(self.il_first)
        else:
            m.d.sync += self.ileft.eq(Mux(rem_tile, self.left_rem, R - 1))
            m.d.comb += self.i_last_n.eq(Mux(rem_tile, self.il_rem, R == 1))


class _Beat(NamedTuple):
    """A row after the parameter read's delay, with its parameters (`WriteBack._param_delay`)."""

    valid: Signal
    wvalid: Signal
    word: Signal
    acc: list[Signal]
    prm: Signal


class _Quant(NamedTuple):
    """The requant lanes' output word, its address and valids (`WriteBack._lane_delay`)."""

    valid: Value
    word: Signal
    data: Signal
    wv_before: Signal  # q_wvalid a cycle ahead (the pool's input valid, `WriteBack._pool`)


@dataclass(frozen=True)
class _SplitRegs:
    """The row reduction's split, its row counter and the fold's flags (`WriteBack._split`)."""

    ii: Signal
    ii_end: Signal
    tl2: Signal
    tp_end: Signal
    split: Signal
    pt_one: Signal
    pt_m3: Signal
    split_last: Signal
    split_other: Signal
    one: Signal
    one_last: Signal
    one_other: Signal
    rem_on: Signal
    rem_first: list[Signal]  # per lane: a layer's first tile is a remainder tile
    rem_next: list[Signal]  # per lane: the next tile is one (`WriteBack._split_steps`)

    def split_for(self, last_tile: Value) -> list:
        """The split loaded for a tile's first row."""
        return [self.split.eq(Mux(last_tile, self.split_last, self.split_other)),
                self.one.eq(Mux(last_tile, self.one_last, self.one_other))]


class WriteBack(wiring.Component):
    def __init__(
        self,
        *,
        rows: int,
        cols: int,
        acc_width: int,
        addr_width: int,
        param_addr_width: int,
        pool_max_k: int,
        pool_max_out_w: int,
        requant_mult_latency: int = REQUANT_MULT_LATENCY,
        sum_width: int | None = None,
        fold: bool = False,
        param_hop: bool = False,
    ) -> None:
        self.rows = rows
        # one more register on the parameters' way from the block RAM to the lanes (a cycle
        # later; hwgen.rtl.traits `param_hop`)
        self.param_hop = param_hop
        # two-stream remainder tiles (ArrayConfig.remainder_stream): a RowFold after the
        # deskew adds row i + R/2 of such a tile to row i (hwgen.rtl.fold)
        self.fold = fold
        self.cols = cols
        self.acc_width = acc_width
        # the row reduction's sums (the PE accumulators' width is enough, see RowReduce)
        self.sum_width = sum_width
        self.addr_width = addr_width
        self.pool_max_k = pool_max_k
        self.pool_max_out_w = pool_max_out_w
        self.requant_mult_latency = requant_mult_latency
        super().__init__(
            {
                "desc": In(DESC_LAYOUT),
                "start": In(START_LAYOUT),
                "col_out": In(col_out_layout(acc_width, cols)),
                "param_addr": Out(unsigned(param_addr_width)),
                "param_data": In(data.ArrayLayout(PARAM_LANE_LAYOUT, cols)),
                "wr_en": Out(1),
                "wr_addr": Out(unsigned(addr_width)),
                "wr_data": Out(unsigned(8 * cols)),
                "done": Out(1),
            }
        )

    def elaborate(self, platform) -> Module:
        """Deskew, reduce, replay the position, read parameters, requantize, pool, write."""
        m = Module()
        d = self.desc
        # a small device may ask for a shorter product (hwgen.rtl.traits)
        mult_latency = trait(platform, "requant_mult_latency", self.requant_mult_latency)
        fold = bool(trait(platform, "requant_fold"))
        prl = trait(platform, "param_read_latency", PARAM_READ_LATENCY) + int(self.param_hop)

        ram_from = trait(platform, "delay_ram_from", DELAY_RAM_FROM)
        aligned = self._deskew(m, ram_from)
        aligned, row_valid = self._reduce(m, d, aligned, ram_from)
        pos = self._position_regs(m, d)
        self._position_steps(m, d, pos, row_valid)
        self._written_word(m, d, pos, row_valid)
        p = self._param_delay(m, prl, row_valid, pos, aligned)
        lanes = self._requant_lanes(m, d, p, mult_latency, fold)
        lq = lanes[0].latency
        q = self._lane_delay(m, lanes, p)
        pool_latency = self._writes(m, d, q)
        writes_all, rows_zero, rows_m2 = self._write_count(m, d)
        tail_len = prl + lq + pool_latency + 2
        rows_all, tail_zero = self._row_count(m, row_valid, rows_zero, rows_m2, tail_len)
        m.d.comb += self.done.eq(rows_all & tail_zero & writes_all)
        return m

    def _deskew(self, m: Module, ram_from: int) -> list[tuple[Value, Value]]:
        """Each column's (valid, data), column j delayed C-1-j cycles: one row per cycle. The
        valid bits in flip-flop chains (reset clears them), the data in `DelayLine`s (LUT RAM
        from ``ram_from`` cycles on)."""
        C = self.cols
        aligned = []
        for j in range(C):
            v, x = self.col_out[j].valid, self.col_out[j].data
            for s in range(C - 1 - j):
                nv = Signal(name=f"dsk_v{j}_{s}")
                m.d.sync += nv.eq(v)
                v = nv
            if C - 1 - j:
                line = DelayLine(signed(self.acc_width), C - 1 - j, ram_from=ram_from)
                m.submodules[f"dsk{j}"] = line
                m.d.comb += line.i.eq(x)
                x = line.o
            aligned.append((v, x))
        return aligned

    def _reduce(self, m: Module, d: data.View, aligned: list[tuple[Value, Value]],
                ram_from: int) -> tuple[list[tuple[Value, Value]], Value]:
        """The deskewed rows through the fold (if any) and the row reduction; and row_valid."""
        C = self.cols
        # --- row reduction (direct mode with a K split: sum each block of P rows; else a
        # one-register pass-through)
        red = RowReduce(cols=C, acc_width=self.acc_width, sum_width=self.sum_width)
        m.submodules.reduce = red
        split, split_one, fold_flags = self._split(m, d, [v for v, _ in aligned])
        if self.fold:  # (the split is then constant through a layer: no remainder split)
            aligned = self._fold(m, aligned, *fold_flags, ram_from=ram_from)
        m.d.comb += [red.start.eq(self.start.reduce), red.split_m1.eq(split),
                     red.split_one.eq(split_one), red.i_valid.eq(aligned[0][0])]
        # each lane's sums are enabled by its own column's deskewed valid (equal values)
        m.d.comb += [red.lane_valid[j].eq(aligned[j][0]) for j in range(C)]
        m.d.comb += [red.i_data[j].eq(aligned[j][1]) for j in range(C)]
        aligned = [(red.o_valid, red.o_data[j]) for j in range(C)]
        row_valid = red.o_valid
        return aligned, row_valid

    def _position_regs(self, m: Module, d: data.View) -> _Pos:
        """The row position's counters, flags and per-layer registers, and the written word."""
        R = self.rows
        # --- replay the loop order to find each row's address and parameter word
        # rows of the current tile after this one, counted down: 0 at its last (reduced)
        # row, R - 1 or R/P - 1 (a remainder tile) at its first
        ileft = Signal(range(R), reset_less=True)
        # tiles left in the group after the current one, minus 2, counted down (timing): the
        # next tp_end (one tile left) is its sign bit, no compare
        # (the position registers are reset-less: `start` loads every one of them before
        # the layer's first row, and nothing reads them before; timing: their reset pins are
        # then `start` with a flag, without the design reset beside it)
        rl = {"reset_less": True}
        tl2 = Signal(signed(18), **rl)
        g = Signal(12, **rl)
        r = Signal(16, **rl)  # conv: pixel index in the group; direct: output word
        wptr = Signal(A, **rl)
        gptr = Signal(A, **rl)  # dst_base + g: the group's first word
        m_wvalid = Signal()
        m_word = Signal(A)
        # pbase + g (conv) or pbase + r (direct), kept as a register that steps with g / r:
        # the parameter memory's address comes straight from a flip-flop.
        paddr = Signal.like(self.param_addr, **rl)
        # Per-layer constants, registered every cycle (desc is stable from the cycle before
        # start, so they are valid in the start cycle: no start branch computes from the
        # descriptor): no reset needed, like every data register here whose valid flag has one.
        pt_one = Signal(reset_less=True)  # ptiles == 1
        pt_m3 = Signal.like(tl2, reset_less=True)
        m.d.sync += [pt_one.eq(d.ptiles == 1), pt_m3.eq(d.ptiles - 3)]
        # The row's position flags, kept with their counters and set from their next values
        # (timing: every counter's enable and reset is one LUT of flip-flops, no compare):
        # i_last (ileft == 0), tp_end (the group's last pixel tile), and their products
        # g_end (conv: this row ends the group) and p_step (the parameter address steps).
        i_last, tp_end, g_end, p_step = (
            Signal(name=n, **rl) for n in ("i_last", "tp_end", "g_end", "p_step"))
        i_last_n, tp_end_n = Signal(name="i_last_n"), Signal(name="tp_end_n")
        m.d.comb += [i_last_n.eq(i_last), tp_end_n.eq(tp_end)]
        # conv mode, a per-layer register here (timing: the descriptor's mode flip-flop sits
        # with the controller, and was an input of g_end's and wptr's enable cones, which
        # failed at 6.8-7.1 ns routed on oob13)
        # (two copies: `conv` for the row position's flags and steps, `conv_w` for the
        # written word's 24-bit add and select, so neither drives the other's loads)
        conv = Signal(reset_less=True, attrs=UNSHARED)
        conv_w = Signal(reset_less=True, attrs=UNSHARED)
        m.d.sync += [conv.eq(d.mode == 0), conv_w.eq(d.mode == 0)]
        first = self._first_row_regs(m, d, ileft)
        return _Pos(R, ileft, tl2, g, r, wptr, gptr, m_wvalid, m_word, paddr, pt_one, pt_m3,
                    i_last, tp_end, g_end, p_step, i_last_n, tp_end_n, conv, conv_w, *first)

    def _first_row_regs(self, m: Module, d: data.View, ileft: Signal
                        ) -> tuple[Signal, Signal, Signal, Signal]:
        """Per-layer registers of a tile's first row: il_first, il_rem, left_first, left_rem."""
        R = self.rows
        # A group's first tile's first row (its row count and whether it is also its last),
        # and a remainder tile's: per-layer registers from the descriptor (timing: rem,
        # ptiles == 1 and rem_rows_m1 == 0 were three more inputs of g_end's cone, which
        # failed at 6.9 ns on s14's routed seeds 2 and 3)
        rem_first = d.rem & (d.ptiles == 1)  # a group's first tile is a remainder tile
        il_first = Signal(reset_less=True)
        il_rem = Signal(reset_less=True)
        left_first = Signal.like(ileft, reset_less=True)
        left_rem = Signal.like(ileft, reset_less=True)
        m.d.sync += [il_first.eq(Mux(rem_first, d.rem_rows_m1 == 0, R == 1)),
                     il_rem.eq(Mux(d.rem, d.rem_rows_m1 == 0, R == 1)),
                     left_first.eq(Mux(rem_first, d.rem_rows_m1, R - 1)),
                     left_rem.eq(Mux(d.rem, d.rem_rows_m1, R - 1))]
        return il_first, il_rem, left_first, left_rem

    def _position_steps(self, m: Module, d: data.View, pos: _Pos, row_valid: Value) -> None:
        """The row position's steps: start loads it, each row steps it; its flags' updates."""
        with m.If(self.start.position):
            m.d.sync += [pos.tl2.eq(pos.pt_m3), pos.g.eq(0), pos.r.eq(0), pos.paddr.eq(d.pbase)]
            m.d.sync += [pos.wptr.eq(d.dst_base), pos.gptr.eq(d.dst_base)]
            m.d.comb += pos.tp_end_n.eq(pos.pt_one)
            pos.first_row(m, None)
        with m.Elif(row_valid):
            m.d.sync += [pos.r.eq(pos.r + 1)]
            with m.If(pos.conv):
                m.d.sync += pos.wptr.eq(pos.wptr + d.dst_cw)
                with m.If(pos.i_last):
                    with m.If(pos.tp_end):
                        m.d.sync += [pos.tl2.eq(pos.pt_m3), pos.g.eq(pos.g + 1)]
                        m.d.comb += pos.tp_end_n.eq(pos.pt_one)
                        pos.first_row(m, None)
                    with m.Else():
                        m.d.sync += [pos.tl2.eq(pos.tl2 - 1)]
                        m.d.comb += pos.tp_end_n.eq(pos.tl2[-1])
                        pos.first_row(m, pos.tl2[-1])
                with m.Else():
                    m.d.sync += pos.ileft.eq(pos.ileft - 1)
                    m.d.comb += pos.i_last_n.eq(pos.ileft == 1)
            # the group's end (conv) or every row (direct) steps the parameter address; the
            # group's end restarts the group's pixels at its next word
            with m.If(pos.p_step):
                m.d.sync += pos.paddr.eq(pos.paddr + 1)
            with m.If(pos.g_end):
                m.d.sync += [pos.r.eq(0), pos.wptr.eq(pos.gptr + 1), pos.gptr.eq(pos.gptr + 1)]
        m.d.sync += [pos.i_last.eq(pos.i_last_n), pos.tp_end.eq(pos.tp_end_n),
                     pos.g_end.eq(pos.conv & pos.i_last_n & pos.tp_end_n),
                     pos.p_step.eq(~pos.conv | (pos.i_last_n & pos.tp_end_n))]  # fmt: skip

    def _written_word(self, m: Module, d: data.View, pos: _Pos, row_valid: Value) -> None:
        """The row's word and write valid (none past rows_limit), and the parameter address."""
        m.d.comb += [
            pos.m_wvalid.eq(row_valid & (pos.r < d.rows_limit)),
            pos.m_word.eq(pos.wptr),
            self.param_addr.eq(pos.paddr),
        ]
        with m.If(~pos.conv_w):
            m.d.comb += pos.m_word.eq(pos.wptr + pos.r)

    def _param_delay(self, m: Module, prl: int, row_valid: Value, pos: _Pos,
                     aligned: list[tuple[Value, Value]]) -> _Beat:
        """The row and its word delayed to meet its parameters, and the parameters' register."""
        C = self.cols
        # --- PARAM_READ_LATENCY cycles for the parameter read (block RAM, then a register
        # straight after it; one more with param_hop): delay data and metadata to meet it
        p_valid, p_wvalid, p_word = row_valid, pos.m_wvalid, pos.m_word
        p_acc = [aligned[j][1] for j in range(C)]
        for s in range(prl):
            nv, nwv = Signal(name=f"p_valid{s}"), Signal(name=f"p_wvalid{s}")
            nw = Signal(A, name=f"p_word{s}", reset_less=True)
            na = [Signal(signed(self.acc_width), name=f"p_acc{j}_{s}", reset_less=True)
                  for j in range(C)]
            m.d.sync += [nv.eq(p_valid), nwv.eq(p_wvalid), nw.eq(p_word)]
            m.d.sync += [na[j].eq(p_acc[j]) for j in range(C)]
            p_valid, p_wvalid, p_word, p_acc = nv, nwv, nw, na
        prm_r = Signal.like(self.param_data, reset_less=True)
        src = self.param_data
        for s in range(prl - 2):  # (param_hop) the block's output register, then prm_r
            hop = Signal.like(self.param_data, name=f"prm_o{s}", reset_less=True)
            m.d.sync += hop.eq(src)
            src = hop
        m.d["sync" if prl > 1 else "comb"] += prm_r.eq(src)
        return _Beat(p_valid, p_wvalid, p_word, p_acc, prm_r)

    def _requant_lanes(self, m: Module, d: data.View, p: _Beat, mult_latency: int,
                       fold: bool) -> list[Requant]:
        """The C requant lanes, each with its column's sum and its channel's parameters."""
        # --- C requant lanes
        lanes = []
        for j in range(self.cols):
            rq = Requant(acc_width=self.acc_width, mult_latency=mult_latency, fold=fold)
            m.submodules[f"requant{j}"] = rq
            prm = p.prm[j]
            m.d.comb += [
                rq.i_stream.valid.eq(p.valid),
                rq.i_stream.payload.acc.eq(p.acc[j]),
                rq.i_stream.payload.bias.eq(prm.bias),
                rq.i_stream.payload.mult.eq(prm.mult),
                rq.i_stream.payload.shift.eq(prm.shift),
                rq.i_stream.payload.lo.eq(d.act_lo),
                rq.i_stream.payload.hi.eq(d.act_hi),
            ]
            lanes.append(rq)
        return lanes

    def _lane_delay(self, m: Module, lanes: list[Requant], p: _Beat) -> _Quant:
        """The word and its valid delayed beside the lanes; the lanes' bytes as one word."""
        lq = lanes[0].latency
        q_wvalid, q_word = p.wvalid, p.word
        q_wv_before = q_wvalid  # q_wvalid a cycle ahead
        for s in range(lq):
            nv = Signal(name=f"q_wv{s}")
            nw = Signal(A, name=f"q_w{s}", reset_less=True)
            m.d.sync += [nv.eq(q_wvalid), nw.eq(q_word)]
            q_wv_before = q_wvalid
            q_wvalid, q_word = nv, nw
        q_valid = lanes[0].o_stream.valid & q_wvalid
        q_data = Signal(8 * self.cols)
        for j in range(self.cols):
            m.d.comb += q_data[8 * j : 8 * j + 8].eq(lanes[j].o_stream.payload)
        return _Quant(q_valid, q_word, q_data, q_wv_before)

    def _writes(self, m: Module, d: data.View, q: _Quant) -> int:
        """The buffer writes: the pool's in a pooling layer, else the lanes' (-> pool latency)."""
        # --- fused pool, or straight to the buffer. A program without pools gets no pool unit
        # (pool_max_out_w == 0): its widths would be zero.
        pool_latency = 0
        if self.pool_max_out_w:
            pool, pool_latency = self._pool(m, d, q)
            pptr = self._pooled_word(m, d, pool)
            with m.If(d.pool_en):
                m.d.comb += [
                    self.wr_en.eq(pool.o_stream.valid),
                    self.wr_addr.eq(pptr),
                    self.wr_data.eq(pool.o_stream.payload.as_value()),
                ]
            with m.Else():
                self._write_lanes(m, q)
        else:
            self._write_lanes(m, q)
        return pool_latency

    def _write_lanes(self, m: Module, q: _Quant) -> None:
        """The requant lanes' word straight to the buffer."""
        m.d.comb += [
            self.wr_en.eq(q.valid),
            self.wr_addr.eq(q.word),
            self.wr_data.eq(q.data),
        ]

    def _pool(self, m: Module, d: data.View, q: _Quant) -> tuple[Pool2d, int]:
        """The fused pool unit, fed the lanes' word a registered cycle later (-> its latency)."""
        C = self.cols
        pool = Pool2d(lanes=C, max_kernel=self.pool_max_k, max_out_width=self.pool_max_out_w)
        # The pool's input valid, q_valid & pool_en, from a flip-flop set a cycle ahead
        # (timing: it enables and resets the pool's counters and hacc). q_wvalid implies
        # the lanes' valid (both are row_valid's delay, q_wvalid also r < rows_limit),
        # and desc is stable within a layer.
        pool_v = Signal()
        m.d.sync += pool_v.eq(q.wv_before & d.pool_en)
        # The beat is registered once more beside the pool (timing: the requant lanes sit
        # by their multipliers across the die, and their route with the pool's max
        # compare in one cycle was 7.0 ns into `hacc` on s14's routed seed 2): one more
        # cycle of latency, which the layer's tail waits out.
        pool_vr = Signal()
        pool_d = Signal(8 * C, reset_less=True)
        m.d.sync += [pool_vr.eq(pool_v), pool_d.eq(q.data)]
        m.submodules.pool = pool
        pool_latency = pool.latency + 1
        m.d.comb += [
            pool.cfg.in_w.eq(d.out_w),
            pool.cfg.in_h.eq(d.out_h),
            pool.cfg.k.eq(d.pool_k),
            pool.cfg.mode.eq(d.pool_mode),
            pool.cfg.avg_shift.eq(d.pool_shift),
            pool.start.eq(self.start.pool),
            pool.i_stream.valid.eq(pool_vr),
            pool.i_stream.payload.as_value().eq(pool_d),
        ]
        return pool, pool_latency

    def _pooled_word(self, m: Module, d: data.View, pool: Pool2d) -> Signal:
        """The pooled pixel's word (pptr), replaying the pooled groups' order."""
        rl = {"reset_less": True}
        # pooled pixels left in the group after this one, minus 2, counted down: the
        # group's last pooled pixel (pq_end) is its sign bit, no compare (timing)
        pl2 = Signal(signed(18), **rl)  # (reset-less like the position in `_position_regs`)
        pq_end = Signal(**rl)
        pptr = Signal(A, **rl)
        pgptr = Signal(A, **rl)  # dst_base + the pooled group's index
        # per-layer registers (see pt_one, `_position_regs`)
        pc_m3 = Signal.like(pl2, reset_less=True)
        pc_one = Signal(reset_less=True)
        m.d.sync += [pc_m3.eq(d.pool_count - 3), pc_one.eq(d.pool_count == 1)]
        with m.If(self.start.pooled):
            m.d.sync += [pl2.eq(pc_m3), pq_end.eq(pc_one), pptr.eq(d.dst_base),
                         pgptr.eq(d.dst_base)]  # fmt: skip
        with m.Elif(pool.o_stream.valid):
            with m.If(pq_end):
                m.d.sync += [pl2.eq(pc_m3), pq_end.eq(pc_one), pptr.eq(pgptr + 1),
                             pgptr.eq(pgptr + 1)]  # fmt: skip
            with m.Else():
                m.d.sync += [pl2.eq(pl2 - 1), pq_end.eq(pl2[-1]), pptr.eq(pptr + d.dst_cw)]
        return pptr

    def _write_count(self, m: Module, d: data.View) -> tuple[Signal, Signal, Signal]:
        """The writes still to come and writes_all; the rows' start values (rows_zero, rows_m2)."""
        rl = {"reset_less": True}
        # The end tests are flags kept with their counters (timing: `done` feeds the
        # controller's state from flip-flops, not from wide compares). The writes and rows
        # still to come are counted down from n - 2: the one that ends the count is the one
        # that finds the counter negative (its sign bit), so no compare sits in front of the
        # flags.
        writes_all = Signal(init=1)  # every expected word written (none expected after reset)
        # (the counts are reset-less: read only after start loads them; the flags keep
        # their reset, so `done` is high after a reset)
        writes_l2 = Signal(signed(A + 2), **rl)  # writes left - 2
        # their start values, per-layer registers (see pt_one, `_position_regs`)
        wr_zero = Signal(reset_less=True)
        wr_m2 = Signal.like(writes_l2, reset_less=True)
        rows_zero = Signal(reset_less=True)
        rows_m2 = Signal.like(writes_l2, reset_less=True)
        m.d.sync += [wr_zero.eq(d.writes == 0), wr_m2.eq(d.writes - 2),
                     rows_zero.eq(d.rows_total == 0), rows_m2.eq(d.rows_total - 2)]
        # The writes are counted a cycle after they leave (timing: the count's enable is
        # start | a flip-flop, not the write enable's mux). writes_all is then set one cycle
        # later, which `done` does not see: the tail (`_row_count`) ends at least two cycles
        # after the last write (tail_len's + 2).
        wr_seen = Signal()
        m.d.sync += wr_seen.eq(self.wr_en)
        with m.If(self.start.writes):
            m.d.sync += [writes_all.eq(wr_zero), writes_l2.eq(wr_m2)]
        with m.Elif(wr_seen):
            m.d.sync += [writes_all.eq(writes_l2[-1]), writes_l2.eq(writes_l2 - 1)]
        return writes_all, rows_zero, rows_m2

    def _row_count(self, m: Module, row_valid: Value, rows_zero: Signal, rows_m2: Signal,
                   tail_len: int) -> tuple[Signal, Signal]:
        """Every row of the layer seen (rows_all), and the pipelines behind it empty (tail_zero)."""
        rl = {"reset_less": True}
        # The layer is over when every row of every tile has left the array, the requant and
        # pool pipelines behind it are empty, and every expected word was written. Rows of
        # the last tiles may produce no write (floor-cropped pools), so writes alone are not
        # enough: the next layer must not see them.
        rows_l2 = Signal(signed(A + 2), **rl)  # rows left - 2
        tail = Signal(range(tail_len + 1), **rl)  # (read only while ~tail_zero)
        rows_all = Signal(init=1)  # every row of the layer seen
        tail_zero = Signal(init=1)  # tail == 0
        with m.If(self.start.rows):
            m.d.sync += [rows_l2.eq(rows_m2), tail.eq(tail_len), tail_zero.eq(0),
                         rows_all.eq(rows_zero)]  # fmt: skip
        with m.Elif(row_valid):
            m.d.sync += [rows_l2.eq(rows_l2 - 1), tail.eq(tail_len), tail_zero.eq(0),
                         rows_all.eq(rows_l2[-1])]  # fmt: skip
        with m.Elif(rows_all & ~tail_zero):
            m.d.sync += [tail.eq(tail - 1), tail_zero.eq(tail == 1)]
        return rows_all, tail_zero

    def _fold(self, m: Module, aligned: list, adds: list, drops: list, *, ram_from: int) -> list:
        """The RowFold between the deskew and the row reduction: a remainder tile's rows
        0..Q-1 (part 0) are dropped, rows Q.. pass with the row Q cycles before added.
        ``adds`` / ``drops``: each lane's own copy of the entering row's flags."""
        C, Q = self.cols, self.rows // 2
        fold = RowFold(cols=C, acc_width=self.acc_width, q=Q, ram_from=ram_from)
        m.submodules.fold = fold
        m.d.comb += [fold.i_valid.eq(aligned[0][0]), fold.drop.eq(drops[0])]
        m.d.comb += [fold.add[j].eq(adds[j]) for j in range(C)]
        m.d.comb += [fold.i_data[j].eq(aligned[j][1]) for j in range(C)]
        # each lane's copy of the valid, one cycle later like the fold's (equal values)
        out = []
        for j in range(C):
            v = Signal(name=f"fold_v{j}")
            m.d.sync += v.eq(aligned[j][0] & ~drops[j])
            out.append((v, fold.o_data[j]))
        out[0] = (fold.o_valid, fold.o_data[0])
        return out

    def _split(self, m: Module, d: data.View, valids: list[Value]
               ) -> tuple[Signal, Signal, tuple[list, list]]:
        """RowReduce's P - 1 for the row entering it, and P == 1 as a flag kept with it: a
        linear layer's ksplit; in a conv layer 0 (every row is one pixel) but in a remainder
        tile (the group's last pixel tile of a layer with ``rem``) its K split. Counters of
        the deskewed rows (``valids``: each lane's, equal values), so the split is a register
        when the tile's first row arrives. Also returned, for the fold (with ``fold`` the
        remainder tiles are folded, not split): per lane, whether the entering row is a
        remainder tile's part-1 row (added) or part-0 row (dropped) (`_fold_flags`)."""
        R = self.rows
        rl = {"reset_less": True}  # (loaded by start, like the position in `_position_regs`)
        ii = Signal(range(R), **rl)  # row of the tile entering
        # ii == R - 1, kept as a flip-flop beside the counter (timing: the compare sat in front
        # of every flag and split register the tile's end loads)
        ii_end = Signal(**rl)
        n = self.cols if self.fold else 0  # (the flags exist only with a fold)
        tl2 = Signal(signed(18), **rl)  # tiles left in the group after this one, minus 2
        tp_end = Signal(**rl)  # this is the group's last pixel tile
        split = Signal(unsigned(len(d.ksplit_m1)), reset_less=True)
        # per-layer registers (valid at start, see `_position_regs`): ptiles == 1, ptiles - 3,
        # and the split of a group's last pixel tile / of its other tiles
        pt_one = Signal(reset_less=True)
        pt_m3 = Signal.like(tl2, reset_less=True)
        split_last = Signal.like(split, name="split_last")
        split_other = Signal.like(split, name="split_other")
        one = Signal(reset_less=True)  # split == 0
        one_last, one_other = Signal(name="one_last", **rl), Signal(name="one_other", **rl)
        rem_split = 0 if self.fold else d.rem  # (folded, not split: RowFold)
        s_last, s_other = Mux(d.mode | rem_split, d.ksplit_m1, 0), Mux(d.mode, d.ksplit_m1, 0)
        rem_on = Signal(reset_less=True)
        # per lane: ptiles == 1 and rem, from the per-layer registers (so two registers from
        # the descriptor: valid from the cycle after start, when the lane's own start copy
        # reads it, `_fold_flags`). Timing: one flip-flop from the descriptor for all 16
        # lanes was routed 6.45 ns to lane 11's drop flag, 8.36 ns, the only endpoint over
        # 8 ns of the 12x16 of d2f1b1b seed 1 (119.57 MHz).
        rem_first = [Signal(name=f"fold_rfirst{j}", attrs=UNSHARED, **rl) for j in range(n)]
        rem_next = [Signal(name=f"fold_rnext{j}", attrs=UNSHARED, **rl) for j in range(n)]
        m.d.sync += [rem_on.eq(d.rem), *(x.eq(pt_one & rem_on) for x in rem_first)]
        m.d.sync += [pt_one.eq(d.ptiles == 1), pt_m3.eq(d.ptiles - 3),
                     split_last.eq(s_last), split_other.eq(s_other),
                     one_last.eq(s_last == 0), one_other.eq(s_other == 0)]  # fmt: skip
        s = _SplitRegs(ii, ii_end, tl2, tp_end, split, pt_one, pt_m3, split_last, split_other,
                       one, one_last, one_other, rem_on, rem_first, rem_next)
        self._split_steps(m, s, valids[0])
        flags = [self._fold_flags(m, s, j, valids[j]) for j in range(n)]
        return split, one, ([a for a, _ in flags], [x for _, x in flags])

    def _split_steps(self, m: Module, s: _SplitRegs, valid: Value) -> None:
        """The split's row counter and tile flags: start loads them, each entering row steps
        them."""
        R = self.rows
        row0 = [s.ii.eq(0), s.ii_end.eq(R == 1)]  # a tile's first
        # Each lane's copy of "the next tile is a remainder tile", a cycle behind tp_end and
        # tl2 (read at a tile's last row, >= 2 cycles after they change: R >= 2 with a fold)
        # (timing: one mux of them and rem_on routed to every lane's flags, 8.28 ns)
        m.d.sync += [x.eq(Mux(s.tp_end, s.pt_one, s.tl2[-1]) & s.rem_on) for x in s.rem_next]
        with m.If(self.start.split):
            m.d.sync += [*row0, s.tl2.eq(s.pt_m3), s.tp_end.eq(s.pt_one), *s.split_for(s.pt_one)]
        with m.Elif(valid):
            with m.If(s.ii_end):
                m.d.sync += row0
                with m.If(s.tp_end):
                    m.d.sync += [s.tl2.eq(s.pt_m3), s.tp_end.eq(s.pt_one),
                                 *s.split_for(s.pt_one)]  # fmt: skip
                with m.Else():
                    m.d.sync += [s.tl2.eq(s.tl2 - 1), s.tp_end.eq(s.tl2[-1]),
                                 *s.split_for(s.tl2[-1])]  # fmt: skip
            with m.Else():
                # (constant compares written as constants: Verilator's lint rejects them)
                m.d.sync += [s.ii.eq(s.ii + 1), s.ii_end.eq(s.ii == R - 2 if R > 1 else 0)]

    def _fold_flags(self, m: Module, s: _SplitRegs, j: int, valid: Value
                    ) -> tuple[Signal, Signal]:
        """Lane j's fold flags for the entering row: a remainder tile's part-1 row (add) or
        part-0 row (drop). Flip-flops of the lane's own: its row counter, its tile-end flag,
        its copy of start and its own column's deskewed valid enable them (timing: one
        flip-flop each of ii_end, start and lane 0's valid in front of 16 lanes' flag
        enables was the 12x16's 8.09-8.91 ns, session 40; a shared compare in front of the
        flags, the routed 12x8's 8.6 and 9.2 ns). Its start is a cycle late: exact, since a
        layer's first row reaches the deskew more than R + C cycles after its start, and the
        layer before has no row left by then (start resets the shared counter too)."""
        R, Q = self.rows, self.rows // 2
        u = {"attrs": UNSHARED, "reset_less": True}
        add, drop = Signal(name=f"fold_add{j}", **u), Signal(name=f"fold_drop{j}", **u)
        rem = Signal(name=f"fold_rem{j}", **u)  # the entering row's tile is a remainder tile
        p1 = Signal(name=f"fold_p1{j}", **u)  # ii >= Q - 1: the next row is a part-1 row
        ii = Signal(range(R), name=f"fold_ii{j}", **u)
        end = Signal(name=f"fold_end{j}", **u)  # ii == R - 1
        # (reset-less like the rest: with a reset yosys builds the copies' D as one shared
        # LUT, start AND NOT reset, fed to all 16 across the die: 8.39 ns on the 12x16 of
        # 087232c seed 1; a start kept through a reset only sets up flags the next start sets)
        start = Signal(name=f"fold_start{j}", **u)
        m.d.sync += start.eq(self.start.split)
        # a tile's first row: part 0, dropped if remainder
        first = [ii.eq(0), end.eq(R == 1), p1.eq(Q <= 1), add.eq(0)]
        with m.If(start):
            m.d.sync += [*first, drop.eq(s.rem_first[j]), rem.eq(s.rem_first[j])]
        with m.Elif(valid):
            with m.If(end):
                m.d.sync += [*first, drop.eq(s.rem_next[j]), rem.eq(s.rem_next[j])]
            with m.Else():
                # (constant compares written as constants: Verilator's lint rejects them)
                m.d.sync += [ii.eq(ii + 1), end.eq(ii == R - 2 if R > 1 else 0),
                             p1.eq(ii >= Q - 2 if Q > 2 else 1)]
                # the next row: part 0 while ii + 1 < Q
                m.d.sync += [add.eq(rem & p1), drop.eq(rem & ~p1)]
        return add, drop


# PoolMode values are the schedule's POOL_MAX / POOL_AVG
assert PoolMode.MAX.value == 0 and PoolMode.AVG.value == 1
