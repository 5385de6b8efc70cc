"""Shared cocotb helpers: clock/reset, reading test parameters, random backpressure."""

from __future__ import annotations

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

__all__ = ["start_clock_and_reset", "load_params", "rng_from_env", "draw_tile_positions"]


async def start_clock_and_reset(dut, cycles: int = 2) -> None:
    # impl="gpi": the clock toggles in the simulator's C++ side, not in a Python coroutine
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns", impl="gpi").start())
    dut.rst.value = 1
    await ClockCycles(dut.clk, cycles)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


def load_params() -> dict:
    """The pytest runner writes the test's parameters as JSON and names the file in the env."""
    with open(os.environ["HWGEN_PARAMS"]) as f:
        return json.load(f)


def rng_from_env() -> random.Random:
    return random.Random(int(os.environ.get("HWGEN_SEED", "1")))


def draw_tile_positions(rng: random.Random, layer: dict) -> tuple[int, list[int]]:
    """A tile's K (fixed or drawn from a range) and the cycle offsets of its K elements.

    With ``bubbles`` the elements are spread over up to 2K cycles (invalid tokens between).
    """
    kspec = layer["k"]
    k = kspec if isinstance(kspec, int) else rng.randint(kspec[0], kspec[1])
    extra = rng.randint(0, k) if layer.get("bubbles") else 0
    pos = [0] + sorted(rng.sample(range(1, k + extra), k - 1)) if k > 1 else [0]
    return k, pos
