"""Whole-network RTL simulation: prepare a case (program, Verilog, stimuli, golden) and run it.

Used by the pytest regression (sim/test_network.py), `hwgen sim` and `hwgen bench`.
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
from hwgen.golden.run import quantize_input, run
from hwgen.paths import sim_build
from hwgen.quant.qmodel import QModel
from hwgen.schedule.lower import lower
from hwgen.schedule.program import Program
from hwgen.sim.runner import SimResult, run_cocotb

__all__ = ["NetworkCase", "prepare", "simulate", "layer_words"]


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
    images_uint8: np.ndarray,
    *,
    gap: float = 0.2,
    tag: str = "",
    rtl_root: Path | None = None,  # default: a private dir under sim_build/
    platform=None,  # e.g. Ecp5DspSim(): the board's multipliers on their Verilog model
) -> NetworkCase:
    prog = lower(qm, array)
    name = f"net_{qm.name}_{array}{tag}"
    work = sim_build() / name
    work.mkdir(parents=True, exist_ok=True)
    rtl_dir = write_rtl(prog, out_dir=rtl_root or work / "rtl", platform=platform)
    xq = quantize_input(images_uint8)
    names = [lay.name for lay in qm.layers]
    imgs, logits = [], []
    layer_exp: dict[str, list[np.ndarray]] = {f"layer{i}": [] for i in range(len(prog.layers))}
    for x in xq:
        outs = dict(run(qm, x))
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
             "out_words": lay.out_words}
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


def simulate(case: NetworkCase, seed: int = 1) -> tuple[SimResult, dict, float]:
    """Build with Verilator and run; returns (cocotb result, results.json, wall seconds)."""
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
    )
    wall = time.perf_counter() - t0
    out = json.loads(case.results_file.read_text()) if case.results_file.exists() else {}
    return res, out, wall


def run_network(
    model: str, array: ArrayConfig, n: int, *, seed: int = 1, gap: float = 0.1, platform=None
) -> dict:
    """Quantize, schedule, generate, simulate n MNIST test images; return the report summary."""
    from hwgen.datasets import load_mnist, load_mnist_sample
    from hwgen.evaluate import build_qmodel
    from hwgen.perf.model import summarize

    qm = build_qmodel(model)
    if n <= 200:
        images, labels = load_mnist_sample()
    else:
        images, labels = load_mnist("test")
    images, labels = images[:n], labels[:n]
    print(f"[hwgen sim] {model} on a {array} array, {n} test image(s)", flush=True)
    tag = ("" if gap else "_nogap") + ("_" + type(platform).__name__ if platform else "")
    case = prepare(qm, array, images, gap=gap, tag=tag, platform=platform)
    print(f"[hwgen sim] Verilog in {case.rtl_dir}; building with Verilator ...", flush=True)
    res, out, wall = simulate(case, seed=seed)
    imgs = out.get("images", [])
    if len(imgs) != n:
        raise RuntimeError(
            f"RTL simulation failed ({res.failed} failing cocotb test(s), {len(imgs)}/{n} images "
            f"ran); results {res.results_xml}"
            + (f"; waveform {res.waveform}" if res.waveform else "")
        )
    return summarize(case.prog, imgs, labels, out)
