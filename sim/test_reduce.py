"""RowReduce: bit-exact with row_reduce_golden on every cycle, in the Amaranth simulator
(random rows with gaps, garbage on invalid cycles, wrapping sums, every split 1..R, rows
offered in start cycles dropped)."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from hwgen.rtl.reduce import RowReduce, row_reduce_golden


def test_row_reduce_golden() -> None:
    rows = [[1, 2], None, [3, 4], [5, 6], [7, 8], None]
    out = row_reduce_golden(rows, 2)
    assert out[3] == [4, 6] and out[5] == [12, 14]
    assert sum(o is not None for o in out) == 2
    assert row_reduce_golden([[1], [2]], 1) == [None, [1], [2]]
    assert row_reduce_golden([[2**31 - 1], [1]], 2)[2] == [-(2**31)]  # wraps like the PEs


def _run(cols: int, acc_width: int, splits: list[int], gap_prob: float, seed: int) -> None:
    """Several layers back to back, each with its own split and a start pulse before it."""
    rng = random.Random(seed)
    dut = RowReduce(cols=cols, acc_width=acc_width)
    lo, hi = -(1 << (acc_width - 1)), (1 << (acc_width - 1)) - 1
    cycles: list[tuple[int, int, list[int] | None]] = []  # (start, split_m1, row)
    outs: dict[int, list[int]] = {}
    for split in splits:
        cycles.append((1, split - 1, None))
        rows: list[list[int] | None] = []
        for _ in range(split * rng.randint(1, 5)):
            while rng.random() < gap_prob:
                rows.append(None)
            rows.append([rng.randint(lo, hi) for _ in range(cols)])
        base = len(cycles)
        for t, o in enumerate(row_reduce_golden(rows, split, acc_width)):
            if o is not None:
                outs[base + t] = o  # one register after the block's last row
        cycles += [(0, split - 1, r) for r in rows]
    cycles.append((0, 0, None))
    want = [outs.get(t) for t in range(len(cycles))]
    errors: list[str] = []

    async def bench(ctx) -> None:
        for t, (start, sm1, row) in enumerate(cycles):
            ctx.set(dut.start, start)
            ctx.set(dut.split_m1, sm1)
            # a row offered in a start cycle is dropped (the golden never sees it)
            ctx.set(dut.i_valid, row is not None or (start and rng.random() < 0.5))
            garbage = [rng.randint(lo, hi) for _ in range(cols)]
            ctx.set(dut.i_data, row if row is not None else garbage)
            valid = ctx.get(dut.o_valid)
            w = want[t]
            if valid != (w is not None):
                errors.append(f"cycle {t}: o_valid={valid}, want {w}")
            elif w is not None and list(ctx.get(dut.o_data)) != w:
                errors.append(f"cycle {t}: got {list(ctx.get(dut.o_data))} want {w}")
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert any(w is not None for w in want)
    assert not errors, "\n".join(errors[:10])


@pytest.mark.parametrize(
    "cols,acc_width,gap_prob", [(4, 32, 0.0), (3, 32, 0.4), (8, 20, 0.2)]
)
def test_row_reduce_amaranth_sim(cols: int, acc_width: int, gap_prob: float) -> None:
    splits = [1, 2, 3, 4, 6, 8, 12, 16, 32, 1, 5]
    _run(cols, acc_width, splits, gap_prob, seed=cols * 100 + acc_width)
