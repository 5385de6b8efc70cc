# amaranth: UnusedElaboratable=no
"""Verilator + cocotb: the LUT multiplier (the ECP5 hook's fallback past the DSP budget: row
pairs on CCU2C cells, simulated on hwgen/rtl/models/CCU2C.v; and the portable form with
Amaranth adds) is bit-exact with ``*`` at the DSP path's latency (and at the PE's, one more),
on all 65,536 int8 pairs."""

from __future__ import annotations

import re

import pytest

from hwgen.rtl.ecp5_carry import CCU2C_MODEL
from hwgen.rtl.ecp5_dsp import DSP_LATENCY, MULT18X18D_MODEL, Ecp5DspSim
from hwgen.rtl.lut_mult import LUT_MULT_LATENCY, lut_multiplier
from hwgen.rtl.mult import Multiplier
from hwgen.sim.runner import build_verilog, run_unit

from .test_mult import run_all_int8_pairs


class _Portable(Ecp5DspSim):
    """The hook with ``carry_cells`` off: Amaranth adds for the row pairs (no CCU2C)."""

    carry_cells = False


def _lut_platform(kind: str = "ecp5") -> Ecp5DspSim:
    # budget 0: every product past the budget, i.e. the LUT fallback
    return Ecp5DspSim(dsp_budget=0) if kind == "ecp5" else _Portable(dsp_budget=0)


def _design_only(text: str) -> str:
    models = MULT18X18D_MODEL.read_text() + CCU2C_MODEL.read_text()
    assert text.endswith(models)
    return text[: -len(models)]  # drop the appended primitive models


def test_fallback_is_the_lut_multiplier() -> None:
    plat = _lut_platform()
    text = _design_only(build_verilog(Multiplier(a_width=8, b_width=8, latency=3), "m", plat))
    assert plat.dsps_used == 0 and plat.lut_multipliers == 1
    assert "MULT18X18D" not in text
    assert not re.search(r"\S \* \S", text)  # no `*`: rows and adds only
    assert "pair3" in text and "sum2" in text  # four row pairs, a tree of three adds
    assert text.count("CCU2C #(") == 4 * 5  # each pair: 10 bits on five carry cells
    plain = _design_only(build_verilog(Multiplier(a_width=8, b_width=8, latency=3), "m",
                                       _lut_platform("portable")))
    assert "CCU2C" not in plain and not re.search(r"\S \* \S", plain)


def test_latency_matches_the_dsp_path() -> None:
    assert LUT_MULT_LATENCY == DSP_LATENCY
    with pytest.raises(ValueError, match="at least 3"):
        lut_multiplier(Multiplier(a_width=8, b_width=8, latency=2))


@pytest.mark.rtl
@pytest.mark.parametrize("kind", ["ecp5", "portable"])
def test_lut_mult_all_int8_pairs(kind: str) -> None:
    """All 65,536 int8 x int8 products, one per cycle, at the PE's latency (the LUT rows and
    adds' three edges, then a delay register) after their operands."""
    plat = _lut_platform(kind)
    run_all_int8_pairs(f"mult_all_int8_lut_{kind}", plat)
    assert plat.lut_multipliers == 1 and plat.dsps_used == 0


@pytest.mark.rtl
@pytest.mark.parametrize("a_width,b_width,latency", [(9, 12, 4), (5, 7, 3)])
def test_lut_mult_other_shapes(a_width: int, b_width: int, latency: int) -> None:
    """Odd widths (an unpaired top row) and extra delay stages, random operands + corners."""
    plat = _lut_platform()
    run_unit(
        Multiplier(a_width=a_width, b_width=b_width, latency=latency),
        toplevel="mult",
        test_module="hwgen.sim.tb.mult_tb",
        name=f"mult_lut_{a_width}x{b_width}_l{latency}",
        params={"a_width": a_width, "b_width": b_width, "latency": latency, "n": 3000},
        platform=plat,
    )
    assert plat.lut_multipliers == 1
