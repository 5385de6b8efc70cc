"""Shared cocotb helpers: clock/reset, reading test parameters, random backpressure."""

from __future__ import annotations

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

__all__ = ["start_clock_and_reset", "load_params", "rng_from_env"]


async def start_clock_and_reset(dut, cycles: int = 2) -> None:
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
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
