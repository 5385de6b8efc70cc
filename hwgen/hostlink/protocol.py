"""The host-link frame format (docs/hostlink.md), shared by the RTL and the host driver.

Request  (host -> board): 0xA5, cmd u8, len u16 LE, payload[len], crc u16 LE
Reply    (board -> host): 0x5A, status u8, cmd u8, len u16 LE, payload[len], crc u16 LE
The CRC is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) over every byte after the sync byte
and before the CRC; Python's `binascii.crc_hqx(data, 0xFFFF)`.
"""

from __future__ import annotations

import binascii
import struct
from enum import IntEnum

__all__ = [
    "REQ_SYNC",
    "REP_SYNC",
    "Cmd",
    "Status",
    "INFO_FORMAT",
    "INFO_MAGIC",
    "crc16",
    "request",
    "reply",
]

REQ_SYNC = 0xA5
REP_SYNC = 0x5A


class Cmd(IntEnum):
    INFO = 0x01  # -> the design's memory plan (INFO_FORMAT)
    LOAD_BEGIN = 0x10  # rewind the model transfer (the loaded model is gone)
    LOAD_DATA = 0x11  # payload: model-transfer beats, 32-bit LE, a multiple of 4 bytes
    LOAD_LAST = 0x12  # as LOAD_DATA, and its final beat is the transfer's last one
    INFER = 0x20  # payload: one image's int8 values (HWC) -> reply payload: the int8 logits
    CYCLES = 0x30  # -> u32 LE cycle counters: total, data-in, results-out, one per layer
    STATUS = 0x40  # -> u32 LE status word (clears the last-error byte)


class Status(IntEnum):
    OK = 0
    CRC = 1  # the frame's CRC is wrong: nothing was done
    TIMEOUT = 2  # the frame stopped arriving mid-way (truncated): nothing was done
    LENGTH = 3  # payload longer than the frame buffer, not whole beats, or not one image
    COMMAND = 4  # unknown command
    NOT_LOADED = 5  # inference (or cycles) before a complete model transfer
    LOAD = 6  # the model transfer was refused (bad header, wrong length: see STATUS)


# status word bits (Cmd.STATUS)
ST_LOADED, ST_BUSY, ST_DONE, ST_ACCEL_ERROR = 0, 2, 3, 4
ST_LAST_ERROR_SHIFT = 8  # bits 8..15: the last error status since the previous STATUS read
ST_ACCEL_STATUS_SHIFT = 16  # bits 16..31: the Accelerator's status flags (STATUS_LAYOUT)

# INFO payload: magic, version, rows, cols, PE accumulator bits (0 from designs built before
# the field existed: 32), max payload, max layers, activation buffer 0/1
# words, conv weight words, direct weight words, param words, pool max k, pool max out width,
# the descriptor register's bits per field class (MemoryPlan.desc_bits, 0s: full widths)
INFO_FORMAT = "<4sBBBBHHIIIIIHHBBB"
INFO_MAGIC = b"HWGN"
INFO_VERSION = 2


def crc16(data: bytes) -> int:
    return binascii.crc_hqx(bytes(data), 0xFFFF)


def request(cmd: int, payload: bytes = b"") -> bytes:
    body = struct.pack("<BH", cmd, len(payload)) + bytes(payload)
    return bytes([REQ_SYNC]) + body + struct.pack("<H", crc16(body))


def reply(status: int, cmd: int, payload: bytes = b"") -> bytes:
    body = struct.pack("<BBH", status, cmd, len(payload)) + bytes(payload)
    return bytes([REP_SYNC]) + body + struct.pack("<H", crc16(body))
