"""Where a synthesized design's logic sits: flip-flops, LUTs, carry, LUT RAM, DSPs and block
RAM per unit of the hierarchy, from yosys's JSON netlist (after ``synth_ecp5``/``synth_ice40``).

nextpnr reports one utilisation for the whole die; cutting flip-flops or LUTs needs to know
which unit holds them, after yosys's optimisation (RTLIL register widths overcount: equal
registers are merged later). The flattened netlist names nearly every cell after the
hierarchy it came from (a LUT after the register it feeds), so the name's prefix is its
unit. Repeated units (``pe_0_0`` .. ``pe_11_15``, ``requant0`` ..) are one row, digits
replaced by ``*``, with their instance count, so a per-instance cost reads off the table.

A memory's cells (``act0_0.0.3``: yosys's bank and slice indices after the name) count as a
unit of their own, the memory. ``LUT4`` is one per LUT4 cell and two per CCU2C carry cell (its
two LUTs), iCE40's SB_LUT4 one each; nextpnr's total is higher by the pass-through LUTs its
packer adds (12,204 against 10,874 on the mnist_cnn 4x4). Flip-flops, DSPs and block RAMs
add up to nextpnr's figures exactly (the netlist is read after the board's netlist pass).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

__all__ = ["COLUMNS", "by_unit", "main", "scopes_of", "table_lines", "unit_of_cell"]

# cell type -> (column, weight)
KINDS: dict[str, tuple[str, int]] = {
    "TRELLIS_FF": ("FF", 1), "LUT4": ("LUT4", 1), "CCU2C": ("LUT4", 2),
    "TRELLIS_DPR16X4": ("LUT RAM", 1), "MULT18X18D": ("DSP", 1), "DP16KD": ("BRAM", 1),
    "SB_LUT4": ("LUT4", 1), "SB_RAM40_4K": ("BRAM", 1), "SB_MAC16": ("DSP", 1),
}
COLUMNS = ("FF", "LUT4", "LUT RAM", "DSP", "BRAM")
_FF_ICE40 = re.compile(r"SB_DFF\w*")
_DIGITS = re.compile(r"\d+")


def _kind(cell_type: str) -> tuple[str, int] | None:
    if _FF_ICE40.fullmatch(cell_type):
        return ("FF", 1)
    return KINDS.get(cell_type)


def unit_of_cell(name: str, scopes: frozenset[str], depth: int) -> tuple[str, str]:
    """(the unit's group, the unit itself) of a cell name: the longest instance path of
    ``scopes`` it starts with (a memory's cells: the memory), cut to ``depth`` levels; the
    group has every digit run as ``*``. Without scopes, the name's prefix before its leaf."""
    if name.startswith("$"):
        return "(unnamed)", "(unnamed)"
    parts = name.split(".")
    n = len(parts)
    while len(parts) > 1 and parts[-1].isdigit():
        parts.pop()  # a memory's bank / slice indices: the memory is the unit
    if len(parts) < n:
        unit = parts
    elif scopes:  # a leaf may hold dots itself (a struct field's register: `x$3.data`)
        k = max((i for i in range(1, n) if ".".join(parts[:i]) in scopes), default=0)
        unit = parts[:k] or ["(top)"]
    else:
        unit = parts[:-1] or ["(top)"]
    inst = ".".join(unit[:depth])
    return _DIGITS.sub("*", inst), inst


def _top_cells(netlist: dict) -> dict:
    top = next((m for m, v in netlist["modules"].items()
                if v.get("attributes", {}).get("top")), None)
    if top is None:
        raise ValueError("the netlist has no top module")
    return netlist["modules"][top]["cells"]


def scopes_of(netlist: dict) -> frozenset[str]:
    """The instance paths yosys's ``flatten`` recorded (``$scopeinfo`` cells): the units."""
    return frozenset(k for k, c in _top_cells(netlist).items() if c["type"] == "$scopeinfo")


def by_unit(netlist: dict, depth: int = 4) -> list[dict]:
    """Per unit group: instances and cells of each column (``COLUMNS``), most flip-flops
    first; the last row is the total. Units are the instances yosys's ``flatten`` recorded
    (``$scopeinfo`` cells)."""
    cells = _top_cells(netlist)
    scopes = scopes_of(netlist)
    counts: dict[str, Counter] = defaultdict(Counter)
    insts: dict[str, set[str]] = defaultdict(set)
    for name, cell in cells.items():
        kind = _kind(cell["type"])
        if kind is None:
            continue
        group, inst = unit_of_cell(name, scopes, depth)
        counts[group][kind[0]] += kind[1]
        insts[group].add(inst)
    rows = [{"unit": g, "instances": len(insts[g]), **{c: counts[g][c] for c in COLUMNS}}
            for g in counts]
    rows.sort(key=lambda r: (-r["FF"], -r["LUT4"], r["unit"]))
    total = {"unit": "total", "instances": None,
             **{c: sum(r[c] for r in rows) for c in COLUMNS}}
    return [*rows, total]


def table_lines(rows: list[dict], top: int = 25) -> list[str]:
    """A Markdown table of ``by_unit``'s rows: the ``top`` largest groups by flip-flops, the
    rest as one row, then the total; per-instance flip-flops and LUT4 for repeated units."""
    body, total = rows[:-1], rows[-1]
    shown, rest = body[:top], body[top:]
    if rest:
        shown.append({"unit": f"({len(rest)} more units)", "instances": None,
                      **{c: sum(r[c] for r in rest) for c in COLUMNS}})
    out = ["| unit | instances | " + " | ".join(COLUMNS) + " | FF / LUT4 each |",
           "| --- | ---: |" + " ---: |" * len(COLUMNS) + " ---: |"]
    for r in [*shown, total]:
        n = r["instances"]
        each = f"{r['FF'] / n:,.0f} / {r['LUT4'] / n:,.0f}" if n and n > 1 else ""
        name = f"`{r['unit']}`" if r["instances"] is not None else f"**{r['unit']}**"
        out.append(f"| {name} | {n or ''} | "
                   + " | ".join(f"{r[c]:,}" if r[c] else "" for c in COLUMNS) + f" | {each} |")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m hwgen.boards.cells",
        description="Flip-flops, LUT4 (LUT cells, two per carry cell), LUT RAM, DSPs and block RAM "
                    "per unit of a synthesized yosys JSON netlist (a board build's "
                    "build/boards/<name>/top.json); repeated units (pe_*_*) on one row.")
    ap.add_argument("netlist", type=Path, help="yosys JSON netlist (top.json)")
    ap.add_argument("--depth", type=int, default=4,
                    help="hierarchy levels a unit keeps (default 4: host.accel.array.pe_*_*)")
    ap.add_argument("--top", type=int, default=25, help="rows shown (default 25)")
    args = ap.parse_args(argv)
    if args.depth < 1 or args.top < 1:
        print("error: --depth and --top must be at least 1", file=sys.stderr)
        return 2
    try:
        netlist = json.loads(args.netlist.read_text())
        rows = by_unit(netlist, args.depth)
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {args.netlist}: not a yosys JSON netlist ({e})", file=sys.stderr)
        return 2
    print("\n".join(table_lines(rows, args.top)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
