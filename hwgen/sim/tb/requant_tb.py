"""cocotb body for the requant lane, plus the stimulus/expectation helpers the Amaranth-sim test
shares: vectors, a beat schedule with gaps, and the expected output trace (value per cycle)."""

from __future__ import annotations

import random

import cocotb
from amaranth.lib import data
from cocotb.triggers import ReadOnly, RisingEdge

from hwgen.rtl.requant import requant_golden, requant_in_layout
from hwgen.sim.tb.common import load_params, rng_from_env, start_clock_and_reset

I32_MIN, I32_MAX = -(2**31), 2**31 - 1
FIELDS = ("acc", "bias", "mult", "shift", "lo", "hi")

Vector = dict[str, int]


def _v(acc: int, bias: int, mult: int, shift: int, lo: int = -128, hi: int = 127) -> Vector:
    return dict(zip(FIELDS, (acc, bias, mult, shift, lo, hi), strict=True))


def corner_vectors(acc_width: int = 32) -> list[Vector]:
    """Hand-checked cases: extremes, SRDHM saturation, both rounding ties, ReLU clamp."""
    amin, amax = -(1 << (acc_width - 1)), (1 << (acc_width - 1)) - 1
    half = 1 << 30  # M = 2**30 is x0.5: SRDHM(a, 2**30) = floor(a/2 + 1/2)
    vs = [
        _v(0, 0, 0, 0),
        _v(amin, 0, I32_MAX, 0),  # -> clamp lo
        _v(amax, 0, I32_MAX, 0),  # -> clamp hi
        _v(amin, 0, I32_MAX, 31),  # -(2**31-1)/2**31 ~ -1 -> -1
        _v(amax, 0, I32_MAX, 31),
        _v(I32_MIN, 0, I32_MIN, 0),  # SRDHM saturates to INT32_MAX -> 127
        _v(I32_MIN, 0, I32_MIN, 31),  # 2**31-1 >> 31 rounds to 1
        _v(I32_MAX, 0, I32_MIN, 31),
        # M = INT32_MIN with a sum that is INT32_MIN only in one half (the overflow's flags)
        _v(0, I32_MIN, I32_MIN, 0),  # the sum INT32_MIN from the bias: saturates
        _v(1, I32_MIN, I32_MIN, 31),  # a low-half bit: no saturation
        _v(0, I32_MIN + (1 << 20), I32_MIN, 31),  # a high-half bit
        _v(-5, 0, I32_MIN, 0),  # a negative sum with both halves set
        _v(1, 0, half, 0),  # SRDHM tie +0.5 -> 1 (toward +inf)
        _v(-1, 0, half, 0),  # SRDHM tie -0.5 -> 0 (toward +inf)
        _v(3, 0, half, 0),  # 1.5 -> 2
        _v(-3, 0, half, 0),  # -1.5 -> -1
        _v(6, 0, half, 1),  # RDBPOT 3/2 = 1.5 -> 2 (away from zero)
        _v(-6, 0, half, 1),  # -1.5 -> -2
        _v(10, 0, half, 2),  # 5/4 = 1.25 -> 1
        _v(-10, 0, half, 2),  # -1.25 -> -1
        _v(12, 0, half, 3),  # 6/8 = 0.75 -> 1
        _v(-12, 0, half, 3),  # -0.75 -> -1
        _v(-8, 0, half, 3),  # -4/8 = -0.5 -> -1
        _v(8, 0, half, 3),  # 0.5 -> 1
        _v(-1000, 0, I32_MAX, 2, 0, 127),  # ReLU: negative -> 0
        _v(1000, 0, I32_MAX, 4, 0, 127),  # 62.5 -> 63
        _v(500, -1000, I32_MAX, 0, 0, 127),  # bias makes it negative
        _v(amax, 1, I32_MAX, 31),  # the 32-bit sum wraps when acc_width = 32
        _v(amin, -1, I32_MAX, 31),
        _v(I32_MAX, I32_MAX, I32_MAX, 31),
        _v(I32_MIN, I32_MIN, I32_MAX, 0),
        _v(5, 0, (1 << 31) - 1, 31),
        _v(-(1 << 30), 0, 1 << 30, 23),  # -2**29 / 2**23 = -64
        _v(1 << 30, 0, 1 << 30, 22),  # 2**29 / 2**22 = 128 -> 127
        _v(100, 0, 0, 0),  # M = 0 -> 0
        _v(100, 0, -(1 << 30), 0),  # negative M (outside the contract; SRDHM still exact)
        _v(-3, 0, -(1 << 30), 0),  # 1.5 -> 2
        _v(77, 0, I32_MAX, 1, 10, 5),  # lo > hi: np.clip gives hi
    ]
    return [v for v in vs if amin <= v["acc"] <= amax]  # what the acc port can carry


# Floors around the int8 bounds and the byte boundaries of stage D's low-byte add (y =
# floor + round-up: 127 -> 128, -129 -> -128, 255 -> 256, -1 -> 0, ...).
EDGE_FLOORS = (126, 127, 128, 255, 256, 511, 512, -1, -2, -128, -129, -130, -256, -257, -258,
               -512, -513, -514)
EDGE_CLAMPS = ((-128, 127), (0, 127), (-5, 100), (10, 5))  # the last: lo > hi


