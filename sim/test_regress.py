"""Smoke run of the random-network RTL regression: two cases on the same small array through a
Dask LocalCluster, both on ONE Verilator build of that shape's design (their programs are
loaded at run time), every logit bit-exact, merged JUnit written. (The 200-case run is
`make regress`.)
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from hwgen.regress.gen import case_shape
from hwgen.regress.run import regress


@pytest.mark.rtl
def test_regress_smoke_on_dask(tmp_path) -> None:
    out = tmp_path / "regress.xml"
    assert case_shape(100, 3) == case_shape(101, 3)
    s = regress(2, seed=100, workers=2, images=1, max_side=3, shrink=False, junit=out)
    bad = [r for r in s["results"] if not r["passed"]]
    assert not bad, f"failing case(s): {bad}"
    assert s["cases"] == s["passed"] == 2 and s["cycles"] > 0
    assert [d["shape"] for d in s["designs"]] == ["{}x{}".format(*case_shape(100, 3))]
    assert not s["designs"][0]["error"]
    suite = ET.parse(out).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "0", "0")
    assert (tmp_path / "regress.json").exists()
