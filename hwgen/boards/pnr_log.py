"""Reading a running nextpnr's log: its phase for the build's progress lines, router1's
progress for the stall watchdog (hwgen.boards.build), its last line for the report."""

from __future__ import annotations

import os
import re
from pathlib import Path

# router1's progress line, every 1,000 iterations: "Info: 401000 | 65016 319153 | 263 673 |
# 619| 307.60 3115.27|", the fourth group the arcs left to route
ROUTER1_LINE = re.compile(r"^Info:\s+\d+\s+\|\s+\d+\s+\d+\s+\|\s+\d+\s+\d+\s+\|\s+(\d+)\|",
                          re.MULTILINE)
ARCS = re.compile(r"^Info: Routing (\d+) arcs\.", re.MULTILINE)
PLACED_FMAX = re.compile(r"^Info: Max frequency for clock '[^']*': ([\d.]+) MHz", re.MULTILINE)
# the placer's and router's milestones in the order they appear, latest first
_PHASES = (("Info: Routing..", "routing"),
           ("Running simulated annealing placer", "placing (annealing)"),
           ("Creating initial analytic placement", "placing (analytic)"),
           ("Packing", "packing"))


def progressed(new_text: str, best: list[float]) -> bool:
    """Is the log's new text progress? Any output is, but router1's progress lines only with
    fewer arcs left than ever before (``best[0]``, updated): near the end of routing a stalled
    router1 still prints a line every few minutes, its count going up and down (session 28:
    619 -> 636 after 1,000 iterations that took 11 min)."""
    counts = [int(n) for n in ROUTER1_LINE.findall(new_text)]
    if not counts:
        return bool(new_text)
    if min(counts) < best[0]:
        best[0] = min(counts)
        return True
    return False


def last_line(path: Path) -> str:
    """The log's last non-blank line (read from its tail: nextpnr logs run to megabytes)."""
    with open(path, "rb") as f:
        f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
        lines = f.read().decode(errors="replace").splitlines()
    return next((ln.strip() for ln in reversed(lines) if ln.strip()), "")[:300]


def phase(text: str) -> str:
    """Where a nextpnr run is, from its log so far: "routing, 12,345 of 263,988 arcs left
    (placed at 92.7 MHz est.)", "placing (annealing)", ... (a log is tens of kB until the
    routed timing report)."""
    name = next((p for mark, p in _PHASES if mark in text), "starting")
    if name != "routing":
        return name
    left, total = ROUTER1_LINE.findall(text), ARCS.findall(text)
    if left and total:
        name += f", {int(left[-1]):,} of {int(total[-1]):,} arcs left"
    if est := PLACED_FMAX.findall(text):
        name += f" (placed at {float(est[0]):.1f} MHz est.)"
    return name


def phase_of(path: Path) -> str:
    """``phase`` of the log at ``path`` ("starting" before it exists)."""
    try:
        return phase(path.read_text(errors="replace"))
    except FileNotFoundError:
        return "starting"
