"""The LUT multiplier's golden (hwgen.rtl.lut_mult): its row-pair / adder-tree arithmetic
equals ``a * b`` on every int8 pair and on other shapes; its RTL is in sim/test_lut_mult.py."""

from __future__ import annotations

import itertools
import random

import pytest

from hwgen.rtl.lut_mult import lut_mult_golden, pair_weights


def test_all_int8_pairs_equal_the_product() -> None:
    pairs = itertools.product(range(-128, 128), repeat=2)
    bad = [(a, b) for a, b in pairs if lut_mult_golden(a, b, 8) != a * b]
    assert bad == []


def _range(width: int, is_signed: bool) -> tuple[int, int]:
    if is_signed:
        return -(1 << (width - 1)), (1 << (width - 1)) - 1
    return 0, (1 << width) - 1


@pytest.mark.parametrize("a_width,b_width,is_signed",
                         [(9, 12, True), (5, 7, True), (8, 1, True), (18, 18, True),
                          (8, 8, False), (7, 5, False)])
def test_other_shapes_equal_the_product(a_width: int, b_width: int, is_signed: bool) -> None:
    rng = random.Random(a_width * 100 + b_width)
    lo_a, hi_a = _range(a_width, is_signed)
    lo_b, hi_b = _range(b_width, is_signed)
    cases = [(lo_a, lo_b), (lo_a, hi_b), (hi_a, lo_b), (hi_a, hi_b)]
    cases += [(rng.randint(lo_a, hi_a), rng.randint(lo_b, hi_b)) for _ in range(2000)]
    for a, b in cases:
        assert lut_mult_golden(a, b, b_width, is_signed) == a * b, (a, b)


def test_a_wrong_sign_row_is_caught() -> None:
    """The test above can fail: treating b as unsigned breaks every negative b."""
    assert lut_mult_golden(3, -1, 8, is_signed=False) != -3
    assert lut_mult_golden(3, -1, 8, is_signed=True) == -3


def test_pairs() -> None:
    assert pair_weights(8, True) == [(1, 1), (1, 1), (1, 1), (1, -1)]
    assert pair_weights(5, False) == [(1, 1), (1, 1), (1,)]
