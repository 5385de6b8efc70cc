"""cocotb body for ``ShareMul`` plus the stream builder shared with the Amaranth test.

``beaver_stream`` draws x, y and a triple per lane and item, both parties' operands
(d, e, [a], [b], [c]), and random gaps; each item goes through the unit once per party
(``p0`` = 1 then 0). ``check_stream`` compares every output cycle with the golden lane.
"""

from __future__ import annotations

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from hwgen.rtl.share_mul import share_mul_golden
from hwgen.sim.tb.common import load_params

__all__ = ["beaver_stream", "pack_inputs", "check_stream"]


def beaver_stream(seed: int, k: int, lanes: int, n: int) -> dict:
    rng = random.Random(seed)
    mod = 1 << k
    items = []
    for _ in range(n):
        x = [rng.getrandbits(k) for _ in range(lanes)]
        y = [rng.getrandbits(k) for _ in range(lanes)]
        a = [rng.getrandbits(k) for _ in range(lanes)]
        b = [rng.getrandbits(k) for _ in range(lanes)]
        c = [(ai * bi) % mod for ai, bi in zip(a, b, strict=True)]
        a0 = [rng.getrandbits(k) for _ in range(lanes)]
        b0 = [rng.getrandbits(k) for _ in range(lanes)]
        c0 = [rng.getrandbits(k) for _ in range(lanes)]
        d = [(xi - ai) % mod for xi, ai in zip(x, a, strict=True)]
        e = [(yi - bi) % mod for yi, bi in zip(y, b, strict=True)]
        a1 = [(u - v) % mod for u, v in zip(a, a0, strict=True)]
        b1 = [(u - v) % mod for u, v in zip(b, b0, strict=True)]
        c1 = [(u - v) % mod for u, v in zip(c, c0, strict=True)]
        items.append({"ops0": (d, e, a0, b0, c0), "ops1": (d, e, a1, b1, c1),
                      "xy": [xi * yi for xi, yi in zip(x, y, strict=True)],
                      "gap": rng.choice((0, 0, 0, 1, 3))})
    return {"items": items, "k": k, "lanes": lanes, "seed": seed}


def _vec(vals: list[int], k: int) -> int:
    return sum(v << (i * k) for i, v in enumerate(vals))


def pack_inputs(st: dict, k: int, lanes: int) -> list[dict[str, int]]:
    """Per cycle port values; invalid cycles carry garbage."""
    rng = random.Random(st["seed"] + 99)
    junk = {n: rng.getrandbits(k * lanes) for n in "abcde"}
    cycles = []
    for it in st["items"]:
        for party in (0, 1):
            d, e, a, b, c = it[f"ops{party}"]
            cycles.append({"valid": 1, "p0": int(party == 0), "a": _vec(a, k), "b": _vec(b, k),
                           "c": _vec(c, k), "d": _vec(d, k), "e": _vec(e, k)})
            for _ in range(it["gap"]):
                cycles.append({"valid": 0, "p0": rng.getrandbits(1), **junk})
    cycles += [{"valid": 0, "p0": 0, **junk}] * 8
    return cycles


def check_stream(st: dict, got: list[tuple[int, list[int]]], latency: int, k: int) -> None:
    ins = pack_inputs(st, k, st["lanes"])
    want = []
    it = iter(st["items"])
    cur = None
    for cyc in ins:
        if cyc["valid"]:
            if cyc["p0"]:
                cur = next(it)
            party = 0 if cyc["p0"] else 1
            want.append([int(v) for v in share_mul_golden(party, *cur[f"ops{party}"], k)])
        else:
            want.append(None)
    errors = []
    for t, (v, z) in enumerate(got):
        w = want[t - latency] if t >= latency else None
        if bool(v) != (w is not None) or (w is not None and z != w):
            errors.append(f"cycle {t}: valid={v} z={z} want {w}")
    assert not errors, f"{len(errors)} mismatches; first: " + "; ".join(errors[:4])


@cocotb.test()
async def share_mul_bit_exact(dut) -> None:
    p = load_params()
    st = beaver_stream(p["seed"], p["k"], p["lanes"], p["n"])
    ins = pack_inputs(st, p["k"], p["lanes"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.valid.value = 0
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    got = []
    k, lanes = p["k"], p["lanes"]
    for cyc in ins:
        for name, val in cyc.items():
            getattr(dut, name).value = val
        await ReadOnly()
        zw = int(dut.z.value)
        got.append((int(dut.z_valid.value),
                    [(zw >> (i * k)) & ((1 << k) - 1) for i in range(lanes)]))
        await RisingEdge(dut.clk)
    check_stream(st, got, p["latency"], k)
