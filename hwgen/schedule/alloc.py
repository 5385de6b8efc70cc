"""Activation-buffer allocation over a DAG: regions, buffer choice, liveness, addresses.

The accelerator has two activation buffers (0 and 1). An instruction (a Conv, a Linear or an
Add, with its fused pool) reads one *region* and writes one region, in different buffers: a
buffer is never read while it is written (the write shares the read port A, see rtl/top.py).

* **Region.** A feature map stored HWC, ``stride`` words of C lanes per pixel. A region holds
  one tensor, or several side by side: the inputs of a Concat (zero-copy: each producer
  writes its channels at its word offset, with the region's pixel stride) or the two
  operands of an Add (which the hardware runs as a 1x1 conv over the pair). Each part starts
  at a whole word (``ceil(c/C)`` words per part).
* **Buffer.** Regions get buffers by 2-colouring the graph "instruction i reads region A and
  writes region B => A and B differ"; the model input is in buffer 0. hwgen.schedule.lower
  first inserts identity copies where zero-copy placement cannot work (a one-conv residual
  branch would read and write the Add's region; an odd-length branch leaves an odd cycle);
  a graph that is still not 2-colourable is a ScheduleError naming the layer.
* **Liveness.** A region is live from the first instruction that writes it to the last one
  that reads or writes it (the input from before the first instruction, the logits to the
  end).
* **Addresses.** In each buffer, regions in order of their first write get the lowest word
  address at which they overlap no region whose live range intersects theirs (first fit).
  The buffer depth is the highest end. The logits region is live alone at the end, so it
  starts at word 0, where the controller reads the result from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Region", "Alloc", "allocate"]


@dataclass
class Region:
    """One allocation unit: ``parts`` tensors side by side, ``words`` = pixels * stride."""

    name: str
    pixels: int
    parts: list[tuple[str, int]] = field(default_factory=list)  # (tensor, words per pixel)
    writers: list[int] = field(default_factory=list)  # instruction indices
    readers: list[int] = field(default_factory=list)
    fixed: int | None = None  # buffer forced (the model input: 0)
    keep: bool = False  # live to the end though nothing reads it (the logits)
    buf: int = -1
    base: int = 0

    @property
    def stride(self) -> int:
        return sum(w for _, w in self.parts)

    @property
    def words(self) -> int:
        return self.pixels * self.stride

    def offset(self, tensor: str) -> int:
        """Word offset of ``tensor``'s first channel word inside a pixel."""
        off = 0
        for t, w in self.parts:
            if t == tensor:
                return off
            off += w
        raise KeyError(tensor)

    def live(self, n_instr: int) -> tuple[int, int]:
        start = min(self.writers) if self.writers else -1
        # to its last reader, or its last writer: a part may be written after another part
        # was last read (a Concat operand that is also read on its own)
        end = max([*self.readers, *self.writers], default=start)
        return start, n_instr if self.keep else end


@dataclass
class Alloc:
    regions: list[Region]
    depth: tuple[int, int]


def _colour(regions: list[Region], edges: list[tuple[Region, Region, str]]) -> None:
    """2-colour: every (read, written, layer) edge joins regions in different buffers."""
    adj: dict[str, list[tuple[Region, str]]] = {r.name: [] for r in regions}
    for a, b, why in edges:
        if a is b:
            raise _error(why, f"reads and writes region {a.name!r}")
        adj[a.name].append((b, why))
        adj[b.name].append((a, why))
    order = sorted(regions, key=lambda r: (r.fixed is None, min(r.writers, default=-1)))
    for start in order:
        if start.buf >= 0:
            continue
        start.buf = start.fixed if start.fixed is not None else 0
        todo = [start]
        while todo:
            r = todo.pop()
            for o, why in adj[r.name]:
                want = 1 - r.buf
                if o.buf < 0:
                    if o.fixed is not None and o.fixed != want:
                        raise _error(why, f"needs region {o.name!r} in buffer {want}")
                    o.buf = want
                    todo.append(o)
                elif o.buf != want:
                    raise _error(
                        why,
                        f"reads and writes buffer {r.buf} (regions {r.name!r} and {o.name!r} "
                        "must be in different buffers, which the rest of the graph forbids)",
                    )


def _error(layer: str, what: str):
    from .lower import ScheduleError

    err = ScheduleError(
        f"layer '{layer}': {what}; with two activation buffers every layer must read one and "
        "write the other"
    )
    err.layer = layer  # hwgen.schedule.lower breaks the cycle there with a copy
    return err


def _first_fit(regions: list[Region], n_instr: int) -> None:
    """Lowest base per region that overlaps no region whose live range intersects."""
    placed: list[Region] = []
    for r in sorted(regions, key=lambda r: (r.live(n_instr)[0], r.name)):
        s, e = r.live(n_instr)
        busy = sorted(
            (o.base, o.base + o.words)
            for o in placed
            if o.buf == r.buf and o.live(n_instr)[0] <= e and s <= o.live(n_instr)[1]
        )
        base = 0
        for lo, hi in busy:
            if base + r.words <= lo:
                break
            base = max(base, hi)
        r.base = base
        placed.append(r)


def allocate(regions: list[Region], edges: list[tuple[Region, Region, str]], n: int) -> Alloc:
    """Buffers (2-colouring) and base addresses (liveness + first fit) for ``regions``;
    ``edges`` are (region read, region written, layer name) per instruction."""
    _colour(regions, edges)
    _first_fit(regions, n)
    depth = [1, 1]
    for r in regions:
        depth[r.buf] = max(depth[r.buf], r.base + r.words)
    return Alloc(regions=regions, depth=(depth[0], depth[1]))
