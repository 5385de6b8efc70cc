"""The hard-block floorplan pass (hwgen.boards.floorplan) on a small synthetic netlist: every
DP16KD and MULT18X18D gets its own legal bel, the PE multipliers sit by the rule (column j in
one DSP block, rows four to a block; three rows a DSP row at 16 columns), a buffer's or
lane's cells share one block, each memory lands nearer the multipliers it is wired to than
the others, and the pass is deterministic.
That the bel names are the 85F's own is checked by nextpnr in the board-flow test
(tests/test_board_*.py builds tiny_cnn through this pass) and on the 8x8 in docs/measurements.md."""

from __future__ import annotations

import copy
import re

from hwgen.boards.floorplan import SITES, floorplan, floorplan_for

DEV = SITES["LFE5U-85F"]


class _Net:
    """A yosys-JSON-like cell dictionary built from named connections."""

    def __init__(self) -> None:
        self.cells: dict = {}
        self.bit = 2

    def new(self) -> int:
        self.bit += 1
        return self.bit

    def cell(self, name: str, type_: str, ins: list[int], outs: list[int]) -> None:
        conns = {f"I{k}": [b] for k, b in enumerate(ins)} | {f"O{k}": [b]
                                                             for k, b in enumerate(outs)}
        dirs = {p: "input" if p[0] == "I" else "output" for p in conns}
        self.cells[name] = {"type": type_, "attributes": {}, "parameters": {},
                            "port_directions": dirs, "connections": conns}

    def ff(self, name: str, d: int) -> int:
        q = self.new()
        self.cell(name, "TRELLIS_FF", [d], [q])
        return q


def _netlist(rows: int = 6, cols: int = 3) -> dict:
    """A rows x cols PE mesh (registered links), a 4-block buffer feeding PE(0,0), a 4-DSP
    lane fed by the last row, and a 6-block memory feeding the lane."""
    n = _Net()
    out: dict = {}
    for i in range(rows):
        for j in range(cols):
            a, w, p = n.new(), n.new(), n.new()
            out[i, j] = (a, w, p)
            n.cell(f"x.array.pe_{i}_{j}.mult.dsp", "MULT18X18D", [a, w], [p])
    for (i, j), (_a, _w, p) in out.items():  # tokens right, weights down, through registers
        if j + 1 < cols:
            n.cell(f"x.array.t{i}_{j}", "TRELLIS_FF", [p], [out[i, j + 1][0]])
        if i + 1 < rows:
            n.cell(f"x.array.w{i}_{j}", "TRELLIS_FF", [p], [out[i + 1, j][1]])
    rd = [n.new() for _ in range(4)]
    for k in range(4):
        n.cell(f"x.buf.0.{k}", "DP16KD", [], [rd[k]])
    n.cell("x.feed.lut", "LUT4", rd, [out[0, 0][0]])
    lane_in = n.ff("x.wb.d", out[rows - 1, cols - 1][2])
    mem = [n.new() for _ in range(6)]
    for k in range(6):
        n.cell(f"x.big.0.{k}", "DP16KD", [], [mem[k]])
    prm = n.new()
    n.cell("x.wb.pl", "LUT4", mem[:4], [prm])
    for part in ("ll", "lh", "hl", "hh"):
        s = n.new()
        n.cell(f"x.wb.lane0.mult.dsp_{part}", "MULT18X18D", [lane_in, prm], [s])
        n.ff(f"x.wb.lane0.s_{part}", s)
    return n.cells


def _xy(bel: str) -> tuple[int, int]:
    m = re.match(r"X(\d+)/Y(\d+)/", bel)
    return int(m[1]), int(m[2])


def _bels(cells: dict) -> dict[str, str]:
    return {k: c["attributes"]["BEL"] for k, c in cells.items() if "BEL" in c["attributes"]}


