"""RowFold: bit-exact with row_fold_golden on every cycle, in the Amaranth simulator: tiles of
R consecutive rows with gaps between them, plain tiles passed through, two-stream tiles
(rows 0..Q-1 dropped, rows Q..R-1 plus the row Q before), garbage on invalid cycles, wrapping
sums; the delay both as LUT RAM and as a register chain."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from hwgen.rtl.delay import DELAY_RAM_FROM
from hwgen.rtl.fold import RowFold, row_fold_golden


def test_row_fold_golden() -> None:
    rows = [([1, 2], True, False), ([3, 4], False, True), ([5, 6], False, False)]
    assert row_fold_golden(rows, 1) == [None, None, [4, 6], [5, 6]]
    assert row_fold_golden([([2**31 - 1], True, False), ([1], False, True)], 1)[2] == [-(2**31)]
    with pytest.raises(ValueError, match="cycle 1: an added row needs a row 2 cycles before"):
        row_fold_golden([([1], False, False), ([1], False, True)], 2)


@pytest.mark.parametrize(("rows", "cols", "acc", "seed"), [(4, 3, 32, 1), (12, 2, 25, 2),
                                                           (2, 4, 20, 3), (16, 1, 32, 4)])
@pytest.mark.parametrize("ram_from", [DELAY_RAM_FROM, 0])  # LUT RAM from Q = 4 on / chains
def test_row_fold_matches_golden(rows: int, cols: int, acc: int, seed: int,
                                 ram_from: int) -> None:
    rng = random.Random(seed)
    q = rows // 2
    dut = RowFold(cols=cols, acc_width=acc, q=q, ram_from=ram_from)
    assert dut.ram_from == ram_from
    lo, hi = -(1 << (acc - 1)), (1 << (acc - 1)) - 1
    seq: list[tuple[list[int] | None, bool, bool]] = []
    for _ in range(12):
        seq += [(None, False, False)] * rng.choice((0, 0, 1, 5))
        two = rng.random() < 0.5
        for i in range(rows):
            seq.append(([rng.randint(lo, hi) for _ in range(cols)], two and i < q, two and i >= q))
    want = row_fold_golden(seq, q, acc)
    got: list[list[int] | None] = []

    async def bench(ctx) -> None:
        for t in range(len(want)):
            row, drop, add = seq[t] if t < len(seq) else (None, False, False)
            ctx.set(dut.i_valid, row is not None)
            data = row or [rng.randint(lo, hi) for _ in range(cols)]  # garbage when invalid
            for j in range(cols):
                ctx.set(dut.i_data[j], data[j])
            ctx.set(dut.drop, drop)
            ctx.set(dut.add, (1 << cols) - 1 if add else 0)  # (every lane's copy)
            got.append([ctx.get(dut.o_data[j]) for j in range(cols)]
                       if ctx.get(dut.o_valid) else None)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got == want
    assert sum(g is not None for g in got) > 0
