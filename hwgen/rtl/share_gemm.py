"""Share-mode GEMM engine: one party's "accelerator" for the Beaver conv/linear products.

``ShareGemm(cfg, a_depth, b_depth, o_depth)`` with ``cfg.arithmetic == "ring"`` (k-bit ring
elements) computes, for X (M × K) and Y (K × N) held in its operand memories,

    O  <-  O + X @ Y      (mod 2**k, every element; O is pre-loaded, e.g. with [c]_i + [bias]_i)

on a ``SystolicArray`` in share mode. For a party's Beaver product the host loads
X = [d | [a]_i] (opened masked input beside the party's triple share, im2col'ed for a conv)
and Y = [[w]_i ; e]; the result is the party's share [acc + bias]_i.

Memories (written through the burst load port: the host hands over up to ``burst`` words
in one transaction, the engine writes one per cycle and raises ``ld_idle``):

* A (sel 0): word ``mt·K + t`` = X[mt·R + i, t] in lane i (R lanes of k bits);
* B (sel 1): word ``nt·K + t`` = Y[t, nt·C + j] in lane j (C lanes);
* O (sel 2; read back by ``rd_valid``/``rd_addr``/``rd_count``: after ``rd_idle`` the n words
  are the top n slots of ``rd_data``): word ``(nt·MT + mt)·R + i``
  holds O[mt·R + i, nt·C + j] in lane j.

Run: pulse ``start`` with ``m_tiles`` (MT), ``n_tiles``, ``k_len`` (K) and ``rows_total``
(= MT·NT·R) held; tiles issue back to back, channel group outer, pixel tile inner, with
interval max(K, R) (the array's drain spacing). Row i's token is lane i of the A word
delayed i + 1 cycles (the array takes a weight one cycle before its token), column j's
weight lane j of the B word delayed j cycles (the skew). The
drained rows are deskewed (column j delayed C−1−j) and added lane-wise into O at a
sequential address. ``done`` rises when the last row is written; ``cycles`` counts the
cycles from ``start`` to ``done``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from amaranth import Cat, Module, Mux, Signal, Value, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory, ReadPort, WritePort
from amaranth.lib.wiring import In, Out

from hwgen.config import ArrayConfig
from hwgen.rtl.pe import token_layout
from hwgen.rtl.systolic import SystolicArray

__all__ = ["ShareGemm", "CTRL_WIDTH", "gemm_layout", "share_gemm_golden"]

CTRL_WIDTH = 16


class _Ports(NamedTuple):
    """The memory ports: A and B read and written; O's accumulate read, host read, write."""

    a_rp: ReadPort
    b_rp: ReadPort
    a_wp: WritePort
    b_wp: WritePort
    o_acc_rp: ReadPort
    o_rd: ReadPort
    o_wp: WritePort


class _Load(NamedTuple):
    """The load port's burst register and the word it writes this cycle (`ShareGemm._load`)."""

    sreg: Signal
    addr: Signal
    sel: Signal
    we: Value


class _Issue(NamedTuple):
    """The run state the tokens and the drain read (`ShareGemm._issue`)."""

    running: Signal
    issuing: Signal
    t: Signal
    done: Signal


