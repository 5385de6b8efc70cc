"""iCEBreaker (iCE40UP5K): will the design fit? Memory and multiplier needs vs. the device.

The check runs before any tool: the Program gives every memory's depth and width, so the
block-RAM need is exact (not an estimate). The current design keeps weights, parameters and
R copies of both activation buffers in block RAM, which on the UP5K means its 30 EBR
(4 Kbit each); its 128 KiB of SPRAM (four 16K x 16 single-port blocks) would need a
single-port weight store, which the accelerator does not have yet.
"""

from __future__ import annotations

from hwgen.schedule.program import Program

__all__ = ["UP5K", "check_fit", "memory_needs", "make_icebreaker"]

UP5K = {"LUT4": 5280, "DSP": 8, "EBR": 30, "EBR_bits": 30 * 4096, "SPRAM_bits": 4 * 256 * 1024}
REQUANT_DSPS_PER_LANE = 4  # a 32x32 product from 16x16 SB_MAC16 partial products


def memory_needs(prog: Program) -> dict[str, int]:
    """Bits of every memory the accelerator instantiates for ``prog``."""
    r, c = prog.array.rows, prog.array.cols
    return {
        "conv weights": prog.convw_depth * 8 * c,
        "direct weights": prog.directw_depth * 8 * r * c,
        "requant parameters": prog.param_depth * 72 * c,
        f"activation buffers ({r} copies each)": sum(prog.buf_depth) * 8 * c * r,
    }


def check_fit(prog: Program) -> None:
    """Raise BuildError naming every shortfall, with the numbers, or return if it may fit."""
    from .build import BuildError

    need = memory_needs(prog)
    total = sum(need.values())
    r, c = prog.array.rows, prog.array.cols
    dsps = r * c + REQUANT_DSPS_PER_LANE * c
    problems = []
    if total > UP5K["EBR_bits"]:
        parts = ", ".join(f"{k} {v / 8192:.1f} KiB" for k, v in need.items())
        problems.append(
            f"block RAM: {total / 8192:.1f} KiB needed ({parts}) > {UP5K['EBR_bits'] / 8192:.0f} "
            f"KiB of EBR (30 x 4 Kbit); the 128 KiB SPRAM is single-port and the design has no "
            f"SPRAM weight store yet (the weights alone are "
            f"{(need['conv weights'] + need['direct weights']) / 8192:.1f} KiB)"
        )
    if dsps > UP5K["DSP"]:
        problems.append(
            f"multipliers: {r * c} PE products + {c} requant lanes x {REQUANT_DSPS_PER_LANE} = "
            f"{dsps} SB_MAC16 needed > {UP5K['DSP']} (the rest would be LUT multipliers, "
            f"~360 LUT4 per PE on top of 5,280 LUT4 in all)"
        )
    if problems:
        raise BuildError(
            f"{prog.model} on a {prog.array} array does not fit the iCE40UP5K: "
            + "; ".join(problems)
        )


def make_icebreaker():
    from amaranth_boards.icebreaker import ICEBreakerPlatform

    return ICEBreakerPlatform()
