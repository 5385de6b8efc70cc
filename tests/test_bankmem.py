"""BankedMemory: every word read back equals the golden memory, READ_LATENCY cycles after its
address (one more with ``read_addr_copies``), across bank boundaries, for single- and multi-bank
sizes, words wider than one copy of the bank select."""

from __future__ import annotations

import random
import re

import pytest
from amaranth import Fragment
from amaranth.back import rtlil
from amaranth.sim import Simulator

from hwgen.rtl.bankmem import (
    READ_LATENCY,
    SEL_COPY_BITS,
    WRITE_LATENCY,
    BankedMemory,
    banked_golden,
)
from hwgen.rtl.traits import SmallDeviceSim


@pytest.mark.parametrize(("from_regs", "copies", "w_copies"),
                         [(False, False, False), (True, False, False), (False, True, False),
                          (True, True, False), (True, True, True)])  # fmt: skip
@pytest.mark.parametrize("second", [False, True])
@pytest.mark.parametrize(("width", "depth", "bank_depth"),
                         [(8, 5, 512), (16, 40, 8), (12, 33, 16), (80, 20, 8)])
@pytest.mark.parametrize("platform", [None, SmallDeviceSim()], ids=["default", "small"])
def test_reads_match_golden(width: int, depth: int, bank_depth: int, second: bool,
                            from_regs: bool, copies: bool, w_copies: bool, platform) -> None:
    """Both read ports (``second_read``: the second shares the write's block-RAM port), the
    write registered or not (``write_from_registers``), the read address copied per part of
    the word or not (``read_addr_copies``: the first port one cycle later), the write address
    given per part (``write_addr_copies``, with the caller's registers only); with the small
    device's traits (no block-RAM output register: the address registered instead where that
    is fewer bits) the same words at the same latency."""
    rng = random.Random(depth)
    dut = BankedMemory(width=width, depth=depth, bank_depth=bank_depth, second_read=second,
                       write_from_registers=from_regs, read_addr_copies=copies,
                       write_addr_copies=w_copies)
    assert dut.read_latency == READ_LATENCY + copies
    reads2 = [rng.randrange(depth) for _ in range(4 * depth)]
    got2: list[int] = []
    writes = [(a, rng.getrandbits(width)) for a in rng.sample(range(depth), depth)]
    writes += [(rng.randrange(depth), rng.getrandbits(width)) for _ in range(depth)]
    reads = [rng.randrange(depth) for _ in range(3 * depth)] + list(range(depth))
    got: list[int] = []

    async def bench(ctx) -> None:
        for a, v in writes:
            for port in dut.w_en if w_copies else [dut.w_en]:
                ctx.set(port, 1)
            for port in dut.w_addr if w_copies else [dut.w_addr]:
                ctx.set(port, a)
            ctx.set(dut.w_data, v)
            await ctx.tick()
        for port in dut.w_en if w_copies else [dut.w_en]:
            ctx.set(port, 0)
        for _ in range(dut.write_latency - 1):  # the last write lands
            await ctx.tick()
        lat = dut.read_latency  # (the second port's is READ_LATENCY)
        for t in range(len(reads) + lat):
            if t < len(reads):
                ctx.set(dut.r_addr, reads[t])
                if second:
                    ctx.set(dut.r2_addr, reads2[t])
            if t >= lat:
                got.append(ctx.get(dut.r_data))
            if second and READ_LATENCY <= t < len(reads) + READ_LATENCY:
                got2.append(ctx.get(dut.r2_data))
            await ctx.tick()

    sim = Simulator(Fragment.get(dut, platform))
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got == banked_golden(writes, reads, depth)
    if second:
        assert got2 == banked_golden(writes, reads2[: len(reads)], depth)
    assert dut.n_banks == -(-depth // dut.bank_depth)


@pytest.mark.parametrize(("from_regs", "latency"), [(False, WRITE_LATENCY), (True, 1)])
@pytest.mark.parametrize("bank_depth", [512, 8])
def test_write_latency(bank_depth: int, from_regs: bool, latency: int) -> None:
    """A write in cycle c is read back by a read made in cycle c + write_latency (2, or 1
    without the write register); a read made in cycle c (before it lands) still returns the
    old word."""
    dut = BankedMemory(width=8, depth=16, bank_depth=bank_depth, write_from_registers=from_regs)
    assert dut.write_latency == latency
    got: list[int] = []

    async def bench(ctx) -> None:
        ctx.set(dut.w_en, 1)
        ctx.set(dut.w_addr, 9)
        ctx.set(dut.w_data, 0x5A)
        ctx.set(dut.r_addr, 9)  # cycle c: read before the write
        await ctx.tick()
        ctx.set(dut.w_en, 0)
        for _ in range(latency - 1):
            await ctx.tick()
        for _ in range(READ_LATENCY):  # cycle c + latency: the same address again
            got.append(ctx.get(dut.r_data))
            await ctx.tick()
        got.append(ctx.get(dut.r_data))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    # r_data in cycle c + 3 is the read of cycle c (old word 0); in c + latency + 3 the new
    assert got[READ_LATENCY - latency] == 0
    assert got[-1] == 0x5A


def test_bad_sizes() -> None:
    with pytest.raises(ValueError, match="power of two"):
        BankedMemory(width=8, depth=10, bank_depth=6)
    with pytest.raises(ValueError, match="width and depth"):
        BankedMemory(width=0, depth=10)
    with pytest.raises(ValueError, match="write_addr_copies needs"):
        BankedMemory(width=8, depth=10, read_addr_copies=True, write_addr_copies=True)


@pytest.mark.parametrize("second", [False, True])
def test_bank_select_copied_per_part_of_the_word(second: bool) -> None:
    """An 80-bit word in 3 banks: its select register in 3 UNSHARED copies (36 + 36 + 8 bits),
    per read port; one bank: no select copies at all."""
    from amaranth.back import rtlil

    text = rtlil.convert(BankedMemory(width=80, depth=20, bank_depth=8, second_read=second))
    n = -(-80 // SEL_COPY_BITS)
    for name in ["sel_d", *(["sel2_d"] if second else [])]:
        copies = re.findall(rf"^ *wire width 2 \\{name}(\d+)$", text, flags=re.M)
        assert sorted(map(int, copies)) == list(range(n)), (name, copies)
    assert text.count("hwgen_nomerge") >= n * (1 + second)
    one = rtlil.convert(BankedMemory(width=80, depth=8, bank_depth=8, second_read=second))
    assert "sel_d0" not in one


def test_read_address_copied_per_part_of_the_word() -> None:
    """``read_addr_copies``: an 80-bit word in 3 parts (36 + 36 + 8 bits), each with its own
    UNSHARED read-address register and its own memory per bank; without it, one memory per
    bank and no copies."""
    from amaranth.back import rtlil

    n = -(-80 // SEL_COPY_BITS)
    text = rtlil.convert(BankedMemory(width=80, depth=20, bank_depth=8, read_addr_copies=True))
    assert sorted(map(int, re.findall(r"^ *wire width 5 \\r_addr(\d+)$", text, flags=re.M))) \
        == list(range(n))
    mems = re.findall(r"^ *memory width (\d+) size \d+ \\bank(\d+_\d+)$", text, flags=re.M)
    assert sorted(mems) == sorted((str(w), f"{b}_{k}") for b in range(3)
                                  for k, w in enumerate([36, 36, 8]))
    plain = rtlil.convert(BankedMemory(width=80, depth=20, bank_depth=8))
    assert "r_addr0" not in plain
    assert len(re.findall(r"^ *memory width 80 size \d+ \\bank\d+$", plain, flags=re.M)) == 3


def test_small_device_registers_the_address_not_the_banks_words() -> None:
    """Without a block-RAM output register (the small device's traits) a memory of more word
    bits over its banks than address bits registers the read address once more and no bank's
    word (q*); one of fewer (a single narrow bank) keeps its word register."""
    four = BankedMemory(width=8, depth=40, bank_depth=16)  # 4 banks x 8 bits > 6 address bits
    text = rtlil.convert(four, platform=SmallDeviceSim())
    assert "r_late0" in text and not re.search(r"wire width 8 \\q\d", text)
    assert re.search(r"wire width 8 \\q\d", rtlil.convert(BankedMemory(width=8, depth=40,
                                                                     bank_depth=16)))
    one = BankedMemory(width=8, depth=300, bank_depth=512)  # 8 bits, 9 address bits
    text = rtlil.convert(one, platform=SmallDeviceSim())
    assert "r_late" not in text and re.search(r"wire width 8 \\q0", text)
