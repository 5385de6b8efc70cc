"""Formal harnesses for the Accelerator's image and logits streams (hwgen/rtl/transfer.py):
no value lost, duplicated or reordered, whatever the valid and ready patterns.

:class:`ImageWriterHarness` drives :class:`~hwgen.rtl.transfer.ImageWriter` with a free image
stream (valid, data and `last` free on every cycle), a free `open` (ImageSlot's OPEN
state) and `window` (the buffer port is free; `active` = open & window, the slot's `fill`),
a free `clear` (its CLEAR state), and a free
header (`in_c` 1..MAX_C, `in_len` >= 1, constant over the trace). The environment follows
the slot (hwgen/rtl/transfer.py): no `clear` while
open, open only in a cycle after `clear` or open (OPEN is entered from CLEAR), and not open
after the image ended until the next `clear`. Its reference counts
the values taken since `clear` (value k is channel ch of pixel p) and asserts, on every cycle:

* ready exactly while active (a value offered otherwise stays with the sender);
* a write exactly when a value is taken, with that value, to word p * ceil(in_c / C) +
  ch // C and the one-hot lane ch % C: the k-th value lands in its own slot, once;
* `complete` / `long` / `short` exactly on the in_len-th value with / without `last`, or
  on `last` before it.

:class:`LogitSenderHarness` drives :class:`~hwgen.rtl.transfer.LogitSender` with a free
`start` (never while busy), a free consumer `ready`, a free `out_len` (constant) and a
buffer whose words are free, except one tagged word (a free address and value, constant
over the trace: it stands for every word). It counts the logits taken since `start` (n)
and asserts, on every cycle:

* valid only during a transfer; a refused logit stays valid with the same payload;
* the n-th logit is lane n % C of word base + n // C (a free constant `base`; checked
  against the tagged word), `last`
  exactly on logit out_len - 1, `done` exactly when that one is taken;
* `busy` from the cycle after `start` to the final transfer; a read only while busy.

Each harness takes a ``unit`` class so that the tests can show a broken unit failing.
"""

from __future__ import annotations

from amaranth import Const, Module, ResetSignal, Signal, Value
from amaranth.hdl import Assert, Assume
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from hwgen.rtl.transfer import IMAGE_LAYOUT, ImageSlot, ImageWriter, LogitSender

# Amaranth 0.5 keeps its formal free values out of the public namespace (amaranth.hdl).
from amaranth.hdl._ast import AnyConst, AnySeq  # noqa: E402  isort: skip

__all__ = ["ImageSlotHarness", "ImageWriterHarness", "LogitSenderHarness"]

# The units are built as narrow as the bounded traces need (the solver's time grows with
# every bit): <= 32 buffer words, <= 63 values per transfer, <= 7 channels.
ADDR_WIDTH, LEN_WIDTH, C_WIDTH = 4, 6, 3


