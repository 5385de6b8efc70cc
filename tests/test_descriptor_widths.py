"""The descriptor register narrowed to the plan's bits per field class: the plan keeps each
class's widest value, refuses a program with a wider one (naming layer and field), and the
narrowed register loaded from the program beats reads back every field of every layer."""

from __future__ import annotations

import dataclasses
import re

import pytest
from amaranth import Module, Signal
from amaranth.sim import Simulator
from test_capacity import _FakePort  # (tests/ is on sys.path: pytest's rootdir import)

from hwgen.config import ArrayConfig
from hwgen.evaluate import build_qmodel
from hwgen.hostlink.driver import Board
from hwgen.hostlink.protocol import Cmd, Status, reply
from hwgen.hostlink.top import info_payload
from hwgen.rtl.descriptor import DESC_LAYOUT, beat_writes, narrow_fields, pack_descriptor
from hwgen.rtl.loader import beats_per_word
from hwgen.schedule.capacity import FitError, MemoryPlan
from hwgen.schedule.fields import DESC_CLASSES, descriptor_fields, magnitude_bits
from hwgen.schedule.lower import lower

A = ArrayConfig(4, 4)
BEATS = beats_per_word(DESC_LAYOUT.size)


def _progs():
    return lower(build_qmodel("tiny_cnn"), A), lower(build_qmodel("mnist_cnn"), A)


def _widest(prog, names) -> int:
    return max(magnitude_bits(descriptor_fields(lay, A.rows)[f])
               for lay in prog.layers for f in names)  # fmt: skip


def test_magnitude_bits() -> None:
    assert [magnitude_bits(v) for v in (0, 1, 2, 3, 4, -1, -2, -3, -4, -5)] == \
        [0, 1, 2, 2, 3, 0, 1, 2, 2, 3]  # fmt: skip


def test_plan_keeps_each_class_widest_value() -> None:
    tiny, mnist = _progs()
    for prog in (tiny, mnist):
        bits = MemoryPlan.of(prog).desc_bits
        assert bits == tuple(max(1, _widest(prog, n)) for n in DESC_CLASSES.values())
    fit = MemoryPlan.fit([tiny, mnist]).desc_bits
    assert fit == tuple(map(max, MemoryPlan.of(tiny).desc_bits, MemoryPlan.of(mnist).desc_bits))


def test_a_wider_field_is_refused_naming_layer_and_field() -> None:
    tiny, mnist = _progs()
    big = MemoryPlan.fit([tiny, mnist])
    narrow = dataclasses.replace(big, desc_bits=MemoryPlan.of(tiny).desc_bits)
    assert narrow.desc_bits != big.desc_bits, "mnist_cnn should need more bits than tiny_cnn"
    msg = str(pytest.raises(FitError, narrow.check, mnist).value)
    assert re.fullmatch(r"model 'mnist_cnn': layer '\w+': descriptor field \w+ = -?\d+ needs "
                        r"\d+ bits, the design keeps \d+ for (geometry|count|address) fields",
                        msg), msg  # fmt: skip
    with pytest.raises(ValueError, match="desc_bits must be 3 widths"):
        dataclasses.replace(big, desc_bits=(4, 4))


def test_info_carries_the_class_bits() -> None:
    tiny, _ = _progs()
    for plan in (MemoryPlan.of(tiny), dataclasses.replace(MemoryPlan.of(tiny), desc_bits=None)):
        assert Board(_FakePort(plan)).plan() == plan
    # a version-1 design's INFO (no class bits): the full widths
    old = _FakePort(MemoryPlan.of(tiny))
    old.pending = reply(Status.OK, Cmd.INFO, info_payload(MemoryPlan.of(tiny), 1024)[:-3])
    assert Board(old).plan() == dataclasses.replace(MemoryPlan.of(tiny), desc_bits=None)


def _load(prog, bits) -> list[dict[str, int]]:
    """Each layer's descriptor as the narrowed register holds it after FETCH's beat writes."""
    regs = narrow_fields(bits)
    word, sel = Signal(32), Signal(range(BEATS + 1))
    m = Module()
    for i in range(BEATS):
        with m.If(sel == i):
            m.d.sync += beat_writes(regs, i, word)
    view = Signal(DESC_LAYOUT)
    m.d.comb += [view[f].eq(r) for f, r in regs.items()]
    got = []

    async def bench(ctx):
        for lay in prog.layers:
            bits_ = DESC_LAYOUT.const(pack_descriptor(lay, A.rows)).as_bits()
            for i in range(BEATS):
                ctx.set(word, (bits_ >> (32 * i)) & 0xFFFF_FFFF)
                ctx.set(sel, i)
                await ctx.tick()
            ctx.set(sel, BEATS)
            got.append({f: ctx.get(view[f]) for f, _ in DESC_LAYOUT})

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got


def test_narrow_register_reads_back_every_field() -> None:
    tiny, _ = _progs()
    plan = MemoryPlan.of(tiny)
    want = [pack_descriptor(lay, A.rows) for lay in tiny.layers]
    assert _load(tiny, plan.desc_bits) == want
    assert _load(tiny, None) == want
    # one bit fewer in a class than the program needs truncates a field: what `check` refuses
    short = tuple(b - 1 if b > 1 else b for b in plan.desc_bits)
    assert _load(tiny, short) != want
    assert sum(len(r) for r in narrow_fields(plan.desc_bits).values()) < DESC_LAYOUT.size
