"""ECP5 EHXPLLL: divider search (Trellis' ``ecppll``'s, bounded above) and the instance."""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Instance, Module, Signal

__all__ = ["PllParams", "ecp5_pll_params", "ecp5_pll"]

PFD_MHZ = (3.125, 400.0)
VCO_MHZ = (400.0, 800.0)


@dataclass(frozen=True)
class PllParams:
    clki_div: int
    clkfb_div: int
    clkop_div: int
    fin_mhz: float
    fout_mhz: float
    fvco_mhz: float


def ecp5_pll_params(fin_mhz: float, fout_mhz: float) -> PllParams:
    """Dividers giving the fastest output at or below ``fout_mhz`` (to 10 ppm: ``_UP``;
    feedback from CLKOP), the VCO nearest 600 MHz among equals. Never above: a build's
    timing is checked against the clock asked for, so a faster one (ecppll's nearest: 123.9
    MHz gives 125) would run a bitstream past what it was routed for."""
    best: PllParams | None = None
    for idiv in range(1, 129):
        fpfd = fin_mhz / idiv
        if not PFD_MHZ[0] <= fpfd <= PFD_MHZ[1]:
            continue
        for fbdiv in range(1, 81):
            for odiv in range(1, 129):
                fvco = fpfd * fbdiv * odiv
                if not VCO_MHZ[0] <= fvco <= VCO_MHZ[1] or fpfd * fbdiv > fout_mhz * _UP:
                    continue
                cand = PllParams(idiv, fbdiv, odiv, fin_mhz, fpfd * fbdiv, fvco)
                if best is None or _better(cand, best):
                    best = cand
    if best is None:
        raise ValueError(f"no EHXPLLL setting makes {fout_mhz:g} MHz or less from "
                         f"{fin_mhz:g} MHz")
    return best


# An output equal to the request counts as at or below it up to 10 ppm: float rounding
# (25 / 3 * 15) and a clock written to six digits (135.714 for 25 / 7 * 38, as `:g` and the
# build's rebuild advice print it) both name that output.
_UP = 1 + 1e-5


def _better(a: PllParams, b: PllParams) -> bool:
    """Faster output first (to a Hz: 25 / 3 * 15 is 125 too), then the VCO nearer 600 MHz,
    then the first found (the smallest input divider)."""
    return ((-round(a.fout_mhz, 6), abs(a.fvco_mhz - 600))
            < (-round(b.fout_mhz, 6), abs(b.fvco_mhz - 600)))


def ecp5_pll(m: Module, clkin, params: PllParams) -> tuple[Signal, Signal]:
    """Instantiate an EHXPLLL; returns (clock out, lock)."""
    clkop = Signal(name="pll_clkop")
    lock = Signal(name="pll_lock")
    m.submodules.pll = Instance(
        "EHXPLLL",
        # ecppll's setup (nextpnr derives the output's constraint from the dividers, not
        # from FREQUENCY_PIN_CLKOP: hwgen.boards.clock_net)
        a_FREQUENCY_PIN_CLKI=f"{params.fin_mhz:g}",
        a_FREQUENCY_PIN_CLKOP=f"{params.fout_mhz:g}",
        a_ICP_CURRENT="12",
        a_LPF_RESISTOR="8",
        a_MFG_ENABLE_FILTEROPAMP="1",
        a_MFG_GMCREF_SEL="2",
        p_PLLRST_ENA="DISABLED",
        p_INTFB_WAKE="DISABLED",
        p_STDBY_ENABLE="DISABLED",
        p_DPHASE_SOURCE="DISABLED",
        p_OUTDIVIDER_MUXA="DIVA",
        p_OUTDIVIDER_MUXB="DIVB",
        p_OUTDIVIDER_MUXC="DIVC",
        p_OUTDIVIDER_MUXD="DIVD",
        p_CLKI_DIV=params.clki_div,
        p_CLKOP_ENABLE="ENABLED",
        p_CLKOP_DIV=params.clkop_div,
        p_CLKOP_CPHASE=params.clkop_div // 2,
        p_CLKOP_FPHASE=0,
        p_FEEDBK_PATH="CLKOP",
        p_CLKFB_DIV=params.clkfb_div,
        i_RST=0,
        i_STDBY=0,
        i_CLKI=clkin,
        o_CLKOP=clkop,
        i_CLKFB=clkop,
        i_PHASESEL0=0,
        i_PHASESEL1=0,
        i_PHASEDIR=1,
        i_PHASESTEP=1,
        i_PHASELOADREG=1,
        i_PLLWAKESYNC=0,
        i_ENCLKOP=0,
        o_LOCK=lock,
    )
    return clkop, lock
