"""hwgen sweep on a real Dask LocalCluster: the RTL cycle measurement (fast Verilator
harness, bit-exact against the golden model) as a task; the full board build under slow."""

from __future__ import annotations

import json

import pytest

from hwgen.cli import main
from hwgen.rtl.traits import LargeDevice


def _run(tmp_path, *args: str) -> dict:
    rc = main(["--workdir", str(tmp_path), "sweep", "--model", "digits_cnn", *args])
    res = json.loads((tmp_path / "reports" / "sweep.json").read_text())
    assert rc == 0, res["tasks_results"]
    return res


@pytest.mark.rtl
def test_sweep_cycles_on_local_cluster(tmp_path) -> None:
    res = _run(tmp_path, "--arrays", "2x2", "--no-build", "-n", "3")
    (t,) = res["tasks_results"]
    assert t["kind"] == "cycles" and t["ok"] and t["bit_exact"] == "3/3", t
    assert t["remainder_tiles"] == res["remainder_tiles"] == "stream"  # the board default
    # back to back (3 images): each image loads while the one before computes, so the
    # steady start-to-start period hides the 64-cycle data transfer (it adds the host's
    # start pulse and 6 counter reads to the run: < 16 cycles)
    assert t["bit_exact_back_to_back"] == "3/3"
    assert t["steady_cycles"] < t["cycles"] - 64 + 16 and t["steady_pe_busy"] > t["pe_busy"]
    assert res["scheduler"] == "LocalCluster(1)"
    # PE busy is the design's counter total against the executed MACs (hwgen.perf.summarize)
    assert t["pe_busy"] == pytest.approx(t["executed_macs"] / (4 * t["cycles"]))
    assert 0.5 < t["pe_busy"] < 1.0
    # gap-free data-in: one 8x8 image, a value a cycle, then the cycle that takes the full
    # slot, and one for the board's image slice in the Accelerator (trait image_slice; on the
    # board it stands in for the host link's core-side slice: no cycle more there)
    assert t["cycles_parts"]["input"] == 64 + 1 + LargeDevice.image_slice
    assert t["cycles"] >= sum(t["cycles_parts"][k] for k in ("input", "output", "compute"))
    (row,) = res["rows"]
    assert row["cycles_per_inference"] == t["cycles"] and "LUT4" not in row
    assert row["pe_busy_back_to_back"] == t["steady_pe_busy"]
    md = (tmp_path / "reports" / "sweep.md").read_text()
    assert f"| 2x2 | 4 | — | — | — | — | — | {t['cycles']:,.0f} |" in md


@pytest.mark.slow
@pytest.mark.board
def test_sweep_real_builds(tmp_path) -> None:
    """Two real board builds (yosys, nextpnr, ecppack) as Dask tasks; real tool figures.
    Two seeds: a build task places them itself (a Dask worker cannot start the cluster
    `hwgen build` opens for its seeds; every build of a --seeds 2 sweep once failed so)."""
    res = _run(tmp_path, "--arrays", "1x1,1x2", "--seeds", "2")
    rows = {r["array"]: r for r in res["rows"]}
    for a in ("1x1", "1x2"):
        r = rows[a]
        assert r["LUT4"] > 1000 and r["FF"] > 1000 and r["DP16KD"] >= 1 and r["fmax"] > 10
        assert r["MULT18X18D"] == r["pes"] + 4 * int(a[-1])  # PEs + 4 per requant lane
        assert r["fmax_seeds"] == 2
    assert res["summary"]["largest_fitting"] == "1x2"
    assert (tmp_path / "build" / "boards" / "ulx3s_digits_cnn_1x2" / "top.bit").exists()
