"""Program + memory images -> the 32-bit beat stream that the WeightLoader expects (model
transfer: header, descriptors, conv weights, direct weights, requant parameters); input maps
-> the data-transfer value stream; `with_last` packs either into stream payloads."""

from __future__ import annotations

import numpy as np

from hwgen.rtl.descriptor import DESC_LAYOUT, HEADER_LAYOUT, pack_descriptor, pack_header
from hwgen.schedule.program import Program

__all__ = [
    "weight_beats",
    "program_beats",
    "pack_words",
    "image_values",
    "with_last",
    "WEIGHT_BITS",
    "IMAGE_BITS",
]

WEIGHT_BITS = 32  # weights__payload = {data: 32 bits, last} (bit 32 = last)
IMAGE_BITS = 8  # image__payload = {data: int8, last} (bit 8 = last)


def pack_words(words: np.ndarray, lane_bits: int) -> list[int]:
    """[depth, lanes] signed ints -> one Python int per word, lane 0 in the low bits."""
    mask = (1 << lane_bits) - 1
    out = []
    for row in np.asarray(words, dtype=np.int64):
        v = 0
        for j, x in enumerate(row.tolist()):
            v |= (int(x) & mask) << (lane_bits * j)
        out.append(v)
    return out


def _beats(words: list[int], width: int) -> list[int]:
    n = -(-width // 32)
    return [(w >> (32 * b)) & 0xFFFFFFFF for w in words for b in range(n)]


def _param_words(prog: Program) -> list[int]:
    """Each lane is {bias: 32, mult: 32, shift: 8} (PARAM_LANE_LAYOUT), 72 bits."""
    out = []
    for b, mu, s in zip(prog.bias, prog.mult, prog.shift, strict=True):
        v = 0
        for j in range(len(b)):
            lane = (int(b[j]) & 0xFFFFFFFF) | ((int(mu[j]) & 0xFFFFFFFF) << 32) | (
                (int(s[j]) & 0xFF) << 64
            )
            v |= lane << (72 * j)
        out.append(v)
    return out


def program_beats(prog: Program) -> list[int]:
    """The header word and one descriptor word per layer (the controller's program)."""
    beats = _beats([HEADER_LAYOUT.const(pack_header(prog)).as_bits()], HEADER_LAYOUT.size)
    descs = [DESC_LAYOUT.const(pack_descriptor(lay, prog.array.rows)).as_bits()
             for lay in prog.layers]  # fmt: skip
    return beats + _beats(descs, DESC_LAYOUT.size)


def weight_beats(prog: Program) -> np.ndarray:
    """The whole model-transfer stream: program, conv weights, direct weights, parameters."""
    R, C = prog.array.rows, prog.array.cols
    beats = program_beats(prog)
    beats += _beats(pack_words(prog.convw, 8), 8 * C)
    beats += _beats(pack_words(prog.directw, 8), 8 * R * C)
    beats += _beats(_param_words(prog), 72 * C)
    return np.asarray(beats, dtype=np.uint32)


def image_values(prog: Program, x_int8: np.ndarray) -> np.ndarray:
    """Input map [C,H,W] -> the data-transfer stream order (HWC)."""
    c, h, w = prog.in_shape
    return np.asarray(x_int8, dtype=np.int64).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)


def with_last(values, width: int, *, last: bool = True) -> list[int]:
    """Values -> stream payload ints: the value's low `width` bits (two's complement), and bit
    `width` (`last`) set on the final one (unless last=False, e.g. to send a stream in parts)."""
    mask = (1 << width) - 1
    out = [int(v) & mask for v in np.asarray(values, dtype=np.int64).reshape(-1).tolist()]
    if out and last:
        out[-1] |= 1 << width
    return out
