"""Steady-state cycles per inference and PE busy, back to back, from RTL (Verilator).

    PYTHONPATH=. python scripts/back_to_back.py [MODEL] [ARRAY] [N] [--no-remainder-tiles]
        [--b2b-only]                                          (default mnist_cnn 8x8 6)

Runs N MNIST test images through the fast harness (hwgen.sim.fast) twice on one build: the
image sent after each `start` (as a host without the preload does), then back to back (the
image stream fed continuously: the next image loads while the current one computes). Every
logit is checked against the golden model. Prints one JSON line per mode: the design's
counters per image, the start-to-start periods, the steady state (mean period from the
second image on) and PE busy = executed MACs / (PEs x steady period), I/O and the host's
start pulse and counter reads included. `--no-remainder-tiles` schedules as the board builds
and `hwgen sweep` do by default (no conv remainder tiles); `--b2b-only` skips the first mode.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from hwgen.config import ArrayConfig
from hwgen.datasets import load_mnist_sample
from hwgen.evaluate import build_qmodel
from hwgen.sim.fast import prepare_fast, run_inline


def measure(model: str, array: str, n: int, *, remainder: bool = True,
            b2b_only: bool = False) -> list[dict]:  # fmt: skip
    images, _ = load_mnist_sample()
    cfg = ArrayConfig.parse(array, remainder_tiles=remainder)
    tag = "_b2b" if remainder else "_b2b_norem"
    case = prepare_fast(build_qmodel(model), cfg, images[:n], tag=tag)
    out = []
    for b2b in (True,) if b2b_only else (False, True):
        recs, _ = run_inline(case, back_to_back=b2b)
        period = float(np.diff([r["start"] for r in recs])[1:].mean())
        out.append({
            "model": model, "array": array, "images": n, "remainder_tiles": remainder,
            "back_to_back": b2b,
            "bit_exact": f"{sum(r['match'] for r in recs)}/{len(recs)}",
            "status": sorted({r.get("status", 0) for r in recs}),
            "total": [r["cycles"][0] for r in recs], "data_in": [r["cycles"][1] for r in recs],
            "results_out": [r["cycles"][2] for r in recs],
            "steady_cycles": period,
            "steady_pe_busy": case.prog.executed_ideal_cycles / period,
            "issue_total": sum(lay.issue_cycles for lay in case.prog.layers),
            "buf_depth": list(case.prog.buf_depth),
        })  # fmt: skip
    return out


if __name__ == "__main__":
    flags = {a for a in sys.argv[1:] if a.startswith("--")}
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if flags - {"--no-remainder-tiles", "--b2b-only"}:
        sys.exit(f"back_to_back.py: error: unknown option(s) {sorted(flags)}")
    model, array, n = (args + ["mnist_cnn", "8x8", "6"][len(args):])[:3]
    if int(n) < 3:
        sys.exit("back_to_back.py: error: N must be >= 3 (the steady state starts at image 2)")
    recs = measure(model, array, int(n), remainder="--no-remainder-tiles" not in flags,
                   b2b_only="--b2b-only" in flags)  # fmt: skip
    for rec in recs:
        print(json.dumps(rec))
