"""Verilator + cocotb: the multiplier seam is bit-exact with its golden at its stated latency."""

from __future__ import annotations

import json

import pytest

from hwgen.rtl.mult import Multiplier
from sim.runner import SIM_BUILD, assert_passed, build_verilog, run_cocotb


@pytest.mark.rtl
@pytest.mark.parametrize("a_width,b_width,latency", [(8, 8, 3), (8, 8, 1), (9, 12, 2)])
def test_mult_rtl(a_width: int, b_width: int, latency: int) -> None:
    name = f"mult_{a_width}x{b_width}_l{latency}"
    params = {"a_width": a_width, "b_width": b_width, "latency": latency}
    (SIM_BUILD / name).mkdir(parents=True, exist_ok=True)
    pfile = SIM_BUILD / name / "params.json"
    pfile.write_text(json.dumps(params))
    v = build_verilog(Multiplier(a_width=a_width, b_width=b_width, latency=latency), "mult")
    res = run_cocotb(
        verilog=v, toplevel="mult", test_module="sim.tb.mult_tb", config_name=name,
        env={"HWGEN_PARAMS": str(pfile)},
    )
    assert_passed(res, name)
