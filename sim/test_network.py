"""Whole-network RTL regression: every logit of real MNIST test images equals the golden model.

Each case generates the accelerator for (model, array), builds it with Verilator and runs
images through the real streams with random gaps/backpressure; the design runs from its own
memories while Python awaits `done`. A mismatch names the first diverging layer and leaves a
waveform (see sim/runner.py).
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from hwgen.config import ArrayConfig
from hwgen.datasets import load_mnist_sample
from hwgen.emit.images import program_beats
from hwgen.evaluate import build_qmodel
from hwgen.rtl.ecp5_dsp import Ecp5DspSim
from hwgen.rtl.traits import SmallDeviceSim
from hwgen.sim.network import prepare, simulate


def _run(model: str, array: str, n: int, seed: int = 1, gap: float = 0.2, platform=None):
    images, _ = load_mnist_sample()
    qm = build_qmodel(model)
    tag = f"_{type(platform).__name__}" if platform else ""
    case = prepare(qm, ArrayConfig.parse(array), images[:n], gap=gap, tag=tag, platform=platform)
    res, out, _ = simulate(case, seed=seed)
    return case, res, out


def _assert_bit_exact(case, res, out, n: int) -> None:
    imgs = out.get("images", [])
    assert len(imgs) == n, f"{case.name}: {len(imgs)}/{n} images ran; see {res.results_xml}"
    bad = [r for r in imgs if not r["match"]]
    assert not bad, f"{case.name}: {len(bad)} mismatching image(s), first: {bad[0]}"
    assert res.failed == 0, f"{case.name}: cocotb reported failures ({res.results_xml})"


@pytest.mark.rtl
@pytest.mark.parametrize(
    "model,array,n",
    [
        ("mnist_cnn", "8x8", 6),
        ("tiny_cnn", "4x4", 4),
        ("tiny_cnn", "3x5", 3),  # non-square, neither side a power of two
        ("tiny_cnn", "16x16", 2),  # past 12x12: the size the brief says must not be assumed away
    ],
)
def test_network_bit_exact(model: str, array: str, n: int) -> None:
    case, res, out = _run(model, array, n)
    _assert_bit_exact(case, res, out, n)


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize(
    "model,array,n",
    [("mnist_cnn", "16x16", 4), ("mnist_cnn", "4x4", 4), ("mnist_cnn", "8x8", 50),
     ("mnist_cnn", "12x12", 2), ("mnist_cnn", "8x16", 2)],  # K-split fc layers (P = 2, 4)
)
def test_network_bit_exact_slow(model: str, array: str, n: int) -> None:
    case, res, out = _run(model, array, n)
    _assert_bit_exact(case, res, out, n)


@pytest.mark.rtl
@pytest.mark.parametrize(
    "model,array,n",
    [("tiny_cnn", "4x4", 2), pytest.param("mnist_cnn", "8x8", 4, marks=pytest.mark.slow)],
)
def test_network_bit_exact_on_mult18x18d_model(model: str, array: str, n: int) -> None:
    """The board's netlist: every product on an instantiated MULT18X18D (PEs one each,
    requant lanes four each), simulated on the behavioural model in place of ``*``."""
    plat = Ecp5DspSim()
    case, res, out = _run(model, array, n, platform=plat)
    a = ArrayConfig.parse(array)
    assert plat.dsps_used == a.pes + 4 * a.cols and plat.lut_multipliers == 0
    text = case.verilog.read_text()
    assert "MULT18X18D #(" in text
    # parameters in block RAM on a large device: one more register on their way (param_hop)
    assert re.search(r"reg \[\d+:0\] prm_o0\b", text)
    _assert_bit_exact(case, res, out, n)


class _DspsRunOut(Ecp5DspSim):
    """A device with DSPs for the requant lanes and three PEs only (tiny_cnn 4x4: 16 + 3)."""

    def __init__(self) -> None:
        super().__init__(dsp_budget=4 * 4 + 3)


@pytest.mark.rtl
def test_network_bit_exact_past_the_dsp_budget() -> None:
    """Past the DSP budget: the requant lanes keep their four MULT18X18D each (elaborated
    first), three PEs get one, the other 13 PEs the LUT multiplier (hwgen.rtl.lut_mult)."""
    plat = _DspsRunOut()
    case, res, out = _run("tiny_cnn", "4x4", 2, platform=plat)
    assert plat.dsps_used == 19 and plat.lut_multipliers == 13
    _assert_bit_exact(case, res, out, 2)


class _FullBlockRam(Ecp5DspSim):
    """A device whose block RAM leaves the requant parameters no room (as the 12x16 on the
    85F): they go to LUT RAM, a memory and a registered address copy per lane."""

    bram_budget = 1


@pytest.mark.rtl
def test_network_bit_exact_with_parameters_in_lut_ram() -> None:
    """The parameter memory's LUT-RAM form (hwgen.rtl.parammem) in the whole design: every
    logit bit-exact, on the board's multipliers, as the 12x16 build runs it."""
    plat = _FullBlockRam()
    case, res, out = _run("tiny_cnn", "4x2", 2, platform=plat)  # (33 words x 2 lanes)
    text = case.verilog.read_text()
    # one per lane in the parameter memory's module (the requant lanes' side-data delays are
    # LUT RAM too, in modules of their own)
    params = text[text.index("module \\accel.params "):]
    params = params[: params.index("endmodule")]
    assert params.count('ram_style = "distributed"') == 2
    assert 'ram_style = "block"' not in text
    assert "prm_o0" not in text  # (no param_hop: LUT-RAM parameters sit by their lanes)
    # the large device's program memory (trait program_lut_ram) is LUT RAM too: the same
    # cycles, read at the program address itself (no block RAM output register, rom_q),
    # every logit bit-exact
    assert re.search(r'ram_style = "distributed" \*\)\n(\s*\(\*[^\n]*\*\)\n)*\s*'
                     r"reg \[31:0\] \\program ", text)
    assert "rom_q" not in text
    # the large device's image slice is the Accelerator's own (trait image_slice): its valid
    # and that valid's copy for the image writer's steps are two registers
    isl = text[text.index("module \\accel.image_slice"):]
    isl = isl[: isl.index("endmodule")]
    for reg in ("o__valid", "o_valid_copy"):  # (each kept apart by the board flow)
        assert re.search(rf"\(\* hwgen_nomerge = 32'd1 \*\)\n\s*output {reg};\n\s*reg {reg} =",
                         isl), reg
    # the controller's window (win_r) and the writer's copy (win_w): two kept registers,
    # named after the ports they drive
    assert len(re.findall(r"hwgen_nomerge = 32'd1 \*\)\n\s*reg \\?window(\$\d+)? +=", text)) == 2
    _assert_bit_exact(case, res, out, 2)


