"""One requantization lane: int32 accumulator + bias -> int8 activation, fully pipelined.

    out = clamp(RDBPOT(SRDHM(wrap32(acc + bias), mult), shift), lo, hi)

bit for bit as :func:`hwgen.quant.fixedpoint.requantize` (SRDHM ties toward +inf with the
INT32_MIN*INT32_MIN saturation, RDBPOT ties away from zero, clip as ``np.clip``).

One input per cycle, no backpressure; ``valid`` travels with the data and the output appears
exactly :attr:`Requant.latency` cycles after its input. Stages (one register each, sized for
ECP5 at 150 MHz):

====  =============================================================  ==========
 #    work                                                           cycles
====  =============================================================  ==========
 A    wrap32(acc + bias)                                             1
 M    32x32 product through the :class:`~hwgen.rtl.mult.Multiplier`   mult_latency
      (beside it: operand == INT32_MIN as OR flags of 16-bit halves,
      the multiplier's from stage A's input, then their AND: overflow)
 B    nudge + high half: (p + 2**30) >> 31, saturate                 1
 C1   rounding shift by e mod 8; sticky of the bits shifted out      1
 C2   rounding shift by 8*(e // 8); half bit; sticky per 8 bits      1
 D    round-up decision, + round-up bit                              1
 E1   clamp flags: y outside int8, low byte vs lo and hi, lo > hi    1
 E2   clamp to [lo, hi]: two muxes                                   1
====  =============================================================  ==========

The rounding shift is two register stages (an 8:1 then a 4:1 mux per bit, each with its part
of the sticky OR beside it) because one 32-bit barrel shift with the sticky mask is six LUT
levels, too deep for 150 MHz on ECP5 (docs/architecture.md "Timing structure"); the clamp is
two for the same reason (the 32-bit compares, then the muxes). ``fold`` (a small device at a slow
clock, hwgen.rtl.traits) drops the registers of B, C1, C2, D and E1: latency mult_latency + 2.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from amaranth import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.quant import fixedpoint
from hwgen.rtl.attrs import UNSHARED
from hwgen.rtl.carry import carry_all, carry_any
from hwgen.rtl.delay import DELAY_RAM_FROM, DelayLine, chain
from hwgen.rtl.mult import Multiplier
from hwgen.rtl.traits import trait

__all__ = [
    "REQUANT_MULT_LATENCY",
    "Requant",
    "requant_golden",
    "requant_in_layout",
    "rdbpot_parts",
    "rdbpot_round_up",
    "rdbpot_shift_coarse",
    "rdbpot_shift_fine",
    "rdbpot_split",
]

INT32_MIN = fixedpoint.INT32_MIN
INT32_MAX = fixedpoint.INT32_MAX
# Depth of the 32x32 product: on ECP5 four fully registered MULT18X18D (three edges), a fabric
# register on their outputs, the middle-sum and final-add stages
# (hwgen.rtl.ecp5_dsp.WIDE_LATENCY); the generic ``*`` matches.
REQUANT_MULT_LATENCY = 6


def requant_in_layout(acc_width: int = 32) -> data.StructLayout:
    """Input payload of one lane: the accumulator and that output channel's parameters."""
    return data.StructLayout(
        {
            "acc": signed(acc_width),
            "bias": signed(32),
            "mult": signed(32),  # Q0.31 multiplier, in [2**30, 2**31) or 0
            "shift": unsigned(5),  # right shift 0..31
            "lo": signed(8),  # activation minimum (0 for a fused ReLU)
            "hi": signed(8),
        }
    )


def requant_golden(acc, bias, mult, shift, lo=-128, hi=127) -> np.ndarray:
    """Reference for one lane (vectorised): ``fixedpoint.requantize(wrap32(acc + bias), ...)``.

    The sum wraps modulo 2**32 like the 32-bit adder; the quantizer proves it never has to.
    """
    s = np.asarray(acc, dtype=np.int64) + np.asarray(bias, dtype=np.int64)
    s = ((s + (1 << 31)) & 0xFFFF_FFFF) - (1 << 31)
    return fixedpoint.requantize(s, mult, shift, 0, lo, hi)


