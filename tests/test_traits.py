"""Platform traits (hwgen.rtl.traits): a platform's own value wins, a missing one comes from
the table (or the unit's own default), and every switch the device classes set has a
table default, so a unit asking for it without a default cannot fail on a plain platform."""

from __future__ import annotations

import pytest

from hwgen.rtl.requant import REQUANT_MULT_LATENCY
from hwgen.rtl.traits import DEFAULTS, LargeDevice, SmallDevice, trait

# latencies whose default is a unit's own constant (the caller passes it)
UNIT_DEFAULTS = {"requant_mult_latency", "param_read_latency", "delay_ram_from"}


def _set(cls: type) -> set[str]:
    return {k for k in vars(cls) if not k.startswith("_")}


def test_platform_value_wins_over_the_table() -> None:
    assert trait(SmallDevice(), "copy_trees") is False
    assert trait(SmallDevice(), "perf_counter_width") == 18
    assert trait(LargeDevice(), "local_resets") is True
    # the large device's requant product: one edge past the lane's default, its operands'
    # register (hwgen.rtl.ecp5_dsp)
    assert trait(LargeDevice(), "requant_mult_latency", 6) == REQUANT_MULT_LATENCY + 1


def test_missing_value_comes_from_the_table_or_the_caller() -> None:
    assert trait(None, "copy_trees") is True and trait(None, "param_hop") is False
    assert trait(None, "bram_budget") is None
    assert trait(None, "requant_mult_latency", 6) == 6
    assert trait(SmallDevice(), "requant_mult_latency", 6) == 1
    with pytest.raises(KeyError):
        trait(None, "requant_mult_latency")


def test_every_device_trait_has_a_default() -> None:
    for cls in (SmallDevice, LargeDevice):
        assert _set(cls) <= set(DEFAULTS) | UNIT_DEFAULTS, cls
