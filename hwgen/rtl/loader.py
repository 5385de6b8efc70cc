"""Model transfer: a stream of 32-bit beats fills the weight and parameter memories.

The image (built by hwgen.emit.images) is the conv weight memory, then the direct weight
memory, then the requant parameter memory, each word sent as ceil(width/32) little-endian
beats. Each beat is `BEAT_LAYOUT` = {data: 32 bits, last}: `last` marks the final beat.

* `restart` rewinds to the first word and drops `loaded`.
* `loaded` goes high when the final expected beat arrives with `last`; from then on no beat
  is taken until `restart`. It is a reset-less register: the memories keep their contents
  through a design reset, so a loaded model stays usable after one.
* A wrong length is reported, never absorbed. `last` before the final expected beat pulses
  `err_short`; the final expected beat without `last` pulses `err_long` and the following
  beats are discarded up to and including the next `last`. Either way `loaded` stays low and
  the loader is rewound, ready for a fresh transfer (no `restart` needed).
"""

from __future__ import annotations

from amaranth import Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BEAT_LAYOUT", "LoaderModel", "WeightLoader", "beats_per_word"]

BEAT_LAYOUT = data.StructLayout({"data": unsigned(32), "last": 1})


def beats_per_word(width: int) -> int:
    return -(-width // 32)


class WeightLoader(wiring.Component):
    def __init__(self, *, regions: list[tuple[int, int]]) -> None:
        """regions: (word width in bits, depth) of each memory, in load order."""
        self.regions = regions
        self.max_width = max(w for w, _ in regions)
        ports: dict = {
            "i_stream": In(stream.Signature(BEAT_LAYOUT)),
            "restart": In(1),
            "loaded": Out(1),
            "err_short": Out(1),
            "err_long": Out(1),
        }
        for n, (w, dpt) in enumerate(regions):
            ports[f"we{n}"] = Out(1)
            ports[f"addr{n}"] = Out(range(max(dpt, 2)))
            ports[f"data{n}"] = Out(unsigned(w))
        super().__init__(ports)

    def elaborate(self, platform) -> Module:
        m = Module()
        nreg = len(self.regions)
        region = Signal(range(nreg))
        addr = Signal(range(max(d for _, d in self.regions) + 1))
        beat = Signal(range(max(beats_per_word(w) for w, _ in self.regions) + 1))
        acc = Signal(beats_per_word(self.max_width) * 32)
        commit = Signal()
        commit_region = Signal.like(region)
        commit_addr = Signal.like(addr)
        loaded = Signal(reset_less=True)  # survives a design reset, like the memories
        discard = Signal()  # dropping the tail of a too-long transfer up to its `last`
        rewind = [region.eq(0), addr.eq(0), beat.eq(0)]

        m.d.comb += [
            self.loaded.eq(loaded),
            # no beat is taken in a restart cycle: it would be dropped by the rewind
            self.i_stream.ready.eq(~loaded & ~self.restart),
        ]
        for n, (w, _) in enumerate(self.regions):
            m.d.comb += [
                getattr(self, f"we{n}").eq(commit & (commit_region == n)),
                getattr(self, f"addr{n}").eq(commit_addr),
                getattr(self, f"data{n}").eq(acc[:w]),
            ]
        take = self.i_stream.valid & self.i_stream.ready
        is_last = self.i_stream.payload.last
        m.d.sync += commit.eq(0)
        with m.If(self.restart):
            m.d.sync += [*rewind, loaded.eq(0), discard.eq(0)]
        with m.Elif(take & discard):
            with m.If(is_last):
                m.d.sync += discard.eq(0)
        with m.Elif(take):
            m.d.sync += acc.word_select(beat, 32).eq(self.i_stream.payload.data)
            final = Signal()  # this beat is the final expected one
            for n, (w, dpt) in enumerate(self.regions):
                with m.If(region == n):
                    with m.If(beat == beats_per_word(w) - 1):
                        m.d.sync += [
                            beat.eq(0),
                            commit.eq(1),
                            commit_region.eq(n),
                            commit_addr.eq(addr),
                        ]
                        with m.If(addr == dpt - 1):
                            m.d.sync += addr.eq(0)
                            if n == nreg - 1:
                                m.d.comb += final.eq(1)
                            else:
                                m.d.sync += region.eq(n + 1)
                        with m.Else():
                            m.d.sync += addr.eq(addr + 1)
                    with m.Else():
                        m.d.sync += beat.eq(beat + 1)
            with m.If(final):
                m.d.sync += rewind
                with m.If(is_last):
                    m.d.sync += loaded.eq(1)
                with m.Else():
                    m.d.comb += self.err_long.eq(1)
                    m.d.sync += discard.eq(1)
            with m.Elif(is_last):
                m.d.comb += self.err_short.eq(1)
                m.d.sync += rewind
        return m


class LoaderModel:
    """Golden model of the WeightLoader, one accepted beat at a time: which beats are taken,
    what each memory holds, `loaded`, and which beat raised a length fault."""

    def __init__(self, regions: list[tuple[int, int]]) -> None:
        self.regions = regions
        self.mems: list[dict[int, int]] = [{} for _ in regions]
        self.loaded = False
        self.restart()

    def restart(self) -> None:
        self.reset()
        self.loaded = False

    def reset(self) -> None:
        """A design reset: the transfer position rewinds, `loaded` (reset-less) stays."""
        self.region = self.addr = self.beat = 0
        self.words: list[int] = []
        self.discard = False

    @property
    def ready(self) -> bool:
        return not self.loaded

    def beat_in(self, data: int, last: bool) -> str | None:
        """One accepted beat; returns "short" / "long" when it raises that fault."""
        assert self.ready
        if self.discard:
            self.discard = not last
            return None
        w, depth = self.regions[self.region]
        self.words.append(data)
        if len(self.words) < beats_per_word(w):
            if last:
                self.reset()
                return "short"
            return None
        word = sum(b << (32 * i) for i, b in enumerate(self.words)) & ((1 << w) - 1)
        self.mems[self.region][self.addr] = word
        self.words = []
        self.addr += 1
        if self.addr == depth:
            self.addr = 0
            self.region += 1
        if self.region == len(self.regions):
            self.reset()
            if last:
                self.loaded = True
                return None
            self.discard = True
            return "long"
        if last:
            self.reset()
            return "short"
        return None
