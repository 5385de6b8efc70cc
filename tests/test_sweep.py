"""hwgen sweep / hwgen estimate without the FPGA tools: option errors, the estimator's fit,
shape and speed, the report writer, and the Dask driver on fake task functions."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import numpy as np
import pytest

from hwgen.cli import main
from hwgen.config import ArrayConfig
from hwgen.sweep.estimate import (
    ACC_BIT_SAVING,
    ACC_MUX_LUT4,
    FORMS,
    LUT_PE_EXTRA,
    RESOURCES,
    estimate,
    features,
    fit,
    load_coeffs,
    predict,
    shipped_coeffs_path,
)

ARRAYS = ("2x4", "4x2", "2x8", "4x4", "4x8", "8x4", "8x8")


@pytest.mark.parametrize("argv, what", [
    (["sweep", "--arrays", "2y2"], "--arrays '2y2'"),
    (["sweep", "--arrays", "2x2,40x2"], "--arrays '2x2,40x2'"),
    (["sweep", "--arrays", "4x4", "--board", "nosuch"], "--board 'nosuch'"),
    (["sweep", "--arrays", "4x4", "--board", "icebreaker"], "--board icebreaker"),
    (["sweep", "--arrays", "4x4", "--seeds", "0"], "--seeds 0"),
    (["sweep", "--arrays", "4x4", "-n", "0"], "--images 0"),
    (["sweep", "--arrays", "4x4", "--workers", "0"], "--workers 0"),
    (["sweep", "--arrays", "4x4", "--freq", "-5"], "--freq -5.0"),
    (["sweep", "--arrays", "4x4", "--pnr-freq", "100"], "below the 150 MHz design clock"),
    (["sweep", "--from-json", "/nonexistent/raw.json"], "--from-json /nonexistent/raw.json"),
    (["sweep", "--arrays", "4x4", "--no-build", "--resources-only"], "--resources-only"),
    (["estimate", "--array", "4y4"], "argument --array"),
    (["estimate", "--board", "icebreaker", "--array", "4x4"], "--board 'icebreaker'"),
    (["estimate", "--add-build", "/nonexistent/b.json"], "--add-build /nonexistent/b.json"),
    (["estimate", "tiny_cnn", "--model", "mnist_cnn"], "given twice"),
    (["estimate", "nosuch"], "'nosuch'"),
])  # fmt: skip
def test_bad_options_are_one_line_exit_2(argv, what, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hwgen: error: ") and "\n" not in err and what in err, err


def test_sweep_arrays_follow_the_board_remainder_tile_default() -> None:
    """A sweep builds boards, so its arrays (RTL cycles, builds, estimates) schedule the
    two-stream remainder tiles unless told otherwise, like `hwgen build`."""
    from hwgen.sweep.run import SweepOptions

    dflt = SweepOptions(arrays="4x4,8x8", build=False)
    off = SweepOptions(arrays="4x4,8x8", build=False, remainder_tiles=False)
    on = SweepOptions(arrays="4x4,8x8", build=False, remainder_tiles=True)
    assert [a.schedule for a in dflt.arrays] == ["stream", "stream"]
    assert [a.schedule for a in off.arrays] == [False, False]
    assert [a.schedule for a in on.arrays] == [True, True]
    assert [str(a) for a in on.arrays] == ["4x4", "8x8"]


def test_array_that_does_not_schedule_is_named_before_any_task(capsys) -> None:
    """mnist_cnn's fc1 needs more direct-weight words than the design allows at 2x2."""
    t0 = time.perf_counter()
    rc = main(["sweep", "--arrays", "4x4,2x2", "--no-build"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("hwgen: error: --arrays 2x2: mnist_cnn does not schedule")
    assert "[sweep]" not in capsys.readouterr().out  # no task was started
    assert time.perf_counter() - t0 < 60


def _synthetic_points(coeffs: dict) -> list[dict]:
    pts = []
    for a in ARRAYS:
        f = features("ulx3s", "mnist_cnn", a)
        pts.append({"array": a, "features": f, "real": predict(coeffs, f)})
    return pts


TRUE = {"forms": {k: list(v) for k, v in FORMS.items()},
        "coeffs": {"LUT4": [6000.0, 60.0, 150.0, 250.0], "FF": [5000.0, 110.0, 100.0, 150.0],
                   "MULT18X18D": [1.0], "DP16KD": [20.0, 1.0], "Fmax": [110.0, -4.0]}}


def test_fit_recovers_known_coefficients_and_leave_one_out() -> None:
    got = fit(_synthetic_points(TRUE), "ulx3s")
    for r in RESOURCES:
        assert np.allclose(got["coeffs"][r], TRUE["coeffs"][r], rtol=1e-6, atol=1e-6), r
    # leave-one-out: exact here because the data follow the model (2x8 and 8x8 are the
    # arrays without a side of 4: without both, R, C and R*C would be collinear)
    loo = got["loo_predictions"]
    assert set(loo) == set(ARRAYS) and all(set(v) == set(RESOURCES) for v in loo.values())
    for p in got["points"]:
        for r, v in loo[p["array"]].items():
            assert v == pytest.approx(p["real"][r])


def test_fit_needs_enough_points() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        fit(_synthetic_points(TRUE)[:1], "ulx3s")


def test_fit_falls_back_to_a_form_the_arrays_determine() -> None:
    pts = [p for p in _synthetic_points(TRUE) if p["array"] not in ("2x8", "8x8")]  # side 4
    got = fit(pts, "ulx3s")
    assert got["forms"]["LUT4"] == ["one", "rows", "cols"]  # R*C = 4R + 4C - 16 here
    assert got["forms"]["FF"] == ["one", "pes", "cols"]
    assert got["forms"]["DP16KD"] == ["one", "bram_blocks"]
    for p in pts:  # the data still lie on the reduced forms for these arrays
        for r in ("LUT4", "FF"):
            assert predict(got, p["features"])[r] == pytest.approx(p["real"][r])
    # 2x4, 4x2, 4x4 determine FF's (one, pes, cols) exactly, so no point can check it: the
    # fit takes (one, pes), which 2x4 and 4x2 check (without 4x4 both have 8 PEs: no fit)
    three = fit(pts[:3], "ulx3s")
    assert three["forms"]["FF"] == ["one", "pes"]
    assert "FF" in three["loo_predictions"]["2x4"]
    assert "FF" not in three["loo_predictions"].get("4x4", {})


def test_fit_takes_the_form_that_predicts_left_out_builds_best() -> None:
    """Fmax measured flat with seed noise (the fourth sweep's medians): a line in log2(PEs)
    through three of them misses the fourth by 35 %, the constant by under 10 %."""
    real = {"4x4": 138.3, "8x8": 152.2, "12x8": 141.8, "8x16": 134.6}
    rest = {"4x4": (11_498, 11_444, 32, 88), "8x8": (19_774, 24_980, 96, 118),
            "12x8": (23_890, 31_709, 128, 141), "8x16": (35_313, 48_281, 156, 167)}
    pts = [{"array": a, "features": features("ulx3s", "mnist_cnn", a, remainder_tiles=False),
            "real": {**dict(zip(RESOURCES, rest[a], strict=False)), "Fmax": v}}
           for a, v in real.items()]
    got = fit(pts, "ulx3s")
    assert got["forms"]["Fmax"] == ["one"]
    assert got["coeffs"]["Fmax"][0] == pytest.approx(sum(real.values()) / 4, abs=1e-4)
    for a, v in real.items():
        assert abs(got["loo_predictions"][a]["Fmax"] - v) / v < 0.10


def test_fmax_never_rises_with_the_array() -> None:
    noisy = {**TRUE, "coeffs": {**TRUE["coeffs"], "Fmax": [60.0, 2.0]}}  # rising: noise
    got = fit(_synthetic_points(noisy), "ulx3s")
    assert got["forms"]["Fmax"] == ["one"]
    assert got["forms"]["LUT4"] == ["one", "pes", "rows", "cols"]


def test_features_follow_the_memory_plan_and_the_dsp_budget() -> None:
    f = {a: features("ulx3s", "mnist_cnn", a) for a in ("4x4", "8x8", "16x16")}
    assert f["8x8"]["dsp_demand"] == 64 + 4 * 8 and f["8x8"]["lut_mults"] == 0
    assert f["16x16"]["dsp_demand"] == 156 and f["16x16"]["lut_mults"] == 256 + 64 - 156
    assert f["4x4"]["bram_blocks"] < f["8x8"]["bram_blocks"] < f["16x16"]["bram_blocks"]
    assert f["8x8"]["acc_narrow"] == 64 * (32 - 25)  # mnist_cnn's PE accumulators: 25 bits


def test_lut_pes_and_narrow_accumulators_are_measured_terms() -> None:
    """Past the DSP budget each LUT-multiplier PE adds the measured LUT_PE_EXTRA (checked
    against yosys in sim/test_pe_cost.py); each accumulator bit below 32 saves
    ACC_BIT_SAVING per PE, and each one left ACC_MUX_LUT4 (its multiplexer in the carry
    cells, which the fitted builds did not have)."""
    c = load_coeffs("ulx3s")
    f = features("ulx3s", "mnist_cnn", "16x16")
    base = predict(c, {**f, "lut_mults": 0.0, "acc_narrow": 0.0, "acc_mux_bits": 0.0})
    got = predict(c, f)
    for r in ("LUT4", "FF"):
        want = f["lut_mults"] * LUT_PE_EXTRA[r] - f["acc_narrow"] * ACC_BIT_SAVING[r]
        if r == "LUT4":
            want -= ACC_MUX_LUT4 * f["acc_mux_bits"]
        assert got[r] - base[r] == pytest.approx(want), r
    assert f["acc_mux_bits"] == 256 * 25
    assert f["lut_mults"] == 164  # 16x16: 256 PEs, 156 - 4*16 = 92 of them on DSPs


def test_shipped_estimator_is_monotone_and_fast(capsys) -> None:
    """The shipped coefficients (fitted to real builds): more rows or columns never cost
    fewer LUT4/FF/DSPs, more rows (buffer copies) never fewer DP16KD (more columns may: the
    weight memories get shallower), bigger is never faster; `hwgen estimate` answers in
    under a second."""
    assert shipped_coeffs_path("ulx3s").exists()
    c = load_coeffs("ulx3s")
    assert len(c["points"]) >= 3 and c["board"] == "ulx3s"
    grid = [ArrayConfig(r, cc) for r in (2, 4, 8, 16) for cc in (2, 4, 8, 16)
            if not (r == 2 and cc == 2)]  # mnist_cnn does not schedule on 2x2
    est = {(a.rows, a.cols): estimate("ulx3s", "mnist_cnn", a, c)["estimate"] for a in grid}
    for (r, cc), e in est.items():
        for nxt in ((2 * r, cc), (r, 2 * cc)):
            if nxt in est:
                for k in ("LUT4", "FF", "MULT18X18D"):
                    assert est[nxt][k] >= e[k], (k, (r, cc), nxt)
                if nxt[0] > r:
                    assert est[nxt]["DP16KD"] >= e["DP16KD"], ((r, cc), nxt)
                assert est[nxt]["Fmax"] <= e["Fmax"] + 1e-9  # bigger is never faster
    assert est[(16, 16)]["MULT18X18D"] <= 156
    t0 = time.perf_counter()
    assert main(["estimate", "--board", "ulx3s", "--array", "4x8"]) == 0
    assert time.perf_counter() - t0 < 1.0
    out = capsys.readouterr().out
    assert "LUT4" in out and "DP16KD" in out and "Fmax" in out


def test_estimate_takes_the_model_as_issue_11_writes_it(capsys) -> None:
    """`hwgen estimate --board ulx3s --array RxC [MODEL]`: the positional model is --model's."""
    assert main(["estimate", "--board", "ulx3s", "--array", "4x4", "tiny_cnn"]) == 0
    pos = capsys.readouterr().out
    assert main(["estimate", "--board", "ulx3s", "--array", "4x4", "--model", "tiny_cnn"]) == 0
    opt = capsys.readouterr().out
    assert pos.startswith("tiny_cnn on a 4x4 array")
    assert pos.splitlines()[:-1] == opt.splitlines()[:-1]  # (the last line: the time taken)


def test_a_closed_pipe_is_no_traceback() -> None:
    """`hwgen estimate | head -1` style: the reader goes away before the output is written."""
    p = subprocess.Popen([sys.executable, "-m", "hwgen.cli", "estimate", "--array", "12x16"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()  # before the CLI has imported anything: its first print meets EPIPE
    with p.stderr:
        err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 141, err
    assert "Traceback" not in err, err


def _raw(results: list[dict], arrays=("4x4", "4x8")) -> dict:
    return {"command": "hwgen sweep (test)", "board": "ulx3s", "device": "ULX3S",
            "model": "mnist_cnn", "arrays": list(arrays), "seeds": 1, "images": 1,
            "build": True, "scheduler": "test", "finished": len(results),
            "tasks": 2 * len(arrays), "wall_s": 60.0, "tasks_results": results}


def _cycles(a: str, cycles: float, busy: float = 0.9) -> dict:
    return {"kind": "cycles", "array": a, "ok": True, "bit_exact": "1/1", "cycles": cycles,
            "pe_busy": busy, "error": None}


def _build(a: str, lut: int, fmax: float, target: float = 150.0) -> dict:
    res = {"LUT4": lut, "FF": lut // 2, "MULT18X18D": 32, "DP16KD": 80}
    ob = {"seed": 1, "fmax_mhz": fmax, "pll_mhz": target, "meets_clock": fmax >= target}
    return {"kind": "build", "array": a, "ok": True, "error": None, "cycles": 1, "on_board": ob,
            "resources": {k: {"used": v, "available": 1} for k, v in res.items()},
            "fmax_mhz": {"seeds": [1], "median": fmax}, "target_mhz": target,
            "meets_target": fmax >= target}


def test_report_writer(tmp_path) -> None:
    from hwgen.sweep.report import write

    raw = _raw([_cycles("4x4", 150_000), _build("4x4", 10_000, 160.0),
                _cycles("4x8", 75_000), _build("4x8", 20_000, 100.0)])
    res = write(raw, tmp_path)
    md = (tmp_path / "sweep.md").read_text()
    assert "| 4x4 | 16 | 10,000 | 5,000 | 32 | 80 | 160.0 (1) | 150,000 | 90.0 % | 937.5 " in md
    assert "| 4x8 | 32 | 20,000 | 10,000 | 32 | 80 | 100.0 (1) ✗ | 75,000 | 90.0 % | 750.0 " in md
    s = res["summary"]
    assert s["largest_fitting"] == "4x8" and s["largest_closing_timing"] == "4x4"
    assert s["best_array"] == "4x8" and s["best_us_per_inference"] == pytest.approx(750.0)
    row = {r["array"]: r for r in res["rows"]}["4x4"]
    assert row["inferences_per_s"] == pytest.approx(160e6 / 150_000)
    assert row["per_klut"] == pytest.approx(160e6 / 150_000 / 10)
    assert "Largest built array that fits the device: **4x8**" in md and "4x4**" in md
    # a bitstream runs at its PLL clock: 4x4 (160 MHz routed) at 150, 4x8 (100) not at all
    assert "| 99.9 % |" not in md and "| 1,000.0 at 150 MHz |" in md
    assert "| ✗ seed 1 100.0 < 150 MHz |" in md
    assert "best bitstream at its PLL clock: **1,000.0 µs** on 4x4." in md
    assert json.loads((tmp_path / "sweep.json").read_text())["all_ok"] is True
    # estimate vs real: signed percentages, "—" where a form has too few points (a second
    # _pct once shadowed the first and printed raw fractions and "None")
    est = md[md.index("## Estimator vs real"):]
    assert "None" not in est and re.search(r"\| [+-]\d+\.\d % \|", est), est
    # the shipped column is what `hwgen estimate` says for the array, with its error
    shipped = estimate("ulx3s", "mnist_cnn", "4x8")["estimate"]
    assert row["shipped"] == pytest.approx(estimate("ulx3s", "mnist_cnn", "4x4")["estimate"])
    err = 100 * (shipped["LUT4"] - 20_000) / 20_000
    assert f"| {shipped['LUT4']:,.0f} | {err:+.1f} % |" in est
    assert res["estimator_errors"]["LUT4"]["shipped_max"] is not None
    for png in ("sweep_resources.png", "sweep_perf.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"


def test_report_without_builds_estimates_with_the_shipped_fit(tmp_path) -> None:
    """`--no-build`: nothing to refit, every row estimated with the shipped coefficients."""
    from hwgen.sweep.report import write

    res = write({**_raw([_cycles("4x4", 150_000)], arrays=("4x4",)), "build": False}, tmp_path)
    assert res["coefficients"]["source"].startswith("shipped coefficients")
    assert res["rows"][0]["estimate"] == pytest.approx(
        estimate("ulx3s", "mnist_cnn", "4x4")["estimate"])


def test_report_back_to_back_columns(tmp_path) -> None:
    """A cycle task with the back-to-back figures (-n >= 3) fills the last two columns."""
    from hwgen.sweep.report import write

    c = {**_cycles("4x4", 150_000), "steady_cycles": 149_220.0, "steady_pe_busy": 0.905}
    res = write(_raw([c, _build("4x4", 10_000, 160.0)], arrays=("4x4",)), tmp_path)
    md = (tmp_path / "sweep.md").read_text()
    assert "| cycles back to back | PE busy back to back |" in md
    assert "| 149,220 | 90.5 % |" in md
    assert res["rows"][0]["pe_busy_back_to_back"] == 0.905


def test_report_names_failures_and_partial_runs(tmp_path) -> None:
    from hwgen.sweep.report import write

    bad = {"kind": "build", "array": "4x8", "ok": False, "fits": False,
           "error": "BuildError: the design does not fit the device: DP16KD 300/208"}
    res = write(_raw([_cycles("4x4", 150_000), _build("4x4", 10_000, 90.0), bad]), tmp_path)
    md = (tmp_path / "sweep.md").read_text()
    assert "Partial" in md and "4x8 build failed: BuildError" in md
    assert res["all_ok"] is False
    assert res["summary"]["largest_closing_timing"] is None
    assert "none of the swept arrays" in md


def test_report_merges_sweeps_with_either_schedule(tmp_path, capsys) -> None:
    """`--from-json A B`: one report and one fit over both sweeps' builds; a row keeps the
    schedule its tasks ran (its features, so its block RAM estimate, follow it)."""
    off = {**_raw([_cycles("4x4", 150_000), _build("4x4", 10_000, 140.0),
                   _cycles("8x8", 40_000), _build("8x8", 20_000, 150.0)], ("4x4", "8x8")),
           "remainder_tiles": False}
    on = {**_raw([_cycles("8x8", 38_000), _build("8x8", 20_500, 145.0),
                  _cycles("4x8", 70_000)], ("8x8", "4x8")),
          "remainder_tiles": True, "command": "hwgen sweep --remainder-tiles (test)"}
    files = []
    for i, r in enumerate((off, on)):
        files.append(tmp_path / f"raw{i}.json")
        files[-1].write_text(json.dumps(r))
    (tmp_path / "reports").mkdir()
    rc = main(["--workdir", str(tmp_path), "sweep", "--from-json", *map(str, files)])
    assert rc == 1  # partial: the second sweep's 4x8 build has not finished
    res = json.loads((tmp_path / "reports" / "sweep.json").read_text())
    rows = {r["label"]: r for r in res["rows"]}
    assert set(rows) == {"4x4", "8x8", "8x8 rt", "4x8 rt"}  # no empty 4x8 row without
    assert rows["8x8"]["cycles_per_inference"] == 40_000 and rows["8x8"]["LUT4"] == 20_000
    assert rows["8x8 rt"]["cycles_per_inference"] == 38_000 and not rows["8x8"]["remainder_tiles"]
    # (the shipped estimate: the fake builds all report 80 DP16KD, so the refit's is flat)
    blocks = {k: r["shipped"]["DP16KD"] for k, r in rows.items()}
    assert blocks["8x8 rt"] > blocks["8x8"] + 20  # the remainder tiles' direct words
    assert len(res["tasks_results"]) == 7 and res["tasks"] == 8
    md = (tmp_path / "reports" / "sweep.md").read_text()
    assert "| 8x8 rt | 64 |" in md and "rows marked rt scheduled with remainder tiles" in md
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**on, "model": "tiny_cnn"}))
    assert main(["sweep", "--from-json", str(files[0]), str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"hwgen: error: --from-json {other}: model 'tiny_cnn'"), err


SCHEDULES: list[tuple[str, str, bool]] = []  # (task kind, array, remainder tiles) as run


def fake_cycles(model: str, array: str, remainder_tiles: bool, n: int, wdir: str,
                board: str | None = None) -> dict:
    assert board == "ulx3s", board  # the cycles of the design the builds place
    SCHEDULES.append(("cycles", array, remainder_tiles))
    a = ArrayConfig.parse(array)
    return _cycles(array, 2_000_000 / a.pes)


def fake_build(model, array, remainder_tiles, board, seeds, n, wdir, freq_mhz=None,
               resources_only=False, pnr_freq_mhz=None) -> dict:
    SCHEDULES.append(("build", array, remainder_tiles))
    a = ArrayConfig.parse(array)
    b = _build(array, 5_000 + 400 * a.pes, 120.0 - a.pes)
    return _packed(b) if resources_only else b


def _packed(b: dict) -> dict:
    """A routed fake build as a resources-only one (the keys `build_task` leaves out)."""
    routed = ("fmax_mhz", "target_mhz", "meets_target", "cycles", "on_board")
    return {**{k: v for k, v in b.items() if k not in routed}, "resources_only": True}


def test_report_of_resources_only_builds(tmp_path) -> None:
    """`hwgen sweep --resources-only`: resources and the refit on them, no Fmax anywhere
    (no Fmax row in estimate vs real, no µs, no timing verdict), cycles as usual."""
    from hwgen.sweep.report import write

    raw = {**_raw([_cycles("4x4", 150_000), _packed(_build("4x4", 10_000, 160.0)),
                   _cycles("4x8", 75_000), _packed(_build("4x8", 20_000, 100.0))]),
           "resources_only": True}
    res = write(raw, tmp_path)
    md = (tmp_path / "sweep.md").read_text()
    assert "| 4x8 | 32 | 20,000 | 10,000 | 32 | 80 | — | 75,000 | 90.0 % | — " in md, md
    assert "(packed, not placed): **4x8**" in md and "nextpnr's packer" in md
    assert "post-route" not in md.split("## Estimator")[0]
    est = md[md.index("## Estimator vs real"):]
    assert "| 4x8 | LUT4 | 20,000 |" in est and "| 4x8 | Fmax |" not in est
    assert "Fmax on the shipped coefficients' routed builds" in est
    # the Fmax fit is the shipped one (its routed 4x4 and 4x8 points keep their Fmax)
    shipped = load_coeffs("ulx3s")
    assert res["coefficients"]["coeffs"]["Fmax"] == shipped["coeffs"]["Fmax"]
    s = res["summary"]
    assert s["largest_fitting"] == "4x8" and s["target_mhz"] is None
    assert s["best_us_per_inference"] is None and "us_per_inference" not in res["rows"][1]
    assert res["estimator_errors"]["Fmax"]["in_sample_max"] is None


def test_sweep_driver_on_dask_with_fake_tasks(tmp_path, monkeypatch, capsys) -> None:
    """The driver: every task submitted to the scheduler given, a progress line per task,
    the report and a refit of the coefficients written under reports/."""
    from distributed import LocalCluster

    from hwgen.paths import set_workdir
    from hwgen.sweep.run import SweepOptions, sweep

    monkeypatch.setenv("HWGEN_WORKDIR", str(tmp_path))
    set_workdir(tmp_path)
    SCHEDULES.clear()
    arrays = "2x4,2x8,4x4,4x8,8x4"
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as lc:
        opts = SweepOptions(arrays=arrays, model="tiny_cnn", scheduler=lc.scheduler_address,
                            command="test")
        res = sweep(opts, cycles_fn=fake_cycles, build_fn=fake_build, preflight=False)
    out = capsys.readouterr().out
    # Every task runs the sweep's schedule (the board default: two-stream). The tasks once
    # got the array as text, whose parse turns the direct form on: the builds ran another.
    assert sorted(SCHEDULES) == sorted((k, a, "stream") for k in ("cycles", "build")
                                       for a in arrays.split(","))
    assert out.count("[sweep] [") == 10 and "10/10" in out
    kinds = [ln.split()[4] for ln in out.splitlines() if ln.startswith("[sweep] [")]
    assert kinds == ["cycles"] * 5 + ["build"] * 5  # the quick measurements first
    assert res["all_ok"] and res["finished"] == 10
    assert [r["array"] for r in res["rows"]] == ["2x4", "2x8", "4x4", "4x8", "8x4"]
    coeffs = json.loads((tmp_path / "reports" / "estimate_coeffs_ulx3s.json").read_text())
    assert len(coeffs["points"]) == 5
    assert (tmp_path / "reports" / "sweep_raw.json").exists()
    from hwgen.sweep.report import rerender

    again = rerender([tmp_path / "reports" / "sweep_raw.json"])
    assert again["rows"] == json.loads(json.dumps(res["rows"], default=str))


def test_sweep_driver_passes_resources_only_to_the_builds(tmp_path, monkeypatch,
                                                         capsys) -> None:
    from distributed import LocalCluster

    from hwgen.paths import set_workdir
    from hwgen.sweep.run import SweepOptions, sweep

    monkeypatch.setenv("HWGEN_WORKDIR", str(tmp_path))
    set_workdir(tmp_path)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as lc:
        opts = SweepOptions(arrays="2x4,4x4,4x8", model="tiny_cnn", resources_only=True,
                            scheduler=lc.scheduler_address, command="test")
        res = sweep(opts, cycles_fn=fake_cycles, build_fn=fake_build, preflight=False)
    out = capsys.readouterr().out
    assert out.count("packed only") == 3 and "Fmax" not in out.split("Estimator")[0]
    assert res["all_ok"] and res["resources_only"] is True
    assert all(r["build"]["resources_only"] and "fmax" not in r for r in res["rows"])
    coeffs = json.loads((tmp_path / "reports" / "estimate_coeffs_ulx3s.json").read_text())
    # resources from the sweep's three builds alone; Fmax from the shipped routed points
    res_pts = [p for p in coeffs["points"] if p["real"]["LUT4"] is not None]
    assert sorted(p["array"] for p in res_pts) == ["2x4", "4x4", "4x8"]
    assert all(p["resources_from"] == "nextpnr --pack-only" for p in res_pts)


@pytest.mark.parametrize("rt", [False, True])
def test_tasks_run_the_schedule_they_are_given(monkeypatch, tmp_path, rt: bool) -> None:
    import hwgen.flow
    from hwgen.sweep import tasks

    seen = []
    monkeypatch.setattr(hwgen.flow, "run", lambda cfg: seen.append(cfg) or 1 / 0)
    assert tasks.cycles_task("tiny_cnn", "4x4", rt, 1, str(tmp_path))["ok"] is False
    assert tasks.build_task("tiny_cnn", "4x8", rt, "ulx3s", 3, 1, str(tmp_path))["ok"] is False
    assert [(str(c.array), c.array.remainder_tiles) for c in seen] == [("4x4", rt), ("4x8", rt)]
    # a build task runs its seeds itself: a Dask worker cannot start a nested LocalCluster
    assert (seen[1].seeds, seen[1].workers, seen[1].scheduler) == (3, 1, None)
    assert seen[1].resources_only is False


def test_resources_only_build_task_reports_a_packed_build(monkeypatch, tmp_path) -> None:
    """The build task of `hwgen sweep --resources-only`: the flow's build step told so, its
    resources-only report read (no Fmax, cycles nor bitstream in it)."""
    import types

    import hwgen.flow
    from hwgen.sweep import tasks

    res = {k: {"used": 1, "available": 2} for k in ("LUT4", "FF", "MULT18X18D", "DP16KD")}
    rep = {"resources": res, "multipliers": {}, "report_json": "r.json", "resources_only": True,
           "step_cpu_seconds": {}}
    seen = []
    monkeypatch.setattr(hwgen.flow, "run", lambda cfg: seen.append(cfg)
                        or types.SimpleNamespace(board_report=rep))
    r = tasks.build_task("tiny_cnn", "4x8", "stream", "ulx3s", 1, 1, str(tmp_path),
                         resources_only=True)
    assert seen[0].resources_only is True
    assert r["ok"] and r["resources_only"] and r["resources"] == res and "fmax_mhz" not in r


def test_block_ram_count_follows_what_yosys_mapped() -> None:
    """Requant parameter memories as the real builds mapped them (DP16KD per memory read from
    the netlists of the 8x8 and 8x16 builds of session 9)."""
    from hwgen.schedule.capacity import dp16kd_blocks

    assert dp16kd_blocks(22, 288, one_read_port=True) == 0  # 2x4/4x4: LUT RAM
    assert dp16kd_blocks(43, 288, one_read_port=True) == 8  # 8x4
    assert dp16kd_blocks(22, 576, one_read_port=True) == 16  # 8x8
    assert dp16kd_blocks(11, 1152, one_read_port=True) == 32  # 8x16


def test_estimate_follows_the_schedule_switch() -> None:
    from hwgen.sweep.estimate import features

    on = features("ulx3s", "mnist_cnn", "8x8", remainder_tiles=True)
    off = features("ulx3s", "mnist_cnn", "8x8", remainder_tiles=False)
    assert on["bram_blocks"] > off["bram_blocks"]  # the direct-weight memory of remainder tiles


def _build_report(array: str, rt: bool, lut4: int, fmax: float) -> dict:
    """The fields of a `hwgen build` report (hwgen.boards.build) that a refit reads."""
    return {"board": "ulx3s", "model": "mnist_cnn", "array": array, "remainder_tiles": rt,
            "command": f"hwgen build --array {array}", "target_mhz": 150.0,
            "resources": {"LUT4": {"used": lut4}, "FF": {"used": 2 * lut4},
                          "MULT18X18D": {"used": 156}, "DP16KD": {"used": 190}},
            "fmax_post_route_mhz": {"seeds": [1, 2], "median": fmax}}


def test_add_build_refits_with_a_build_report(tmp_path, capsys) -> None:
    """`hwgen estimate --add-build REPORT` adds the build's figures to the shipped fit's
    points (replacing a point of the same array and schedule), refits, writes the refit and
    estimates with it; an unreadable or foreign report is one line, exit 2."""
    shipped = load_coeffs("ulx3s")
    rep = tmp_path / "board.json"
    rep.write_text(json.dumps(_build_report("12x16", False, 50_000, 100.0)))
    out = tmp_path / "refit.json"
    assert main(["estimate", "--array", "12x16", "--add-build", str(rep), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    got = json.loads(out.read_text())
    labels = [p["array"] for p in got["points"]]
    assert labels == [p["array"] for p in shipped["points"] if p["array"] != "12x16"] + ["12x16"]
    new = next(p for p in got["points"] if p["array"] == "12x16")
    assert new["real"] == {"LUT4": 50_000, "FF": 100_000, "MULT18X18D": 156, "DP16KD": 190,
                           "Fmax": 100.0}
    assert new["features"] == features("ulx3s", "mnist_cnn", "12x16", remainder_tiles=False)
    assert "| 12x16 | LUT4 | 50,000 |" in text and "refitted on" in text
    # the same array again replaces its point; with remainder tiles it is another point
    rep.write_text(json.dumps(_build_report("12x16", False, 51_000, 101.0)))
    assert main(["estimate", "--add-build", str(rep), "--coeffs", str(out), "--out",
                 str(out)]) == 0
    again = json.loads(out.read_text())
    assert [p["array"] for p in again["points"]] == labels
    assert next(p for p in again["points"] if p["array"] == "12x16")["real"]["LUT4"] == 51_000
    capsys.readouterr()
    rep.write_text(json.dumps({"board": "ulx3s", "array": "4x4"}))
    assert main(["estimate", "--add-build", str(rep), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(rep) in err and "not a `hwgen build` report" in err


def test_drop_point_refits_without_it(tmp_path, capsys) -> None:
    """`hwgen estimate --drop-point LABEL...` refits without those measured points (an older
    design's builds) before any --add-build: the points are gone, the fit is that of the
    others, and an unknown label is one line naming it and the fit's points, exit 2."""
    from hwgen.sweep.estimate import fit

    shipped = load_coeffs("ulx3s")
    out = tmp_path / "refit.json"
    drop = ["12x16 rs", "16x8 rs"]  # a routed point and a resources-only one
    assert main(["estimate", "--drop-point", *drop, "--out", str(out)]) == 0
    assert "refitted on" in capsys.readouterr().out
    got = json.loads(out.read_text())
    keep = [p for p in shipped["points"] if p["array"] not in drop]
    assert [p["array"] for p in got["points"]] == [p["array"] for p in keep]
    assert got["coeffs"] == fit(keep, "ulx3s")["coeffs"] != shipped["coeffs"]
    assert main(["estimate", "--drop-point", "13x16", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--drop-point '13x16': no such point" in err
    assert "12x16 rs" in err


def test_a_build_for_a_slower_clock_gives_no_fmax_point(tmp_path, capsys) -> None:
    """A build placed for a clock below the board's target (`--freq 100`) adds its
    resources to the fit but not its Fmax: nextpnr stops pressing once that clock is met,
    so a refit's Fmax is the same with it as without it."""
    shipped = load_coeffs("ulx3s")
    # (16x8: a point the shipped fit has no Fmax for, so the refit's Fmax must not move)
    slow = {**_build_report("16x8", "stream", 52_000, 99.0), "target_mhz": 100.0}
    rep = tmp_path / "board.json"
    rep.write_text(json.dumps(slow))
    out = tmp_path / "refit.json"
    assert main(["estimate", "--array", "16x8", "--add-build", str(rep), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    got = json.loads(out.read_text())
    new = next(p for p in got["points"] if p["array"] == "16x8 rs")
    assert new["real"]["Fmax"] is None and new["real"]["LUT4"] == 52_000
    assert got["coeffs"]["Fmax"] == shipped["coeffs"]["Fmax"]
    assert got["coeffs"]["LUT4"] != shipped["coeffs"]["LUT4"]
    assert "| 16x8 rs | Fmax | — |" in text
    # placed for the board's clock with --pnr-freq while its PLL runs slower: a point
    fast = {**slow, "top": {"pnr_mhz": 150.0}}
    rep.write_text(json.dumps(fast))
    assert main(["estimate", "--array", "16x8", "--add-build", str(rep), "--out", str(out)]) == 0
    capsys.readouterr()
    got = json.loads(out.read_text())
    assert next(p for p in got["points"] if p["array"] == "16x8 rs")["real"]["Fmax"] == 99.0


def test_resources_only_build_keeps_the_routed_fmax_it_replaces(tmp_path, capsys) -> None:
    """A `hwgen build --resources-only` report (nextpnr's packer, no Fmax) is a resource point:
    it replaces the point of its array and schedule, keeps that point's routed Fmax (marked,
    and the refit's Fmax unchanged), and alone gives no Fmax point."""
    shipped = load_coeffs("ulx3s")
    packed = _build_report("8x8", "stream", 21_000, 0.0)
    del packed["fmax_post_route_mhz"]
    packed["resources_only"] = True
    rep = tmp_path / "board.json"
    rep.write_text(json.dumps(packed))
    out = tmp_path / "refit.json"
    assert main(["estimate", "--add-build", str(rep), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    got = json.loads(out.read_text())
    old = next(p for p in shipped["points"] if p["array"] == "8x8 rs")
    new = next(p for p in got["points"] if p["array"] == "8x8 rs")
    assert new["real"]["LUT4"] == 21_000 and new["real"]["Fmax"] == old["real"]["Fmax"]
    assert new["resources_from"] == "nextpnr --pack-only" and "fmax_from" in new
    assert got["coeffs"]["Fmax"] == shipped["coeffs"]["Fmax"]
    assert got["coeffs"]["LUT4"] != shipped["coeffs"]["LUT4"]
    assert "| 8x8 rs † | Fmax |" in text and "| 8x8 rs | LUT4 | 21,000 |" in text
    # an array the fit has no routed build of: resources only
    rep.write_text(json.dumps({**packed, "array": "16x8"}))
    assert main(["estimate", "--add-build", str(rep), "--out", str(out)]) == 0
    capsys.readouterr()
    p16 = next(p for p in json.loads(out.read_text())["points"] if p["array"] == "16x8 rs")
    assert p16["real"]["Fmax"] is None and "fmax_from" not in p16


def test_replace_resources_fits_them_on_the_added_builds_alone(tmp_path, capsys) -> None:
    """`--replace-resources`: LUT4/FF/DSP/BRAM fitted on the added (today's) builds only, the
    earlier points kept as Fmax points; without --add-build it is a one-line usage error."""
    shipped = load_coeffs("ulx3s")
    paths = []
    # (not the 12x16: the shipped fit's routed 12x16 stays, its resources left out)
    arrays = ("4x4", "8x8", "12x8", "8x16", "16x8")
    for k, arr in enumerate(arrays):
        rep = {**_build_report(arr, "stream", 10_000 + 300 * k * k, 0.0), "resources_only": True}
        del rep["fmax_post_route_mhz"]
        paths.append(tmp_path / f"{arr}.json")
        paths[-1].write_text(json.dumps(rep))
    out = tmp_path / "refit.json"
    argv = ["estimate", "--replace-resources", "--out", str(out), "--add-build", *map(str, paths)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    got = json.loads(out.read_text())
    with_lut4 = {p["array"] for p in got["points"] if p["real"]["LUT4"] is not None}
    assert with_lut4 == {f"{a} rs" for a in arrays}
    fmax = {p["array"]: p["real"]["Fmax"] for p in got["points"]}
    assert all(fmax[p["array"]] == p["real"]["Fmax"] for p in shipped["points"]
               if p["real"]["Fmax"] is not None)
    assert got["coeffs"]["Fmax"] == shipped["coeffs"]["Fmax"]
    assert "left out of the fit" in text
    assert main(["estimate", "--replace-resources"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--replace-resources" in err and "--add-build" in err


def test_two_added_builds_of_one_array_make_one_point() -> None:
    """Of two builds of the same array and schedule, the later is the point (both once
    stayed, so the array weighed twice in the fit)."""
    from hwgen.sweep.estimate import point_from_report, refit_with

    shipped = load_coeffs("ulx3s")
    new = [point_from_report(_build_report("12x16", False, n, 100.0)) for n in (50_000, 52_000)]
    pts = [p for p in refit_with(shipped, new)["points"] if p["array"] == new[0]["array"]]
    assert len(pts) == 1 and pts[0]["real"]["LUT4"] == 52_000
