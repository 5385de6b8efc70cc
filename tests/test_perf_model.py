"""hwgen.perf.model.back_to_back: the steady start-to-start period of fast-harness records."""

from __future__ import annotations

from types import SimpleNamespace

from hwgen.perf.model import back_to_back

PROG = SimpleNamespace(executed_ideal_cycles=90.0)


def _recs(starts: list[int]) -> list[dict]:
    return [{"index": i, "start": s} for i, s in enumerate(starts)]


def test_one_run_skips_the_first_period() -> None:
    got = back_to_back(PROG, _recs([10, 210, 310, 410]))  # the first image loads alone
    assert got == {"steady_cycles": 100.0, "steady_pe_busy": 0.9}


def test_sharded_run_counts_periods_within_each_shard() -> None:
    """Each shard is its own harness process: its cycle count starts again (hwgen sim
    --engine fast -n 20 once divided by zero here: the periods across shards cancelled)."""
    got = back_to_back(PROG, _recs([50, 250, 350, 50, 250, 350, 50, 250]))
    assert got == {"steady_cycles": 100.0, "steady_pe_busy": 0.9}


def test_no_steady_period_without_three_images_in_a_shard() -> None:
    assert back_to_back(PROG, _recs([50, 250, 50, 250])) == {}
    assert back_to_back(PROG, _recs([50, 250])) == {}
