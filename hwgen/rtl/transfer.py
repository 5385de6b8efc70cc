"""The Accelerator's data and result transfers: the two units that carry the image stream into
activation buffer 0 and the logits out of the output buffer.

`ImageWriter` takes the image's int8 values (HWC order) while `active` and writes each, in
the cycle it is taken, into buffer 0: pixel p's channel ch goes to word
p * ceil(in_c / C) + ch // C, lane ch % C. It checks the image's length against the header:
`complete` (the in_len-th value, with `last`), `long` (the in_len-th value without `last`),
`short` (`last` before the in_len-th value).

`ImageSlot` tracks the input region as a slot the next image is loaded into, also while the
previous image is computed (the preload): it arms the writer, closes the slot when the
image ended (complete, or short/long: the fault is kept with the image and reported by the
run that takes it), and re-arms it when the run no longer reads the input region.

`LogitSender` reads the output buffer one word at a time (the read is registered: address
in one cycle, word in the next) and sends out_len logits, lane 0 of word `base` first,
`last` on the final one; while a logit waits for `ready`, valid and payload hold.

Golden functions: `image_writes`, `slot_step` and `logits_from_words`. Formal checks of both
streams: hwgen/formal/transfer_check.py.
"""

from __future__ import annotations

import numpy as np
from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .attrs import UNSHARED
from .carry import carry_any
from .delay import registered
from .traits import trait

__all__ = [
    "IMAGE_LAYOUT",
    "LOGIT_LAYOUT",
    "ImageSlot",
    "ImageWriter",
    "LogitSender",
    "image_writes",
    "slot_step",
    "logits_from_words",
]

IMAGE_LAYOUT = data.StructLayout({"data": signed(8), "last": 1})
LOGIT_LAYOUT = data.StructLayout({"data": signed(8), "last": 1})


