"""Signal attributes the board flow acts on.

``UNSHARED``: this register is one unit's own copy. Replicated units (the requant lanes, the
PEs) often compute equal values in equal registers; yosys's ``opt_merge`` then keeps one of
them, whose output crosses the die to every unit. The board flow puts ``keep`` on the
flip-flops of a marked signal (``hwgen.boards.rtlil_fix.keep_marked_registers``), so each unit
keeps its own. Simulation ignores the attribute.
"""

from __future__ import annotations

__all__ = ["NOMERGE", "UNSHARED"]

NOMERGE = "hwgen_nomerge"
UNSHARED = {NOMERGE: 1}
