"""RTLIL of the board top for a few configurations, to prove a refactor of RTL code changes no
hardware: snapshot before, snapshot after, compare with ``--against``.

    python scripts/rtlil_snapshot.py /tmp/before
    ... edit hwgen/rtl ...
    python scripts/rtlil_snapshot.py /tmp/after --against /tmp/before

The comparison leaves out ``attribute \\src "file:line"`` lines: they name the checkout's path
and the source line, which any moved code changes. Amaranth names cells by creation order and
signals after the variable assigned, so a refactor that keeps both is identical line for line.

``--renames`` checks a change of wire names only (a signal the name tracer missed, given its
name): per module, every name not in both versions (and any name it collides with) masked,
the two are the same multiset of lines. Cells, widths, parameters and connections must match.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CONFIGS = [("ulx3s", "mnist_cnn", 4, 4, True), ("ulx3s", "mnist_cnn", 12, 8, True),
           ("ulx3s", "tiny_cnn", 4, 4, False), ("icebreaker", "digits_cnn", 2, 2, True)]


def snapshot(out: Path) -> None:
    from hwgen.boards.build import BOARDS
    from hwgen.boards.top import top_for
    from hwgen.config import ArrayConfig
    from hwgen.evaluate import build_qmodel
    from hwgen.schedule.capacity import MemoryPlan
    from hwgen.schedule.lower import lower

    for board, model, r, c, stream in CONFIGS:
        prog = lower(build_qmodel(model), ArrayConfig(rows=r, cols=c, remainder_stream=stream))
        spec = BOARDS[board]
        top = top_for(spec, MemoryPlan.of(prog), spec.default_mhz, 115200)
        platform = spec.platform()
        d = out / f"{board}_{model}_{r}x{c}_{int(stream)}"
        platform.prepare(top, name="top", **platform.build_overrides()).extract(d)
        print(d.name, flush=True)


def _lines(path: Path) -> list[str]:
    src = "attribute \\src"
    return [x for x in path.read_text().splitlines() if not x.lstrip().startswith(src)]


def compare(new: Path, old: Path) -> int:
    """Differing non-src lines per configuration; the number of configurations that differ."""
    bad = 0
    for d in sorted(p for p in old.iterdir() if p.is_dir()):
        a, b = _lines(d / "top.il"), _lines(new / d.name / "top.il")
        n = sum(x != y for x, y in zip(a, b, strict=False)) + abs(len(a) - len(b))
        print(f"{d.name}: {n} differing lines")
        bad += n > 0
    return bad


def _modules(path: Path) -> dict[str, list[list[str]]]:
    mods: dict[str, list[list[str]]] = {}
    cur: list[list[str]] | None = None
    for line in _lines(path):
        if line.startswith("module "):
            cur = mods.setdefault(line, [])
        if cur is not None:
            cur.append(line.split())
    return mods


def _base(tok: str) -> str:
    return re.sub(r"\[.*", "", tok)  # a wire's name without its bit slice


def _masked(lines: list[list[str]], keep: set[str]) -> Counter:
    def tok(t: str) -> str:
        return t if not t.startswith("\\") or _base(t) in keep else "?" + t[len(_base(t)):]
    return Counter(" ".join(tok(t) for t in line) for line in lines)


def _wire_names(lines: list[list[str]]) -> set[str]:
    return {_base(t) for line in lines for t in line if t.startswith("\\")}


def compare_renames(new: Path, old: Path) -> int:
    """Configurations that differ by more than wire names (see the module's docstring)."""
    bad = 0
    for d in sorted(p for p in old.iterdir() if p.is_dir()):
        ma, mb = _modules(d / "top.il"), _modules(new / d.name / "top.il")
        renamed, same = 0, ma.keys() == mb.keys()
        for k in ma.keys() & mb.keys():
            na, nb = _wire_names(ma[k]), _wire_names(mb[k])
            moved = {re.sub(r"\$\d+$", "", n) for n in na ^ nb}
            keep = {n for n in na & nb if re.sub(r"\$\d+$", "", n) not in moved}
            same &= _masked(ma[k], keep) == _masked(mb[k], keep)
            renamed += len(na - keep)
        print(f"{d.name}: " + (f"same but for the names of {renamed} wires" if same
                               else "differs by more than wire names"))
        bad += not same
    return bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="directory for the snapshot")
    ap.add_argument("--against", type=Path, help="an earlier snapshot to compare with")
    ap.add_argument("--renames", action="store_true",
                    help="with --against: allow a change of wire names, nothing else")
    args = ap.parse_args()
    snapshot(args.out)
    if not args.against:
        return 0
    check = compare_renames if args.renames else compare
    return 1 if check(args.out, args.against) else 0


if __name__ == "__main__":
    sys.exit(main())
