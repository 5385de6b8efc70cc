"""The build pipeline: named steps run in order over one BuildState.

    import → quantize → schedule → evaluate → emit → simulate → build → report

Each step is a function ``step_<name>(state)`` that reads what earlier steps left in the
state and adds its own result. ``run(cfg, until=...)`` runs ``cfg.steps`` (up to ``until``);
a state can be resumed with more steps (``run(cfg, state=st)``): done steps are skipped.
Everything that can fail on user input fails in ``import`` or ``schedule``, before the long
steps (``evaluate``: the accuracy pass; ``simulate``: Verilator).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwgen import paths
from hwgen.errors import HwgenError

from .cache import EVAL_CODE, QUANT_CODE, artifact_digest, code_digest, graph_digest, key_digest
from .config import STEPS, BuildConfig
from .data import ArrayData, model_input
from .source import Source, resolve

__all__ = ["BuildState", "run", "STEP_FUNCS", "say"]


def say(msg: str) -> None:
    print(f"[hwgen] {msg}", flush=True)


@dataclass
class BuildState:
    cfg: BuildConfig
    done: list[str] = field(default_factory=list)
    source: Source | None = None
    graph: Any = None  # hwgen.ir.Graph (float)
    graph_sha256: str = ""
    qmodel: Any = None  # hwgen.quant.qmodel.QModel
    qmodel_dir: Path | None = None
    program: Any = None  # hwgen.schedule.program.Program
    accuracy: dict | None = None
    int8_logits: Any = None  # golden int8 logits of the evaluate step's images (cached too)
    sim_prep: Any = None  # fast engine: Verilog + harness build started after schedule
    sim_images: Any = None  # the images the simulate step runs (loaded by import: fail early)
    sim_labels: Any = None
    rtl_dir: Path | None = None
    lint_ok: bool | None = None
    case: Any = None  # hwgen.sim.network.NetworkCase
    summary: dict | None = None  # hwgen.perf summary of the RTL run
    report_paths: dict | None = None
    board_report: dict | None = None  # hwgen.boards.build report of the build step
    log: Callable[[str], None] = say

    @property
    def name(self) -> str:
        assert self.source is not None, "the import step has not run"
        return self.source.name

    @property
    def build_dir(self) -> Path:
        return (self.cfg.build_dir or paths.build_dir()) / self.name


# -- import ------------------------------------------------------------------------------


def step_import(st: BuildState) -> None:
    """Resolve the model source, check the data, and import the float graph (verified)."""
    cfg = st.cfg
    st.source = src = resolve(cfg)
    if "simulate" in cfg.steps and cfg.n > src.data.n_test:
        raise HwgenError(
            f"-n {cfg.n}: more images than the {src.data.desc} test set holds ({src.data.n_test})"
        )
    if cfg.eval_n is not None and cfg.eval_n > src.data.n_test:
        raise HwgenError(
            f"-n {cfg.eval_n}: more images than the {src.data.desc} test set holds "
            f"({src.data.n_test})"
        )
    if "simulate" in cfg.steps:
        st.sim_images, st.sim_labels = src.data.test(cfg.n)
    if src.kind == "onnx":
        st.graph = _import_onnx(src)
    else:
        from hwgen.frontend import import_model

        try:
            st.graph = import_model(src.module, src.in_shape, src.name)
        except HwgenError as e:
            if not src.shape_from:
                raise
            shape = "x".join(map(str, src.in_shape))
            raise HwgenError(f"{src.shape_from}: images of shape {shape} (C,H,W): {e}") from None
    st.graph_sha256 = graph_digest(st.graph)


def _import_onnx(src: Source) -> Any:
    try:
        from hwgen.frontend.onnx_import import import_onnx
    except ImportError as e:
        raise HwgenError(
            f"{src.onnx_path}: ONNX import is not available in this hwgen ({e})"
        ) from None
    graph, in_shape = import_onnx(src.onnx_path)
    src.in_shape = tuple(in_shape)
    data = src.data
    if isinstance(data, ArrayData):
        got = tuple(data.images.shape[1:])
        got = (1, *got) if len(got) == 2 else got
        if got != src.in_shape:
            raise HwgenError(
                f"{data.desc}: images are {list(got)} (C,H,W) but {src.onnx_path} takes "
                f"{list(src.in_shape)}"
            )
    elif src.in_shape != (1, 28, 28):
        raise HwgenError(
            f"{src.onnx_path}: input {list(src.in_shape)} is not MNIST's [1, 28, 28]; give "
            "--calib FILE (images the model takes)"
        )
    for node in graph.nodes:
        for f in ("weight", "bias"):
            a = getattr(node, f, None)
            if a is not None and not np.all(np.isfinite(a)):
                raise HwgenError(f"{src.onnx_path}: node {node.name} {f} holds NaN/inf values")
    if src.float_fn is None:
        from hwgen.quant.calibrate import run_float

        src.float_fn = lambda x: run_float(graph, x)
    return graph


# -- quantize ----------------------------------------------------------------------------


def step_quantize(st: BuildState) -> None:
    """Calibrate on the source's data and quantize; cached in build/<name>/qmodel/ under a
    key of the float graph, the calibration images, the settings and the code."""
    from hwgen.quant.artifact import ArtifactError, load, read_manifest, save
    from hwgen.quant.quantize import IN_SCALE, quantize

    cfg, src = st.cfg, st.source
    assert src is not None
    calib = src.data.calib(cfg.quant)
    key = {
        "graph_sha256": st.graph_sha256,
        "calib": src.data.key(),
        "calib_images": cfg.quant.calib_images,
        "quant": repr(cfg.quant),
        "calib_method": cfg.calib_method,
        "code_sha256": code_digest(QUANT_CODE),
    }
    d = st.qmodel_dir = st.build_dir / "qmodel"
    if (d / "manifest.json").exists():
        try:
            if read_manifest(d).get("meta", {}).get("cache_key") == key:
                st.qmodel = load(d)
                return
        except ArtifactError as e:
            st.log(f"{e}; rebuilding the cached model")
    x = model_input(calib)
    if tuple(x.shape[1:]) != tuple(st.graph.in_type.shape):
        raise HwgenError(
            f"{src.data.desc}: images are {list(x.shape[1:])} (C,H,W) but model {src.name} "
            f"takes {list(st.graph.in_type.shape)}"
        )
    # uint8 pixels keep the fixed MNIST contract (scale 1/127); float inputs derive theirs.
    in_scale = IN_SCALE if src.data.uint8 else None
    st.qmodel = quantize(st.graph, x, cfg.quant, method=cfg.calib_method, in_scale=in_scale)
    save(st.qmodel, d, meta={"cache_key": key})


# -- schedule ----------------------------------------------------------------------------


def step_schedule(st: BuildState) -> None:
    """Tile the QModel onto the array (ScheduleError names the layer and the sizes); every
    descriptor and header field is checked against its width here, before any long step."""
    from hwgen.rtl.descriptor import pack_descriptor, pack_header
    from hwgen.schedule.lower import lower

    st.program = lower(st.qmodel, st.cfg.array)
    pack_header(st.program)
    for lay in st.program.layers:
        pack_descriptor(lay, st.cfg.array.rows)


# -- evaluate ----------------------------------------------------------------------------


def step_evaluate(st: BuildState) -> None:
    """Float vs int8-golden accuracy and top-1 agreement on the test images (cached: the key
    covers the QModel artifact, the float graph, the test data and the code)."""
    cfg, src = st.cfg, st.source
    assert src is not None and st.qmodel_dir is not None
    key = {
        "qmodel": artifact_digest(st.qmodel_dir),
        "graph_sha256": st.graph_sha256,
        "data": src.data.key(),
        "n": cfg.eval_n,
        "code_sha256": code_digest(EVAL_CODE),
    }
    path = st.build_dir / "accuracy.json"
    # The int8 logits are kept too: the fast simulate step compares the RTL with them.
    logits_path = st.build_dir / f"int8_logits_{key_digest(key)[:16]}.npy"
    if path.exists():
        try:
            cached = json.loads(path.read_text())
            if cached.get("cache_key") == key_digest(key):
                st.accuracy = cached
                st.int8_logits = _load_logits(logits_path)
                return
        except (OSError, ValueError):
            pass  # unreadable cache: measure again
    n_txt = f"{cfg.eval_n:,}" if cfg.eval_n else f"{src.data.n_test:,}"
    st.log(f"measuring float and int8 accuracy of {src.name} on {n_txt} test images ...")
    st.accuracy = evaluate_accuracy(st, cfg.eval_n)
    st.accuracy["cache_key"] = key_digest(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.glob("int8_logits_*.npy"):
        old.unlink()
    np.save(logits_path, st.int8_logits)
    path.write_text(json.dumps(st.accuracy, indent=1))


def _load_logits(path: Path) -> Any:
    """Cached int8 logits, or None when missing/unreadable (then recomputed where needed)."""
    try:
        return np.load(path) if path.exists() else None
    except (OSError, ValueError):
        return None


def evaluate_accuracy(st: BuildState, n: int | None, progress: bool = False) -> dict:
    from hwgen.golden.run import predict
    from hwgen.quant.calibrate import run_float

    src = st.source
    assert src is not None and src.float_fn is not None
    t0 = time.perf_counter()
    images, labels = src.data.test(n)
    x = model_input(images)
    float_logits = src.float_fn(x)
    ir = run_float(st.graph, x[:1000])
    ir_diff = float(np.abs(ir - float_logits[: len(ir)]).max())
    chunks = []
    for i in range(0, len(images), 1000):
        chunks.append(predict(st.qmodel, images[i : i + 1000]))
        if progress:
            st.log(f"  int8 golden: {min(i + 1000, len(images))}/{len(images)} images")
    int8_logits = np.concatenate(chunks)
    st.int8_logits = int8_logits
    fp, qp = float_logits.argmax(1), int8_logits.argmax(1)
    res: dict[str, Any] = {
        "model": src.name,
        "data": src.data.desc,
        "n": int(len(images)),
        "agreement": float((fp == qp).mean() * 100),
        "ir_max_abs_diff": ir_diff,
    }
    if labels is not None:
        res["float_acc"] = float((fp == labels).mean() * 100)
        res["int8_acc"] = float((qp == labels).mean() * 100)
        res["delta_points"] = res["int8_acc"] - res["float_acc"]
    res["seconds"] = round(time.perf_counter() - t0, 1)
    return res


# -- emit --------------------------------------------------------------------------------


def step_emit(st: BuildState) -> None:
    """Write accel.v, manifest.json and program.txt (and lint them when asked)."""
    from hwgen.emit.verilog import lint, write_rtl

    out = st.cfg.out_dir or paths.rtl_out() / st.name
    plan = design_plan(st) if st.cfg.fit else None
    st.rtl_dir = write_rtl(st.program, out, plan=plan)
    if st.cfg.lint:
        ok, log = lint(st.rtl_dir / "accel.v")
        (st.rtl_dir / "lint.log").write_text(log)
        st.lint_ok = ok


def design_plan(st: BuildState) -> Any:
    """The memories of the design: the program's own (MemoryPlan.of), or, with ``cfg.fit``,
    sized for the program and every model in cfg.fit (one design runs all of them)."""
    from hwgen.schedule.capacity import MemoryPlan

    if not st.cfg.fit:
        return MemoryPlan.of(st.program)
    from hwgen.evaluate import build_qmodel
    from hwgen.schedule.lower import lower

    others = [lower(build_qmodel(n), st.cfg.array) for n in st.cfg.fit]
    return MemoryPlan.fit([st.program, *others])


# -- simulate ----------------------------------------------------------------------------


def step_simulate(st: BuildState) -> None:
    """RTL-simulate cfg.n test images through the engine hwgen.sim offers; every logit is
    compared with the golden model."""
    from hwgen.perf.model import summarize
    from hwgen.sim.network import prepare, simulate

    cfg, src = st.cfg, st.source
    assert src is not None
    if cfg.engine == "fast":
        from hwgen.sim.fast import simulate_state

        simulate_state(st, workers=cfg.workers, scheduler=cfg.scheduler)
        return
    images, labels = st.sim_images, st.sim_labels
    if images is None:
        images, labels = src.data.test(cfg.n)
    st.log(f"{src.name} on a {cfg.array} array, {cfg.n} test image(s)")
    st.case = prepare(st.qmodel, cfg.array, images, gap=cfg.gap, tag="" if cfg.gap else "_nogap")
    st.log(f"Verilog in {st.case.rtl_dir}; building with Verilator ...")
    res, out, _ = simulate(st.case, seed=cfg.seed)
    imgs = out.get("images", [])
    if len(imgs) != cfg.n:
        raise RuntimeError(
            f"RTL simulation failed ({res.failed} failing cocotb test(s), {len(imgs)}/{cfg.n} "
            f"images ran); results {res.results_xml}"
            + (f"; waveform {res.waveform}" if res.waveform else "")
        )
    st.summary = summarize(st.case.prog, imgs, labels, out)


# -- build -------------------------------------------------------------------------------


def step_build(st: BuildState) -> None:
    """FPGA build (hwgen.boards): the board top (HostTop) around a design sized by
    ``design_plan``, simulated on the board's design, then yosys, nextpnr and the packer."""
    from hwgen.boards.build import BoardJob, build_board

    cfg, src = st.cfg, st.source
    assert src is not None
    images, labels = st.sim_images, st.sim_labels
    if images is None:
        images, labels = src.data.test(cfg.n)
    job = BoardJob(board=cfg.board, qmodel=st.qmodel, program=st.program, plan=design_plan(st),
                   images=images, labels=labels, seeds=cfg.seeds, first_seed=cfg.first_seed,
                   freq_mhz=cfg.freq_mhz,
                   pnr_freq_mhz=cfg.pnr_freq_mhz, baud=cfg.baud, fit=cfg.fit,
                   workers=cfg.workers, scheduler=cfg.scheduler,
                   stall_minutes=cfg.stall_minutes, router=cfg.router,
                   resources_only=cfg.resources_only)  # fmt: skip
    st.board_report = build_board(job, log=st.log)


