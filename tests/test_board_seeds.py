"""A board build's placement seeds as Dask tasks (``hwgen build --seeds S --workers W``), with
a stand-in for nextpnr: every seed runs once, from a Dask worker process, and each one's result
is folded in as it finishes; a failing seed is a BuildError naming its step; a seed whose log
stops growing is stopped by the watchdog and replaced by the next unused seed. (The real nextpnr
runs in sim/test_board.py, one seed: the same ``run_tool`` call either way.)"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from hwgen.boards import build as board_build
from hwgen.boards.build import BOARDS, BoardJob, BuildError
from hwgen.boards.pnr_log import phase, phase_of, progressed
from hwgen.boards.top import clock_plan
from hwgen.config import ArrayConfig

# The stand-in "nextpnr": writes its --report file with the seed, its parent's PID (the Dask
# worker that ran it) and an Fmax; `--seed 2` fails when FAIL_SEED says so, and a seed in
# STALL_SEED ("all": every seed) prints a router line, writes its PID and sleeps (a minute).
ROUTER_LINE = "Info:     140000 |    25255     108850 |  302   626 |        77|     362.87"
FAKE_PNR = f"""
import json, os, sys, time
a = sys.argv[1:]
seed, report = a[a.index("--seed") + 1], a[a.index("--report") + 1]
print("placing seed", seed)
if seed == os.environ.get("FAIL_SEED"):
    sys.exit(3)
if os.environ.get("STALL_SEED") in (seed, "all"):
    print("{ROUTER_LINE}", flush=True)
    open(f"stalled_s{{seed}}.pid", "w").write(str(os.getpid()))
    for _ in range(200):  # (a broken watchdog: the test fails, it does not hang)
        time.sleep(0.3)
        if os.environ.get("STALL_REPEAT"):  # router1 stalled but printing: the same count
            print("{ROUTER_LINE}", flush=True)
    sys.exit(4)
json.dump({{"seed": int(seed), "ppid": os.getppid(),
           "fmax": {{"clk": {{"achieved": 100.0 + int(seed), "constraint": 150.0}}}}}},
          open(report, "w"))