def test_every_hard_cell_gets_its_own_legal_bel() -> None:
    cells = _netlist()
    stats = floorplan(cells, DEV)
    bels = _bels(cells)
    hard = [k for k, c in cells.items() if c["type"] in ("DP16KD", "MULT18X18D")]
    assert sorted(bels) == sorted(hard) and stats["hard_cells_placed"] == len(hard)
    assert len(set(bels.values())) == len(bels)
    legal = {s[2] for s in DEV.ebr()} | {s[2] for s in DEV.dsp()}
    assert set(bels.values()) <= legal
    for k, b in bels.items():  # a block RAM on an EBR bel, a multiplier on a MULT18 bel
        assert ("/EBR" in b) == (cells[k]["type"] == "DP16KD")


def test_pe_multipliers_follow_the_rule() -> None:
    cells = _netlist(rows=6, cols=3)
    assert floorplan(cells, DEV)["array_multipliers_by_rule"] == 18
    b0 = (len(DEV.blocks) - 3) // 2
    for i in range(6):
        for j in range(3):
            bel = cells[f"x.array.pe_{i}_{j}.mult.dsp"]["attributes"]["BEL"]
            z = (0, 1, 4, 5)[i % 4]
            assert bel == f"X{DEV.blocks[b0 + j] + z}/Y{DEV.dsp_rows[i // 4]}/MULT18_{z}"


