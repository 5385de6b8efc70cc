"""Verilator + cocotb: the multiplier seam is bit-exact with its golden at its stated latency,
both as the generic ``*`` and as the ECP5 MULT18X18D implementation (on the behavioural model
hwgen/rtl/models/MULT18X18D.v)."""

from __future__ import annotations

import re

import pytest

from hwgen.config import ArrayConfig
from hwgen.rtl.ecp5_dsp import DSP_LATENCY, WIDE_LATENCY, Ecp5DspSim
from hwgen.rtl.mult import Multiplier
from hwgen.sim.runner import build_verilog, run_unit


@pytest.mark.rtl
@pytest.mark.parametrize("a_width,b_width,latency", [(8, 8, 3), (8, 8, 1), (9, 12, 2)])
def test_mult_rtl(a_width: int, b_width: int, latency: int) -> None:
    run_unit(
        Multiplier(a_width=a_width, b_width=b_width, latency=latency),
        toplevel="mult",
        test_module="hwgen.sim.tb.mult_tb",
        name=f"mult_{a_width}x{b_width}_l{latency}",
        params={"a_width": a_width, "b_width": b_width, "latency": latency},
    )


PE_LATENCY = ArrayConfig().mult_latency  # the PE's: the DSP's three edges + a fabric register


def run_all_int8_pairs(name: str, platform, latency: int = PE_LATENCY) -> None:
    """All 65,536 int8 x int8 products through a Multiplier at the PE's latency (4: on the
    ECP5 the MULT18X18D's three registers and one fabric register after it), one per cycle,
    each checked against a*b ``latency`` edges later (hwgen.sim.tb.mult_tb)."""
    run_unit(
        Multiplier(a_width=8, b_width=8, latency=latency),
        toplevel="mult",
        test_module="hwgen.sim.tb.mult_tb",
        name=name,
        params={"a_width": 8, "b_width": 8, "latency": latency, "exhaustive": True},
        platform=platform,
    )


@pytest.mark.rtl
@pytest.mark.parametrize("impl", ["generic", "ecp5"])
def test_mult_all_int8_pairs(impl: str) -> None:
    """All 65,536 int8 x int8 products, one per cycle, at the PE's latency (4): the
    MULT18X18D model (plus its fabric register) and the generic ``*`` both equal a*b four
    edges later."""
    assert PE_LATENCY == DSP_LATENCY + 1  # the product leaves the DSP into a fabric register
    platform = Ecp5DspSim() if impl == "ecp5" else None
    run_all_int8_pairs(f"mult_all_int8_{impl}", platform)
    if platform is not None:
        assert platform.dsps_used == 1 and platform.lut_multipliers == 0


@pytest.mark.rtl
@pytest.mark.parametrize("latency", [WIDE_LATENCY, WIDE_LATENCY + 1, WIDE_LATENCY + 2])
def test_mult_ecp5_wide(latency: int) -> None:
    """The requant lanes' 32x32 product on four MULT18X18D plus two adds."""
    platform = Ecp5DspSim()
    run_unit(
        Multiplier(a_width=32, b_width=32, latency=latency),
        toplevel="mult",
        test_module="hwgen.sim.tb.mult_tb",
        name=f"mult_ecp5_32x32_l{latency}",
        params={"a_width": 32, "b_width": 32, "latency": latency, "n": 3000},
        platform=platform,
    )
    assert platform.dsps_used == 4


def test_ecp5_hook_instantiates_dsps_and_falls_back_to_luts() -> None:
    """The hook places MULT18X18D while the budget lasts, then the generic (LUT) ``*``."""
    plat = Ecp5DspSim(dsp_budget=5)
    texts = [build_verilog(Multiplier(a_width=8, b_width=8, latency=3), f"m{i}", plat)
             for i in range(2)]
    assert all(t.count("MULT18X18D #(") == 1 for t in texts)
    wide = build_verilog(Multiplier(a_width=32, b_width=32, latency=WIDE_LATENCY), "w", plat)
    assert "MULT18X18D #(" not in wide.split("module MULT18X18D")[0]  # 2 + 4 > 5: LUTs
    assert plat.dsps_used == 2 and plat.lut_multipliers == 1
    # an edge past WIDE_LATENCY: the operands' own register in front of the four DSPs
    for lat, regs in ((WIDE_LATENCY, False), (WIDE_LATENCY + 1, True)):
        v = build_verilog(Multiplier(a_width=32, b_width=32, latency=lat), f"x{lat}",
                          Ecp5DspSim()).split("module MULT18X18D")[0]
        assert bool(re.search(r"reg \[\d+:0\] a_r\b", v)) is regs, lat
    short = build_verilog(Multiplier(a_width=8, b_width=8, latency=2), "s", Ecp5DspSim())
    assert "MULT18X18D #(" not in short.split("module MULT18X18D")[0]  # too short for a DSP