class ShareGemm(wiring.Component):
    def __init__(self, cfg: ArrayConfig, a_depth: int, b_depth: int, o_depth: int,
                 burst: int = 64) -> None:
        if cfg.arithmetic != "ring":
            raise ValueError(f"ShareGemm needs a share-mode ArrayConfig, not {cfg.arithmetic!r}")
        self.cfg = cfg
        self.k = cfg.acc_width
        self.depths = (a_depth, b_depth, o_depth)
        aw = max(max(self.depths) - 1, 1).bit_length()
        self.addr_width = aw
        self.word = max(cfg.rows, cfg.cols) * self.k  # load-port word (A: R lanes, B/O: C)
        self.burst = burst
        super().__init__({
            "ld_valid": In(1), "ld_sel": In(2), "ld_addr": In(aw),
            "ld_count": In(range(burst + 1)), "ld_data": In(unsigned(burst * self.word)),
            "ld_idle": Out(1),
            "start": In(1),
            "m_tiles": In(CTRL_WIDTH), "n_tiles": In(CTRL_WIDTH), "k_len": In(CTRL_WIDTH),
            "rows_total": In(2 * CTRL_WIDTH),
            "busy": Out(1), "done": Out(1), "cycles": Out(32),
            "rd_valid": In(1), "rd_addr": In(aw), "rd_count": In(range(burst + 1)),
            "rd_data": Out(unsigned(burst * cfg.cols * self.k)), "rd_idle": Out(1),
        })

    def elaborate(self, platform) -> Module:
        """Memories and array, the host ports, then issue, skew and drain."""
        m = Module()
        ports, arr = self._memories(m)
        ld = self._load(m, ports)
        self._read(m, ports.o_rd)
        iss = self._issue(m, ports)
        self._tokens(m, arr, ports.a_rp, iss)
        self._weights(m, arr, ports.b_rp)
        m.d.comb += arr.direct.eq(0)
        self._drain(m, arr, ports, ld, iss)
        return m

    def _memories(self, m: Module) -> tuple[_Ports, SystolicArray]:
        """The A, B and O memories, the array, and the memory ports."""
        cfg, k = self.cfg, self.k
        r, c = cfg.rows, cfg.cols
        a_depth, b_depth, o_depth = self.depths
        m.submodules.amem = amem = Memory(shape=unsigned(r * k), depth=a_depth, init=[])
        m.submodules.bmem = bmem = Memory(shape=unsigned(c * k), depth=b_depth, init=[])
        m.submodules.omem = omem = Memory(shape=unsigned(c * k), depth=o_depth, init=[])
        m.submodules.array = arr = SystolicArray(cfg)
        a_rp, b_rp = amem.read_port(), bmem.read_port()
        a_wp, b_wp = amem.write_port(), bmem.write_port()
        o_acc_rp = omem.read_port(domain="comb")
        o_rd = omem.read_port()
        o_wp = omem.write_port()
        return _Ports(a_rp, b_rp, a_wp, b_wp, o_acc_rp, o_rd, o_wp), arr

    def _load(self, m: Module, ports: _Ports) -> _Load:
        """The load port's burst register, writing A and B (O: `_drain`) one word a cycle."""
        r, c, k = self.cfg.rows, self.cfg.cols, self.k
        # ---- host port: a burst of up to ``burst`` words is latched in one cycle and written
        # one word per cycle (the host then waits for ``ld_idle``); reads (`_read`) fill a
        # burst register the same way. One host transaction per burst, not per word.
        wbits = self.word
        sreg = Signal(self.burst * wbits, reset_less=True)
        l_cnt = Signal(range(self.burst + 1))
        l_addr = Signal(self.addr_width, reset_less=True)
        l_sel = Signal(2, reset_less=True)
        m.d.comb += self.ld_idle.eq(l_cnt == 0)
        with m.If(self.ld_valid):
            m.d.sync += [sreg.eq(self.ld_data), l_cnt.eq(self.ld_count),
                         l_addr.eq(self.ld_addr), l_sel.eq(self.ld_sel)]
        with m.Elif(l_cnt != 0):
            m.d.sync += [sreg.eq(sreg >> wbits), l_cnt.eq(l_cnt - 1), l_addr.eq(l_addr + 1)]
        l_we = l_cnt != 0
        a_wp, b_wp = ports.a_wp, ports.b_wp
        m.d.comb += [
            a_wp.addr.eq(l_addr), a_wp.data.eq(sreg[: r * k]), a_wp.en.eq(l_we & (l_sel == 0)),
            b_wp.addr.eq(l_addr), b_wp.data.eq(sreg[: c * k]), b_wp.en.eq(l_we & (l_sel == 1)),
        ]
        return _Load(sreg, l_addr, l_sel, l_we)

    def _read(self, m: Module, o_rd: ReadPort) -> None:
        """The host read of O: ``rd_count`` words shifted into ``rd_data`` one per cycle."""
        obits = self.cfg.cols * self.k
        rreg = Signal(self.burst * obits, reset_less=True)
        r_cnt = Signal(range(self.burst + 1))  # words still to read
        r_pend = Signal()  # a read issued last cycle: its data arrives now
        r_addr = Signal(self.addr_width, reset_less=True)
        m.d.comb += [o_rd.addr.eq(r_addr), self.rd_data.eq(rreg),
                     self.rd_idle.eq((r_cnt == 0) & ~r_pend)]
        m.d.sync += r_pend.eq(0)
        with m.If(self.rd_valid):
            m.d.sync += [r_addr.eq(self.rd_addr), r_cnt.eq(self.rd_count)]
        with m.Elif(r_cnt != 0):
            m.d.sync += [r_addr.eq(r_addr + 1), r_cnt.eq(r_cnt - 1), r_pend.eq(1)]
        with m.If(r_pend):  # shift in at the top: after n words they are the top n slots
            m.d.sync += rreg.eq(Cat(rreg[obits:], o_rd.data))

    def _issue(self, m: Module, ports: _Ports) -> _Issue:
        """The issue counters: for nt: for mt: for t < max(K, R), A and B read addresses."""
        r = self.cfg.rows
        running = Signal()
        issuing = Signal()
        t = Signal(CTRL_WIDTH)
        mt = Signal(CTRL_WIDTH)
        nt = Signal(CTRL_WIDTH)
        a_base = Signal(self.addr_width + 1)
        b_base = Signal(self.addr_width + 1)
        ival = Signal(CTRL_WIDTH)
        cycles = Signal(32)
        done = Signal()
        m.d.comb += [self.busy.eq(running), self.done.eq(done), self.cycles.eq(cycles),
                     ports.a_rp.addr.eq(a_base + t), ports.b_rp.addr.eq(b_base + t)]
        with m.If(self.start):
            m.d.sync += [running.eq(1), issuing.eq(1), done.eq(0), cycles.eq(0), t.eq(0),
                         mt.eq(0), nt.eq(0), a_base.eq(0), b_base.eq(0),
                         ival.eq(Mux(self.k_len > r, self.k_len, r))]
        with m.Elif(running):
            m.d.sync += cycles.eq(cycles + 1)
        with m.If(issuing & ~self.start):
            m.d.sync += t.eq(t + 1)
            with m.If(t == ival - 1):
                m.d.sync += [t.eq(0), mt.eq(mt + 1), a_base.eq(a_base + self.k_len)]
                with m.If(mt == self.m_tiles - 1):
                    m.d.sync += [mt.eq(0), a_base.eq(0), nt.eq(nt + 1),
                                 b_base.eq(b_base + self.k_len)]
                    with m.If(nt == self.n_tiles - 1):
                        m.d.sync += issuing.eq(0)
        return _Issue(running, issuing, t, done)

    def _tokens(self, m: Module, arr: SystolicArray, a_rp: ReadPort, iss: _Issue) -> None:
        """Row i's token: lane i of the A word, delayed i + the array's weight lead."""
        k = self.k
        # token control, registered to meet the memories' one-cycle read
        tok = token_layout(k)
        v1 = Signal()
        f1 = Signal()
        l1 = Signal()
        m.d.sync += [v1.eq(iss.issuing & ~self.start & (iss.t < self.k_len)), f1.eq(iss.t == 0),
                     l1.eq(iss.t == self.k_len - 1)]
        for i in range(self.cfg.rows):
            cur = Signal(tok, name=f"tok{i}_d0")
            m.d.comb += [cur.valid.eq(v1), cur.first.eq(f1), cur.last.eq(l1),
                         cur.a.eq(a_rp.data[i * k : (i + 1) * k])]
            for s in range(i + arr.weight_lead):  # row skew; weights lead the tokens
                nxt = Signal(tok, name=f"tok{i}_d{s + 1}")
                m.d.sync += nxt.eq(cur)
                cur = nxt
            m.d.comb += arr.row_in[i].eq(cur)

    def _weights(self, m: Module, arr: SystolicArray, b_rp: ReadPort) -> None:
        """Column j's weight: lane j of the B word, delayed j cycles (the column skew)."""
        k = self.k
        for j in range(self.cfg.cols):
            cur = b_rp.data[j * k : (j + 1) * k]
            for s in range(j):  # column skew
                nxt = Signal(k, name=f"w{j}_d{s + 1}", reset_less=True)
                m.d.sync += nxt.eq(cur)
                cur = nxt
            m.d.comb += arr.col_w[j].eq(cur)

    def _drain(self, m: Module, arr: SystolicArray, ports: _Ports, ld: _Load,
               iss: _Issue) -> None:
        """Drain: deskew the columns, add each row into O (else O takes the load port)."""
        c, k = self.cfg.cols, self.k
        o_acc_rp, o_wp = ports.o_acc_rp, ports.o_wp
        lanes, row_valid = [], None
        for j in range(c):
            v, d = arr.col_out[j].valid, arr.col_out[j].data
            for s in range(c - 1 - j):
                nv = Signal(name=f"o{j}_v{s + 1}")
                nd = Signal(k, name=f"o{j}_d{s + 1}", reset_less=True)
                m.d.sync += [nv.eq(v), nd.eq(d)]
                v, d = nv, nd
            lanes.append(d)
            if j == 0:
                row_valid = v
        o_addr = Signal(2 * CTRL_WIDTH)
        summed = Cat(*[(o_acc_rp.data[j * k : (j + 1) * k] + lanes[j])[:k] for j in range(c)])
        m.d.comb += o_acc_rp.addr.eq(o_addr)
        with m.If(iss.running):
            m.d.comb += [o_wp.addr.eq(o_addr), o_wp.data.eq(summed), o_wp.en.eq(row_valid)]
        with m.Else():
            m.d.comb += [o_wp.addr.eq(ld.addr), o_wp.data.eq(ld.sreg[: c * k]),
                         o_wp.en.eq(ld.we & (ld.sel == 2))]
        with m.If(self.start):
            m.d.sync += o_addr.eq(0)
        with m.Elif(iss.running & row_valid):
            m.d.sync += o_addr.eq(o_addr + 1)
        with m.If(iss.running & ~self.start & ~iss.issuing & (o_addr == self.rows_total)):
            m.d.sync += [iss.running.eq(0), iss.done.eq(1)]


def share_gemm_golden(x, y, o, k: int) -> np.ndarray:
    """What one run leaves in O: (O + X @ Y) mod 2**k, exact (Python integers)."""
    x_, y_, o_ = (np.asarray(v, dtype=object) for v in (x, y, o))
    return (o_ + x_.dot(y_)) % (1 << k)


def gemm_layout(cfg: ArrayConfig, m_rows: int, n_cols: int, k_len: int) -> dict[str, int]:
    """Tile counts and memory words one GEMM needs on this engine."""
    mt = -(-m_rows // cfg.rows)
    nt = -(-n_cols // cfg.cols)
    return {"m_tiles": mt, "n_tiles": nt, "k_len": k_len, "a_words": mt * k_len,
            "b_words": nt * k_len, "o_words": mt * nt * cfg.rows,
            "rows_total": mt * nt * cfg.rows}
