"""cocotb body: the multiplier seam against mult_golden with random operands."""

from __future__ import annotations

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from hwgen.rtl.mult import mult_golden
from hwgen.sim.tb.common import load_params, rng_from_env, start_clock_and_reset


@cocotb.test()
async def random_products(dut) -> None:
    p = load_params()
    rng = rng_from_env()
    lo_a, hi_a = -(1 << (p["a_width"] - 1)), (1 << (p["a_width"] - 1)) - 1
    lo_b, hi_b = -(1 << (p["b_width"] - 1)), (1 << (p["b_width"] - 1)) - 1
    n = 400
    a = [lo_a, hi_a, lo_a, hi_a] + [rng.randint(lo_a, hi_a) for _ in range(n - 4)]
    b = [lo_b, hi_b, hi_b, lo_b] + [rng.randint(lo_b, hi_b) for _ in range(n - 4)]
    want = mult_golden(a, b, p["latency"])
    await start_clock_and_reset(dut)
    got = []
    for t in range(len(want)):
        dut.a.value = a[t] if t < n else 0
        dut.b.value = b[t] if t < n else 0
        await ReadOnly()
        got.append(dut.p.value.to_signed())
        await RisingEdge(dut.clk)
    for t, w in enumerate(want):
        if w is not None:
            assert got[t] == w, f"cycle {t}: p={got[t]} want {w}"