def rdbpot_parts(x: Value, e: Value) -> tuple[Value, Value]:
    """RoundingDivideByPOT split for pipelining: returns ``(x >> e, round_up)``.

    ``RDBPOT(x, e) = (x >> e) + round_up``. With h the bit just below the cut (bit e-1) and
    sticky the OR of the bits under it, ties-away-from-zero rounds up iff
    ``h and (x >= 0 or sticky)``: a negative exact half (h set, nothing below) rounds down.
    e = 0 has no half bit, so no rounding.
    """
    floor, half, sticky = rdbpot_split(x, e)
    return floor, rdbpot_round_up(x[len(x) - 1], half, sticky)


def rdbpot_split(x: Value, e: Value, group: int = 8) -> tuple[Value, Value, Value]:
    """First half of :func:`rdbpot_parts`, for a pipeline register in between: ``(x >> e,
    half bit, sticky)`` with sticky as one OR per ``group`` bits (a few bits, not one wide OR)."""
    w = len(x)
    # One extra fraction bit below x: after the shift its LSB is bit e-1 of x (0 when e = 0).
    t = Cat(Const(0, 1), x).as_signed() >> e
    # Thermometer mask of the bits strictly below bit e-1: no variable-width shifter needed.
    mask = Cat(*(e > i + 1 for i in range(w)))
    below = x.as_unsigned() & mask
    sticky = Cat(*(below[i : i + group].any() for i in range(0, w, group)))
    return t[1:].as_signed(), t[0], sticky


def rdbpot_shift_fine(x: Value, e_lo: Value) -> tuple[Value, Value]:
    """Rounding shift, first stage: ``(y >> e_lo, sticky)`` with ``y = Cat(0, x)`` (one
    fraction bit below x, so that the half bit ends up as the LSB) and ``e_lo`` the low three
    bits of the shift. sticky is the OR of the bits of y shifted out (y's bit 0 is always 0,
    so these are the bits of x strictly below the half bit), as two bits, each the OR of
    three (one OR of six bits and their compares with e_lo was up to four LUT levels)."""
    y = Cat(Const(0, 1), x)
    shifted = y.as_signed() >> e_lo
    out = Cat(*(y[i] & (e_lo > i) for i in range(1, 2 ** len(e_lo) - 1)))
    return shifted, Cat(*(out[i : i + 3].any() for i in range(0, len(out), 3)))


