"""nextpnr's clock constraint on the PLL's output net, for placing tighter than the PLL runs.

nextpnr constrains an EHXPLLL's output from its dividers and its input's constraint; the
``FREQUENCY_PIN_CLKOP`` attribute is not read for that (a 4x4 built with it set to 150 MHz
logged "PASS at 130.01 MHz", session 48). A user constraint on the output net wins over the
derived one ("Overriding derived constraint"), and nextpnr's ``addClock`` looks a net up by
any of the names the netlist gives it. So the name is taken from the synthesized netlist,
where the PLL's CLKOP bit is, not from the Amaranth signal (whose name synthesis may drop).
"""

from __future__ import annotations

__all__ = ["PNR_LPF", "pll_output_net", "clock_lpf"]

PNR_LPF = "pnr_clock.lpf"  # the build directory's extra constraint file (`--pnr-freq`)


def pll_output_net(netlist: dict, top: str = "top", cell_type: str = "EHXPLLL",
                   port: str = "CLKOP") -> str:
    """The name nextpnr gives the net on ``cell_type``'s ``port`` in module ``top``: of the
    one-bit netnames on that bit, its preferred one (fewest ``$``, then fewest ``.``, then
    alphabetical: nextpnr's ``prefer_netlabel``). ValueError naming what is missing."""
    mod = netlist["modules"][top]
    bits = [c["connections"][port] for c in mod["cells"].values()
            if c["type"] == cell_type and port in c.get("connections", {})]
    if len(bits) != 1 or len(bits[0]) != 1:
        raise ValueError(f"module {top!r}: {len(bits)} {cell_type} {port} connection(s), "
                         "need exactly one one-bit clock")
    bit = bits[0][0]
    names = [n for n, v in mod["netnames"].items() if v["bits"] == [bit]]
    if not names:
        raise ValueError(f"module {top!r}: the {cell_type} {port} net (bit {bit}) has no name")
    return min(names, key=lambda n: (n.count("$"), n.count("."), n))


def clock_lpf(net: str, mhz: float) -> str:
    """An LPF constraint: nextpnr times ``net`` at ``mhz``."""
    return f'FREQUENCY NET "{net}" {mhz:g} MHz;\n'
