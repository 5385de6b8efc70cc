"""The ECP5 PLL's divider search (hwgen.boards.pll) against every setting it could pick."""

from __future__ import annotations

import pytest

from hwgen.boards.pll import PFD_MHZ, VCO_MHZ, ecp5_pll_params


def _outputs(fin: float) -> set[float]:
    """Every output an EHXPLLL with feedback from CLKOP makes from ``fin`` (to a Hz)."""
    return {round(fin / i * fb, 6)
            for i in range(1, 129) if PFD_MHZ[0] <= fin / i <= PFD_MHZ[1]
            for fb in range(1, 81)
            if any(VCO_MHZ[0] <= fin / i * fb * o <= VCO_MHZ[1] for o in range(1, 129))}


OUTS = sorted(_outputs(25.0))


@pytest.mark.parametrize("want", [50.0, 100.0, 103.0, 106.16, 120.0, 121.9, 123.99, 125.0,
                                  130.0, 137.0, 150.0, 199.9])
def test_the_fastest_output_not_above_the_request(want: float) -> None:
    """A build is timed for the clock asked for: the PLL never runs faster (ecppll's
    nearest gives 125 for 123.99), and no slower output is picked when a faster one fits."""
    p = ecp5_pll_params(25.0, want)
    assert round(p.fout_mhz, 6) == max(o for o in OUTS if o <= want + 1e-9)
    assert p.fout_mhz == pytest.approx(25.0 / p.clki_div * p.clkfb_div)
    assert p.fvco_mhz == pytest.approx(p.fout_mhz * p.clkop_div)
    assert VCO_MHZ[0] <= p.fvco_mhz <= VCO_MHZ[1]
    assert PFD_MHZ[0] <= 25.0 / p.clki_div <= PFD_MHZ[1]


def test_exact_clocks_keep_their_dividers() -> None:
    """The clocks the checked-in builds used: exact, the VCO nearest 600 MHz, and the same
    dividers as before the search was bounded (the same netlists, so the same placements)."""
    got = {f: ecp5_pll_params(25.0, f) for f in (100.0, 120.0, 125.0, 130.0, 150.0)}
    assert {f: (p.clki_div, p.clkfb_div, p.clkop_div) for f, p in got.items()} == {
        100.0: (1, 4, 6), 120.0: (5, 24, 5), 125.0: (1, 5, 5), 130.0: (5, 26, 5),
        150.0: (1, 6, 4)}
    assert all(p.fout_mhz == f for f, p in got.items())


def test_no_output_that_slow_is_an_error() -> None:
    with pytest.raises(ValueError, match="no EHXPLLL setting makes 1 MHz or less"):
        ecp5_pll_params(25.0, 1.0)


def test_an_output_printed_to_six_digits_names_itself() -> None:
    """The build's advice prints a clock with `:g` (135.714 for 25 / 7 * 38): given back as
    `--freq`, it is that output, not the next one below."""
    for out in OUTS:
        assert round(ecp5_pll_params(25.0, float(f"{out:g}")).fout_mhz, 6) == out
