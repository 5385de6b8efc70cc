"""Model transfer: a stream of 32-bit beats fills the weight and parameter memories.

The image (built by hwgen.emit.images) is the conv weight memory, then the direct weight
memory, then the requant parameter memory, each word sent as ceil(width/32) little-endian
beats. `restart` rewinds to the first word; `loaded` is high once every word is written.
"""

from __future__ import annotations

from amaranth import Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["WeightLoader", "beats_per_word"]


def beats_per_word(width: int) -> int:
    return -(-width // 32)


class WeightLoader(wiring.Component):
    def __init__(self, *, regions: list[tuple[int, int]]) -> None:
        """regions: (word width in bits, depth) of each memory, in load order."""
        self.regions = regions
        self.max_width = max(w for w, _ in regions)
        ports: dict = {
            "i_stream": In(stream.Signature(unsigned(32))),
            "restart": In(1),
            "loaded": Out(1),
        }
        for n, (w, dpt) in enumerate(regions):
            ports[f"we{n}"] = Out(1)
            ports[f"addr{n}"] = Out(range(max(dpt, 2)))
            ports[f"data{n}"] = Out(unsigned(w))
        super().__init__(ports)

    def elaborate(self, platform) -> Module:
        m = Module()
        nreg = len(self.regions)
        region = Signal(range(nreg + 1))
        addr = Signal(range(max(d for _, d in self.regions) + 1))
        beat = Signal(range(max(beats_per_word(w) for w, _ in self.regions) + 1))
        acc = Signal(beats_per_word(self.max_width) * 32)
        commit = Signal()
        commit_region = Signal.like(region)
        commit_addr = Signal.like(addr)

        m.d.comb += [
            self.loaded.eq(region == nreg),
            # no beat is taken in a restart cycle: it would be dropped by the rewind
            self.i_stream.ready.eq((region != nreg) & ~self.restart),
        ]
        for n, (w, _) in enumerate(self.regions):
            m.d.comb += [
                getattr(self, f"we{n}").eq(commit & (commit_region == n)),
                getattr(self, f"addr{n}").eq(commit_addr),
                getattr(self, f"data{n}").eq(acc[:w]),
            ]
        m.d.sync += commit.eq(0)
        with m.If(self.restart):
            m.d.sync += [region.eq(0), addr.eq(0), beat.eq(0)]
        with m.Elif(self.i_stream.valid & self.i_stream.ready):
            m.d.sync += acc.word_select(beat, 32).eq(self.i_stream.payload)
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
                            m.d.sync += [addr.eq(0), region.eq(n + 1)]
                        with m.Else():
                            m.d.sync += addr.eq(addr + 1)
                    with m.Else():
                        m.d.sync += beat.eq(beat + 1)
        return m
