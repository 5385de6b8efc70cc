"""Analytical cycle model and the measured-vs-ideal summary of an RTL run.

Read-only analysis: takes the Program and the counters the RTL reported, returns dicts.
"""

from __future__ import annotations

import numpy as np

from hwgen.schedule.program import Program

__all__ = ["analytical_cycles", "summarize", "CLOCK_MHZ"]

# The ECP5-85F clock the design is built for: an ASSUMED clock, not a measurement. Measured
# post-route Fmax (nextpnr) comes from `hwgen build`, whose report gives throughput at it.
CLOCK_MHZ = 150.0
CLOCK_NOTE = "assumed target clock, not measured; `hwgen build` reports post-route Fmax"
PER_IMAGE_LINES = 20  # render_text lists at most this many images (plus every mismatch)


def analytical_cycles(prog: Program) -> dict:
    """Issue cycles per layer (tiles x interval); the pipeline fill/drain per layer is measured."""
    layers = [
        {
            "name": lay.name,
            "tiles": lay.tiles,
            "interval": lay.interval,
            "issue_cycles": lay.issue_cycles,
            "macs": lay.model_macs,
            "executed_macs": lay.macs,
            "ideal_cycles": lay.model_macs / prog.array.pes,
            "executed_ideal_cycles": lay.macs / prog.array.pes,
        }
        for lay in prog.layers
    ]
    cin, h, w = prog.in_shape
    return {
        "layers": layers,
        "input": cin * h * w,
        "output": prog.out_len,
        "issue_total": sum(x["issue_cycles"] for x in layers),
    }


def summarize(prog: Program, images: list[dict], labels, sim_out: dict) -> dict:
    """Combine per-image RTL results (logits, counters) into the report summary."""
    n = len(images)
    nl = len(prog.layers)
    cyc = np.array([r["cycles"][: 3 + nl] for r in images], dtype=np.float64)
    mean = cyc.mean(axis=0)
    ana = analytical_cycles(prog)
    total = float(mean[0])
    layers = []
    for li, a in enumerate(ana["layers"]):
        measured = float(mean[3 + li])
        layers.append(
            {
                **a,
                "cycles": measured,
                # fraction of PE-cycles doing a MAC the schedule needs
                "utilisation": a["executed_ideal_cycles"] / measured if measured else 0,
            }
        )
    n_match = sum(1 for r in images if r["match"])
    has_labels = labels is not None
    labels = np.asarray(labels[:n]) if has_labels else np.full(n, -1)  # -1: no label
    rtl_pred = np.array([int(np.argmax(r["logits"])) for r in images])
    gold_pred = np.array([int(np.argmax(r["golden"])) for r in images])
    ideal = prog.ideal_cycles
    wall = sim_out.get("wall_s", 0.0)
    summary = {
        "model": prog.model,
        "array": str(prog.array),
        "pes": prog.array.pes,
        "n": n,
        "n_match": n_match,
        "all_match": n_match == n,
        "rtl_accuracy": float((rtl_pred == labels).mean()) if n and has_labels else None,
        "golden_accuracy": float((gold_pred == labels).mean()) if n and has_labels else None,
        "macs": prog.macs,
        "executed_macs": prog.executed_macs,
        "ideal_cycles": ideal,
        "executed_ideal_cycles": prog.executed_ideal_cycles,
        "analytical": ana,
        "cycles": {
            "total": total,
            "input": float(mean[1]),
            "output": float(mean[2]),
            "compute": float(sum(mean[3:])),
            "control": total - float(mean[1]) - float(mean[2]) - float(sum(mean[3:])),
            "layers": layers,
        },
        "vs_mac_bound": total / ideal if ideal else 0.0,
        "utilisation": prog.executed_ideal_cycles / total if total else 0.0,
        "compute_utilisation": prog.executed_ideal_cycles / float(sum(mean[3:])) if n else 0.0,
        "clock_mhz": CLOCK_MHZ,
        "clock_measured": False,
        "clock_note": CLOCK_NOTE,
        "inferences_per_s_at_clock": CLOCK_MHZ * 1e6 / total if total else 0.0,
        "sim_wall_s": wall,
        "sim_inferences_per_s": n / wall if wall else 0.0,
        "sim_cycles_per_s": float(cyc[:, 0].sum()) / wall if wall else 0.0,
        "weights_load_s": sim_out.get("weights_load_s", 0.0),
        "per_image": [
            {"index": r["index"], "match": r["match"], "label": int(labels[i]),
             "rtl_pred": int(rtl_pred[i]), "total_cycles": int(r["cycles"][0]),
             **({"first_bad_layer": r["first_bad_layer"]} if "first_bad_layer" in r else {})}
            for i, r in enumerate(images)
        ],
    }
    summary.update(back_to_back(prog, images))
    summary["text"] = render_text(summary)
    return summary