def test_wide_arrays_take_fewer_rows_per_dsp_row() -> None:
    # 16 columns do not fit one block each (13 per DSP row): three array rows share a DSP
    # row side by side, so row neighbours are adjacent sites and column neighbours 3 sites on
    cells = _netlist(rows=6, cols=16)
    assert floorplan(cells, DEV)["array_multipliers_by_rule"] == 96
    bels = _bels(cells)
    assert len(set(bels.values())) == len(bels)
    xy = {(i, j): _xy(bels[f"x.array.pe_{i}_{j}.mult.dsp"]) for i in range(6) for j in range(16)}
    for (i, j), (x, y) in xy.items():
        assert y == DEV.dsp_rows[i // 3]
        if j + 1 < 16:
            assert 0 < xy[i, j + 1][0] - x <= 11  # 9, or 11 across the die's middle
        if i % 3 < 2:
            assert xy[i + 1, j][1] == y and 0 < xy[i + 1, j][0] - x <= 6


def _block(bel: str) -> tuple[int, int]:
    x, y = _xy(bel)
    return max(b for b in DEV.blocks if b <= x), y


def test_small_memories_and_lanes_take_one_block() -> None:
    cells = _netlist()
    floorplan(cells, DEV)
    bels = _bels(cells)
    assert len({_block(bels[f"x.buf.0.{k}"]) for k in range(4)}) == 1
    assert len({_block(bels[f"x.wb.lane0.mult.dsp_{p}"]) for p in ("ll", "lh", "hl", "hh")}) == 1
    big = sorted({_block(bels[f"x.big.0.{k}"]) for k in range(6)})  # six: two blocks
    assert len(big) == 2 and big[0][1] == big[1][1]  # neighbours in one row
    assert DEV.blocks.index(big[1][0]) == DEV.blocks.index(big[0][0]) + 1


def _dist(a: str, b: str) -> int:
    (xa, ya), (xb, yb) = _xy(a), _xy(b)
    return abs(xa - xb) + abs(ya - yb)


def test_memories_land_by_what_they_feed() -> None:
    cells = _netlist()
    floorplan(cells, DEV)
    bels = _bels(cells)
    pe00, lane = bels["x.array.pe_0_0.mult.dsp"], bels["x.wb.lane0.mult.dsp_ll"]
    buf, big = bels["x.buf.0.0"], bels["x.big.0.0"]
    assert _dist(buf, pe00) < _dist(buf, lane)
    assert _dist(big, lane) < _dist(big, pe00)


def test_deterministic_and_netlist_pass() -> None:
    a, b = _netlist(), _netlist()
    floorplan(a, DEV)
    floorplan(b, DEV)
    assert _bels(a) == _bels(b)
    net = {"modules": {"top": {"cells": _netlist()}}}
    assert floorplan_for(net, "LFE5U-85F")["hard_cells_placed"] == 6 * 3 + 4 + 6 + 4
    assert _bels(net["modules"]["top"]["cells"]) == _bels(a)
    other = {"modules": {"top": {"cells": _netlist()}}}
    assert floorplan_for(other, "LFE5U-25F") == {}  # no site table: untouched
    assert other == {"modules": {"top": {"cells": _netlist()}}}


def test_more_lanes_than_free_blocks_go_one_by_one() -> None:
    # an 11x12 array by rule leaves three whole blocks free (and 24 sites): four lanes of
    # four cannot each have a block, so their cells are placed alone, every one of them
    cells = _netlist(rows=11, cols=12)
    for k in range(1, 4):
        for part in ("ll", "lh", "hl", "hh"):
            cells[f"x.wb.lane{k}.mult.dsp_{part}"] = copy.deepcopy(
                cells[f"x.wb.lane0.mult.dsp_{part}"])
    stats = floorplan(cells, DEV)
    assert stats["hard_cells_placed"] == 132 + 16 + 4 + 6
    assert len(set(_bels(cells).values())) == 132 + 16 + 4 + 6


def test_small_groups_share_their_blocks_when_the_singles_need_the_sites() -> None:
    # 40 two-cell memories take a block each (80 sites of 160) and leave 48 sites in the 12
    # blocks left: 100 single block RAMs fit the 208 sites only in the groups' spare ones
    cells = _netlist()
    for k in range(40):
        for part in range(2):
            cells[f"x.pair{k}.0.{part}"] = copy.deepcopy(cells["x.buf.0.0"])
    for k in range(90):
        cells[f"x.one{k}.0.0"] = copy.deepcopy(cells["x.buf.0.0"])
    stats = floorplan(cells, DEV)
    ebr = [k for k, c in cells.items() if c["type"] == "DP16KD"]
    assert len(ebr) == 4 + 6 + 80 + 90 <= len(DEV.ebr())
    bels = _bels(cells)
    assert stats["hard_cells_placed"] == len(bels) and len(set(bels.values())) == len(bels)
    assert set(ebr) <= set(bels)
    assert all(len({_block(bels[f"x.pair{k}.0.{p}"]) for p in range(2)}) == 1 for k in range(40))


def test_too_many_hard_cells_is_left_to_nextpnr() -> None:
    cells = _netlist()
    for k in range(len(DEV.ebr())):
        cells[f"x.extra.{k}.0"] = copy.deepcopy(cells["x.buf.0.0"])
    assert "skipped" in floorplan(cells, DEV)
    assert not _bels(cells)


def test_wide_groups_take_two_blocks_and_pairs_share_blocks_when_short() -> None:
    # the 12x16's block RAMs: fourteen memories of eight (buffer copies, conv-weight banks)
    # take 28 of the 52 blocks; 43 memories of two then share the 24 left, two per block
    cells = _netlist()
    del cells["x.big.0.4"], cells["x.big.0.5"]  # four: one block
    for k in range(14):
        for part in range(8):
            cells[f"x.copy{k}.0.{part}"] = copy.deepcopy(cells["x.buf.0.0"])
    for k in range(42):
        for part in range(2):
            cells[f"x.pair{k}.0.{part}"] = copy.deepcopy(cells["x.buf.0.0"])
    cells["x.one.0.0"] = copy.deepcopy(cells["x.buf.0.0"])
    ebr = [k for k, c in cells.items() if c["type"] == "DP16KD"]
    assert len(ebr) == 4 + 4 + 112 + 84 + 1 <= len(DEV.ebr())
    stats = floorplan(cells, DEV)
    bels = _bels(cells)
    assert stats["hard_cells_placed"] == len(bels) and len(set(bels.values())) == len(bels)
    assert set(ebr) <= set(bels)
    for k in range(14):
        blocks = sorted({_block(bels[f"x.copy{k}.0.{p}"]) for p in range(8)})
        assert len(blocks) == 2 and blocks[0][1] == blocks[1][1]
        assert DEV.blocks.index(blocks[1][0]) == DEV.blocks.index(blocks[0][0]) + 1
    for k in range(42):  # side by side: one half of a block (x apart by 2)
        (xa, ya), (xb, yb) = (_xy(bels[f"x.pair{k}.0.{p}"]) for p in range(2))
        assert ya == yb and abs(xa - xb) == 2 and _block(bels[f"x.pair{k}.0.0"]) == \
            _block(bels[f"x.pair{k}.0.1"])
