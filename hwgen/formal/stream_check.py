"""Formal harnesses for the stream handshakes: no value lost, duplicated or reordered
under backpressure.

:class:`LoaderStreamHarness` checks the :class:`~hwgen.rtl.loader.WeightLoader`: its input
is a free valid/ready stream of 32-bit beats, restricted only by the environment's rules
(``Assume``): a valid beat stays valid and unchanged until it is taken, and ``last`` (when
the beat layout has one) marks the final beat of the transfer. Backpressure is whatever the
loader does with ``ready``; ``restart`` is free.

The scoreboard counts the beats taken (``n_in``), the beats acted on (``n_act``: the loader
acts on a beat ``ACT_LATENCY`` = 1 cycle after taking it, its input stage; a restart in
between drops it) and the memory writes (``n_wr``) since the last restart, and a *tagged
value* — a free beat index and a free 32-bit value, both held constant — stands for every
beat at once: whenever the environment offers beat ``tag_idx`` its data is ``tag_val``.
On every cycle it asserts:

* a write happens exactly one cycle after the beat that completes a word was acted on (none
  lost, none extra) and to exactly one memory;
* the k-th write goes to the k-th word of the load order (region, address): no reordering,
  no duplicates;
* the written word holds ``tag_val`` in the slot of the tagged beat, if the word is the
  tagged beat's: every beat lands where it belongs;
* no beat is taken beyond the transfer, none in a restart cycle, and ``loaded`` is high
  exactly from the cycle after the whole transfer has been acted on (``LOADED_LATENCY``).
"""

from __future__ import annotations

import inspect

from amaranth import Const, Module, ResetSignal, Signal, Value, unsigned
from amaranth.hdl import Assert, Assume
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In

from hwgen.rtl.loader import ACT_LATENCY, LOADED_LATENCY, WeightLoader, beats_per_word

# Amaranth 0.5 keeps its formal free values out of the public namespace (amaranth.hdl);
# the project pins amaranth ~= 0.5.10.
from amaranth.hdl._ast import AnyConst  # noqa: E402  isort: skip

__all__ = ["LoaderStreamHarness", "load_order"]

assert ACT_LATENCY == 1, "the scoreboard's `staged` is one cycle: update it"
assert LOADED_LATENCY == ACT_LATENCY + 1, "`loaded_due` lags `done_due` one cycle: update it"
_MAGIC = 0xA7  # the header magic the harness's loader is built with (any value works)


