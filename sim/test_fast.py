"""Fast engine (compiled C++ Verilator harness as Dask tasks): bit-exact against the golden
model, and a corrupted weight is reported as a mismatch with a waveform."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwgen.config import ArrayConfig
from hwgen.datasets import load_mnist_sample
from hwgen.emit.images import program_beats
from hwgen.evaluate import build_qmodel
from hwgen.golden.run import predict
from hwgen.regress.gen import ConvSpec, LinearSpec, NetSpec, quantized
from hwgen.regress.gen import images as spec_images
from hwgen.rtl.loader import LOADED_LATENCY
from hwgen.rtl.top import PERF_READ_LATENCY
from hwgen.sim import fast
from hwgen.sim.fast import build_harness, prepare_fast, simulate_fast, stream_defines, waveform_for


def _case(model: str, array: str, n: int, tag: str = ""):
    images, _ = load_mnist_sample()
    qm = build_qmodel(model)
    case = prepare_fast(qm, ArrayConfig.parse(array), images[:n], tag=tag)
    return qm, images[:n], case


@pytest.mark.rtl
def test_fast_engine_bit_exact_tiny_cnn() -> None:
    qm, images, case = _case("tiny_cnn", "4x4", 6)
    recs, wall = simulate_fast(case, build_harness(case.verilog), workers=2, shard_size=2,
                               progress=False)  # fmt: skip
    assert [r["index"] for r in recs] == list(range(6))
    want = predict(qm, images).reshape(6, -1)  # independent of the golden file
    for r in recs:
        assert r["match"], r
        assert r["logits"] == want[r["index"]].tolist()
        assert len(r["cycles"]) == case.n_perf
        # gap-free data transfer: one value per cycle, then one cycle in which the
        # controller takes the full input slot; the total covers every part
        assert r["cycles"][1] == case.in_len + 1, r["cycles"]
        assert r["cycles"][0] >= sum(r["cycles"][1:]), r["cycles"]
        assert r["status"] == 0, r  # no fault flag raised
    # one line per image, appended per shard, merged in index order
    lines = (case.work / "results.jsonl").read_text().splitlines()
    assert [json.loads(x)["index"] for x in lines] == list(range(6))
    assert wall > 0


@pytest.mark.rtl
def test_back_to_back_images_hide_the_load() -> None:
    """The next image loads while the current one computes (the preload into the kept-live
    input region): fed back to back, the steady-state start-to-start period is the compute
    alone, at least 90 % of the data transfer (one value per cycle) shorter than with the
    image sent after start, and the preloaded images' data-in counter is one cycle (the
    controller takes the full slot). Every logit bit-exact in both modes."""
    _back_to_back("tiny_cnn", "4x4", 5)


@pytest.mark.rtl
@pytest.mark.slow
def test_back_to_back_on_a_dag() -> None:
    """The same on res_cnn (residual Add + Concat): several preload layers, one of them (the
    Add) writing buffer 0 while the next image streams in."""
    _back_to_back("res_cnn", "4x4", 4)


def _back_to_back(model: str, array: str, n: int) -> None:
    qm, images, case = _case(model, array, n, tag="_b2b")
    assert any(lay.preload for lay in case.prog.layers)
    want = predict(qm, images).reshape(n, -1)
    runs = {}
    for b2b in (False, True):
        recs, _ = fast.run_inline(case, back_to_back=b2b)
        assert [r["index"] for r in recs] == list(range(n))
        for r in recs:
            assert r["match"] and r["status"] == 0, r
            assert r["logits"] == want[r["index"]].tolist()
        runs[b2b] = recs
    period = {b2b: float(np.diff([r["start"] for r in recs])[1:].mean())
              for b2b, recs in runs.items()}  # fmt: skip
    assert period[True] < period[False] - 0.9 * case.in_len, period
    assert [r["cycles"][1] for r in runs[True][1:]] == [1] * (n - 1), runs[True]
    # the period is the run itself plus the host's start pulse and counter reads
    # (PERF_READ_LATENCY cycles each)
    totals = [r["cycles"][0] for r in runs[True][1:-1]]
    gaps = np.diff([r["start"] for r in runs[True]])[1:] - np.array(totals)
    assert all(0 < g <= case.n_perf * PERF_READ_LATENCY + 3 for g in gaps), (totals, gaps)


@pytest.mark.rtl
def test_fast_engine_reports_corrupted_weight() -> None:
    """The check can fail: flip one weight beat; the harness must report a mismatch."""
    _, _, case = _case("tiny_cnn", "4x4", 2, tag="_corrupt")
    beats = np.fromfile(case.beats, dtype="<u4")
    beats[len(program_beats(case.prog))] ^= 0x7F  # first conv-weight word (after the program)
    beats.tofile(case.beats)
    recs, _ = simulate_fast(case, build_harness(case.verilog), workers=1, progress=False)
    assert len(recs) == 2
    assert not all(r["match"] for r in recs), "a corrupted weight went unnoticed"
    bad = next(r for r in recs if not r["match"])
    assert bad["logits"] != bad["golden"]
    vcd = waveform_for(case, bad["index"])
    assert vcd.exists() and vcd.stat().st_size > 0, "no waveform left for the failure"


def test_stream_defines_follow_the_port_widths() -> None:
    old = "module accel(a);\n  input [7:0] image__payload;\n  input [31:0] weights__payload;\n"
    new = ("module accel(a);\n  input [8:0] image__payload;\n  input [32:0] weights__payload;\n"
           "  output error;\n")  # fmt: skip
    assert stream_defines(old + "endmodule\n") == [
        "-DHWGEN_IMAGE_LAST=0", "-DHWGEN_WEIGHTS_LAST=0", "-DHWGEN_HAS_ERROR=0",
        f"-DHWGEN_PERF_LATENCY={PERF_READ_LATENCY}",
        f"-DHWGEN_LOADED_LATENCY={LOADED_LATENCY}"]  # fmt: skip
    assert stream_defines(new + "endmodule\n") == [
        "-DHWGEN_IMAGE_LAST=1", "-DHWGEN_WEIGHTS_LAST=1", "-DHWGEN_HAS_ERROR=1",
        f"-DHWGEN_PERF_LATENCY={PERF_READ_LATENCY}",
        f"-DHWGEN_LOADED_LATENCY={LOADED_LATENCY}"]  # fmt: skip


@pytest.mark.rtl
@pytest.mark.slow  # two harness builds + a profiling run: ~80 CPU-s
def test_profile_guided_harness_is_bit_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    """The PGO build long runs get (instrumented build, profiling run, rebuild with the
    profile), here forced on a 4-image run: bit-exact, and a build of its own."""
    monkeypatch.setattr(fast, "PGO_MIN_IMAGES", 4)
    qm, images, case = _case("tiny_cnn", "4x4", 4, tag="_pgo")
    assert case.exe is not None and case.exe.parent.name.endswith("_pgo")
    assert list(case.exe.parent.glob("*.gcda")), "no profile was written"
    recs, _ = simulate_fast(case, case.exe, workers=1, progress=False)
    want = predict(qm, images).reshape(4, -1)
    assert [r["logits"] for r in recs] == want.tolist() and all(r["match"] for r in recs)


def _two_stream(model: str, array: str, n: int) -> dict:
    """Back to back and one by one, every logit of every image equal to the golden model's,
    on a design with two-stream remainder tiles (ArrayConfig.remainder_stream)."""
    images, _ = load_mnist_sample()
    return _two_stream_run(build_qmodel(model), array, images[:n], "_rs")[0]


def _two_stream_run(qm, array: str, images, tag: str) -> tuple[dict, object]:
    """`_two_stream` of any quantized model and images: (records by back-to-back, case)."""
    a = ArrayConfig.parse(array, remainder_stream=True)
    case = prepare_fast(qm, a, images, tag=tag)
    assert any(lay.rem_conv for lay in case.prog.layers)  # the form is exercised
    want = predict(qm, images).reshape(len(images), -1)
    out = {}
    for b2b in (False, True):
        recs, _ = fast.run_inline(case, back_to_back=b2b)
        assert [r["logits"] for r in recs] == want.tolist(), (array, b2b)
        assert all(r["match"] and r["status"] == 0 for r in recs)
        out[b2b] = recs
    return out, case


@pytest.mark.rtl
def test_two_stream_remainder_tiles_bit_exact() -> None:
    """tiny_cnn's conv3 (25 pixels, pad 0) on 4x4: its last pixel tile in two K parts, part 1
    from the conv memory's second read into row 2, folded in the write-back."""
    _two_stream("tiny_cnn", "4x4", 3)


