"""Smoke run of the random-network RTL regression: two cases on small arrays through a Dask
LocalCluster, every logit bit-exact, merged JUnit written. (The 200-case run is `make regress`.)
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from hwgen.regress.run import regress


@pytest.mark.rtl
def test_regress_smoke_on_dask(tmp_path) -> None:
    out = tmp_path / "regress.xml"
    s = regress(2, seed=100, workers=2, images=1, max_side=3, shrink=False, junit=out)
    bad = [r for r in s["results"] if not r["passed"]]
    assert not bad, f"failing case(s): {bad}"
    assert s["cases"] == s["passed"] == 2 and s["cycles"] > 0
    suite = ET.parse(out).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "0", "0")
    assert (tmp_path / "regress.json").exists()
