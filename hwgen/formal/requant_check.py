"""Formal harness: the pipelined :class:`~hwgen.rtl.requant.Requant` lane equals a
combinational specification of the integer contract, for every input sequence.

The specification is written here, independently of the unit, in the form of
``hwgen.quant.fixedpoint`` (gemmlowp's own formulation) rather than the unit's pipelined one:

    s   = wrap32(acc + bias)
    q   = INT32_MAX                     if s == mult == INT32_MIN
          (s * mult + 2**30) >> 31      otherwise                          (SRDHM)
    y   = (q >> e) + ((q & mask) > (mask >> 1) + (q < 0)),  mask = 2**e-1  (RDBPOT)
    out = min(max(y, lo), hi)                                              (np.clip)

The harness's input ports are the unit's input stream: top-level inputs are free on every
step of the BMC (valid, acc, bias, mult, shift, lo, hi all unconstrained, garbage on invalid
cycles included), keeps the inputs in a
delay line of the unit's own ``latency`` and asserts on every cycle that ``o_stream.valid``
is the delayed valid and that the payload of a valid output equals the specification of the
delayed input.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.hdl import Assert
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from hwgen.rtl.requant import Requant, requant_in_layout

__all__ = ["RequantSpecHarness", "requant_spec"]

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def _reg(m: Module, value, n: int, name: str):
    """``value`` through ``n`` reset-less registers (init 0)."""
    for i in range(n):
        r = Signal.like(value, name=f"{name}_d{i + 1}", reset_less=True)
        m.d.sync += r.eq(value)
        value = r
    return value


def requant_spec(m: Module, s, mult, shift, lo, hi, *, mutant: str | None = None) -> Signal:
    """Combinational spec of one lane after its 32-bit sum ``s = wrap32(acc + bias)``.

    ``mutant`` breaks one rule on purpose (the negative test shows the check can fail):
    ``"srdhm_sat"`` drops the INT32_MIN*INT32_MIN saturation, ``"rdbpot_ties"`` rounds
    negative ties toward +inf instead of away from zero.
    """
    prod = Signal(signed(64))
    m.d.comb += prod.eq(s * mult)
    q = Signal(signed(32))
    sat = (s == INT32_MIN) & (mult == INT32_MIN)
    if mutant == "srdhm_sat":
        sat = 0
    m.d.comb += q.eq(Mux(sat, INT32_MAX, ((prod + (1 << 30)) >> 31)[:32].as_signed()))
    e = shift
    mask = Signal(32)
    m.d.comb += mask.eq(((Const(1, 33) << e) - 1)[:32])  # 2**e - 1
    rem = Signal(32)
    m.d.comb += rem.eq(q.as_unsigned() & mask)
    neg = q < 0
    if mutant == "rdbpot_ties":
        neg = 0
    threshold = Signal(33)
    m.d.comb += threshold.eq((mask >> 1) + neg)
    y = Signal(signed(33))
    m.d.comb += y.eq((q >> e) + (rem > threshold))
    clipped = Signal(signed(33))
    m.d.comb += clipped.eq(Mux(y < lo, lo, y))
    out = Signal(signed(8))
    m.d.comb += out.eq(Mux(clipped > hi, hi, clipped))
    return out


class RequantSpecHarness(wiring.Component):
    """BMC harness for one ``Requant(acc_width=..., mult_latency=...)`` lane; its ports are
    the free inputs."""

    def __init__(
        self,
        *,
        acc_width: int = 32,
        mult_latency: int = 3,
        pre_mult: int = 2,
        mutant: str | None = None,
    ) -> None:
        self.acc_width = acc_width
        self.mult_latency = mult_latency
        self.mutant = mutant
        self.pre_mult = pre_mult
        super().__init__({"valid": In(1), "payload": In(requant_in_layout(acc_width))})

    # yosys commands for runner.prove: once the spec's product and the unit's are merged
    # into one cell, make that product a free value. The check then holds for *every* product
    # value, which covers the real one (an over-approximation: a pass is sound), and no SAT
    # solver has to reason through a 32x32 multiplier. Were the two products not merged (the
    # unit's operands from another cycle), each would be free on its own and the check fails.
    script = ("cutpoint t:$mul",)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.dut = dut = Requant(acc_width=self.acc_width, mult_latency=self.mult_latency)
        p, valid = self.payload, self.valid
        m.d.comb += [dut.i_stream.payload.eq(p), dut.i_stream.valid.eq(valid)]
        lat, pre = dut.latency, self.pre_mult
        # The spec's operands are registered as many times as the unit's own before its
        # multiplier, so that yosys merges the two 32x32 products into one (no SAT solver
        # proves two multipliers equal); everything after the product is the spec's own.
        s = _reg(m, (p.acc + p.bias)[:32].as_signed(), pre, "s")
        mult = _reg(m, p.mult, pre, "mult")
        side = _reg(m, Cat(p.shift, p.lo, p.hi), pre, "side")
        want = _reg(
            m,
            requant_spec(
                m, s, mult, side[:5], side[5:13].as_signed(), side[13:21].as_signed(),
                mutant=self.mutant,
            ),
            lat - pre,
            "want",
        )  # fmt: skip
        d_valid = valid
        for n in range(lat):  # with reset, like the unit's valid pipeline
            nxt = Signal(name=f"valid_d{n + 1}")
            m.d.sync += nxt.eq(d_valid)
            d_valid = nxt
        m.d.comb += Assert(dut.o_stream.valid == d_valid)
        with m.If(d_valid):
            m.d.comb += Assert(dut.o_stream.payload == want)
        return m
