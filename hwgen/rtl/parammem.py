"""The requant parameter memory: one word of ``lanes`` lane records per address, each read
one cycle after its address (READ_LATENCY), written by the model load.

In block RAM (the default) it is one memory with the block RAM's registered read. In LUT
RAM (``lutram=True``: a plan past the device's block RAM, ``bram_budget`` in
hwgen.rtl.traits) one memory as wide as every lane (1,152 bits at 16 columns, 288 LUT-RAM
cells) fans its read address out across the die: address -> LUT RAM -> the read register
was 7.99 ns routed on the 12x16 (docs/sweep.md, session 20). There each lane has a memory of
its own, read asynchronously through its own copy of the address, registered (``UNSHARED``,
so the board flow keeps the copies apart, each beside its lane's cells): the same one cycle
from address to data, the address's fan-out now a register-to-register hop. The write enable
and address come likewise as a copy per lane (``w_en`` and ``w_addr`` are then arrays, the
loader's ``addr_copies``): one write address reached all 288 cells, 8.65 ns on the 12x16 of
4e43b88.

Writes come only from the model load, never in a cycle that reads (``no_rw_check``).
Golden: ``param_memory_golden``.
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from hwgen.rtl.attrs import UNSHARED, copies_of

__all__ = ["READ_LATENCY", "ParamMemory", "param_memory_golden"]

READ_LATENCY = 1  # the word at r_addr in cycle c is on r_data in cycle c + 1


def param_memory_golden(cycles: list[tuple[int | None, int | None, int]]) -> list[int | None]:
    """r_data in each cycle of ``cycles`` ((write address or None, read address or None,
    write word) per cycle) on a zeroed memory: the word read the cycle before, None after a
    cycle without a read. A read and a write never share a cycle."""
    mem: dict[int, int] = {}
    out: list[int | None] = []
    last = None
    for w_addr, r_addr, word in cycles:
        assert w_addr is None or r_addr is None, "no read in a write cycle"
        out.append(last)
        last = None if r_addr is None else mem.get(r_addr, 0)
        if w_addr is not None:
            mem[w_addr] = word
    return out


class ParamMemory(wiring.Component):
    """``depth`` words of ``lanes`` records of ``lane`` layout; see the module docstring."""

    def __init__(self, *, lane: data.Layout, lanes: int, depth: int,
                 lutram: bool = False) -> None:
        if lanes < 1 or depth < 1:
            raise ValueError(f"ParamMemory needs lanes and depth >= 1, not {lanes}x{depth}")
        self.lane, self.lanes, self.depth, self.lutram = lane, lanes, depth, lutram
        self.ram_style = "distributed" if lutram else "block"
        word = data.ArrayLayout(lane, lanes)
        addr = range(max(depth, 2))
        k = self.write_copies
        w_en, w_addr = In(1), In(addr)
        super().__init__({"w_en": w_en.array(k) if k > 1 else w_en,
                          "w_addr": w_addr.array(k) if k > 1 else w_addr, "w_data": In(word),
                          "r_addr": In(addr), "r_data": Out(word)})  # fmt: skip

    @property
    def write_copies(self) -> int:
        """Copies of the write enable and address the memory takes: one per lane in LUT RAM."""
        return self.lanes if self.lutram else 1

    def _memory(self, shape) -> memory.Memory:
        return memory.Memory(shape=shape, depth=self.depth, init=[],
                             attrs={"ram_style": self.ram_style, "no_rw_check": 1})

    def elaborate(self, platform) -> Module:
        m = Module()
        if not self.lutram:  # one memory, the block RAM's registered read
            m.submodules.mem = mem = self._memory(data.ArrayLayout(self.lane, self.lanes))
            self._write(m, mem, self.w_data, self.w_en, self.w_addr)
            r = mem.read_port()
            m.d.comb += [r.addr.eq(self.r_addr), self.r_data.eq(r.data)]
            return m
        for j in range(self.lanes):  # a memory and a registered address copy per lane
            m.submodules[f"lane{j}"] = mem = self._memory(self.lane)
            k = j if self.write_copies > 1 else 0  # (one lane: a single copy)
            en, addr = copies_of(self.w_en)[k], copies_of(self.w_addr)[k]
            self._write(m, mem, self.w_data[j], en, addr)
            a = Signal.like(self.r_addr, name=f"r_addr{j}", reset_less=True, attrs=UNSHARED)
            r = mem.read_port(domain="comb")
            m.d.sync += a.eq(self.r_addr)
            m.d.comb += [r.addr.eq(a), self.r_data[j].eq(r.data)]
        return m

    def _write(self, m: Module, mem: memory.Memory, word, en, addr) -> None:
        w = mem.write_port()
        m.d.comb += [w.en.eq(en), w.addr.eq(addr), w.data.eq(word)]
