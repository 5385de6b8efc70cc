"""The sweep's report: one row per array (real figures), estimate vs real with errors,
the fitted coefficients, and two plots. Everything is derived from the raw task results
(``reports/sweep_raw.json``), so ``hwgen sweep --from-json`` can rewrite it (and refit)."""

from __future__ import annotations

import json
from pathlib import Path

from hwgen.config import ArrayConfig

from .estimate import (
    RESOURCES,
    SCHEDULE_LABEL,
    features,
    fit,
    load_coeffs,
    predict,
    refit_with,
    shipped_coeffs_path,
)

__all__ = ["merge", "rerender", "rows", "write"]

_RES = ("LUT4", "FF", "MULT18X18D", "DP16KD")


def _task_schedule(raw: dict, t: dict) -> bool:
    """The schedule a task ran (a merged report mixes sweeps with and without)."""
    return t.get("remainder_tiles", _remainder_tiles(raw))


def _mixed(raw: dict) -> bool:
    return len({_task_schedule(raw, t) for t in raw["tasks_results"]}) > 1


def rows(raw: dict) -> list[dict]:
    """One row per array and schedule (PE order): the cycle task and the build task merged.
    A row's ``label`` is its array, with " rt" for remainder tiles when the schedules mix."""
    mixed, rt0 = _mixed(raw), _remainder_tiles(raw)

    def row(a: str, rt: bool) -> dict:
        return {"array": a, "pes": ArrayConfig.parse(a).pes, "remainder_tiles": rt,
                "label": a + (SCHEDULE_LABEL[rt] if mixed else "")}

    # arrays without any result yet (a partial sweep) still get their row
    done = {r["array"] for r in raw["tasks_results"]}
    by = {(a, rt0): row(a, rt0) for a in raw["arrays"] if a not in done}
    for r in raw["tasks_results"]:
        k = (r["array"], _task_schedule(raw, r))
        by.setdefault(k, row(*k))[r["kind"]] = r
    out = []
    for row in sorted(by.values(), key=lambda x: (x["pes"], x["array"], str(x["remainder_tiles"]))):
        c, b = row.get("cycles"), row.get("build")
        if c and c["ok"]:
            row.update(cycles_per_inference=c["cycles"], pe_busy=c["pe_busy"],
                       bit_exact=c["bit_exact"])
            if "steady_pe_busy" in c:  # back to back: the next image loads during compute
                row.update(cycles_back_to_back=c["steady_cycles"],
                           pe_busy_back_to_back=c["steady_pe_busy"])
        if b and b["ok"]:
            row.update({k: b["resources"][k]["used"] for k in _RES})
            if b.get("fmax_mhz"):  # (none from a resources-only build: packed, not placed)
                _routed_figures(row, b)
        out.append(row)
    return out


def _routed_figures(row: dict, b: dict) -> None:
    """A routed build's Fmax, the µs and inferences/s at it, its bitstream's clock."""
    f = b["fmax_mhz"]["median"]
    row.update(cycles_board_design=b["cycles"])  # the build's own run (DSP model)
    row.update(fmax=f, fmax_seeds=len(b["fmax_mhz"]["seeds"]),
               meets_target=b["meets_target"], target_mhz=b["target_mhz"])
    cyc = row.get("cycles_per_inference", b["cycles"])
    row.update(us_per_inference=cyc / f, inferences_per_s=f * 1e6 / cyc,
               per_klut=f * 1e6 / cyc / (b["resources"]["LUT4"]["used"] / 1e3))
    if b.get("on_board"):  # the packed bitstream runs at its PLL clock, if it can
        ob = b["on_board"]
        row.update(on_board=ob, us_on_board=cyc / ob["pll_mhz"] if ob["meets_clock"]
                   else None)


def _remainder_tiles(raw: dict) -> bool:
    """The schedule the sweep's tasks ran. A raw file without the field predates the fix that
    passes it to the tasks: they got the array as text, so remainder tiles were on."""
    return raw.get("remainder_tiles", True)


def _points(raw: dict, table: list[dict]) -> list[dict]:
    pts = []
    for row in table:
        if "LUT4" not in row:
            continue
        pts.append({"array": row["label"],
                    "features": features(raw["board"], raw["model"], row["array"],
                                         remainder_tiles=row["remainder_tiles"]),
                    "real": {**{k: row[k] for k in _RES}, "Fmax": row.get("fmax")}})
        if row["build"].get("resources_only"):  # (keeps a routed Fmax point it replaces)
            pts[-1]["resources_from"] = "nextpnr --pack-only"
    return pts


