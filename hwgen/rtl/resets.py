"""Local resets: on a large device each unit takes the design reset through a register of its own.

The design reset is one flip-flop (the board's ``ResetSynchronizer``) with a load in every unit;
on the ECP5-85F its net spans the die, and any register whose next value yosys builds from the
reset (a synchronous reset folded into a LUT instead of the flip-flop's LSR pin) pays that
net's routing: 6.9 ns of the 8.4 ns critical path of the 8x8 build at 101f7a5. A platform with
the ``local_resets`` trait (hwgen.rtl.traits) gets a one-level reset tree instead: each unit
added through :func:`add_unit` runs in a domain of its own whose reset is the parent's reset
registered once; the placer puts that register beside the unit's loads.

Timing contract: a unit leaves reset one cycle after the logic around it (and enters it one
cycle later); the reset lasts as many cycles as the parent's. Nothing reaches a unit in that
cycle: the board holds the design in reset until the PLL locks, and the host link is idle
until a UART frame arrives (at least ten bit times). Simulation without the trait (platform
None) builds the units in ``sync`` itself, so the generic design is unchanged.
"""

from __future__ import annotations

from amaranth import ClockDomain, ClockSignal, DomainRenamer, Module, ResetSignal, Signal

from .attrs import UNSHARED
from .traits import trait

__all__ = ["add_unit"]


def add_unit(m: Module, name: str, unit, platform):
    """``m.submodules[name] = unit``, on its own registered reset if the platform asks for it.

    Returns ``unit`` (its ports are used as before: a renamed domain changes no signal)."""
    if not trait(platform, "local_resets"):
        m.submodules[name] = unit
        return unit
    dom = f"sync_{name}"
    cd = ClockDomain(dom, local=True)
    m.domains += cd
    # UNSHARED: all units' registers have the same input, and yosys's opt_merge would make
    # them one again; the board flow keeps each (hwgen.boards.rtlil_fix.keep_marked_registers)
    rst = Signal(name=f"rst_{name}", init=1, reset_less=True, attrs=UNSHARED)
    m.d.sync += rst.eq(ResetSignal("sync"))
    m.d.comb += [cd.clk.eq(ClockSignal("sync")), cd.rst.eq(rst)]
    m.submodules[name] = DomainRenamer({"sync": dom})(unit)
    return unit
