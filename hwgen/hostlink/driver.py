"""Host driver for a board running HostTop: `Board(port).load(model).predict(images)`.

    b = Board("/dev/ttyUSB0", baud=115200)      # or any object with read(n)/write(b)
    b.load("mnist_cnn")                          # zoo name, QModel or Program
    logits = b.predict(images_uint8)             # int8, shaped like hwgen.golden.run.predict
    b.cycles(); b.status()

The port is pyserial's `serial.Serial` (opened here from a name) or any object with the same
`read(n) -> bytes` (may return fewer bytes on timeout) and `write(data)`; the cocotb testbench
passes a simulated serial port backed by its UART model, so the tests run this exact code.
`load` reads the design's memory plan from the board first and checks the model against it
(FitError naming the layer, the memory and both sizes) before anything is transferred.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from hwgen.config import ArrayConfig
from hwgen.emit.images import image_values, weight_beats
from hwgen.golden.run import quantize_input
from hwgen.quant.qmodel import QModel
from hwgen.schedule.capacity import MemoryPlan
from hwgen.schedule.lower import lower
from hwgen.schedule.program import Program

from .protocol import (
    INFO_FORMAT,
    INFO_MAGIC,
    REP_SYNC,
    ST_ACCEL_STATUS_SHIFT,
    ST_LAST_ERROR_SHIFT,
    Cmd,
    Status,
    crc16,
    request,
)

__all__ = ["Board", "BoardError", "LinkError", "BoardStatus"]


class LinkError(RuntimeError):
    """The reply did not arrive, was malformed, or failed its CRC."""


class BoardError(RuntimeError):
    """The board answered with an error status."""

    def __init__(self, cmd: int, status: int) -> None:
        self.cmd, self.status = cmd, status
        what = Status(status).name if status in Status._value2member_map_ else f"status {status}"
        name = Cmd(cmd).name if cmd in Cmd._value2member_map_ else f"command {cmd:#04x}"
        super().__init__(f"board refused {name}: {what}")


@dataclass(frozen=True)
class BoardStatus:
    word: int

    @property
    def loaded(self) -> bool:
        return bool(self.word & 1)

    @property
    def busy(self) -> bool:
        return bool(self.word >> 2 & 1)

    @property
    def done(self) -> bool:
        return bool(self.word >> 3 & 1)

    @property
    def accel_error(self) -> bool:
        return bool(self.word >> 4 & 1)

    @property
    def last_error(self) -> int:
        return self.word >> ST_LAST_ERROR_SHIFT & 0xFF

    @property
    def accel_status(self) -> int:
        return self.word >> ST_ACCEL_STATUS_SHIFT & 0xFFFF


class Board:
    def __init__(self, port, baud: int = 115200, timeout: float = 5.0) -> None:
        if isinstance(port, str):
            import serial

            port = serial.Serial(port, baudrate=baud, timeout=timeout)
        self.port = port
        self.program: Program | None = None
        self._plan: MemoryPlan | None = None
        self._max_payload = 0

    # ------------------------------------------------------------ framing
    def transact(self, cmd: int, payload: bytes = b"") -> bytes:
        """Send one request, return the reply payload; BoardError on an error status."""
        self.port.write(request(cmd, payload))
        return self.read_reply(cmd)

    def read_reply(self, cmd: int | None = None) -> bytes:
        head = self._read(1)
        if head[0] != REP_SYNC:
            raise LinkError(f"reply starts with {head[0]:#04x}, not {REP_SYNC:#04x}")
        body = self._read(4)
        status, rcmd, n = struct.unpack("<BBH", body)
        body += self._read(n)
        (crc,) = struct.unpack("<H", self._read(2))
        if crc != crc16(body):
            raise LinkError(f"reply CRC {crc:#06x} != {crc16(body):#06x}")
        if status != Status.OK:
            raise BoardError(rcmd if cmd is None else cmd, status)
        if cmd is not None and rcmd != cmd:
            raise LinkError(f"reply to command {rcmd:#04x}, expected {cmd:#04x}")
        return body[4:]

    def _read(self, n: int) -> bytes:
        data = self.port.read(n)
        if len(data) != n:
            raise LinkError(f"timeout: {len(data)}/{n} reply bytes")
        return bytes(data)

    # ------------------------------------------------------------ commands
    def plan(self) -> MemoryPlan:
        """The design's memory plan, read from the board (INFO)."""
        if self._plan is None:
            raw = self.transact(Cmd.INFO)
            # (a version-1 design's reply is shorter: its missing fields read 0, full widths)
            raw += bytes(max(0, struct.calcsize(INFO_FORMAT) - len(raw)))
            f = struct.unpack(INFO_FORMAT, raw)
            if f[0] != INFO_MAGIC:
                raise LinkError(f"INFO magic {f[0]!r} != {INFO_MAGIC!r}")
            _, _ver, rows, cols, acc, self._max_payload, layers, b0, b1, cw, dw, pw, pk, pow_ = (
                f[:14])
            classes = tuple(f[14:])  # the descriptor's bits per class (0s: full widths)
            self._plan = MemoryPlan(
                array=ArrayConfig(rows, cols), buf_depth=(b0, b1), convw_depth=cw,
                directw_depth=dw, param_depth=pw, max_layers=layers, pool_max_k=pk,
                pool_max_out_w=pow_, acc_width=acc or 32,
                desc_bits=classes if any(classes) else None,
            )  # fmt: skip
        return self._plan

    def load(self, model: str | QModel | Program) -> Program:
        """Check `model` against the board's plan (FitError, before any transfer), then
        transfer its program and weights."""
        plan = self.plan()
        prog = self._program(model, plan.array)
        plan.check(prog)
        data = weight_beats(prog).astype("<u4").tobytes()
        self.program = None
        self.transact(Cmd.LOAD_BEGIN)
        step = self._max_payload - self._max_payload % 4
        for i in range(0, len(data), step):
            last = i + step >= len(data)
            self.transact(Cmd.LOAD_LAST if last else Cmd.LOAD_DATA, data[i : i + step])
        if not self.status().loaded:
            raise LinkError("the board does not report the model loaded after the transfer")
        self.program = prog
        return prog

    @staticmethod
    def _program(model, array: ArrayConfig) -> Program:
        if isinstance(model, Program):
            return model
        if isinstance(model, str):
            from hwgen.evaluate import build_qmodel

            model = build_qmodel(model)
        return lower(model, array)

    def infer_int8(self, x_int8: np.ndarray) -> np.ndarray:
        """One quantized input [C,H,W] -> int8 logits."""
        if self.program is None:
            raise RuntimeError("Board.infer: no model loaded (call load first)")
        values = image_values(self.program, x_int8).astype(np.int8).tobytes()
        return np.frombuffer(self.transact(Cmd.INFER, values), dtype=np.int8).copy()

    def predict(self, images_uint8) -> np.ndarray:
        """uint8 images (N, H, W) or (N, C, H, W) -> int8 logits (N, out), like
        hwgen.golden.run.predict."""
        xq = quantize_input(images_uint8)
        if not len(xq):
            return np.zeros((0, self.program.out_len if self.program else 0), dtype=np.int8)
        return np.stack([self.infer_int8(x) for x in xq])

    def cycles(self) -> dict[str, object]:
        """The last inference's cycle counters: total, data-in, results-out, per layer."""
        raw = self.transact(Cmd.CYCLES)
        v = list(struct.unpack(f"<{len(raw) // 4}I", raw))
        return {"total": v[0], "input": v[1], "output": v[2], "layers": v[3:]}

    def status(self) -> BoardStatus:
        (word,) = struct.unpack("<I", self.transact(Cmd.STATUS))
        return BoardStatus(word)