def _estimates(raw: dict, table: list[dict], out: Path) -> dict | None:
    """Refit on this sweep's builds (written to reports/), or the shipped coefficients."""
    pts = _points(raw, table)
    # the package's coefficients: what `hwgen estimate` said before this sweep (out of
    # sample unless their fit already holds the array), and the fallback below
    shipped = load_coeffs(raw["board"]) if shipped_coeffs_path(raw["board"]).exists() else None
    try:
        coeffs = _refit(raw, pts, shipped)
        path = out / f"estimate_coeffs_{raw['board']}.json"
        path.write_text(json.dumps(coeffs, indent=1))
        coeffs["path"] = str(path)
    except ValueError as e:  # too few builds to fit: the shipped fit, if any
        if shipped is None:
            return None
        coeffs = {**shipped, "source": f"shipped coefficients ({e})"}
    for row in table:
        f = features(raw["board"], raw["model"], row["array"],
                     remainder_tiles=row["remainder_tiles"])
        row["estimate"] = predict(coeffs, f)
        row["loo"] = coeffs.get("loo_predictions", {}).get(row["label"], {})
        if shipped:
            row["shipped"] = predict(shipped, f)
    return coeffs


def _refit(raw: dict, pts: list[dict], shipped: dict | None) -> dict:
    """This sweep's builds fitted; resources-only builds (no Fmax) take the Fmax fit of the
    shipped coefficients' routed builds. (No builds: `fit` says so, the caller falls back.)"""
    if shipped is None or not pts or any(p["real"]["Fmax"] is not None for p in pts):
        coeffs = fit(pts, raw["board"])
        coeffs["source"] = f"fitted on this sweep's {len(pts)} build(s) (in-sample)"
        return coeffs
    coeffs = refit_with(shipped, pts, replace_resources=True)
    coeffs["source"] = (f"resources fitted on this sweep's {len(pts)} resources-only build(s) "
                        "(in-sample); Fmax on the shipped coefficients' routed builds")
    return coeffs


def _err(est: float | None, real: float | None) -> float | None:
    return None if est is None or not real else (est - real) / real


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:+.1f} %"


def _summary(table: list[dict]) -> dict:
    built = [r for r in table if "LUT4" in r]
    routed = [r for r in built if "fmax" in r]
    closes = [r for r in routed if r["meets_target"]]
    best = min((r for r in built if "us_per_inference" in r),
               key=lambda r: r["us_per_inference"], default=None)
    return {
        "largest_fitting": max(built, key=lambda r: r["pes"])["label"] if built else None,
        "largest_closing_timing": max(closes, key=lambda r: r["pes"])["label"] if closes else None,
        "target_mhz": routed[0]["target_mhz"] if routed else None,
        "best_us_per_inference": best["us_per_inference"] if best else None,
        "best_array": best["label"] if best else None,
        "best_fmax": best["fmax"] if best else None,
        "best_bitstream": min(((r["us_on_board"], r["label"]) for r in built
                               if r.get("us_on_board")), default=None),
    }


def _percent(v: float | None) -> float | None:
    return None if v is None else 100 * v


def _fmt(v, spec: str) -> str:
    return "—" if v is None else format(v, spec)


