"""One regression case: a NetSpec through the whole flow and into Verilator, checked bit-exact.

The case's program is loaded at run time into its shape's shared design (``design.py``), so a
case costs a front end, a quantization, a schedule and one cocotb run, not a Verilator build.

``run_case`` is the Dask task: picklable arguments in, a plain dict out. It never raises for a
failing case; errors become the case's result so that one bad case cannot stop a run.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hwgen.regress.gen import NetSpec, images, quantized

__all__ = ["CaseResult", "run_case", "N_IMAGES"]

N_IMAGES = 2  # test images per case: every logit of each is compared


@dataclass
class CaseResult:
    seed: int
    spec: str
    passed: bool
    images: int = 0
    cycles: int = 0  # simulated cycles, summed over the images
    wall_s: float = 0.0
    cpu_s: float = 0.0  # CPU of the case's process and its children (cocotb + simulator)
    first_bad_layer: str | None = None
    waveform: str | None = None
    results_xml: str | None = None
    error: str | None = None
    shrunk: str | None = None  # the smallest failing network the shrinker found
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout/stderr, and its children's (Verilator, cocotb), to ``path``
    (the regression's console shows one line per case; each case keeps its own log)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(path, "a") as f, redirect_stdout(f), redirect_stderr(f):
        os.dup2(f.fileno(), 1)  # the children write to the inherited descriptors
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            f.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def run_case(spec: NetSpec, n_images: int = N_IMAGES, workdir: str | None = None,
             tag: str = "", design: dict | None = None) -> dict:
    """Quantize (random calibration), schedule and simulate ``spec`` on its shape's design
    (``design``: the result of ``design.build_design``; built here, cached, when None); the
    output of all of it goes to sim_build/regress_logs/<case>.log."""
    if workdir:
        os.environ["HWGEN_WORKDIR"] = workdir  # Dask workers on other hosts share no cwd
    from hwgen.paths import sim_build

    log = sim_build() / "regress_logs" / f"seed{spec.seed}{tag}.log"
    log.unlink(missing_ok=True)
    with output_to(log):
        res = _run_case(spec, n_images, tag, design)
    res["log"] = str(log)
    return res


def _simulate(spec: NetSpec, n_images: int, tag: str, design: dict | None):
    """The case on its shape's design: (cocotb result, results.json)."""
    from hwgen.regress.design import OPT_FAST, build_design
    from hwgen.regress.gen import plan_for
    from hwgen.sim.network import prepare, simulate

    if design is None:
        design = build_design(spec.rows, spec.cols)
    if design.get("error"):
        raise RuntimeError(design["error"])
    qm = quantized(spec)
    case = prepare(qm, spec.array, images(spec, n_images, 1), gap=0.1, tag=tag,
                   plan=plan_for(spec.array), design=Path(design["verilog"]).parent)
    sim, out, _ = simulate(case, seed=spec.seed, opt_fast=OPT_FAST)
    return sim, out


def _run_case(spec: NetSpec, n_images: int, tag: str, design: dict | None) -> dict:
    from hwgen.regress.design import cpu_seconds

    t0, c0 = time.perf_counter(), cpu_seconds()
    res = CaseResult(seed=spec.seed, spec=spec.describe(), passed=False)
    try:
        sim, out = _simulate(spec, n_images, tag, design)
    except Exception as e:  # a flow error is this case's failure, reported with its seed
        res.error = f"{type(e).__name__}: {e}"
        res.extra["traceback"] = traceback.format_exc()
        res.wall_s, res.cpu_s = time.perf_counter() - t0, cpu_seconds() - c0
        return res.to_dict()
    imgs = out.get("images", [])
    res.images = len(imgs)
    res.cycles = sum(r["cycles"][0] for r in imgs)
    res.results_xml = str(sim.results_xml)
    res.waveform = str(sim.waveform) if sim.waveform else None
    bad = [r for r in imgs if not r["match"]]
    res.first_bad_layer = bad[0].get("first_bad_layer") if bad else None
    res.passed = sim.failed == 0 and sim.tests > 0 and len(imgs) == n_images and not bad
    if not res.passed and not bad:
        res.error = (f"{sim.failed}/{sim.tests} cocotb tests failed, "
                     f"{len(imgs)}/{n_images} images ran")
    res.wall_s, res.cpu_s = time.perf_counter() - t0, cpu_seconds() - c0
    return res.to_dict()
