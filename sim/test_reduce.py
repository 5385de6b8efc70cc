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
    out = row_reduce_golden(rows, 2)  # RowReduce.latency = 2 cycles after the last row
    assert out[4] == [4, 6] and out[6] == [12, 14]
    assert sum(o is not None for o in out) == 2
    assert row_reduce_golden([[1], [2]], 1, latency=1) == [None, [1], [2]]
    assert row_reduce_golden([[2**31 - 1], [1]], 2, latency=1)[2] == [-(2**31)]  # wraps


def _run(cols: int, acc_width: int, splits: list[int | list[int]], gap_prob: float,
         seed: int, sum_width: int | None = None) -> None:
    """Several layers back to back, each with its own split and a start pulse before it.
    A layer given as a list of splits changes its split between blocks (as the write-back
    does for a remainder tile), from the cycle after the previous part's last row on.
    With a narrower ``sum_width`` the rows are small enough that no sum leaves it (the
    program's accumulator bound), and the output is the sum sign-extended."""
    rng = random.Random(seed)
    dut = RowReduce(cols=cols, acc_width=acc_width, sum_width=sum_width)
    lo, hi = -(1 << (acc_width - 1)), (1 << (acc_width - 1)) - 1
    flat = [p for sp in splits for p in (sp if isinstance(sp, list) else [sp])]
    if sum_width is not None:
        hi = ((1 << (sum_width - 1)) - 1) // max(flat)
        lo = -hi
    cycles: list[tuple[int, int, list[int] | None]] = []  # (start, split_m1, row)
    outs: dict[int, list[int]] = {}
    for layer in splits:
        parts = layer if isinstance(layer, list) else [layer]
        cycles.append((1, parts[0] - 1, None))
        for split in parts:
            rows: list[list[int] | None] = []
            for _ in range(split * rng.randint(1, 5)):
                while rng.random() < gap_prob:
                    rows.append(None)
                rows.append([rng.randint(lo, hi) for _ in range(cols)])
            base = len(cycles)
            for t, o in enumerate(row_reduce_golden(rows, split, acc_width)):
                if o is not None:
                    outs[base + t] = o  # RowReduce.latency after the block's last row
            cycles += [(0, split - 1, r) for r in rows]
    cycles += [(0, 0, None)] * RowReduce.latency
    want = [outs.get(t) for t in range(len(cycles))]
    errors: list[str] = []

    async def bench(ctx) -> None:
        for t, (start, sm1, row) in enumerate(cycles):
            ctx.set(dut.start, start)
            ctx.set(dut.split_m1, sm1)
            ctx.set(dut.split_one, sm1 == 0)
            # a row offered in a start cycle is dropped (the golden never sees it)
            valid = row is not None or (start and rng.random() < 0.5)
            ctx.set(dut.i_valid, valid)
            ctx.set(dut.lane_valid, (1 << cols) - 1 if valid else 0)  # each lane's copy
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


def test_row_reduce_split_changes_between_blocks() -> None:
    """Conv layers with a remainder tile: split 1 for the pixel tiles, P for the last one,
    and back (the write-back changes split_m1/split_one at a tile's last row, no start)."""
    layers: list[int | list[int]] = [[1, 4, 1, 4], [3, 1, 2, 1, 1, 5], 2, [1, 1, 32, 1]]
    for gap_prob in (0.0, 0.3):
        _run(4, 32, layers, gap_prob, seed=11)


def test_row_reduce_narrow_sums() -> None:
    """Sums kept in the PE accumulator's width, sign-extended to the lanes' 32 bits."""
    _run(4, 32, [1, 2, 3, 8, 32, 5], 0.2, seed=7, sum_width=20)
