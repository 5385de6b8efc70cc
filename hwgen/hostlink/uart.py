"""UART 8N1 receiver and transmitter; `cpb` = clock cycles per bit (clk_freq / baud), >= 4.

UartRx: a two-flop synchronizer, start-bit detection, sampling in the middle of each bit;
`o` carries one byte per received frame (valid for one cycle, no backpressure: the frame
parser takes a byte every cycle). A missing stop bit drops the byte and pulses
`framing_error`. UartTx: `i` is a valid/ready byte stream; `tx` idles high.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["UartRx", "UartTx", "crc16_update", "uart_golden_frame"]


def uart_golden_frame(byte: int) -> list[int]:
    """Line levels of one 8N1 character, one entry per bit time (start, LSB first, stop)."""
    return [0] + [(byte >> i) & 1 for i in range(8)] + [1]


def _crc16_bit(crc: int, byte: int) -> int:
    c = crc ^ (byte << 8)
    for _ in range(8):
        c = ((c << 1) ^ 0x1021 if c & 0x8000 else c << 1) & 0xFFFF
    return c


# CRC-16/CCITT-FALSE is linear over GF(2): output bit i = XOR of the crc bits and byte bits
# whose unit vectors set it (computed once here), so the hardware is 16 small XOR trees.
_CRC_TAPS = [
    ([k for k in range(16) if _crc16_bit(1 << k, 0) >> i & 1],
     [k for k in range(8) if _crc16_bit(0, 1 << k) >> i & 1])
    for i in range(16)
]  # fmt: skip


def crc16_update(crc, byte):
    """CRC-16/CCITT-FALSE step over one byte (poly 0x1021, MSB first): combinational."""
    bits = []
    for ctaps, btaps in _CRC_TAPS:
        terms = [crc[k] for k in ctaps] + [byte[k] for k in btaps]
        v = terms[0]
        for t in terms[1:]:
            v = v ^ t
        bits.append(v)
    return Cat(*bits)


class UartRx(wiring.Component):
    def __init__(self, cpb: int) -> None:
        if cpb < 4:
            raise ValueError(f"UART clocks per bit must be >= 4, not {cpb}")
        self.cpb = cpb
        super().__init__(
            {
                "rx": In(1, init=1),
                "framing_error": Out(1),
                "o": Out(stream.Signature(unsigned(8), always_ready=True)),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        cpb = self.cpb
        s1 = Signal(init=1)
        rx = Signal(init=1)
        m.d.sync += [s1.eq(self.rx), rx.eq(s1)]  # synchronizer
        # counted down to -1 (each load one lower than a count down to 0: the same timing),
        # so a sample is the counter's sign bit (timing: no compare in front of the enables)
        cnt = Signal(range(-2, cpb - 1))
        nbit = Signal(range(9))
        shift = Signal(8)
        m.d.sync += [self.o.valid.eq(0), self.framing_error.eq(0)]
        with m.FSM(name="uart_rx"):
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += cnt.eq(cpb // 2 - 2)
                    m.next = "START"
            with m.State("START"):
                m.d.sync += cnt.eq(cnt - 1)
                with m.If(cnt[-1]):
                    m.d.sync += [cnt.eq(cpb - 2), nbit.eq(0)]
                    m.next = "DATA"
                    with m.If(rx):  # a glitch, not a start bit
                        m.next = "IDLE"
            with m.State("DATA"):
                m.d.sync += cnt.eq(cnt - 1)
                with m.If(cnt[-1]):
                    m.d.sync += [cnt.eq(cpb - 2), shift.eq(Cat(shift[1:], rx)), nbit.eq(nbit + 1)]
                    with m.If(nbit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                m.d.sync += cnt.eq(cnt - 1)
                with m.If(cnt[-1]):
                    with m.If(rx):
                        m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(shift)]
                    with m.Else():
                        m.d.sync += self.framing_error.eq(1)
                    m.next = "IDLE"
        return m


class UartTx(wiring.Component):
    def __init__(self, cpb: int) -> None:
        if cpb < 4:
            raise ValueError(f"UART clocks per bit must be >= 4, not {cpb}")
        self.cpb = cpb
        super().__init__({"tx": Out(1, init=1), "i": In(stream.Signature(unsigned(8)))})

    def elaborate(self, platform) -> Module:
        m = Module()
        # counted down to -1 (as UartRx's): a bit ends at the counter's sign bit
        cnt = Signal(range(-1, self.cpb - 1))
        nbit = Signal(range(11))
        shift = Signal(10, init=0x3FF)
        # `ready` is its own flip-flop, always equal to nbit == 0 (timing: the sender's
        # enables start from a register, not from a compare of the bit counter)
        idle = Signal(init=1)
        m.d.comb += [self.i.ready.eq(idle), self.tx.eq(shift[0])]
        with m.If(self.i.valid & idle):
            m.d.sync += [
                shift.eq(Cat(Const(0, 1), self.i.payload, Const(1, 1))),
                nbit.eq(10),
                cnt.eq(self.cpb - 2),
                idle.eq(0),
            ]
        with m.Elif(~idle):
            m.d.sync += cnt.eq(cnt - 1)
            with m.If(cnt[-1]):
                m.d.sync += [cnt.eq(self.cpb - 2), nbit.eq(nbit - 1),
                             shift.eq(Cat(shift[1:], Const(1, 1))), idle.eq(nbit == 1)]  # fmt: skip
        return m
