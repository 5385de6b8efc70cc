"""Every timing endpoint of a routed nextpnr build, grouped by unit.

nextpnr's ``--report FILE --detailed-timing-report`` lists, for every routed net, each sink's
[min, max] arrival time in ns from nextpnr's own timing analysis (the worst max equals
1/Fmax). This prints how many endpoints miss a clock period and the worst few of each unit
(the hierarchy of the cell names, ``depth`` parts deep):

    python scripts/timing_endpoints.py REPORT.json [period_ns] [per_unit] [depth]

(REPORT.json: e.g. build/boards/<board>_<model>_<array>/report_s1.json).
"""

from __future__ import annotations

import collections
import json
import re
import sys


def arrivals(report: dict) -> dict[tuple[str, str], tuple[float, str]]:
    """(cell, port) -> (worst arrival ns, driving cell)."""
    ends: dict[tuple[str, str], tuple[float, str]] = {}
    for net in report.get("detailed_net_timings", []):
        for e in net["endpoints"]:
            d = e["delay"]
            a = max(d) if isinstance(d, list) else d
            k = (e["cell"], e["port"])
            if a > ends.get(k, (0.0, ""))[0]:
                ends[k] = (a, net["driver"])
    return ends


def main(argv: list[str]) -> None:
    report = json.load(open(argv[1]))
    period = float(argv[2]) if len(argv) > 2 else 6.667
    per = int(argv[3]) if len(argv) > 3 else 4
    depth = int(argv[4]) if len(argv) > 4 else 3
    ends = arrivals(report)
    print("fmax", {k: round(v["achieved"], 1) for k, v in report.get("fmax", {}).items()})
    for thr in (period - 1.0, period, period + 1.0, period + 2.0):
        over = sum(a > thr for a, _ in ends.values())
        print(f"  endpoints > {thr:.2f} ns: {over} of {len(ends)}")
    by = collections.defaultdict(list)
    for (cell, port), (a, drv) in ends.items():
        if a > period:
            by[".".join(cell.split(".")[:depth])].append((a, cell, port, drv))
    for unit, rows in sorted(by.items(), key=lambda kv: -len(kv[1])):
        rows.sort(reverse=True)
        print(f"== {unit}: {len(rows)} over {period} ns, worst {rows[0][0]:.2f}")
        seen: set[str] = set()
        for a, cell, port, drv in rows:
            key = re.sub(r"_TRELLIS_FF_Q.*|\d+", "#", cell[len(unit):]) + port
            if key not in seen and len(seen) < per:
                seen.add(key)
                print(f"   {a:6.2f} {cell[len(unit):][:70]}.{port} <- {drv[:70]}")


if __name__ == "__main__":
    main(sys.argv)
