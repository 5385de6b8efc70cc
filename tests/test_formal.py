"""Bounded model checks (SymbiYosys + Yices 2, pip-only): the requant lane equals its spec for every
input sequence; the WeightLoader's stream, the image stream into the activation buffer
(ImageWriter) and the logits stream (LogitSender) lose, duplicate and reorder nothing under
any valid/backpressure pattern; the input slot (ImageSlot) never lets the next image
overwrite the input region while a run reads it; and each check fails on a deliberately
broken spec, environment or unit. The runner budgets CPU time, not wall time."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from amaranth import Module

from hwgen.config import ArrayConfig
from hwgen.formal import FormalToolError, prove, runner
from hwgen.formal.requant_check import RequantSpecHarness
from hwgen.formal.stream_check import LoaderStreamHarness, load_order
from hwgen.formal.transfer_check import ImageSlotHarness, ImageWriterHarness, LogitSenderHarness
from hwgen.rtl.loader import WeightLoader
from hwgen.rtl.transfer import ImageSlot, ImageWriter, LogitSender

DEPTH = 20  # BMC steps: the requant pipeline's latency plus a dozen checked outputs
# Two words of one beat, then one of two beats: the loader's address walk, region switch and
# word assembly, all within DEPTH with room for restarts and stalls. (Each more beat
# roughly doubled z3's time at this depth.)
REGIONS = [(8, 2), (40, 1)]


def test_missing_tool_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(runner, "_TOOLS", (*runner._TOOLS, "no-such-formal-tool"))
    with pytest.raises(FormalToolError, match=r"^formal flow: no-such-formal-tool not found"):
        runner.tools()
    with pytest.raises(FormalToolError, match=r"no-such-formal-tool not found"):
        prove(object(), "never", DEPTH, tmp_path)  # before it looks at the harness
    assert not (tmp_path / "never").exists()


def test_requant_equals_spec(tmp_path: Path) -> None:
    # The latency the design instantiates, read from the config, not hard-coded.
    h = RequantSpecHarness(mult_latency=ArrayConfig().mult_latency)
    r = prove(h, "requant", DEPTH, tmp_path, script=h.script)
    assert r.passed, r.log[-4000:]


@pytest.mark.parametrize("mutant", ["srdhm_sat", "rdbpot_ties"])
def test_requant_broken_spec_fails(tmp_path: Path, mutant: str) -> None:
    h = RequantSpecHarness(mult_latency=ArrayConfig().mult_latency, mutant=mutant)
    r = prove(h, f"requant_{mutant}", DEPTH, tmp_path, script=h.script)
    assert not r.passed
    assert "Assert failed" in r.log and "requant_check.py" in r.log  # names the source line


def test_load_order() -> None:
    assert load_order(REGIONS) == [(0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 0, 1)]
    assert len(load_order([(16, 2), (40, 2), (8, 1)])) == 7


def test_loader_stream(tmp_path: Path) -> None:
    r = prove(LoaderStreamHarness(regions=REGIONS), "loader", DEPTH, tmp_path)
    assert r.passed, r.log[-4000:]


def test_loader_lost_beat_fails(tmp_path: Path) -> None:
    # The scoreboard counts every valid beat as sent: beats the loader refused look lost.
    r = prove(LoaderStreamHarness(regions=REGIONS, mutant="skip_ready"), "loader_lost", DEPTH,
              tmp_path)  # fmt: skip
    assert not r.passed
    assert "Assert failed" in r.log


class _ReadyInRestart(WeightLoader):
    """A broken loader: ready even in a restart cycle, so the beat taken there is dropped."""

    def elaborate(self, platform) -> Module:
        m = super().elaborate(platform)
        m.d.comb += self.i_stream.ready.eq(~self.loaded)  # the later assignment wins
        return m


def test_loader_broken_unit_fails(tmp_path: Path) -> None:
    h = LoaderStreamHarness(regions=REGIONS, loader=_ReadyInRestart)
    r = prove(h, "loader_broken", DEPTH, tmp_path)
    assert not r.passed
    assert "Assert failed" in r.log


def test_image_stream(tmp_path: Path) -> None:
    r = prove(ImageWriterHarness(), "image", DEPTH, tmp_path)
    assert r.passed, r.log[-4000:]


class _TakesWhileInactive(ImageWriter):
    """A broken writer: always ready, so a value offered outside the data transfer is taken
    and written nowhere (the field fault of a stray value shifting the next image)."""

    def elaborate(self, platform) -> Module:
        m = super().elaborate(platform)
        m.d.comb += self.i_stream.ready.eq(1)
        return m


def test_image_stream_broken_unit_fails(tmp_path: Path) -> None:
    r = prove(ImageWriterHarness(unit=_TakesWhileInactive), "image_broken", DEPTH, tmp_path)
    assert not r.passed
    assert "Assert failed" in r.log and "transfer_check.py" in r.log


def test_image_slot(tmp_path: Path) -> None:
    r = prove(ImageSlotHarness(), "slot", DEPTH, tmp_path)
    assert r.passed, r.log[-4000:]


class _FillsWhenever(ImageSlot):
    """A broken slot: lets the writer take values whenever the port is free, whatever its
    state, so the next image overwrites the input region while the run still reads it."""

    def elaborate(self, platform) -> Module:
        m = super().elaborate(platform)
        m.d.comb += self.fill.eq(self.window & self.enable)  # the last assignment wins
        return m


def test_image_slot_broken_unit_fails(tmp_path: Path) -> None:
    r = prove(ImageSlotHarness(unit=_FillsWhenever), "slot_broken", DEPTH, tmp_path)
    assert not r.passed
    assert "Assert failed" in r.log and "transfer_check.py" in r.log


def test_logits_stream(tmp_path: Path) -> None:
    r = prove(LogitSenderHarness(), "logits", DEPTH, tmp_path)
    assert r.passed, r.log[-4000:]


class _ShiftsWhileRefused(LogitSender):
    """A broken sender: moves to the next lane even when the logit was refused, so a logit
    is lost under backpressure."""

    def _send(self, m: Module, s, n, lane, ptr, word, *flags) -> None:
        super()._send(m, s, n, lane, ptr, word, *flags)
        with m.If(~s.ready):
            m.d.sync += word.eq(word >> 8)


def test_logits_stream_broken_unit_fails(tmp_path: Path) -> None:
    r = prove(LogitSenderHarness(unit=_ShiftsWhileRefused), "logits_broken", DEPTH, tmp_path)
    assert not r.passed
    assert "Assert failed" in r.log and "transfer_check.py" in r.log


def _spawn(code: str) -> subprocess.Popen:
    # A shell parent with the work in a child: the budget must count descendants.
    return subprocess.Popen(["sh", "-c", f'{sys.executable} -c "{code}"; exit 0'],
                            start_new_session=True)


def test_budget_counts_cpu_of_the_whole_tree() -> None:
    proc = _spawn("while True: pass")
    t0 = time.monotonic()
    with pytest.raises(FormalToolError, match=r"'spin': no answer within 1 CPU-s"):
        runner._wait_budgeted(proc, "spin", cpu_budget=1, wall_limit=60)
    assert time.monotonic() - t0 < 30
    assert proc.poll() is not None and not runner._descendants(proc.pid)


def test_budget_is_not_spent_by_waiting() -> None:
    # Sleeping uses no CPU: a starved job is not killed by the CPU budget, only by the wall limit.
    proc = _spawn("import time; time.sleep(3)")
    runner._wait_budgeted(proc, "nap", cpu_budget=1, wall_limit=60)
    assert proc.returncode == 0
    proc = _spawn("import time; time.sleep(60)")
    with pytest.raises(FormalToolError, match=r"'hang': .* 2 s wall"):
        runner._wait_budgeted(proc, "hang", cpu_budget=100, wall_limit=2)
