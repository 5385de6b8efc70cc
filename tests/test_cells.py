"""hwgen.boards.cells: a synthesized netlist's cells by unit, on a hand-made yosys JSON
netlist (the real one is checked against nextpnr's totals in sim/test_board.py)."""

from __future__ import annotations

import json
from pathlib import Path

from hwgen.boards.cells import by_unit, main, table_lines, unit_of_cell


def _cell(kind: str) -> dict:
    return {"type": kind, "connections": {}, "attributes": {}}


SCOPES = ["top", "top.array", "top.array.pe_0_0", "top.array.pe_0_1", "top.array.pe_1_0",
          "top.wb", "top.wb.requant0"]
CELLS = {
    **{s: _cell("$scopeinfo") for s in SCOPES},
    "top.array.pe_0_0.acc_TRELLIS_FF_Q": _cell("TRELLIS_FF"),
    "top.array.pe_0_0.acc_TRELLIS_FF_Q_1": _cell("TRELLIS_FF"),
    "top.array.pe_0_1.acc_TRELLIS_FF_Q": _cell("TRELLIS_FF"),
    "top.array.pe_1_0.acc_TRELLIS_FF_Q_DI_CCU2C_S0": _cell("CCU2C"),
    "top.array.pe_1_0.mult.dsp": _cell("MULT18X18D"),  # (below depth 4: the PE's)
    "top.array.chain_out$3.data_TRELLIS_FF_Q": _cell("TRELLIS_FF"),  # a dot in the leaf
    "top.wb.requant0.y_TRELLIS_FF_Q": _cell("TRELLIS_FF"),
    "top.wb.requant0.y_TRELLIS_FF_Q_DI_LUT4_Z": _cell("LUT4"),
    "top.act0_1.0.3": _cell("DP16KD"),  # a memory's bank/slice: the memory is the unit
    "top.act0_1.1.0": _cell("DP16KD"),
    "top.fold.delay.0.0": _cell("TRELLIS_DPR16X4"),
    "$abc$123$lut": _cell("LUT4"),
    "top.x_PFUMX_Z": _cell("PFUMX"),  # (no column)
}
NETLIST = {"modules": {"top": {"attributes": {"top": "1"}, "cells": CELLS}}}


def test_a_cell_is_in_its_deepest_instance_or_its_memory() -> None:
    scopes = frozenset(SCOPES)
    assert unit_of_cell("top.array.pe_0_1.acc_TRELLIS_FF_Q", scopes, 4) == (
        "top.array.pe_*_*", "top.array.pe_0_1")
    assert unit_of_cell("top.array.chain_out$3.data_TRELLIS_FF_Q", scopes, 4)[1] == "top.array"
    assert unit_of_cell("top.act0_1.0.3", scopes, 4) == ("top.act*_*", "top.act0_1")
    assert unit_of_cell("top.array.pe_1_0.mult.dsp", scopes | {"top.array.pe_1_0.mult"},
                        3)[1] == "top.array.pe_1_0"
    assert unit_of_cell("$abc$1$lut", scopes, 4)[0] == "(unnamed)"
    # without scope records: the name before its leaf
    assert unit_of_cell("a.b.c_FF", frozenset(), 4)[1] == "a.b"


def test_by_unit_groups_repeated_units_and_totals() -> None:
    rows = {r["unit"]: r for r in by_unit(NETLIST)}
    pe = rows["top.array.pe_*_*"]
    assert (pe["instances"], pe["FF"], pe["LUT4"], pe["DSP"]) == (3, 3, 2, 1)  # CCU2C: 2
    assert rows["top.array"]["FF"] == 1
    assert rows["top.act*_*"]["BRAM"] == 2 and rows["top.act*_*"]["instances"] == 1
    assert rows["top.fold.delay"]["LUT RAM"] == 1
    assert rows["(unnamed)"]["LUT4"] == 1
    total = by_unit(NETLIST)[-1]
    assert total == {"unit": "total", "instances": None, "FF": 5, "LUT4": 4, "LUT RAM": 1,
                     "DSP": 1, "BRAM": 2}
    assert by_unit(NETLIST)[0]["unit"] == "top.array.pe_*_*"  # most flip-flops first


def test_table_folds_the_small_units_into_one_row() -> None:
    lines = table_lines(by_unit(NETLIST), top=2)
    assert lines[2].startswith("| `top.array.pe_*_*` | 3 | 3 | 2 |  | 1 |  | 1 / 1 |")
    assert "more units)" in lines[-2] and lines[-1].startswith("| **total** |  | 5 | 4 | 1 | 1 | 2")


def test_command_line(tmp_path: Path, capsys) -> None:
    f = tmp_path / "top.json"
    f.write_text(json.dumps(NETLIST))
    assert main([str(f), "--top", "3"]) == 0
    assert "`top.array.pe_*_*` | 3 |" in capsys.readouterr().out
    assert main([str(tmp_path / "missing.json")]) == 2
    assert "missing.json: not a yosys JSON netlist" in capsys.readouterr().err
    assert main([str(f), "--depth", "0"]) == 2