class ImageWriterHarness(wiring.Component):
    """BMC harness of ``unit(cols=cols, addr_width=ADDR_WIDTH)`` (an ImageWriter)."""

    def __init__(self, cols: int = 3, max_c: int = 5, unit: type = ImageWriter) -> None:
        self.cols, self.max_c, self.unit = cols, max_c, unit
        super().__init__({
            "valid": In(1), "payload": In(IMAGE_LAYOUT), "open": In(1), "window": In(1),
            "clear": In(1),
        })  # fmt: skip
        self.active = self.open & self.window  # (the slot's `fill`)

    def elaborate(self, platform) -> Module:
        m = Module()
        C = self.cols
        m.submodules.dut = dut = self.unit(cols=C, addr_width=ADDR_WIDTH, c_width=C_WIDTH,
                                           len_width=LEN_WIDTH)
        m.d.comb += Assume(~ResetSignal())  # the design reset is out of scope; `clear` is in
        in_c = Signal(C_WIDTH)
        in_len = Signal(LEN_WIDTH)
        m.d.comb += [in_c.eq(AnyConst(C_WIDTH)), in_len.eq(AnyConst(LEN_WIDTH))]
        m.d.comb += [Assume((in_c >= 1) & (in_c <= self.max_c)), Assume(in_len >= 1)]
        s = dut.i_stream
        m.d.comb += [
            s.valid.eq(self.valid), dut.step_valid.eq(self.valid), s.payload.eq(self.payload),
            dut.active.eq(self.active), dut.window.eq(self.window), dut.clear.eq(self.clear),
            dut.c_last.eq(in_c - 1), dut.len_last.eq(in_len - 1),
        ]  # fmt: skip
        self._environment(m, dut)
        self._scoreboard(m, dut, in_c, in_len)
        return m

    def _environment(self, m: Module, dut) -> None:
        """The slot (ImageSlot): clear only while not open; open only in a cycle after
        clear or open (OPEN is entered only from CLEAR); not open once the image ended (the
        slot leaves OPEN on the writer's end event). The header holds from a cycle before
        the first clear (the writer registers values derived from it): no clear in the
        trace's first cycle."""
        ended = Signal()
        after = Signal()  # the previous cycle was clear or open
        later = Signal()  # not the trace's first cycle
        m.d.sync += later.eq(1)
        m.d.comb += Assume(later | ~self.clear)
        with m.If(self.clear):
            m.d.sync += ended.eq(0)
        with m.Elif(dut.complete | dut.short | dut.long):
            m.d.sync += ended.eq(1)
        m.d.sync += after.eq(self.clear | self.open)
        m.d.comb += [Assume(~(self.clear & self.open)), Assume(~(self.open & ended)),
                     Assume(~self.open | after)]  # fmt: skip

    def _scoreboard(self, m: Module, dut, in_c, in_len) -> None:
        C = self.cols
        # values taken since `clear`, the current pixel's channel and its first word
        k = Signal(LEN_WIDTH)
        ch = Signal(C_WIDTH)
        base = Signal(8)
        take = self.valid & self.active
        with m.If(self.clear):
            m.d.sync += [k.eq(0), ch.eq(0), base.eq(0)]
        with m.Elif(take):
            m.d.sync += k.eq(k + 1)
            with m.If(ch == in_c - 1):
                m.d.sync += [ch.eq(0), base.eq(base + (in_c + C - 1) // C)]
            with m.Else():
                m.d.sync += ch.eq(ch + 1)
        want_addr = base + ch // C  # = p * ceil(in_c / C) + ch // C
        m.d.comb += [Assert(dut.i_stream.ready == self.active), Assert(dut.we == take)]
        with m.If(take):
            m.d.comb += [
                Assert(dut.data == self.payload.data),
                Assert(dut.addr == want_addr),
                Assert(dut.lanes == (Const(1, C) << (ch % C))[:C]),
            ]
        final, last = k == in_len - 1, self.payload.last
        m.d.comb += [
            Assert(dut.complete == (take & final & last)),
            Assert(dut.long == (take & final & ~last)),
            Assert(dut.short == (take & ~final & last)),
        ]


class ImageSlotHarness(wiring.Component):
    """BMC harness of ``unit()`` (an ImageSlot) driving an ImageWriter, as in the Accelerator,
    with every controller input free on every cycle (`enable`, `window`, `take`, `release`;
    `window` only with `enable`, as the Accelerator grants it) and a free image stream. It
    asserts that the slot gives the writer the environment
    ImageWriterHarness assumes (no `clear` while filling; OPEN only in a cycle after CLEAR or
    OPEN; not OPEN after the image ended until the next `clear`), and the preload's safety:
    nothing is
    written into the input region from the `take` of a good image until `release` (the run
    reads it meanwhile), and the stream is ready only while filling or discarding."""

    def __init__(self, cols: int = 2, unit: type = ImageSlot) -> None:
        self.cols, self.unit = cols, unit
        super().__init__({
            "valid": In(1), "payload": In(IMAGE_LAYOUT), "enable": In(1), "window": In(1),
            "take": In(1), "release": In(1),
        })  # fmt: skip

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.slot = slot = self.unit()
        m.submodules.wr = wr = ImageWriter(cols=self.cols, addr_width=ADDR_WIDTH,
                                           c_width=C_WIDTH, len_width=LEN_WIDTH)
        m.d.comb += Assume(~ResetSignal())
        # the Accelerator grants the window only with enable (the slot relies on it)
        m.d.comb += Assume(~self.window | self.enable)
        in_c = Signal(C_WIDTH)
        in_len = Signal(LEN_WIDTH)
        m.d.comb += [in_c.eq(AnyConst(C_WIDTH)), in_len.eq(AnyConst(LEN_WIDTH)),
                     Assume((in_c >= 1) & (in_c <= 3)), Assume(in_len >= 1)]  # fmt: skip
        m.d.comb += [
            wr.i_stream.valid.eq(self.valid), wr.step_valid.eq(self.valid),
            wr.i_stream.payload.eq(self.payload),
            wr.active.eq(slot.fill), wr.window.eq(self.window), wr.clear.eq(slot.clear),
            wr.c_last.eq(in_c - 1), wr.len_last.eq(in_len - 1),
            slot.enable.eq(self.enable), slot.window.eq(self.window), slot.take.eq(self.take),
            slot.release.eq(self.release), slot.last_in.eq(self.valid & self.payload.last),
            slot.complete.eq(wr.complete), slot.short.eq(wr.short), slot.long.eq(wr.long),
        ]  # fmt: skip
        self._check(m, slot, wr)
        return m

    def _check(self, m: Module, slot, wr) -> None:
        ended = Signal()
        cleared = Signal()
        used = Signal()
        with m.If(slot.clear):
            m.d.sync += [ended.eq(0), cleared.eq(1)]
        with m.Elif(wr.complete | wr.short | wr.long):
            m.d.sync += ended.eq(1)
        with m.If(slot.full & self.take & ~slot.bad_short & ~slot.bad_long):
            m.d.sync += used.eq(1)
        with m.Elif(self.release):
            m.d.sync += used.eq(0)
        # LONG: the cycle after a long image's final value (the slot's registered event)
        long_r = Signal()
        m.d.sync += long_r.eq(wr.long)
        # OPEN: the one state with no flag of its own (the harness's `used` is USED)
        opn, after = ~slot.clear & ~slot.discard & ~slot.full & ~used & ~long_r, Signal()
        m.d.sync += after.eq(slot.clear | opn)
        m.d.comb += [
            Assert(~(slot.clear & slot.fill)), Assert(~slot.fill | cleared),
            Assert(~opn | after), Assert(~(opn & ended)), Assert(~slot.fill | opn),
            Assert(~(slot.fill & ended)), Assert(~(wr.we & used)),
            Assert(~(slot.fill & slot.discard)), Assert(~(slot.full & slot.fill)),
            Assert(~long_r | (~slot.fill & ~slot.discard & slot.bad_long)),
        ]  # fmt: skip


class LogitSenderHarness(wiring.Component):
    """BMC harness of ``unit(cols=cols, addr_width=ADDR_WIDTH)`` (a LogitSender)."""

    def __init__(self, cols: int = 3, unit: type = LogitSender) -> None:
        self.cols, self.unit = cols, unit
        super().__init__({"start": In(1), "ready": In(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        C = self.cols
        m.submodules.dut = dut = self.unit(cols=C, addr_width=ADDR_WIDTH, len_width=LEN_WIDTH)
        m.d.comb += Assume(~ResetSignal())
        out_len = Signal(LEN_WIDTH)
        base = Signal(ADDR_WIDTH - 1)
        tag_addr = Signal(ADDR_WIDTH + 1)
        tag_word = Signal(8 * C)
        m.d.comb += [out_len.eq(AnyConst(LEN_WIDTH)), tag_addr.eq(AnyConst(ADDR_WIDTH + 1)),
                     tag_word.eq(AnyConst(8 * C)), base.eq(AnyConst(ADDR_WIDTH - 1)),
                     Assume(out_len >= 1), dut.base.eq(base)]  # fmt: skip
        # The buffer: a registered read; the tagged word stands for every word.
        raddr_q = Signal.like(dut.raddr)
        reading_q = Signal()
        m.d.sync += [raddr_q.eq(dut.raddr), reading_q.eq(dut.reading)]
        hit = reading_q & (raddr_q == tag_addr)
        m.d.comb += [
            dut.rdata.eq(hit.replicate(8 * C) & tag_word | ~hit.replicate(8 * C) & AnySeq(8 * C)),
            dut.start.eq(self.start), dut.len_last.eq(out_len - 1),
            dut.o_stream.ready.eq(self.ready),
            Assume(~(self.start & dut.busy)),
        ]  # fmt: skip
        self._scoreboard(m, dut, out_len, tag_addr, tag_word, base)
        return m

    def _scoreboard(self, m: Module, dut, out_len, tag_addr, tag_word, base) -> None:
        C = self.cols
        s = dut.o_stream
        n = Signal(LEN_WIDTH)  # logits taken since `start`
        xfer = Signal()  # inside a transfer
        take = s.valid & self.ready
        with m.If(self.start):
            m.d.sync += [n.eq(0), xfer.eq(1)]
        with m.Elif(take):
            m.d.sync += n.eq(n + 1)
            with m.If(n == out_len - 1):
                m.d.sync += xfer.eq(0)
        held = Signal()
        held_payload = Signal.like(s.payload)
        m.d.sync += [held.eq(s.valid & ~self.ready), held_payload.eq(s.payload)]
        same = Value.cast(s.payload) == Value.cast(held_payload)
        m.d.comb += [
            Assert(~s.valid | xfer),
            Assert(~held | (s.valid & same)),
            Assert(dut.busy == xfer),
            Assert(~dut.reading | dut.busy),
            Assert(dut.done == (take & (n == out_len - 1))),
        ]
        with m.If(s.valid):
            m.d.comb += [Assert(n < out_len), Assert(s.payload.last == (n == out_len - 1))]
            with m.If(base + n // C == tag_addr):
                m.d.comb += Assert(Value.cast(s.payload)[:8] == tag_word.word_select(n % C, 8))
