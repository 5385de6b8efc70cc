"""ECP5 netlist pass: copy each high-fan-out flip-flop once per group of nearby sinks.

nextpnr places but never duplicates a cell, so one flip-flop whose output reaches pins all
over the die (the reset synchronizer's output: ~1,100 LSR pins at 8x8; a control register
that yosys's ``opt_merge`` shared between PEs on one anti-diagonal of the systolic array)
has a long net whatever the placement. The pass splits such a net: the sinks are grouped
by the hierarchy of their cell names (``host.accel.array.pe_4_2``: cells of one unit sit
together after placement), the groups, in name order, are packed into bins of at most
``max_fanout`` pins, and every bin but the first gets its own copy of the flip-flop.

A copy has the original's D, CLK, CE and LSR nets and its parameters, so it holds the same
value in every cycle: the split changes no function and no latency. It runs on yosys's JSON
netlist between synthesis and nextpnr, after the block-RAM output-register pass.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

__all__ = ["duplicate_fanout_registers", "duplicate_in_file"]

MAX_FANOUT = 48  # pins per copy (an ECP5 PLC has 8 flip-flops; a group of a few units)


def _pins(cells: dict) -> dict[int, list[tuple[str, str, int]]]:
    """net bit -> [(cell, port, index)] of every input pin it drives."""
    pins: dict[int, list[tuple[str, str, int]]] = defaultdict(list)
    for name, c in cells.items():
        for port, bits in c["connections"].items():
            if c.get("port_directions", {}).get(port) != "output":
                for i, b in enumerate(bits):
                    if isinstance(b, int):
                        pins[b].append((name, port, i))
    return pins


def _bins(sinks: list[tuple[str, str, int]], max_fanout: int) -> list[list]:
    """Sinks grouped by their cell's hierarchy (the name without its last part), groups in
    name order packed into bins of at most ``max_fanout`` pins; a larger group is cut."""
    groups: dict[str, list] = defaultdict(list)
    for s in sorted(sinks):
        groups[s[0].rpartition(".")[0]].append(s)
    bins: list[list] = [[]]
    for key in sorted(groups):
        g = groups[key]
        if len(bins[-1]) + len(g) > max_fanout and bins[-1]:
            bins.append([])
        for i in range(0, len(g), max_fanout):
            if i:
                bins.append([])
            bins[-1].extend(g[i:i + max_fanout])
    return bins


def duplicate_fanout_registers(netlist: dict, top: str, max_fanout: int = MAX_FANOUT) -> dict:
    """Rewrite ``netlist`` (yosys JSON) in place; returns counts for the build report."""
    mod = netlist["modules"][top]
    cells, netnames = mod["cells"], mod["netnames"]
    pins = _pins(cells)
    next_bit = 1 + max((b for n in netnames.values() for b in n["bits"] if isinstance(b, int)),
                       default=1)
    split = copies = 0
    ffs = [n for n, c in cells.items() if c["type"] == "TRELLIS_FF"]
    # smallest fan-out first: a copy adds pins to its CE/LSR/D nets, so a big net (the reset)
    # is split after every copy that reads it exists
    ffs.sort(key=lambda n: len(pins.get(cells[n]["connections"]["Q"][0], ())))
    for name in ffs:
        ff = cells[name]
        q = ff["connections"]["Q"][0]
        sinks = [s for s in pins.get(q, []) if s[0] != name]
        if len(sinks) <= max_fanout:
            continue
        bins = _bins(sinks, max_fanout)
        if len(bins) < 2:
            continue
        split += 1
        for k, group in enumerate(bins[1:], 1):
            bit, next_bit = next_bit, next_bit + 1
            copy = json.loads(json.dumps(ff))
            copy["connections"]["Q"] = [bit]
            cells[f"{name}$dup{k}"] = copy
            for port, bits in copy["connections"].items():
                if port != "Q" and isinstance(bits[0], int):
                    pins[bits[0]].append((f"{name}$dup{k}", port, 0))
            netnames[f"{name}$dup{k}$q"] = {"hide_name": 0, "bits": [bit], "attributes": {}}
            for cell, port, i in group:
                cells[cell]["connections"][port][i] = bit
            copies += 1
    return {"flip_flops_split": split, "copies": copies, "max_fanout": max_fanout}


def duplicate_in_file(path: Path, top: str = "top", max_fanout: int = MAX_FANOUT) -> dict:
    """Apply :func:`duplicate_fanout_registers` to a yosys JSON file."""
    netlist = json.loads(Path(path).read_text())
    stats = duplicate_fanout_registers(netlist, top, max_fanout)
    Path(path).write_text(json.dumps(netlist))
    return stats
