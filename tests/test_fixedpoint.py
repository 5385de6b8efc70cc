"""hwgen.quant.fixedpoint against gemmlowp's definitions and exact rational references.

Rounding conventions (exactly gemmlowp's, checked here):
* SRDHM(a, b) = floor(a*b/2**31 + 1/2): ties go toward +inf (so a negative tie rounds toward
  zero: gemmlowp's nudge is 1 - 2**30 for negative products, not -2**30).
* RoundingDivideByPOT(x, e): round half away from zero.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hwgen.quant.fixedpoint import (
    INT32_MAX,
    INT32_MIN,
    quantize_multiplier,
    requantize,
    rounding_divide_by_pot,
    srdhm,
)

HALF = Fraction(1, 2)
int32s = st.integers(INT32_MIN, INT32_MAX)
mults = st.one_of(st.just(0), st.integers(2**30, 2**31 - 1), st.sampled_from([2**30, 3 * 2**29]))
shifts = st.integers(0, 31)


def floor_half_up(q: Fraction) -> int:
    return math.floor(q + HALF)


def round_half_away(q: Fraction) -> int:
    return int(math.copysign(math.floor(abs(q) + HALF), q))


def ref_srdhm(a: int, b: int) -> int:
    return min(floor_half_up(Fraction(a * b, 2**31)), INT32_MAX)  # only MIN*MIN saturates


def ref_rdbpot(x: int, e: int) -> int:
    return round_half_away(Fraction(x, 2**e))


def ref_requantize(acc: int, m: int, shift: int, lo: int = -128, hi: int = 127) -> int:
    return min(max(ref_rdbpot(ref_srdhm(acc, m), shift), lo), hi)


def gemmlowp_srdhm(a: int, b: int) -> int:
    """Literal transcription of gemmlowp's C++ (int64 product, nudge, truncating division)."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    s = ab + nudge
    return abs(s) // (1 << 31) * (1 if s >= 0 else -1)  # C division truncates toward zero


# -- hand-checked values -----------------------------------------------------------------


@pytest.mark.parametrize(
    "a, b, want",
    [
        (2**30, 2**30, 2**29),
        (INT32_MIN, INT32_MIN, INT32_MAX),  # the one saturating case
        (INT32_MAX, INT32_MAX, INT32_MAX - 1),  # (2**31-1)**2 / 2**31 = 2**31 - 2 + 2**-31
        (INT32_MIN, INT32_MAX, -INT32_MAX),  # exact
        (INT32_MIN, 2**30, -(2**30)),  # exact
        (1, 2**30, 1),  # +0.5 -> 1
        (-1, 2**30, 0),  # -0.5 -> 0 (gemmlowp: negative ties toward zero)
        (-3, 2**30, -1),  # -1.5 -> -1
        (3, 2**30, 2),  # 1.5 -> 2
        (-1, 2**30 + 1, -1),  # just past -0.5
        (0, INT32_MIN, 0),
    ],
)
def test_srdhm_hand_values(a: int, b: int, want: int) -> None:
    assert int(srdhm(a, b)) == want == gemmlowp_srdhm(a, b)


@pytest.mark.parametrize(
    "x, e, want",
    [
        (5, 1, 3),
        (-5, 1, -3),
        (7, 2, 2),
        (-6, 2, -2),
        (6, 2, 2),
        (-7, 2, -2),
        (123, 0, 123),
        (-123, 0, -123),
        (INT32_MIN, 31, -1),
        (INT32_MAX, 31, 1),
        (2**30, 31, 1),
        (-(2**30), 31, -1),
        (2**30 - 1, 31, 0),
        (-(2**30) + 1, 31, 0),
    ],
)
def test_rdbpot_hand_values(x: int, e: int, want: int) -> None:
    assert int(rounding_divide_by_pot(x, e)) == want


def test_rdbpot_rejects_bad_exponent() -> None:
    for e in (-1, 32):
        with pytest.raises(ValueError, match="0..31"):
            rounding_divide_by_pot(1, e)


def test_srdhm_rejects_out_of_int32() -> None:
    with pytest.raises(ValueError, match="int32"):
        srdhm(2**31, 1)
    with pytest.raises(ValueError, match="int32"):
        requantize(INT32_MIN - 1, 2**30, 0)


def test_requantize_hand_values_and_saturation() -> None:
    assert int(requantize(100, 2**30, 0)) == 50
    assert int(requantize(400, 2**30, 1)) == 100
    assert int(requantize(-401, 2**30, 1)) == -100  # srdhm: -200.5 ties up to -200
    assert int(requantize(INT32_MAX, INT32_MAX, 0)) == 127
    assert int(requantize(INT32_MIN, INT32_MAX, 0)) == -128
    assert int(requantize(INT32_MIN, INT32_MAX, 31)) == -1
    assert int(requantize(-5000, 2**30, 0, lo=0)) == 0  # fused ReLU
    assert int(requantize(254, 2**30, 0)) == 127
    assert int(requantize(256, 2**30, 0)) == 127  # 128 saturates
    assert int(requantize(-256, 2**30, 0)) == -128
    assert int(requantize(-258, 2**30, 0)) == -128  # -129 saturates
    assert int(requantize(12345, 0, 0)) == 0  # M = 0 encodes "too small to matter"


