"""`hwgen` command line: a thin layer over the build driver (hwgen.flow).

Every user error (bad option, file, model, data) is one line ``hwgen: error: ...`` on stderr
and exit status 2, raised before any long work. Subcommands owned by other parts of the
project are one small ``cmd_*`` function + one parser entry each.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import NoReturn

from hwgen.config import ArrayConfig
from hwgen.errors import HwgenError, UsageError
from hwgen.paths import tools_on_path

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is a UsageError (one line, exit 2 in main)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def _array(text: str) -> ArrayConfig:
    try:
        return ArrayConfig.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _config(args: argparse.Namespace, **kw):
    from hwgen.flow import BuildConfig

    return BuildConfig(
        model=args.model,
        weights=Path(args.weights) if args.weights else None,
        calib=Path(args.calib) if args.calib else None,
        **kw,
    )


def _accuracy_line(acc: dict) -> str:
    head = f"{acc['model']} on {acc['n']:,} {acc['data']} test images: "
    if "float_acc" not in acc:
        return head + f"top-1 agreement float vs int8 {acc['agreement']:.2f} % (no labels)"
    return head + (
        f"float {acc['float_acc']:.2f} %, int8 golden {acc['int8_acc']:.2f} %, "
        f"top-1 agreement {acc['agreement']:.2f} %"
    )


def cmd_eval(args: argparse.Namespace) -> int:
    from hwgen.flow import run

    st = run(_config(args, eval_n=args.n, steps=("import", "quantize", "evaluate")))
    print(st.qmodel.summary())
    acc = st.accuracy
    assert acc is not None
    print(f"float model: IR interpreter vs torch max |diff| = {acc['ir_max_abs_diff']:.3g}")
    print("[hwgen] " + _accuracy_line(acc))
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    from hwgen.flow import run

    st = run(_config(args, steps=("import", "quantize")))
    print(st.qmodel.summary())
    print(f"[hwgen] cached in {st.qmodel_dir}")
    return 0


def _models(text: str) -> list[str]:
    from hwgen import zoo

    names = [n.strip() for n in text.split(",") if n.strip()]
    known = set(zoo.model_names())
    for n in names:
        if n not in known:
            raise argparse.ArgumentTypeError(f"unknown model {n!r} (known: {sorted(known)})")
    if not names:
        raise argparse.ArgumentTypeError("needs at least one model name")
    return names


def cmd_generate(args: argparse.Namespace) -> int:
    from hwgen.flow import run

    cfg = _config(
        args,
        array=args.array,
        out_dir=Path(args.out) if args.out else None,
        lint=True,
        fit=tuple(args.fit),
        steps=("import", "quantize", "schedule", "emit"),
    )
    st = run(cfg)
    print(st.program.text())
    if args.fit:
        man = json.loads((st.rtl_dir / "manifest.json").read_text())
        print(f"memory plan (also fits {', '.join(args.fit)}): {man['memory_plan']}")
    print(f"wrote {st.rtl_dir}/accel.v, manifest.json, program.txt")
    print(
        f"verilator --lint-only: {'clean' if st.lint_ok else 'FAILED'} (waivers in manifest.json)"
    )
    return 0 if st.lint_ok else 1


# `hwgen sim --engine auto`: cocotb (random stream gaps, names the first diverging layer)
# up to this many images, the compiled C++ harness as Dask tasks (hwgen.sim.fast) above.
COCOTB_MAX_AUTO = 200


def _engine(args: argparse.Namespace) -> str:
    if args.engine != "auto":
        return args.engine
    return "cocotb" if args.n <= COCOTB_MAX_AUTO else "fast"


def cmd_sim(args: argparse.Namespace) -> int:
    from hwgen.flow import SIM_STEPS, run

    cfg = _config(
        args, array=args.array, n=args.n, seed=args.seed, gap=args.gap, steps=SIM_STEPS,
        engine=_engine(args), workers=args.workers, scheduler=args.scheduler,
    )  # fmt: skip
    st = run(cfg, until="evaluate")  # every user error is raised by here
    if st.accuracy is not None:
        print("[hwgen] " + _accuracy_line(st.accuracy), flush=True)
    st = run(cfg, state=st)
    assert st.summary is not None and st.report_paths is not None
    print(st.summary["text"])
    p = st.report_paths
    print(f"report: {p['md']}, {p['json']}, {p['png']}")
    return 0 if st.summary["all_match"] else 1


def _speed(s: dict, how: str) -> dict:
    return {
        "images": s["n"],
        "all_match": s["all_match"],
        "inferences_per_s": s["sim_inferences_per_s"],
        "cycles_per_s": s["sim_cycles_per_s"],
        "wall_s": s["sim_wall_s"],
        "how": how,
    }


def _bench_md(b: dict) -> str:
    sp = b["simulation_speed"]
    rows = [
        f"| {k} | {v['images']} | {v['inferences_per_s']:.2f} | {v['cycles_per_s'] / 1e3:,.0f} k "
        f"| {v['wall_s']:.1f} | {v['how']} |"
        for k, v in sp.items()
        if isinstance(v, dict)
    ]
    return "\n".join([
        f"# hwgen bench: {b['model']} on {b['array']}",
        "",
        f"Cycles per inference (the design's counters): {b['cycles_per_inference']:,.0f}; MAC "
        f"bound {b['mac_bound_cycles']:,.0f}; PE utilisation {100 * b['pe_utilisation']:.1f} %. "
        f"Every image bit-exact: {b['all_match']}.",
        "",
        "## Simulation speed (measured on this host; not the accelerator's speed)",
        "",
        sp["note"],
        "",
        "| engine | images | inferences/s | cycles/s | wall s | how |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ])  # fmt: skip


def cmd_bench(args: argparse.Namespace) -> int:
    from hwgen import paths
    from hwgen.flow import run

    t0 = time.perf_counter()
    steps = ("import", "quantize", "schedule", "simulate", "report")
    st = run(_config(args, array=args.array, n=args.n, seed=args.seed, gap=0.0, steps=steps))
    s = st.summary
    assert s is not None and st.report_paths is not None
    fcfg = _config(
        args, array=args.array, n=args.fast_n, seed=args.seed, gap=0.0, steps=steps,
        engine="fast", workers=args.workers, scheduler=args.scheduler,
    )  # fmt: skip
    f = run(fcfg).summary
    assert f is not None
    bench = {
        "model": st.name,
        "array": str(args.array),
        "images": args.n,
        "all_match": s["all_match"] and f["all_match"],
        "cycles_per_inference": s["cycles"]["total"],
        "cycles": s["cycles"],
        "mac_bound_cycles": s["ideal_cycles"],
        "cycles_vs_mac_bound": s["vs_mac_bound"],
        "model_macs": s["macs"],
        "executed_macs": s["executed_macs"],
        "pe_utilisation": s["utilisation"],
        "pe_utilisation_note": "executed MACs / (PEs x total cycles incl. data-in/out)",
        "sim_inferences_per_s": s["sim_inferences_per_s"],
        "sim_cycles_per_s": s["sim_cycles_per_s"],
        "simulation_speed": {
            "note": "Simulation speeds of the RTL in Verilator on this host, measured (wall "
            "clock after the build): inferences/s and simulated clock cycles/s. They say how "
            "fast the design can be verified, not how fast the accelerator runs.",
            "cocotb": _speed(s, "one process, cocotb (Python) testbench, gap-free streams"),
            "fast": _speed(f, f"compiled C++ harness, {f['workers']} Dask worker(s), "
                           "sum over workers"),
        },  # fmt: skip
        "wall_s": time.perf_counter() - t0,
    }
    out = paths.reports() / "bench.json"
    out.write_text(json.dumps(bench, indent=1))
    md = paths.reports() / "bench.md"
    md.write_text(_bench_md(bench))
    print(json.dumps(bench, indent=1))
    print(f"wrote {out}, {md} and {st.report_paths['md']}")
    return 0 if bench["all_match"] else 1


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return v


def _side(text: str) -> int:
    v = _positive(text)
    if v > 16:
        raise argparse.ArgumentTypeError(f"must be at most 16, not {text!r}")
    return v


def cmd_regress(args: argparse.Namespace) -> int:
    from hwgen.regress.run import regress

    s = regress(args.n, args.seed, scheduler=args.scheduler, workers=args.workers,
                images=args.images, max_side=args.max_side, shrink=not args.no_shrink)
    return 0 if s["passed"] == s["cases"] else 1


def cmd_export_onnx(args: argparse.Namespace) -> int:
    from hwgen.errors import UsageError
    from hwgen.flow.source import resolve
    from hwgen.frontend.onnx_export import export_onnx
    from hwgen.paths import workdir

    src = resolve(_config(args))
    if src.module is None:
        raise UsageError(f"--model {args.model}: already an ONNX model")
    out = Path(args.out) if args.out else workdir() / f"{src.name}.onnx"
    print(export_onnx(src.module, src.in_shape, out))
    return 0


def _regress_parser(sub) -> None:
    sp = sub.add_parser("regress", help="random CNNs on random arrays in RTL (Dask), bit-exact")
    sp.add_argument("-n", type=_positive, default=200, help="number of cases (default 200)")
    sp.add_argument("--seed", type=int, default=0, help="seed of the first case (default 0)")
    sp.add_argument("--scheduler", default=None,
                    help="Dask scheduler address (default: a LocalCluster on this machine)")
    sp.add_argument("--workers", type=_positive, default=2, help="LocalCluster workers (2)")
    sp.add_argument("--images", type=_positive, default=2, help="test images per case (2)")
    sp.add_argument("--max-side", type=_side, default=16,
                    help="largest array side drawn, 1..16 (default 16)")
    sp.add_argument("--no-shrink", action="store_true", help="do not shrink failing cases")
    sp.set_defaults(fn=cmd_regress)


def cmd_sim_secure(args: argparse.Namespace) -> int:
    """Two-party secure inference on simulated share-mode engines (hwgen.sim.secure_run)."""
    from hwgen import zoo
    from hwgen.paths import reports
    from hwgen.sim.secure_run import run_secure

    if args.model not in zoo.model_names():
        raise UsageError(f"--model {args.model!r}: sim-secure takes a zoo model "
                         f"({', '.join(zoo.model_names())})")
    if not 1 <= args.n <= 200:
        raise UsageError(f"-n {args.n}: the secure run uses the 200 committed sample images, "
                         "so N must be in 1..200")
    plain = None
    if not args.no_plain:  # the plaintext accelerator's cycles, measured on one image
        from hwgen.flow import BuildConfig, run

        steps = ("import", "quantize", "schedule", "simulate", "report")
        ps = run(BuildConfig(model=args.model, array=args.array, n=1, gap=0.0,
                             steps=steps)).summary
        assert ps is not None
        plain = {"cycles_total": ps["cycles"]["total"],
                 "cycles_compute": ps["cycles"]["compute"], "bit_exact": ps["all_match"]}
    s = run_secure(args.model, args.array, args.n, k=args.ring, plain=plain)
    out = reports() / f"secure_{args.model}_{args.array}_k{args.ring}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(s, indent=1))
    print(s["text"])
    print(f"report: {out}")
    return 0 if s["all_match"] else 1


def _secure_parser(sub) -> None:
    sp = sub.add_parser("sim-secure", help="two-party secure inference, each party's GEMMs on "
                        "its own simulated share-mode accelerator; bit-exact check + report")
    sp.add_argument("--model", default="mnist_cnn", help="zoo model (default mnist_cnn)")
    sp.add_argument("--array", type=_array, default=ArrayConfig(), help="RxC (default 8x8)")
    sp.add_argument("-n", type=int, default=20, help="number of sample images (default 20)")
    sp.add_argument("--ring", type=int, choices=(32, 64), default=32, help="share ring bits")
    sp.add_argument("--no-plain", action="store_true",
                    help="skip the plaintext accelerator run used for the cycle comparison")
    sp.set_defaults(fn=cmd_sim_secure)


def _model_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "--model",
        default="mnist_cnn",
        help="zoo name (mnist_cnn, tiny_cnn, digits_cnn), path/file.py:ClassOrFactory, or "
        "path/net.onnx (default mnist_cnn)",
    )
    sp.add_argument("--weights", default=None, metavar="FILE.pt", help="state_dict to load")
    sp.add_argument(
        "--calib",
        default=None,
        metavar="FILE",
        help=".npz (images, optional labels) or .npy (images) the model takes: calibrates "
        "the quantizer, and its first -n images are simulated",
    )


def cmd_build(args: argparse.Namespace) -> int:
    from hwgen.flow import BUILD_STEPS, run

    cfg = _config(
        args, array=args.array, n=args.n, fit=tuple(args.fit), steps=BUILD_STEPS,
        board=args.board, seeds=args.seeds, first_seed=args.first_seed, freq_mhz=args.freq,
        pnr_freq_mhz=args.pnr_freq,
        baud=args.baud, workers=args.workers, scheduler=args.scheduler,
        stall_minutes=args.stall_minutes,
        router=args.router, resources_only=args.resources_only,
    )  # fmt: skip
    from hwgen.boards.build import BuildError

    try:
        rep = run(cfg).board_report
    except BuildError as e:  # a tool failed: the step, its log and the log's tail
        print(f"hwgen: error: {e}", file=sys.stderr)
        return 1
    assert rep is not None
    if rep.get("resources_only"):
        return _print_resources(rep)
    f = rep["fmax_post_route_mhz"]
    print(
        f"[hwgen build] {rep['bitstream']}: post-route Fmax min/median/max "
        f"{f['min']:.1f}/{f['median']:.1f}/{f['max']:.1f} MHz over {len(f['seeds'])} seed(s) "
        f"(target {rep['target_mhz']:g} MHz: {'met' if rep['meets_target'] else 'NOT met'}); "
        f"{rep['cycles_per_inference']} cycles/inference = "
        f"{rep['us_per_inference_at_median_fmax']:.1f} us at the measured median Fmax"
    )
    b = rep["bitstream_on_board"]
    if not b["meets_clock"]:  # a bitstream runs at its PLL clock, not at a measured Fmax
        print(f"[hwgen build] warning: the packed bitstream (seed {b['seed']}) routed at "
              f"{b['fmax_mhz']:.1f} MHz, below its {b['pll_mhz']:g} MHz PLL clock: it will not "
              f"run reliably on a board; {b['rebuild_advice']}")
    for g in f["stalled_seeds"]:  # the watchdog's doing, never silent
        print(f"[hwgen build] seed {g['seed']} stopped after {g['minutes_without_progress']:g} "
              f"min without nextpnr progress; replaced by seed {g['replaced_by']}")
    print(f"[hwgen build] top: {rep['top']['top']}, {rep['top']['uart']}")
    print(f"report: {rep['report_md']}, {rep['report_json']}")
    return 0


def _print_resources(rep: dict) -> int:
    res = rep["resources"].items()
    used = ", ".join(f"{k} {v['used']:,}/{v['available']:,}" for k, v in res)
    print(f"[hwgen build] resources after packing (no placement, no Fmax): {used}")
    print(f"report: {rep['report_md']}, {rep['report_json']}")
    if rep["over"]:  # as a routed build of it would: placement fails
        print(f"hwgen: error: the design does not fit the device: {', '.join(rep['over'])} "
              "(after packing)", file=sys.stderr)
        return 1
    return 0


def _remainder_switch(sp, on: bool, stream: bool = False) -> None:
    """--[no-]remainder-tiles and --[no-]remainder-stream: each group's ragged last pixel tile
    scheduled on its own. Simulation defaults to the direct form (fewest cycles); boards and
    sweeps to the two-stream form, which adds no direct-weight memory: the direct form took
    the 8x8 from 118 to 162 DP16KD and placed it at 58.5 instead of 70.5 MHz
    (docs/measurements.md, sessions 7 and 22)."""
    form = "the two-stream form on boards" if stream else "the direct form"
    sp.add_argument("--remainder-tiles", action=argparse.BooleanOptionalAction, default=on,
                    help="schedule each group's last pixel tile on its own: fewer cycles "
                         f"(default: on, {form})")
    sp.add_argument("--remainder-stream", action=argparse.BooleanOptionalAction, default=stream,
                    help="remainder tiles in their two-stream form: two K parts in conv mode, "
                         "part 1's weights from a second read of the conv-weight memory; no "
                         "direct words, even row counts, K split 2; --no-remainder-stream: the "
                         "direct form (a direct-weight memory of its own; default: "
                         + ("on" if stream else "off") + ")")


def _build_parser(sub) -> None:
    sp = sub.add_parser("build", help="FPGA bitstream + resource/timing report (yosys, nextpnr)")
    _model_args(sp)
    sp.add_argument("--board", choices=("ulx3s", "icebreaker"), default="ulx3s")
    sp.add_argument("--array", type=_array, default=ArrayConfig(), help="RxC (default 8x8)")
    _remainder_switch(sp, on=True, stream=True)
    sp.add_argument(
        "--fit", type=_models, default=[], metavar="MODEL[,MODEL...]",
        help="also size the memories for these zoo models (one bitstream runs all of them)",
    )  # fmt: skip
    sp.add_argument("--seeds", type=int, default=3, help="placement seeds (default 3)")
    sp.add_argument("--first-seed", type=int, default=1, metavar="S",
                    help="nextpnr seed of the first placement, then S+1, ... (default 1): "
                    "--seeds 2 --first-seed 3 tries seeds 3 and 4 after a build of 1 and 2 "
                    "(the report covers this build's seeds)")  # fmt: skip
    sp.add_argument("--workers", type=_positive, default=2,
                    help="seeds placed and routed at once, as Dask tasks on a LocalCluster "
                    "(default 2; 1 runs them one after the other)")  # fmt: skip
    sp.add_argument("--scheduler", default=None,
                    help="Dask scheduler address for the seeds instead of a LocalCluster "
                    "(its workers must see this build directory)")  # fmt: skip
    sp.add_argument("--freq", type=float, default=None, metavar="MHZ",
                    help="PLL clock in MHz (default: the board's; iCEBreaker: its 12 MHz "
                    "oscillator): the fastest output of the 25 MHz PLL at or below it, "
                    "never above (e.g. 121.875, 125, 130)")  # fmt: skip
    sp.add_argument("--pnr-freq", type=float, default=None, metavar="MHZ",
                    help="place and route for this clock, at least --freq (ECP5): nextpnr's "
                    "timing-driven placement works harder for a tighter target; the bitstream "
                    "still runs at --freq (e.g. --freq 130 --pnr-freq 150)")  # fmt: skip
    sp.add_argument("--baud", type=int, default=115_200, help="host link UART (default 115200)")
    sp.add_argument("--stall-minutes", type=float, default=30.0, metavar="M",
                    help="stop a placement seed whose nextpnr log shows no progress for M minutes "
                    "(no new line, or router1 lines without fewer arcs left than before: "
                    "router1 sometimes stalls near the end of routing, for ever) and "
                    "route the next unused seed instead; the report names it (default 30; "
                    "0: never)")  # fmt: skip
    sp.add_argument("--router", choices=("router1", "router2"), default="router1",
                    help="nextpnr's router for every seed: router1 (rip-up and reroute, arc "
                    "by arc; the default) or router2 (negotiated congestion over all "
                    "nets)")  # fmt: skip
    sp.add_argument("--resources-only", action="store_true",
                    help="yosys and nextpnr's packer only: LUT4/FF/DSP/BRAM in minutes, no "
                    "simulation, placement, Fmax or bitstream; writes reports/board_<board>_"
                    "<model>_<array>_resources.md/.json (for `hwgen estimate --add-build`)")
    sp.add_argument("-n", type=int, default=2,
                    help="test images simulated for the cycle count (default 2)")  # fmt: skip
    sp.set_defaults(fn=cmd_build)


def cmd_sweep(args: argparse.Namespace) -> int:
    """Array sizes as Dask tasks: RTL cycles + board builds -> reports/sweep.{md,json,png}."""
    from hwgen.sweep.run import SweepOptions, sweep

    if args.from_json:  # re-render (and refit) from a finished or partial sweep
        from hwgen.sweep.report import rerender

        res = rerender([Path(f) for f in args.from_json])
    else:
        opts = SweepOptions(
            arrays=args.arrays, board=args.board, model=args.model, seeds=args.seeds,
            images=args.n, build=not args.no_build, resources_only=args.resources_only,
            scheduler=args.scheduler,
            workers=args.workers, freq_mhz=args.freq, pnr_freq_mhz=args.pnr_freq,
            remainder_tiles=args.remainder_tiles,
            command="hwgen " + " ".join(sys.argv[1:]),
        )  # fmt: skip
        res = sweep(opts)
    print(res["text"])
    print("report: " + ", ".join(str(p) for p in res["paths"].values()))
    return 0 if res["all_ok"] else 1


def _sweep_parser(sub) -> None:
    sp = sub.add_parser("sweep", help="array sizes as Dask tasks: RTL cycles + board builds, "
                        "table/plots, estimator fit")
    sp.add_argument("--board", default="ulx3s", help="board (default ulx3s)")
    sp.add_argument("--arrays", default="2x2,2x4,4x4,4x8",
                    help="comma-separated RxC list (default 2x2,2x4,4x4,4x8)")
    sp.add_argument("--model", default="mnist_cnn", help="zoo model (default mnist_cnn)")
    sp.add_argument("--seeds", type=int, default=1, help="placement seeds per build (default 1)")
    sp.add_argument("-n", type=int, default=1,
                    help="test images per RTL cycle measurement (default 1; with 3 or more "
                    "they also run back to back: steady-state cycles and PE busy)")
    sp.add_argument("--no-build", action="store_true",
                    help="RTL cycle measurements only (no yosys/nextpnr)")
    sp.add_argument("--resources-only", action="store_true",
                    help="builds stop after nextpnr's packer (as `hwgen build "
                    "--resources-only`): LUT4/FF/DSP/BRAM of every array in minutes and the "
                    "estimator's resources refitted on them; no Fmax, µs or bitstream")
    _remainder_switch(sp, on=True, stream=True)
    sp.add_argument("--scheduler", default=None,
                    help="Dask scheduler address instead of a LocalCluster (docs/regress.md: "
                    "dask-jobqueue on Slurm/LSF); the work directory must be shared")
    sp.add_argument("--workers", type=int, default=1,
                    help="LocalCluster worker processes (default 1: builds are CPU-heavy)")
    sp.add_argument("--freq", type=float, default=None,
                    help="PLL clock in MHz for the builds (default: the board's)")
    sp.add_argument("--pnr-freq", type=float, default=None, metavar="MHZ",
                    help="as `hwgen build --pnr-freq`: the builds placed and routed for this "
                    "tighter clock (ECP5), the PLL at --freq")
    sp.add_argument("--from-json", default=None, nargs="+", metavar="sweep_raw.json",
                    help="no tasks: rewrite the report (and refit) from a sweep's raw results; "
                    "several files (same board and model) make one report and one fit over "
                    "all their builds, e.g. a sweep with --remainder-tiles beside one without")
    sp.set_defaults(fn=cmd_sweep)


def cmd_estimate(args: argparse.Namespace) -> int:
    """Resources and Fmax predicted from the fitted per-unit cost model (no tools run)."""
    import json

    from hwgen.sweep.estimate import add_builds, drop_points, estimate, load_coeffs, loo_text

    coeffs = load_coeffs(args.board, Path(args.coeffs) if args.coeffs else None)
    if args.replace_resources and not args.add_build:
        raise UsageError("--replace-resources: needs --add-build (the builds to fit on)")
    if args.drop_point or args.add_build:  # refit, then estimate with the refit
        from hwgen.paths import reports

        if args.drop_point:
            coeffs = drop_points(coeffs, args.drop_point)
        if args.add_build:
            coeffs = add_builds(coeffs, [Path(f) for f in args.add_build],
                                replace_resources=args.replace_resources)
        out = Path(args.out) if args.out else reports() / f"estimate_coeffs_{args.board}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(coeffs, indent=1))
        print(loo_text(coeffs))
        print(f"refitted on {len(coeffs['points'])} build(s): {out}\n")
    if args.model_arg and args.model and args.model_arg != args.model:
        raise UsageError(f"model: given twice, {args.model_arg!r} and --model {args.model!r}")
    t0 = time.perf_counter()
    est = estimate(args.board, args.model_arg or args.model or "mnist_cnn", args.array, coeffs,
                   remainder_tiles=args.remainder_tiles)
    print(est["text"])
    print(f"({1e3 * (time.perf_counter() - t0):.0f} ms)")
    return 0


def _estimate_parser(sub) -> None:
    sp = sub.add_parser("estimate", help="predict LUT4/FF/DSP/BRAM/Fmax of a board build in "
                        "under a second (cost model fitted to real builds)")
    sp.add_argument("--board", default="ulx3s", help="board (default ulx3s)")
    sp.add_argument("--array", type=_array, default=ArrayConfig(), help="RxC (default 8x8)")
    _remainder_switch(sp, on=True, stream=True)
    sp.add_argument("model_arg", nargs="?", default=None, metavar="MODEL",
                    help="zoo model (default mnist_cnn; the same as --model)")
    sp.add_argument("--model", default=None, help="zoo model (default mnist_cnn)")
    sp.add_argument("--coeffs", default=None, metavar="FILE.json",
                    help="coefficients written by `hwgen sweep` (default: the shipped fit)")
    sp.add_argument("--add-build", nargs="+", default=None, metavar="REPORT.json",
                    help="refit first, with these `hwgen build` reports "
                    "(reports/board_<board>_<model>_<array>.json) added to the fit's real "
                    "builds; prints each build's real, fitted and leave-one-out figures")
    sp.add_argument("--replace-resources", action="store_true",
                    help="with --add-build: fit LUT4/FF/DSP/BRAM on the added builds alone "
                    "(today's design, e.g. `hwgen build --resources-only` reports); the earlier "
                    "builds keep only their Fmax points")
    sp.add_argument("--drop-point", nargs="+", default=None, metavar="LABEL",
                    help="refit first without these measured points, named as the fit names "
                    "them (\"12x16\", \"12x8 rt\": builds of an older design); before "
                    "--add-build")
    sp.add_argument("--out", default=None, metavar="FILE.json",
                    help="where --add-build / --drop-point write the refit "
                    "(default reports/estimate_coeffs_<board>.json)")
    sp.set_defaults(fn=cmd_estimate)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="hwgen",
        description="PyTorch CNN -> int8 systolic-array accelerator (Amaranth), "
        "verified bit-exact against a NumPy golden model in Verilator.",
    )
    p.add_argument(
        "--workdir", default=None, help="every output goes under this directory (default: cwd)"
    )
    sub = p.add_subparsers(dest="cmd", required=True)

    sp = sub.add_parser("eval", help="float vs int8-golden accuracy on the test images")
    _model_args(sp)
    sp.add_argument("-n", type=int, default=None, help="number of test images (default all)")
    sp.set_defaults(fn=cmd_eval)

    sp = sub.add_parser("quantize", help="quantize (cached in build/) and print the int8 model")
    _model_args(sp)
    sp.set_defaults(fn=cmd_quantize)

    sp = sub.add_parser("generate", help="write Verilog + manifest to rtl_out/<model>/ and lint it")
    _model_args(sp)
    sp.add_argument("--array", type=_array, default=ArrayConfig(), help="RxC (default 8x8)")
    _remainder_switch(sp, on=True)
    sp.add_argument("--out", default=None, help="output directory (default rtl_out/<model>)")
    sp.add_argument(
        "--fit", type=_models, default=[], metavar="MODEL[,MODEL...]",
        help="also size the memories for these zoo models (one design runs all of them)",
    )
    sp.set_defaults(fn=cmd_generate)

    for name, fn, hlp in (
        ("sim", cmd_sim, "RTL-simulate N test images, check bit-exactness, report cycles"),
        ("bench", cmd_bench, "measure cycles, utilisation and simulation speed -> reports/"),
    ):
        sp = sub.add_parser(name, help=hlp)
        _model_args(sp)
        sp.add_argument("--array", type=_array, default=ArrayConfig(), help="RxC (default 8x8)")
        _remainder_switch(sp, on=True)
        sp.add_argument("-n", type=int, default=20, help="number of test images (default 20)")
        sp.add_argument("--seed", type=int, default=1, help="stimulus/backpressure seed")
        if name == "sim":
            sp.add_argument(
                "--gap",
                type=float,
                default=0.1,
                help="probability in [0, 1) of an idle/backpressure cycle on each stream, "
                "cocotb engine (default 0.1)",
            )
            sp.add_argument(
                "--engine", choices=("auto", "cocotb", "fast"), default="auto",
                help="cocotb: Python testbench with stream gaps, names a failing layer; fast: "
                "compiled C++ Verilator harness as Dask tasks, gap-free; auto (default): "
                f"cocotb for N <= {COCOTB_MAX_AUTO}, else fast",
            )  # fmt: skip
        else:
            sp.add_argument("--fast-n", type=_positive, default=400,
                            help="images for the fast engine's speed (default 400)")
        sp.add_argument("--workers", type=_positive, default=2,
                        help="fast engine: local Dask worker processes (default 2)")
        sp.add_argument("--scheduler", default=None,
                        help="fast engine: Dask scheduler address (tcp://host:8786) instead of "
                        "a LocalCluster; the work directory must be shared with the workers")
        sp.set_defaults(fn=fn)
    _regress_parser(sub)
    sp = sub.add_parser("export-onnx", help="write the model as an ONNX file (torch.onnx.export)")
    _model_args(sp)
    sp.add_argument("-o", "--out", default=None, help="output (default <workdir>/<model>.onnx)")
    sp.set_defaults(fn=cmd_export_onnx)
    _secure_parser(sub)
    _build_parser(sub)
    _sweep_parser(sub)
    _estimate_parser(sub)
    return p


def _with_schedule(args: argparse.Namespace) -> argparse.Namespace:
    """The two remainder switches as one schedule value (ArrayConfig.schedule) in
    ``args.remainder_tiles``, and the array scheduled with it."""
    if hasattr(args, "remainder_tiles"):
        if args.remainder_tiles and args.remainder_stream:
            args.remainder_tiles = "stream"
        if hasattr(args, "array"):
            args.array = args.array.with_schedule(args.remainder_tiles)
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        args = _with_schedule(_parser().parse_args(argv))
        tools_on_path()
        if args.workdir is not None:
            from hwgen.paths import set_workdir

            set_workdir(args.workdir)
        return args.fn(args)
    except HwgenError as e:
        msg = " ".join(str(e).split())  # always one line
        print(f"hwgen: error: {msg}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader went away (`hwgen ... | head`): no traceback; stdout is pointed at
        # devnull so the interpreter's final flush does not raise again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a command a pipe stopped


if __name__ == "__main__":
    sys.exit(main())
