"""Signal attributes the board flow acts on.

``UNSHARED``: this register is one unit's own copy. Replicated units can compute equal values
in equal registers (the requant lanes' clamp bounds); yosys's ``opt_merge`` then keeps one of
them, and it and the logic after it drive every unit across the die. The board flow puts
``keep`` on the flip-flops of a marked signal (``hwgen.boards.rtlil_fix.keep_marked_registers``),
so each unit keeps its own. Simulation ignores the attribute.

Mark the original as well as its copies: ``keep`` stops a kept register from being merged
away, not an unmarked equal one from being merged into it, and that kept copy then drives the
original's loads too (session 46: the controller's busy_r was merged into its copy
``addr_busy``, whose one flip-flop then drove the host link and the layer rewind's reset
pins, the 12x16's critical path).
"""

from __future__ import annotations

__all__ = ["NOMERGE", "UNSHARED", "copies_of"]

NOMERGE = "hwgen_nomerge"
UNSHARED = {NOMERGE: 1}


def copies_of(port) -> list:
    """A port's signals: an array port's (copies of one value, one per group of loads), else
    the port itself."""
    return list(port) if isinstance(port, list) else [port]
