"""The sweep's Dask tasks: one RTL cycle measurement and one board build per array.

Both are thin wrappers over existing code: the cycle task runs the flow up to ``schedule``
and the fast Verilator harness (``hwgen.sim.fast``) in the worker's own process; the build
task runs the flow's ``build`` step (``hwgen.boards.build``: the board's design simulated,
yosys, nextpnr per seed, the packer). A failure is the task's result (``error``), so one
configuration that does not fit or breaks a tool does not stop the others.
"""

from __future__ import annotations

import resource
import time
import traceback

__all__ = ["board_traits", "build_task", "cycles_task", "cpu_seconds"]


def cpu_seconds() -> float:
    """User + system CPU of this process and its finished children (Verilator, yosys, ...)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _flow(model: str, array: str, remainder_tiles: bool, wdir: str, **kw):
    from hwgen.config import ArrayConfig
    from hwgen.flow import BuildConfig, run

    # The array travels as text (the task key); the schedule switch travels beside it.
    a = ArrayConfig.parse(array).with_schedule(remainder_tiles)
    return run(BuildConfig(model=model, array=a, workdir=wdir, **kw))


def _failed(kind: str, array: str, t0: float, c0: float, e: BaseException) -> dict:
    return {"kind": kind, "array": array, "ok": False,
            "error": f"{type(e).__name__}: {' '.join(str(e).split())}"[:600],
            "traceback": traceback.format_exc()[-2000:],
            "wall_s": time.perf_counter() - t0, "cpu_s": cpu_seconds() - c0}


def cycles_task(model: str, array: str, remainder_tiles: bool, n: int, wdir: str,
                board: str | None = None) -> dict:
    """Dask task: ``n`` test images through the fast harness on ``array``; every logit checked
    against the golden model; cycles per inference and PE-busy from the design's counters
    (``hwgen.perf.model.summarize``, the figures ``hwgen sim``/``bench`` report). With
    n >= 3 the images also run back to back (each loads while the previous one computes):
    ``steady_cycles`` (start to start from the second image on) and ``steady_pe_busy``.
    With a ``board`` the design is the board's (its traits: ``traits_of`` its simulation
    platform), so the cycles are those its build's RTL run counts."""
    from hwgen.perf.model import summarize
    from hwgen.sim.fast import prepare_fast, run_inline

    t0, c0 = time.perf_counter(), cpu_seconds()
    try:
        st = _flow(model, array, remainder_tiles, wdir, n=n, gap=0.0,
                   steps=("import", "quantize", "schedule"))
        images, labels = st.source.data.test(n)
        case = prepare_fast(st.qmodel, st.cfg.array, images, tag=f"_sweep_{board or 'generic'}",
                            platform=board_traits(board))  # fmt: skip
        recs, wall = run_inline(case)
        if len(recs) != n:
            raise RuntimeError(f"{len(recs)}/{n} images produced a result; see {case.work}")
        s = summarize(case.prog, recs, labels, {"wall_s": wall})
        b2b = {}
        if n >= 3:
            recs2, _ = run_inline(case, back_to_back=True)
            b = summarize(case.prog, recs2, labels, {})
            b2b = {"steady_cycles": b["steady_cycles"], "steady_pe_busy": b["steady_pe_busy"],
                   "bit_exact_back_to_back": f"{b['n_match']}/{b['n']}"}  # fmt: skip
    except Exception as e:  # the configuration's result, not the sweep's end
        return _failed("cycles", array, t0, c0, e)
    c = s["cycles"]
    ok = s["all_match"] and b2b.get("bit_exact_back_to_back", f"{n}/{n}") == f"{n}/{n}"
    return {
        "kind": "cycles", "array": array, "remainder_tiles": remainder_tiles, "ok": ok, "images": n,
        "design": board or "generic",
        "bit_exact": f"{s['n_match']}/{s['n']}", **b2b,
        "error": None if ok else "RTL logits differ from the golden model",
        "cycles": c["total"],
        "cycles_parts": {k: c[k] for k in ("input", "output", "compute", "control")},
        "pes": s["pes"], "macs": s["macs"], "executed_macs": s["executed_macs"],
        "pe_busy": s["utilisation"], "pe_busy_compute": s["compute_utilisation"],
        "layers": [{k: lay[k] for k in ("name", "cycles", "utilisation")} for lay in c["layers"]],
        "wall_s": time.perf_counter() - t0, "cpu_s": cpu_seconds() - c0,
    }  # fmt: skip


def board_traits(board: str | None):
    """The traits of ``board``'s design (hwgen.rtl.traits), or None: the generic design."""
    if board is None:
        return None
    from hwgen.boards.platforms import make
    from hwgen.rtl.traits import traits_of

    return traits_of(make(board).sim_platform())


def build_task(model: str, array: str, remainder_tiles: bool, board: str, seeds: int, n: int,
               wdir: str, freq_mhz: float | None = None, resources_only: bool = False,
               pnr_freq_mhz: float | None = None) -> dict:
    """Dask task: the full board build of ``model`` on ``array`` (the flow's build step), or
    with ``resources_only`` yosys and nextpnr's packer alone (resources, no Fmax)."""
    from hwgen.flow import BUILD_STEPS

    t0, c0 = time.perf_counter(), cpu_seconds()
    try:
        # workers=1: the seeds one after another inside this task. A Dask worker is a
        # daemon process and cannot start the LocalCluster the build would open for them
        # ("daemonic processes are not allowed to have children": every build of a
        # `--seeds 2` sweep failed so); the sweep's parallelism is across arrays.
        rep = _flow(model, array, remainder_tiles, wdir, n=n, steps=BUILD_STEPS, board=board,
                    seeds=seeds, freq_mhz=freq_mhz, pnr_freq_mhz=pnr_freq_mhz, workers=1,
                    resources_only=resources_only).board_report  # fmt: skip
    except Exception as e:
        r = _failed("build", array, t0, c0, e)
        r["fits"] = False if "does not fit the device" in r["error"] else None
        return r
    out = {
        "kind": "build", "array": array, "remainder_tiles": remainder_tiles, "ok": True,
        "error": None, "fits": True, "resources_only": resources_only,
        "resources": rep["resources"], "multipliers": rep["multipliers"],
        "report": rep["report_json"], "tool_cpu_s": rep["step_cpu_seconds"],
        "wall_s": time.perf_counter() - t0, "cpu_s": cpu_seconds() - c0,
    }  # fmt: skip
    return out if resources_only else {**out, **_routed(rep)}


def _routed(rep: dict) -> dict:
    """A routed build's figures: Fmax per seed, cycles, the critical path, the bitstream."""
    f = rep["fmax_post_route_mhz"]
    return {
        "fmax_mhz": {k: f[k] for k in ("seeds", "per_seed", "min", "median", "max",
                                       "stalled_seeds")},
        "target_mhz": rep["target_mhz"], "meets_target": rep["meets_target"],
        "cycles": rep["cycles_per_inference"], "critical_path": rep["critical_path"][:1],
        "bitstream": rep["bitstream"], "on_board": rep["bitstream_on_board"],
        "complete": rep["complete"],
    }  # fmt: skip