class _NarrowCounters(SmallDeviceSim):
    perf_counter_width = 11  # tiny_cnn 4x4 takes more than 2,047 cycles per image


@pytest.mark.rtl
def test_network_bit_exact_on_small_device_traits() -> None:
    """The iCEBreaker's traits (hwgen.rtl.traits): a one-edge requant product, bit-exact; and
    a narrow cycle counter saturates instead of wrapping (11 bits here, so it must)."""
    plat = _NarrowCounters()
    case, res, out = _run("tiny_cnn", "4x4", 2, platform=plat)
    _assert_bit_exact(case, res, out, 2)
    limit = (1 << plat.perf_counter_width) - 1
    for r in out["images"]:
        total, inp = r["cycles"][0], r["cycles"][1]
        assert total == limit, f"total counter {total}: not saturated at {limit}"
        assert 0 < inp < limit, f"input counter {inp}"
    assert "reg [10:0] perf0" in case.verilog.read_text()


@pytest.mark.rtl
def test_corrupted_weight_is_caught_and_located() -> None:
    """The check can fail: flip one weight beat and the TB must report the layer it hits."""
    images, _ = load_mnist_sample()
    qm = build_qmodel("tiny_cnn")
    case = prepare(qm, ArrayConfig.parse("4x4"), images[:1], gap=0.0, tag="_corrupt")
    data = dict(np.load(case.data_file))
    data["beats"] = data["beats"].copy()
    data["beats"][len(program_beats(case.prog))] ^= 0x7F  # first conv-weight word (after program)
    np.savez(case.data_file, **data)
    res, out, _ = simulate(case)
    assert res.failed == 1, "a corrupted weight went unnoticed"
    rec = out["images"][0]
    assert not rec["match"]
    assert rec["first_bad_layer"].startswith(case.prog.layers[0].name), rec["first_bad_layer"]
    assert res.waveform is not None and res.waveform.exists(), "no waveform left for the failure"
    json.dumps(out)