def load_order(regions: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """(region, address, beat slot) of every beat of a transfer, in stream order."""
    return [
        (r, a, k)
        for r, (w, depth) in enumerate(regions)
        for a in range(depth)
        for k in range(beats_per_word(w))
    ]


class LoaderStreamHarness(wiring.Component):
    """BMC harness for ``loader(regions=...)`` (a WeightLoader or, in the negative tests, a
    broken subclass). ``mutant="skip_ready"`` makes the scoreboard count a beat as sent
    whenever it is valid, ignoring ``ready``: the negative test shows that a beat lost to
    backpressure is caught."""

    def __init__(
        self,
        *,
        regions: list[tuple[int, int]],
        mutant: str | None = None,
        loader: type[WeightLoader] = WeightLoader,
    ) -> None:
        self.regions = list(regions)
        self.mutant = mutant
        self.order = load_order(self.regions)
        self.header_beats: list[int] = []  # data of the transfer's header beats, if any
        self.dut = self._make_loader(loader)
        self.payload_shape = self.dut.i_stream.payload.shape()
        self.has_last = hasattr(self.dut.i_stream.payload, "last")
        super().__init__(
            {
                "valid": In(1),
                "payload": In(self.payload_shape),
                "restart": In(1),
            }
        )

    def _make_loader(self, loader: type[WeightLoader]) -> WeightLoader:
        """A loader whose transfer starts with a header word (magic + per-region word counts)
        gets one that asks for every region's full depth; its beats come first and write
        nothing. A loader without one takes the regions as they are."""
        if "header" not in inspect.signature(loader).parameters:
            return loader(regions=self.regions)
        fields = {"magic": unsigned(8)} | {f"n{r}": unsigned(8) for r in range(len(self.regions))}
        layout = data.StructLayout(fields)
        word = _MAGIC | sum(d << (8 + 8 * r) for r, (_, d) in enumerate(self.regions))
        self.header_beats = [
            (word >> (32 * k)) & 0xFFFF_FFFF for k in range(beats_per_word(layout.size))
        ]
        self.order = [(-1, 0, k) for k in range(len(self.header_beats))] + self.order
        return loader(
            header=layout,
            magic=_MAGIC,
            regions=[(f"n{r}", w, d) for r, (w, d) in enumerate(self.regions)],
        )  # type: ignore[call-arg]

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.dut = dut = self.dut
        order = self.order
        total = len(order)
        m.d.comb += Assume(~ResetSignal())  # the design reset is out of scope: `restart` is in
        # The tag: one free beat index and value, constant over the whole trace.
        tag_idx = Signal(range(total), name="tag_idx")
        tag_val = Signal(32, name="tag_val")
        m.d.comb += [tag_idx.eq(AnyConst(len(tag_idx))), tag_val.eq(AnyConst(32))]
        m.d.comb += Assume(tag_idx < total)

        s = dut.i_stream
        m.d.comb += [
            s.valid.eq(self.valid),
            s.payload.eq(self.payload),
            dut.restart.eq(self.restart),
        ]
        beat_data = Value.cast(self.payload)[:32]  # bare 32 bits, or BEAT_LAYOUT's `data` field
        ready = Const(1) if self.mutant == "skip_ready" else s.ready
        take = s.valid & ready
        accepted = s.valid & s.ready  # what the loader really took

        n_in = Signal(range(total + 2))  # beats taken since the last restart
        n_act = Signal(range(total + 2))  # beats acted on since the last restart
        n_wr = Signal(range(total + 2))  # writes since the last restart
        staged = Signal()  # a beat was taken last cycle: the loader acts on it now
        pending = Signal()  # a word was completed last cycle: its write is due now

        # --- environment rules
        held_valid = Signal()
        held_payload = Signal.like(self.payload)
        m.d.sync += [
            held_valid.eq(s.valid & ~ready & ~self.restart),
            held_payload.eq(self.payload),
        ]
        same = Value.cast(self.payload) == Value.cast(held_payload)
        m.d.comb += Assume(~held_valid | (s.valid & same))
        m.d.comb += Assume(~(s.valid & (n_in == tag_idx)) | (beat_data == tag_val))
        if self.has_last:
            m.d.comb += Assume(s.payload.last == (n_in == total - 1))
        for k, value in enumerate(self.header_beats):  # a well-formed header
            m.d.comb += Assume(~(s.valid & (n_in == k)) | (beat_data == value))

        # --- scoreboard
        word_end = Signal()  # the beat acted on completes a word
        for b, (r, _, k) in enumerate(order):
            if r >= 0 and k == beats_per_word(self.regions[r][0]) - 1:  # a header writes nothing
                with m.If(n_act == b):
                    m.d.comb += word_end.eq(1)
        with m.If(self.restart):
            m.d.sync += [n_in.eq(0), n_act.eq(0), n_wr.eq(0), staged.eq(0), pending.eq(0)]
        with m.Else():
            with m.If(take):
                m.d.sync += n_in.eq(n_in + 1)
            m.d.sync += [staged.eq(take), pending.eq(staged & word_end)]
            with m.If(staged):
                m.d.sync += n_act.eq(n_act + 1)
            with m.If(pending):
                m.d.sync += n_wr.eq(n_wr + 1)

        wes = [getattr(dut, f"we{r}") for r in range(len(self.regions))]
        any_we = Signal()
        m.d.comb += any_we.eq(sum(we for we in wes) != 0)
        m.d.comb += Assert(any_we == pending)  # one write per completed word, when due
        m.d.comb += Assert(sum(we for we in wes) <= 1)  # to one memory
        words = list(dict.fromkeys((r, a) for r, a, _ in order if r >= 0))  # in load order
        for r, we in enumerate(wes):
            addr = getattr(dut, f"addr{r}")
            wdata = getattr(dut, f"data{r}")
            width = self.regions[r][0]
            for i, (wr, wa) in enumerate(words):
                if wr != r:
                    continue
                with m.If(we & (n_wr == i)):  # the i-th write must be word i
                    m.d.comb += Assert(addr == wa)
                for b, (br, ba, k) in enumerate(order):
                    if (br, ba) != (wr, wa):
                        continue
                    lo, hi = 32 * k, min(32 * k + 32, width)
                    with m.If(we & (addr == wa) & (tag_idx == b)):
                        m.d.comb += Assert(wdata[lo:hi] == tag_val[: hi - lo])
            with m.If(we):
                m.d.comb += Assert(n_wr < len(words))
        m.d.comb += [
            Assert(~(accepted & self.restart)),  # a beat taken in a restart cycle is lost
            Assert(~(accepted & (n_in >= total))),
        ]
        done_due = Signal()  # the whole transfer acted on
        loaded_due = Signal()  # and a cycle more
        done_next = (n_act == total) | (staged & (n_act == total - 1))
        m.d.sync += [done_due.eq(~self.restart & done_next),
                     loaded_due.eq(~self.restart & done_due)]  # fmt: skip
        m.d.comb += Assert(dut.loaded == loaded_due)
        return m
