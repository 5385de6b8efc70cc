# amaranth: UnusedElaboratable=no
"""PE: golden, constructor checks, Amaranth-simulator and Verilator/cocotb runs.

Every output of every cycle is compared (forwarded token/weight/load pulse, drain-chain word).
Seeds are in the test ids; ``HWGEN_SEED=n`` replaces them.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from amaranth import Value
from amaranth.sim import Simulator

from hwgen.config import ArrayConfig
from hwgen.rtl.ecp5_dsp import Ecp5DspSim
from hwgen.rtl.pe import PE, pe_golden, wrap_signed
from hwgen.sim.runner import run_unit
from hwgen.sim.tb.pe_tb import INPUTS, OUTPUTS, build_pe_stimulus, check_pe_outputs


def _seeds(*default: int) -> list[int]:
    env = os.environ.get("HWGEN_SEED")
    return [int(env)] if env else list(default)


def _params(seed: int, rows: int, layers: list[dict], **kw) -> dict:
    cfg = {"a_width": 8, "w_width": 8, "acc_width": 32, "mult_latency": 3, **kw}
    return {"seed": seed, "rows": rows, "layers": layers, **cfg}


def _layers(rows: int, tiles: int = 8) -> list[dict]:
    return [
        {"mode": "conv", "tiles": tiles, "k": 1},
        {"mode": "conv", "tiles": tiles, "k": [1, rows - 1 if rows > 1 else 1]},
        {"mode": "direct", "tiles": tiles, "k": [1, 3 * rows], "gaps": True, "bubbles": True},
        {"mode": "conv", "tiles": tiles, "k": 2 * rows + 3, "values": "mixed"},
        {"mode": "direct", "tiles": tiles, "k": [1, 2 * rows], "values": "extreme"},
        {"mode": "conv", "tiles": tiles, "k": [1, 2 * rows], "gaps": True, "bubbles": True},
    ]


# ---------------------------------------------------------------- golden and constructor


def test_pe_golden() -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(-128, 128, (5, 9))
    w = rng.integers(-128, 128, (5, 9))
    assert np.array_equal(pe_golden(a, w, 32), (a * w).sum(axis=1))
    # -128 * -128 sums: 2**14 per term; 64 terms = 2**20 wraps to 0 at 20 bits.
    assert pe_golden(np.full((1, 64), -128), np.full((1, 64), -128), 20)[0] == 0
    assert pe_golden(np.full((1, 32), -128), np.full((1, 32), -128), 20)[0] == -(1 << 19)
    assert pe_golden(np.full((1, 32), -128), np.full((1, 32), -128), 32)[0] == 1 << 19


def test_wrap_signed_wide() -> None:
    assert wrap_signed(np.array([1 << 63], dtype=object), 64)[0] == -(1 << 63)
    assert list(wrap_signed(np.array([5, -5, 8, -9]), 4)) == [5, -5, -8, 7]


@pytest.mark.parametrize(
    "kw,exc,msg",
    [
        ({"a_width": 0}, TypeError, "Activation width must be a positive integer, not 0"),
        ({"w_width": "8"}, TypeError, "Weight width must be a positive integer, not '8'"),
        ({"acc_width": 8.0}, TypeError, "Accumulator width must be a positive integer, not 8.0"),
        ({"mult_latency": 0}, TypeError, "Multiplier latency must be a positive integer, not 0"),
        (
            {"acc_width": 15},
            ValueError,
            r"Accumulator width 15 is narrower than a product \(8\+8 bits\)",
        ),
    ],
)
def test_pe_constructor_checks(kw: dict, exc: type, msg: str) -> None:
    with pytest.raises(exc, match=f"^{msg}$"):
        PE(**kw)


def test_pe_keyword_only() -> None:
    with pytest.raises(TypeError):
        PE(8, 8)  # type: ignore[misc]


# ---------------------------------------------------------------- Amaranth simulator


def _amaranth_run(p: dict) -> None:
    stim = build_pe_stimulus(p)
    dut = PE(
        a_width=p["a_width"],
        w_width=p["w_width"],
        acc_width=p["acc_width"],
        mult_latency=p["mult_latency"],
    )
    ins = {n: Value.cast(getattr(dut, n)) for n in INPUTS}
    outs = {n: Value.cast(getattr(dut, n)) for n in OUTPUTS}
    got: dict[str, list[int]] = {n: [] for n in OUTPUTS}

    async def bench(ctx) -> None:
        # Amaranth's reset state is the registers' init: cycle 0 is the first cycle.
        for t in range(stim.cycles):
            for n, sig in ins.items():
                ctx.set(sig, stim.inputs[n][t])
            for n, sig in outs.items():
                got[n].append(ctx.get(sig) & ((1 << len(sig)) - 1))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    check_pe_outputs(stim, got)


AMARANTH_CASES = {
    "l3_acc32_r8": lambda s: _params(s, 8, _layers(8)),
    "l1_acc20_r4": lambda s: _params(
        s,
        4,
        [*_layers(4), {"mode": "conv", "tiles": 4, "k": 70, "values": "min"}],
        acc_width=20,
        mult_latency=1,
    ),
    "l2_a6w10_r1": lambda s: _params(
        s, 1, _layers(1), a_width=6, w_width=10, acc_width=24, mult_latency=2
    ),
    "l3_r16": lambda s: _params(s, 16, _layers(16, 4)),
}


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("seed", _seeds(1, 2))
@pytest.mark.parametrize("case", list(AMARANTH_CASES))
def test_pe_amaranth(case: str, seed: int) -> None:
    _amaranth_run(AMARANTH_CASES[case](seed))


# ---------------------------------------------------------------- Verilator + cocotb

RTL_CASES = {
    "l3_acc32": lambda s: _params(
        s,
        8,
        [*_layers(8, 12), {"mode": "direct", "tiles": 6, "k": [60, 90], "values": "min"}],
        junk_cycles=12,
    ),
}


@pytest.mark.rtl
@pytest.mark.parametrize("seed", _seeds(1))
@pytest.mark.parametrize("case", list(RTL_CASES))
def test_pe_rtl(case: str, seed: int) -> None:
    p = RTL_CASES[case](seed)
    name = f"pe_a{p['a_width']}w{p['w_width']}_acc{p['acc_width']}_l{p['mult_latency']}"
    dut = PE(
        a_width=p["a_width"],
        w_width=p["w_width"],
        acc_width=p["acc_width"],
        mult_latency=p["mult_latency"],
    )
    run_unit(
        dut,
        toplevel="pe",
        test_module="hwgen.sim.tb.pe_tb",
        name=name,
        params=p,
        seed=seed,
        tag=f"_{case}_{seed}",
    )


@pytest.mark.rtl
@pytest.mark.parametrize("kind,acc_width", [("dsp", 20), ("lut", 32)])
def test_pe_rtl_ecp5(kind: str, acc_width: int) -> None:
    """The ECP5 PE: product on MULT18X18D or the LUT multiplier, accumulate on a CCU2C chain
    (the ``first`` multiplexer inside the cells), simulated on the primitives' models; at 20
    bits the "min" layer's sums wrap."""
    p = _params(1, 4, [*_layers(4, 6), {"mode": "conv", "tiles": 3, "k": 70, "values": "min"}],
                acc_width=acc_width)
    plat = Ecp5DspSim(dsp_budget=1 if kind == "dsp" else 0)
    p["mult_latency"] = lat = ArrayConfig().mult_latency  # the board's: DSP + fabric register
    run_unit(
        PE(acc_width=acc_width, mult_latency=lat),
        toplevel="pe",
        test_module="hwgen.sim.tb.pe_tb",
        name=f"pe_ecp5_{kind}_acc{acc_width}",
        params=p,
        seed=1,
        platform=plat,
    )
    assert plat.dsps_used == (kind == "dsp") and plat.lut_multipliers == (kind == "lut")
