"""Where a routed design misses its clock: every timing endpoint, grouped by unit.

nextpnr's ``--report FILE --detailed-timing-report`` lists, for every routed net, each sink's
[min, max] arrival time in ns from nextpnr's own timing analysis (the worst arrival ends the
critical path: 1000 / Fmax less that endpoint's setup time, a few tenths of a ns). The
critical path alone names one path; a design short of its target usually has hundreds, and
the unit they sit in (write-back, loader, sequencer, …) is what a designer needs to know next.
"""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass

from .cells import unit_of_cell

LEAF_INDEX = re.compile(r"_TRELLIS_FF_Q.*|_SB_DFF.*|\d+")  # one row per register, not per bit
PAD_PREFIX = "pin_"  # an I/O pad's cell: no input/output delay is constrained on the board


@dataclass(frozen=True)
class Endpoint:
    """One sink pin: its worst arrival (ns) and the cell that drives its net."""

    cell: str
    port: str
    arrival_ns: float
    driver: str


def endpoints(report: dict) -> list[Endpoint]:
    """Every endpoint of a nextpnr ``--detailed-timing-report`` JSON, worst arrival each.
    Nets from an unclocked source (``<async>``: an input pin into its synchroniser) are left
    out: no clock period bounds them (the UART's rx pin, 6.4 ns, outlasted a 159 MHz clock).
    So are output pads (cells named ``pin_…``): no output delay is set, so the pad's arrival
    is no register's deadline (the UART's tx pin, 6.2 ns, outlasted a 167.67 MHz clock)."""
    worst: dict[tuple[str, str], Endpoint] = {}
    for net in report.get("detailed_net_timings", []):
        if net.get("event") == "<async>":
            continue
        for e in net["endpoints"]:
            if e["cell"].startswith(PAD_PREFIX):
                continue
            d = e["delay"]
            a = max(d) if isinstance(d, list) else d
            k = (e["cell"], e["port"])
            if k not in worst or a > worst[k].arrival_ns:
                worst[k] = Endpoint(e["cell"], e["port"], a, net["driver"])
    return list(worst.values())


def unit_of(cell: str, depth: int, scopes: frozenset[str] = frozenset()) -> str:
    """The unit a cell sits in, at most ``depth`` levels: named as the cells-by-unit table
    names it (hwgen.boards.cells; ``scopes`` are the netlist's instance paths)."""
    return unit_of_cell(cell, scopes, depth)[1]


def by_unit(eps: list[Endpoint], period_ns: float, depth: int = 3, per_unit: int = 3,
            scopes: frozenset[str] = frozenset()) -> list[dict]:
    """Units with endpoints later than ``period_ns``, most endpoints first: how many, the
    worst arrival, and the worst few distinct registers (bits of one register count once)."""
    groups: dict[str, list[Endpoint]] = collections.defaultdict(list)
    for e in eps:
        if e.arrival_ns > period_ns:
            groups[unit_of(e.cell, depth, scopes)].append(e)
    rows = []
    for unit, es in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        es.sort(key=lambda e: -e.arrival_ns)
        rows.append({"unit": unit, "endpoints_over": len(es),
                     "worst_ns": round(es[0].arrival_ns, 3),
                     "worst": _distinct(es, unit, per_unit)})
    return rows


def _distinct(es: list[Endpoint], unit: str, n: int) -> list[dict]:
    seen: set[str] = set()
    out = []
    for e in es:
        leaf = e.cell[len(unit):]
        key = LEAF_INDEX.sub("#", leaf) + "." + e.port
        if key not in seen and len(out) < n:
            seen.add(key)
            out.append({"endpoint": f"{leaf.lstrip('.')}.{e.port}",
                        "arrival_ns": round(e.arrival_ns, 3), "driver": e.driver})
    return out


def summary(report: dict, period_ns: float, depth: int = 3, units: int = 12,
            scopes: frozenset[str] = frozenset()) -> dict:
    """Endpoint counts against the period and the worst ``units`` units (``scopes``: the
    netlist's instance paths, hwgen.boards.cells.scopes_of), for a build report; empty when
    the report has no detailed timing."""
    eps = endpoints(report)
    if not eps:
        return {}
    return {
        "period_ns": round(period_ns, 3),
        "endpoints": len(eps),
        "endpoints_over": sum(e.arrival_ns > period_ns for e in eps),
        "worst_ns": round(max(e.arrival_ns for e in eps), 3),
        "units": by_unit(eps, period_ns, depth, scopes=scopes)[:units],
    }