def test_requantize_vectorised_per_channel() -> None:
    acc = np.array([[1000, -1000], [3, -3]])
    m = np.array([2**30, 3 * 2**29])
    s = np.array([1, 0])
    got = requantize(acc, m, s)
    want = [
        [ref_requantize(int(a), int(mm), int(ss)) for a, mm, ss in zip(r, m, s, strict=True)]
        for r in acc
    ]
    assert got.tolist() == want
    assert got.dtype == np.int64


# -- properties against exact rationals --------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(int32s, int32s)
@example(INT32_MIN, INT32_MIN)
@example(-1, 2**30)
@example(INT32_MIN, -1)
def test_srdhm_matches_reference_and_gemmlowp(a: int, b: int) -> None:
    got = int(srdhm(a, b))
    assert got == ref_srdhm(a, b) == gemmlowp_srdhm(a, b)
    assert INT32_MIN <= got <= INT32_MAX


@settings(max_examples=400, deadline=None)
@given(int32s, shifts)
@example(-3, 1)
@example(INT32_MIN, 31)
def test_rdbpot_is_round_half_away_from_zero(x: int, e: int) -> None:
    assert int(rounding_divide_by_pot(x, e)) == ref_rdbpot(x, e)


@settings(max_examples=500, deadline=None)
@given(int32s, mults, shifts, st.sampled_from([(-128, 127), (0, 127)]))
@example(INT32_MAX, 2**31 - 1, 0, (-128, 127))  # saturates high
@example(INT32_MIN, 2**31 - 1, 0, (-128, 127))  # saturates low
@example(-(2**30) - 1, 2**30, 23, (-128, 127))
@example(-3, 2**30, 0, (-128, 127))  # SRDHM negative tie
def test_requantize_matches_exact_rational(acc: int, m: int, shift: int, lohi) -> None:
    lo, hi = lohi
    assert int(requantize(acc, m, shift, lo=lo, hi=hi)) == ref_requantize(acc, m, shift, lo, hi)


def test_requantize_random_batch_matches_reference() -> None:
    rng = np.random.default_rng(1)
    acc = rng.integers(INT32_MIN, INT32_MAX, 3000, endpoint=True)
    acc[:1000] //= 1 << 16  # also typical small accumulators
    m = rng.integers(2**30, 2**31, 3000)
    s = rng.integers(0, 32, 3000)
    got = requantize(acc, m, s)
    want = [ref_requantize(int(a), int(mm), int(ss)) for a, mm, ss in zip(acc, m, s, strict=True)]
    assert got.tolist() == want


# -- quantize_multiplier -----------------------------------------------------------------


@pytest.mark.parametrize(
    "real, want",
    [
        (0.5, (2**30, 0)),
        (0.25, (2**30, 1)),
        (0.75, (3 * 2**29, 0)),
        (2.0**-31, (2**30, 30)),
        (2.0**-32, (2**30, 31)),
        (2.0**-33, (0, 0)),  # below 2**-32: every int32 input maps to 0
        (1 - 2.0**-30, (2**31 - 2, 0)),
        (0.5 + 2.0**-32, (2**30 + 1, 0)),  # .5 in the last place rounds up like std::round
        (1 - 2.0**-33, (2**30, -1)),  # carries to 2**31: rejected (needs a left shift)
    ],
)
def test_quantize_multiplier_hand_values(real: float, want: tuple[int, int]) -> None:
    if want[1] < 0:
        with pytest.raises(ValueError, match="rounds to 1.0"):
            quantize_multiplier(real)
    else:
        assert quantize_multiplier(real) == want


@pytest.mark.parametrize("real", [1.0, 1.5, 0.0, -0.25, float("nan"), float("inf")])
def test_quantize_multiplier_rejects(real: float) -> None:
    with pytest.raises(ValueError):
        quantize_multiplier(real)


@settings(max_examples=500, deadline=None)
@given(st.floats(min_value=2.0**-32, max_value=1 - 2.0**-32, exclude_max=True))
def test_quantize_multiplier_reconstructs(real: float) -> None:
    m, shift = quantize_multiplier(real)
    assert 2**30 <= m < 2**31 and 0 <= shift <= 31
    approx = Fraction(m, 2 ** (31 + shift))
    assert abs(approx - Fraction(real)) <= Fraction(real) * Fraction(1, 2**31)
