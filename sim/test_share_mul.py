# amaranth: UnusedElaboratable=no
"""ShareMul (secret-share multiply unit): golden = the protocol's elementwise Beaver lane;
cycle-exact in the Amaranth simulator and in Verilator; both parties reconstruct x·y."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth import Value
from amaranth.sim import Simulator

from hwgen.rtl.share_mul import ShareMul, share_mul_golden
from hwgen.secure.beaver import local_product_elementwise
from hwgen.secure.ring import Ring
from hwgen.sim.runner import run_unit
from hwgen.sim.tb.share_mul_tb import beaver_stream, check_stream, pack_inputs


def test_golden_is_the_protocol_lane() -> None:
    g = np.random.default_rng(1)
    for k in (32, 64):
        ring = Ring(k)
        v = [g.integers(0, 2**62, 50).astype(np.uint64) & ring.mask for _ in range(5)]
        for party in (0, 1):
            want = local_product_elementwise(party, *v, ring)
            got = share_mul_golden(party, *[x.astype(object) for x in v], k)
            assert [int(a) for a in got] == [int(b) for b in want]


def test_beaver_stream_reconstructs_products() -> None:
    st = beaver_stream(seed=2, k=32, lanes=3, n=40)
    z0 = np.array([share_mul_golden(0, *s["ops0"], 32) for s in st["items"]], dtype=object)
    z1 = np.array([share_mul_golden(1, *s["ops1"], 32) for s in st["items"]], dtype=object)
    prod = np.array([s["xy"] for s in st["items"]], dtype=object)
    assert np.array_equal((z0 + z1) % (1 << 32), prod % (1 << 32))


@pytest.mark.parametrize("k,lanes,lat", [(32, 3, 3), (64, 2, 1)])
def test_share_mul_amaranth(k: int, lanes: int, lat: int) -> None:
    dut = ShareMul(k=k, lanes=lanes, mult_latency=lat)
    st = beaver_stream(seed=k + lanes, k=k, lanes=lanes, n=30)
    ins = pack_inputs(st, k, lanes)
    got = []

    async def bench(ctx) -> None:
        for cyc in ins:
            for name, val in cyc.items():
                ctx.set(Value.cast(getattr(dut, name)), val)
            got.append((ctx.get(dut.z_valid), [ctx.get(dut.z[i]) for i in range(lanes)]))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    check_stream(st, got, dut.latency, k)


def test_share_mul_checks() -> None:
    with pytest.raises(ValueError, match="Lanes must be a positive integer"):
        ShareMul(lanes=0)


@pytest.mark.rtl
def test_share_mul_rtl() -> None:
    dut = ShareMul(k=32, lanes=4, mult_latency=3)
    run_unit(dut, toplevel="share_mul", test_module="hwgen.sim.tb.share_mul_tb",
             name="share_mul_k32_l4", params={"seed": 5, "k": 32, "lanes": 4, "n": 200,
                                              "latency": dut.latency})