def rdbpot_shift_coarse(y: Value, e_hi: Value) -> tuple[Value, Value, Value]:
    """Second stage on the first's ``y``: ``(x >> e, half bit, sticky)`` for ``e = 8*e_hi +
    e_lo``, shifting y by whole bytes. sticky is one bit per byte shifted out (a few bits for
    the next stage to OR, not one wide OR here)."""
    t = y.as_signed() >> Cat(Const(0, 3), e_hi)
    sticky = Cat(*((e_hi > n) & y[8 * n : 8 * n + 8].any() for n in range(len(y) // 8)))
    return t[1:].as_signed(), t[0], sticky


def rdbpot_round_up(sign: Value, half: Value, sticky: Value) -> Value:
    """Second half: ties away from zero round up iff ``half and (x >= 0 or sticky)``."""
    return half & (~sign | sticky.any())


def _delay(m: Module, sig: Signal, cycles: int, *, reset_less: bool = True) -> Signal:
    """``sig`` through ``cycles`` registers (side data riding beside the multiplier)."""
    names = [sig.name]
    for n in range(cycles):
        names.append(f"{names[-1]}_d{n + 1}")  # (x_d1, x_d1_d2, ...: the names it always had)
    return chain(m, sig, names[1:], reset_less=reset_less)


class _A(NamedTuple):
    """Stage A's registers (`Requant._stage_a`)."""

    sum: Signal
    sum_f: Signal  # the sum's copy for its flags (or `sum` itself)
    lag: int  # the cycles sum_f comes after sum (0 or 1)
    mult: Signal
    mult_any: Signal
    side: Signal
    valid: Signal


class _M(NamedTuple):
    """The product and its side data, delayed to match (`Requant._stage_m`)."""

    prod: Value
    ovf: Signal
    side: Signal
    valid: Signal


class _B(NamedTuple):
    """Stage B's registers, the side data split (`_stage_b`)."""

    q: Signal
    shift: Value
    lo: Value
    hi: Value
    valid: Signal


class _C1(NamedTuple):
    """Stage C1's registers (`_stage_c1`)."""

    y: Signal
    sticky: Signal
    neg: Signal
    side: Signal
    valid: Signal


class _C2(NamedTuple):
    """Stage C2's registers (`_stage_c2`)."""

    floor: Signal
    half: Signal
    neg: Signal
    sticky: Signal
    lohi: Signal
    valid: Signal


class _D(NamedTuple):
    """Stage D's registers (`_stage_d`)."""

    y: Signal
    lohi: Signal
    valid: Signal


class _E1(NamedTuple):
    """Stage E1's registers: y's low byte, lo and hi, the clamp flags (`_stage_e1`)."""

    y8: Signal
    lohi: Signal
    over: Signal
    under: Signal
    gt: Signal
    lt: Signal
    bad: Signal
    valid: Signal


class Requant(wiring.Component):
    """Streaming requant lane (``i_stream`` -> ``o_stream``), see the module docstring.

    Parameters (keyword-only): ``acc_width`` (accumulator width, >= 1; the sum with the bias
    is taken modulo 2**32), ``mult_latency`` (pipeline depth of the 32x32 multiplier seam;
    ``REQUANT_MULT_LATENCY`` = the three MULT18X18D register edges, a fabric register and
    two adds of the partial products).
    """

    def __init__(self, *, acc_width: int = 32, mult_latency: int = REQUANT_MULT_LATENCY,
                 fold: bool = False) -> None:
        if not isinstance(acc_width, int) or not 1 <= acc_width <= 62:
            raise ValueError(f"Accumulator width must be an integer in 1..62, not {acc_width!r}")
        if not isinstance(mult_latency, int) or mult_latency < 1:
            raise ValueError(f"Multiplier latency must be an integer >= 1, not {mult_latency!r}")
        self.acc_width = acc_width
        self.mult_latency = mult_latency
        # fold: stages B, C1, C2, D and E1 without their registers (one long path into E2),
        # for a slow clock on a device short of flip-flops (hwgen.rtl.traits)
        self.fold = fold
        super().__init__(
            {
                "i_stream": In(stream.Signature(requant_in_layout(acc_width), always_ready=True)),
                "o_stream": Out(stream.Signature(signed(8), always_ready=True)),
            }
        )

    @property
    def latency(self) -> int:
        """Cycles from an input beat to its output beat."""
        return self.mult_latency + (2 if self.fold else 7)

    def elaborate(self, platform) -> Module:
        """Stages A, M, B, C1, C2, D, E1 and E2 in order (see the module docstring)."""
        m = Module()
        chain = trait(platform, "carry_chains")  # (hwgen.rtl.carry)
        a = self._stage_a(m, chain, trait(platform, "copy_trees"))
        mo = self._stage_m(m, a, trait(platform, "delay_ram_from", DELAY_RAM_FROM), chain)
        mid = "comb" if self.fold else "sync"  # the domain of stages B, C1, C2, D and E1
        b = _stage_b(m, mid, mo)
        c1 = _stage_c1(m, mid, b)
        c2 = _stage_c2(m, mid, c1)
        d = _stage_d(m, mid, c2)
        e = _stage_e1(m, mid, d, chain)
        self._stage_e2(m, e)
        return m

    def _stage_a(self, m: Module, chain: bool, copy: bool) -> _A:
        """A: the 32-bit sum (wraps modulo 2**32 like the golden) and the operand flags."""
        p = self.i_stream.payload
        a_sum = Signal(signed(32), reset_less=True, attrs=UNSHARED if copy else {})
        a_mult = Signal(signed(32), reset_less=True)
        a_side = Signal(Cat(p.shift, p.lo, p.hi).shape(), reset_less=True)
        a_valid = Signal()
        s = (p.acc + p.bias)[:32].as_signed()
        # The one SRDHM overflow, INT32_MIN * INT32_MIN, decided on the operands beside the
        # multiplier (not after the adder), so that stage B is only an add and a mux:
        # x == INT32_MIN is x[31] with no other bit set. The ORs of the other bits are two
        # 16-bit halves, each a short carry chain (carry_any) straight into a flip-flop, the
        # multiplier's one stage ahead, on the input (timing: the 32-bit all-ones test on
        # a_mult, an inverter and a 17-cell chain after a register that also drives four
        # DSPs, was 7.4 ns routed on the 8x8). Then one LUT per stage (`_stage_m`): mult ==
        # INT32_MIN from its flags, and the overflow from that and the sum's flags.
        a_mult_any = Signal(2, reset_less=True)  # mult[:16] != 0, mult[16:31] != 0
        # with `copy_trees`, the sum's low 31 bits once more for its flags' chains (UNSHARED,
        # both: timing, a_sum also drives four DSPs, and its chain into sum_any was 8.91 ns
        # routed on the 12x16 of 4e43b88), a register after a_sum where the product leaves
        # a cycle for it (mult_latency >= 2): the adder's sum then has one register, which
        # the packer puts in its carry cells (timing: two, and one of them sat by the DSPs,
        # the chain into it 8.07 ns on the 12x16 of c1085d0 seed 2)
        a_sum_f, lag = a_sum, 0
        if copy:
            a_sum_f = Signal(31, name="a_sum_f", reset_less=True, attrs=UNSHARED)
            lag = int(self.mult_latency >= 2)
            m.d.sync += a_sum_f.eq(a_sum[:31] if lag else s[:31])
        m.d.sync += [
            a_sum.eq(s),
            a_mult.eq(p.mult),
            a_mult_any.eq(Cat(carry_any(p.mult[:16], chain), carry_any(p.mult[16:31], chain))),
            a_side.eq(Cat(p.shift, p.lo, p.hi)),
            a_valid.eq(self.i_stream.valid),
        ]
        return _A(a_sum, a_sum_f, lag, a_mult, a_mult_any, a_side, a_valid)

    def _stage_m(self, m: Module, a: _A, ram_from: int, chain: bool) -> _M:
        """M: the product, with everything else delayed to match."""
        L = self.mult_latency
        m.submodules.mult = mult = Multiplier(a_width=32, b_width=32, latency=L)
        m.d.comb += [mult.a.eq(a.sum), mult.b.eq(a.mult)]
        mult_min = Signal(reset_less=True)  # mult == INT32_MIN
        sum_any = Signal(2, reset_less=True)  # sum[:16] != 0, sum[16:31] != 0
        sum_neg = Signal(reset_less=True)
        m.d.sync += [mult_min.eq(a.mult[31] & ~a.mult_any.any()),
                     sum_any.eq(Cat(carry_any(a.sum_f[:16], chain),
                                    carry_any(a.sum_f[16:31], chain))),
                     sum_neg.eq(a.sum[31])]  # fmt: skip
        ovf = Signal()
        # (sum_any comes a.lag cycles after the other two)
        m.d.comb += ovf.eq(_delay(m, mult_min, a.lag) & _delay(m, sum_neg, a.lag)
                           & ~sum_any.any())
        m_ovf = _delay(m, ovf, L - 1 - a.lag)
        # the side data (shift, clamp bounds: 21 bits) in LUT RAM past a few cycles
        m.submodules.side_delay = side = DelayLine(a.side.shape(), L, ram_from=ram_from)
        m.d.comb += side.i.eq(a.side)
        m_side = side.o
        # valid keeps its reset so that no ghost beat leaves the pipe after a reset.
        m_valid = _delay(m, a.valid, L, reset_less=False)
        return _M(mult.p, m_ovf, m_side, m_valid)

    def _stage_e2(self, m: Module, e: _E1) -> None:
        """E2: the clamp (np.clip), into the output register."""
        # np.clip = min(max(y, lo), hi): y > hi and y < lo from the flags, then two muxes.
        above = e.bad | e.over | (~e.under & e.gt)
        below = e.under | (~e.over & e.lt)
        out = Mux(above, e.lohi[8:], Mux(below, e.lohi[:8], e.y8))
        # The payload register is reset-less (read only with valid, which keeps its reset).
        o_data = Signal(signed(8), reset_less=True)
        m.d.sync += [o_data.eq(out), self.o_stream.valid.eq(e.valid)]
        m.d.comb += self.o_stream.payload.eq(o_data)


def _stage_b(m: Module, mid: str, mo: _M) -> _B:
    """B: SRDHM = (p + 2**30) >> 31 = (p >> 31) + p[30]; saturate INT32_MIN*INT32_MIN."""
    b_q = Signal(signed(32), reset_less=True)
    b_side = Signal.like(mo.side, reset_less=True)
    b_valid = Signal()
    prod = mo.prod
    high = (prod >> 31) + prod[30]
    m.d[mid] += [
        b_q.eq(Mux(mo.ovf, INT32_MAX, high[:32].as_signed())),
        b_side.eq(mo.side),
        b_valid.eq(mo.valid),
    ]
    return _B(b_q, b_side[:5], b_side[5:13], b_side[13:21], b_valid)


def _stage_c1(m: Module, mid: str, b: _B) -> _C1:
    """C1: rounding shift by e mod 8 (an 8:1 mux per bit) and the OR of the bits it drops."""
    y1, s1 = rdbpot_shift_fine(b.q, b.shift[:3])
    c1_y = Signal(signed(len(y1)), reset_less=True)
    c1_sticky = Signal(len(s1), reset_less=True)
    c1_neg = Signal(reset_less=True)
    c1_side = Signal(18, reset_less=True, attrs=UNSHARED)  # e // 8, lo, hi
    c1_valid = Signal()
    m.d[mid] += [
        c1_y.eq(y1),
        c1_sticky.eq(s1),
        c1_neg.eq(b.q[31]),
        c1_side.eq(Cat(b.shift[3:], b.lo, b.hi)),
        c1_valid.eq(b.valid),
    ]
    return _C1(c1_y, c1_sticky, c1_neg, c1_side, c1_valid)


def _stage_c2(m: Module, mid: str, c1: _C1) -> _C2:
    """C2: the rest of the shift, by whole bytes (a 4:1 mux), and one sticky bit per byte."""
    floor, half, sticky = rdbpot_shift_coarse(c1.y, c1.side[:2])
    c_floor = Signal(signed(32), reset_less=True)
    c_half = Signal(reset_less=True)
    c_neg = Signal(reset_less=True)
    c_sticky = Signal(len(sticky) + 1, reset_less=True)
    c_lohi = Signal(16, reset_less=True, attrs=UNSHARED)  # equal in every lane
    c_valid = Signal()
    m.d[mid] += [
        c_floor.eq(floor),
        c_half.eq(half),
        c_neg.eq(c1.neg),
        c_sticky.eq(Cat(sticky, c1.sticky.any())),  # (stage D's decision: 7 inputs)
        c_lohi.eq(c1.side[2:]),
        c_valid.eq(c1.valid),
    ]
    return _C2(c_floor, c_half, c_neg, c_sticky, c_lohi, c_valid)


def _stage_d(m: Module, mid: str, c: _C2) -> _D:
    """D: the round-up decision and add (no overflow: e >= 1 whenever up is set)."""
    d_y = Signal(signed(32), reset_less=True)
    d_lohi = Signal(16, reset_less=True, attrs=UNSHARED)
    d_valid = Signal()
    m.d[mid] += [
        d_y.eq(c.floor + rdbpot_round_up(c.neg, c.half, c.sticky)),
        d_lohi.eq(c.lohi),
        d_valid.eq(c.valid),
    ]
    return _D(d_y, d_lohi, d_valid)


def _stage_e1(m: Module, mid: str, d: _D, chain: bool) -> _E1:
    """E1: the clamp flags, each a short function of y, lo and hi."""
    # Flags for np.clip, each a short function: y outside int8 (two wide ORs), byte
    # compares of y's low byte, lo > hi (np.clip then gives hi). One 32-bit compare and
    # the muxes after it were six LUT levels in one stage.
    d_y, d_lohi = d.y, d.lohi
    lo = d_lohi[:8].as_signed()
    hi = d_lohi[8:].as_signed()
    y8 = d_y[:8].as_signed()
    top = d_y[7:]  # all equal iff y fits in int8
    e_y8 = Signal(8, reset_less=True)
    e_lohi = Signal(16, reset_less=True, attrs=UNSHARED)
    e_over = Signal(reset_less=True, name="e_over")
    e_under = Signal(reset_less=True, name="e_under")
    e_gt = Signal(reset_less=True, name="e_gt")
    e_lt = Signal(reset_less=True, name="e_lt")
    e_bad = Signal(reset_less=True, attrs=UNSHARED)
    e_valid = Signal()
    m.d[mid] += [
        e_y8.eq(y8),
        e_lohi.eq(d_lohi),
        # the wide OR/AND of y's top bits, and the byte compares as the sign of a
        # subtraction, on the carry chain (timing: LUT trees and their routes were up
        # to 9.1 ns into these flags on the routed 8x8)
        e_over.eq(~d_y[31] & carry_any(top, chain)),  # y > 127
        e_under.eq(d_y[31] & ~carry_all(top, chain)),  # y < -128
        e_gt.eq((hi - y8)[-1]),  # y8 > hi
        e_lt.eq((y8 - lo)[-1]),  # y8 < lo
        e_bad.eq((hi - lo)[-1]),  # lo > hi
        e_valid.eq(d.valid),
    ]
    return _E1(e_y8, e_lohi, e_over, e_under, e_gt, e_lt, e_bad, e_valid)
