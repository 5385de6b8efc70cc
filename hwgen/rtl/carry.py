"""Wide zero / all-ones tests as carry chains (shared by the requant, loader and transfer units).

yosys maps an add onto the ECP5's carry chain (CCU2C): one short local chain instead of a
tree of LUT levels in front of a register.
"""

from __future__ import annotations

from amaranth import Value

__all__ = ["carry_all", "carry_any"]


def carry_any(v: Value) -> Value:
    """``v != 0`` as the carry out of ``v + (2**n - 1)``: yosys maps the add onto the carry
    chain (CCU2C on ECP5), one short local chain instead of a tree of LUT levels."""
    n = len(v)
    return (v.as_unsigned() + ((1 << n) - 1))[n]


def carry_all(v: Value) -> Value:
    """``v == 2**n - 1`` (all ones) as the carry out of ``v + 1`` (see :func:`carry_any`)."""
    n = len(v)
    return (v.as_unsigned() + 1)[n]
