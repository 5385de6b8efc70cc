"""One regression case: a NetSpec through the whole flow and into Verilator, checked bit-exact.

``run_case`` is the Dask task: picklable arguments in, a plain dict out. It never raises for a
failing case; errors become the case's result so that one bad case cannot stop a run.
"""

from __future__ import annotations

import os
import shutil
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
# A case simulates a few thousand cycles: compiling the model's C++ at -O0 instead of -O1
# saves more build time than the slower simulation costs.
OPT_FAST = "-O0"


@dataclass
class CaseResult:
    seed: int
    spec: str
    passed: bool
    images: int = 0
    cycles: int = 0  # simulated cycles, summed over the images
    wall_s: float = 0.0
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
             tag: str = "") -> dict:
    """Quantize (random calibration), schedule, generate, build and simulate ``spec``; the
    output of all of it goes to sim_build/regress_logs/<case>.log."""
    if workdir:
        os.environ["HWGEN_WORKDIR"] = workdir  # Dask workers on other hosts share no cwd
    from hwgen.paths import sim_build

    log = sim_build() / "regress_logs" / f"seed{spec.seed}{tag}.log"
    log.unlink(missing_ok=True)
    with output_to(log):
        res = _run_case(spec, n_images, tag)
    res["log"] = str(log)
    return res


def _run_case(spec: NetSpec, n_images: int, tag: str) -> dict:
    from hwgen.sim.network import prepare, simulate
    from hwgen.sim.runner import build_dir_for

    t0 = time.perf_counter()
    res = CaseResult(seed=spec.seed, spec=spec.describe(), passed=False)
    try:
        qm = quantized(spec)
        case = prepare(qm, spec.array, images(spec, n_images, 1), gap=0.1, tag=tag)
        sim, out, _ = simulate(case, seed=spec.seed, opt_fast=OPT_FAST)
    except Exception as e:  # a flow error is this case's failure, reported with its seed
        res.error = f"{type(e).__name__}: {e}"
        res.extra["traceback"] = traceback.format_exc()
        res.wall_s = time.perf_counter() - t0
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
    if res.passed:  # ~100 MB of objects no other case will use; a failure keeps its build
        shutil.rmtree(build_dir_for(case.verilog.read_text(), "accel", OPT_FAST),
                      ignore_errors=True)
    res.wall_s = time.perf_counter() - t0
    return res.to_dict()
