"""HostTop: the Accelerator behind a framed UART host link (docs/hostlink.md).

    HostTop(program_or_plan, clk_freq, baud, *, max_payload=1024, timeout_bits=2000)

Ports: `uart_rx` In(1), `uart_tx` Out(1), `led_busy`, `led_done`, `led_error`, `led_loaded`
Out(1). The board top (hwgen.boards.top.BoardTop) instantiates it in its sync domain and wires
the FTDI UART pins and four LEDs; nothing else leaves the chip. The design is sized by a
MemoryPlan (a Program builds the smallest plan for it); any program that fits is loaded over
the link.

Inside: UartRx -> frame parser (sync byte, command, length, payload into a frame buffer,
CRC-16 check, inter-byte timeout) -> command dispatcher (drives the Accelerator's weights and
image streams, reads its logits stream and cycle counters; each stream through a register
slice, hwgen/rtl/regslice.py) -> reply framer -> UartTx. A frame
acts only once it is complete and its CRC is right, so a corrupted or truncated frame changes
nothing. One frame is in flight at a time: bytes that arrive while a command runs are ignored.

Timing (docs/architecture.md, "every host-link path is at most 3 LUT levels"): the parser,
dispatcher and reply framer are one-hot; CRCs, compares, dispatch decisions and the reply's
fields and bytes are registered a cycle or two ahead of their use (the link runs at UART
speed: a few cycles cost nothing).
"""

from __future__ import annotations

import struct
from contextlib import contextmanager
from typing import NamedTuple

from amaranth import Array, Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.build import Platform
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from hwgen.rtl.loader import ACT_LATENCY, LOADED_LATENCY
from hwgen.rtl.regslice import RegSlice
from hwgen.rtl.resets import add_unit
from hwgen.rtl.top import (
    IMAGE_LAYOUT,
    LOGIT_LAYOUT,
    PERF_READ_LATENCY,
    WEIGHT_LAYOUT,
    Accelerator,
)
from hwgen.rtl.traits import trait
from hwgen.schedule.capacity import MemoryPlan
from hwgen.schedule.program import Program

from .protocol import (
    INFO_FORMAT,
    INFO_MAGIC,
    INFO_VERSION,
    REP_SYNC,
    REQ_SYNC,
    ST_ACCEL_ERROR,
    ST_ACCEL_STATUS_SHIFT,
    ST_BUSY,
    ST_DONE,
    ST_LAST_ERROR_SHIFT,
    ST_LOADED,
    Cmd,
    Status,
)
from .uart import UartRx, UartTx, crc16_update

# the dispatcher's LOAD_SETTLE waits the one cycle the loader takes to act on a beat, and
# LOAD_LOADED the one more `loaded` takes to rise
assert ACT_LATENCY == 1 and LOADED_LATENCY == 2, "LOAD_SETTLE, LOAD_LOADED: update them"

__all__ = ["HostTop", "info_payload"]


def info_payload(plan: MemoryPlan, max_payload: int) -> bytes:
    a = plan.array
    return struct.pack(
        INFO_FORMAT, INFO_MAGIC, INFO_VERSION, a.rows, a.cols, plan.acc_width, max_payload,
        plan.max_layers,
        plan.buf_depth[0], plan.buf_depth[1], plan.convw_depth, plan.directw_depth,
        plan.param_depth, plan.pool_max_k, plan.pool_max_out_w,
        *(plan.desc_bits or (0, 0, 0)),
    )  # fmt: skip


def _drive(payload, value, last) -> list:
    """Drive a {data, last} stream payload (INTERFACES 1)."""
    return [payload.data.eq(value), payload.last.eq(last)]


class _OneHot:
    """A state machine kept one-hot: a flip-flop per state, the first one set at reset
    (timing: a state's actions and exits start from its own flip-flop, not from a decode of
    an encoded state register). On any path through a state's body `goto` is called at most
    once. Each `goto` is a pulse (a comb signal set on that path); `close` then writes every
    flag's next value as (its entries) | (flag & ~its exits), so a state left in every cycle
    (ANSWER) does not read its own flip-flop (timing: the if-chain form fed dispatch_answer
    back into its next value, 3.05 ns of routing each way, the 12x16's 8.10 ns, session 46)."""

    def __init__(self, m: Module, name: str, states: list[str]) -> None:
        self.m, self.name = m, name
        self.flag = {s: Signal(init=(i == 0), name=f"{name}_{s.lower()}")
                     for i, s in enumerate(states)}  # fmt: skip
        self._enter: dict[str, list[Signal]] = {s: [] for s in states}
        self._leave: dict[str, list[Signal]] = {s: [] for s in states}
        self._now: str | None = None
        self._closed = False

    @contextmanager
    def state(self, s: str):
        assert self._now is None
        with self.m.If(self.flag[s]):
            self._now = s
            try:
                yield
            finally:
                self._now = None

    def goto(self, s: str) -> None:
        assert self._now is not None and s != self._now and not self._closed
        t = Signal(name=f"{self.name}_{self._now.lower()}_to_{s.lower()}")
        self.m.d.comb += t.eq(1)
        self._enter[s].append(t)
        self._leave[self._now].append(t)

    def close(self) -> None:
        """Every flag's next value, from the transitions `goto` recorded."""
        self._closed = True
        for s, f in self.flag.items():
            enter, leave = Cat(*self._enter[s]).any(), Cat(*self._leave[s]).any()
            self.m.d.sync += f.eq(enter | (f & ~leave))


class _Units(NamedTuple):
    """The units the link's logic drives: the Accelerator, the UART receiver, the slices."""

    acc: Accelerator
    rx: UartRx
    w_sl: RegSlice  # the weights, host side (the dispatcher pushes beats)
    wc_sl: RegSlice  # the weights, core side (LOAD_CHECK waits for both to be empty)
    i_sl: RegSlice  # the image, host side
    o_sl: RegSlice  # the logits, host side (the reply framer pops bytes)
    t_sl: RegSlice  # the reply's bytes into the UART transmitter


class _Parser(NamedTuple):
    """The frame parser's input byte, state machine and registers (HostTop._frame_parser)."""

    byte: Signal  # the received byte (a register in UartRx)
    got: Signal  # a byte arrived while the dispatcher waited (registered)
    pfsm: _OneHot
    p_cmd: Signal
    p_len: Signal
    p_cnt: Signal
    p_crc: Signal
    lo_ok: Signal
    idle_left: Signal
    expired: Signal
    p_len_m1: Signal
    p_end: Signal
    f_valid: Signal
    f_status: Signal
    f_ok: Signal
    too_long: Signal
    tmo_fire: Signal