@pytest.mark.rtl
def test_two_stream_remainder_tile_alone() -> None:
    """A conv layer whose only pixel tile is a two-stream remainder tile (1x2 output pixels on
    8 rows: the write-back's fold flags of a layer's first tile, `rem_first`), back to back
    and one by one, every logit equal to the golden model's."""
    spec = NetSpec(seed=45, in_ch=4, h=2, w=3, rows=8, cols=4,
                   convs=(ConvSpec(cout=4, k=2, stride=1, pad=0, relu=True),),
                   linears=(LinearSpec(n=4, relu=False),))  # fmt: skip
    _, case = _two_stream_run(quantized(spec), "8x4", spec_images(spec, 3, 1), "_rs1")
    assert any(lay.ptiles == 1 and lay.rem_conv for lay in case.prog.layers)


@pytest.mark.slow
@pytest.mark.rtl
@pytest.mark.parametrize("array", ["8x8", "12x8"])
def test_two_stream_remainder_tiles_mnist(array: str) -> None:
    """mnist_cnn conv2's 4-pixel remainder (192 cycles a group instead of 288)."""
    _two_stream("mnist_cnn", array, 3)


@pytest.mark.rtl
def test_board_traits_count_the_board_builds_cycles() -> None:
    """`hwgen sweep`'s cycle tasks simulate the board's design (its traits, the generic `*`):
    every counter equals the board build's own RTL run (cocotb on the ULX3S platform's
    design, MULT18X18D behavioural model, no gaps). They counted the generic design before,
    one cycle a layer fewer where the parameters sit in block RAM (``param_hop``)."""
    from hwgen.boards.platforms import make
    from hwgen.sim.network import prepare, simulate
    from hwgen.sweep.tasks import board_traits

    images, _ = load_mnist_sample()
    qm, a = build_qmodel("tiny_cnn"), ArrayConfig.parse("4x4").with_schedule("stream")
    board = make("ulx3s").sim_platform()
    ref = prepare(qm, a, images[:2], gap=0.0, tag="_nogap_board", platform=board)
    res, out, _ = simulate(ref)
    assert res.failed == 0 and len(out["images"]) == 2, res.results_xml
    case = prepare_fast(qm, a, images[:2], tag="_ulx3s_traits", platform=board_traits("ulx3s"))
    recs, _ = fast.run_inline(case)
    assert all(r["match"] for r in recs) and "MULT18X18D" not in case.verilog.read_text()
    assert [r["cycles"] for r in recs] == [r["cycles"] for r in out["images"]]
