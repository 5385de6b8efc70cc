"""scripts/timing_endpoints.py: each endpoint's worst arrival over all nets that reach it, the
count over a period, and the per-unit listing, on a hand-made nextpnr detailed report."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

_PATH = Path(__file__).resolve().parents[1] / "scripts" / "timing_endpoints.py"
_spec = importlib.util.spec_from_file_location("timing_endpoints", _PATH)
te = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(te)

REPORT = {
    "fmax": {"clk": {"achieved": 125.0, "constraint": 150.0}},
    "detailed_net_timings": [
        {"driver": "top.a.x_FF", "net": "n1", "endpoints": [
            {"cell": "top.b.y_FF", "port": "DI", "delay": [1.0, 8.0]},
            {"cell": "top.b.z_FF", "port": "CE", "delay": [1.0, 5.0]}]},
        {"driver": "top.c.w_FF", "net": "n2", "endpoints": [
            {"cell": "top.b.y_FF", "port": "DI", "delay": [1.0, 7.0]},  # not the worst
            {"cell": "top.c.v_FF", "port": "LSR", "delay": [2.0, 6.9]}]},
    ],
}


def test_arrivals_keep_each_endpoints_worst() -> None:
    ends = te.arrivals(REPORT)
    assert ends[("top.b.y_FF", "DI")] == (8.0, "top.a.x_FF")
    assert ends[("top.c.v_FF", "LSR")] == (6.9, "top.c.w_FF")
    assert len(ends) == 3


def test_listing_by_unit(tmp_path: Path, capsys) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(REPORT))
    te.main(["x", str(path), "6.667", "4", "2"])
    out = capsys.readouterr().out
    assert "endpoints > 6.67 ns: 2 of 3" in out
    assert "== top.b: 1 over" in out and "== top.c: 1 over" in out
