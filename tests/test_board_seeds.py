"""A board build's placement seeds as Dask tasks (``hwgen build --seeds S --workers W``), with
a stand-in for nextpnr: every seed runs once, from a Dask worker process, and each one's result
is folded in as it finishes; a failing seed is a BuildError naming its step. (The real nextpnr
runs in sim/test_board.py, one seed: the same ``run_tool`` call either way.)"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from hwgen.boards import build as board_build
from hwgen.boards.build import BuildError

# The stand-in "nextpnr": writes its --report file with the seed and its parent's PID (the
# Dask worker that ran it); `--seed 2` fails when FAIL_SEED says so.
FAKE_PNR = """
import json, os, sys
a = sys.argv[1:]
seed, report = a[a.index("--seed") + 1], a[a.index("--report") + 1]
print("placing seed", seed)
if seed == os.environ.get("FAIL_SEED"):
    sys.exit(3)
json.dump({"seed": int(seed), "ppid": os.getppid()}, open(report, "w"))
"""


class _Platform:
    def nextpnr_command(self) -> list[str]:
        return [sys.executable, "-c", FAKE_PNR]

    def nextpnr_outputs(self, tag: str) -> list[str]:
        return ["--textcfg", f"top_{tag}.config"]


def _place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seeds: int):
    """``_place_route_pack`` on 2 LocalCluster workers: (report, seeds folded in, steps)."""
    folded: list[int] = []

    def seed_done(s: int, ctx: dict, platform, steps, state: dict) -> None:
        folded.append(s)
        state["report"] = {"seeds": sorted(folded)}

    monkeypatch.setattr(board_build, "_seed_done", seed_done)
    job = SimpleNamespace(seeds=seeds, workers=2, scheduler=None)
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
