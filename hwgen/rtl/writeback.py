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

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .attrs import UNSHARED
from .descriptor import DESC_LAYOUT
from .fold import RowFold
from .pool import Pool2d, PoolMode
from .reduce import RowReduce
from .requant import REQUANT_MULT_LATENCY, Requant
from .traits import trait

__all__ = ["WriteBack", "PARAM_LANE_LAYOUT", "PARAM_READ_LATENCY", "col_out_layout"]

A = 24
PARAM_READ_LATENCY = 2  # address -> block RAM (registered read) -> register -> requant
PARAM_LANE_LAYOUT = data.StructLayout({"bias": signed(32), "mult": signed(32), "shift": 8})


def col_out_layout(acc_width: int, cols: int) -> data.ArrayLayout:
    return data.ArrayLayout(data.StructLayout({"valid": 1, "data": signed(acc_width)}), cols)


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
    ) -> None:
        self.rows = rows
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
                "start": In(1),
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
        m = Module()
        d = self.desc
        R, C = self.rows, self.cols
        # a small device may ask for a shorter product (hwgen.rtl.traits)
        mult_latency = trait(platform, "requant_mult_latency", self.requant_mult_latency)
        fold = bool(trait(platform, "requant_fold", False))
        prl = trait(platform, "param_read_latency", PARAM_READ_LATENCY)

        # --- deskew: column j waits C-1-j cycles
        aligned = []
        for j in range(C):
            v, x = self.col_out[j].valid, self.col_out[j].data
            for s in range(C - 1 - j):
                nv = Signal(name=f"dsk_v{j}_{s}")
                nx = Signal(signed(self.acc_width), name=f"dsk_d{j}_{s}", reset_less=True)
                m.d.sync += [nv.eq(v), nx.eq(x)]
                v, x = nv, nx
            aligned.append((v, x))
        # --- row reduction (direct mode with a K split: sum each block of P rows; else a
        # one-register pass-through)
        red = RowReduce(cols=C, acc_width=self.acc_width, sum_width=self.sum_width)
        m.submodules.reduce = red
        split, split_one, fold_flags = self._split(m, d, aligned[0][0])
        if self.fold:  # (the split is then constant through a layer: no remainder split)
            aligned = self._fold(m, aligned, *fold_flags)
        m.d.comb += [red.start.eq(self.start), red.split_m1.eq(split),
                     red.split_one.eq(split_one), red.i_valid.eq(aligned[0][0])]
        # each lane's sums are enabled by its own column's deskewed valid (equal values)
        m.d.comb += [red.lane_valid[j].eq(aligned[j][0]) for j in range(C)]
        m.d.comb += [red.i_data[j].eq(aligned[j][1]) for j in range(C)]
        aligned = [(red.o_valid, red.o_data[j]) for j in range(C)]
        row_valid = red.o_valid

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
        i_last, tp_end, g_end, p_step = (Signal(**rl) for _ in range(4))
        i_last_n, tp_end_n = Signal(), Signal()
        m.d.comb += [i_last_n.eq(i_last), tp_end_n.eq(tp_end)]
        # conv mode, a per-layer register here (timing: the descriptor's mode flip-flop sits
        # with the controller, and was an input of g_end's and wptr's enable cones, which
        # failed at 6.8-7.1 ns routed on oob13)
        # (two copies: `conv` for the row position's flags and steps, `conv_w` for the
        # written word's 24-bit add and select, so neither drives the other's loads)
        conv = Signal(reset_less=True, attrs=UNSHARED)
        conv_w = Signal(reset_less=True, attrs=UNSHARED)
        m.d.sync += [conv.eq(d.mode == 0), conv_w.eq(d.mode == 0)]

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

        def first_row(rem_tile):
            """The next tile's first row: ``rem_tile`` is None for a group's first tile, else
            whether it is a remainder tile (the group's last, in a layer with ``rem``)."""
            if rem_tile is None:
                m.d.sync += ileft.eq(left_first)
                m.d.comb += i_last_n.eq(il_first)
            else:
                m.d.sync += ileft.eq(Mux(rem_tile, left_rem, R - 1))
                m.d.comb += i_last_n.eq(Mux(rem_tile, il_rem, R == 1))

        with m.If(self.start):
            m.d.sync += [tl2.eq(pt_m3), g.eq(0), r.eq(0), paddr.eq(d.pbase)]
            m.d.sync += [wptr.eq(d.dst_base), gptr.eq(d.dst_base)]
            m.d.comb += tp_end_n.eq(pt_one)
            first_row(None)
        with m.Elif(row_valid):
            m.d.sync += [r.eq(r + 1)]
            with m.If(conv):
                m.d.sync += wptr.eq(wptr + d.dst_cw)
                with m.If(i_last):
                    with m.If(tp_end):
                        m.d.sync += [tl2.eq(pt_m3), g.eq(g + 1)]
                        m.d.comb += tp_end_n.eq(pt_one)
                        first_row(None)
                    with m.Else():
                        m.d.sync += [tl2.eq(tl2 - 1)]
                        m.d.comb += tp_end_n.eq(tl2[-1])
                        first_row(tl2[-1])
                with m.Else():
                    m.d.sync += ileft.eq(ileft - 1)
                    m.d.comb += i_last_n.eq(ileft == 1)
            # the group's end (conv) or every row (direct) steps the parameter address; the
            # group's end restarts the group's pixels at its next word
            with m.If(p_step):
                m.d.sync += paddr.eq(paddr + 1)
            with m.If(g_end):
                m.d.sync += [r.eq(0), wptr.eq(gptr + 1), gptr.eq(gptr + 1)]
        m.d.sync += [i_last.eq(i_last_n), tp_end.eq(tp_end_n),
                     g_end.eq(conv & i_last_n & tp_end_n),
                     p_step.eq(~conv | (i_last_n & tp_end_n))]  # fmt: skip
        m.d.comb += [
            m_wvalid.eq(row_valid & (r < d.rows_limit)),
            m_word.eq(wptr),
            self.param_addr.eq(paddr),
        ]
        with m.If(~conv_w):
            m.d.comb += m_word.eq(wptr + r)

        # --- PARAM_READ_LATENCY cycles for the parameter read (block RAM, then a register
        # straight after it): delay data and metadata to meet it
        p_valid, p_wvalid, p_word = row_valid, m_wvalid, m_word
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
        m.d["sync" if prl > 1 else "comb"] += prm_r.eq(self.param_data)

        # --- C requant lanes
        lanes = []
        for j in range(C):
            rq = Requant(acc_width=self.acc_width, mult_latency=mult_latency, fold=fold)
            m.submodules[f"requant{j}"] = rq
            prm = prm_r[j]
            m.d.comb += [
                rq.i_stream.valid.eq(p_valid),
                rq.i_stream.payload.acc.eq(p_acc[j]),
                rq.i_stream.payload.bias.eq(prm.bias),
                rq.i_stream.payload.mult.eq(prm.mult),
                rq.i_stream.payload.shift.eq(prm.shift),
                rq.i_stream.payload.lo.eq(d.act_lo),
                rq.i_stream.payload.hi.eq(d.act_hi),
            ]
            lanes.append(rq)
        lq = lanes[0].latency
        q_wvalid, q_word = p_wvalid, p_word
        q_wv_before = q_wvalid  # q_wvalid a cycle ahead
        for s in range(lq):
            nv = Signal(name=f"q_wv{s}")
            nw = Signal(A, name=f"q_w{s}", reset_less=True)
            m.d.sync += [nv.eq(q_wvalid), nw.eq(q_word)]
            q_wv_before = q_wvalid
            q_wvalid, q_word = nv, nw
        q_valid = lanes[0].o_stream.valid & q_wvalid
        q_data = Signal(8 * C)
        for j in range(C):
            m.d.comb += q_data[8 * j : 8 * j + 8].eq(lanes[j].o_stream.payload)

        # --- fused pool, or straight to the buffer. A program without pools gets no pool unit
        # (pool_max_out_w == 0): its widths would be zero.
        pool_latency = 0
        if self.pool_max_out_w:
            pool = Pool2d(lanes=C, max_kernel=self.pool_max_k, max_out_width=self.pool_max_out_w)
            # The pool's input valid, q_valid & pool_en, from a flip-flop set a cycle ahead
            # (timing: it enables and resets the pool's counters and hacc). q_wvalid implies
            # the lanes' valid (both are row_valid's delay, q_wvalid also r < rows_limit),
            # and desc is stable within a layer.
            pool_v = Signal()
            m.d.sync += pool_v.eq(q_wv_before & d.pool_en)
            # The beat is registered once more beside the pool (timing: the requant lanes sit
            # by their multipliers across the die, and their route with the pool's max
            # compare in one cycle was 7.0 ns into `hacc` on s14's routed seed 2): one more
            # cycle of latency, which the layer's tail waits out.
            pool_vr = Signal()
            pool_d = Signal(8 * C, reset_less=True)
            m.d.sync += [pool_vr.eq(pool_v), pool_d.eq(q_data)]
            m.submodules.pool = pool
            pool_latency = pool.latency + 1
            m.d.comb += [
                pool.cfg.in_w.eq(d.out_w),
                pool.cfg.in_h.eq(d.out_h),
                pool.cfg.k.eq(d.pool_k),
                pool.cfg.mode.eq(d.pool_mode),
                pool.cfg.avg_shift.eq(d.pool_shift),
                pool.start.eq(self.start),
                pool.i_stream.valid.eq(pool_vr),
                pool.i_stream.payload.as_value().eq(pool_d),
            ]
            # pooled pixels left in the group after this one, minus 2, counted down: the
            # group's last pooled pixel (pq_end) is its sign bit, no compare (timing)
            pl2 = Signal(signed(18), **rl)  # (reset-less like the position above)
            pq_end = Signal(**rl)
            pptr = Signal(A, **rl)
            pgptr = Signal(A, **rl)  # dst_base + the pooled group's index
            pc_m3 = Signal.like(pl2, reset_less=True)  # per-layer registers (see pt_one)
            pc_one = Signal(reset_less=True)
            m.d.sync += [pc_m3.eq(d.pool_count - 3), pc_one.eq(d.pool_count == 1)]
            with m.If(self.start):
                m.d.sync += [pl2.eq(pc_m3), pq_end.eq(pc_one), pptr.eq(d.dst_base),
                             pgptr.eq(d.dst_base)]  # fmt: skip
            with m.Elif(pool.o_stream.valid):
                with m.If(pq_end):
                    m.d.sync += [pl2.eq(pc_m3), pq_end.eq(pc_one), pptr.eq(pgptr + 1),
                                 pgptr.eq(pgptr + 1)]  # fmt: skip
                with m.Else():
                    m.d.sync += [pl2.eq(pl2 - 1), pq_end.eq(pl2[-1]), pptr.eq(pptr + d.dst_cw)]
            with m.If(d.pool_en):
                m.d.comb += [
                    self.wr_en.eq(pool.o_stream.valid),
                    self.wr_addr.eq(pptr),
                    self.wr_data.eq(pool.o_stream.payload.as_value()),
                ]
            with m.Else():
                m.d.comb += [
                    self.wr_en.eq(q_valid),
                    self.wr_addr.eq(q_word),
                    self.wr_data.eq(q_data),
                ]
        else:
            m.d.comb += [
                self.wr_en.eq(q_valid),
                self.wr_addr.eq(q_word),
                self.wr_data.eq(q_data),
            ]
        # The end tests are flags kept with their counters (timing: `done` feeds the
        # controller's state from flip-flops, not from wide compares). The writes and rows
        # still to come are counted down from n - 2: the one that ends the count is the one
        # that finds the counter negative (its sign bit), so no compare sits in front of the
        # flags.
        writes_all = Signal(init=1)  # every expected word written (none expected after reset)
        # (the counts are reset-less: read only after start loads them; the flags keep
        # their reset, so `done` is high after a reset)
        writes_l2 = Signal(signed(A + 2), **rl)  # writes left - 2
        # their start values, per-layer registers (see pt_one)
        wr_zero, wr_m2 = Signal(reset_less=True), Signal.like(writes_l2, reset_less=True)
        rows_zero, rows_m2 = Signal(reset_less=True), Signal.like(writes_l2, reset_less=True)
        m.d.sync += [wr_zero.eq(d.writes == 0), wr_m2.eq(d.writes - 2),
                     rows_zero.eq(d.rows_total == 0), rows_m2.eq(d.rows_total - 2)]
        # The writes are counted a cycle after they leave (timing: the count's enable is
        # start | a flip-flop, not the write enable's mux). writes_all is then set one cycle
        # later, which `done` does not see: the tail below ends at least two cycles after
        # the last write (tail_len's + 2).
        wr_seen = Signal()
        m.d.sync += wr_seen.eq(self.wr_en)
        with m.If(self.start):
            m.d.sync += [writes_all.eq(wr_zero), writes_l2.eq(wr_m2)]
        with m.Elif(wr_seen):
            m.d.sync += [writes_all.eq(writes_l2[-1]), writes_l2.eq(writes_l2 - 1)]
        # The layer is over when every row of every tile has left the array, the requant and
        # pool pipelines behind it are empty, and every expected word was written. Rows of
        # the last tiles may produce no write (floor-cropped pools), so writes alone are not
        # enough: the next layer must not see them.
        rows_l2 = Signal(signed(A + 2), **rl)  # rows left - 2
        tail_len = prl + lq + pool_latency + 2
        tail = Signal(range(tail_len + 1), **rl)  # (read only while ~tail_zero)
        rows_all = Signal(init=1)  # every row of the layer seen
        tail_zero = Signal(init=1)  # tail == 0
        with m.If(self.start):
            m.d.sync += [rows_l2.eq(rows_m2), tail.eq(tail_len), tail_zero.eq(0),
                         rows_all.eq(rows_zero)]  # fmt: skip
        with m.Elif(row_valid):
            m.d.sync += [rows_l2.eq(rows_l2 - 1), tail.eq(tail_len), tail_zero.eq(0),
                         rows_all.eq(rows_l2[-1])]  # fmt: skip
        with m.Elif(rows_all & ~tail_zero):
            m.d.sync += [tail.eq(tail - 1), tail_zero.eq(tail == 1)]
        m.d.comb += self.done.eq(rows_all & tail_zero & writes_all)
        return m


    def _fold(self, m: Module, aligned: list, adds: list, drops: list) -> list:
        """The RowFold between the deskew and the row reduction: a remainder tile's rows
        0..Q-1 (part 0) are dropped, rows Q.. pass with the row Q cycles before added.
        ``adds`` / ``drops``: each lane's own copy of the entering row's flags."""
        C, Q = self.cols, self.rows // 2
        fold = RowFold(cols=C, acc_width=self.acc_width, q=Q)
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

    def _split(self, m: Module, d, valid) -> tuple[Signal, Signal, tuple[list, list]]:
        """RowReduce's P - 1 for the row entering it, and P == 1 as a flag kept with it: a
        linear layer's ksplit; in a conv layer 0 (every row is one pixel) but in a remainder
        tile (the group's last pixel tile of a layer with ``rem``) its K split. Counters of
        the deskewed rows, so the split is a register when the tile's first row arrives.
        Also returned, for the fold (with ``fold`` the remainder tiles are folded, not
        split): per lane, whether the entering row is a remainder tile's part-1 row (added)
        or part-0 row (dropped), flags kept with the row counter, one flip-flop per lane
        each (timing: no compare, nor one flag routed to every lane, in front of the fold's
        adds: the routed 12x8's worst paths, 8.6 and 9.2 ns)."""
        R = self.rows
        rl = {"reset_less": True}  # (loaded by start, like the position in elaborate)
        ii = Signal(range(R), **rl)  # row of the tile entering
        # ii == R - 1, kept as a flip-flop beside the counter (timing: the compare sat in front
        # of every flag and split register the tile's end loads)
        ii_end = Signal(**rl)
        C, Q = self.cols, R // 2
        n = C if self.fold else 0  # (the flags exist only with a fold)
        adds = [Signal(name=f"fold_add{j}", attrs=UNSHARED, **rl) for j in range(n)]
        drops = [Signal(name=f"fold_drop{j}", attrs=UNSHARED, **rl) for j in range(n)]
        tl2 = Signal(signed(18), **rl)  # tiles left in the group after this one, minus 2
        tp_end = Signal(**rl)  # this is the group's last pixel tile
        split = Signal(unsigned(len(d.ksplit_m1)), reset_less=True)
        # per-layer registers (valid at start, see elaborate): ptiles == 1, ptiles - 3, and
        # the split of a group's last pixel tile / of its other tiles
        pt_one = Signal(reset_less=True)
        pt_m3 = Signal.like(tl2, reset_less=True)
        split_last, split_other = Signal.like(split), Signal.like(split)
        one = Signal(reset_less=True)  # split == 0
        one_last, one_other = Signal(reset_less=True), Signal(reset_less=True)
        rem_split = 0 if self.fold else d.rem  # (folded, not split: RowFold)
        s_last, s_other = Mux(d.mode | rem_split, d.ksplit_m1, 0), Mux(d.mode, d.ksplit_m1, 0)
        # per lane: the entering row's tile is a remainder tile, and ii >= Q - 1 (the next
        # row is a part-1 row, set with the counter). Each lane's own copies (timing: one
        # `rem_tile` flag, and the compare, routed to every lane's add/drop flip-flops was
        # the 12x8's 8.39 ns, session 23)
        rems = [Signal(name=f"fold_rem{j}", attrs=UNSHARED, **rl) for j in range(n)]
        p1s = [Signal(name=f"fold_p1{j}", attrs=UNSHARED, **rl) for j in range(n)]
        rem_on = Signal(reset_less=True)
        m.d.sync += rem_on.eq(d.rem)
        m.d.sync += [pt_one.eq(d.ptiles == 1), pt_m3.eq(d.ptiles - 3),
                     split_last.eq(s_last), split_other.eq(s_other),
                     one_last.eq(s_last == 0), one_other.eq(s_other == 0)]  # fmt: skip

        def split_for(last_tile):  # (a tile's first row: part 0, dropped if remainder)
            flags = [*(a.eq(0) for a in adds), *(x.eq(last_tile & rem_on) for x in drops),
                     *(r.eq(last_tile & rem_on) for r in rems)]
            return [split.eq(Mux(last_tile, split_last, split_other)),
                    one.eq(Mux(last_tile, one_last, one_other)), *flags]

        row0 = [ii.eq(0), ii_end.eq(R == 1), *(p.eq(Q <= 1) for p in p1s)]  # a tile's first
        with m.If(self.start):
            m.d.sync += [*row0, tl2.eq(pt_m3), tp_end.eq(pt_one), *split_for(pt_one)]
        with m.Elif(valid):
            with m.If(ii_end):
                m.d.sync += row0
                with m.If(tp_end):
                    m.d.sync += [tl2.eq(pt_m3), tp_end.eq(pt_one), *split_for(pt_one)]
                with m.Else():
                    m.d.sync += [tl2.eq(tl2 - 1), tp_end.eq(tl2[-1]), *split_for(tl2[-1])]
            with m.Else():
                # (constant compares written as constants: Verilator's lint rejects them)
                m.d.sync += [ii.eq(ii + 1), ii_end.eq(ii == R - 2 if R > 1 else 0),
                             *(p.eq(ii >= Q - 2 if Q > 2 else 1) for p in p1s)]  # fmt: skip
                # the next row: part 0 while ii + 1 < Q
                for a, x, r, p in zip(adds, drops, rems, p1s, strict=True):
                    m.d.sync += [a.eq(r & p), x.eq(r & ~p)]
        return split, one, (adds, drops)


# PoolMode values are the schedule's POOL_MAX / POOL_AVG
assert PoolMode.MAX.value == 0 and PoolMode.AVG.value == 1
