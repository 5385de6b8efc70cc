# amaranth: UnusedElaboratable=no
"""SystolicArray's second weight stream (``inject_row`` = Q, the two-stream remainder tiles):
rows Q.. of a tile whose weights enter at row Q compute another K part than rows 0..Q-1, and
the tiles before and after it (plain conv tiles, the chain through row Q) are unchanged.
Every result integer and its cycle are checked against ``systolic_golden``."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from hwgen.config import ArrayConfig
from hwgen.rtl.systolic import SystolicArray, systolic_golden


def _run(R: int, C: int, Q: int, ks: list[int], inject: list[bool], seed: int):
    """Tiles issued back to back (interval max(K, R)); returns (expected, got) results as
    {(cycle, column): value} for every valid col_out."""
    rng = np.random.default_rng(seed)
    cfg = ArrayConfig(rows=R, cols=C, mult_latency=3)
    dut = SystolicArray(cfg, inject_row=Q)
    horizon = sum(max(k, R) for k in ks) + R + C + dut.out_latency + 8
    tok = [[(0, 0, 0, 0)] * R for _ in range(horizon)]  # (valid, first, last, a)
    cw = np.zeros((horizon, C), dtype=np.int64)
    cw2 = np.zeros((horizon, C), dtype=np.int64)
    sel = np.zeros((horizon, C), dtype=np.int64)
    want: dict[tuple[int, int], int] = {}
    s = 2
    for k_len, inj in zip(ks, inject, strict=True):
        a = rng.integers(-128, 128, (R, k_len))
        w0 = rng.integers(-128, 128, (C, k_len))
        w1 = rng.integers(-128, 128, (C, k_len))
        for k in range(k_len):
            for i in range(R):
                tok[s + k + i][i] = (1, int(k == 0), int(k == k_len - 1), int(a[i, k]))
            for j in range(C):
                cw[s + k + j - 1, j] = w0[j, k]
                if inj:
                    cw2[s + k + j - 1 + Q, j] = w1[j, k]
                    sel[s + k + j - 1 + Q, j] = 1
        res = systolic_golden(a[None], w0[None], cfg.acc_width)[0]
        if inj:
            res[Q:] = systolic_golden(a[None, Q:], w1[None], cfg.acc_width)[0]
        t_last0 = s + k_len - 1
        for i in range(R):
            for j in range(C):
                want[(t_last0 + j + i + dut.out_latency, j)] = int(res[i, j])
        s += max(k_len, R)
    got: dict[tuple[int, int], int] = {}

    async def bench(ctx) -> None:
        for t in range(horizon):
            for i in range(R):
                v, f, last, x = tok[t][i]
                ctx.set(dut.row_in[i].valid, v)
                ctx.set(dut.row_in[i].first, f)
                ctx.set(dut.row_in[i].last, last)
                ctx.set(dut.row_in[i].a, x)
            for j in range(C):
                ctx.set(dut.col_w[j], int(cw[t, j]))
                ctx.set(dut.col_w2[j], int(cw2[t, j]))
                ctx.set(dut.w2_sel[j], int(sel[t, j]))
            for j in range(C):
                if ctx.get(dut.col_out[j].valid):
                    got[(t, j)] = ctx.get(dut.col_out[j].data)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return want, got


@pytest.mark.parametrize(("R", "C", "Q", "seed"), [(4, 3, 2, 1), (6, 2, 3, 2), (4, 4, 1, 3)])
def test_injected_part_and_plain_tiles(R: int, C: int, Q: int, seed: int) -> None:
    ks = [R + 3, R, 2 * R + 1, R + 2]
    want, got = _run(R, C, Q, ks, [False, True, True, False], seed)
    assert got == want


def test_inject_row_is_checked() -> None:
    with pytest.raises(ValueError, match="inject_row must be in 1..3, not 4"):
        SystolicArray(ArrayConfig(rows=4, cols=2), inject_row=4)
