"""Whole-network RTL simulation: prepare a case (program, Verilog, stimuli, golden) and run it.

Used by the pytest regression (sim/test_network.py) and by the simulate step of the build
driver (hwgen.flow), which `hwgen sim` and `hwgen bench` run.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwgen.config import ArrayConfig
from hwgen.emit.images import image_values, weight_beats
from hwgen.emit.verilog import write_rtl
from hwgen.golden.run import run
from hwgen.paths import sim_build
from hwgen.quant.inputs import quantize_images
from hwgen.quant.qmodel import INPUT, QModel
from hwgen.schedule.capacity import MemoryPlan
from hwgen.schedule.lower import lower
from hwgen.schedule.program import Program
from hwgen.sim.runner import SimResult, run_cocotb

__all__ = ["NetworkCase", "prepare", "simulate", "layer_words", "layer_addrs"]


def layer_addrs(lay) -> list[int]:
    """Buffer addresses of program layer ``lay``'s output words, in ``layer_words`` order:
    pixel p's k-th word is at dst_base + p*dst_stride + k (its place in its region)."""
    pixels = lay.final_h * lay.final_w
    return [lay.dst_base + p * lay.dst_stride + k for p in range(pixels) for k in range(lay.out_cw)]


def layer_words(prog: Program, li: int, out: np.ndarray) -> np.ndarray:
    """Golden output tensor of program layer li -> expected buffer words [n, C]."""
    lay = prog.layers[li]
    C = prog.array.cols
    x = np.asarray(out, dtype=np.int64)
    if x.ndim == 1:
        x = x.reshape(-1, 1, 1)
    c, h, w = x.shape
    words = np.zeros((h * w * lay.out_cw, C), dtype=np.int64)
    hwc = x.transpose(1, 2, 0).reshape(h * w, c)
    for ch in range(c):
        words[np.arange(h * w) * lay.out_cw + ch // C, ch % C] = hwc[:, ch]
    return words


@dataclass
class NetworkCase:
    name: str
    prog: Program
    rtl_dir: Path
    verilog: Path
    data_file: Path
    params_file: Path
    results_file: Path
    n_images: int


def prepare(
    qm: QModel,
    array: ArrayConfig,
    images: np.ndarray,  # uint8 pixels or float model inputs (hwgen.quant.inputs)
    *,
    gap: float = 0.2,
    tag: str = "",
    rtl_root: Path | None = None,  # default: a private dir under sim_build/
    platform=None,  # e.g. Ecp5DspSim(): the board's multipliers on their Verilog model
    plan: MemoryPlan | None = None,  # the design's memories (default: MemoryPlan.of(prog))
    design: Path | None = None,  # a directory holding the plan's accel.v (write_design)
) -> NetworkCase:
    """Program, Verilog, stimuli and golden data of one network case.

    With ``design`` the program runs on that already-written design of ``plan`` (checked
    against it: FitError) and no Verilog is generated.
    """
    if design is not None and plan is None:
        raise ValueError("prepare(design=...) needs the design's plan")
    prog = lower(qm, array) if plan is None else plan.check(lower(qm, array))
    name = f"net_{qm.name}_{array}{'' if array.remainder_tiles else '_norem'}{tag}"
    work = sim_build() / name
    work.mkdir(parents=True, exist_ok=True)
    if design is None:
        rtl_dir = write_rtl(prog, out_dir=rtl_root or work / "rtl", platform=platform, plan=plan)
    else:
        rtl_dir = design
    xq = quantize_images(images, qm.in_scale)
    names = [lay.name for lay in qm.layers]
    imgs, logits = [], []
    layer_exp: dict[str, list[np.ndarray]] = {f"layer{i}": [] for i in range(len(prog.layers))}
    for x in xq:
        outs = {INPUT: x, **dict(run(qm, x))}  # INPUT: an identity copy of the input
        imgs.append(image_values(prog, x))
        logits.append(outs[names[-1]].reshape(-1))
        for li, lay in enumerate(prog.layers):
            layer_exp[f"layer{li}"].append(layer_words(prog, li, outs[lay.covers[-1]]))
    data_file = work / "stimuli.npz"
    np.savez(
        data_file,
        beats=weight_beats(prog),
        images=np.asarray(imgs, dtype=np.int64),
        logits=np.asarray(logits, dtype=np.int64),
        **{k: np.asarray(v) for k, v in layer_exp.items()},
    )
    results = work / "results.json"
    params = {
        "data": str(data_file),
        "results": str(results),
        "gap": gap,
        "cols": array.cols,
        "rows": array.rows,
        "out_len": prog.out_len,
        "layers": [
            {"name": lay.name, "covers": list(lay.covers), "dst": lay.dst,
             "addrs": layer_addrs(lay)}
            for lay in prog.layers
        ],
    }
    pfile = work / "params.json"
    pfile.write_text(json.dumps(params, indent=1))
    return NetworkCase(
        name=name,
        prog=prog,
        rtl_dir=rtl_dir,
        verilog=rtl_dir / "accel.v",
        data_file=data_file,
        params_file=pfile,
        results_file=results,
        n_images=len(xq),
    )


def simulate(
    case: NetworkCase, seed: int = 1, opt_fast: str | None = None
) -> tuple[SimResult, dict, float]:
    """Build with Verilator and run; returns (cocotb result, results.json, wall seconds).

    ``opt_fast``: the model's C++ optimisation level (see ``runner.run_cocotb``)."""
    if case.results_file.exists():
        case.results_file.unlink()
    t0 = time.perf_counter()
    res = run_cocotb(
        verilog=case.verilog,
        toplevel="accel",
        test_module="hwgen.sim.tb.accel_tb",
        config_name=case.name,
        env={"HWGEN_PARAMS": str(case.params_file), "HWGEN_SEED": str(seed)},
        seed=seed,
        opt_fast=opt_fast,
    )
    wall = time.perf_counter() - t0
    out = json.loads(case.results_file.read_text()) if case.results_file.exists() else {}
    return res, out, wall