class _Frame(NamedTuple):
    """A received frame as the dispatcher sees it (HostTop._frame_parser)."""

    p_cmd: Signal
    p_len: Signal
    p_len_m1: Signal  # p_len - 1, registered
    f_valid: Signal  # one-cycle pulse: a frame ended (f_status says how)
    f_status: Signal
    f_ok: Signal  # f_status == OK (a pulse, read with f_valid)
    f_go_load: Signal  # f_ok and go_load (a pulse, read with f_valid)
    f_go_feed: Signal  # f_ok and go_feed (a pulse, read with f_valid)
    go_load: Signal  # the dispatcher's registered decisions (HostTop._frame_decode)
    go_feed: Signal


class _Reply(NamedTuple):
    """The reply framer's fields and the status it reports (HostTop._reply_framer)."""

    r_start: Signal  # pulse: send a reply with r_status, r_cmd, r_len from src_*
    r_status: Signal
    r_cmd: Signal
    r_len: Signal
    src_info: Signal  # the payload source, one-hot (none set: a reply without payload)
    src_status: Signal
    src_cycles: Signal
    src_logits: Signal
    r_idx: Signal
    r_crc: Signal
    r_busy: Signal
    info: bytes  # the INFO reply's payload (info_payload)
    status_word: Signal
    status_snap: Signal
    last_err: Signal
    accel_error: Value


class _ReplyBytes(NamedTuple):
    """The reply's next byte and the index tests, registered (HostTop._reply_bytes)."""

    pay_r: Signal
    pay_valid_r: Signal
    fresh: Signal
    hdr_sr: Signal
    hdr_r: Value
    settling: Signal
    idx_first: Signal
    hdr_end: Signal
    pay_end: Signal


class _Streams(NamedTuple):
    """The dispatcher's read pointer and stream registers (HostTop._dispatch_regs)."""

    rd_ptr: Signal
    beat: Signal
    nbyte: Signal
    img_byte: Signal
    w_valid: Signal
    w_refuse: Signal
    w_last: Signal
    fb_q: Signal
    rd_end: Signal
    w_end: Signal
    i_valid: Signal
    i_last: Signal


class _Decode(NamedTuple):
    """The frame's command and length tests and the decisions made of them, registered."""

    cmd: dict[Cmd, Signal]
    bad_len: Signal
    unloaded: Signal
    unknown: Signal
    cyc_len: Signal
    out_len: Signal
    load_bad: Signal


class _Answer:
    """The dispatcher's replies: one-hot flags (`ans`, one per kind), set as it decides."""

    def __init__(self, m: Module, dsp: _OneHot, kinds: dict[str, tuple]) -> None:
        """A flag per kind of reply (`kinds`: status, payload length, source) and ans_err."""
        self.m, self.dsp, self.kinds = m, dsp, kinds
        self.ans = {k: Signal(name=f"ans_{k}") for k in kinds}
        # the reply's status is an error (last_err takes it)
        self.ans_err = Signal(name="ans_err")
        m.d.sync += [a.eq(0) for a in self.ans.values()]
        m.d.sync += self.ans_err.eq(0)

    def __call__(self, kind: str, cond: Value | None = None) -> None:
        """Reply with `kind`: the flags now, the fields next cycle (ANSWER)."""
        m, kinds = self.m, self.kinds
        sets = [self.ans[kind].eq(1)]
        if kind == "frame" or (isinstance(kinds[kind][0], int) and kinds[kind][0]):
            sets.append(self.ans_err.eq(1))
        if cond is None:
            m.d.sync += sets
            self.dsp.goto("ANSWER")
        else:  # (outside the FSM: WAIT's frame decisions, from f_valid)
            with m.If(cond):
                m.d.sync += sets


