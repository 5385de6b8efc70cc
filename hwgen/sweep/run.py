"""``hwgen sweep``: array configurations as Dask tasks -> table, plots, fitted estimator.

Per array two tasks (hwgen.sweep.tasks): the RTL cycle measurement (fast Verilator harness,
bit-exact against the golden model) and, unless ``build=False``, the full board build
(yosys, nextpnr per seed, packer). Tasks go to a private LocalCluster
(``hwgen.dask_cluster.client``) or to the scheduler given (e.g. dask-jobqueue workers on
Slurm/LSF, started as for the regression: ``python -m hwgen.regress.jobqueue``;
docs/regress.md). All cycle tasks run before the builds, builds go smallest first, so
results arrive early; ``reports/sweep_raw.json`` is rewritten after every task.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hwgen.config import ArrayConfig
from hwgen.errors import UsageError

__all__ = ["SweepOptions", "parse_arrays", "sweep", "Progress"]


def parse_arrays(text: str) -> tuple[ArrayConfig, ...]:
    """``"2x2,2x4,4x4"`` -> arrays (duplicates dropped, order kept); UsageError names the bad
    one."""
    out: list[ArrayConfig] = []
    for word in (w.strip() for w in str(text).split(",")):
        try:
            a = ArrayConfig.parse(word)
        except ValueError as e:
            raise UsageError(f"--arrays {text!r}: {e}") from None
        if a not in out:
            out.append(a)
    return tuple(out)


@dataclass(frozen=True)
class SweepOptions:
    """Everything a sweep needs, checked on construction (before any work)."""

    arrays: tuple[ArrayConfig, ...]
    board: str = "ulx3s"
    model: str = "mnist_cnn"
    seeds: int = 1
    images: int = 1  # test images per RTL cycle measurement
    build: bool = True
    # the builds stop after nextpnr's packer: resources in minutes, no Fmax (estimator points)
    resources_only: bool = False
    scheduler: str | None = None
    workers: int = 1
    freq_mhz: float | None = None
    pnr_freq_mhz: float | None = None  # as `hwgen build --pnr-freq`
    # as `hwgen build`: the two-stream form on boards (False: none, True: the direct form)
    remainder_tiles: bool | str = "stream"
    command: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        from hwgen.boards.build import BOARDS, DEFAULT_BAUD, check_options

        if isinstance(self.arrays, str):
            object.__setattr__(self, "arrays", parse_arrays(self.arrays))
        object.__setattr__(self, "arrays", tuple(
            a.with_schedule(self.remainder_tiles) for a in self.arrays))
        if not self.arrays:
            raise UsageError("--arrays: give at least one array, e.g. 2x2,4x4")
        for name in ("images", "workers"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise UsageError(f"--{name} {v!r}: must be an integer >= 1")
        check_options(self.board, self.seeds, self.freq_mhz, DEFAULT_BAUD,
                      pnr_freq_mhz=self.pnr_freq_mhz)
        if self.resources_only and not self.build:
            raise UsageError("--resources-only with --no-build: the resources come from the "
                             "builds; drop one of them")
        if BOARDS[self.board].family != "ecp5":
            raise UsageError(f"--board {self.board}: the sweep and its estimator cover ECP5 "
                             "boards (ulx3s)")


class Progress:
    """A live counter over tasks, one line per finished task (log-friendly)."""

    def __init__(self, total: int, out=None, width: int = 20) -> None:
        self.total, self.done, self.width = total, 0, width
        self.out = out or sys.stdout  # at call time (pytest swaps sys.stdout)
        self.t0 = time.perf_counter()

    def update(self, r: dict) -> None:
        self.done += 1
        fill = self.width * self.done // self.total
        bar = "#" * fill + "." * (self.width - fill)
        print(f"[sweep] [{bar}] {self.done}/{self.total} {time.perf_counter() - self.t0:6.0f}s  "
              f"{r['kind']:<6} {r['array']:<6} {_brief(r)}", file=self.out, flush=True)


def _brief(r: dict) -> str:
    if not r["ok"]:
        return f"FAILED: {r['error']}"
    if r["kind"] == "cycles":
        return (f"{r['bit_exact']} bit-exact, {r['cycles']:,.0f} cycles, PE busy "
                f"{100 * r['pe_busy']:.1f} % ({r.get('cpu_s', 0):.0f} CPU-s)")
    res = r["resources"]
    fmax = ("packed only" if r.get("resources_only") else
            f"Fmax {r['fmax_mhz']['median']:.1f} MHz")
    return (f"LUT4 {res['LUT4']['used']:,} FF {res['FF']['used']:,} "
            f"DSP {res['MULT18X18D']['used']} BRAM {res['DP16KD']['used']}, {fmax} "
            f"({r.get('cpu_s', 0):.0f} CPU-s)")


def _preflight(opts: SweepOptions, wdir: str) -> None:
    """Model and schedule errors for every array, before any task (quantize is cached)."""
    from hwgen.errors import HwgenError
    from hwgen.flow import BuildConfig, run

    steps = ("import", "quantize", "schedule")
    st = run(BuildConfig(model=opts.model, workdir=wdir, steps=steps[:2]))  # model errors
    for a in opts.arrays:
        try:
            run(BuildConfig(model=opts.model, array=a, workdir=wdir, steps=steps), state=st)
        except HwgenError as e:
            raise UsageError(f"--arrays {a}: {opts.model} does not schedule on it: {e}") from None
        st.done.remove("schedule")  # re-schedule on the next array; import/quantize stay


def _submit_cycles(cl, opts: SweepOptions, wdir: str, fn) -> list:
    return [cl.submit(fn, opts.model, str(a), a.schedule, opts.images, wdir, board=opts.board,
                      pure=False, key=f"cycles-{a}") for a in _by_size(opts.arrays)]


def _submit_builds(cl, opts: SweepOptions, wdir: str, fn) -> list:
    # priorities keep the smallest first (a scheduler with queuing may still interleave)
    return [cl.submit(fn, opts.model, str(a), a.schedule, opts.board, opts.seeds,
                      opts.images, wdir, opts.freq_mhz, resources_only=opts.resources_only,
                      pnr_freq_mhz=opts.pnr_freq_mhz, pure=False, key=f"build-{a}", priority=-i)
            for i, a in enumerate(_by_size(opts.arrays))]


def _by_size(arrays) -> list[ArrayConfig]:
    return sorted(arrays, key=lambda a: (a.pes, a.rows))


def sweep(opts: SweepOptions, *, cycles_fn: Callable | None = None,
          build_fn: Callable | None = None, preflight: bool = True) -> dict:
    """Run the sweep; returns the result (also reports/sweep.{json,md} + PNG plots)."""
    from distributed import as_completed

    from hwgen.dask_cluster import client
    from hwgen.paths import reports, workdir

    from . import tasks
    from .report import write

    wdir = str(workdir())
    if preflight:
        _preflight(opts, wdir)
    n_tasks = len(opts.arrays) * (2 if opts.build else 1)
    where = opts.scheduler or f"LocalCluster({opts.workers} worker(s))"
    print(f"[sweep] {opts.model} on {opts.board}: {', '.join(map(str, opts.arrays))}; "
          f"{n_tasks} Dask task(s) on {where}", flush=True)
    t0 = time.perf_counter()
    results: list[dict] = []
    out = reports()
    out.mkdir(parents=True, exist_ok=True)
    with client(opts.scheduler, opts.workers) as cl:
        bar = Progress(n_tasks)
        # The cycle measurements (minutes) before the builds (up to an hour each): Dask's
        # task queuing does not keep user priorities between separately submitted tasks.
        phases = [lambda: _submit_cycles(cl, opts, wdir, cycles_fn or tasks.cycles_task)]
        if opts.build:
            phases.append(lambda: _submit_builds(cl, opts, wdir, build_fn or tasks.build_task))
        for submit in phases:
            for fut in as_completed(submit()):
                results.append(fut.result())
                bar.update(results[-1])
                _raw(opts, results, time.perf_counter() - t0, out)  # partial results
    raw = _raw(opts, results, time.perf_counter() - t0, out)
    return write(raw, out)


def _raw(opts: SweepOptions, results: list[dict], wall: float, out: Path) -> dict:
    from hwgen.boards.build import BOARDS

    raw = {
        "command": opts.command, "board": opts.board,
        "device": BOARDS[opts.board].description, "model": opts.model,
        "arrays": [str(a) for a in opts.arrays], "seeds": opts.seeds, "images": opts.images,
        "remainder_tiles": opts.remainder_tiles,
        "build": opts.build, "resources_only": opts.resources_only,
        "scheduler": opts.scheduler or f"LocalCluster({opts.workers})",
        "finished": len(results), "tasks": len(opts.arrays) * (2 if opts.build else 1),
        "wall_s": wall, "tasks_results": results,
    }  # fmt: skip
    (out / "sweep_raw.json").write_text(json.dumps(raw, indent=1, default=str))
    return raw