def clamp_edge_vectors(acc_width: int = 32) -> list[Vector]:
    """Directed cases for the clamp: with M = 2**31 - 1, SRDHM(acc) = acc for |acc| < 2**30,
    so acc = floor * 2**e + r gives RDBPOT's floor and, by r, no round-up (h - 1), a tie
    (h: up iff acc >= 0) or a round-up (h + 1, h + h/2: half and sticky), h = 2**(e-1); e
    from the fine shift alone to two whole bytes (sticky bits in the coarse stage)."""
    amin, amax = -(1 << (acc_width - 1)), (1 << (acc_width - 1)) - 1
    vs = []
    for e in (1, 2, 10, 20):
        h = 1 << (e - 1)
        for f in EDGE_FLOORS:
            for r in sorted({h - 1, h, h + 1, h + (h >> 1)} - {2 * h}):
                lo, hi = EDGE_CLAMPS[len(vs) % len(EDGE_CLAMPS)]
                vs.append(_v(f * (1 << e) + r, 0, I32_MAX, e, lo, hi))
    return [v for v in vs if amin <= v["acc"] <= amax]


def random_vectors(rng: random.Random, n: int, acc_width: int = 32) -> list[Vector]:
    """Mostly in-range results (acc scaled to the shift), some uniform, many exact ties."""
    amin, amax = -(1 << (acc_width - 1)), (1 << (acc_width - 1)) - 1
    out = []
    for _ in range(n):
        shift = rng.randint(0, 31)
        kind = rng.random()
        if kind < 0.2:  # uniform everything
            acc = rng.randint(amin, amax)
            bias = rng.randint(I32_MIN, I32_MAX)
            mult = rng.choice([rng.randint(1 << 30, I32_MAX), rng.randint(I32_MIN, I32_MAX), 0])
        elif kind < 0.4:  # M = 0.5 and small values: frequent ties in both rounding steps
            shift = rng.randint(0, 6)
            acc = rng.randint(-(1 << (shift + 9)), 1 << (shift + 9))
            bias = rng.randint(-16, 16)
            mult = 1 << 30
        else:  # result near int8 range
            b = min(acc_width - 1, max(0, shift + rng.randint(-2, 10)))
            acc = rng.randint(max(amin, -(1 << b)), min(amax, 1 << b))
            bias = rng.randint(-(1 << max(0, b - 2)), 1 << max(0, b - 2))
            mult = rng.randint(1 << 30, I32_MAX)
        r = rng.random()
        lo, hi = (
            (-128, 127)
            if r < 0.5
            else (0, 127)
            if r < 0.8
            else sorted((rng.randint(-128, 127), rng.randint(-128, 127)))
        )
        out.append(_v(acc, bias, mult, shift, lo, hi))
    return out


def schedule(rng: random.Random, n: int, gap_prob: float) -> list[int]:
    """Cycles at which the n beats are presented (strictly increasing, gaps at random)."""
    cycles, t = [], 0
    for _ in range(n):
        while rng.random() < gap_prob:
            t += 1
        cycles.append(t)
        t += 1
    return cycles


def expected_trace(vectors: list[Vector], cycles: list[int], latency: int) -> list[int | None]:
    """Output value per cycle (None = no beat), from requant_golden."""
    want = requant_golden(*([v[f] for v in vectors] for f in FIELDS))
    trace: list[int | None] = [None] * (cycles[-1] + latency + 3)
    for t, w in zip(cycles, want, strict=True):
        trace[t + latency] = int(w)
    return trace


def make_run(rng: random.Random, acc_width: int, n_random: int, gap_prob: float):
    """One run: corner and clamp-edge vectors, then random ones; returns (vectors, beat
    cycles)."""
    vecs = (corner_vectors(acc_width) + clamp_edge_vectors(acc_width)
            + random_vectors(rng, n_random, acc_width))
    return vecs, schedule(rng, len(vecs), gap_prob)


def pack(layout: data.StructLayout, values: Vector) -> int:
    """A struct payload as the flat integer the Verilog port carries."""
    word = 0
    for name, field in layout:
        word |= (values[name] & ((1 << field.width) - 1)) << field.offset
    return word


async def _drive_and_check(dut, vecs: list[Vector], cycles: list[int], p: dict) -> None:
    layout = requant_in_layout(p["acc_width"])
    trace = expected_trace(vecs, cycles, p["latency"])
    beats = dict(zip(cycles, vecs, strict=True))
    for t, want in enumerate(trace):
        v = beats.get(t)
        dut.i_stream__valid.value = int(v is not None)
        # Garbage payload on idle cycles: the unit must ignore it.
        dut.i_stream__payload.value = (
            pack(layout, v) if v else (t * 0x9E3779B97F4A7C15) % (1 << layout.size)
        )
        await ReadOnly()
        valid = int(dut.o_stream__valid.value)
        assert valid == (want is not None), f"cycle {t}: o.valid={valid}, want beat {want}"
        if want is not None:
            got = dut.o_stream__payload.value.to_signed()
            src = beats[t - p["latency"]]
            assert got == want, f"cycle {t}: got {got} want {want} (input {src})"
        await RisingEdge(dut.clk)


@cocotb.test()
async def back_to_back(dut) -> None:
    p = load_params()
    rng = rng_from_env()
    vecs, cycles = make_run(rng, p["acc_width"], p["n_random"], 0.0)
    await start_clock_and_reset(dut)
    await _drive_and_check(dut, vecs, cycles, p)


@cocotb.test()
async def with_gaps(dut) -> None:
    p = load_params()
    rng = random.Random(rng_from_env().getrandbits(64))  # other vectors than back_to_back
    vecs, cycles = make_run(rng, p["acc_width"], p["n_random"], 0.4)
    await start_clock_and_reset(dut)
    await _drive_and_check(dut, vecs, cycles, p)