class HostTop(wiring.Component):
    def __init__(
        self,
        program: Program | MemoryPlan,
        clk_freq: float,
        baud: float,
        *,
        max_payload: int = 1024,
        timeout_bits: int = 2000,
    ) -> None:
        self.plan = MemoryPlan.of(program) if isinstance(program, Program) else program
        self.cpb = round(clk_freq / baud)
        if self.cpb < 4:
            raise ValueError(f"clk_freq/baud = {clk_freq}/{baud} < 4 clocks per bit")
        if max_payload < 8 or max_payload % 4 or max_payload > 0xFFFF:
            raise ValueError(f"max_payload {max_payload}: a multiple of 4 in 8..65532")
        self.max_payload = max_payload
        self.timeout = timeout_bits * self.cpb
        super().__init__(
            {
                "uart_rx": In(1, init=1),
                "uart_tx": Out(1, init=1),
                "led_busy": Out(1),
                "led_done": Out(1),
                "led_error": Out(1),
                "led_loaded": Out(1),
            }
        )

    def elaborate(self, platform) -> Module:
        """The units, then the frame parser, the reply framer, the dispatcher and the LEDs."""
        m = Module()
        # (the pieces run in this order: the netlist's names follow the order in which signals
        # and statements are made, so moving one changes the RTLIL though not the logic)
        u = self._units(m, platform)
        fb_w, fb_r = self._frame_buffer(m)
        f, dsp = self._frame_parser(m, u.rx, fb_w)
        r = self._reply_framer(m, u)
        self._dispatcher(m, u, fb_r, f, r, dsp)
        m.d.comb += [
            self.led_busy.eq(u.acc.busy),
            self.led_done.eq(u.acc.done),
            self.led_error.eq((r.last_err != 0) | r.accel_error),
            self.led_loaded.eq(u.acc.weights_loaded),
        ]
        return m

    def _units(self, m: Module, platform: Platform | None) -> _Units:
        """The Accelerator, the UART and the register slices of the streams, connected."""
        # each unit on its own registered reset on a large device (hwgen.rtl.resets)
        acc = add_unit(m, "accel", Accelerator(self.plan), platform)
        rx = add_unit(m, "rx", UartRx(self.cpb), platform)
        tx = add_unit(m, "tx", UartTx(self.cpb), platform)
        m.d.comb += [rx.rx.eq(self.uart_rx), self.uart_tx.eq(tx.tx)]
        m.d.comb += [acc.dbg_stop.eq(0), acc.dbg_buf.eq(0), acc.dbg_addr.eq(0)]
        # The Accelerator's three streams pass register slices (timing: the core's `ready`
        # and `valid` reach the dispatcher and the reply framer from flip-flops, never
        # through the core's logic; hwgen/rtl/regslice.py). A slice holds up to two beats.
        w_sl = add_unit(m, "w_slice", RegSlice(WEIGHT_LAYOUT), platform)
        i_sl = add_unit(m, "i_slice", RegSlice(IMAGE_LAYOUT), platform)
        # The weights and the image pass a second slice at the core's side, so the die is
        # crossed between two slices' flip-flops: with one slice either its `valid` reached
        # the core's many loads across the die (the loader's enables, 5.3 ns of routing on
        # one net, d0a3a0e seed 1) or the core's `ready` (a few LUTs of the write-back's port
        # use for the image) reached the dispatcher's side (8.38 ns, b24ce83 seed 3).
        # (the image's core-side slice is the Accelerator's own where the platform says so,
        # trait `image_slice`: its `valid` has a copy for the image writer)
        wc_sl = add_unit(m, "w_slice_core", RegSlice(WEIGHT_LAYOUT), platform)
        core_image = acc.image
        if not trait(platform, "image_slice"):
            ic_sl = add_unit(m, "i_slice_core", RegSlice(IMAGE_LAYOUT), platform)
            wiring.connect(m, ic_sl.o, acc.image)
            core_image = ic_sl.i
        o_sl = add_unit(m, "o_slice", RegSlice(LOGIT_LAYOUT), platform)
        # and the logits one at the core's side too (timing: the host-side slice's `ready`
        # reached the result transfer's word register across the die, 6.70 ns on s15 seed 2)
        oc_sl = add_unit(m, "o_slice_core", RegSlice(LOGIT_LAYOUT), platform)
        # and the reply framer's bytes pass one into the UART transmitter (its `ready` is a
        # bit-counter compare; the framer's state and CRC then start from the slice's flag)
        t_sl = add_unit(m, "t_slice", RegSlice(unsigned(8)), platform)
        wiring.connect(m, t_sl.o, tx.i)
        wiring.connect(m, w_sl.o, wc_sl.i)
        wiring.connect(m, wc_sl.o, acc.weights)
        wiring.connect(m, i_sl.o, core_image)
        wiring.connect(m, acc.logits, oc_sl.i)
        wiring.connect(m, oc_sl.o, o_sl.i)
        return _Units(acc, rx, w_sl, wc_sl, i_sl, o_sl, t_sl)

    def _frame_buffer(self, m: Module) -> tuple[memory.WritePort, memory.ReadPort]:
        """The frame buffer: the parser's write port and the dispatcher's read port."""
        # no_rw_check: the dispatcher reads a frame only once the parser has finished writing
        # it (the parser takes no byte while a command runs), so no collision bypass is built
        # after the block RAM and fb_q below can become its output register on the board
        fbuf = memory.Memory(shape=unsigned(8), depth=self.max_payload, init=[],
                             attrs={"no_rw_check": 1})
        m.submodules.fbuf = fbuf
        fb_w, fb_r = fbuf.write_port(), fbuf.read_port()
        return fb_w, fb_r

    # ---------------- frame parser

    def _frame_parser(
        self, m: Module, rx: UartRx, fb_w: memory.WritePort
    ) -> tuple[_Frame, _OneHot]:
        """The frame parser (and the dispatcher's state machine, whose WAIT gates its input)."""
        p_cmd = Signal(8)
        p_len = Signal(16)
        p_cnt = Signal(16)
        p_crc = Signal(16, init=0xFFFF)
        lo_ok = Signal()  # the CRC's low byte matched (tested as it arrives: timing)
        # cycles left before a stalled frame times out, minus two, counted down: its sign bit,
        # registered with "no reload" (`expired`), is the timeout (timing: no wide compare,
        # and no counter bit through the reload logic, in front of the parser's state)
        idle_left = Signal(range(-1, self.timeout))
        expired = Signal(name="expired")
        p_len_m1 = Signal(17)  # p_len - 1, registered (read only after p_len has settled)
        p_end = Signal()  # PAYLOAD: p_cnt == p_len, a flag kept with p_cnt (timing)
        f_valid = Signal()  # one-cycle pulse: a frame ended (f_status says how)
        f_status = Signal(8)
        f_ok = Signal()  # f_status == OK
        # the dispatcher (one-hot, below) waits for a frame: its WAIT flip-flop
        dsp = _OneHot(m, "dispatch", [
            "WAIT", "LOAD_RD", "LOAD_WAIT", "LOAD_ACC", "LOAD_PUSH", "LOAD_CHECK", "LOAD_SETTLE",
            "LOAD_LOADED", "LOAD_VERDICT", "FEED_RD", "FEED_WAIT", "FEED_LATCH", "FEED_PUSH",
            "ANSWER", "REPLY"])  # fmt: skip
        in_wait = dsp.flag["WAIT"]
        byte = rx.o.payload  # a register in UartRx, held until the next byte
        # a byte arrived while the dispatcher waits, registered: the parser takes it a cycle
        # later (the byte holds >= 40 cycles), so its enables start at a flip-flop the placer
        # can put beside the parser rather than at the dispatcher's WAIT (timing)
        got = Signal(name="got")
        m.d.sync += got.eq(rx.o.valid & in_wait)
        # the write's address and data are always the parser's (only its enable is decided
        # in PAYLOAD): the block RAM's address pins come from p_cnt's flip-flops (timing)
        m.d.comb += [fb_w.addr.eq(p_cnt), fb_w.data.eq(byte)]
        m.d.sync += f_valid.eq(0)
        # (registered: p_len is set bytes before the CRC that reads these)
        too_long = Signal()
        m.d.sync += too_long.eq(p_len > self.max_payload)

        tmo_fire = Signal(name="tmo_fire")  # the frame in progress times out (f_* below)
        # the parser, one-hot (timing: its enables start from its state's flip-flop)
        pfsm = _OneHot(m, "parse", ["SYNC", "CMD", "LEN0", "LEN1", "PAYLOAD", "CRC0", "CRC1"])
        p = _Parser(byte, got, pfsm, p_cmd, p_len, p_cnt, p_crc, lo_ok, idle_left, expired,
                    p_len_m1, p_end, f_valid, f_status, f_ok, too_long, tmo_fire)
        crc_init, crc_en, crc_check, f_go_load, f_go_feed, go_load, go_feed = (
            self._frame_check(m, p))
        self._parser_states(m, p, fb_w, crc_init, crc_en, crc_check)
        self._parser_timeout(m, p)
        pfsm.close()
        m.d.sync += p_len_m1.eq(p_len - 1)
        frame = _Frame(p_cmd, p_len, p_len_m1, f_valid, f_status, f_ok, f_go_load, f_go_feed,
                       go_load, go_feed)
        return frame, dsp

    def _frame_check(self, m: Module, p: _Parser) -> tuple[Signal, ...]:
        """The frame's CRC and verdict; returns its CRC controls and the f_go_* / go_* flags."""
        byte, p_crc, lo_ok, too_long = p.byte, p.p_crc, p.lo_ok, p.too_long
        f_valid, f_status, f_ok = p.f_valid, p.f_status, p.f_ok
        # The CRC runs a cycle behind the bytes, from registers (timing): `crc_byte` is the
        # byte taken, `crc_en` (a flip-flop) says it is a CRC byte or that the parser waits
        # for a sync byte, and `crc_init` (a flip-flop) the latter (p_crc restarts). The next
        # byte comes >= 40 cycles later, so a step is done before the next byte is taken.
        crc_byte = Signal(8, reset_less=True)
        crc_init, crc_en = Signal(name="crc_init"), Signal(name="crc_en")
        m.d.sync += [crc_byte.eq(byte), crc_init.eq(0), crc_en.eq(0)]
        with m.If(crc_en):
            m.d.sync += p_crc.eq(Mux(crc_init, 0xFFFF, crc16_update(p_crc, crc_byte)))
        # the CRC's high byte is compared with the received byte in a register of its own, one
        # cycle after the byte (f_valid then follows a cycle later, from `crc_check`)
        # (crc_check and a timeout never coincide: crc_check comes in SYNC). f_go_load and
        # f_go_feed: f_ok and the dispatcher's registered decision (below), with f_valid.
        hi_eq, crc_check = Signal(name="hi_eq"), Signal(name="crc_check")
        f_go_load, f_go_feed = Signal(name="f_go_load"), Signal(name="f_go_feed")
        go_load, go_feed = Signal(name="go_load"), Signal(name="go_feed")
        m.d.sync += [hi_eq.eq(byte == p_crc[8:]), crc_check.eq(0)]
        # (f_ok and f_go_* are pulses, read only with f_valid; f_status holds)
        crc_good = hi_eq & lo_ok & ~too_long
        m.d.sync += [f_ok.eq(crc_check & crc_good), f_go_load.eq(crc_check & crc_good & go_load),
                     f_go_feed.eq(crc_check & crc_good & go_feed)]  # fmt: skip
        with m.If(crc_check | p.tmo_fire):
            m.d.sync += [
                f_valid.eq(1),
                f_status.eq(Mux(crc_check, Mux(hi_eq & lo_ok, Mux(too_long, Status.LENGTH,
                                                                  Status.OK), Status.CRC),
                                Status.TIMEOUT)),
            ]  # fmt: skip
        return crc_init, crc_en, crc_check, f_go_load, f_go_feed, go_load, go_feed

    def _parser_states(
        self, m: Module, p: _Parser, fb_w: memory.WritePort, crc_init: Signal, crc_en: Signal,
        crc_check: Signal,
    ) -> None:
        """The parser's states: sync byte, command, length, payload into fbuf, the CRC's bytes."""
        pfsm, got, byte, p_len, p_cnt, p_end = p.pfsm, p.got, p.byte, p.p_len, p.p_cnt, p.p_end

        def timeout() -> None:  # the Elif after a state's byte test (tmo_fire, below)
            with m.Elif(p.expired):
                pfsm.goto("SYNC")

        def crc_next() -> list:  # this state's byte, when taken, goes into the CRC
            return [crc_en.eq(1)]

        with pfsm.state("SYNC"):
            m.d.sync += [crc_init.eq(1), crc_en.eq(1)]
            with m.If(got & (byte == REQ_SYNC)):
                pfsm.goto("CMD")
        for st, nxt, action in (
            ("CMD", "LEN0", [p.p_cmd.eq(byte)]),
            ("LEN0", "LEN1", [p_len[:8].eq(byte)]),
        ):
            with pfsm.state(st):
                with m.If(got):
                    m.d.sync += [*action, *crc_next()]
                    pfsm.goto(nxt)
                timeout()
        # p_cnt == p_len_m1 registered every cycle, read at the next byte >= 40 cycles later
        # (timing: no 16-bit compare of two registers in front of p_end)
        p_last = Signal(name="p_last")
        m.d.sync += p_last.eq(p_cnt == p.p_len_m1)
        with pfsm.state("LEN1"):
            with m.If(got):
                m.d.sync += [p_len[8:].eq(byte), *crc_next(), p_cnt.eq(0),
                             p_end.eq((byte == 0) & (p_len[:8] == 0))]
                pfsm.goto("PAYLOAD")
            timeout()
        with pfsm.state("PAYLOAD"):
            # (p_end and `expired` never meet: p_end comes the cycle after a byte)
            with m.If(p_end):
                pfsm.goto("CRC0")
            with m.Elif(got):
                # a frame longer than the buffer writes none of it: it is refused whole
                # (LENGTH), and every frame writes its payload from 0; else p_cnt < p_len <=
                # max_payload. (too_long has settled: registered >= 40 cycles before.)
                # Timing: a flip-flop, no 16-bit compare in front of the frame buffer's
                # write enables (8.09 ns routed on the 12x16 of e632ebe).
                m.d.comb += fb_w.en.eq(~p.too_long)
                # (p_len_m1 and p_last have settled: a byte comes >= 40 cycles after the last)
                m.d.sync += [p_cnt.eq(p_cnt + 1), *crc_next(), p_end.eq(p_last)]
            timeout()
        with pfsm.state("CRC0"):
            with m.If(got):
                m.d.sync += p.lo_ok.eq(byte == p.p_crc[:8])
                pfsm.goto("CRC1")
            timeout()
        with pfsm.state("CRC1"):
            with m.If(got):
                m.d.sync += crc_check.eq(1)  # f_valid next cycle (hi_eq then holds)
                pfsm.goto("SYNC")
            timeout()

    def _parser_timeout(self, m: Module, p: _Parser) -> None:
        """The inter-byte timeout: idle_left counts down, `expired` and tmo_fire from its sign."""
        pfsm, got, expired, idle_left = p.pfsm, p.got, p.expired, p.idle_left
        # a frame that stops arriving mid-way is dropped with a TIMEOUT reply
        reload = pfsm.flag["SYNC"] | got
        # the timeout as the states test it (in PAYLOAD after p_end, which never meets
        # `expired`: p_end comes the cycle after a byte), from the flags alone
        m.d.comb += p.tmo_fire.eq(~pfsm.flag["SYNC"] & ~got & expired)
        # the reload a cycle late, from its own flip-flop (timing: the LUT of SYNC and `got`
        # on the counter's set/reset pins was the 12x16's 8.81 ns, session 40), to one less:
        # the count reaches -1 in the same cycle; `expired` ignores the cycle in between
        reload_d = Signal(name="idle_reload")
        m.d.sync += reload_d.eq(reload)
        with m.If(reload_d):
            m.d.sync += idle_left.eq(self.timeout - 3)
        with m.Elif(~idle_left[-1]):
            m.d.sync += idle_left.eq(idle_left - 1)
        m.d.sync += expired.eq(idle_left[-1] & ~reload & ~reload_d)

    # ---------------- reply framer

    def _reply_framer(self, m: Module, u: _Units) -> _Reply:
        """The reply framer: its fields and the status word, then its bytes and its states."""
        acc = u.acc
        # The dispatcher answers through one-hot flags (`ans`, flip-flops, one per kind of
        # reply) set in the cycle it decides; in the next cycle (dispatch state ANSWER) the
        # reply's fields are loaded from them, each an AND-OR of constants and registers, and
        # r_start pulses (timing: no dispatcher decision in front of the reply's fields).
        r_start = Signal()  # pulse: send a reply with r_status, r_cmd, r_len from src_*
        r_status = Signal(8, name="r_status")
        r_cmd = Signal(8, name="r_cmd")
        r_len = Signal(16, name="r_len")
        # the payload source, one-hot flip-flops (none set: a reply without payload)
        src_info, src_status, src_cycles, src_logits = (
            Signal(name=f"src_{n}") for n in ("info", "status", "cycles", "logits"))
        r_idx = Signal(16)
        r_crc = Signal(16)
        r_busy = Signal()

        info = info_payload(self.plan, self.max_payload)
        assert len(info) <= 64  # info_q below: a 6-bit index (one LUT and the slice's muxes)
        status_word = Signal(32)
        status_snap = Signal(32)
        last_err = Signal(8)
        accel_status = acc.status.as_value()
        accel_error = acc.error
        m.d.comb += status_word.eq(
            (acc.weights_loaded << ST_LOADED)
            | (acc.busy << ST_BUSY)
            | (acc.done << ST_DONE)
            | (accel_error << ST_ACCEL_ERROR)
            | (last_err << ST_LAST_ERROR_SHIFT)
            | (accel_status << ST_ACCEL_STATUS_SHIFT)
        )
        r = _Reply(r_start, r_status, r_cmd, r_len, src_info, src_status, src_cycles, src_logits,
                   r_idx, r_crc, r_busy, info, status_word, status_snap, last_err, accel_error)
        b = self._reply_bytes(m, acc, u.o_sl, r)
        self._reply_sender(m, u, r, b)
        return r

    def _reply_bytes(self, m: Module, acc: Accelerator, o_sl: RegSlice, r: _Reply) -> _ReplyBytes:
        """The reply's next byte (payload: two register stages; header: a shift register)."""
        r_idx = r.r_idx
        # the counter select is registered here, so the path into the accelerator's counter
        # mux starts at a flip-flop beside it (timing); `fresh` below waits for it
        perf_sel = Signal(8)
        m.d.sync += perf_sel.eq(r_idx[2:10])
        m.d.comb += acc.perf_sel.eq(perf_sel)
        # The payload byte, in two register stages (timing: no wide mux in one cycle): each
        # source's byte is picked by r_idx into a register of its own, then pay_r is their
        # AND-OR with the one-hot source flags.
        info_q = Signal(8, name="info_q")
        stat_q = Signal(8, name="stat_q")
        perf_q = Signal(8, name="perf_q")
        logit_q = Signal(8, name="logit_q")
        logit_v = Signal(name="logit_v")
        # (two stages: a 16-entry table per quarter on r_idx[:4], one LUT a bit, then the
        # quarter by r_idx[4:6], registered alongside)
        info_x = [Signal(8, name=f"info_x{j}") for j in range(4)]
        info_hi = Signal(2, name="info_hi")
        padded = r.info + bytes(64 - len(r.info))
        for j in range(4):
            bits = [sum(((padded[16 * j + i] >> k) & 1) << i for i in range(16)) for k in range(8)]
            m.d.sync += info_x[j].eq(Cat(Const(t, 16).bit_select(r_idx[:4], 1) for t in bits))
        m.d.sync += [info_hi.eq(r_idx[4:6]), info_q.eq(Array(info_x)[info_hi])]
        m.d.sync += [stat_q.eq(r.status_snap.word_select(r_idx[:2], 8)),
                     perf_q.eq(acc.perf_data.word_select(r_idx[:2], 8)),
                     logit_q.eq(o_sl.o.payload.data), logit_v.eq(o_sl.o.valid)]  # fmt: skip
        pay_r = Signal(8, name="pay_r")
        pay_valid_r, fresh = Signal(name="pay_valid_r"), Signal(name="fresh")
        m.d.sync += [
            pay_r.eq(Mux(r.src_info, info_q, 0) | Mux(r.src_status, stat_q, 0)
                     | Mux(r.src_cycles, perf_q, 0) | Mux(r.src_logits, logit_q, 0)),
            pay_valid_r.eq(~r.src_logits | logit_v),
        ]  # fmt: skip
        # The header is a shift register, loaded with r_start and moved a byte per byte sent:
        # the byte to send is its low byte (no mux on r_idx).
        hdr_sr = Signal(40, name="hdr_sr")
        hdr_r = hdr_sr[:8]
        # The payload byte is offered only once `fresh`, i.e. 3 + PERF_READ_LATENCY cycles
        # after r_idx moved (the counter select here, the accelerator's perf_data stages, the
        # per-source byte and pay_r are registers; for logits: the slice pops a cycle after
        # the send, then logit_q, then pay_r): the index -> counter mux -> CRC path is cut in
        # six. A UART byte takes hundreds of cycles; a few more are free.
        # a shift register of ones since r_idx moved: fresh follows its last bit
        settling = Signal(2 + PERF_READ_LATENCY)
        m.d.sync += [settling.eq(Cat(1, settling[:-1])), fresh.eq(settling[-1])]
        # r_idx's tests, registered alongside (valid whenever `fresh` is): the 16-bit compares
        # are not in front of the transmitter and the CRC (r_idx == r_len in two stages)
        idx_first, hdr_end = Signal(name="idx_first"), Signal(name="hdr_end")
        pay_end = Signal(name="pay_end")
        pay_eq = Signal(2, name="pay_eq")
        m.d.sync += [idx_first.eq(r_idx == 0), hdr_end.eq(r_idx == 4),
                     pay_eq.eq(Cat(r_idx[:8] == r.r_len[:8], r_idx[8:] == r.r_len[8:])),
                     pay_end.eq(pay_eq.all())]  # fmt: skip
        return _ReplyBytes(pay_r, pay_valid_r, fresh, hdr_sr, hdr_r, settling, idx_first,
                           hdr_end, pay_end)

    def _reply_sender(self, m: Module, u: _Units, r: _Reply, b: _ReplyBytes) -> None:
        """The framer's states: header, payload and CRC, a byte at a time into t_slice."""
        t_sl, r_idx, r_crc, r_start = u.t_sl, r.r_idx, r.r_crc, r.r_start
        fresh, settling, hdr_sr, hdr_r = b.fresh, b.settling, b.hdr_sr, b.hdr_r
        pay_r, hdr_end, pay_end = b.pay_r, b.hdr_end, b.pay_end
        # The reply's CRC runs a cycle behind the bytes sent, from registers (as the parser's):
        # r_crc_byte, r_crc_en (a step, or the framer was idle) and r_crc_init (it was idle).
        # The next byte is offered >= 5 cycles later, the CRC itself only after `fresh`.
        r_crc_byte = Signal(8, name="r_crc_byte", reset_less=True)
        r_crc_en, r_crc_init = Signal(name="r_crc_en"), Signal(name="r_crc_init")
        m.d.sync += [r_crc_en.eq(0), r_crc_init.eq(0)]
        with m.If(r_crc_en):
            m.d.sync += r_crc.eq(Mux(r_crc_init, 0xFFFF, crc16_update(r_crc, r_crc_byte)))
        # the logits slice pops two cycles after its byte was taken, from a flip-flop
        pop = Signal(name="pop")
        sent_hdr, sent_pay = Signal(name="sent_hdr"), Signal(name="sent_pay")
        m.d.sync += [pop.eq(0), sent_hdr.eq(0), sent_pay.eq(0)]
        m.d.comb += u.o_sl.o.ready.eq(pop)
        rfsm = _OneHot(m, "reply", ["IDLE", "HDR", "PAY", "CRC0", "CRC1"])
        with rfsm.state("IDLE"):
            m.d.sync += [r_crc_en.eq(1), r_crc_init.eq(1)]
            with m.If(r_start):
                m.d.sync += [r_idx.eq(0), fresh.eq(0), settling.eq(0),
                             hdr_sr.eq(Cat(Const(REP_SYNC, 8), r.r_status, r.r_cmd, r.r_len))]
                rfsm.goto("HDR")
        # A byte taken by the slice (`sent_hdr` / `sent_pay`, flip-flops) moves the framer on
        # a cycle later (timing: the wide enables of r_idx, hdr_sr and r_crc start from
        # them, not from the handshake); `fresh` drops at once, so nothing is offered
        # meanwhile. `can_send`: the payload byte is there and is not past the end,
        # registered (valid whenever `fresh` is).
        can_send = Signal(name="can_send")
        m.d.sync += can_send.eq(b.pay_valid_r & ~pay_end)
        with rfsm.state("HDR"):
            m.d.comb += [t_sl.i.valid.eq(fresh), t_sl.i.payload.eq(hdr_r)]
            with m.If(t_sl.i.ready & fresh):
                m.d.sync += [fresh.eq(0), sent_hdr.eq(1)]
            with m.If(sent_hdr & hdr_end):
                rfsm.goto("PAY")
        with rfsm.state("PAY"):
            with m.If(fresh & pay_end):
                rfsm.goto("CRC0")
            send = can_send & fresh
            m.d.comb += [t_sl.i.valid.eq(send), t_sl.i.payload.eq(pay_r)]
            with m.If(t_sl.i.ready & send):
                m.d.sync += [fresh.eq(0), sent_pay.eq(1)]
        with m.If(sent_hdr):  # (only in HDR)
            m.d.sync += [r_idx.eq(Mux(hdr_end, 0, r_idx + 1)), fresh.eq(0), settling.eq(0),
                         hdr_sr.eq(hdr_sr[8:]), r_crc_en.eq(~b.idx_first),
                         r_crc_byte.eq(hdr_r)]  # fmt: skip
        with m.If(sent_pay):  # (only in PAY)
            m.d.sync += [r_idx.eq(r_idx + 1), r_crc_en.eq(1), r_crc_byte.eq(pay_r),
                         pop.eq(r.src_logits), fresh.eq(0), settling.eq(0)]  # fmt: skip
        with rfsm.state("CRC0"):
            m.d.comb += [t_sl.i.valid.eq(1), t_sl.i.payload.eq(r_crc[:8])]
            with m.If(t_sl.i.ready):
                rfsm.goto("CRC1")
        with rfsm.state("CRC1"):
            m.d.comb += [t_sl.i.valid.eq(1), t_sl.i.payload.eq(r_crc[8:])]
            with m.If(t_sl.i.ready):
                rfsm.goto("IDLE")
        m.d.comb += r.r_busy.eq(~rfsm.flag["IDLE"] | r_start)
        rfsm.close()

    # ---------------- dispatcher

    def _dispatcher(
        self, m: Module, u: _Units, fb_r: memory.ReadPort, f: _Frame, r: _Reply, dsp: _OneHot
    ) -> None:
        """The command dispatcher: its registers and frame checks, then its states in groups."""
        acc = u.acc
        s = self._dispatch_regs(m, u, fb_r, f.p_len_m1)
        m.d.sync += [r.r_start.eq(0), acc.weights_restart.eq(0), acc.start.eq(0)]
        # the loader's fault flags: a beat is refused (LOAD_ACC), the load fails (load_bad)
        st = acc.status
        weight_fault = st.weights_short | st.weights_long | st.weights_header
        d = self._frame_decode(m, acc, f, weight_fault)
        answer = _Answer(m, dsp, self._reply_kinds(f.f_status, r, d))
        self._frame_decisions(m, acc, f, r, s, d, answer)
        with dsp.state("WAIT"):
            with m.If(f.f_go_load):
                dsp.goto("LOAD_RD")
            with m.Elif(f.f_go_feed):
                dsp.goto("FEED_RD")
            with m.Elif(f.f_valid):
                dsp.goto("ANSWER")
        self._load_states(m, dsp, u, s, d, answer, weight_fault)
        self._feed_states(m, dsp, u.i_sl, s, answer)
        self._answer_states(m, dsp, f, r, answer)
        dsp.close()

    def _dispatch_regs(
        self, m: Module, u: _Units, fb_r: memory.ReadPort, p_len_m1: Signal
    ) -> _Streams:
        """The dispatcher's read pointer, the frame buffer's output and the streams' drivers."""
        rd_ptr = Signal(16)
        # beat and img_byte are reset-less (off the reset net): the accelerator reads them only
        # with w_valid / i_valid, set after all of the beat's bytes (nbyte resets to 0) or the
        # byte were written.
        beat = Signal(32, reset_less=True)
        nbyte = Signal(2)
        img_byte = Signal(8, reset_less=True)  # the frame buffer's byte, before the stream
        # (LOAD_PUSH's, registered)
        w_valid, w_refuse, w_last = (Signal(name=n) for n in ("w_valid", "w_refuse", "w_last"))
        m.d.comb += fb_r.addr.eq(rd_ptr)
        # the frame buffer's output register (the board moves it into the block RAM): the
        # bytes are taken from fb_q, two cycles after the address
        fb_q = Signal(8, reset_less=True)
        m.d.sync += fb_q.eq(fb_r.data)
        # rd_ptr is at the frame's last byte, compared in two register stages: rd_ptr moves
        # 3 cycles before LOAD_ACC / FEED_LATCH read rd_end (timing: no 16-bit compare in front
        # of their flags)
        rd_eq = Signal(3, name="rd_eq")
        rd_end = Signal(name="rd_end")
        m.d.sync += [rd_eq.eq(Cat(rd_ptr[:8] == p_len_m1[:8], rd_ptr[8:] == p_len_m1[8:16],
                                  ~p_len_m1[16])),
                     rd_end.eq(rd_eq.all())]  # fmt: skip
        # Both streams are driven straight from registers, outside the FSM (timing: no state
        # decode or length compare in front of the accelerator's loader and image writer).
        # w_valid / i_valid are set only on the way into LOAD_PUSH / FEED_PUSH and cleared
        # when the beat is taken, so they are high only in those states.
        w_end = Signal()  # the beat in `beat` ends the load (its frame is LOAD_LAST)
        i_valid, i_last = Signal(name="i_valid"), Signal(name="i_last")
        m.d.comb += [u.w_sl.i.valid.eq(w_valid), *_drive(u.w_sl.i.payload, beat, w_end),
                     u.i_sl.i.valid.eq(i_valid), *_drive(u.i_sl.i.payload, img_byte, i_last)]
        return _Streams(rd_ptr, beat, nbyte, img_byte, w_valid, w_refuse, w_last, fb_q, rd_end,
                        w_end, i_valid, i_last)

    def _frame_decode(
        self, m: Module, acc: Accelerator, f: _Frame, weight_fault: Value
    ) -> _Decode:
        """The frame's command and length tests, and the dispatch decisions made of them."""
        p_cmd, p_len = f.p_cmd, f.p_len
        # The frame's command and length tests, registered while the frame's last bytes
        # arrive (p_cmd and p_len are set hundreds of cycles before f_valid), and the
        # decisions made of them registered once more (the accelerator's weights_loaded only
        # changes in a model load, long before the next frame ends): the dispatch starts from
        # flip-flops.
        cmd = {c: Signal(name=f"cmd_{c.name.lower()}") for c in Cmd}
        load_len_bad, infer_len_bad = Signal(name="load_len_bad"), Signal(name="infer_len_bad")
        m.d.sync += [cmd[c].eq(p_cmd == c) for c in Cmd]
        # (p_len != prog_in_len in two stages: its nibbles' tests, then their OR)
        in_len = acc.prog_in_len
        in_len_ne = Signal(5, name="in_len_ne")
        m.d.sync += [in_len_ne.eq(Cat(*(p_len[4 * k:4 * k + 4] != in_len[4 * k:4 * k + 4]
                                        for k in range(4)), in_len[16:] != 0)),
                     load_len_bad.eq((p_len == 0) | (p_len[:2] != 0)),
                     infer_len_bad.eq(in_len_ne.any())]  # fmt: skip
        is_load = cmd[Cmd.LOAD_DATA] | cmd[Cmd.LOAD_LAST]
        bad_len, unloaded = Signal(name="bad_len"), Signal(name="unloaded")
        unknown = Signal(name="unknown")
        m.d.sync += [
            f.go_load.eq(is_load & ~load_len_bad),
            f.go_feed.eq(cmd[Cmd.INFER] & acc.weights_loaded & ~infer_len_bad),
            bad_len.eq((is_load & load_len_bad)
                       | (cmd[Cmd.INFER] & acc.weights_loaded & infer_len_bad)),
            unloaded.eq(cmd[Cmd.INFER] & ~acc.weights_loaded),
            unknown.eq(~Cat(*cmd.values()).any()),
        ]  # fmt: skip
        # the reply's length for CYCLES and INFER, registered (they change only with a load)
        cyc_len, out_len = Signal(16, name="cyc_len"), Signal(16, name="out_len")
        m.d.sync += [cyc_len.eq(4 * (3 + acc.prog_layers)), out_len.eq(acc.prog_out_len)]
        # the loader's verdict on a frame's final beat, registered (read in LOAD_VERDICT,
        # three cycles after LOAD_CHECK saw the weight slices empty: the flags were final
        # two cycles after it, `loaded` too)
        load_bad = Signal(name="load_bad")
        m.d.sync += load_bad.eq(weight_fault | (cmd[Cmd.LOAD_LAST] & ~acc.weights_loaded))
        return _Decode(cmd, bad_len, unloaded, unknown, cyc_len, out_len, load_bad)

    def _reply_kinds(self, f_status: Signal, r: _Reply, d: _Decode) -> dict[str, tuple]:
        """The kinds of reply: status, payload length, payload source flag."""
        return {
            "frame": (f_status, 0, None),  # the frame was bad (its status is never OK)
            "info": (Status.OK, len(r.info), r.src_info),
            "status": (Status.OK, 4, r.src_status),
            "cycles": (Status.OK, d.cyc_len, r.src_cycles),
            "ok": (Status.OK, 0, None),
            "length": (Status.LENGTH, 0, None),
            "not_loaded": (Status.NOT_LOADED, 0, None),
            "command": (Status.COMMAND, 0, None),
            "load": (Status.LOAD, 0, None),
            "logits": (Status.OK, d.out_len, r.src_logits),
        }

    def _frame_decisions(
        self, m: Module, acc: Accelerator, f: _Frame, r: _Reply, s: _Streams, d: _Decode,
        answer: _Answer,
    ) -> None:
        """WAIT's frame decisions, from f_valid: replies, the status snapshot, the starts."""
        cmd, f_valid, f_ok = d.cmd, f.f_valid, f.f_ok
        # A frame's decisions, outside the FSM: f_valid pulses only while the dispatcher
        # waits (the parser takes bytes only then), so no state decode is needed.
        fv_ok = f_valid & f_ok
        with m.If(f_valid):
            m.d.sync += [s.rd_ptr.eq(0), s.nbyte.eq(0)]
        answer("frame", f_valid & ~f_ok)
        answer("info", fv_ok & cmd[Cmd.INFO])
        answer("status", fv_ok & cmd[Cmd.STATUS])
        answer("cycles", fv_ok & cmd[Cmd.CYCLES])
        answer("ok", fv_ok & cmd[Cmd.LOAD_BEGIN])
        answer("length", fv_ok & d.bad_len)
        answer("not_loaded", fv_ok & d.unloaded)
        answer("command", fv_ok & d.unknown)
        with m.If(fv_ok & cmd[Cmd.STATUS]):
            # the reply carries this snapshot; reading it clears the last error
            m.d.sync += [r.status_snap.eq(r.status_word), r.last_err.eq(0)]
        with m.If(fv_ok & cmd[Cmd.LOAD_BEGIN]):
            m.d.sync += acc.weights_restart.eq(1)
        with m.If(f.f_go_feed):
            m.d.sync += acc.start.eq(1)

    def _load_states(
        self, m: Module, dsp: _OneHot, u: _Units, s: _Streams, d: _Decode, answer: _Answer,
        weight_fault: Value,
    ) -> None:
        """LOAD_*: the frame's bytes, four to a beat, into the weights stream; the verdict."""
        acc, beat, nbyte, rd_ptr, rd_end = u.acc, s.beat, s.nbyte, s.rd_ptr, s.rd_end
        w_valid, w_refuse, w_last = s.w_valid, s.w_refuse, s.w_last
        # the refusal registered in every cycle, read a cycle late in LOAD_ACC: its inputs
        # change at least 8 cycles before a beat is pushed (below) or, by LOAD_BEGIN's
        # restart, 12 before its first (timing: the Accelerator's flags across the die, then
        # the state's mux into w_valid / w_refuse, 8.46 / 8.28 ns on the 12x16 of 087232c)
        refuse = Signal(name="w_refuse_in")
        m.d.sync += refuse.eq(acc.weights_loaded | weight_fault)  # refused until LOAD_BEGIN
        with dsp.state("LOAD_RD"):  # fb_r.addr = rd_ptr; data next cycle, in fb_q after
            dsp.goto("LOAD_WAIT")
        with dsp.state("LOAD_WAIT"):
            dsp.goto("LOAD_ACC")
        with dsp.state("LOAD_ACC"):
            m.d.sync += [beat.word_select(nbyte, 8).eq(s.fb_q), nbyte.eq(nbyte + 1),
                         rd_ptr.eq(rd_ptr + 1)]  # fmt: skip
            with m.If(nbyte != 3):
                dsp.goto("LOAD_RD")
            with m.Else():
                # LOAD_PUSH's stream signals come from registers (timing): the loader's
                # flags only change when it takes a beat, at least 8 cycles before here
                # (the slices hand a beat over two to four cycles after it was pushed)
                m.d.sync += [w_valid.eq(~refuse), w_refuse.eq(refuse), w_last.eq(rd_end),
                             s.w_end.eq(rd_end & d.cmd[Cmd.LOAD_LAST])]  # fmt: skip
                dsp.goto("LOAD_PUSH")
        with dsp.state("LOAD_PUSH"):
            with m.If(w_refuse):
                m.d.sync += w_refuse.eq(0)
                answer("load")
            with m.Elif(u.w_sl.i.ready):
                m.d.sync += w_valid.eq(0)
                with m.If(w_last):
                    dsp.goto("LOAD_CHECK")
                with m.Else():
                    dsp.goto("LOAD_RD")
        with dsp.state("LOAD_CHECK"):  # the loader's flags for the frame's final beat
            # once the slices have handed it over: the loader acts on it in the cycle the
            # core slice's output register empties (its input stage), so its fault flags are
            # set in that cycle and `loaded` two edges after it (LOAD_SETTLE, LOAD_LOADED);
            # load_bad registers them in LOAD_LOADED, LOAD_VERDICT reads it. Beats move
            # between the slices with no empty cycle, so both empty means the loader took
            # the last one.
            with m.If(~u.w_sl.o.valid & ~u.wc_sl.o.valid):
                dsp.goto("LOAD_SETTLE")
        with dsp.state("LOAD_SETTLE"):  # (ACT_LATENCY == 1 cycle: asserted at the top)
            dsp.goto("LOAD_LOADED")
        with dsp.state("LOAD_LOADED"):  # (LOADED_LATENCY == 2 cycles: likewise)
            dsp.goto("LOAD_VERDICT")
        with dsp.state("LOAD_VERDICT"):
            with m.If(d.load_bad):
                answer("load")
            with m.Else():
                answer("ok")

    def _feed_states(
        self, m: Module, dsp: _OneHot, i_sl: RegSlice, s: _Streams, answer: _Answer
    ) -> None:
        """FEED_*: the frame's bytes, one at a time, into the image stream; then the logits."""
        rd_ptr, i_valid, i_last = s.rd_ptr, s.i_valid, s.i_last
        with dsp.state("FEED_RD"):  # fb_r.addr = rd_ptr; data next cycle, in fb_q after
            dsp.goto("FEED_WAIT")
        with dsp.state("FEED_WAIT"):
            dsp.goto("FEED_LATCH")
        with dsp.state("FEED_LATCH"):  # a register between the two block RAMs (timing)
            # rd_ptr steps here, once the byte is in img_byte, not when the slice takes it:
            # its enable is then two dispatcher flip-flops (timing: the image slice's ready
            # sits by the accelerator, 3.88 + 3.53 ns of routing in front of rd_ptr, 8.54 ns
            # on the 12x16 of d4883f5 seed 2). The next byte's FEED_LATCH reads rd_end >= 4
            # cycles later (PUSH, RD, WAIT): rd_end is 2 register stages behind rd_ptr.
            m.d.sync += [s.img_byte.eq(s.fb_q), i_valid.eq(1), i_last.eq(s.rd_end),
                         rd_ptr.eq(rd_ptr + 1)]  # fmt: skip
            dsp.goto("FEED_PUSH")
        with dsp.state("FEED_PUSH"):
            with m.If(i_sl.i.ready):
                m.d.sync += i_valid.eq(0)
                with m.If(i_last):
                    answer("logits")
                with m.Else():
                    dsp.goto("FEED_RD")

    def _answer_states(
        self, m: Module, dsp: _OneHot, f: _Frame, r: _Reply, answer: _Answer
    ) -> None:
        """ANSWER loads the reply's fields from the one-hot flags; REPLY waits for the framer."""
        kinds, ans = answer.kinds, answer.ans
        err_w = Signal(name="err_w")  # an error reply's status is in r_status: last_err takes it
        m.d.sync += err_w.eq(0)
        with dsp.state("ANSWER"):  # the reply's fields from the one-hot flags (AND-OR)
            status_next = Const(0, 8)
            len_next = Const(0, 16)
            for k, (status, length, _) in kinds.items():
                if not isinstance(status, int) or status:
                    status_next = status_next | Mux(ans[k], status, 0)
                if not isinstance(length, int) or length:
                    len_next = len_next | Mux(ans[k], length, 0)
            m.d.sync += [r.r_start.eq(1), r.r_status.eq(status_next), r.r_cmd.eq(f.p_cmd),
                         r.r_len.eq(len_next)]  # fmt: skip
            m.d.sync += [flag.eq(ans[k]) for k, (_, _, flag) in kinds.items()
                         if flag is not None]  # fmt: skip
            m.d.sync += err_w.eq(answer.ans_err)
            dsp.goto("REPLY")
        # last_err takes an error reply's status from r_status, a cycle after ANSWER (timing:
        # the status's AND-OR in front of its enable was the 12x16's 8.83 ns, session 40);
        # the next frame's decisions (a STATUS clears it) come in WAIT, after REPLY
        with m.If(err_w):
            m.d.sync += r.last_err.eq(r.r_status)
        with dsp.state("REPLY"):
            with m.If(~r.r_busy):
                dsp.goto("WAIT")
