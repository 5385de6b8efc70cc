"""`hwgen` command line: every Makefile target is one of these subcommands."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from hwgen.config import ArrayConfig
from hwgen.paths import reports

__all__ = ["main"]


def _array(text: str) -> ArrayConfig:
    try:
        return ArrayConfig.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _models(text: str) -> list[str]:
    from hwgen import zoo

    names = [n.strip() for n in text.split(",") if n.strip()]
    known = set(zoo.model_names())
    for n in names:
        if n not in known:
            raise argparse.ArgumentTypeError(f"unknown model {n!r} (known: {sorted(known)})")
    if not names:
        raise argparse.ArgumentTypeError("--fit needs at least one model name")
    return names


def cmd_eval(args: argparse.Namespace) -> int:
    from hwgen.evaluate import evaluate

    evaluate(args.model, n=args.n, progress=True)
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    from hwgen.evaluate import build_qmodel

    qm = build_qmodel(args.model)
    print(qm.summary())
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from hwgen.emit.verilog import lint, write_rtl
    from hwgen.evaluate import build_qmodel
    from hwgen.schedule.lower import lower

    qm = build_qmodel(args.model)
    prog = lower(qm, args.array)
    plan = None
    if args.fit:  # one design sized for several models; the program is loaded at run time
        from hwgen.schedule.capacity import MemoryPlan

        plan = MemoryPlan.fit([prog] + [lower(build_qmodel(n), args.array) for n in args.fit])
    out = write_rtl(prog, Path(args.out) if args.out else None, plan=plan)
    print(prog.text())
    if plan is not None:
        print(f"memory plan (fits {', '.join([args.model, *args.fit])}): {plan.text()}")
    ok, log = lint(out / "accel.v")
    (out / "lint.log").write_text(log)
    print(f"wrote {out}/accel.v, manifest.json, program.txt")
    print(f"verilator --lint-only: {'clean' if ok else 'FAILED'} (waivers in manifest.json)")
    return 0 if ok else 1


def _accuracy(model: str) -> dict:
    """Float vs int8-golden accuracy on the 10k test set, cached per weight file."""
    import hashlib

    from hwgen import zoo as models
    from hwgen.evaluate import evaluate, qmodel_dir

    key = hashlib.sha256(models.weights_path(model).read_bytes()).hexdigest()
    path = qmodel_dir(model).parent / "accuracy.json"
    if path.exists():
        cached = json.loads(path.read_text())
        if cached.get("weights_sha256") == key:
            return cached
    print(f"[hwgen] measuring float and int8 accuracy of {model} on 10,000 test images ...")
    res = evaluate(model, progress=False)
    res["weights_sha256"] = key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=1))
    return res


def cmd_sim(args: argparse.Namespace) -> int:
    from hwgen.perf.report import write_report
    from hwgen.sim.network import run_network

    acc = _accuracy(args.model)
    print(
        f"[hwgen] {args.model} on 10,000 MNIST test images: float {acc['float_acc']:.2f} %, "
        f"int8 golden {acc['int8_acc']:.2f} %, top-1 agreement {acc['agreement']:.2f} %"
    )
    summary = run_network(args.model, args.array, args.n, seed=args.seed, gap=args.gap)
    summary["accuracy_10k"] = {k: acc[k] for k in ("float_acc", "int8_acc", "agreement")}
    summary["text"] += (
        f"\naccuracy on 10k test images: float {acc['float_acc']:.2f} %, "
        f"int8 {acc['int8_acc']:.2f} %, RTL = int8 golden on every simulated image"
        if summary["all_match"]
        else ""
    )
    paths = write_report(summary, reports() / f"{args.model}_{args.array}")
    print(summary["text"])
    print(f"report: {paths['md']}, {paths['json']}, {paths['png']}")
    return 0 if summary["all_match"] else 1


def cmd_bench(args: argparse.Namespace) -> int:
    from hwgen.perf.report import write_report
    from hwgen.sim.network import run_network

    t0 = time.perf_counter()
    summary = run_network(args.model, args.array, args.n, seed=args.seed, gap=0.0)
    paths = write_report(summary, reports() / f"{args.model}_{args.array}")
    bench = {
        "model": args.model,
        "array": str(args.array),
        "images": args.n,
        "all_match": summary["all_match"],
        "cycles_per_inference": summary["cycles"]["total"],
        "cycles": summary["cycles"],
        "mac_bound_cycles": summary["ideal_cycles"],
        "cycles_vs_mac_bound": summary["vs_mac_bound"],
        "model_macs": summary["macs"],
        "executed_macs": summary["executed_macs"],
        "pe_utilisation": summary["utilisation"],
        "pe_utilisation_note": "executed MACs / (PEs x total cycles incl. data-in/out)",
        "sim_inferences_per_s": summary["sim_inferences_per_s"],
        "sim_cycles_per_s": summary["sim_cycles_per_s"],
        "wall_s": time.perf_counter() - t0,
    }
    out = reports() / "bench.json"
    out.write_text(json.dumps(bench, indent=1))
    print(json.dumps(bench, indent=1))
    print(f"wrote {out} and {paths['md']}")
    return 0 if summary["all_match"] else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="hwgen",
        description="PyTorch CNN -> int8 systolic-array accelerator (Amaranth), "
        "verified bit-exact against a NumPy golden model in Verilator.",
    )
    sub = p.add_subparsers(dest="cmd", required=True)

    def model_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--model", default="mnist_cnn", help="model name in hwgen/zoo/ (default mnist_cnn)"
        )

    sp = sub.add_parser("eval", help="float vs int8-golden accuracy on the MNIST test set")
    model_arg(sp)
    sp.add_argument("-n", type=int, default=None, help="number of test images (default all 10k)")
    sp.set_defaults(fn=cmd_eval)

    sp = sub.add_parser("quantize", help="quantize (cached in build/) and print the int8 model")
    model_arg(sp)
    sp.set_defaults(fn=cmd_quantize)

    sp = sub.add_parser("generate", help="write Verilog + manifest to rtl_out/<model>/ and lint it")
    model_arg(sp)
    sp.add_argument("--array", type=_array, default=ArrayConfig(), help="RxC (default 8x8)")
    sp.add_argument("--out", default=None, help="output directory (default rtl_out/<model>)")
    sp.add_argument(
        "--fit", type=_models, default=[], metavar="MODEL[,MODEL...]",
        help="also size the memories for these models (one design runs all of them)",
    )
    sp.set_defaults(fn=cmd_generate)

    for name, fn, hlp in (
        ("sim", cmd_sim, "RTL-simulate N test images, check bit-exactness, report cycles"),
        ("bench", cmd_bench, "measure cycles, utilisation and simulation speed -> reports/"),
    ):
        sp = sub.add_parser(name, help=hlp)
        model_arg(sp)
        sp.add_argument("--array", type=_array, default=ArrayConfig(), help="RxC (default 8x8)")
        sp.add_argument("-n", type=int, default=20, help="number of test images (default 20)")
        sp.add_argument("--seed", type=int, default=1, help="stimulus/backpressure seed")
        if name == "sim":
            sp.add_argument(
                "--gap", type=float, default=0.1,
                help="probability of an idle/backpressure cycle on each stream (default 0.1)",
            )
        sp.set_defaults(fn=fn)

    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
