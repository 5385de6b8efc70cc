"""Shrink a failing NetSpec toward a smaller network that still fails.

Greedy delta debugging over structural edits: drop a layer, drop a pool/BN/ReLU, shrink the
kernel, stride, padding, channel counts, image and array. Each accepted edit must keep the
spec valid (``gen.check``) and keep ``fails(spec)`` true; the loop stops at a fixed point or
after ``max_tries`` predicate calls (each is an RTL build, so the budget matters).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

from hwgen.regress.gen import NetSpec, check

__all__ = ["candidates", "shrink", "size"]


def size(spec: NetSpec) -> tuple:
    """What the shrinker minimises (lexicographically): layers, then work, then array."""
    parts = len(spec.convs) + len(spec.linears)
    extras = sum(bool(c.pool) + c.bn + c.relu for c in spec.convs) + sum(
        lin.relu for lin in spec.linears)
    chans = sum(c.cout for c in spec.convs) + sum(lin.n for lin in spec.linears)
    kern = sum(c.k + c.stride + c.pad for c in spec.convs)
    return (parts, spec.in_ch * spec.h * spec.w + chans + kern + extras, spec.rows * spec.cols)


def _halve(v: int, lo: int = 1) -> list[int]:
    """Smaller values to try for ``v``: the floor, half, one less."""
    return sorted(x for x in {lo, v // 2, v - 1} if lo <= x < v)


def candidates(spec: NetSpec) -> Iterator[NetSpec]:
    """Smaller variants of ``spec``, the biggest cuts first."""
    convs, lins = list(spec.convs), list(spec.linears)
    for i in range(len(convs)):
        yield replace(spec, convs=tuple(convs[:i] + convs[i + 1:]))
    for i in range(len(lins) - 1):
        yield replace(spec, linears=tuple(lins[:i] + lins[i + 1:]))
    for i, c in enumerate(convs):
        for edit in (dict(pool=None, pool_k=0), dict(bn=False), dict(relu=False),
                     *(dict(cout=v) for v in _halve(c.cout)),
                     *(dict(k=v, pad=min(c.pad, v - 1)) for v in _halve(c.k)),
                     *(dict(stride=v) for v in _halve(c.stride)),
                     *(dict(pad=v) for v in _halve(c.pad, 0))):
            new = replace(c, **edit)
            if new != c:
                yield replace(spec, convs=tuple(convs[:i] + [new] + convs[i + 1:]))
    for i, lin in enumerate(lins):
        for edit in (dict(relu=False), *(dict(n=v) for v in _halve(lin.n))):
            new = replace(lin, **edit)
            if new != lin:
                yield replace(spec, linears=tuple(lins[:i] + [new] + lins[i + 1:]))
    for field, lo in (("in_ch", 1), ("h", 1), ("w", 1), ("rows", 1), ("cols", 1)):
        for v in _halve(getattr(spec, field), lo):
            yield replace(spec, **{field: v})


def _valid(spec: NetSpec) -> bool:
    try:
        check(spec)
    except ValueError:
        return False
    return True


def shrink(
    spec: NetSpec,
    fails: Callable[[NetSpec], bool],
    max_tries: int = 40,
    log: Callable[[str], None] = lambda _m: None,
) -> tuple[NetSpec, int]:
    """The smallest failing variant found and the number of predicate calls spent."""
    best, tries = spec, 0
    progress = True
    while progress and tries < max_tries:
        progress = False
        for cand in candidates(best):
            if tries >= max_tries:
                break
            if size(cand) >= size(best) or not _valid(cand):
                continue
            tries += 1
            if fails(cand):
                log(f"shrunk to {cand.describe()}")
                best, progress = cand, True
                break
    return best, tries
