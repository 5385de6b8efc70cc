"""Pool2d: bit-exact with pool_golden, every output on its exact cycle, in the Amaranth simulator
and in Verilator (cocotb body: sim/tb/pool_tb.py)."""

from __future__ import annotations

import gc
import random

import numpy as np
import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from hwgen.rtl.pool import Pool2d, PoolMode, pool_golden
from hwgen.sim.runner import run_unit
from hwgen.sim.tb.pool_tb import Layer, build_run, standard_layers

SEED = 1
MAX_KERNEL = 4


def test_pool_golden() -> None:
    x = np.array([[1, -2, 3, 9], [4, 5, -6, 9], [9, 9, 9, 9]])[:, :, None]  # 3x4, 1 lane
    assert pool_golden(x, 2, "max")[..., 0].tolist() == [[5, 9]]
    # sums 8 and 15: 8/4 = 2, 15/4 = 3.75 -> 4
    assert pool_golden(x, 2, PoolMode.AVG)[..., 0].tolist() == [[2, 4]]
    assert pool_golden(-x, 2, 1)[..., 0].tolist() == [[-2, -4]]  # -2, -3.75 -> -4
    y = np.array([[-1, -1], [0, 0]])[:, :, None]  # -2/4 = -0.5 -> -1 (ties away from zero)
    assert pool_golden(y, 2, "avg")[..., 0].tolist() == [[-1]]
    assert pool_golden(x, 4, "max").shape == (0, 1, 1)


# A component whose constructor raises is still an unused Elaboratable: collect it here,
# inside the filter, instead of warning in some later test.
@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_pool_params() -> None:
    with pytest.raises(ValueError, match=r"^Pool lanes must be a positive integer, not 0$"):
        Pool2d(lanes=0)
    with pytest.raises(ValueError, match=r"^Pool max_out_width must be a positive integer"):
        Pool2d(lanes=2, max_out_width=0)
    gc.collect()
    dut = Pool2d(lanes=2, max_kernel=4)
    assert dut.sum_width == 12
    Fragment.get(dut, None)  # elaborates (and marks it used: no UnusedElaboratable warning)


def _amaranth_run(lanes: int, max_out_width: int, layers: list[Layer], gap_prob: float) -> None:
    dut = Pool2d(lanes=lanes, max_kernel=MAX_KERNEL, max_out_width=max_out_width)
    rng = random.Random(SEED * 100 + lanes)
    run = build_run(rng, lanes, layers, gap_prob, dut.latency, max_out_width)
    errors: list[str] = []

    async def bench(ctx) -> None:
        for t, cyc in enumerate(run.cycles):
            ctx.set(dut.cfg, cyc.cfg)
            ctx.set(dut.start, cyc.start)
            ctx.set(dut.i_stream.valid, cyc.pixel is not None)
            if cyc.pixel is not None:
                ctx.set(dut.i_stream.payload, cyc.pixel)
            want = run.expected.get(t)
            valid = ctx.get(dut.o_stream.valid)
            if valid != (want is not None):
                errors.append(f"cycle {t}: o.valid={valid}, want {want}")
            elif want is not None:
                got = list(ctx.get(dut.o_stream.payload))
                if got != want:
                    errors.append(f"cycle {t}: got {got} want {want}")
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert run.expected, "the run expects no output at all"
    assert not errors, "\n".join(errors[:10])


@pytest.mark.parametrize(
    "lanes,max_out_width,gap_prob", [(4, 6, 0.0), (4, 6, 0.35), (3, 5, 0.35), (8, 8, 0.0)]
)
def test_pool_amaranth_sim(lanes: int, max_out_width: int, gap_prob: float) -> None:
    _amaranth_run(lanes, max_out_width, standard_layers(max_out_width), gap_prob)


@pytest.mark.rtl
@pytest.mark.parametrize("lanes,max_out_width", [(8, 8), (3, 5)])  # 4: Amaranth sim
def test_pool_rtl(lanes: int, max_out_width: int) -> None:
    dut = Pool2d(lanes=lanes, max_kernel=MAX_KERNEL, max_out_width=max_out_width)
    name = f"pool_c{lanes}_k{MAX_KERNEL}_w{max_out_width}"
    params = {
        "lanes": lanes,
        "max_kernel": MAX_KERNEL,
        "max_out_width": max_out_width,
        "dim_width": dut.dim_width,
        "latency": dut.latency,
    }
    run_unit(
        dut, toplevel="pool", test_module="hwgen.sim.tb.pool_tb", name=name, params=params,
        seed=SEED,
    )
