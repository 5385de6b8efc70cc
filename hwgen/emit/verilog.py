"""Write the generated accelerator: Verilog top, manifest (parameters, memory map, schedule)."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict
from pathlib import Path

from amaranth.back import verilog

from hwgen.paths import rtl_out
from hwgen.rtl.descriptor import DESC_LAYOUT, HEADER_LAYOUT
from hwgen.rtl.loader import beats_per_word
from hwgen.rtl.top import Accelerator
from hwgen.schedule.capacity import MemoryPlan
from hwgen.schedule.fields import DESC_CLASSES
from hwgen.schedule.program import Program

__all__ = ["write_rtl", "write_design", "manifest", "design_manifest", "lint", "LINT_WAIVERS"]

TOP = "accel"
FORMAT_VERSION = 2  # 2: the program is loaded at run time (header + descriptors)

# Warnings waived in `verilator --lint-only`, each with the reason.
LINT_WAIVERS = {
    "WIDTHEXPAND": "Amaranth emits implicit zero/sign extensions in its arithmetic; intended.",
    "WIDTHTRUNC": "Amaranth truncates assignments to the target width by definition; intended.",
    "UNUSEDSIGNAL": "unused bits of wide struct ports (e.g. unused descriptor fields per unit).",
    "UNUSEDPARAM": "generated localparams not referenced after optimisation.",
    "DECLFILENAME": "one file holds every generated module.",
    "PINCONNECTEMPTY": "Amaranth leaves unused outputs of instances unconnected.",
    "GENUNNAMED": "Amaranth's generate blocks are unnamed.",
    "PROCASSINIT": "Amaranth declares each register with its power-on value (`reg x = 0;`) and "
    "assigns it in an always block: the intended FPGA initial value.",
    "CMPCONST": "comparisons of narrow counters against wider descriptor fields; harmless.",
    "CASEINCOMPLETE": "Amaranth's casez for word_select/Array has no default arm; unused values.",
}


def manifest(prog: Program, accel: Accelerator) -> dict:
    """The design (its plan) plus one program's transfer sizes and schedule."""
    a = prog.array
    R, C = a.rows, a.cols
    mems = [
        ("header", 1, HEADER_LAYOUT.size),
        ("program", len(prog.layers), DESC_LAYOUT.size),
        ("conv_weights", prog.convw_depth, 8 * C),
        ("direct_weights", prog.directw_depth, 8 * R * C),
        ("requant_params", prog.param_depth, 72 * C),
    ]
    return {
        **design_manifest(accel.plan),
        "model": prog.model,
        "memory_map": {
            "load_order": [
                {"name": n, "words": d, "width_bits": w, "beats_per_word": beats_per_word(w)}
                for n, d, w in mems
            ],
            "weight_beats": sum(d * beats_per_word(w) for _, d, w in mems),
            "activation_buffers": [
                {
                    "buffer": b,
                    "words": prog.buf_depth[b],
                    "width_bits": 8 * C,
                    "copies": prog.buf_copies,
                }
                for b in range(2)
            ],
            "param_lane": "bias int32 | mult int32 << 32 | shift u8 << 64 (72 bits per lane)",
        },
        "schedule": prog.layer_dicts(),
        "macs": prog.macs,
        "ideal_cycles": prog.ideal_cycles,
    }


def design_manifest(plan: MemoryPlan) -> dict:
    """What the Verilog is: array, memory plan (capacity), ports, lint waivers."""
    return {
        "format_version": FORMAT_VERSION,
        "top": TOP,
        "array": asdict(plan.array),
        "memory_plan": {
            "activation_buffers": list(plan.buf_depth),
            "conv_weight_words": plan.convw_depth,
            "direct_weight_words": plan.directw_depth,
            "param_words": plan.param_depth,
            "max_layers": plan.max_layers,
            "pool_max_k": plan.pool_max_k,
            "pool_max_out_w": plan.pool_max_out_w,
            "pe_accumulator_bits": plan.acc_width,
            # the descriptor register's magnitude bits per field class (None: full widths)
            "descriptor_class_bits": None if plan.desc_bits is None
            else dict(zip(DESC_CLASSES, plan.desc_bits, strict=True)),
        },
        "ports": {
            "weights": "stream in, {data: u32, last} beats (bit 32 = last on the final beat; "
            "model transfer: header, program, weights, params = memory_map.load_order)",
            "image": "stream in, {data: int8, last} input values in HWC order (bit 8 = last on "
            "the final value; data transfer)",
            "logits": "stream out, prog_out_len x {data: int8, last} (result transfer)",
            "start/busy/done": "compute handshake; done stays high until the next accepted "
            "start; a start while busy or without loaded weights is refused and flagged",
            "status/error": "sticky error flags (STATUS_LAYOUT in hwgen/rtl/top.py); error = any",
            "perf_sel/perf_data": "cycle counters: 0 total, 1 data-in, 2 results-out, 3+L layer L",
            "dbg_buf/dbg_addr/dbg_data": "read activation buffer words while idle",
            "dbg_stop/dbg_layers": "stop after layer dbg_layers (debug)",
            "prog_layers/prog_in_len/prog_out_len": "the loaded program's sizes (header)",
        },
        "lint_waivers": LINT_WAIVERS,
    }


def _write_verilog(accel: Accelerator, out: Path, platform=None) -> None:
    text = verilog.convert(accel, name=TOP, emit_src=False, platform=platform)
    text += "".join(getattr(platform, "sim_verilog", lambda: [])())
    vpath = out / f"{TOP}.v"
    if not vpath.exists() or vpath.read_text() != text:  # keep mtime for build caching
        vpath.write_text(text)


def write_rtl(
    prog: Program, out_dir: Path | None = None, platform=None, plan: MemoryPlan | None = None
) -> Path:
    """Generate rtl_out/<model>/ (or out_dir): accel.v, manifest.json, program.txt.

    With a ``platform`` (e.g. ``hwgen.rtl.ecp5_dsp.Ecp5DspSim``) its hooks shape the design
    (MULT18X18D multipliers) and its simulation models are appended to accel.v. With `plan`
    the design is sized by the plan (the program is checked against it: FitError); without,
    by the program alone.
    """
    out = Path(out_dir) if out_dir else rtl_out() / prog.model
    out.mkdir(parents=True, exist_ok=True)
    if plan is not None:
        plan.check(prog)
    accel = Accelerator(plan if plan is not None else prog)
    _write_verilog(accel, out, platform)
    (out / "manifest.json").write_text(json.dumps(manifest(prog, accel), indent=1))
    (out / "program.txt").write_text(prog.text() + "\n")
    return out


def write_design(plan: MemoryPlan, out_dir: Path, platform=None) -> Path:
    """One design for a memory plan (no program in it): accel.v + manifest.json (the plan)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_verilog(Accelerator(plan), out, platform)
    (out / "manifest.json").write_text(json.dumps(design_manifest(plan), indent=1))
    return out


def lint(vpath: Path) -> tuple[bool, str]:
    """`verilator --lint-only -Wall` with the listed waivers; returns (clean, output)."""
    exe = shutil.which("verilator")
    if exe is None:
        raise RuntimeError("verilator not on PATH: run `make venv`")
    cmd = [exe, "--lint-only", "-Wall", "--top-module", TOP, str(vpath)]
    cmd += [f"-Wno-{w}" for w in LINT_WAIVERS]
    p = subprocess.run(cmd, capture_output=True, text=True)
    return p.returncode == 0, p.stdout + p.stderr
