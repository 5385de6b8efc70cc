"""Requant lane: bit-exact with fixedpoint.requantize at its fixed latency, in the Amaranth
simulator and in Verilator (cocotb body: sim/tb/requant_tb.py)."""

from __future__ import annotations

import gc
import random

import pytest
from amaranth import Module, Signal
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from hwgen.quant import fixedpoint
from hwgen.rtl.carry import carry_all, carry_any
from hwgen.rtl.requant import Requant, requant_golden
from hwgen.rtl.traits import SmallDeviceSim
from hwgen.sim.runner import run_unit
from hwgen.sim.tb.requant_tb import (
    EDGE_CLAMPS,
    EDGE_FLOORS,
    FIELDS,
    clamp_edge_vectors,
    corner_vectors,
    expected_trace,
    make_run,
)

SEED = 1


def test_carry_reductions_exhaustive() -> None:
    """carry_any / carry_all (the clamp's wide OR / AND on the carry chain) equal != 0 and
    == all ones for every value of a 6-bit vector."""
    v = Signal(6)
    m = Module()
    any_, all_ = Signal(), Signal()
    m.d.comb += [any_.eq(carry_any(v)), all_.eq(carry_all(v))]
    got = []

    async def bench(ctx) -> None:
        for x in range(64):
            ctx.set(v, x)
            got.append((x, ctx.get(any_), ctx.get(all_)))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert got == [(x, int(x != 0), int(x == 63)) for x in range(64)]


def test_requant_golden_corners() -> None:
    # Hand-computed expectations for a few corners, so the golden itself is pinned.
    want = {
        (-(2**31), 0, -(2**31), 0, -128, 127): 127,  # SRDHM saturates
        (1, 0, 2**30, 0, -128, 127): 1,  # +0.5 -> 1
        (-1, 0, 2**30, 0, -128, 127): 0,  # -0.5 -> 0 (toward +inf)
        (6, 0, 2**30, 1, -128, 127): 2,  # RDBPOT 1.5 -> 2
        (-6, 0, 2**30, 1, -128, 127): -2,  # -1.5 -> -2 (away from zero)
        (-1000, 0, 2**31 - 1, 2, 0, 127): 0,  # ReLU
        (2**31 - 1, 1, 2**31 - 1, 31, -128, 127): -1,  # sum wraps to INT32_MIN
    }
    for args, w in want.items():
        assert int(requant_golden(*args)) == w, args
    # expected_trace passes the vector fields positionally: keep them in golden argument order.
    assert FIELDS == ("acc", "bias", "mult", "shift", "lo", "hi")


def test_clamp_edge_vectors_reach_the_edges() -> None:
    """The directed clamp cases round floors across the int8 bounds and the byte boundaries
    (stage D adds the round-up to the low byte only), with each clamp pair among them."""
    vecs = clamp_edge_vectors()
    pairs, clamps = set(), set()
    for v in vecs:
        floor = v["acc"] >> v["shift"]  # SRDHM(acc, 2**31 - 1) = acc here
        y = int(fixedpoint.requantize(v["acc"], v["mult"], v["shift"], 0, -(2**31), 2**31 - 1))
        assert y - floor in (0, 1), v
        pairs.add((floor, y))
        clamps.add((v["lo"], v["hi"]))
    for f in EDGE_FLOORS:
        assert {(f, f), (f, f + 1)} <= pairs, f  # each floor with and without a round-up
    assert clamps == set(EDGE_CLAMPS)
    assert len(clamp_edge_vectors(20)) < len(vecs)  # what a narrow acc port cannot carry


# A component whose constructor raises is still an unused Elaboratable: collect it here,
# inside the filter, instead of warning in some later test.
@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_requant_params() -> None:
    with pytest.raises(ValueError, match=r"^Accumulator width must be an integer in 1..62, not 0$"):
        Requant(acc_width=0)
    with pytest.raises(ValueError, match=r"^Multiplier latency must be an integer >= 1, not 0$"):
        Requant(mult_latency=0)
    gc.collect()
    dut = Requant(mult_latency=3)
    assert dut.latency == 10  # A, 3 product stages, B, C1, C2, D, E1, E2
    Fragment.get(dut, None)  # elaborates (and marks it used: no UnusedElaboratable warning)


@pytest.mark.parametrize(
    "acc_width,mult_latency,gap_prob,fold",
    [(32, 4, 0.0, False), (32, 1, 0.3, False), (40, 3, 0.0, False), (20, 4, 0.5, False),
     (32, 1, 0.3, True)],  # the iCEBreaker's lane (hwgen.rtl.traits.SmallDevice)
)
def test_requant_amaranth_sim(acc_width: int, mult_latency: int, gap_prob: float,
                              fold: bool) -> None:
    dut = Requant(acc_width=acc_width, mult_latency=mult_latency, fold=fold)
    assert dut.latency == mult_latency + (2 if fold else 7)
    rng = random.Random(SEED * 1000 + acc_width + mult_latency)
    vecs, cycles = make_run(rng, acc_width, 1500, gap_prob)
    trace = expected_trace(vecs, cycles, dut.latency)
    beats = dict(zip(cycles, vecs, strict=True))
    errors: list[str] = []

    async def bench(ctx) -> None:
        for t, want in enumerate(trace):
            v = beats.get(t)
            ctx.set(dut.i_stream.valid, v is not None)
            if v is not None:
                ctx.set(dut.i_stream.payload, v)
            valid = ctx.get(dut.o_stream.valid)
            if valid != (want is not None):
                errors.append(f"cycle {t}: o.valid={valid}, want beat {want}")
            elif want is not None and ctx.get(dut.o_stream.payload) != want:
                errors.append(f"cycle {t}: got {ctx.get(dut.o_stream.payload)} want {want}")
            await ctx.tick()

    # the folded lane as the iCEBreaker elaborates it (its traits: no carry-chain tests)
    sim = Simulator(Fragment.get(dut, SmallDeviceSim()) if fold else dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert not errors, "\n".join(errors[:10])
    assert len(vecs) > len(corner_vectors(acc_width))


@pytest.mark.rtl
@pytest.mark.parametrize("acc_width,mult_latency", [(32, 4)])
def test_requant_rtl(acc_width: int, mult_latency: int) -> None:
    dut = Requant(acc_width=acc_width, mult_latency=mult_latency)
    name = f"requant_a{acc_width}_l{mult_latency}"
    params = {"acc_width": acc_width, "latency": dut.latency, "n_random": 6000}
    run_unit(
        dut, toplevel="requant", test_module="hwgen.sim.tb.requant_tb", name=name, params=params,
        seed=SEED,
    )
