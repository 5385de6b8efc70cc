"""RegSlice (hwgen/rtl/regslice.py) in the Amaranth simulator: every cycle equal to
`slice_step`, every beat delivered once and in order under random valid/ready back-pressure,
the stream rules on both sides, and a beat a cycle while downstream ready stays high."""

from __future__ import annotations

import random

import pytest
from amaranth import Value
from amaranth.lib import data
from amaranth.sim import Simulator

from hwgen.rtl.loader import BEAT_LAYOUT
from hwgen.rtl.regslice import RegSlice, slice_step
from hwgen.rtl.transfer import IMAGE_LAYOUT


def test_slice_step_golden() -> None:
    st = (None, None)
    out, st = slice_step(st, True, 1, False)  # taken into the (empty) output register
    assert out == {"i_ready": True, "o_valid": False, "o_data": None} and st == (1, None)
    out, st = slice_step(st, True, 2, False)  # output held: 2 waits in the skid register
    assert out["o_valid"] and out["i_ready"] and st == (1, 2)
    out, st = slice_step(st, True, 3, False)  # full: 3 is not taken
    assert not out["i_ready"] and st == (1, 2)
    out, st = slice_step(st, True, 3, True)  # 1 leaves, the skid's 2 moves up, 3 still waits
    assert out["o_data"] == 1 and not out["i_ready"] and st == (2, None)
    out, st = slice_step(st, True, 3, True)
    assert out["o_data"] == 2 and out["i_ready"] and st == (3, None)
    out, st = slice_step(st, False, 9, True)
    assert out["o_data"] == 3 and st == (None, None)


def _bench(layout: data.Layout, beats: list[int], p_valid: float, p_ready: float,
           seed: int, valid_copy: bool = False) -> dict:
    """Drive `beats` through a RegSlice: the source offers with probability p_valid (and holds
    an offered beat until taken), the sink is ready with probability p_ready. With
    `valid_copy`, its o_valid_copy must equal o.valid in every cycle."""
    rng = random.Random(seed)
    dut = RegSlice(layout, valid_copy=valid_copy)
    log: dict = {"got": [], "errors": [], "cycles": 0, "i_ready_low": 0}
    mask = (1 << layout.size) - 1

    async def bench(ctx) -> None:
        st, k, offered, held = (None, None), 0, False, None
        cycles = 0
        while len(log["got"]) < len(beats):
            assert cycles < 50 * len(beats) + 100, "the slice stopped delivering"
            offered = k < len(beats) and (offered or rng.random() < p_valid)
            o_ready = rng.random() < p_ready
            ctx.set(dut.i.valid, offered)
            # an idle source drives garbage: it must never be taken
            ctx.set(Value.cast(dut.i.payload), beats[k] if offered else rng.getrandbits(32) & mask)
            ctx.set(dut.o.ready, o_ready)
            want, st = slice_step(st, offered, beats[k] if offered else None, o_ready)
            got = {"i_ready": bool(ctx.get(dut.i.ready)), "o_valid": bool(ctx.get(dut.o.valid)),
                   "o_data": ctx.get(Value.cast(dut.o.payload))}  # fmt: skip
            if valid_copy and ctx.get(dut.o_valid_copy) != got["o_valid"]:
                log["errors"].append(f"cycle {cycles}: o_valid_copy != o.valid")
            if not got["o_valid"]:
                got["o_data"] = None
            if got != want:
                log["errors"].append(f"cycle {cycles}: {got} != golden {want}")
            if held is not None and got["o_data"] != held:  # valid & ~ready holds the beat
                log["errors"].append(f"cycle {cycles}: held beat {held} changed to {got}")
            held = got["o_data"] if got["o_valid"] and not o_ready else None
            if got["o_valid"] and o_ready:
                log["got"].append(got["o_data"])
            if offered and got["i_ready"]:
                k, offered = k + 1, False
            log["i_ready_low"] += not got["i_ready"]
            await ctx.tick()
            cycles += 1
        log["cycles"] = cycles

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return log


@pytest.mark.parametrize("layout", [IMAGE_LAYOUT, BEAT_LAYOUT], ids=["image", "beat"])
@pytest.mark.parametrize(("p_valid", "p_ready", "seed"),
                         [(0.5, 0.5, 1), (0.9, 0.3, 2), (0.3, 0.9, 3), (1.0, 0.6, 4)])
