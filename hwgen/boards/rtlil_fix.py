"""Before yosys: what the Amaranth RTLIL needs so that yosys maps block-RAM reads cleanly.

Its counterpart after synthesis is :mod:`hwgen.boards.outreg` (output registers moved into
the block RAMs); this step makes sure no bypass logic stands between them.
"""

from __future__ import annotations

from hwgen.rtl.attrs import NOMERGE

__all__ = ["keep_marked_registers", "no_rw_check_rtlil"]


def no_rw_check_rtlil(text: str) -> tuple[str, int]:
    """Give ``no_rw_check`` memories' non-transparent read ports X on a collision.

    yosys's Verilog front end turns a memory's ``no_rw_check`` attribute into
    ``COLLISION_X_MASK`` bits on its read ports; its RTLIL front end (the Amaranth platform
    flow) does not, so every read port of such a memory would keep old-data collision
    semantics, which yosys emulates with a bypass multiplexer after the block RAM. This sets
    the mask on the ``$memrd_v2`` cells of those memories (ports that are transparent to a
    write keep their semantics). Returns the new text and the number of ports changed.
    """
    lines = text.split("\n")
    marked: set[tuple[int, str]] = set()  # (module index, memory name)
    module, pending_attr, cur_memid, changed, transparent = 0, False, None, 0, False
    for i, line in enumerate(lines):
        t = line.strip()
        if t.startswith("module "):
            module += 1
        elif t == "attribute \\no_rw_check 1":
            pending_attr = True
            continue
        elif t.startswith("memory ") and pending_attr:
            marked.add((module, t.split()[-1]))
        elif t.startswith("parameter \\MEMID "):
            cur_memid = t.split('"')[1].replace("\\\\", "\\")
        elif t.startswith("parameter \\TRANSPARENCY_MASK "):
            transparent = "1" in t.split("'")[-1]
        elif t.startswith("parameter \\COLLISION_X_MASK ") and (module, cur_memid) in marked:
            width = int(t.split()[-1].split("'")[0])
            if not transparent:
                lines[i] = line.replace(t, f"parameter \\COLLISION_X_MASK {width}'{'1' * width}")
                changed += 1
        if not t.startswith("attribute "):
            pending_attr = False
    return "\n".join(lines), changed


def keep_marked_registers(text: str) -> tuple[str, int]:
    """Put ``keep`` on every flip-flop cell whose output is a signal marked ``NOMERGE``.

    yosys's ``opt_merge`` shares flip-flops with the same inputs. Replicated units (the
    requant lanes) compute equal values in equal registers, and one shared register and the
    logic after it then drive pins all over the die. A ``keep`` cell is never merged;
    Amaranth puts a Signal's attributes on its wire, not on the ``$dff`` cell, so this moves
    the mark over. Returns the new text and the number of cells marked.
    """
    lines = text.split("\n")
    out, count, pending, wires, module = [], 0, False, set(), ""
    for line in lines:  # pass 1: the marked wires of every module, by (module, name)
        t = line.strip()
        if t.startswith("module "):
            module = t
        elif t == f"attribute \\{NOMERGE} 1":
            pending = True
            continue
        elif t.startswith("wire ") and pending:
            wires.add((module, t.split()[-1]))
        if not t.startswith("attribute "):
            pending = False
    cell_at = None
    for line in lines:  # pass 2: mark the $dff/$adff cells whose Q is such a wire
        t = line.strip()
        if t.startswith("module "):
            module = t
        if t.startswith("cell $dff ") or t.startswith("cell $adff "):
            cell_at = len(out)
        elif t.startswith("connect \\Q ") and cell_at is not None:
            sig = t.split(None, 2)[2].replace("{", " ").replace("}", " ").split()
            if any((module, tok) in wires for tok in sig):
                indent = out[cell_at][: len(out[cell_at]) - len(out[cell_at].lstrip())]
                out.insert(cell_at, f"{indent}attribute \\keep 1")
                count += 1
            cell_at = None
        elif t == "end":
            cell_at = None
        out.append(line)
    return "\n".join(out), count
