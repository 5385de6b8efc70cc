"""The regression's designs: one Verilog file and one Verilator build per array shape.

Every case on a shape runs on the design of ``gen.plan_for(array)``; its program is loaded at
run time. The Verilog is cached under ``sim_build/regress_designs/<RxC>_<key>/`` (the key
covers the plan and the sources that generate the Verilog), the Verilator build in the
runner's per-Verilog cache (``sim_build/builds/``). Both are file-locked, so Dask workers (and
runs) that need the same design at the same time wait for one build.
"""

from __future__ import annotations

import fcntl
import hashlib
import resource
import time
import traceback
from dataclasses import asdict
from pathlib import Path

from hwgen.config import ArrayConfig

__all__ = ["OPT_FAST", "design_dir", "design_verilog", "build_design", "cpu_seconds"]

# The model's C++ optimisation level for regression builds: measured per case in
# docs/regress.md (a build now serves every case of its shape).
OPT_FAST = "-O1"
# Sources the Verilog of a design depends on (package-relative): a change rebuilds it.
RTL_CODE = ("rtl", "emit", "schedule", "config.py")


def cpu_seconds() -> float:
    """User + system CPU of this process and its finished children (Verilator, cocotb)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _key(array: ArrayConfig) -> str:
    import amaranth

    from hwgen.flow.cache import code_digest
    from hwgen.regress.gen import plan_for

    text = repr(asdict(plan_for(array))) + code_digest(RTL_CODE) + amaranth.__version__
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def design_dir(array: ArrayConfig) -> Path:
    from hwgen.paths import sim_build

    return sim_build() / "regress_designs" / f"{array}_{_key(array)}"


def design_verilog(array: ArrayConfig) -> Path:
    """accel.v of the shape's design (generated once, then reused); returns its path."""
    from hwgen.emit.verilog import write_design
    from hwgen.regress.gen import plan_for

    d = design_dir(array)
    d.mkdir(parents=True, exist_ok=True)
    with open(d / ".lock", "w") as lf:
        fcntl.flock(lf, fcntl.LOCK_EX)
        if not (d / ".done").exists():
            write_design(plan_for(array), d)
            (d / ".done").write_text("ok")
    return d / "accel.v"


def build_design(rows: int, cols: int, wdir: str | None = None,
                 opt_fast: str = OPT_FAST) -> dict:
    """Dask task: the shape's Verilog and its Verilator build (both cached). Never raises:
    a failure is returned under ``error`` and becomes the error of every case on the shape."""
    import os

    if wdir:
        os.environ["HWGEN_WORKDIR"] = wdir
    from hwgen.paths import sim_build
    from hwgen.regress.case import output_to
    from hwgen.sim.runner import prebuild

    array = ArrayConfig(rows, cols)
    t0, c0 = time.perf_counter(), cpu_seconds()
    res: dict = {"shape": str(array), "rows": rows, "cols": cols, "error": None}
    log = sim_build() / "regress_logs" / f"design_{array}.log"
    with output_to(log):
        try:
            v = design_verilog(array)
            prebuild(v.read_text(), "accel", opt_fast)
            res["verilog"] = str(v)
        except Exception as e:
            res["error"] = f"design {array}: {type(e).__name__}: {e} (log {log})"
            res["traceback"] = traceback.format_exc()
    res["wall_s"], res["cpu_s"] = time.perf_counter() - t0, cpu_seconds() - c0
    return res