"""


class _Platform:
    bitstream_suffix = "bit"

    def nextpnr_command(self) -> list[str]:
        return [sys.executable, "-c", FAKE_PNR]

    def nextpnr_outputs(self, tag: str) -> list[str]:
        return ["--textcfg", f"top_{tag}.config"]

    def pack_command(self, tag: str, name: str) -> list[str]:
        return [sys.executable, "-c", f"open('{name}.bit', 'w').write('{tag}')"]


def _place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seeds: int,
           first: int = 1):
    """``_place_route_pack`` on 2 LocalCluster workers: (report, seeds folded in, steps)."""
    folded: list[int] = []

    def seed_done(s: int, ctx: dict, platform, steps, state: dict) -> None:
        folded.append(s)
        state["report"] = {"seeds": sorted(folded)}

    monkeypatch.setattr(board_build, "_seed_done", seed_done)
    job = SimpleNamespace(seeds=seeds, workers=2, scheduler=None, stall_minutes=0,
                          router="router1", first_seed=first,
                          seed_numbers=range(first, first + seeds))
    steps = board_build._Steps(tmp_path, lambda _msg: None)
    ctx = {"job": job, "out": tmp_path}
    report = board_build._place_route_pack(ctx, _Platform(), steps)
    return report, folded, steps


def test_seeds_run_as_dask_tasks_and_fold_in(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("FAIL_SEED", raising=False)
    report, folded, steps = _place(tmp_path, monkeypatch, seeds=3)
    assert sorted(folded) == [1, 2, 3] and report == {"seeds": [1, 2, 3]}
    for s in (1, 2, 3):
        rep = (tmp_path / f"report_s{s}.json").read_text()
        assert f'"seed": {s}' in rep
        assert f'"ppid": {os.getpid()}' not in rep, "ran in the test process, not on Dask"
        assert "placing seed" in (tmp_path / f"nextpnr_s{s}.log").read_text()
        assert f"place & route (nextpnr, seed {s}/3)" in steps.times


def test_a_failing_seed_names_its_step(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FAIL_SEED", "2")
    failed = r"step 'place & route \(nextpnr, seed 2/2\)' failed \(exit 3\)"
    with pytest.raises(BuildError, match=failed):
        _place(tmp_path, monkeypatch, seeds=2)


def _build(tmp_path: Path, monkeypatch, seeds: int, workers: int, stall: str,
           minutes: float = 0.05, repeat: bool = False, first: int = 1):
    """``_place_route_pack`` with the real per-seed fold-in and report, a ``minutes`` watchdog
    (3 s) and STALL_SEED=``stall``: (report, log lines, steps)."""
    monkeypatch.setenv("HWGEN_WORKDIR", str(tmp_path))
    monkeypatch.setenv("STALL_SEED", stall)
    monkeypatch.setenv("STALL_REPEAT", "1" if repeat else "")
    monkeypatch.delenv("FAIL_SEED", raising=False)
    job = BoardJob(board="ulx3s", qmodel=SimpleNamespace(name="fake"), program=None,
                   plan=SimpleNamespace(array=ArrayConfig.parse("2x2")), images=[0],
                   seeds=seeds, workers=workers, stall_minutes=minutes,
                   first_seed=first)  # fmt: skip
    out = tmp_path / "build"
    out.mkdir()
    top = {"top": "HostTop", "clock": "PLL", "uart": "115200", "max_payload": 1024,
           "leds": ["busy"], "memory_plan": "plan", "clock_mhz": 150.0}
    ctx = {"job": job, "spec": BOARDS["ulx3s"], "out": out, "top": top,
           "clock": clock_plan("ecp5", 25.0, 150.0), "mults": {"how": "fake"}, "cycles": 1000}
    lines: list[str] = []
    steps = board_build._Steps(out, lines.append)
    return board_build._place_route_pack(ctx, _Platform(), steps), lines, steps


def _gone(pid_file: Path) -> None:
    """The stalled stand-in was stopped (and reaped), not left sleeping."""
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def _check_stall(rep: dict, lines: list[str], seed: int, by: int, routed: list[int]) -> None:
    f = rep["fmax_post_route_mhz"]
    assert f["seeds"] == routed and rep["complete"]
    assert f["per_seed"] == [100.0 + s for s in routed]
    [st] = f["stalled_seeds"]
    assert st["seed"] == seed and st["replaced_by"] == by
    assert st["last_log_line"] == ROUTER_LINE.strip()
    assert 0.05 <= st["minutes_without_progress"] < 0.5 and st["wall_s"] >= 3.0
    assert json.loads(Path(rep["report_json"]).read_text())["fmax_post_route_mhz"] == f
    md = Path(rep["report_md"]).read_text()
    assert f"Seed {seed} was stopped: no nextpnr progress for" in md
    assert f"`{ROUTER_LINE.strip()}`); replaced by seed {by}." in md
    assert f"Min / median / max are over the {len(routed)} routed seeds." in md
    said = [ln for ln in lines if "stopped, no nextpnr progress" in ln]
    assert len(said) == 1 and f"seed {seed}" in said[0] and ROUTER_LINE.strip() in said[0]


def test_a_stalled_seed_on_dask_is_replaced(tmp_path: Path, monkeypatch) -> None:
    rep, lines, steps = _build(tmp_path, monkeypatch, seeds=3, workers=2, stall="2")
    _check_stall(rep, lines, seed=2, by=4, routed=[1, 3, 4])
    assert "place & route (nextpnr, seed 4, replaces seed 2)" in steps.times
    assert "place & route (nextpnr, seed 2/3), stalled" in rep["step_seconds"]
    _gone(tmp_path / "build" / "stalled_s2.pid")


def test_first_seed_places_new_seeds(tmp_path: Path, monkeypatch) -> None:
    """--seeds 2 --first-seed 3: nextpnr's seeds 3 and 4 (after a build of 1 and 2), named so
    in the steps; a stalled one is replaced by the next seed past them (5)."""
    report, folded, steps = _place(tmp_path, monkeypatch, seeds=2, first=3)
    assert sorted(folded) == [3, 4] and report == {"seeds": [3, 4]}
    assert not (tmp_path / "nextpnr_s1.log").exists()
    for i, s in ((1, 3), (2, 4)):
        assert f'"seed": {s}' in (tmp_path / f"report_s{s}.json").read_text()
        assert f"place & route (nextpnr, seed {s}, {i} of 2)" in steps.times


def test_first_seed_replacement_is_past_the_range(tmp_path: Path, monkeypatch) -> None:
    rep, lines, _ = _build(tmp_path, monkeypatch, seeds=2, workers=1, stall="3", first=3)
    _check_stall(rep, lines, seed=3, by=5, routed=[4, 5])
    assert "--seeds 2 --first-seed 3 " in rep["command"]
    _gone(tmp_path / "build" / "stalled_s3.pid")


def test_a_router_printing_no_fewer_arcs_counts_as_stalled(tmp_path: Path, monkeypatch) -> None:
    """router1 near the end of a stalled route still prints a line every few minutes; a log
    that grows by such lines without a new low of arcs left is no progress."""
    rep, lines, _ = _build(tmp_path, monkeypatch, seeds=2, workers=1, stall="1", repeat=True)
    _check_stall(rep, lines, seed=1, by=3, routed=[2, 3])
    _gone(tmp_path / "build" / "stalled_s1.pid")


def test_progressed_wants_a_new_low_of_arcs_left() -> None:
    best = [float("inf")]
    assert progressed("Info: Routing..\n", best) and best == [float("inf")]
    assert progressed(ROUTER_LINE + "\n", best) and best == [77]
    assert not progressed(ROUTER_LINE + "\n", best)
    fewer = ROUTER_LINE.replace("       77|", "       76|")
    assert progressed(fewer + "\n", best) and best == [76]
    assert not progressed("", best)


def test_phase_reads_where_nextpnr_is(tmp_path: Path) -> None:
    """The progress lines' phase of a seed, from its log as it grows (nextpnr 0.11's lines)."""
    log = "Info: Packing IOs..\n"
    assert phase(log) == "packing"
    log += "Info: Creating initial analytic placement for 51641 cells, random placement\n"
    assert phase(log) == "placing (analytic)"
    log += "Info: Running simulated annealing placer for refinement.\n"
    assert phase(log) == "placing (annealing)"
    log += ("Info: Max frequency for clock '$glbnet$clk': 92.69 MHz (FAIL at 150.01 MHz)\n"
            "Info: Routing globals...\nInfo: Routing..\nInfo: Routing 263988 arcs.\n")
    assert phase(log) == "routing (placed at 92.7 MHz est.)"
    log += ROUTER_LINE + "\n" + ROUTER_LINE.replace("       77|", "   164064|") + "\n"
    assert phase(log) == "routing, 164,064 of 263,988 arcs left (placed at 92.7 MHz est.)"
    assert phase("") == "starting" and phase_of(tmp_path / "none.log") == "starting"
    (tmp_path / "s.log").write_text(log)
    assert phase_of(tmp_path / "s.log") == phase(log)


def test_heartbeat_names_the_phase(tmp_path: Path) -> None:
    """A running tool's heartbeat line carries its log's phase (``status``)."""
    lines: list[str] = []
    steps = board_build._Steps(tmp_path, lines.append)
    tool = "import time; print('Info: Packing IOs..', flush=True); time.sleep(1.5)"
    steps.run("place & route (nextpnr, seed 1/1)", [sys.executable, "-c", tool], "p.log",
              every=0.4, status=phase_of)
    beats = [ln for ln in lines if ": running, " in ln]
    assert beats and all(ln.endswith(" s: packing") for ln in beats), lines


def test_a_stalled_seed_in_sequence_is_replaced(tmp_path: Path, monkeypatch) -> None:
    rep, lines, _ = _build(tmp_path, monkeypatch, seeds=2, workers=1, stall="1")
    _check_stall(rep, lines, seed=1, by=3, routed=[2, 3])
    assert rep["bitstream_seed"] == 3
    # the packed seed routed at 103 MHz under a 150 MHz PLL: said, never silent
    b = rep["bitstream_on_board"]
    assert b["fmax_mhz"] == 103.0 and not b["meets_clock"] and b["us_per_inference"] is None
    # the fastest PLL output at or below 103 MHz from 25 MHz is 100 (25 / 8 * 33 = 103.125)
    assert b["rebuild_freq_mhz"] == 100.0
    assert "below its 150 MHz PLL clock: it will not run reliably on a board.** --freq 100 " \
        "is the fastest clock this seed would meet" in Path(rep["report_md"]).read_text()
    _gone(tmp_path / "build" / "stalled_s1.pid")


def test_when_every_replacement_stalls_the_build_fails(tmp_path: Path, monkeypatch) -> None:
    step = r"step 'place & route \(nextpnr, seed 2, replaces seed 1\)' stalled"
    with pytest.raises(BuildError, match=step + r".*every replacement stalled"):
        _build(tmp_path, monkeypatch, seeds=1, workers=1, stall="all", minutes=0.02)
    for s in (1, 2):
        _gone(tmp_path / "build" / f"stalled_s{s}.pid")
    assert not (tmp_path / "build" / "nextpnr_s3.log").exists()  # one replacement per seed


def test_a_bitstream_runs_at_its_pll_clock() -> None:
    """Its µs on a board are cycles / PLL clock, and only when its own seed (the packed one,
    not the median) routed at least that fast."""
    at_most = clock_plan("ecp5", 25.0, 150.0).at_most
    b = board_build.on_board([148.0, 153.5, 147.2], [1, 2, 3], 2, 150.0, 35_786, at_most)
    assert b["meets_clock"] and b["us_per_inference"] == pytest.approx(35_786 / 150.0)
    assert "meets its 150 MHz PLL clock: 238.6 µs" in board_build.on_board_line(b)
    assert b["rebuild_freq_mhz"] is None and b["rebuild_advice"] is None
    # the advice is a clock the PLL really gives at or below the Fmax: not 106 (106.25)
    slow = board_build.on_board([106.16], [1], 1, 150.0, 13_510, at_most)
    assert not slow["meets_clock"] and slow["rebuild_freq_mhz"] == 105.0
    assert "--freq 105 is the fastest clock this seed would meet" in board_build.on_board_line(slow)
    # no clock that slow (the iCEBreaker's oscillator is its only clock): said so
    ice = board_build.on_board([11.2], [1], 1, 12.0, 9_000, clock_plan("ice40", 12.0, None).at_most)
    assert ice["rebuild_freq_mhz"] is None
    assert "the design must route faster" in board_build.on_board_line(ice)


def test_build_command_warns_of_a_bitstream_slower_than_its_clock(monkeypatch, capsys) -> None:
    """`hwgen build` prints the warning (the flow stubbed: a report like a real build's)."""
    import types

    import hwgen.flow
    from hwgen.cli import main

    f = {"seeds": [1], "per_seed": [106.16], "min": 106.16, "median": 106.16,
         "max": 106.16, "stalled_seeds": []}
    rep = {"bitstream": "top.bit", "fmax_post_route_mhz": f, "target_mhz": 150.0,
           "meets_target": False, "cycles_per_inference": 13_510,
           "us_per_inference_at_median_fmax": 13_510 / 106.16,
           "bitstream_on_board": board_build.on_board(
               [106.16], [1], 1, 150.0, 13_510, clock_plan("ecp5", 25.0, 150.0).at_most),
           "top": {"top": "HostTop", "uart": "115200"}, "report_md": "r.md",
           "report_json": "r.json"}
    monkeypatch.setattr(hwgen.flow, "run", lambda cfg: types.SimpleNamespace(board_report=rep))
    assert main(["build", "--board", "ulx3s", "--array", "12x16"]) == 0
    out = capsys.readouterr().out
    assert "warning: the packed bitstream (seed 1) routed at 106.2 MHz, below its 150 MHz " \
        "PLL clock" in out and "--freq 105 is the fastest clock this seed would meet" in out
