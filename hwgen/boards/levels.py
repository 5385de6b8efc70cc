"""LUT levels in front of every flip-flop of an ECP5 netlist (yosys JSON after synth_ecp5).

Why this exists: yosys `ltp -noff` does not stop at TRELLIS_FF after synth_ecp5 (the
flip-flops are then library cells, not $dff), so its longest path runs through registers.
This walks the netlist itself: a path starts at a sequential cell's output (TRELLIS_FF,
block RAM, LUT RAM, multiplier) or at a port; a LUT4 and a CCU2C's entry count one level;
PFUMX / L6MUX21 (the slice's wide-function muxes) and carry propagation (CIN) count none.
Any other cell type is treated as a path start. A combinational loop raises ValueError.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

__all__ = ["SEQ", "WEIGHT", "Worst", "levels"]

SEQ = frozenset({"TRELLIS_FF", "DP16KD", "PDPW16KD", "TRELLIS_DPR16X4", "MULT18X18D"})
WEIGHT = {"LUT4": 1, "PFUMX": 0, "L6MUX21": 0, "CCU2C": 1}
# net names yosys makes up for cells' outputs: a user's name is preferred for a bit
_MADE = ("_LUT4", "_TRELLIS", "_CCU2C", "_PFUMX", "_L6MUX")

Bit = int | str  # a net number, or a constant ("0", "1", "x", "z")
Cell = dict[str, Any]


class Worst(NamedTuple):
    """The deepest path into one flip-flop group's pin."""

    levels: int
    name: str  # the flip-flop (its Q net's name) or the block cell on that path
    path: list[str]  # the path's start, then one step a cell


def levels(netlist: dict, top: str | None = None) -> dict[tuple[str, str], Worst]:
    """{(group, pin): Worst} for every flip-flop group (its Q nets' name without the bit
    index) and input pin (CLK / LSR / CE / DI / M), and for every other sequential cell
    (group = cell name, pin = its type, over all its inputs)."""
    mod = netlist["modules"][top or _top_name(netlist)]
    walk = _Walk(mod["cells"], _bit_names(mod.get("netnames", {})))
    out: dict[tuple[str, str], Worst] = {}
    for cn, c in mod["cells"].items():
        if c["type"] not in SEQ:
            continue
        ff = c["type"] == "TRELLIS_FF"
        q = c["connections"].get("Q", [None])[0]
        ename = walk.name.get(q, cn) if ff else cn
        group = re.sub(r"\[\d+\]$", "", str(ename))
        for pin, bits in c["connections"].items():
            if c["port_directions"].get(pin) != "input":
                continue
            for b in bits:
                lv, path = walk.level(b)
                key = (group, pin if ff else c["type"])
                if key not in out or lv > out[key].levels:
                    out[key] = Worst(lv, str(ename), path)
    return out


def _top_name(netlist: dict) -> str:
    """The module yosys marked as the top (attribute `top`), else the only one."""
    mods = netlist["modules"]
    tops = [n for n, m in mods.items() if int(str(m.get("attributes", {}).get("top", 0)), 2)]
    if len(tops) == 1:
        return tops[0]
    if len(mods) == 1:
        return next(iter(mods))
    raise ValueError(f"no single top module among {sorted(mods)}: pass top=")


def _bit_names(netnames: dict) -> dict[int, str]:
    """A readable name per net bit: a shown name before a hidden one, a user's name before
    one yosys made up for a cell, then the shortest."""
    best: dict[int, tuple[tuple, str]] = {}
    for n, d in netnames.items():
        for i, b in enumerate(d["bits"]):
            if not isinstance(b, int):
                continue
            nm = n if len(d["bits"]) == 1 else f"{n}[{i}]"
            score = (d.get("hide_name", 0), any(t in n for t in _MADE), len(nm))
            if b not in best or score < best[b][0]:
                best[b] = (score, nm)
    return {b: v[1] for b, v in best.items()}


class _Walk:
    """The levels of each net bit, computed once (memo), depth first without recursion (a
    carry chain is thousands of cells deep)."""

    def __init__(self, cells: dict[str, Cell], name: dict[int, str]) -> None:
        self.cells = cells
        self.name = name
        self.driver: dict[int, tuple[str, str]] = {}
        for cn, c in cells.items():
            for p, d in c["port_directions"].items():
                if d == "output":
                    for b in c["connections"][p]:
                        self.driver[b] = (cn, p)
        self.memo: dict[int, tuple[int, list[str]]] = {}

    def level(self, bit: Bit) -> tuple[int, list[str]]:
        """(levels, path) of the deepest path from a start into `bit`."""
        if not isinstance(bit, int):
            return (0, [f"constant {bit}"])
        entered: set[int] = set()  # expanded, not finished: the current path's bits
        stack = [bit]
        while stack:
            b = stack[-1]
            if b in self.memo:
                stack.pop()
                continue
            fanin = self._fanin(b)
            todo = [i for i, _, _ in fanin if i not in self.memo]
            if b in entered or not todo:  # back from its inputs, or none to do: b's level
                stack.pop()
                entered.discard(b)
                self.memo[b] = self._combine(b, fanin)
                continue
            entered.add(b)
            if any(i in entered for i in todo):
                raise ValueError(f"combinational loop through {self.name.get(b, b)}")
            stack.extend(todo)
        return self.memo[bit]

    def _fanin(self, bit: int) -> list[tuple[int, int, str]]:
        """(input bit, weight, step) of the cell driving `bit`; [] for a path start."""
        if bit not in self.driver:
            return []
        cn, p = self.driver[bit]
        c = self.cells[cn]
        t = c["type"]
        if t in SEQ or t not in WEIGHT:
            return []
        ins = [q for q, d in c["port_directions"].items() if d == "input"]
        if t == "CCU2C" and p != "COUT":  # S0 / S1: its own half's inputs and the carry
            ins = [q for q in ins if q.endswith(p[-1]) or q == "CIN"]
        return [(b, 0 if q == "CIN" else WEIGHT[t], f"{t}.{q}")
                for q in ins for b in c["connections"][q] if isinstance(b, int)]  # fmt: skip

    def _combine(self, bit: int, fanin: list[tuple[int, int, str]]) -> tuple[int, list[str]]:
        """The deepest of `bit`'s inputs plus its cell's weight (inputs all done)."""
        nm = self.name.get(bit, bit)
        if bit not in self.driver:
            return (0, [f"port {nm}"])
        if not fanin:  # a sequential cell, an unknown type or a cell of constants
            cn, _ = self.driver[bit]
            return (0, [f"{self.cells[cn]['type']} {nm}"])
        best: tuple[int, list[str]] | None = None
        for i, w, step in fanin:
            lv, path = self.memo[i]
            if best is None or lv + w > best[0]:
                best = (lv + w, [*path, f"{step} -> {nm}"])
        assert best is not None
        return best