# -- report ------------------------------------------------------------------------------


def step_report(st: BuildState) -> None:
    """Markdown + JSON + PNG report of the RTL run, with the accuracy when measured."""
    from hwgen.perf.report import write_report

    if st.summary is None:
        return
    acc = st.accuracy
    if acc is not None:
        st.summary["accuracy"] = {
            k: acc[k] for k in ("n", "float_acc", "int8_acc", "agreement") if k in acc
        }
        if st.summary["all_match"] and "int8_acc" in acc:
            st.summary["text"] += (
                f"\naccuracy on {acc['n']:,} test images: float {acc['float_acc']:.2f} %, "
                f"int8 {acc['int8_acc']:.2f} %, RTL = int8 golden on every simulated image"
            )
    st.report_paths = write_report(st.summary, paths.reports() / f"{st.name}_{st.cfg.array}")


STEP_FUNCS: dict[str, Callable[[BuildState], None]] = {
    "import": step_import,
    "quantize": step_quantize,
    "schedule": step_schedule,
    "evaluate": step_evaluate,
    "emit": step_emit,
    "simulate": step_simulate,
    "build": step_build,
    "report": step_report,
}
assert tuple(STEP_FUNCS) == STEPS


def run(cfg: BuildConfig, until: str | None = None, state: BuildState | None = None) -> BuildState:
    """Run ``cfg.steps`` in pipeline order, stopping after ``until``; steps already in
    ``state.done`` are skipped. Earlier steps a requested one needs run too."""
    if until is not None and until not in STEPS:
        raise HwgenError(f"until: unknown step {until!r}; the steps are {', '.join(STEPS)}")
    if cfg.workdir is not None:
        paths.set_workdir(cfg.workdir)
    st = state or BuildState(cfg)
    st.cfg = cfg
    last = STEPS.index(until) if until else len(STEPS) - 1
    wanted = [s for s in STEPS[: last + 1] if s in cfg.steps]
    for name in wanted:
        for need in _needs(name):
            if need not in st.done:
                _run_step(st, need)
        if name not in st.done:
            _run_step(st, name)
    return st


def _needs(step: str) -> tuple[str, ...]:
    """The steps whose results ``step`` reads."""
    return {
        "import": (),
        "quantize": ("import",),
        "schedule": ("import", "quantize"),
        "evaluate": ("import", "quantize"),
        "emit": ("import", "quantize", "schedule"),
        "simulate": ("import", "quantize", "schedule"),
        "build": ("import", "quantize", "schedule"),
        "report": (),
    }[step]


def _run_step(st: BuildState, name: str) -> None:
    STEP_FUNCS[name](st)
    st.done.append(name)
    if name == "schedule":
        _start_fast_design(st)


def _start_fast_design(st: BuildState) -> None:
    """The fast engine's Verilog and Verilator build start in the background as soon as the
    program exists, so they overlap the accuracy pass (the evaluate step)."""
    cfg = st.cfg
    if cfg.engine == "fast" and "simulate" in cfg.steps and st.sim_prep is None:
        from hwgen.sim.fast import start_design

        st.sim_prep = start_design(st.qmodel, cfg.array, n_images=cfg.n)
