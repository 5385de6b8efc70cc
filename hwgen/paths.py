"""Where hwgen writes: every output lives under one work directory (default: the current one).

``hwgen --workdir DIR`` (or ``HWGEN_WORKDIR``) moves all of it; nothing is written next to
the installed package. The layout under the work directory:

  build/<model>/     quantized-model cache, accuracy cache
  rtl_out/<model>/   generated Verilog, manifest, program
  sim_build/         Verilator builds and simulation runs
  reports/           Markdown / JSON / PNG reports, JUnit XML
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = [
    "PACKAGE_DIR", "build_dir", "reports", "rtl_out", "set_workdir", "sim_build",
    "tools_on_path", "workdir",
]

PACKAGE_DIR = Path(__file__).resolve().parent


def tools_on_path() -> None:
    """Put the running interpreter's bin directory on PATH: the venv's verilator, yowasp-*
    and sby are found (also by the tools they start) when ``.venv/bin/hwgen`` runs without an
    activated venv."""
    bindir = str(Path(sys.executable).parent)
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if bindir not in parts:
        os.environ["PATH"] = os.pathsep.join([bindir, *parts])


def workdir() -> Path:
    return Path(os.environ.get("HWGEN_WORKDIR") or Path.cwd()).resolve()


def set_workdir(path: str | Path) -> Path:
    """Make ``path`` the work directory for this process and the simulators it starts."""
    p = Path(path).resolve()
    p.mkdir(parents=True, exist_ok=True)
    os.environ["HWGEN_WORKDIR"] = str(p)
    return p


def build_dir() -> Path:
    return workdir() / "build"


def rtl_out() -> Path:
    return workdir() / "rtl_out"


def sim_build() -> Path:
    return Path(os.environ.get("HWGEN_SIM_BUILD") or workdir() / "sim_build")


def reports() -> Path:
    return workdir() / "reports"