def back_to_back(prog: Program, images: list[dict]) -> dict:
    """Steady-state figures from the start-pulse cycles the fast harness records: the mean
    start-to-start period from the second image on (the first image's load cannot overlap
    anything; back to back the others preload) and the PE busy over it, I/O and the host's
    counter reads included."""
    starts = [r["start"] for r in images if "start" in r]
    if len(starts) != len(images) or len(starts) < 3:
        return {}
    # A sharded run (hwgen.sim.fast: one harness process per shard) restarts the cycle count
    # in each shard: periods only within a run of rising starts, from its second image on.
    runs, periods = [[starts[0]]], []
    for s in starts[1:]:
        if s > runs[-1][-1]:
            runs[-1].append(s)
        else:
            runs.append([s])
    for run in runs:
        periods += np.diff(run)[1:].tolist()
    if not periods:
        return {}
    period = float(np.mean(periods))
    return {"steady_cycles": period, "steady_pe_busy": prog.executed_ideal_cycles / period}


def render_text(s: dict) -> str:
    c = s["cycles"]
    lines = [f"== {s['model']} on a {s['array']} array ({s['pes']} PEs) =="]
    shown = s["per_image"]
    if len(shown) > PER_IMAGE_LINES:  # bulk runs: the first few and every mismatch
        bad = [r for r in shown if not r["match"]]
        shown = shown[:PER_IMAGE_LINES] + [r for r in bad if r["index"] >= PER_IMAGE_LINES]
        lines.append(f"  (per-image lines: the first {PER_IMAGE_LINES} and every mismatch)")
    for r in shown:
        tag = "bit-exact" if r["match"] else f"MISMATCH ({r.get('first_bad_layer', '?')})"
        lines.append(
            f"  image {r['index']:3d}: label {r['label']} rtl {r['rtl_pred']}  {tag}  "
            f"{r['total_cycles']} cycles"
        )
    acc = (
        f"   RTL accuracy {100 * s['rtl_accuracy']:.1f} %  "
        f"(int8 golden {100 * s['golden_accuracy']:.1f} %)"
        if s["rtl_accuracy"] is not None
        else "   (no labels: no accuracy)"
    )
    lines += [
        f"bit-exact: {s['n_match']}/{s['n']}{acc}",
        "",
        f"{'layer':<10} {'measured':>9} {'issue':>9} {'ideal':>9} {'PE busy':>8}",
    ]
    for lay in c["layers"]:
        lines.append(
            f"{lay['name']:<10} {lay['cycles']:>9.0f} {lay['issue_cycles']:>9d} "
            f"{lay['executed_ideal_cycles']:>9.0f} {100 * lay['utilisation']:>7.1f}%"
        )
    lines += [
        f"{'data-in':<10} {c['input']:>9.0f}",
        f"{'results':<10} {c['output']:>9.0f}",
        f"{'control':<10} {c['control']:>9.0f}",
        f"{'TOTAL':<10} {c['total']:>9.0f} {'':>9} {s['executed_ideal_cycles']:>9.0f} "
        f"{100 * s['utilisation']:>7.1f}%",
        f"model MACs {s['macs']:,}: MAC bound (MACs/PEs) {s['ideal_cycles']:,.0f} cycles; "
        f"measured total = {100 * s['vs_mac_bound']:.1f} % of it",
        f"executed MACs {s['executed_macs']:,} (outputs a fused pool discards are skipped); "
        f"PE busy {100 * s['utilisation']:.1f} % overall, "
        f"{100 * s['compute_utilisation']:.1f} % during compute",
        *([f"start to start (steady state, from image 2 on): {s['steady_cycles']:,.0f} "
           f"cycles, PE busy {100 * s['steady_pe_busy']:.1f} %"] if "steady_cycles" in s else []),
        f"at {s['clock_mhz']:.0f} MHz ({CLOCK_NOTE}): "
        f"{s['inferences_per_s_at_clock']:,.0f} inferences/s",
        f"simulation speed {s['sim_inferences_per_s']:.2f} inferences/s "
        f"({s['sim_cycles_per_s'] / 1e3:,.0f} k cycles/s, "
        f"weights load {s['weights_load_s']:.1f} s)",
    ]
    return "\n".join(lines)
