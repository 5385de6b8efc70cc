"""Every timing endpoint of a routed nextpnr build, grouped by unit (hwgen.boards.timing).

    python scripts/timing_endpoints.py REPORT.json [period_ns] [per_unit] [depth]

REPORT.json: a nextpnr ``--report`` written with ``--detailed-timing-report``, e.g.
build/boards/<board>_<model>_<array>/report_s1.json (``hwgen build`` writes them so).
"""

from __future__ import annotations

import json
import sys

from hwgen.boards.timing import by_unit, endpoints


def main(argv: list[str]) -> None:
    report = json.load(open(argv[1]))
    period = float(argv[2]) if len(argv) > 2 else 6.667
    per = int(argv[3]) if len(argv) > 3 else 4
    depth = int(argv[4]) if len(argv) > 4 else 3
    eps = endpoints(report)
    print("fmax", {k: round(v["achieved"], 1) for k, v in report.get("fmax", {}).items()})
    for thr in (period - 1.0, period, period + 1.0, period + 2.0):
        over = sum(e.arrival_ns > thr for e in eps)
        print(f"  endpoints > {thr:.2f} ns: {over} of {len(eps)}")
    for u in by_unit(eps, period, depth, per):
        print(f"== {u['unit']}: {u['endpoints_over']} over {period} ns, worst {u['worst_ns']:.2f}")
        for w in u["worst"]:
            print(f"   {w['arrival_ns']:6.2f} {w['endpoint'][:70]} <- {w['driver'][:70]}")


if __name__ == "__main__":
    main(sys.argv)
