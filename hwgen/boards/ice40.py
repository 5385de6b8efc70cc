"""iCEBreaker (iCE40UP5K): will the design fit? Memory and multiplier needs vs. the device.

The check runs before any tool: the Program gives every memory's depth and width, so the
block-RAM need is exact (not an estimate). The design keeps weights, parameters and
ceil(R/2) copies of both activation buffers in block RAM, which on the UP5K means its 30 EBR
(4 Kbit each); its 128 KiB of SPRAM (four 16K x 16 single-port blocks) would need a
single-port weight store, which the accelerator does not have. Logic is the tighter limit:
the zoo model measured to fit (``FITS``, named in every refusal) is digits_tiny on a 1x1
array, 5,048 of the 5,280 logic cells (README "Board builds").
"""

from __future__ import annotations

from hwgen.errors import HwgenError
from hwgen.schedule.capacity import MemoryPlan

__all__ = ["FITS", "UP5K", "DeviceFitError", "check_fit", "memory_needs"]


class DeviceFitError(HwgenError):
    """The design cannot fit the device: every shortfall with its numbers (one line)."""

UP5K = {"LUT4": 5280, "DSP": 8, "EBR": 30, "EBR_bits": 30 * 4096, "SPRAM_bits": 4 * 256 * 1024}
REQUANT_DSPS_PER_LANE = 4  # a 32x32 product from 16x16 SB_MAC16 partial products
# The zoo model and array whose iCEBreaker build was measured to fit (README "Boards"); the
# refusal names it.
FITS = ("digits_tiny", "1x1")


def memory_needs(plan: MemoryPlan) -> dict[str, int]:
    """Bits of every large memory the accelerator instantiates for ``plan``."""
    r, c = plan.array.rows, plan.array.cols
    copies = (r + 1) // 2
    return {
        "conv weights": plan.convw_depth * 8 * c,
        "direct weights": plan.directw_depth * 8 * r * c,
        "requant parameters": plan.param_depth * 72 * c,
        f"activation buffers ({copies} copies each)": sum(plan.buf_depth) * 8 * c * copies,
    }


def check_fit(plan: MemoryPlan, model: str) -> None:
    """Raise DeviceFitError naming every shortfall, with the numbers, or return if it may fit."""
    need = memory_needs(plan)
    total = sum(need.values())
    r, c = plan.array.rows, plan.array.cols
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
        raise DeviceFitError(
            f"{model} on a {plan.array} array does not fit the iCE40UP5K: "
            + "; ".join(problems)
            + f"; the zoo model that fits is {FITS[0]} on a {FITS[1]} array "
            f"(make bitstream MODEL={FITS[0]} BOARD=icebreaker ARRAY={FITS[1]})"
        )
