"""A deep memory split into block-RAM-sized banks, every bank's output registered.

A memory deeper than one block RAM's 512 words becomes, in yosys, several blocks cascaded in
depth with a multiplexer after their outputs: the read path is then block-RAM clock-to-out
(5.8 ns on ECP5 without the output register) plus LUT levels and long routes. Here the banks
are explicit (``bank_depth`` words each, one block deep at 18 bits), each bank's read data
goes straight into a register (which the board flow moves into the block RAM's own output
register, ``hwgen.boards.outreg``), and the bank select is a registered multiplexer after
that.

Read contract: the word at ``r_addr`` in cycle c is on ``r_data`` in cycle c + READ_LATENCY
(3). A write in cycle c (``w_en``) is registered once (the bank's enable decoded in front
of that register, so every block's write enable, address and data come straight from
flip-flops: timing) and lands at the end of cycle c + 1: it is seen by reads from cycle
c + WRITE_LATENCY (2) on. A read of the word being written in the same cycle is undefined on
the board (``no_rw_check``: no bypass logic after the block RAM) and must not be made.
``write_from_registers=True`` drops that write register, for a caller whose ``w_en``,
``w_addr`` and ``w_data`` are flip-flops already (the loader's commit, address and assembly
register, hwgen.rtl.loader): the write lands at the end of cycle c (``write_latency`` 1) and
the word is not stored twice (1,536 flip-flops for the 12x16's direct weights).

``second_read=True`` adds a second read port (``r2_addr`` / ``r2_data``, the same latency)
on each bank's other block-RAM port: the write shares it (its address is the write's in a
write cycle, else ``r2_addr``), as the activation buffers share theirs (hwgen.rtl.top), so
the banks still take one DP16KD per 18 bits; a second read in a write cycle returns no
defined word (weights are written only while no inference runs).

The registered bank select is copied once per ``SEL_COPY_BITS`` of the word (UNSHARED): the
direct-weight memory is 8·R·C bits wide (768 at 12x8: 43 DP16KD per bank, across the die), and its
one select register fed every output bit's multiplexer, the most congested net of the routed
12x8 (router2's congestion by net, session 29).

``read_addr_copies=True`` registers the read address once more inside, one copy per
``SEL_COPY_BITS`` of the word (UNSHARED), each bank split into parts of that width with their
own block RAMs: each part's address pins are then driven by a flip-flop of its own, not all
by one register across the die (the direct-weight word's read address, the next congested
nets after the select). The read latency is one cycle longer (``read_latency``); the write
and the second read are as before. ``write_addr_copies=True`` (with both of those) takes the
write address and enable as one flip-flop copy per part from the caller (the loader's,
hwgen.rtl.loader ``addr_copies``): ``w_addr`` and ``w_en`` are then arrays, each part's
blocks and bank decode on its own (the 12x16's one write enable reached 43 DP16KD across the
die, 9.20 ns routed on 4e43b88 seed 2).
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, Value, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .attrs import UNSHARED, copies_of
from .delay import registered
from .traits import trait

__all__ = ["BankedMemory", "READ_LATENCY", "WRITE_LATENCY", "banked_golden"]

READ_LATENCY = 3
WRITE_LATENCY = 2  # a write in cycle c is seen by reads from cycle c + 2 on
BANK_DEPTH = 1024  # one ECP5 DP16KD holds 1,024 words of 18 bits (x18: both ports usable)
SEL_COPY_BITS = 36  # output bits per copy of the bank select (two DP16KD side by side)


def banked_golden(writes: list[tuple[int, int]], reads: list[int], depth: int) -> list[int]:
    """Words read at ``reads`` after ``writes`` ((addr, value) in order) on a zeroed memory."""
    mem = [0] * depth
    for a, v in writes:
        mem[a] = v
    return [mem[a] for a in reads]


class BankedMemory(wiring.Component):
    """``depth`` words of ``width`` bits in banks of ``bank_depth``; see the module docstring."""

    def __init__(self, *, width: int, depth: int, bank_depth: int = BANK_DEPTH,
                 second_read: bool = False, write_from_registers: bool = False,
                 read_addr_copies: bool = False, write_addr_copies: bool = False) -> None:
        if width < 1 or depth < 1:
            raise ValueError(f"BankedMemory needs width and depth >= 1, not {width}x{depth}")
        if bank_depth < 1 or bank_depth & (bank_depth - 1):
            raise ValueError(f"bank_depth must be a power of two, not {bank_depth}")
        self.width, self.depth = width, depth
        self.bank_depth = min(bank_depth, 1 << max(0, (depth - 1).bit_length()))
        self.n_banks = -(-depth // self.bank_depth)
        self.second_read = second_read
        self.write_from_registers = write_from_registers
        self.read_addr_copies = read_addr_copies
        if write_addr_copies and not (write_from_registers and read_addr_copies):
            raise ValueError("write_addr_copies needs write_from_registers and read_addr_copies")
        self.write_addr_copies = write_addr_copies
        aw = max(1, (depth - 1).bit_length())
        w_addr, w_en = In(unsigned(aw)), In(1)
        ports = {
            "w_en": w_en.array(self.n_parts) if write_addr_copies else w_en,
            "w_addr": w_addr.array(self.n_parts) if write_addr_copies else w_addr,
            "w_data": In(unsigned(width)),
            "r_addr": In(unsigned(aw)),
            "r_data": Out(unsigned(width)),
        }
        if second_read:
            ports |= {"r2_addr": In(unsigned(aw)), "r2_data": Out(unsigned(width))}
        super().__init__(ports)

    @property
    def write_latency(self) -> int:
        """A write in cycle c is seen by reads from cycle c + write_latency on."""
        return 1 if self.write_from_registers else WRITE_LATENCY

    @property
    def read_latency(self) -> int:
        """The word at ``r_addr`` in cycle c is on ``r_data`` in cycle c + read_latency."""
        return READ_LATENCY + int(self.read_addr_copies)

    @property
    def n_parts(self) -> int:
        """Parts of the word with block RAMs of their own (``_parts``)."""
        return len(self._parts())

    def _parts(self) -> list[tuple[int, int]]:
        """The word's bit ranges with block RAMs (and a read address copy) of their own: one
        per ``SEL_COPY_BITS`` with ``read_addr_copies``, else the whole word."""
        if not self.read_addr_copies:
            return [(0, self.width)]
        k = SEL_COPY_BITS
        return [(i, min(i + k, self.width)) for i in range(0, self.width, k)]

    def elaborate(self, platform) -> Module:
        m = Module()
        lo = max(1, (self.bank_depth - 1).bit_length()) if self.n_banks > 1 else len(self.r_addr)
        parts = self._parts()
        r_addr = self._read_addr(m, len(parts))
        r2_addr = self.r2_addr if self.second_read else None
        late = self._late(platform)
        if late:  # the read addresses registered once more, for the banks' own output words
            r_addr = [registered(m, a, f"r_late{k}") for k, a in enumerate(r_addr)]
            if self.second_read:
                r2_addr = registered(m, r2_addr, "r2_late")
        sel = Signal(range(max(2, self.n_banks)))
        m.d.sync += sel.eq(r_addr[0][lo:])
        sel_d = [sel] * self._n_sel() if late else self._sel_copies(m, sel, "sel_d")
        if self.second_read:
            sel2 = Signal.like(sel)
            m.d.sync += sel2.eq(r2_addr[lo:])
            sel2_d = [sel2] * self._n_sel() if late else self._sel_copies(m, sel2, "sel2_d")
            out2 = 0
        w_addrs, w_data = self._write_regs(m, len(parts))
        out = 0
        for b in range(self.n_banks):
            words = min(self.bank_depth, self.depth - b * self.bank_depth)
            w_ens = self._bank_enables(m, b, lo)
            qs = [self._part(m, f"{b}" if len(parts) == 1 else f"{b}_{k}", words, hi - at,
                             w_ens[k], w_addrs[k][:lo], w_data[at:hi], r_addr[k][:lo], lo,
                             r2_addr, late)
                  for k, (at, hi) in enumerate(parts)]  # fmt: skip
            out = out | self._select(Cat(q for q, _ in qs), sel_d, b)
            if self.second_read:
                out2 = out2 | self._select(Cat(q2 for _, q2 in qs), sel2_d, b)
        r = Signal(self.width, reset_less=True)
        m.d.sync += r.eq(out)
        m.d.comb += self.r_data.eq(r)
        if self.second_read:
            r2 = Signal(self.width, reset_less=True)
            m.d.sync += r2.eq(out2)
            m.d.comb += self.r2_data.eq(r2)
        return m

    def _late(self, platform) -> bool:
        """The small form (trait `bram_output_register` off: a block RAM with no output
        register, whose register after it is a flip-flop of its own): the read address is
        registered once more and each bank's read data goes straight into the select, the
        same read latency, where that stores fewer bits (more word bits over the banks than
        address bits)."""
        if trait(platform, "bram_output_register"):
            return False
        reads = 2 if self.second_read else 1
        addr_bits = len(self.r_addr) * (self.n_parts + reads - 1)
        return self.width * self.n_banks * reads > addr_bits

    def _write_regs(self, m: Module, n: int) -> tuple[list[Value], Value]:
        """The write address of each of the ``n`` parts (its own copy with
        ``write_addr_copies``) and the data: registered here
        (reset-less: a write accepted before a reset still lands), unless the caller's are
        flip-flops already (``write_from_registers``)."""
        if self.write_from_registers:
            return self._write_inputs(self.w_addr), self.w_data
        w_addr = Signal.like(self.w_addr, reset_less=True)
        w_data = Signal.like(self.w_data, reset_less=True)
        m.d.sync += [w_addr.eq(self.w_addr), w_data.eq(self.w_data)]
        return [w_addr] * n, w_data

    def _bank_enables(self, m: Module, b: int, lo: int) -> list[Signal]:
        """Bank ``b``'s write enable of each part, decoded from the part's write address copy
        with ``write_addr_copies`` (the decode beside the part's blocks), else one for all;
        registered with the write unless ``write_from_registers``."""
        n = self.n_parts if self.write_addr_copies else 1
        out = []
        ens, addrs = self._write_inputs(self.w_en)[:n], self._write_inputs(self.w_addr)[:n]
        for k, (en, a) in enumerate(zip(ens, addrs, strict=True)):
            in_bank = (a[lo:] == b) if self.n_banks > 1 else 1
            w_en = Signal(name=f"w_en{b}" + (f"_{k}" if k else ""), reset_less=True)
            m.d["comb" if self.write_from_registers else "sync"] += w_en.eq(en & in_bank)
            out.append(w_en)
        return out * (self.n_parts // len(out))

    def _write_inputs(self, port) -> list[Value]:
        """A write input (``w_en`` or ``w_addr``) of each part: its own copy with
        ``write_addr_copies``, else the one port for every part."""
        return copies_of(port) if self.write_addr_copies else [port] * self.n_parts

    def _read_addr(self, m: Module, n: int) -> list[Value]:
        """The read address of each part: ``r_addr`` itself, or with ``read_addr_copies`` a
        registered copy per part (UNSHARED: equal values, each drives its own blocks)."""
        if not self.read_addr_copies:
            return [self.r_addr]
        copies = [Signal.like(self.r_addr, name=f"r_addr{k}", reset_less=True, attrs=UNSHARED)
                  for k in range(n)]  # fmt: skip
        m.d.sync += [c.eq(self.r_addr) for c in copies]
        return copies

    def _part(self, m: Module, tag: str, words: int, width: int, w_en: Signal, w_addr: Value,
              w_data: Value, r_addr: Value, lo: int, r2_addr: Value | None = None,
              late: bool = False) -> tuple[Value, Value | None]:
        """One bank's block RAMs for one part of the word: its registered read data (and the
        second read's; ``late``: the block's read data itself)."""
        # no_rw_check: a read of the word written in the same cycle is never made (weights
        # are written only while no inference runs), so yosys need not add a bypass mux
        # between the block's read data and the register after it
        mem = memory.Memory(shape=unsigned(width), depth=words, init=[],
                            attrs={"no_rw_check": 1})
        m.submodules[f"bank{tag}"] = mem
        wp, rp = mem.write_port(), mem.read_port()
        q = Signal(width, name=f"q{tag}", reset_less=True)  # -> the block's output register
        m.d.comb += [wp.en.eq(w_en), wp.data.eq(w_data), rp.addr.eq(r_addr)]
        if late:
            q = rp.data
        else:
            m.d.sync += q.eq(rp.data)
        if not self.second_read:
            m.d.comb += wp.addr.eq(w_addr)
            return q, None
        # the second read shares the write's port: one address, the write's in a write
        # cycle (transparent only so that yosys maps both onto one block-RAM port)
        rp2 = mem.read_port(transparent_for=(wp,))
        shared = Signal(lo, name=f"a2_{tag}")
        m.d.comb += [shared.eq(Mux(w_en, w_addr, r2_addr[:lo])),
                     wp.addr.eq(shared), rp2.addr.eq(shared)]
        if late:
            return q, rp2.data
        q2 = Signal(width, name=f"q2_{tag}", reset_less=True)
        m.d.sync += q2.eq(rp2.data)
        return q, q2

    def _n_sel(self) -> int:
        """Copies of the bank select: one per ``SEL_COPY_BITS`` of the word."""
        return -(-self.width // SEL_COPY_BITS) if self.n_banks > 1 else 1

    def _sel_copies(self, m: Module, sel: Signal, name: str) -> list[Signal]:
        """``sel`` one cycle later, one copy per ``SEL_COPY_BITS`` of the word."""
        n = self._n_sel()
        copies = [Signal.like(sel, name=f"{name}{k}" if n > 1 else name, reset_less=True,
                              attrs=UNSHARED if n > 1 else {}) for k in range(n)]
        m.d.sync += [c.eq(sel) for c in copies]
        return copies

    def _select(self, q: Signal, sel_d: list[Signal], b: int) -> Value:
        """``q`` where its part's select copy is ``b``, else 0."""
        k = SEL_COPY_BITS
        parts = [q[i * k:(i + 1) * k] for i in range(len(sel_d))] if len(sel_d) > 1 else [q]
        return Cat(p & (s == b).replicate(len(p)) for p, s in zip(parts, sel_d, strict=True))