def test_random_backpressure(layout: data.Layout, p_valid: float, p_ready: float,
                             seed: int) -> None:
    rng = random.Random(seed)
    beats = [rng.getrandbits(layout.size) for _ in range(400)]
    log = _bench(layout, beats, p_valid, p_ready, seed)
    assert not log["errors"], log["errors"][:5]
    assert log["got"] == beats, "beats lost, duplicated or reordered"
    if p_ready < 0.9:  # the skid register was used: ready did drop
        assert log["i_ready_low"] > 0


@pytest.mark.parametrize(("p_valid", "p_ready", "seed"), [(0.5, 0.5, 6), (0.9, 0.3, 7)])
def test_valid_copy(p_valid: float, p_ready: float, seed: int) -> None:
    """The image's slice in the Accelerator: its valid's copy equals valid in every cycle,
    each a flip-flop of its own (UNSHARED, so the board flow keeps both)."""
    rng = random.Random(seed)
    beats = [rng.getrandbits(IMAGE_LAYOUT.size) for _ in range(300)]
    log = _bench(IMAGE_LAYOUT, beats, p_valid, p_ready, seed, valid_copy=True)
    assert not log["errors"], log["errors"][:5]
    assert log["got"] == beats
    from amaranth.hdl import Fragment

    from hwgen.rtl.attrs import NOMERGE

    frag = Fragment.get(RegSlice(IMAGE_LAYOUT, valid_copy=True), None)
    regs = {s.name: s for d in frag.statements.values() for st in d for s in st._lhs_signals()}
    assert {n for n, s in regs.items() if s.attrs.get(NOMERGE)} == {"o_valid", "o_valid_copy"}


def test_full_throughput() -> None:
    """Ready always high: a beat a cycle, one cycle of latency, upstream ready never low."""
    beats = list(range(200))
    log = _bench(IMAGE_LAYOUT, beats, 1.0, 1.0, 5)
    assert not log["errors"], log["errors"][:5]
    assert log["got"] == beats
    assert log["cycles"] == len(beats) + 1 and log["i_ready_low"] == 0


def test_small_device_slice_is_a_wire() -> None:
    """With the small device's traits (``stream_slices`` False) the slice is a plain wire:
    valid, payload and ready pass in the same cycle, no register in between."""
    from amaranth.hdl import Fragment

    from hwgen.rtl.traits import SmallDeviceSim

    dut = RegSlice(IMAGE_LAYOUT)
    rng = random.Random(3)
    errors: list[str] = []

    async def bench(ctx) -> None:
        for t in range(100):
            v, r, d = rng.random() < 0.5, rng.random() < 0.5, rng.getrandbits(IMAGE_LAYOUT.size)
            ctx.set(dut.i.valid, v)
            ctx.set(Value.cast(dut.i.payload), d)
            ctx.set(dut.o.ready, r)
            got = (ctx.get(dut.o.valid), ctx.get(Value.cast(dut.o.payload)), ctx.get(dut.i.ready))
            if got != (v, d, r):
                errors.append(f"cycle {t}: {got} != {(v, d, r)}")
            await ctx.delay(1e-8)

    sim = Simulator(Fragment.get(dut, SmallDeviceSim()))  # (no clock: nothing is clocked)
    sim.add_testbench(bench)
    sim.run()
    assert not errors, errors[:5]


def test_unregistered_slice_is_a_wire() -> None:
    """``registered=False`` (the Accelerator's image slice off the large device): a wire on
    any platform, the valid's copy too."""
    from amaranth.hdl import Fragment

    dut = RegSlice(IMAGE_LAYOUT, valid_copy=True, registered=False)
    frag = Fragment.get(dut, None)
    assert not any(frag.statements.get("sync", [])), "a register in an unregistered slice"
    errors: list[str] = []

    async def bench(ctx) -> None:
        for v in (0, 1, 1, 0):
            ctx.set(dut.i.valid, v)
            ctx.set(dut.o.ready, 1 - v)
            got = (ctx.get(dut.o.valid), ctx.get(dut.o_valid_copy), ctx.get(dut.i.ready))
            if got != (v, v, 1 - v):
                errors.append(f"{got} != {(v, v, 1 - v)}")
            await ctx.delay(1e-8)

    sim = Simulator(frag)
    sim.add_testbench(bench)
    sim.run()
    assert not errors, errors
