"""Secret-share multiply unit: the elementwise Beaver product, ``lanes`` at a time.

Per lane, with the opened masked operands d = x − a and e = y − b and the party's shares
[a], [b], [c] of a triple (c = a·b):

    [z] = [c] + d·[b] + e·[a] + (party 0 only) d·e          (mod 2**k)

so the two parties' outputs add up to x·y (``hwgen.secure.beaver.local_product_elementwise``).
The three products go through ``Multiplier`` (latency ``mult_latency``); ``c``, ``p0`` and
``valid`` follow in a matching delay line and one register adds the terms, so ``z`` / ``valid``
appear ``latency = mult_latency + 1`` cycles after the inputs. No stall (static pipeline).
"""

from __future__ import annotations

import numpy as np
from amaranth import Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hwgen.rtl.mult import Multiplier

__all__ = ["ShareMul", "share_mul_golden"]


def share_mul_golden(party: int, d, e, a, b, c, k: int) -> np.ndarray:
    """[z] of one party, every value a ring element (non-negative, < 2**k)."""
    d, e, a, b, c = (np.asarray(v, dtype=object) for v in (d, e, a, b, c))
    z = c + d * b + e * a + (d * e if party == 0 else 0)
    return np.asarray(z % (1 << k), dtype=object)


class ShareMul(wiring.Component):
    def __init__(self, *, k: int = 32, lanes: int = 4, mult_latency: int = 3) -> None:
        if k not in (32, 64) and not (isinstance(k, int) and 2 <= k <= 64):
            raise ValueError(f"Ring width must be an integer in 2..64, not {k!r}")
        if not isinstance(lanes, int) or lanes < 1:
            raise ValueError(f"Lanes must be a positive integer, not {lanes!r}")
        self.k, self.lanes, self.mult_latency = k, lanes, mult_latency
        vec = data.ArrayLayout(unsigned(k), lanes)
        super().__init__({
            "valid": In(1), "p0": In(1),
            "a": In(vec), "b": In(vec), "c": In(vec), "d": In(vec), "e": In(vec),
            "z_valid": Out(1), "z": Out(vec),
        })

    @property
    def latency(self) -> int:
        return self.mult_latency + 1

    def elaborate(self, platform) -> Module:
        m = Module()
        k, lat = self.k, self.mult_latency
        # valid, p0 and c wait for the products
        valid, p0 = self.valid, self.p0
        cs = [self.c[i] for i in range(self.lanes)]
        for s in range(lat):
            v, p = Signal(name=f"valid_d{s}"), Signal(name=f"p0_d{s}", reset_less=True)
            m.d.sync += [v.eq(valid), p.eq(p0)]
            valid, p0 = v, p
            nc = [Signal(unsigned(k), name=f"c{i}_d{s}", reset_less=True)
                  for i in range(self.lanes)]
            m.d.sync += [n.eq(o) for n, o in zip(nc, cs, strict=True)]
            cs = nc
        for i in range(self.lanes):
            prods = []
            for name, x, y in (("db", self.d[i], self.b[i]), ("ea", self.e[i], self.a[i]),
                               ("de", self.d[i], self.e[i])):
                mul = Multiplier(a_width=k, b_width=k, latency=lat, is_signed=False)
                m.submodules[f"{name}{i}"] = mul
                m.d.comb += [mul.a.eq(x), mul.b.eq(y)]
                prods.append(mul.p[:k])
            z = Signal(unsigned(k), name=f"z{i}", reset_less=True)
            m.d.sync += z.eq(cs[i] + prods[0] + prods[1] + Mux(p0, prods[2], 0))
            m.d.comb += self.z[i].eq(z)
        zv = Signal()
        m.d.sync += zv.eq(valid)
        m.d.comb += self.z_valid.eq(zv)
        return m
