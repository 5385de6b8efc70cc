"""cocotb body for Pool2d, plus the stimulus/expectation helpers the Amaranth-sim test shares.

A run is a list of layers (cfg + start pulse + several channel groups of random maps), turned
into a per-cycle input schedule and the exact expected output trace: each pooled pixel is due
``latency`` cycles after the beat carrying its window's bottom-right pixel.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from hwgen.rtl.pool import PoolMode, pool_cfg_layout, pool_golden
from hwgen.sim.tb.common import load_params, rng_from_env, start_clock_and_reset


@dataclass(frozen=True)
class Layer:
    h: int
    w: int
    k: int
    mode: PoolMode
    groups: int = 2
    fill: int | None = None  # constant map value instead of random

    def cfg(self) -> dict[str, int]:
        shift = 2 * (self.k.bit_length() - 1) if self.mode is PoolMode.AVG else 0
        return {
            "in_w": self.w,
            "in_h": self.h,
            "k": self.k,
            "mode": self.mode.value,
            "avg_shift": shift,
        }


@dataclass
class Cycle:
    cfg: dict[str, int]
    start: bool = False
    pixel: list[int] | None = None  # None: valid low


@dataclass
class Run:
    cycles: list[Cycle] = field(default_factory=list)
    expected: dict[int, list[int]] = field(default_factory=dict)  # cycle -> output lanes


def standard_layers(max_out_width: int) -> list[Layer]:
    """Both modes, k = 1/2/3/4, floor-mode drops, out_w = 1, a full line buffer, extremes."""
    if max_out_width < 4:
        raise ValueError(f"standard_layers needs max_out_width >= 4, not {max_out_width}")
    mx, av = PoolMode.MAX, PoolMode.AVG
    return [
        Layer(8, 8, 2, mx),
        Layer(8, 8, 2, av),
        Layer(9, 7, 2, mx, groups=3),  # odd: last row and column dropped
        Layer(11, 9, 4, av),  # 3 rows and 1 column dropped
        Layer(2, 2, 2, av, groups=4),  # out 1x1, beats back to back hit one buffer column
        Layer(3, 3, 2, mx, groups=3),  # out_w = 1 with drops
        Layer(2, 3, 2, av, groups=3),
        Layer(5, 4, 4, mx),  # out 1x1, k = 4
        Layer(4, 5, 1, mx),  # k = 1: passthrough
        Layer(3, 4, 1, av),
        Layer(7, 10, 3, mx),  # non-power-of-two window (max only)
        Layer(1, 6, 2, mx),  # out_h = 0: no output at all
        Layer(5, 2 * max_out_width + 1, 2, av, groups=1),  # every line-buffer row in use
        Layer(8, 4 * max_out_width, 4, av, groups=1),
        Layer(4, 4, 4, av, groups=1, fill=-128),  # sum = -2048: the narrowest partial
        Layer(4, 8, 4, av, groups=1, fill=127),
        Layer(4, 4, 4, mx, groups=1, fill=-128),
        Layer(12, min(12, 2 * max_out_width), 2, mx, groups=3),
        Layer(12, min(12, 2 * max_out_width) + 1, 2, av, groups=3),
    ]


def build_run(
    rng: random.Random,
    lanes: int,
    layers: list[Layer],
    gap_prob: float,
    latency: int,
    max_out_width: int,
) -> Run:
    """Cycle-accurate stimulus and expected outputs for ``layers`` played one after another."""
    for layer in layers:  # the unit's documented capacity
        assert layer.w // layer.k <= max_out_width, layer
    nrng = np.random.default_rng(rng.getrandbits(63))
    run = Run()
    # Beats before the first start must be ignored; k = 1 would emit one per beat if not.
    cfg = Layer(4, 4, 1, PoolMode.MAX).cfg()
    run.cycles += [Cycle(cfg, pixel=[rng.randint(-128, 127) for _ in range(lanes)]) for _ in "ab"]
    for layer in layers:
        cfg = layer.cfg()
        # Sometimes a (junk) beat rides on the start cycle: the unit must drop it.
        junk = [rng.randint(-128, 127) for _ in range(lanes)] if rng.random() < 0.3 else None
        # cfg is valid from the cycle before start (the controller's descriptor): the
        # layer before's last beat comes two cycles before start at the latest
        run.cycles.append(Cycle(cfg))
        run.cycles.append(Cycle(cfg, start=True, pixel=junk))
        if gap_prob:
            run.cycles += [Cycle(cfg) for _ in range(rng.randint(0, 2))]
        k, oh, ow = layer.k, layer.h // layer.k, layer.w // layer.k
        for _ in range(layer.groups):
            if layer.fill is None:
                x = nrng.integers(-128, 128, size=(layer.h, layer.w, lanes))
            else:
                x = np.full((layer.h, layer.w, lanes), layer.fill)
            want = pool_golden(x, k, layer.mode)
            for yy in range(layer.h):
                for xx in range(layer.w):
                    while rng.random() < gap_prob:
                        run.cycles.append(Cycle(cfg))
                    t = len(run.cycles)
                    run.cycles.append(Cycle(cfg, pixel=[int(v) for v in x[yy, xx]]))
                    if yy < oh * k and xx < ow * k and yy % k == k - 1 and xx % k == k - 1:
                        run.expected[t + latency] = [int(v) for v in want[yy // k, xx // k]]
    run.cycles += [Cycle(cfg) for _ in range(latency + 3)]  # drain
    return run


def pack_lanes(values: list[int]) -> int:
    return sum((v & 0xFF) << (8 * i) for i, v in enumerate(values))


def unpack_lanes(word: int, lanes: int) -> list[int]:
    out = []
    for i in range(lanes):
        b = (word >> (8 * i)) & 0xFF
        out.append(b - 256 if b & 0x80 else b)
    return out


def pack_cfg(cfg: dict[str, int], max_kernel: int, dim_width: int) -> int:
    word = 0
    for name, f in pool_cfg_layout(max_kernel, dim_width):
        word |= (cfg[name] & ((1 << f.width) - 1)) << f.offset
    return word


async def _drive_and_check(dut, run: Run, p: dict) -> None:
    lanes = p["lanes"]
    n_out = 0
    for t, cyc in enumerate(run.cycles):
        dut.cfg.value = pack_cfg(cyc.cfg, p["max_kernel"], p["dim_width"])
        dut.start.value = int(cyc.start)
        dut.i_stream__valid.value = int(cyc.pixel is not None)
        # Garbage lanes when idle: the unit must ignore them.
        dut.i_stream__payload.value = pack_lanes(
            cyc.pixel or [(t * 37 + i) % 256 - 128 for i in range(lanes)]
        )
        await ReadOnly()
        want = run.expected.get(t)
        valid = int(dut.o_stream__valid.value)
        assert valid == (want is not None), f"cycle {t}: o.valid={valid}, want {want}"
        if want is not None:
            got = unpack_lanes(int(dut.o_stream__payload.value), lanes)
            assert got == want, f"cycle {t}: got {got} want {want}"
            n_out += 1
        await RisingEdge(dut.clk)
    assert n_out == len(run.expected)


@cocotb.test()
async def back_to_back(dut) -> None:
    p = load_params()
    layers = standard_layers(p["max_out_width"])
    run = build_run(rng_from_env(), p["lanes"], layers, 0.0, p["latency"], p["max_out_width"])
    await start_clock_and_reset(dut)
    await _drive_and_check(dut, run, p)


@cocotb.test()
async def with_gaps(dut) -> None:
    p = load_params()
    rng = random.Random(rng_from_env().getrandbits(64))  # other maps than back_to_back
    layers = standard_layers(p["max_out_width"])
    rng.shuffle(layers)
    run = build_run(rng, p["lanes"], layers, 0.35, p["latency"], p["max_out_width"])
    await start_clock_and_reset(dut)
    await _drive_and_check(dut, run, p)
