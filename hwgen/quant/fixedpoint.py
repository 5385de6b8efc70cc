"""gemmlowp / TFLite integer-only fixed-point primitives, vectorised over NumPy int64.

These functions *define* the integer semantics that the golden model and the hardware's
requant unit must reproduce bit for bit:

    out = clamp(RoundingDivideByPOT(SaturatingRoundingDoubleHighMul(acc, M), shift) + zp,
                lo, hi)

with M an int32 in [2**30, 2**31) (a Q0.31 multiplier in [0.5, 1)) and shift in [0, 31].

Rounding, exactly (checked against ``fractions.Fraction`` in tests/test_fixedpoint.py):

* SRDHM(a, b) = floor(a*b / 2**31 + 1/2): ties round toward +inf, *not* away from zero.
  That is what gemmlowp's nudge (+2**30 for ab >= 0, 1 - 2**30 for ab < 0) followed by
  C's truncating division computes, and it equals the hardware-friendly form
  ``(a*b + 2**30) >> 31`` (arithmetic shift).
* RoundingDivideByPOT(x, e) = x / 2**e rounded to nearest, ties away from zero.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "INT32_MIN",
    "INT32_MAX",
    "srdhm",
    "rounding_divide_by_pot",
    "requantize",
    "quantize_multiplier",
]

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def _i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def _check_int32(name: str, x: np.ndarray) -> None:
    # Outside int32 the int64 product below could overflow silently: refuse instead.
    if x.size and (x.min() < INT32_MIN or x.max() > INT32_MAX):
        raise ValueError(f"{name} must be in int32 range, got [{x.min()}, {x.max()}]")


def srdhm(a, b) -> np.ndarray:
    """SaturatingRoundingDoubleHighMul(a, b) for int32 a, b: floor(a*b / 2**31 + 1/2), saturated.

    Bit-exact gemmlowp, whose C++ is: nudge = ab >= 0 ? 2**30 : 1 - 2**30, then
    (ab + nudge) / 2**31 with C's truncating division. For ab < 0 that is
    -floor((2**31 - 1 - u) / 2**31) with u = ab + 2**30, which equals floor(u / 2**31); for
    ab >= 0 it is floor(u / 2**31) directly. So the whole thing is one arithmetic shift,
    (ab + 2**30) >> 31 (tests/test_fixedpoint.py checks it against a literal transcription).
    Net rounding: to nearest, ties toward +inf. The one overflow case, a == b == INT32_MIN,
    saturates to INT32_MAX.
    """
    a, b = _i64(a), _i64(b)
    _check_int32("srdhm operand a", a)
    _check_int32("srdhm operand b", b)
    q = (a * b + (1 << 30)) >> 31  # |ab| <= 2**62: fits int64
    if a.size and b.size and a.min() == INT32_MIN and b.min() == INT32_MIN:
        q = np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, q)
    return q


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """RoundingDivideByPOT(x, exponent): x / 2**exponent rounded to nearest, ties away from 0."""
    x, e = _i64(x), _i64(exponent)
    if np.any((e < 0) | (e > 31)):
        raise ValueError("RoundingDivideByPOT exponent must be in 0..31")
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)  # bool adds as 0/1 (no temporary casts: this is hot)
    return (x >> e) + (remainder > threshold)


def requantize(acc, multiplier, shift, zero_point=0, lo=-128, hi=127) -> np.ndarray:
    """int32 accumulator -> int8 activation (TFLite MultiplyByQuantizedMultiplier, right shift).

    ``acc`` must already include the bias and lie in int32 (the quantizer proves it does).
    """
    y = rounding_divide_by_pot(srdhm(acc, multiplier), shift) + _i64(zero_point)
    return np.clip(y, _i64(lo), _i64(hi)).astype(np.int64, copy=False)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """Real multiplier in (0, 1) -> (M, shift) with real ~= M * 2**-31 * 2**-shift.

    Same algorithm as TFLite's QuantizeMultiplier (frexp, round half away from zero, carry
    fix-up). M is in [2**30, 2**31), or (0, 0) when real < 2**-32 makes every int32 input
    requantize to 0. Multipliers that round to >= 1 would need a left shift, which this
    hardware does not implement: they raise ValueError (the caller names the layer).
    """
    if not (real > 0.0 and math.isfinite(real)):
        raise ValueError(f"requant multiplier must be positive and finite, got {real!r}")
    if real >= 1.0:
        raise ValueError(f"requant multiplier {real:.6g} >= 1 needs a left shift (unsupported)")
    mant, exp = math.frexp(real)  # real = mant * 2**exp, mant in [0.5, 1)
    # mant * 2**31 is exact in a double and < 2**31, so +0.5 is exact too: std::round semantics
    # (Python's round() would round half to even and differ from TFLite by one LSB).
    m = math.floor(mant * (1 << 31) + 0.5)
    if m == 1 << 31:  # rounding carried into the next power of two
        m //= 2
        exp += 1
    shift = -exp
    if shift < 0:
        # real in (1 - 2**-32, 1) rounds to exactly 1.0: would need M = 2**31 or a left shift.
        raise ValueError(f"requant multiplier {real!r} rounds to 1.0 (needs a left shift)")
    if shift > 31:
        # real < 2**-32 (after rounding): |acc * real| < 1/2 for any int32 acc, so the output
        # is 0 whatever the rounding; encode it as M = 0 (srdhm then yields 0).
        return 0, 0
    return int(m), int(shift)
