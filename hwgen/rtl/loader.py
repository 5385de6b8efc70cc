"""Model transfer: a stream of 32-bit beats fills the program and the weight memories.

The transfer (built by hwgen.emit.images.weight_beats) is one header word (HEADER_LAYOUT of
descriptor.py), then each region in order: the descriptor (program) memory, the conv weight
memory, the direct weight memory, the requant parameter memory. Every word is sent as
ceil(width/32) little-endian beats. The header gives each region's word count, so a design
sized for the largest model loads any smaller one; a header whose magic is wrong or whose
counts are 0 or exceed a memory's depth is refused: `error` rises and the remaining beats are
accepted and dropped, nothing is written and `loaded` stays low. `restart` rewinds to the
header; `loaded` is high once every region is written. No cycle stalls the stream: `ready` is
~loaded & ~restart.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["WeightLoader", "beats_per_word"]


def beats_per_word(width: int) -> int:
    return -(-width // 32)


class WeightLoader(wiring.Component):
    def __init__(
        self,
        *,
        header: data.StructLayout,
        magic: int,
        regions: list[tuple[str, int, int]],
    ) -> None:
        """header: layout of the first word (with a `magic` field); regions: (header field
        giving the word count, word width in bits, memory depth) of each memory, in load order."""
        self.header_layout = header
        self.magic = magic
        self.regions = regions
        ports: dict = {
            "i_stream": In(stream.Signature(unsigned(32))),
            "restart": In(1),
            "loaded": Out(1),
            "error": Out(1),
            "header": Out(header),
        }
        for n, (_, w, dpt) in enumerate(regions):
            ports[f"we{n}"] = Out(1)
            ports[f"addr{n}"] = Out(range(max(dpt, 2)))
            ports[f"data{n}"] = Out(unsigned(w))
        super().__init__(ports)

    def elaborate(self, platform) -> Module:
        m = Module()
        nreg = len(self.regions)
        HDR, LOADED, BAD = 0, nreg + 1, nreg + 2  # states; region n is state n+1
        state = Signal(range(nreg + 3))
        bpw = [beats_per_word(self.header_layout.size)]
        bpw += [beats_per_word(w) for _, w, _ in self.regions]
        addr = Signal(range(max(d for *_, d in self.regions) + 1))
        beat = Signal(range(max(bpw) + 1))
        acc = Signal(max(bpw) * 32)
        commit = Signal()
        commit_region = Signal(range(nreg + 1))
        commit_addr = Signal.like(addr)
        take = Signal()

        m.d.comb += [
            self.loaded.eq(state == LOADED),
            self.error.eq(state == BAD),
            # no beat is taken in a restart cycle: it would be dropped by the rewind
            self.i_stream.ready.eq((state != LOADED) & ~self.restart),
            take.eq(self.i_stream.valid & self.i_stream.ready),
        ]
        for n, (_, w, _) in enumerate(self.regions):
            m.d.comb += [
                getattr(self, f"we{n}").eq(commit & (commit_region == n)),
                getattr(self, f"addr{n}").eq(commit_addr),
                getattr(self, f"data{n}").eq(acc[:w]),
            ]

        # The header completed by this beat (acc with the current beat in place): checked and
        # latched in the same cycle, so the first region's beat may follow without a stall.
        beats = [acc[32 * k : 32 * k + 32] for k in range(bpw[0])]
        word = Cat(*[Mux(beat == k, self.i_stream.payload, b) for k, b in enumerate(beats)])
        new_hdr = self.header_layout(word[: self.header_layout.size])
        ok = new_hdr.magic == self.magic
        for field, _, dpt in self.regions:
            ok &= (new_hdr[field] != 0) & (new_hdr[field] <= dpt)

        m.d.sync += commit.eq(0)
        with m.If(self.restart):
            m.d.sync += [state.eq(HDR), addr.eq(0), beat.eq(0)]
        with m.Elif(take):
            m.d.sync += acc.word_select(beat, 32).eq(self.i_stream.payload)
            with m.Switch(state):
                with m.Case(HDR):
                    with m.If(beat == bpw[0] - 1):
                        m.d.sync += [beat.eq(0), addr.eq(0)]
                        with m.If(ok):
                            m.d.sync += [self.header.eq(new_hdr), state.eq(1)]
                        with m.Else():
                            m.d.sync += state.eq(BAD)
                    with m.Else():
                        m.d.sync += beat.eq(beat + 1)
                for n, (field, _, _) in enumerate(self.regions):
                    with m.Case(n + 1):
                        with m.If(beat == bpw[n + 1] - 1):
                            m.d.sync += [beat.eq(0), commit.eq(1)]
                            m.d.sync += [commit_region.eq(n), commit_addr.eq(addr)]
                            with m.If(addr == self.header[field] - 1):  # the region's last word
                                m.d.sync += [addr.eq(0), state.eq(n + 2)]
                            with m.Else():
                                m.d.sync += addr.eq(addr + 1)
                        with m.Else():
                            m.d.sync += beat.eq(beat + 1)
        return m
