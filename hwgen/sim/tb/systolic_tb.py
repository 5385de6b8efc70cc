"""cocotb body for ``SystolicArray``, plus the stimulus builder shared with the Amaranth test.

``build_stimulus(params)`` turns a JSON-able parameter dict into per-cycle packed port words
(the caller's skews applied exactly as the module docstring states) and the expected
``col_out`` of every cycle, from ``systolic_golden`` and ``out_latency``. Cycles without an
assignment carry random garbage: tokens with valid = 0 (random first/last/a), random weights
on ``col_w``/``w_direct`` in either mode, so ignoring them is tested too.

Parameters: rows, cols, a_width, w_width, acc_width, mult_latency, seed, layers (a list of
{mode: "conv"|"direct", tiles, k: int | [lo, hi], gaps, bubbles, values}), optional
junk_cycles (valid traffic before a mid-run reset) and stats_file (JSON: cycles, seconds).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from hwgen.rtl.pe import result_layout, token_layout
from hwgen.rtl.systolic import systolic_golden
from hwgen.sim.tb.common import draw_tile_positions, load_params

__all__ = ["Stimulus", "build_stimulus", "check_outputs", "unpack_col_out"]

DIRECT_LATENCY = 2
WEIGHT_LEAD = 1  # weights one cycle before their tokens (SystolicArray.weight_lead)


@dataclass
class Stimulus:
    rows: int
    cols: int
    row_in: list[int]
    col_w: list[int]
    w_direct: list[int]
    direct: list[int]
    expect: dict[tuple[int, int], int] = field(default_factory=dict)  # (cycle, col) -> value
    tiles: int = 0
    out_latency: int = 0  # the contract's value the expectations were placed with

    @property
    def cycles(self) -> int:
        return len(self.row_in)


def _set(word: int, offset: int, width: int, value: int) -> int:
    mask = ((1 << width) - 1) << offset
    return (word & ~mask) | ((value << offset) & mask)


def _operands(rng: random.Random, shape: tuple[int, ...], width: int, kind: str) -> np.ndarray:
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    n = int(np.prod(shape))
    if kind == "random":
        vals = [rng.randint(lo, hi) for _ in range(n)]
    elif kind == "extreme":
        vals = [rng.choice((lo, hi)) for _ in range(n)]
    elif kind == "min":
        vals = [lo] * n
    elif kind == "mixed":
        vals = [
            rng.choice((lo, hi)) if rng.random() < 0.3 else rng.randint(lo, hi) for _ in range(n)
        ]
    else:
        raise ValueError(f"unknown operand kind {kind!r}")
    return np.array(vals, dtype=np.int64).reshape(shape)


def build_stimulus(p: dict) -> Stimulus:
    r, c = p["rows"], p["cols"]
    aw, ww, lat = p["a_width"], p["w_width"], p["mult_latency"]
    out_latency = lat + r + 2  # the documented contract, independent of the RTL's property
    rng = random.Random(p["seed"])
    tok = token_layout(aw)
    tw = tok.size
    off_v, off_f, off_l, off_a = (tok[n].offset for n in ("valid", "first", "last", "a"))

    placed: list[tuple[int, str, np.ndarray, np.ndarray, list[int]]] = []  # (s, mode, a, w, pos)
    switches: list[tuple[int, int]] = []  # (cycle, direct value) from that cycle on
    expect: dict[tuple[int, int], int] = {}
    prev_last0 = None
    prev_mode = None
    for layer in p["layers"]:
        mode = layer["mode"]
        dval = 1 if mode == "direct" else 0
        first_tile = True
        for _ in range(layer["tiles"]):
            k, pos = draw_tile_positions(rng, layer)
            if prev_last0 is None:
                s = DIRECT_LATENCY + 1
            else:
                s = max(prev_last0 + 1, prev_last0 + r - pos[-1])
                if first_tile and mode != prev_mode:
                    # `direct` may change only once the previous layer has left the mesh.
                    s = max(s, prev_last0 + r + c - 1)
            if layer.get("gaps"):
                s += rng.choice((0, 0, 1, rng.randint(0, 2 * r + 3)))
            if first_tile:
                switches.append((s - DIRECT_LATENCY if prev_last0 is not None else 0, dval))
            a = _operands(rng, (1, r, k), aw, layer.get("values", "random"))
            w_shape = (1, r, c, k) if mode == "direct" else (1, c, k)
            w = _operands(rng, w_shape, ww, layer.get("values", "random"))
            gold = systolic_golden(a, w, p["acc_width"])[0]
            t_last0 = s + pos[-1]
            for i in range(r):
                for j in range(c):
                    key = (t_last0 + j + i + out_latency, j)
                    assert key not in expect, f"schedule collision at {key}"
                    expect[key] = int(gold[i, j])
            placed.append((s, mode, a[0], w[0], pos))
            prev_last0 = t_last0
            prev_mode = mode
            first_tile = False

    n = max(t for t, _ in expect) + r + 4
    row_in = [rng.getrandbits(r * tw) for _ in range(n)]
    vmask = sum(1 << (i * tw + off_v) for i in range(r))
    row_in = [x & ~vmask for x in row_in]
    col_w = [rng.getrandbits(c * ww) for _ in range(n)]
    w_direct = [rng.getrandbits(r * c * ww) for _ in range(n)]
    direct = [0] * n
    for cyc, val in switches:
        for t in range(cyc, n):
            direct[t] = val

    for s, mode, a, w, pos in placed:
        k = len(pos)
        for kk, ps in enumerate(pos):
            for i in range(r):
                t = s + ps + i
                base = i * tw
                word = row_in[t]
                word = _set(word, base + off_v, 1, 1)
                word = _set(word, base + off_f, 1, int(kk == 0))
                word = _set(word, base + off_l, 1, int(kk == k - 1))
                row_in[t] = _set(word, base + off_a, aw, int(a[i, kk]))
            if mode == "conv":
                for j in range(c):
                    t = s + ps + j - WEIGHT_LEAD
                    col_w[t] = _set(col_w[t], j * ww, ww, int(w[j, kk]))
            else:
                for i in range(r):
                    for j in range(c):
                        t = s + ps + i + j - WEIGHT_LEAD
                        w_direct[t] = _set(w_direct[t], (i * c + j) * ww, ww, int(w[i, j, kk]))
    return Stimulus(r, c, row_in, col_w, w_direct, direct, expect, len(placed), out_latency)


def unpack_col_out(word: int, cols: int, acc_width: int) -> list[int | None]:
    lay = result_layout(acc_width)
    ew, ov, od = lay.size, lay["valid"].offset, lay["data"].offset
    out: list[int | None] = []
    for j in range(cols):
        e = word >> (j * ew)
        if not (e >> ov) & 1:
            out.append(None)
            continue
        d = (e >> od) & ((1 << acc_width) - 1)
        out.append(d - (1 << acc_width) if d >> (acc_width - 1) else d)
    return out


def check_outputs(stim: Stimulus, got: list[list[int | None]]) -> None:
    """Every cycle, every column: exactly the expected value at exactly its cycle."""
    errors = []
    for t, row in enumerate(got):
        for j, v in enumerate(row):
            want = stim.expect.get((t, j))
            if v != want:
                errors.append(f"cycle {t} col {j}: got {v} want {want}")
    seen = sum(v is not None for row in got for v in row)
    assert not errors, (
        f"{len(errors)} mismatches ({seen} valid outputs, "
        f"{len(stim.expect)} expected); first: " + "; ".join(errors[:8])
    )
    assert seen == len(stim.expect) == stim.tiles * stim.rows * stim.cols


async def _junk_then_reset(dut, rng: random.Random, p: dict, cycles: int) -> None:
    """Valid traffic with random first/last, then a reset edge that still sees valid tokens:
    nothing of it may come out afterwards."""
    r, c = p["rows"], p["cols"]
    tw = token_layout(p["a_width"]).size
    for cyc in range(cycles + 1):
        dut.rst.value = int(cyc == cycles)
        dut.row_in.value = rng.getrandbits(r * tw) | sum(1 << (i * tw) for i in range(r))
        dut.col_w.value = rng.getrandbits(c * p["w_width"])
        dut.w_direct.value = rng.getrandbits(r * c * p["w_width"])
        await RisingEdge(dut.clk)
    dut.rst.value = 0


@cocotb.test()
async def tiles_bit_exact(dut) -> None:
    p = load_params()
    stim = build_stimulus(p)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.row_in.value = 0
    dut.col_w.value = 0
    dut.w_direct.value = 0
    dut.direct.value = stim.direct[0]
    dut.rst.value = 1
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    if p.get("junk_cycles"):
        await _junk_then_reset(dut, random.Random(p["seed"] + 1), p, p["junk_cycles"])

    got: list[list[int | None]] = []
    t0 = time.perf_counter()
    for t in range(stim.cycles):
        dut.row_in.value = stim.row_in[t]
        dut.col_w.value = stim.col_w[t]
        dut.w_direct.value = stim.w_direct[t]
        dut.direct.value = stim.direct[t]
        await ReadOnly()
        got.append(dut.col_out.value.to_unsigned())
        await RisingEdge(dut.clk)
    dt = time.perf_counter() - t0
    dut._log.info("%d cycles in %.3f s: %.0f cycles/s", stim.cycles, dt, stim.cycles / dt)
    if p.get("stats_file"):
        with open(p["stats_file"], "w") as f:
            json.dump({"cycles": stim.cycles, "seconds": dt}, f)
    check_outputs(stim, [unpack_col_out(w, p["cols"], p["acc_width"]) for w in got])
