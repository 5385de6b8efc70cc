"""cocotb body: the multiplier seam against mult_golden.

Operands are random (with the extreme corners first), or with ``exhaustive`` every pair of
``a_width``-bit by ``b_width``-bit signed operands (65,536 for int8), one per cycle.
"""

from __future__ import annotations

import itertools

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from hwgen.rtl.mult import mult_golden
from hwgen.sim.tb.common import load_params, rng_from_env, start_clock_and_reset


def _operands(p: dict) -> tuple[list[int], list[int]]:
    lo_a, hi_a = -(1 << (p["a_width"] - 1)), (1 << (p["a_width"] - 1)) - 1
    lo_b, hi_b = -(1 << (p["b_width"] - 1)), (1 << (p["b_width"] - 1)) - 1
    if p.get("exhaustive"):
        pairs = list(itertools.product(range(lo_a, hi_a + 1), range(lo_b, hi_b + 1)))
        return [x for x, _ in pairs], [y for _, y in pairs]
    rng = rng_from_env()
    n = p.get("n", 400)
    a = [lo_a, hi_a, lo_a, hi_a, 0, -1] + [rng.randint(lo_a, hi_a) for _ in range(n - 6)]
    b = [lo_b, hi_b, hi_b, lo_b, -1, 0] + [rng.randint(lo_b, hi_b) for _ in range(n - 6)]
    return a, b


@cocotb.test()
async def products(dut) -> None:
    p = load_params()
    a, b = _operands(p)
    n = len(a)
    want = mult_golden(a, b, p["latency"])
    await start_clock_and_reset(dut)
    got = []
    for t in range(len(want)):
        dut.a.value = a[t] if t < n else 0
        dut.b.value = b[t] if t < n else 0
        await ReadOnly()
        got.append(dut.p.value.to_signed())
        await RisingEdge(dut.clk)
    checked = 0
    for t, w in enumerate(want):
        if w is not None:
            i = t - p["latency"]
            assert got[t] == w, f"cycle {t}: {a[i]}*{b[i]}: p={got[t]} want {w}"
            checked += 1
    assert checked == n
