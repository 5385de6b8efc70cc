"""Verilator + cocotb: the multiplier seam is bit-exact with its golden at its stated latency."""

from __future__ import annotations

import pytest

from hwgen.rtl.mult import Multiplier
from hwgen.sim.runner import run_unit


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
