"""Wide zero / all-ones tests as carry chains (shared by the requant, loader and transfer units).

yosys maps an add onto the ECP5's carry chain (CCU2C): one short local chain instead of a
tree of LUT levels in front of a register. On the iCE40 every carry bit takes a logic cell of
its own, three times the LUT tree's: a unit passes ``chain=False`` when the platform's
``carry_chains`` trait (hwgen.rtl.traits) says so, and gets the plain reduction.
"""

from __future__ import annotations

from amaranth import Value

__all__ = ["carry_all", "carry_any"]


def carry_any(v: Value, chain: bool = True) -> Value:
    """``v != 0`` as the carry out of ``v + (2**n - 1)``: yosys maps the add onto the carry
    chain (CCU2C on ECP5), one short local chain instead of a tree of LUT levels.
    ``chain=False``: ``v.any()``."""
    if not chain:
        return v.any()
    n = len(v)
    return (v.as_unsigned() + ((1 << n) - 1))[n]


def carry_all(v: Value, chain: bool = True) -> Value:
    """``v == 2**n - 1`` (all ones) as the carry out of ``v + 1`` (see :func:`carry_any`).
    ``chain=False``: ``v.all()``."""
    if not chain:
        return v.all()
    n = len(v)
    return (v.as_unsigned() + 1)[n]
