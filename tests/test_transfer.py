"""ImageWriter and LogitSender (hwgen/rtl/transfer.py) against their golden functions in the
Amaranth simulator, with random valid gaps, backpressure and header sizes; the formal checks
of the same streams are in tests/test_formal.py."""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from hwgen.rtl.transfer import (
    ImageSlot,
    ImageWriter,
    LogitSender,
    image_writes,
    logits_from_words,
    slot_step,
)


def test_golden_packing() -> None:
    # 2 pixels of 5 channels on 3 lanes: 2 words per pixel
    assert image_writes(range(10), 5, 3)[:6] == [
        (0, 0, 0), (0, 1, 1), (0, 2, 2), (1, 0, 3), (1, 1, 4), (2, 0, 5)]  # fmt: skip
    assert image_writes([7, 8], 1, 4) == [(0, 0, 7), (1, 0, 8)]
    assert logits_from_words([[1, 2, 3], [4, 5, 6]], 4, 3) == [1, 2, 3, 4]


def _image_run(cols: int, in_c: int, values: list[int], last_at: int, seed: int) -> tuple:
    """Send ``values`` (last on index ``last_at``) with random gaps and random `active`
    drops; returns (writes, end events)."""
    dut = ImageWriter(cols=cols, addr_width=10)
    rng = random.Random(seed)
    writes: list[tuple[int, int, int]] = []
    events: list[tuple[int, str]] = []

    async def bench(ctx) -> None:
        ctx.set(dut.c_last, in_c - 1)
        ctx.set(dut.len_last, len(values) - 1)
        await ctx.tick()  # (the header holds from a cycle before `clear`: ImageWriter)
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        i = 0
        while i < len(values):
            valid, active = rng.random() < 0.7, rng.random() < 0.8
            ctx.set(dut.i_stream.valid, valid)
            ctx.set(dut.step_valid, valid)  # (the Accelerator's copy of valid)
            ctx.set(dut.i_stream.payload, {"data": values[i], "last": int(i == last_at)})
            ctx.set(dut.active, active)
            ctx.set(dut.window, active)  # (OPEN throughout: active == window)
            if ctx.get(dut.i_stream.ready) != active:
                raise AssertionError("ready must equal active")
            if ctx.get(dut.we):
                lanes = ctx.get(dut.lanes)
                writes.append((ctx.get(dut.addr), lanes.bit_length() - 1, ctx.get(dut.data)))
                events.extend((i, e) for e in ("complete", "short", "long")
                              if ctx.get(getattr(dut, e)))
                i += 1
            elif ctx.get(dut.complete) | ctx.get(dut.short) | ctx.get(dut.long):
                raise AssertionError("an end event without a value taken")
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return writes, events


@pytest.mark.parametrize("cols,in_c,n_pix", [(3, 5, 4), (4, 4, 3), (1, 3, 5), (8, 1, 9)])
def test_image_writer_matches_golden(cols: int, in_c: int, n_pix: int) -> None:
    values = [int(v) for v in np.random.default_rng(cols * 7 + in_c).integers(-128, 128,
                                                                             in_c * n_pix)]
    writes, events = _image_run(cols, in_c, values, len(values) - 1, seed=cols)
    assert writes == image_writes(values, in_c, cols)
    assert events == [(len(values) - 1, "complete")]


def test_image_writer_length_faults() -> None:
    values = list(range(12))
    _, events = _image_run(3, 2, values, 5, seed=1)  # `last` on value 5 of 12
    assert (5, "short") in events
    _, events = _image_run(3, 2, values, -1, seed=2)  # never a `last`
    assert events == [(11, "long")]


SLOT_INPUTS = ("enable", "window", "take", "release", "last_in", "complete", "short", "long")


def test_image_slot_matches_golden() -> None:
    """ImageSlot cycle by cycle against slot_step, from reset, under random inputs (the
    writer's end events only while it fills, as the ImageWriter gives them); every state
    and both kept faults are visited."""
    dut = ImageSlot()
    rng = random.Random(5)
    seen: set[str] = set()

    async def bench(ctx) -> None:
        state, bad = "CLEAR", (0, 0)
        for n in range(3000):
            i = {k: int(rng.random() < (0.9 if k == "enable" else 0.3)) for k in SLOT_INPUTS}
            i["window"] &= i["enable"]  # the controller grants the window only with enable
            want, nxt, nbad = slot_step(state, bad, i)
            if not want["fill"]:  # no value taken: no end event
                i.update(complete=0, short=0, long=0)
                want, nxt, nbad = slot_step(state, bad, i)
            else:  # at most one end event per value
                ev = rng.choice(["complete", "short", "long", None, None, None])
                i.update({e: int(e == ev) for e in ("complete", "short", "long")})
                want, nxt, nbad = slot_step(state, bad, i)
            for k, v in i.items():
                ctx.set(getattr(dut, k), v)
            got = {k: ctx.get(getattr(dut, k)) for k in want}
            assert got == want, f"cycle {n}, state {state}, inputs {i}: {got} != {want}"
            seen.add(state + "".join(map(str, bad)))
            state, bad = nxt, nbad
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert {"CLEAR00", "OPEN00", "LONG01", "DISCARD01", "FULL00", "FULL10", "FULL01",
            "USED00"} <= seen


def _send_run(cols: int, words: np.ndarray, out_len: int, seed: int,
              latency: int = 1) -> tuple[list, int]:
    """A result transfer from a buffer holding ``words`` whose read data comes ``latency``
    cycles after the address, with random backpressure; returns (logits with their `last`
    flags, cycles until done)."""
    dut = LogitSender(cols=cols, addr_width=8, read_latency=latency)
    rng = random.Random(seed)
    packed = [sum((int(v) & 0xFF) << (8 * j) for j, v in enumerate(w)) for w in words]
    got: list[tuple[int, int]] = []

    async def bench(ctx) -> None:
        ctx.set(dut.len_last, out_len - 1)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        held = None
        addrs: list[int | None] = [None] * latency  # the address of each past cycle
        for t in range(40 * out_len + 10):
            addr_q = addrs[-latency]
            ctx.set(dut.rdata, packed[addr_q] if addr_q is not None else 0)
            ready = rng.random() < 0.6
            ctx.set(dut.o_stream.ready, ready)
            valid = ctx.get(dut.o_stream.valid)
            payload = (ctx.get(dut.o_stream.payload.data), ctx.get(dut.o_stream.payload.last))
            if held is not None and (not valid or payload != held):
                raise AssertionError(f"cycle {t}: a refused logit changed or vanished")
            held = payload if valid and not ready else None
            if valid and ready:
                got.append(payload)
            done = ctx.get(dut.done)
            addrs.append(ctx.get(dut.raddr) if ctx.get(dut.reading) else None)
            await ctx.tick()
            if done:
                got.append((t, -1))
                return

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got[:-1], got[-1][0] if got and got[-1][1] == -1 else -1


@pytest.mark.parametrize("latency", [1, 2, 3])
@pytest.mark.parametrize("cols,out_len", [(3, 10), (4, 4), (1, 3), (8, 5)])
def test_logit_sender_matches_golden(cols: int, out_len: int, latency: int) -> None:
    words = np.random.default_rng(cols).integers(-128, 128, (-(-out_len // cols), cols))
    got, done_at = _send_run(cols, words, out_len, seed=out_len, latency=latency)
    assert done_at >= 0, "no done pulse"
    assert [v for v, _ in got] == logits_from_words(words, out_len, cols)
    assert [last for _, last in got] == [0] * (out_len - 1) + [1]
