"""UART and CRC units in the Amaranth simulator against their golden functions.

* crc16_update == binascii.crc_hqx (CRC-16/CCITT-FALSE) for random (crc, byte) pairs;
* UartTx drives exactly uart_golden_frame(byte) for cpb cycles per bit, idles high, and
  takes the next byte only when the line is free;
* UartRx decodes a golden line (random idle gaps between characters) into the same bytes,
  and a missing stop bit drops the byte and flags framing_error.
"""

from __future__ import annotations

import binascii
import random

import pytest
from amaranth import Module, Signal
from amaranth.sim import Simulator

from hwgen.hostlink.uart import UartRx, UartTx, crc16_update, uart_golden_frame


def test_crc16_matches_binascii() -> None:
    crc, byte = Signal(16), Signal(8)
    out = Signal(16)
    m = Module()
    m.d.comb += out.eq(crc16_update(crc, byte))
    rng = random.Random(1)
    checked = []

    async def bench(ctx) -> None:
        for _ in range(300):
            c, b = rng.randrange(1 << 16), rng.randrange(256)
            ctx.set(crc, c)
            ctx.set(byte, b)
            checked.append((ctx.get(out), binascii.crc_hqx(bytes([b]), c)))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert len(checked) == 300 and all(a == b for a, b in checked)


@pytest.mark.parametrize("cpb", [4, 7])
def test_uart_tx_line_and_rx_decode(cpb: int) -> None:
    rng = random.Random(cpb)
    data = [rng.randrange(256) for _ in range(12)] + [0x00, 0xFF, 0xA5]
    m = Module()
    m.submodules.tx = tx = UartTx(cpb)
    m.submodules.rx = rx = UartRx(cpb)
    m.d.comb += rx.rx.eq(tx.tx)
    got, line = [], []

    async def sender(ctx) -> None:
        for b in data:
            ctx.set(tx.i.valid, 1)
            ctx.set(tx.i.payload, b)
            while not ctx.get(tx.i.ready):
                await ctx.tick()
            await ctx.tick()
            ctx.set(tx.i.valid, 0)
            for _ in range(rng.randrange(0, 3 * cpb)):  # idle gaps
                await ctx.tick()

    async def rx_collect(ctx) -> None:
        while len(got) < len(data):
            await ctx.tick()
            if ctx.get(rx.o.valid):
                got.append(ctx.get(rx.o.payload))

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(sender)
    sim.add_testbench(rx_collect)

    async def line_monitor(ctx) -> None:
        await _line(ctx, tx, cpb, len(data), line)

    sim.add_testbench(line_monitor)
    sim.run_until(1e-8 * (len(data) * (10 * cpb + 3 * cpb) + 200))
    assert got == data, f"rx decoded {got}, sent {data}"
    assert line == [uart_golden_frame(b) for b in data], "tx line differs from the golden frame"


async def _line(ctx, tx, cpb: int, n: int, line: list) -> None:
    """Sample the TX line in the middle of every bit of each character."""
    while len(line) < n:
        await ctx.tick()
        if ctx.get(tx.tx) == 0:
            bits = [0]
            for _ in range(cpb // 2 - 1):
                await ctx.tick()
            for _ in range(9):
                for _ in range(cpb):
                    await ctx.tick()
                bits.append(ctx.get(tx.tx))
            line.append(bits)
            while ctx.get(tx.tx) == 0:
                await ctx.tick()


def test_uart_rx_framing_error() -> None:
    cpb = 5
    m = Module()
    m.submodules.rx = rx = UartRx(cpb)
    out = {"bytes": [], "ferr": 0}

    async def bench(ctx) -> None:
        ctx.set(rx.rx, 1)
        await ctx.tick().repeat(3)
        for b, stop in ((0x3C, 0), (0x5A, 1)):
            for level in uart_golden_frame(b)[:-1] + [stop]:
                ctx.set(rx.rx, level)
                for _ in range(cpb):
                    await ctx.tick()
                    out["bytes"] += [ctx.get(rx.o.payload)] if ctx.get(rx.o.valid) else []
                    out["ferr"] += ctx.get(rx.framing_error)
            ctx.set(rx.rx, 1)
            for _ in range(3 * cpb):
                await ctx.tick()
                out["bytes"] += [ctx.get(rx.o.payload)] if ctx.get(rx.o.valid) else []
                out["ferr"] += ctx.get(rx.framing_error)

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert out == {"bytes": [0x5A], "ferr": 1}, out
