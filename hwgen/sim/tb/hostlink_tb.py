"""cocotb body: the whole HostTop (UART, frame parser, dispatcher, Accelerator) at the bit level,
driven by the real host driver (hwgen.hostlink.driver.Board) through a simulated serial port.

The driver runs in a thread (cocotb.task.bridge); its port's write/read call into the simulation
(cocotb.task.resume), where a UART model drives `uart_rx` bit by bit and decodes `uart_tx`. A read
that sees no byte for `read_timeout_bits` bit times returns short, like pyserial's timeout.
"""

from __future__ import annotations

import collections
import json
import pickle

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.task import bridge, resume
from cocotb.triggers import ClockCycles, Event, FallingEdge, First, Timer

from hwgen.hostlink.driver import Board, BoardError
from hwgen.hostlink.protocol import Cmd, Status, request
from hwgen.sim.tb.common import load_params

PERIOD_NS = 10


class UartModel:
    """Bit-level 8N1 UART on the DUT's pins: `send` drives uart_rx, a monitor decodes uart_tx."""

    def __init__(self, dut, cpb: int) -> None:
        self.dut, self.bit_ns = dut, cpb * PERIOD_NS
        self.rx: collections.deque[int] = collections.deque()
        self.got = Event()
        self.framing_errors = 0
        dut.uart_rx.value = 1

    async def send(self, data: bytes) -> None:
        for byte in data:
            for level in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
                self.dut.uart_rx.value = level
                await Timer(self.bit_ns, "ns")

    async def monitor(self) -> None:
        while True:
            await FallingEdge(self.dut.uart_tx)
            await Timer(self.bit_ns // 2, "ns")  # middle of the start bit
            assert int(self.dut.uart_tx.value) == 0, "uart_tx: start bit too short"
            byte = 0
            for i in range(8):
                await Timer(self.bit_ns, "ns")
                byte |= int(self.dut.uart_tx.value) << i
            await Timer(self.bit_ns, "ns")
            if int(self.dut.uart_tx.value) != 1:
                self.framing_errors += 1
            self.rx.append(byte)
            self.got.set()

    async def recv(self, n: int, timeout_bits: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            if self.rx:
                out.append(self.rx.popleft())
                continue
            self.got.clear()
            t = Timer(timeout_bits * self.bit_ns, "ns")
            if await First(self.got.wait(), t) is t:
                break
        return bytes(out)


class SimSerial:
    """pyserial-like port (read/write) for a driver running in a cocotb.bridge thread."""

    def __init__(self, uart: UartModel, read_timeout_bits: int) -> None:
        self.uart, self.timeout_bits = uart, read_timeout_bits
        self.written = 0

    def write(self, data: bytes) -> int:
        resume(self.uart.send)(bytes(data))
        self.written += len(data)
        return len(data)

    def read(self, n: int) -> bytes:
        return resume(self.uart.recv)(n, self.timeout_bits)


def expect_error(fn, status: Status) -> None:
    try:
        fn()
    except BoardError as e:
        assert e.status == status, f"expected {status.name}, got {e}"
        return
    raise AssertionError(f"expected a {status.name} error reply, the board answered OK")


def scenario(board: Board, port: SimSerial, cases: dict, p: dict, log: dict) -> None:
    """Runs in the driver thread: every call goes through the UART bit by bit."""
    a, b = cases["a"], cases["b"]
    plan = board.plan()
    log["plan"] = plan.text()
    assert plan.array.rows == p["rows"] and plan.array.cols == p["cols"], plan
    # an inference before any load is refused
    expect_error(lambda: board.transact(Cmd.INFER, bytes(a["in_len"])), Status.NOT_LOADED)
    # ... and before a complete one
    beats = a["beats"]
    board.transact(Cmd.LOAD_BEGIN)
    board.transact(Cmd.LOAD_DATA, beats[: 4 * 64])
    expect_error(lambda: board.transact(Cmd.INFER, bytes(a["in_len"])), Status.NOT_LOADED)
    assert not board.status().loaded
    # a corrupted frame: error reply, and nothing changes (the load below still works)
    bad = bytearray(request(Cmd.LOAD_DATA, beats[4 * 64 : 4 * 128]))
    bad[10] ^= 0x10
    port.write(bytes(bad))
    expect_error(lambda: board.read_reply(Cmd.LOAD_DATA), Status.CRC)
    st = board.status()
    assert st.last_error == Status.CRC and not st.loaded, st
    # a truncated frame: the board times out and says so
    port.write(request(Cmd.LOAD_DATA, beats[4 * 64 : 4 * 128])[:70])
    expect_error(lambda: board.read_reply(Cmd.LOAD_DATA), Status.TIMEOUT)
    # a frame one word longer than the frame buffer: refused by its length (the parser's
    # `too_long`), nothing loaded from it (the load below still works)
    too_long = beats[4 * 64 :][: p["max_payload"] + 4]
    assert len(too_long) == p["max_payload"] + 4, "model A's beats are too short for this check"
    expect_error(lambda: board.transact(Cmd.LOAD_DATA, too_long), Status.LENGTH)
    st = board.status()
    assert st.last_error == Status.LENGTH and not st.loaded, st
    # the rest of the partial load, continued by hand after both bad frames
    step = 4 * 64
    for i in range(4 * 64, len(beats), step):
        last = i + step >= len(beats)
        board.transact(Cmd.LOAD_LAST if last else Cmd.LOAD_DATA, beats[i : i + step])
    assert board.status().loaded, "model A not loaded after its transfer"
    board.program = a["prog"]
    # a frame with more beats than the program declares is refused
    expect_error(lambda: board.transact(Cmd.LOAD_DATA, bytes(8)), Status.LOAD)
    # an image of the wrong length and an unknown command
    expect_error(lambda: board.transact(Cmd.INFER, bytes(a["in_len"] - 1)), Status.LENGTH)
    expect_error(lambda: board.transact(0x77), Status.COMMAND)

    log["a1"] = board.predict(a["images"]).tolist()
    log["a1_cycles"] = board.cycles()
    # a different model between images: its own logits, then model A again via Board.load
    board.load(b["prog"])
    log["b"] = board.predict(b["images"]).tolist()
    log["b_cycles"] = board.cycles()
    if p["n_again"]:
        board.load(a["prog"])
    log["a2"] = board.predict(a["images"][: p["n_again"]]).tolist() if p["n_again"] else []
    st = board.status()
    log["status"] = st.word
    assert st.loaded and st.done and not st.busy and st.last_error == 0, st
    assert st.accel_status == 0 and not st.accel_error, st
    log["bytes_written"] = port.written


@cocotb.test()
async def hostlink(dut) -> None:
    p = load_params()
    with open(p["cases"], "rb") as f:
        cases = pickle.load(f)
    cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns", impl="gpi").start())
    dut.rst.value = 1
    dut.uart_rx.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    uart = UartModel(dut, p["cpb"])
    cocotb.start_soon(uart.monitor())
    await ClockCycles(dut.clk, 3)
    port = SimSerial(uart, p["read_timeout_bits"])
    board = Board(port)
    log: dict = {}
    try:
        await bridge(scenario)(board, port, cases, p, log)
    finally:
        with open(p["results"], "w") as f:
            json.dump(log, f)
    assert uart.framing_errors == 0, f"{uart.framing_errors} bad stop bits on uart_tx"
    for key, case in (("a1", "a"), ("b", "b")):
        want = np.asarray(cases[case]["logits"]).tolist()
        assert log[key] == want, f"{key}: logits differ from the golden model"
    assert log["a2"] == np.asarray(cases["a"]["logits"][: p["n_again"]]).tolist()
    assert int(dut.led_error.value) == 0
