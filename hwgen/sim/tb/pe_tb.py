"""cocotb body for ``PE``, plus the stimulus builder shared with the Amaranth test.

``build_pe_stimulus(params)`` emulates the PE's place in an array: tiles of K tokens (random
K, optional bubbles and gaps), each tile's ``ld_in`` pulse ``result_latency + d`` cycles after
its ``last`` token with d in 0..rows-1 (the row index it would have; ``last`` tokens at
least ``rows`` apart, d = rows-1 at the tightest spacing included), unrelated valid traffic
on ``chain_in`` whenever ``ld_in`` is low, and garbage on every unused input. Expected per
cycle: the forwarded ``a_out``/``w_out`` (``w_direct`` while ``direct``)/``ld_out`` and
``chain_out`` (loaded result or the
passed-through chain word), all from ``pe_golden``.

Parameters: a_width, w_width, acc_width, mult_latency, rows, seed, layers (as in
``systolic_tb``), chain_traffic, junk_cycles.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from hwgen.rtl.pe import pe_golden, result_layout, token_layout
from hwgen.sim.tb.common import draw_tile_positions, load_params
from hwgen.sim.tb.systolic_tb import _operands

__all__ = ["PEStimulus", "build_pe_stimulus", "check_pe_outputs", "INPUTS", "OUTPUTS"]

INPUTS = ("a_in", "w_in", "w_direct", "direct", "ld_in", "chain_in")
OUTPUTS = ("a_out", "w_out", "ld_out", "chain_out")
DIRECT_LATENCY = 1
WEIGHT_LEAD = 1  # a token's weight is presented one cycle before the token (PE.weight_lead)


@dataclass
class PEStimulus:
    inputs: dict[str, list[int]]  # port -> packed value per cycle
    loads: dict[int, int]  # cycle of chain_out -> expected loaded result
    tiles: int
    a_width: int
    acc_width: int

    @property
    def cycles(self) -> int:
        return len(self.inputs["a_in"])


def build_pe_stimulus(p: dict) -> PEStimulus:
    aw, ww, lat, rows = p["a_width"], p["w_width"], p["mult_latency"], p["rows"]
    res_lat = lat + 2  # the documented contract (PE.result_latency)
    rng = random.Random(p["seed"])
    tok = token_layout(aw)
    res = result_layout(p["acc_width"])

    tiles = []  # (s, mode, a, w, pos, d)
    switches: list[tuple[int, int]] = []
    prev_last = None
    prev_mode = None
    for layer in p["layers"]:
        mode = layer["mode"]
        first_tile = True
        for _ in range(layer["tiles"]):
            k, pos = draw_tile_positions(rng, layer)
            if prev_last is None:
                s = DIRECT_LATENCY + 1
            else:
                s = max(prev_last + 1, prev_last + rows - pos[-1])
            if layer.get("gaps"):
                s += rng.choice((0, 0, 1, rng.randint(0, 2 * rows + 3)))
            if first_tile and mode != prev_mode:
                switches.append(
                    (s - DIRECT_LATENCY if prev_last is not None else 0, int(mode == "direct"))
                )
            # The PE's row index decides how long the result waits for its load pulse.
            d = rows - 1 if rng.random() < 0.3 else rng.randint(0, rows - 1)
            a = _operands(rng, (1, k), aw, layer.get("values", "random"))
            w = _operands(rng, (1, k), ww, layer.get("values", "random"))
            tiles.append((s, mode, a[0], w[0], pos, d))
            prev_last = s + pos[-1]
            prev_mode = mode
            first_tile = False

    n = prev_last + res_lat + rows + 6
    vmask = 1 << tok["valid"].offset
    inputs = {
        "a_in": [rng.getrandbits(tok.size) & ~vmask for _ in range(n)],
        "w_in": [rng.getrandbits(ww) for _ in range(n)],
        "w_direct": [rng.getrandbits(ww) for _ in range(n)],
        "direct": [0] * n,
        "ld_in": [0] * n,
        "chain_in": [rng.getrandbits(res.size) & ~(1 << res["valid"].offset) for _ in range(n)],
    }
    for cyc, val in switches:
        for t in range(cyc, n):
            inputs["direct"][t] = val
    loads: dict[int, int] = {}
    amask = (1 << aw) - 1
    wmask = (1 << ww) - 1
    for s, mode, a, w, pos, d in tiles:
        gold = int(pe_golden(a[None, :], w[None, :], p["acc_width"])[0])
        for kk, ps in enumerate(pos):
            t = s + ps
            inputs["a_in"][t] = (
                (1 << tok["valid"].offset)
                | (int(kk == 0) << tok["first"].offset)
                | (int(kk == len(pos) - 1) << tok["last"].offset)
                | ((int(a[kk]) & amask) << tok["a"].offset)
            )
            port = "w_direct" if mode == "direct" else "w_in"
            inputs[port][t - WEIGHT_LEAD] = int(w[kk]) & wmask
        t_ld = s + pos[-1] + res_lat + d
        assert inputs["ld_in"][t_ld] == 0, "schedule collision"
        inputs["ld_in"][t_ld] = 1
        loads[t_ld + 1] = gold
    if p.get("chain_traffic", True):
        for t in range(n):
            if not inputs["ld_in"][t] and rng.random() < 0.4:
                inputs["chain_in"][t] |= 1 << res["valid"].offset
    return PEStimulus(inputs, loads, len(tiles), aw, p["acc_width"])


def _signed(v: int, width: int) -> int:
    v &= (1 << width) - 1
    return v - (1 << width) if v >> (width - 1) else v


def check_pe_outputs(stim: PEStimulus, got: dict[str, list[int]]) -> None:
    """Compare every output of every cycle (data of invalid chain words is don't-care)."""
    res = result_layout(stim.acc_width)
    ov, od = res["valid"].offset, res["data"].offset
    tok_valid = token_layout(stim.a_width)["valid"].offset
    errors = []
    for t in range(stim.cycles):
        ch = got["chain_out"][t]
        if t == 0:
            if (got["a_out"][0] >> tok_valid) & 1 or got["ld_out"][0] or (ch >> ov) & 1:
                errors.append("cycle 0: a valid bit is set after reset")
            continue
        w_src = "w_direct" if stim.inputs["direct"][t - 1] else "w_in"
        for port_in, port_out in (("a_in", "a_out"), (w_src, "w_out"), ("ld_in", "ld_out")):
            if got[port_out][t] != stim.inputs[port_in][t - 1]:
                errors.append(
                    f"cycle {t}: {port_out}={got[port_out][t]:#x} "
                    f"want {stim.inputs[port_in][t - 1]:#x}"
                )
        valid = (ch >> ov) & 1
        data = _signed(ch >> od, stim.acc_width)
        prev = stim.inputs["chain_in"][t - 1]
        if t in stim.loads:
            want: tuple[int, int | None] = (1, stim.loads[t])
        elif (prev >> ov) & 1:
            want = (1, _signed(prev >> od, stim.acc_width))
        else:
            want = (0, None)
        if (valid, data if valid else None) != want:
            errors.append(f"cycle {t}: chain_out=({valid}, {data}) want {want}")
    assert not errors, f"{len(errors)} mismatches; first: " + "; ".join(errors[:8])


@cocotb.test()
async def pe_bit_exact(dut) -> None:
    p = load_params()
    stim = build_pe_stimulus(p)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    for name in INPUTS:
        getattr(dut, name).value = 0
    dut.direct.value = stim.inputs["direct"][0]
    dut.rst.value = 1
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    if p.get("junk_cycles"):
        # Valid traffic and load pulses, then one reset edge that still sees valid inputs:
        # every valid bit must read 0 in cycle 0.
        rng = random.Random(p["seed"] + 1)
        for c in range(p["junk_cycles"] + 1):
            dut.rst.value = int(c == p["junk_cycles"])
            for name in INPUTS:
                getattr(dut, name).value = rng.getrandbits(len(getattr(dut, name))) | 1
            dut.direct.value = stim.inputs["direct"][0]
            await RisingEdge(dut.clk)
        dut.rst.value = 0
    else:
        await RisingEdge(dut.clk)
    got: dict[str, list[int]] = {name: [] for name in OUTPUTS}
    for t in range(stim.cycles):
        for name in INPUTS:
            getattr(dut, name).value = stim.inputs[name][t]
        await ReadOnly()
        for name in OUTPUTS:
            got[name].append(int(getattr(dut, name).value))
        await RisingEdge(dut.clk)
    check_pe_outputs(stim, got)