def image_writes(values, in_c: int, cols: int) -> list[tuple[int, int, int]]:
    """(word, lane, value) of each image value, in stream order: the buffer-0 packing."""
    cw = -(-in_c // cols)
    return [((k // in_c) * cw + (k % in_c) // cols, (k % in_c) % cols, int(v))
            for k, v in enumerate(np.asarray(values).reshape(-1))]


def slot_step(state: str, bad: tuple[int, int], i: dict[str, int]) -> tuple[dict, str, tuple]:
    """ImageSlot's golden: (outputs, next state, next (bad_short, bad_long)) for one cycle
    with inputs ``i`` (enable, window, take, release, last_in, complete, short, long;
    window only with enable, as the Accelerator grants it)."""
    out = {"fill": 0, "discard": 0, "clear": 0, "full": 0,
           "bad_short": bad[0], "bad_long": bad[1]}  # fmt: skip
    nxt = state
    if state == "CLEAR":
        out["clear"], bad = 1, (0, 0)
        nxt = "OPEN" if i["enable"] else "CLEAR"
    elif state == "OPEN":
        out["fill"] = i["window"] & i["enable"]
        if not i["enable"]:
            nxt = "CLEAR"
        elif i["complete"]:
            nxt = "FULL"
        elif i["short"]:
            nxt, bad = "FULL", (1, bad[1])
        elif i["long"]:
            nxt, bad = "LONG", (bad[0], 1)
    elif state == "LONG":  # (the long event registered: DISCARD a cycle later)
        nxt = "DISCARD"
    elif state == "DISCARD":
        out["discard"] = 1
        nxt = "FULL" if i["last_in"] else "DISCARD"
    elif state == "FULL":
        out["full"] = 1
        if i["take"]:
            nxt = "CLEAR" if any(bad) else "USED"
        elif not i["enable"]:
            nxt = "CLEAR"
    elif state == "USED":
        nxt = "CLEAR" if i["release"] else "USED"
    return out, nxt, bad


def logits_from_words(words, out_len: int, cols: int) -> list[int]:
    """The logits a result transfer sends from buffer words [n, cols] of int8 lanes."""
    return [int(v) for v in np.asarray(words).reshape(-1, cols).reshape(-1)[:out_len]]


class ImageWriter(wiring.Component):
    """Data transfer: image stream -> buffer-0 writes (see the module docstring).

    `clear` (an accepted start) rewinds the counters; `c_last` = in_c - 1 and `len_last` =
    in_len - 1 come from the loaded program's header (registered by the controller) and hold
    from a cycle before `clear` to the transfer's end: the writer registers what its steps
    and `clear` need of them (c_last - 2, in_c == 1, len_last - 1, in_len == 1), so each
    step's logic starts from flip-flops, not from a subtraction's carry chain (the header
    changes only in a model load, long before the slot opens). Ready = `active`: every
    value taken is written in the same cycle (`we`, `addr`, one-hot `lanes`, `data`).
    `active` is the slot's OPEN & `window` (the buffer port is free): the position (pointer,
    lane, count, channel end, `final`) steps with every value offered in the window, taken
    or not, so outside OPEN it runs off; OPEN is entered only from CLEAR, whose `clear`
    reloads it (ImageSlot). The steps read `step_valid`, which must equal `i_stream.valid`
    in every cycle: the Accelerator gives it from a register of its own (RegSlice's
    `o_valid_copy`), and `window` from one of its own, so the steps' logic can sit by the
    position registers.
    """

    def __init__(self, cols: int, addr_width: int, c_width: int = 12,
                 len_width: int = 24) -> None:
        self.cols = cols
        super().__init__({
            "i_stream": In(stream.Signature(IMAGE_LAYOUT)),
            "step_valid": In(1),  # == i_stream.valid (a copy: see the docstring)
            "active": In(1),
            "window": In(1),  # (active implies window; see above)
            "clear": In(1),
            "c_last": In(c_width),
            "len_last": In(len_width),
            "we": Out(1),
            "addr": Out(addr_width + 1),
            "lanes": Out(cols),
            "data": Out(signed(8)),
            "complete": Out(1),
            "short": Out(1),
            "long": Out(1),
        })  # fmt: skip

    def elaborate(self, platform) -> Module:
        m = Module()
        C = self.cols
        # (The position and the flags are reset-less: `clear`, which the slot gives before it
        # fills, loads them; their synchronous reset is then `clear` alone, a flip-flop.)
        nr = {"reset_less": True}
        chain = trait(platform, "carry_chains")  # (hwgen.rtl.carry)
        ptr = Signal.like(self.addr, **nr)  # word of the next value
        # its lane, one-hot (lane_oh[C-1]: the word's last lane, a flip-flop)
        lane_oh = Signal(C, init=1, **nr)
        # ch_end: its channel is the pixel's last (ch == c_last), a flag from a down-counter's
        # sign bit: cl2 = c_last - 2 - ch (timing: no 12-bit compare in front of the steps)
        ch_end = Signal(**nr)
        cl2 = Signal(signed(len(self.c_last) + 1), **nr)
        # word_end == ch_end | lane_oh[C-1] (the next value taken ends its word), a flag kept
        # with its next value (timing: the pointer's enable is then one LUT of flip-flops
        # that sit with it; from ch_end, placed by the channel counter, through two LUTs it
        # was the 12x16's critical path, 9.07 ns of routing on ce17011 seed 2)
        word_end = Signal(**nr)
        s = self.i_stream
        take = Signal()
        m.d.comb += [
            s.ready.eq(self.active),
            take.eq(s.valid & self.active),
            self.we.eq(take),
            self.addr.eq(ptr),
            self.lanes.eq(lane_oh),
            self.data.eq(s.payload.data),
        ]
        # final: the next value is the image's last (count == len_last), kept as a flag so
        # the end-of-image decisions start from a flip-flop, not from a 24-bit compare
        # (count + 1 == len_last is tested as count == len_last - 1, registered at `clear`).
        # (An up-counter: a down-counter's sign bit would be a shallower D, but the formal
        # check of the length events then needs ~10x the solver time. The compare is the
        # carry out of an add, `carry_any`: one carry chain, not a tree of LUT levels.)
        count = Signal.like(self.len_last, **nr)  # values offered in the window since `clear`
        final = Signal(**nr)
        # The limits' derived values (see the docstring): len_m2 = len_last - 1, one_len
        # (in_len == 1), one_c (in_c == 1: every channel is a pixel's last), cl2_0 (cl2 at a
        # pixel's channel 0); registered unless the platform's `path_registers` trait says
        # not (hwgen.rtl.traits). (x == 0 as the sign of x - 1, a carry chain)
        len_m2 = Signal(len(self.len_last) + 1, reset_less=True)
        m.d.sync += len_m2.eq(self.len_last - 1)
        on = trait(platform, "path_registers")
        one_len = registered(m, (self.len_last - 1)[-1], "one_len", on)
        one_c = registered(m, (self.c_last - 1)[-1], "one_c", on)
        cl2_0 = registered(m, (self.c_last - 2).as_signed(), "cl2_0", on)
        first_ch = [ch_end.eq(one_c), cl2.eq(cl2_0)]
        # Every position register steps on each value offered in the `window`, not on
        # `take` (= window & OPEN): in OPEN the two are equal, and outside it `clear`
        # reloads them before OPEN (see the docstring), so a write (only in OPEN) sees the
        # same pointer. Timing: their enables, which also load them at `clear`, are then one
        # LUT of flip-flops (clear, valid, window, word_end), not the slot's OPEN as well
        # (the pointer's and count's enables were the 12x16's worst paths, 8.65 / 8.60 ns,
        # c1085d0; cl2's 6.68 ns on b24ce83 before it stepped so).
        step = self.step_valid & self.window
        with m.If(self.clear):
            m.d.sync += [ptr.eq(0), lane_oh.eq(1), count.eq(0)]
        with m.Elif(step):
            m.d.sync += count.eq(count + 1)
            with m.If(word_end):  # the pixel's or the word's last: next word
                m.d.sync += [ptr.eq(ptr + 1), lane_oh.eq(1)]
            with m.Else():
                m.d.sync += lane_oh.eq(lane_oh << 1)
        lane_last = lane_oh[C - 2] if C > 1 else 1  # lane_oh[C-1] after a step in the word
        with m.If(self.clear):
            m.d.sync += [*first_ch, final.eq(one_len), word_end.eq(one_c | (C == 1))]
        with m.Elif(step):
            m.d.sync += final.eq(~carry_any(count ^ len_m2, chain))
            with m.If(ch_end):
                m.d.sync += first_ch
            with m.Else():
                m.d.sync += [ch_end.eq(cl2[-1]), cl2.eq(cl2 - 1)]
            # the next value's pixel end (as ch_end's above) or word end (lane_oh's, below)
            m.d.sync += word_end.eq(Mux(ch_end, one_c, cl2[-1])
                                    | Mux(word_end, C == 1, lane_last))
        last = s.payload.last
        m.d.comb += [
            self.complete.eq(take & final & last),
            self.long.eq(take & final & ~last),
            self.short.eq(take & ~final & last),
        ]
        return m


class ImageSlot(wiring.Component):
    """The input region as a one-image slot (see the module docstring); drives an ImageWriter.

    States: CLEAR (one cycle: rewinds the writer), OPEN (the writer is `fill`-ed in every
    cycle the controller grants the buffer port, `window`), LONG (one cycle after a long
    image's final value: nothing taken), DISCARD (a long image: values
    are taken and dropped up to their `last`, no write), FULL (an image ended: `full`; kept
    faults `bad_short`/`bad_long`), USED (a run reads the region). The controller `take`s a
    full slot: a faulty image is dropped (CLEAR), a good one is USED until `release` (the run
    no longer reads the input region). Without `enable` (no model loaded) an idle slot is
    held in CLEAR: an image offered then is not taken, and a preloaded one is dropped (a
    new model may have another input). The controller grants `window` only with `enable`
    (window implies enable), so `fill` does not look at `enable` again.
    """

    def __init__(self) -> None:
        super().__init__({
            "enable": In(1),
            "window": In(1),
            "take": In(1),
            "release": In(1),
            "last_in": In(1),  # the image stream's valid & last (for DISCARD)
            "complete": In(1),  # the writer's end-of-image events
            "short": In(1),
            "long": In(1),
            "fill": Out(1),  # the writer's `active`
            "discard": Out(1),  # take and drop image values
            "clear": Out(1),  # the writer's `clear`
            "full": Out(1),
            "bad_short": Out(1),
            "bad_long": Out(1),
        })  # fmt: skip

    def elaborate(self, platform) -> Module:
        m = Module()
        # The states as one-hot flip-flops with explicit next-state equations (timing: each
        # flag's logic is a couple of LUTs of flip-flops and the writer's events, not a
        # state decode and a priority chain in front of the enables). They use that the
        # writer's end events come only while filling (fill = OPEN & window, and window
        # implies enable), so an event implies OPEN and enable.
        clr, opn = Signal(init=1, name="in_clear"), Signal(name="in_open")
        dis, ful, usd = Signal(name="in_discard"), Signal(name="in_full"), Signal(name="in_used")
        en, take, rel = self.enable, self.take, self.release
        # The fault events a cycle later (timing: an event is the image stream's valid, the
        # slot's OPEN, the window, `final` and `last`; in front of DISCARD's and the kept
        # faults' next values it was two LUT levels behind the stream's valid across the
        # die, `discard` / `bad_long` D 8.39 / 8.38 ns on the 12x16 of ad6745c seed 1). So a
        # long image's slot spends one cycle in no state (LONG) before DISCARD; the kept
        # faults read as set from the cycle after the event, as before (flag | event_r).
        long_r, short_r = Signal(name="in_long_r"), Signal(name="in_short_r")
        kept_short, kept_long = Signal(name="in_bad_short"), Signal(name="in_bad_long")
        ends_in = self.complete | self.short  # the image ended on this value: FULL
        bad = self.bad_short | self.bad_long
        m.d.comb += [self.clear.eq(clr), self.fill.eq(opn & self.window), self.discard.eq(dis),
                     self.full.eq(ful), self.bad_short.eq(kept_short | short_r),
                     self.bad_long.eq(kept_long | long_r)]  # fmt: skip
        m.d.sync += [
            clr.eq((clr & ~en) | (opn & ~en) | (ful & take & bad) | (ful & ~take & ~en)
                   | (usd & rel)),
            opn.eq((clr & en) | (opn & en & ~ends_in & ~self.long)),
            long_r.eq(self.long), short_r.eq(self.short),
            dis.eq(long_r | (dis & ~self.last_in)),
            ful.eq(ends_in | (dis & self.last_in) | (ful & ~take & en)),
            usd.eq((ful & take & ~bad) | (usd & ~rel)),
            # the kept faults: set by the faulty value's event, cleared in CLEAR
            kept_short.eq(kept_short | short_r),
            kept_long.eq(kept_long | long_r),
        ]
        # (the clear as a branch of its own: yosys maps it onto the flip-flops' synchronous
        # set/reset pin, so their D is one input narrower. An event_r is never set in CLEAR:
        # events come only while OPEN, and OPEN goes to FULL or LONG)
        with m.If(clr):
            m.d.sync += [kept_short.eq(0), kept_long.eq(0)]
        return m


class LogitSender(wiring.Component):
    """Result transfer: buffer words -> the logits stream (see the module docstring).

    `start` (a pulse while idle) begins a transfer of `len_last` + 1 logits from word `base`
    (the logits region's first word, held during the transfer). While
    `reading` the unit drives the buffer's read address `raddr`; `rdata` must be that word
    `read_latency` cycles later (1: a block RAM's read port; 2: a register after it, which
    keeps the block RAM's output pins on one flip-flop). `busy` from the cycle after `start`
    to the final logit's transfer, `done` in that cycle.
    """

    def __init__(self, cols: int, addr_width: int, len_width: int = 16,
                 read_latency: int = 1) -> None:
        if read_latency < 1:
            raise ValueError(f"LogitSender read_latency must be >= 1, not {read_latency}")
        self.cols = cols
        self.read_latency = read_latency
        super().__init__({
            "start": In(1),
            "base": In(addr_width + 1),
            "len_last": In(len_width),
            "raddr": Out(addr_width + 1),
            "reading": Out(1),
            "rdata": In(unsigned(8 * cols)),
            "o_stream": Out(stream.Signature(LOGIT_LAYOUT)),
            "busy": Out(1),
            "done": Out(1),
        })  # fmt: skip

    def elaborate(self, platform) -> Module:
        m = Module()
        C = self.cols
        # (reset-less: `start` loads them before a transfer reads them)
        nr = {"reset_less": True}
        n = Signal.like(self.len_last, **nr)  # logits sent
        # the offered logit's lane, one-hot: lane_oh[C-1] (the word's last) is a flip-flop
        # (timing: no lane compare in front of the read address's enable)
        lane_oh = Signal(C, init=1, **nr)
        ptr = Signal.like(self.raddr, **nr)
        word = Signal(8 * C, reset_less=True)  # loaded in WAIT before SEND reads it
        # final: the logit being offered is the last (n == len_last), a flag kept with n
        # (timing: `done` and `last` come from a flip-flop, not from a 16-bit compare; its
        # next value's compare is a carry chain, `carry_any`)
        final = Signal(**nr)
        len_m1 = Signal(len(self.len_last) + 1, reset_less=True)
        s = self.o_stream
        m.d.comb += self.raddr.eq(ptr)
        # The states as one-hot flip-flops with explicit next-state equations: IDLE, READ
        # (the address), HOLD1.. (the address held while the data travels), WAIT (the word
        # registered), SEND (timing: `done`, the read address's enable and the lane steps
        # start from flip-flops, not from a state decode and a priority chain).
        L = self.read_latency
        idle = Signal(init=1, name="st_idle")
        rd = [Signal(name=f"st_read{k}") for k in range(L)]  # READ, HOLD1 .. HOLD{L-1}
        wait, send = Signal(name="st_wait"), Signal(name="st_send")
        take = Signal()  # the offered logit is taken
        step = Signal()  # ... and it ends its word (not the final one): read the next word
        m.d.comb += [
            take.eq(send & s.ready),
            step.eq(take & ~final & lane_oh[C - 1]),
            self.busy.eq(~idle),
            self.reading.eq(Cat(*rd).any()),
            self.done.eq(take & final),
            s.valid.eq(send), s.payload.data.eq(word[:8]), s.payload.last.eq(final),
        ]  # fmt: skip
        # SEND's copies (UNSHARED), one per word byte and one for the logit count: each
        # register group's enable is its own copy with `ready` (timing: send & ready was one
        # LUT in front of ~90 enables, with `ready` from the host link across the die)
        # Reset-less: their next value is SEND's, from WAIT and SEND, which reset holds at 0, so
        # they are 0 from the reset's second cycle (it lasts at least two; FPGA and simulation
        # start them at 0) and no reset reaches their LUT (the 8x8 build's critical path).
        send_w = [Signal(name=f"st_send_w{k}", attrs=UNSHARED, reset_less=True)
                  for k in range(C)]
        send_n = Signal(name="st_send_n", attrs=UNSHARED, reset_less=True)
        send_next = wait | (send & ~(take & (final | lane_oh[C - 1])))
        m.d.sync += [
            idle.eq((idle & ~self.start) | (take & final)),
            rd[0].eq((idle & self.start) | step),
            *(rd[k].eq(rd[k - 1]) for k in range(1, L)),
            wait.eq(rd[L - 1]),
            send.eq(send_next), send_n.eq(send_next), *(x.eq(send_next) for x in send_w),
        ]  # fmt: skip
        # The logit count, lane and `final` start in the cycle after `start` (READ), from
        # flip-flops: `first` and len_m1 (timing: their enables and resets are then local,
        # not `start` with the SEND steps' `ready`; `final` has no compare of len_last)
        first = Signal()
        m.d.sync += first.eq(idle & self.start)
        with m.If(idle & self.start):
            m.d.sync += [ptr.eq(self.base), len_m1.eq(self.len_last - 1)]
        with m.If(first):
            m.d.sync += [n.eq(0), lane_oh.eq(1), final.eq(len_m1[-1])]  # len_last == 0
        with m.If(wait):
            m.d.sync += word.eq(self.rdata)
        chain = trait(platform, "carry_chains")  # (hwgen.rtl.carry)
        self._send(m, s, n, lane_oh, ptr, word, final, len_m1, send_w, send_n, chain)
        return m

    def _send(self, m: Module, s, n, lane_oh, ptr, word, final, len_m1, send_w,
              send_n, chain: bool) -> None:
        """SEND's data steps: a taken logit shifts the word one lane on (no lane
        multiplexer); the word's last one (not the final logit) moves the address on.
        (``send_w[k]``/``send_n``: copies of SEND, see elaborate.)"""
        C = self.cols
        for k in range(C):
            with m.If(send_w[k] & s.ready):
                nxt = word[8 * k + 8 : 8 * k + 16] if k < C - 1 else 0
                m.d.sync += word[8 * k : 8 * k + 8].eq(nxt)
        with m.If(send_n & s.ready):
            m.d.sync += [n.eq(n + 1), final.eq(~carry_any(n ^ len_m1, chain)),
                         lane_oh.eq(Mux(lane_oh[C - 1], 1, lane_oh << 1))]  # fmt: skip
        with m.If(s.ready & s.valid & ~final & lane_oh[C - 1]):
            m.d.sync += ptr.eq(ptr + 1)
