"""The random-network RTL regression: N seeded cases as Dask tasks, shrink failures, report.

Case i of a run has seed ``seed + i``; ``hwgen regress --seed S -n 1`` (``make regress
SEED=S``) replays it alone. Results: a line per case with a progress bar, a summary table,
reports/regress.xml (merged JUnit) and reports/regress.json.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from distributed import as_completed

from hwgen.paths import reports, workdir
from hwgen.regress.case import N_IMAGES
from hwgen.regress.gen import MAX_SIDE

__all__ = ["case_task", "shrink_task", "regress", "summary_table"]


def case_task(seed: int, n_images: int, wdir: str, max_side: int = MAX_SIDE,
              design: dict | None = None) -> dict:
    """Dask task: generate the case for ``seed`` and run it in RTL on ``design`` (the result
    of its shape's ``build_design`` task)."""
    from hwgen.regress.case import run_case
    from hwgen.regress.gen import random_spec

    t0 = time.perf_counter()
    try:
        spec = random_spec(seed, max_side=max_side)
    except Exception as e:  # a generator failure is this seed's error, not the run's
        return {"seed": seed, "spec": "?", "passed": False, "images": 0, "cycles": 0,
                "wall_s": time.perf_counter() - t0, "error": f"{type(e).__name__}: {e}"}
    return run_case(spec, n_images, wdir, design=design)


def shrink_task(seed: int, n_images: int, wdir: str, max_side: int = MAX_SIDE,
                max_tries: int = 24) -> dict:
    """Dask task: shrink the failing case ``seed``; return the smallest failing variant's result
    (its first diverging layer and waveform) under ``shrunk_result``."""
    from hwgen.regress.case import run_case
    from hwgen.regress.gen import random_spec
    from hwgen.regress.shrink import shrink

    spec = random_spec(seed, max_side=max_side)
    last: dict = {}

    def fails(cand) -> bool:
        r = run_case(cand, n_images, wdir, tag=f"_shrink{fails.n}")
        fails.n += 1
        if not r["passed"]:
            last.clear()
            last.update(r)
        return not r["passed"]

    fails.n = 0
    best, tries = shrink(spec, fails, max_tries=max_tries)
    return {"seed": seed, "shrunk": best.describe() if best != spec else None,
            "tries": tries, "shrunk_result": dict(last) if best != spec else None}


class _Progress:
    """A text progress bar over cases, one line per finished case (log-friendly)."""

    def __init__(self, total: int, rerun: str, out=sys.stdout, width: int = 24) -> None:
        self.rerun = rerun
        self.total, self.done, self.failed = total, 0, 0
        self.out, self.width, self.t0 = out, width, time.perf_counter()

    def update(self, r: dict) -> None:
        self.done += 1
        self.failed += not r["passed"]
        fill = self.width * self.done // self.total
        bar = "#" * fill + "." * (self.width - fill)
        status = "ok  " if r["passed"] else "FAIL"
        print(f"[{bar}] {self.done}/{self.total} {time.perf_counter() - self.t0:6.0f}s  "
              f"seed {r['seed']} {status} {r['cycles']:>7,} cycles {r['wall_s']:5.1f}s "
              f"{r.get('cpu_s', 0.0):5.1f} CPU-s  "
              f"{r['spec']}", file=self.out, flush=True)
        if not r["passed"]:
            print(f"    {r.get('first_bad_layer') or r.get('error')}  "
                  f"(rerun: {self.rerun.format(seed=r['seed'])})", file=self.out, flush=True)


def _rerun(images: int, max_side: int) -> str:
    """The command that replays one case alone ({seed} to be filled in)."""
    if images == N_IMAGES and max_side == MAX_SIDE:
        return "make regress SEED={seed}"
    return f"hwgen regress -n 1 --seed {{seed}} --images {images} --max-side {max_side}"


def summary_table(results: list[dict], wall: float, designs: list[dict] | None = None) -> str:
    """Cases, passed, failed, simulated cycles, wall (and the CPU spent, designs included)."""
    passed = sum(r["passed"] for r in results)
    cpu = sum(r.get("cpu_s", 0.0) for r in [*results, *(designs or [])])
    rows = [("cases", len(results)), ("passed", passed), ("failed", len(results) - passed),
            ("simulated cycles", f"{sum(r['cycles'] for r in results):,}"),
            ("designs built", len(designs or [])), ("CPU", f"{cpu:.0f} s"),
            ("wall", f"{wall:.0f} s")]
    lines = ["| " + " | ".join(k for k, _ in rows) + " |",
             "|" + " ---: |" * len(rows),
             "| " + " | ".join(str(v) for _, v in rows) + " |"]
    return "\n".join(lines)


def _write(results: list[dict], n: int, wall: float, out: Path,
           designs: list[dict]) -> dict:
    """Merged JUnit + regress.json for the cases finished so far; returns the summary."""
    from hwgen.regress.junit import merge

    merge(results, out)
    summary = {"cases": n, "finished": len(results), "passed": sum(r["passed"] for r in results),
               "cycles": sum(r["cycles"] for r in results), "wall_s": wall, "junit": str(out),
               "cpu_s": sum(r.get("cpu_s", 0.0) for r in [*results, *designs]),
               "designs": designs, "results": sorted(results, key=lambda r: r["seed"])}
    (out.parent / "regress.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


def _submit(cl, seeds: list[int], images: int, wdir: str, max_side: int) -> tuple[list, list]:
    """One design task per array shape the cases need (smallest first), then every case,
    each waiting for its shape's design. Cases outrank designs, so a built shape's cases run
    before the next design is built: results arrive from the start of a run."""
    from hwgen.regress.design import build_design
    from hwgen.regress.gen import case_shape

    shape = {s: case_shape(s, max_side) for s in seeds}
    order = sorted(set(shape.values()), key=lambda rc: (rc[0] * rc[1], rc))
    dfut = {rc: cl.submit(build_design, *rc, wdir, pure=False, key=f"design-{rc[0]}x{rc[1]}")
            for rc in order}
    cases = [cl.submit(case_task, s, images, wdir, max_side, dfut[shape[s]], pure=False,
                       key=f"case-seed{s}", priority=1) for s in seeds]
    return list(dfut.values()), cases


def _shrink(cl, failing: list[dict], results: list[dict], images: int, wdir: str,
            max_side: int) -> None:
    """Shrink the failing cases as Dask tasks; record and print the smallest failing nets."""
    print(f"[regress] shrinking {len(failing)} failing case(s) ...", flush=True)
    sh = cl.map(shrink_task, [r["seed"] for r in failing], n_images=images, wdir=wdir,
                max_side=max_side, pure=False)
    by_seed = {r["seed"]: r for r in results}
    for fut in as_completed(sh):
        s = fut.result()
        by_seed[s["seed"]]["shrunk"] = s["shrunk"]
        sr = s["shrunk_result"] or {}
        print(f"    seed {s['seed']}: smallest failing network "
              f"{s['shrunk'] or '(no smaller one fails)'}"
              + (f"; first diverging layer {sr.get('first_bad_layer')}, waveform "
                 f"{sr.get('waveform')}" if sr else ""), flush=True)


def regress(
    n: int,
    seed: int = 0,
    *,
    scheduler: str | None = None,
    workers: int = 2,
    images: int = N_IMAGES,
    max_side: int = MAX_SIDE,
    shrink: bool = True,
    junit: Path | None = None,
) -> dict:
    """Run cases ``seed .. seed+n-1``; return the summary (also written to reports/)."""
    from hwgen.dask_cluster import client as dask_client

    wdir = str(workdir())
    out = junit or reports() / "regress.xml"
    seeds = list(range(seed, seed + n))
    t0 = time.perf_counter()
    where = scheduler or f"LocalCluster({min(workers, n)} workers)"
    print(f"[regress] {n} random network(s), seeds {seeds[0]}..{seeds[-1]}, {images} image(s) "
          f"each, on Dask {where}", flush=True)
    results: list[dict] = []
    designs: list[dict] = []
    with dask_client(scheduler, min(workers, n)) as cl:
        bar = _Progress(n, _rerun(images, max_side))
        dfuts, futures = _submit(cl, seeds, images, wdir, max_side)
        for fut in as_completed([*dfuts, *futures]):
            r = fut.result()
            if "shape" in r:  # a design build
                designs.append(r)
                print(f"[regress] design {r['shape']}: {r['error'] or 'built'} "
                      f"({r['wall_s']:.0f} s wall, {r['cpu_s']:.0f} CPU-s)", flush=True)
                continue
            results.append(r)
            bar.update(r)
            _write(results, n, time.perf_counter() - t0, out, designs)  # a partial report
        failing = [r for r in results if not r["passed"] and r["spec"] != "?"]
        if shrink and failing:
            _shrink(cl, failing, results, images, wdir, max_side)
    wall = time.perf_counter() - t0
    summary = _write(results, n, wall, out, designs)
    print(summary_table(results, wall, designs))
    print(f"[regress] JUnit: {out}; details: {out.parent / 'regress.json'}", flush=True)
    return summary
