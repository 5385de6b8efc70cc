# amaranth: UnusedElaboratable=no
"""The arithmetic seam: configurations, checks, and what the PE/array take from it."""

from __future__ import annotations

import numpy as np
import pytest

from hwgen.cli import main
from hwgen.config import ArrayConfig
from hwgen.rtl.arith import INT8, Arithmetic
from hwgen.rtl.pe import PE
from hwgen.rtl.systolic import SystolicArray


def test_default_is_int8_plaintext() -> None:
    assert Arithmetic.from_config(ArrayConfig()) == INT8 == Arithmetic(8, 8, 32, False)
    pe = PE()
    assert (pe.a_width, pe.w_width, pe.acc_width, pe.arith) == (8, 8, 32, INT8)


@pytest.mark.parametrize("k", [32, 64])
def test_share_config_reaches_every_pe(k: int) -> None:
    cfg = ArrayConfig.shares(k, 2, 3)
    arr = SystolicArray(cfg)
    assert arr.arith == Arithmetic.shares(k) and arr.arith.ring
    assert len(arr.col_out[0].data) == k and len(arr.row_in[0].a) == k
    pe = PE(arith=arr.arith)
    assert pe.acc_width == k and len(pe.w_in) == k


def test_golden_dot_wraps_in_the_ring() -> None:
    a = np.array([[2**31, 3]], dtype=object)
    w = np.array([[2, 2**31 + 1]], dtype=object)
    assert Arithmetic.shares(32).golden_dot(a, w)[0] == -(2**31) + 3
    assert INT8.golden_dot(np.array([[-128] * 4]), np.array([[-128] * 4]))[0] == 4 * 2**14


def test_checks() -> None:
    with pytest.raises(ValueError, match="Share arithmetic needs equal operand"):
        Arithmetic(8, 8, 32, ring=True)
    with pytest.raises(ValueError, match="narrower than a product"):
        Arithmetic(8, 8, 15)
    with pytest.raises(ValueError, match="Ring arithmetic needs a_width = w_width = acc_width"):
        ArrayConfig(2, 2, 8, 8, 32, 3, "ring")
    with pytest.raises(ValueError, match="must be 'int' or 'ring'"):
        ArrayConfig(arithmetic="float")
    with pytest.raises(TypeError, match="PE arithmetic must be an Arithmetic"):
        PE(arith="ring")


def test_sim_secure_bad_input(capsys) -> None:
    assert main(["sim-secure", "-n", "0"]) == 2
    assert "hwgen: error: -n 0" in capsys.readouterr().err
    assert main(["sim-secure", "--model", "nope"]) == 2
    assert "sim-secure takes a zoo model" in capsys.readouterr().err


def test_lo_width_splits_the_accumulator() -> None:
    assert [Arithmetic.shares(k).lo_width for k in (1, 2, 3, 32)] == [1, 1, 2, 16]
    assert INT8.lo_width == 16 and Arithmetic.plaintext(8, 8, 25).lo_width == 13


@pytest.mark.parametrize("k", [1, 3, 8])
def test_pe_sums_shares_mod_2k_in_two_halves(k: int) -> None:
    """A ring PE (no high half at k = 1) sums one tile mod 2**k: tokens at t, weights at
    t - weight_lead, the load pulse result_latency cycles after the last token."""
    from amaranth.sim import Simulator

    rng = np.random.default_rng(k)
    # k-bit ring elements as the signed bit patterns the ports hold
    a, w = (rng.integers(-(1 << (k - 1)), 1 << (k - 1), 9) for _ in range(2))
    pe = PE(arith=Arithmetic.shares(k), mult_latency=2)
    lead, t_last = pe.weight_lead, 2 + len(a) - 1
    got = []

    async def bench(ctx) -> None:
        for t in range(t_last + pe.result_latency + 3):
            n = t - 2  # token n at cycle t
            tok = 0 <= n < len(a)
            ctx.set(pe.a_in.valid, tok)
            ctx.set(pe.a_in.first, n == 0)
            ctx.set(pe.a_in.last, n == len(a) - 1)
            ctx.set(pe.a_in.a, int(a[n]) if tok else 0)
            ctx.set(pe.w_in, int(w[n + lead]) if 0 <= n + lead < len(w) else 0)
            ctx.set(pe.ld_in, t == t_last + pe.result_latency)
            if ctx.get(pe.chain_out.valid):
                got.append(ctx.get(pe.chain_out.data) % (1 << k))
            await ctx.tick()

    sim = Simulator(pe)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got == [int(sum(int(x) * int(y) for x, y in zip(a, w, strict=True)) % (1 << k))]