def _main_table(table: list[dict]) -> list[str]:
    lines = ["| array | PEs | LUT4 | FF | MULT18X18D | DP16KD | Fmax MHz (seeds) | cycles | "
             "PE busy | µs/inference | inferences/s | inf/s per 1k LUT4 | "
             "cycles back to back | PE busy back to back | bitstream µs at its PLL clock |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in table:
        fmax = (f"{r['fmax']:.1f} ({r['fmax_seeds']})" + ("" if r["meets_target"] else " ✗")
                if "fmax" in r else "—")
        lines.append(
            f"| {r['label']} | {r['pes']} | {_fmt(r.get('LUT4'), ',')} | {_fmt(r.get('FF'), ',')} "
            f"| {_fmt(r.get('MULT18X18D'), '')} | {_fmt(r.get('DP16KD'), '')} | {fmax} "
            f"| {_fmt(r.get('cycles_per_inference'), ',.0f')} "
            f"| {_fmt(100 * r['pe_busy'] if 'pe_busy' in r else None, '.1f')}"
            f"{' %' if 'pe_busy' in r else ''} "
            f"| {_fmt(r.get('us_per_inference'), ',.1f')} "
            f"| {_fmt(r.get('inferences_per_s'), ',.0f')} | {_fmt(r.get('per_klut'), ',.1f')} "
            f"| {_fmt(r.get('cycles_back_to_back'), ',.0f')} "
            f"| {_fmt(_percent(r.get('pe_busy_back_to_back')), '.1f')}"
            f"{' %' if 'pe_busy_back_to_back' in r else ''} | {_on_board(r)} |")
    return lines


def _on_board(r: dict) -> str:
    """The packed bitstream on a board: its µs at the PLL clock, or why it has none."""
    ob = r.get("on_board")
    if not ob:
        return "—"
    if ob["meets_clock"]:
        return f"{r['us_on_board']:,.1f} at {ob['pll_mhz']:g} MHz"
    return f"✗ seed {ob['seed']} {ob['fmax_mhz']:.1f} < {ob['pll_mhz']:g} MHz"


def _est_table(table: list[dict]) -> list[str]:
    lines = ["| array | resource | real | estimate | error (in-sample) | error (leave-one-out) "
             "| shipped estimate | its error |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in table:
        if "estimate" not in r or "LUT4" not in r:
            continue
        for k in RESOURCES:
            real = r.get("fmax") if k == "Fmax" else r[k]
            if real is None:  # (a resources-only build: no Fmax)
                continue
            est, loo = r["estimate"][k], r["loo"].get(k)
            old = r.get("shipped", {}).get(k)
            spec = ".1f" if k == "Fmax" else ",.0f"
            lines.append(f"| {r['label']} | {k} | {format(real, spec)} | {format(est, spec)} "
                         f"| {_pct(_err(est, real))} | {_pct(_err(loo, real))} "
                         f"| {_fmt(old, spec)} | {_pct(_err(old, real))} |")
    return lines


def _errors(table: list[dict]) -> dict:
    """Worst absolute relative error per resource: in-sample, leave-one-out, and of the
    shipped coefficients (what `hwgen estimate` predicted before the sweep)."""
    out = {}
    for k in RESOURCES:
        real = [(r.get("fmax") if k == "Fmax" else r[k], r) for r in table if "LUT4" in r and
                "estimate" in r]
        ins = [abs(_err(r["estimate"][k], v)) for v, r in real if v]
        loo = [abs(_err(r["loo"][k], v)) for v, r in real if v and k in r["loo"]]
        old = [abs(_err(r["shipped"][k], v)) for v, r in real if v and "shipped" in r]
        out[k] = {"in_sample_max": max(ins) if ins else None,
                  "loo_max": max(loo) if loo else None,
                  "shipped_max": max(old) if old else None}
    return out


def _schedules(raw: dict) -> str:
    if _mixed(raw):
        return ("rows marked rt scheduled with remainder tiles, rs with two-stream remainder "
                "tiles, the others without")
    how = {False: "without", True: "with", "stream": "with two-stream"}[_remainder_tiles(raw)]
    return f"every task scheduled {how} remainder tiles"


def _cycles_design(raw: dict) -> str:
    """Which design the cycle tasks simulated: the board's (its traits; sweeps since session
    46) or the generic one (older sweeps' JSON has no ``design``)."""
    kinds = {t.get("design", "generic") for t in raw["tasks_results"] if t["kind"] == "cycles"}
    if kinds == {raw["board"]}:
        return (f"the {raw['board']} design (its traits, the generic `*` in place of its "
                "multipliers: the same latency)")
    return "the generic design" if kinds == {"generic"} else "the board's or the generic design"


def _text(raw: dict, table: list[dict], s: dict, coeffs: dict | None, errs: dict) -> str:
    lines = [f"# hwgen sweep: {raw['model']} on {raw['device']}", "",
             f"Command: `{raw['command']}` ({raw['finished']}/{raw['tasks']} Dask tasks on "
             f"{raw['scheduler']}, {raw['wall_s'] / 60:.0f} min wall); " + _schedules(raw), ""]
    if raw["finished"] < raw["tasks"]:
        lines += ["**Partial: not every task has finished.**", ""]
    lines += _main_table(table)
    how = ("Resources: yosys + nextpnr's packer (`--resources-only`: no placement, so no Fmax, "
           "µs or bitstream)" if raw.get("resources_only") else "Resources and Fmax: yosys + "
           "nextpnr (post-route, median over the seeds; ✗ = below the target clock)")
    lines += ["", f"{how}; cycles: the counters of {_cycles_design(raw)} in Verilator (fast "
              f"harness, {raw['images']} image(s), every logit bit-exact); µs and inferences/s "
              "at the measured Fmax; a bitstream runs at its PLL clock, so the last column "
              "gives its µs only where its packed seed routed at least that fast. PE busy = "
              "executed MACs ÷ (PEs × cycles), I/O included. Back to "
              "back (with ≥ 3 images): the images fed continuously, each loading while the one "
              "before computes; cycles from start to start from the second image on, the "
              "host's start pulse and counter reads included.", ""]
    same = [r["label"] for r in table
            if "cycles_per_inference" in r and "cycles_board_design" in r
            and r["cycles_per_inference"] == r["cycles_board_design"]]
    differ = [f"{r['label']} ({r['cycles_board_design']:,.0f})" for r in table
              if "cycles_per_inference" in r and "cycles_board_design" in r
              and r["label"] not in same]
    if same or differ:
        lines += [f"The board build's own RTL run (its design, MULT18X18D behavioural model, "
                  f"cocotb) counted the same cycles on {', '.join(same) or 'no array'}"
                  + (f"; different on {', '.join(differ)}" if differ else "") + ".", ""]
    for r in table:
        bad = [t for t in (r.get("cycles"), r.get("build")) if t and not t["ok"]]
        lines += [f"* {r['label']} {t['kind']} failed: {t['error']}" for t in bad]
    crit = [(r["label"], r["build"]["critical_path"][0]) for r in table
            if "LUT4" in r and r["build"].get("critical_path")]
    if crit:
        lines += ["Critical path of each build (nextpnr, the design clock):", "",
                  *[f"* {a}: `{p['start']}` → `{p['end']}`, {p['logic_levels']} logic levels, "
                    f"{p['delay_ns']} ns ({p['routing_ns']} ns routing)" for a, p in crit], ""]
    if s["largest_fitting"] and not s["target_mhz"]:  # resources-only builds
        lines += [f"Largest built array that fits the device (packed, not placed): "
                  f"**{s['largest_fitting']}**; no Fmax, µs nor bitstream without place and "
                  "route (a sweep without `--resources-only` measures them).", ""]
    elif s["largest_fitting"]:
        lines += [
            f"Largest built array that fits the device: **{s['largest_fitting']}**; largest that "
            f"also closes timing at the build's {s['target_mhz']:g} MHz target: "
            f"**{s['largest_closing_timing'] or 'none of the swept arrays'}**.  ",
            f"Best µs per inference: **{s['best_us_per_inference']:.1f} µs** on "
            f"{s['best_array']} at its measured {s['best_fmax']:.1f} MHz; best bitstream at "
            "its PLL clock: " + (f"**{s['best_bitstream'][0]:,.1f} µs** on "
                                 f"{s['best_bitstream'][1]}." if s["best_bitstream"] else
                                 "none meets its clock."), ""]
    if coeffs:
        lines += ["## Estimator vs real", "", f"Coefficients: {coeffs['source']}.", "",
                  *_est_table(table), "",
                  "Worst |error| per resource: " + "; ".join(
                      f"{k} {_pct(v['in_sample_max'])} in-sample, {_pct(v['loo_max'])} LOO, "
                      f"{_pct(v.get('shipped_max'))} shipped" for k, v in errs.items()), "",
                  "In-sample errors are measured on the points the coefficients were fitted "
                  "to; the leave-one-out error refits without the point (— : too few points "
                  "for the form); the shipped estimate is what `hwgen estimate` predicted "
                  "with the coefficients in the package before this sweep (out of sample "
                  "for arrays they were not fitted on).", "",
                  "| resource | features | coefficients |", "|---|---|---|",
                  *[f"| {k} | {', '.join(coeffs['forms'][k])} | "
                    f"{', '.join(f'{c:.4g}' for c in coeffs['coeffs'][k])} |" for k in RESOURCES],
                  ""]
    lines += ["![resources](sweep_resources.png)", "", "![performance](sweep_perf.png)", ""]
    return "\n".join(lines)


def _label(ax, rows_: list[dict], ys: list[float]) -> None:
    for r, y in zip(rows_, ys, strict=True):
        ax.annotate(r["label"], (r["pes"], y), textcoords="offset points", xytext=(4, 4),
                    fontsize=7)


def _plots(table: list[dict], out: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    built = [r for r in table if "LUT4" in r]
    paths = {"png_resources": out / "sweep_resources.png", "png_perf": out / "sweep_perf.png"}
    fig, axs = plt.subplots(1, 4, figsize=(13, 3.2))
    for ax, k in zip(axs, _RES, strict=True):
        xs = [r["pes"] for r in built]
        ax.plot(xs, [r[k] for r in built], "o", label="real")
        _label(ax, built, [r[k] for r in built])
        if built and "estimate" in built[0]:
            ax.plot(xs, [r["estimate"][k] for r in built], "x", label="estimate")
        ax.set_title(k)
        ax.set_xlabel("PEs")
        ax.legend()
    fig.tight_layout()
    fig.savefig(paths["png_resources"], dpi=100)
    plt.close(fig)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.5))
    have = [r for r in table if "cycles_per_inference" in r]
    a1.plot([r["pes"] for r in have], [r["cycles_per_inference"] for r in have], "o")
    _label(a1, have, [r["cycles_per_inference"] for r in have])
    a1.set_xlabel("PEs")
    a1.set_ylabel("cycles / inference")
    a1.set_xscale("log", base=2)
    a1.set_title("RTL cycles (Verilator)")
    routed = [r for r in built if "fmax" in r]
    a2.plot([r["pes"] for r in routed], [r["us_per_inference"] for r in routed], "o",
            label="µs/inference at measured Fmax")
    _label(a2, routed, [r["us_per_inference"] for r in routed])
    a2.set_xlabel("PEs")
    a2.set_ylabel("µs / inference")
    a2b = a2.twinx()
    a2b.plot([r["pes"] for r in routed], [r["fmax"] for r in routed], "s", color="C1")
    a2b.set_ylabel("post-route Fmax (MHz)", color="C1")
    a2.set_title("latency and Fmax")
    fig.tight_layout()
    fig.savefig(paths["png_perf"], dpi=100)
    plt.close(fig)
    return paths


def write(raw: dict, out: Path) -> dict:
    """sweep.json + sweep.md + plots (+ the refitted coefficients) under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    table = rows(raw)
    coeffs = _estimates(raw, table, out)
    s = _summary(table)
    errs = _errors(table)
    text = _text(raw, table, s, coeffs, errs)
    paths = {"md": out / "sweep.md", "json": out / "sweep.json", **_plots(table, out)}
    ok = all(t["ok"] for t in raw["tasks_results"]) and raw["finished"] == raw["tasks"]
    res = {**{k: v for k, v in raw.items() if k != "tasks_results"}, "summary": s,
           "rows": table, "estimator_errors": errs,
           "coefficients": coeffs and {k: coeffs[k] for k in ("forms", "coeffs", "source")},
           "all_ok": ok, "tasks_results": raw["tasks_results"]}
    paths["json"].write_text(json.dumps(res, indent=1, default=str))
    paths["md"].write_text(text)
    return {**res, "text": text, "paths": paths}


def merge(raws: list[dict], names: list[str]) -> dict:
    """Several sweeps' raw results as one (same board and model): their tasks side by side,
    each keeping the schedule it ran, so the report and the fit cover every build."""
    from hwgen.errors import UsageError

    first = raws[0]
    for raw, name in zip(raws, names, strict=True):
        for k in ("board", "model"):
            if raw[k] != first[k]:
                raise UsageError(f"--from-json {name}: {k} {raw[k]!r}, not {names[0]}'s "
                                 f"{first[k]!r}")
    tasks = [{**t, "remainder_tiles": _task_schedule(raw, t)}
             for raw in raws for t in raw["tasks_results"]]
    arrays = [a for raw in raws for a in raw["arrays"]]
    return {**first, "command": " + ".join(r["command"] for r in raws),
            "arrays": list(dict.fromkeys(arrays)), "sources": names,
            "seeds": max(r["seeds"] for r in raws), "images": min(r["images"] for r in raws),
            "finished": sum(r["finished"] for r in raws), "tasks": sum(r["tasks"] for r in raws),
            "wall_s": sum(r["wall_s"] for r in raws), "tasks_results": tasks}


def _load(path: Path) -> dict:
    from hwgen.errors import UsageError

    try:
        raw = json.loads(path.read_text())
        raw["tasks_results"], raw["board"], raw["model"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(f"--from-json {path}: not a sweep's raw results ({e})") from None
    return raw


def rerender(paths: list[Path]) -> dict:
    """Rewrite the report from raw results files (``reports/sweep_raw.json``), merged when
    there are several (``merge``)."""
    from hwgen.paths import reports

    raws = [_load(p) for p in paths]
    raw = raws[0] if len(raws) == 1 else merge(raws, [str(p) for p in paths])
    return write(raw, reports())
