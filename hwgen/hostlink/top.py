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
"""

from __future__ import annotations

import struct

from amaranth import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from hwgen.rtl.regslice import RegSlice
from hwgen.rtl.top import (
    IMAGE_LAYOUT,
    LOGIT_LAYOUT,
    PERF_READ_LATENCY,
    WEIGHT_LAYOUT,
    Accelerator,
)
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

__all__ = ["HostTop", "info_payload"]


def info_payload(plan: MemoryPlan, max_payload: int) -> bytes:
    a = plan.array
    return struct.pack(
        INFO_FORMAT, INFO_MAGIC, INFO_VERSION, a.rows, a.cols, plan.acc_width, max_payload,
        plan.max_layers,
        plan.buf_depth[0], plan.buf_depth[1], plan.convw_depth, plan.directw_depth,
        plan.param_depth, plan.pool_max_k, plan.pool_max_out_w,
    )  # fmt: skip


def _drive(payload, value, last) -> list:
    """Drive a {data, last} stream payload (INTERFACES 1)."""
    return [payload.data.eq(value), payload.last.eq(last)]


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

    def elaborate(self, platform) -> Module:  # noqa: C901 - one dispatcher FSM
        m = Module()
        m.submodules.accel = acc = Accelerator(self.plan)
        m.submodules.rx = rx = UartRx(self.cpb)
        m.submodules.tx = tx = UartTx(self.cpb)
        m.d.comb += [rx.rx.eq(self.uart_rx), self.uart_tx.eq(tx.tx)]
        m.d.comb += [acc.dbg_stop.eq(0), acc.dbg_buf.eq(0), acc.dbg_addr.eq(0)]
        # The Accelerator's three streams pass register slices (timing: the core's `ready`
        # and `valid` reach the dispatcher and the reply framer from flip-flops, never
        # through the core's logic; hwgen/rtl/regslice.py). A slice holds up to two beats.
        m.submodules.w_slice = w_sl = RegSlice(WEIGHT_LAYOUT)
        m.submodules.i_slice = i_sl = RegSlice(IMAGE_LAYOUT)
        m.submodules.o_slice = o_sl = RegSlice(LOGIT_LAYOUT)
        # and the reply framer's bytes pass one into the UART transmitter (its `ready` is a
        # bit-counter compare; the framer's state and CRC then start from the slice's flag)
        m.submodules.t_slice = t_sl = RegSlice(unsigned(8))
        wiring.connect(m, t_sl.o, tx.i)
        wiring.connect(m, w_sl.o, acc.weights)
        wiring.connect(m, i_sl.o, acc.image)
        wiring.connect(m, acc.logits, o_sl.i)
        # no_rw_check: the dispatcher reads a frame only once the parser has finished writing
        # it (the parser takes no byte while a command runs), so no collision bypass is built
        # after the block RAM and fb_q below can become its output register on the board
        fbuf = memory.Memory(shape=unsigned(8), depth=self.max_payload, init=[],
                             attrs={"no_rw_check": 1})
        m.submodules.fbuf = fbuf
        fb_w, fb_r = fbuf.write_port(), fbuf.read_port()

        # ---------------- frame parser
        p_cmd = Signal(8)
        p_len = Signal(16)
        p_cnt = Signal(16)
        p_crc = Signal(16, init=0xFFFF)
        lo_ok = Signal()  # the CRC's low byte matched (tested as it arrives: timing)
        # cycles left before a stalled frame times out, minus one, counted down: the timeout
        # is its sign bit (timing: no wide compare in front of the parser's state)
        idle_left = Signal(range(-1, self.timeout))
        p_len_m1 = Signal(17)  # p_len - 1, registered (read only after p_len has settled)
        p_end = Signal()  # PAYLOAD: p_cnt == p_len, a flag kept with p_cnt (timing)
        f_valid = Signal()  # one-cycle pulse: a frame ended (f_status says how)
        f_status = Signal(8)
        f_ok = Signal()  # f_status == OK
        enable = Signal()  # the dispatcher waits for a frame
        byte = rx.o.payload
        got = rx.o.valid & enable
        # the write's address and data are always the parser's (only its enable is decided
        # in PAYLOAD): the block RAM's address pins come from p_cnt's flip-flops (timing)
        m.d.comb += [fb_w.addr.eq(p_cnt), fb_w.data.eq(byte)]
        m.d.sync += f_valid.eq(0)
        # (registered: p_len is set bytes before the CRC that reads these)
        too_long = Signal()
        m.d.sync += too_long.eq(p_len > self.max_payload)

        def timeout() -> None:  # last in every state after SYNC: overrides its m.next
            with m.If(~got & idle_left[-1]):
                m.d.sync += [f_valid.eq(1), f_status.eq(Status.TIMEOUT), f_ok.eq(0)]
                m.next = "SYNC"
        with m.FSM(name="parse") as pfsm:
            with m.State("SYNC"):
                with m.If(got & (byte == REQ_SYNC)):
                    m.d.sync += p_crc.eq(0xFFFF)
                    m.next = "CMD"
            for st, nxt, action in (
                ("CMD", "LEN0", [p_cmd.eq(byte)]),
                ("LEN0", "LEN1", [p_len[:8].eq(byte)]),
            ):
                with m.State(st):
                    with m.If(got):
                        m.d.sync += [*action, p_crc.eq(crc16_update(p_crc, byte))]
                        m.next = nxt
                    timeout()
            with m.State("LEN1"):
                with m.If(got):
                    m.d.sync += [p_len[8:].eq(byte), p_crc.eq(crc16_update(p_crc, byte)),
                                 p_cnt.eq(0), p_end.eq((byte == 0) & (p_len[:8] == 0))]
                    m.next = "PAYLOAD"
                timeout()
            with m.State("PAYLOAD"):
                with m.If(p_end):
                    m.next = "CRC0"
                with m.Elif(got):
                    m.d.comb += fb_w.en.eq(p_cnt < self.max_payload)
                    # (p_len_m1 has settled: a byte comes >= 40 cycles after LEN1's)
                    m.d.sync += [p_cnt.eq(p_cnt + 1), p_crc.eq(crc16_update(p_crc, byte)),
                                 p_end.eq(p_cnt == p_len_m1)]  # fmt: skip
                timeout()
            with m.State("CRC0"):
                with m.If(got):
                    m.d.sync += lo_ok.eq(byte == p_crc[:8])
                    m.next = "CRC1"
                timeout()
            with m.State("CRC1"):
                with m.If(got):
                    crc_ok = (byte == p_crc[8:]) & lo_ok
                    m.d.sync += [
                        f_valid.eq(1),
                        f_status.eq(
                            Mux(crc_ok, Mux(too_long, Status.LENGTH, Status.OK), Status.CRC)
                        ),
                        f_ok.eq(crc_ok & ~too_long),
                    ]
                    m.next = "SYNC"
                timeout()
        # a frame that stops arriving mid-way is dropped with a TIMEOUT reply
        with m.If(pfsm.ongoing("SYNC") | got):
            m.d.sync += idle_left.eq(self.timeout - 1)
        with m.Elif(~idle_left[-1]):
            m.d.sync += idle_left.eq(idle_left - 1)
        m.d.sync += p_len_m1.eq(p_len - 1)

        # ---------------- reply framer
        r_start = Signal()  # pulse: send a reply with r_status, r_cmd, r_len from r_src
        r_status, r_cmd, r_len = Signal(8), Signal(8), Signal(16)
        r_src = Signal(2)  # payload source
        SRC_INFO, SRC_STATUS, SRC_CYCLES, SRC_LOGITS = range(4)
        r_idx = Signal(16)
        r_crc = Signal(16)
        r_busy = Signal()

        info = info_payload(self.plan, self.max_payload)
        info_rom = Array(Const(b, 8) for b in info)
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
        # the counter select is registered here, so the path into the accelerator's counter
        # mux starts at a flip-flop beside it (timing); `fresh` below waits for it
        perf_sel = Signal(8)
        m.d.sync += perf_sel.eq(r_idx[2:10])
        m.d.comb += acc.perf_sel.eq(perf_sel)
        st = acc.status
        weight_fault = st.weights_short | st.weights_long | st.weights_header
        pay_byte = Signal(8)
        pay_valid = Signal()
        with m.Switch(r_src):
            with m.Case(SRC_INFO):
                m.d.comb += [pay_byte.eq(info_rom[r_idx[:8]]), pay_valid.eq(1)]
            with m.Case(SRC_STATUS):
                m.d.comb += [pay_byte.eq(status_snap.word_select(r_idx[:2], 8)), pay_valid.eq(1)]
            with m.Case(SRC_CYCLES):
                m.d.comb += [pay_byte.eq(acc.perf_data.word_select(r_idx[:2], 8)),
                             pay_valid.eq(1)]  # fmt: skip
            with m.Case(SRC_LOGITS):
                m.d.comb += [pay_byte.eq(o_sl.o.payload.data), pay_valid.eq(o_sl.o.valid)]

        hdr_byte = Signal(8)
        m.d.comb += hdr_byte.eq(Array([Const(REP_SYNC, 8), r_status, r_cmd, r_len[:8],
                                       r_len[8:]])[r_idx[:3]])  # fmt: skip
        # The byte to send is registered (selected from r_idx the cycle before) and offered
        # only once `fresh`, i.e. 2 + PERF_READ_LATENCY cycles after r_idx moved (the counter
        # select here and the accelerator's perf_data stages are registered too): the index ->
        # counter mux -> CRC path is cut in five. A UART byte takes hundreds of cycles; a few
        # more are free.
        hdr_r, pay_r = Signal(8), Signal(8)
        pay_valid_r, fresh = Signal(), Signal()
        # a shift register of ones since r_idx moved: fresh follows its last bit
        settling = Signal(1 + PERF_READ_LATENCY)
        m.d.sync += [hdr_r.eq(hdr_byte), pay_r.eq(pay_byte), pay_valid_r.eq(pay_valid),
                     settling.eq(Cat(1, settling[:-1])), fresh.eq(settling[-1])]  # fmt: skip
        # r_idx's tests, registered alongside (valid whenever `fresh` is): the 16-bit compares
        # are not in front of the transmitter and the CRC
        idx_first, hdr_end, pay_end = Signal(), Signal(), Signal()
        m.d.sync += [idx_first.eq(r_idx == 0), hdr_end.eq(r_idx == 4), pay_end.eq(r_idx == r_len)]
        with m.FSM(name="reply") as rfsm:
            with m.State("IDLE"):
                with m.If(r_start):
                    m.d.sync += [r_idx.eq(0), r_crc.eq(0xFFFF), fresh.eq(0), settling.eq(0)]
                    m.next = "HDR"
            with m.State("HDR"):
                m.d.comb += [t_sl.i.valid.eq(fresh), t_sl.i.payload.eq(hdr_r)]
                with m.If(t_sl.i.ready & fresh):
                    m.d.sync += [r_idx.eq(r_idx + 1), fresh.eq(0), settling.eq(0)]
                    with m.If(~idx_first):
                        m.d.sync += r_crc.eq(crc16_update(r_crc, hdr_r))
                    with m.If(hdr_end):
                        m.d.sync += r_idx.eq(0)
                        m.next = "PAY"
            with m.State("PAY"):
                with m.If(fresh & pay_end):
                    m.next = "CRC0"
                with m.Else():
                    send = pay_valid_r & fresh & ~pay_end
                    m.d.comb += [t_sl.i.valid.eq(send), t_sl.i.payload.eq(pay_r)]
                    with m.If(t_sl.i.ready & send):
                        m.d.comb += o_sl.o.ready.eq(r_src == SRC_LOGITS)
                        m.d.sync += [r_idx.eq(r_idx + 1), r_crc.eq(crc16_update(r_crc, pay_r)),
                                     fresh.eq(0), settling.eq(0)]  # fmt: skip
            with m.State("CRC0"):
                m.d.comb += [t_sl.i.valid.eq(1), t_sl.i.payload.eq(r_crc[:8])]
                with m.If(t_sl.i.ready):
                    m.next = "CRC1"
            with m.State("CRC1"):
                m.d.comb += [t_sl.i.valid.eq(1), t_sl.i.payload.eq(r_crc[8:])]
                with m.If(t_sl.i.ready):
                    m.next = "IDLE"
        m.d.comb += r_busy.eq(~rfsm.ongoing("IDLE") | r_start)

        # ---------------- dispatcher
        rd_ptr = Signal(16)
        # beat and img_byte are reset-less (off the reset net): the accelerator reads them only
        # with w_valid / i_valid, set after all of the beat's bytes (nbyte resets to 0) or the
        # byte were written.
        beat = Signal(32, reset_less=True)
        nbyte = Signal(2)
        img_byte = Signal(8, reset_less=True)  # the frame buffer's byte, before the stream
        w_valid, w_refuse, w_last = Signal(), Signal(), Signal()  # LOAD_PUSH, registered
        m.d.comb += fb_r.addr.eq(rd_ptr)
        # the frame buffer's output register (the board moves it into the block RAM): the
        # bytes are taken from fb_q, two cycles after the address
        fb_q = Signal(8, reset_less=True)
        m.d.sync += fb_q.eq(fb_r.data)
        # Both streams are driven straight from registers, outside the FSM (timing: no state
        # decode or length compare in front of the accelerator's loader and image writer).
        # w_valid / i_valid are set only on the way into LOAD_PUSH / FEED_PUSH and cleared
        # when the beat is taken, so they are high only in those states.
        w_end = Signal()  # the beat in `beat` ends the load (its frame is LOAD_LAST)
        i_valid, i_last = Signal(), Signal()
        m.d.comb += [w_sl.i.valid.eq(w_valid), *_drive(w_sl.i.payload, beat, w_end),
                     i_sl.i.valid.eq(i_valid), *_drive(i_sl.i.payload, img_byte, i_last)]
        m.d.sync += [r_start.eq(0), acc.weights_restart.eq(0), acc.start.eq(0)]

        def answer(status, length=0, src=SRC_INFO) -> None:
            m.d.sync += [r_start.eq(1), r_status.eq(status), r_cmd.eq(p_cmd), r_len.eq(length),
                         r_src.eq(src)]  # fmt: skip
            if isinstance(status, int):
                if status != Status.OK:
                    m.d.sync += last_err.eq(int(status))
            else:
                with m.If(status != Status.OK):
                    m.d.sync += last_err.eq(status)
            m.next = "REPLY"

        # The frame's command and length tests, registered while the frame's last bytes
        # arrive (p_cmd and p_len are set hundreds of cycles before f_valid): the dispatch
        # decision starts from flip-flops.
        cmd = {c: Signal(name=f"cmd_{c.name.lower()}") for c in Cmd}
        load_len_bad, infer_len_bad = Signal(), Signal()
        m.d.sync += [cmd[c].eq(p_cmd == c) for c in Cmd]
        m.d.sync += [load_len_bad.eq((p_len == 0) | (p_len[:2] != 0)),
                     infer_len_bad.eq(p_len != acc.prog_in_len)]

        with m.FSM(name="dispatch"):
            with m.State("WAIT"):
                m.d.comb += enable.eq(1)
                with m.If(f_valid):
                    m.d.sync += [rd_ptr.eq(0), nbyte.eq(0)]
                    with m.If(~f_ok):
                        answer(f_status)
                    with m.Elif(cmd[Cmd.INFO]):
                        answer(Status.OK, len(info), SRC_INFO)
                    with m.Elif(cmd[Cmd.STATUS]):
                        answer(Status.OK, 4, SRC_STATUS)
                        # the reply carries this snapshot; reading it clears the last error
                        m.d.sync += [status_snap.eq(status_word), last_err.eq(0)]
                    with m.Elif(cmd[Cmd.CYCLES]):
                        answer(Status.OK, 4 * (3 + acc.prog_layers), SRC_CYCLES)
                    with m.Elif(cmd[Cmd.LOAD_BEGIN]):
                        m.d.sync += acc.weights_restart.eq(1)
                        answer(Status.OK)
                    with m.Elif(cmd[Cmd.LOAD_DATA] | cmd[Cmd.LOAD_LAST]):
                        with m.If(load_len_bad):
                            answer(Status.LENGTH)
                        with m.Else():
                            m.next = "LOAD_RD"
                    with m.Elif(cmd[Cmd.INFER]):
                        with m.If(~acc.weights_loaded):
                            answer(Status.NOT_LOADED)
                        with m.Elif(infer_len_bad):
                            answer(Status.LENGTH)
                        with m.Else():
                            m.d.sync += acc.start.eq(1)
                            m.next = "FEED_RD"
                    with m.Else():
                        answer(Status.COMMAND)
            with m.State("LOAD_RD"):  # fb_r.addr = rd_ptr; data next cycle, in fb_q after
                m.next = "LOAD_WAIT"
            with m.State("LOAD_WAIT"):
                m.next = "LOAD_ACC"
            with m.State("LOAD_ACC"):
                m.d.sync += [beat.word_select(nbyte, 8).eq(fb_q), nbyte.eq(nbyte + 1),
                             rd_ptr.eq(rd_ptr + 1)]  # fmt: skip
                m.next = "LOAD_RD"
                with m.If(nbyte == 3):
                    # LOAD_PUSH's stream signals come from registers (timing): the loader's
                    # flags only change when it takes a beat, at least 8 cycles before here
                    # (the slice hands a beat over one or two cycles after it was pushed)
                    refuse = acc.weights_loaded | weight_fault  # refused until LOAD_BEGIN
                    final = rd_ptr == p_len_m1
                    m.d.sync += [w_valid.eq(~refuse), w_refuse.eq(refuse), w_last.eq(final),
                                 w_end.eq(final & cmd[Cmd.LOAD_LAST])]  # fmt: skip
                    m.next = "LOAD_PUSH"
            with m.State("LOAD_PUSH"):
                with m.If(w_refuse):
                    m.d.sync += w_refuse.eq(0)
                    answer(Status.LOAD)
                with m.Elif(w_sl.i.ready):
                    m.d.sync += w_valid.eq(0)
                    with m.If(w_last):
                        m.next = "LOAD_CHECK"
                    with m.Else():
                        m.next = "LOAD_RD"
            with m.State("LOAD_CHECK"):  # the loader's flags for the frame's final beat
                # once the slice has handed it over: its flags are set in the cycle its
                # output register empties
                with m.If(~w_sl.o.valid):
                    with m.If(weight_fault | (cmd[Cmd.LOAD_LAST] & ~acc.weights_loaded)):
                        answer(Status.LOAD)
                    with m.Else():
                        answer(Status.OK)
            with m.State("FEED_RD"):  # fb_r.addr = rd_ptr; data next cycle, in fb_q after
                m.next = "FEED_WAIT"
            with m.State("FEED_WAIT"):
                m.next = "FEED_LATCH"
            with m.State("FEED_LATCH"):  # a register between the two block RAMs (timing)
                m.d.sync += [img_byte.eq(fb_q), i_valid.eq(1),
                             i_last.eq(rd_ptr == p_len_m1)]  # fmt: skip
                m.next = "FEED_PUSH"
            with m.State("FEED_PUSH"):
                with m.If(i_sl.i.ready):
                    m.d.sync += [rd_ptr.eq(rd_ptr + 1), i_valid.eq(0)]
                    with m.If(i_last):
                        answer(Status.OK, acc.prog_out_len, SRC_LOGITS)
                    with m.Else():
                        m.next = "FEED_RD"
            with m.State("REPLY"):
                with m.If(~r_busy):
                    m.next = "WAIT"

        m.d.comb += [
            self.led_busy.eq(acc.busy),
            self.led_done.eq(acc.done),
            self.led_error.eq((last_err != 0) | accel_error),
            self.led_loaded.eq(acc.weights_loaded),
        ]
        return m
