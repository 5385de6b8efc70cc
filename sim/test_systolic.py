# amaranth: UnusedElaboratable=no
"""SystolicArray: golden, constructor checks, Amaranth-simulator and Verilator/cocotb runs.

Every run compares every ``col_out`` integer and its cycle against ``systolic_golden`` at
``out_latency``. Seeds are in the test ids; ``HWGEN_SEED=n`` replaces them.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
from amaranth import Fragment, Value
from amaranth.sim import Simulator

from hwgen.config import ArrayConfig
from hwgen.paths import sim_build
from hwgen.rtl.systolic import SystolicArray, systolic_golden
from hwgen.sim.runner import run_unit
from hwgen.sim.tb.systolic_tb import build_stimulus, check_outputs, unpack_col_out


def _seeds(*default: int) -> list[int]:
    env = os.environ.get("HWGEN_SEED")
    return [int(env)] if env else list(default)


def _params(rows: int, cols: int, layers: list[dict], seed: int, **kw) -> dict:
    cfg = {"a_width": 8, "w_width": 8, "acc_width": 32, "mult_latency": 3, **kw}
    return {"rows": rows, "cols": cols, "seed": seed, "layers": layers, **cfg}


def _cfg(p: dict) -> ArrayConfig:
    return ArrayConfig(
        rows=p["rows"],
        cols=p["cols"],
        a_width=p["a_width"],
        w_width=p["w_width"],
        acc_width=p["acc_width"],
        mult_latency=p["mult_latency"],
    )


def _mixed_layers(r: int, tiles: int = 6) -> list[dict]:
    """K = 1, K < R, K ≥ R, random K; conv and direct; tight, gapped and bubbled issue."""
    small = max(1, r // 2)
    return [
        {"mode": "conv", "tiles": tiles, "k": 1},
        {"mode": "conv", "tiles": tiles, "k": small},
        {"mode": "conv", "tiles": tiles, "k": 3 * r + 5, "values": "mixed"},
        {"mode": "direct", "tiles": tiles, "k": [1, 2 * r + 3]},
        {"mode": "direct", "tiles": tiles, "k": [1, 2 * r + 3], "gaps": True, "bubbles": True},
        {"mode": "conv", "tiles": tiles, "k": [1, 2 * r + 3], "gaps": True, "bubbles": True},
        {"mode": "direct", "tiles": tiles, "k": r},
    ]


# ---------------------------------------------------------------- golden and constructor


def test_golden_conv_and_direct() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(-128, 128, (3, 4, 7))
    w = rng.integers(-128, 128, (3, 5, 7))
    want = np.einsum("trk,tck->trc", a, w)
    assert np.array_equal(systolic_golden(a, w, 32), want)
    wd = rng.integers(-128, 128, (3, 4, 5, 7))
    assert np.array_equal(systolic_golden(a, wd, 32), np.einsum("trk,trck->trc", a, wd))


def test_golden_wraps() -> None:
    a = np.full((1, 1, 64), -128)
    w = np.full((1, 1, 64), -128)
    assert systolic_golden(a, w, 32)[0, 0, 0] == 64 * 16384
    got = systolic_golden(a, w, 20)[0, 0, 0]  # 2**20 wraps to 0
    assert got == ((64 * 16384 + (1 << 19)) % (1 << 20)) - (1 << 19) == 0
    assert (
        systolic_golden(np.full((1, 1, 3), -128), np.full((1, 1, 3), -128), 16)[0, 0, 0]
        == ((3 * 16384 + 32768) % 65536) - 32768
    )


def test_golden_shape_errors() -> None:
    with pytest.raises(ValueError, match=r"w must be \[tiles, C, K\]"):
        systolic_golden(np.zeros((1, 2, 3), int), np.zeros((1, 2, 4), int), 32)
    with pytest.raises(TypeError, match="a must hold integers, not float64"):
        systolic_golden(np.zeros((1, 2, 3)), np.zeros((1, 2, 3), int), 32)


def test_constructor_checks() -> None:
    with pytest.raises(TypeError, match=r"^Array configuration must be an ArrayConfig, not 8$"):
        SystolicArray(8)  # type: ignore[arg-type]
    # the array limit lives in one place (hwgen.config.MAX_ARRAY_DIM): no configuration past
    # it can even be built, so the array never sees one
    with pytest.raises(ValueError, match=r"^Array rows must be an integer in 1\.\.32, not 33$"):
        SystolicArray(ArrayConfig(rows=33, cols=4))
    with pytest.raises(ValueError, match=r"^Array cols must be an integer in 1\.\.32, not 40$"):
        SystolicArray(ArrayConfig(rows=4, cols=40))


def test_latency_and_signature() -> None:
    cfg = ArrayConfig(rows=3, cols=5, acc_width=24, mult_latency=2)
    dut = SystolicArray(cfg)
    assert dut.out_latency == 2 + 3 + 2  # product, two accumulator halves, the drain
    assert dut.result_latency == 2 + 2 and dut.weight_lead == 1
    assert dut.direct_latency == 2
    assert Value.cast(dut.row_in).shape().width == 3 * (3 + 8)
    assert Value.cast(dut.w_direct).shape().width == 15 * 8
    assert Value.cast(dut.col_out).shape().width == 5 * (1 + 24)
    Fragment.get(dut, None)  # elaborates (and marks the component used)


# ---------------------------------------------------------------- Amaranth simulator


def _amaranth_run(p: dict) -> None:
    stim = build_stimulus(p)
    dut = SystolicArray(_cfg(p))
    assert dut.out_latency == stim.out_latency
    sigs = {n: Value.cast(getattr(dut, n)) for n in ("row_in", "col_w", "w_direct", "direct")}
    out = Value.cast(dut.col_out)
    got: list[int] = []

    async def bench(ctx) -> None:
        for t in range(stim.cycles):
            ctx.set(sigs["row_in"], stim.row_in[t])
            ctx.set(sigs["col_w"], stim.col_w[t])
            ctx.set(sigs["w_direct"], stim.w_direct[t])
            ctx.set(sigs["direct"], stim.direct[t])
            got.append(ctx.get(out))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    check_outputs(stim, [unpack_col_out(w, p["cols"], p["acc_width"]) for w in got])


AMARANTH_CASES = {
    "1x1": lambda s: _params(1, 1, _mixed_layers(1, 8), s),
    "4x4": lambda s: _params(4, 4, _mixed_layers(4), s),
    "3x5": lambda s: _params(3, 5, _mixed_layers(3), s, mult_latency=1),
    "5x3-acc20": lambda s: _params(
        5,
        3,
        [
            {"mode": "conv", "tiles": 4, "k": 40, "values": "min"},
            {"mode": "direct", "tiles": 4, "k": [1, 70], "values": "extreme"},
        ],
        s,
        acc_width=20,
        mult_latency=2,
    ),
    "8x8": lambda s: _params(8, 8, _mixed_layers(8, 3), s),
}


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("seed", _seeds(1, 2))
@pytest.mark.parametrize("case", list(AMARANTH_CASES))
def test_systolic_amaranth(case: str, seed: int) -> None:
    _amaranth_run(AMARANTH_CASES[case](seed))


# ---------------------------------------------------------------- Verilator + cocotb


def _rtl_run(case: str, p: dict) -> dict:
    name = (
        f"systolic_{p['rows']}x{p['cols']}_a{p['a_width']}w{p['w_width']}"
        f"_acc{p['acc_width']}_l{p['mult_latency']}"
    )
    stats = sim_build() / name / f"stats_{case}_{p['seed']}.json"
    t0 = time.perf_counter()
    dut = SystolicArray(_cfg(p))
    assert dut.out_latency == build_stimulus(p).out_latency
    run_unit(
        dut,
        toplevel="systolic",
        test_module="hwgen.sim.tb.systolic_tb",
        name=name,
        params={**p, "stats_file": str(stats)},
        seed=p["seed"],
        tag=f"_{case}_{p['seed']}",
    )
    st = json.loads(stats.read_text())
    rate = st["cycles"] / st["seconds"]
    print(
        f"{case} seed {p['seed']}: {st['cycles']} cycles at {rate:.0f} cycles/s; "
        f"build+run {time.perf_counter() - t0:.1f} s"
    )
    return st


RTL_CASES = {
    "1x1": lambda s: _params(1, 1, _mixed_layers(1, 10), s),
    # Non-square, single-stage multiplier, 20-bit accumulator: -128*-128 sums wrap.
    "3x5_acc20_l1": lambda s: _params(
        3,
        5,
        [
            *_mixed_layers(3, 8),
            {"mode": "conv", "tiles": 6, "k": 70, "values": "min"},
            {"mode": "direct", "tiles": 6, "k": [1, 100], "values": "extreme", "gaps": True},
        ],
        s,
        acc_width=20,
        mult_latency=1,
        junk_cycles=10,
    ),
    "8x8": lambda s: _params(
        8,
        8,
        [*_mixed_layers(8, 12), {"mode": "conv", "tiles": 4, "k": 300, "values": "min"}],
        s,
        junk_cycles=30,
    ),
    "16x16": lambda s: _params(16, 16, _mixed_layers(16, 4), s, junk_cycles=40),
}


# 16x16 (~100 s, the 256-PE build) is slow: `make test` has the same mixed layers at 8x8 and
# the 16x16 array bit-exact inside sim/test_network.py (tiny_cnn 16x16).
RTL_SLOW = ("16x16",)


@pytest.mark.rtl
@pytest.mark.parametrize("seed", _seeds(1))
@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=pytest.mark.slow) if c in RTL_SLOW else c for c in RTL_CASES]
)
def test_systolic_rtl(case: str, seed: int) -> None:
    _rtl_run(case, RTL_CASES[case](seed))
