"""Field faults on the real streams (Verilator): each is reported in `status`, nothing is
misaligned afterwards, and the next image is bit-exact against the golden model.

tiny_cnn on a 4x4 array. Model B is tiny_cnn with perturbed int8 weights and biases: the same
program (identical Verilog), different logits, for the reload-between-images scenario.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from hwgen.config import ArrayConfig
from hwgen.datasets import load_mnist_sample
from hwgen.emit.images import image_values, weight_beats
from hwgen.emit.verilog import write_rtl
from hwgen.evaluate import build_qmodel
from hwgen.golden.run import quantize_input, run
from hwgen.paths import sim_build
from hwgen.quant.qmodel import QConv, QLinear, QModel
from hwgen.rtl.top import STATUS_LAYOUT
from hwgen.schedule.lower import lower
from hwgen.sim.runner import run_cocotb
from hwgen.sim.tb import faults_tb

SCENARIOS = [
    "start_without_weights",
    "reset_during_weight_load",
    "weight_stream_length",
    "image_short",
    "image_long",
    "start_while_busy",
    "reset_mid_inference",
    "preload",
    "reload_between_images",
]


def perturbed(qm: QModel, seed: int = 11) -> QModel:
    """Same architecture and requant parameters, every weight moved by up to ±6 and every
    bias by up to ±200: a different model whose program is the same."""
    rng = np.random.default_rng(seed)
    layers = []
    for lay in qm.layers:
        if isinstance(lay, QConv | QLinear):
            w = np.clip(lay.weight.astype(np.int64) + rng.integers(-6, 7, lay.weight.shape),
                        -127, 127).astype(lay.weight.dtype)  # fmt: skip
            b = (lay.bias.astype(np.int64) + rng.integers(-200, 201, lay.bias.shape)).astype(
                lay.bias.dtype
            )
            lay = replace(lay, weight=w, bias=b)
        layers.append(lay)
    return replace(qm, layers=tuple(layers))


def golden_logits(qm: QModel, xs: np.ndarray) -> np.ndarray:
    last = qm.layers[-1].name
    return np.asarray([dict(run(qm, x))[last].reshape(-1) for x in xs], dtype=np.int64)


def test_status_layout_matches_tb() -> None:
    """The TB decodes `status` by field order: it must be STATUS_LAYOUT's."""
    names = [n for n, _ in STATUS_LAYOUT]
    assert tuple(names) == faults_tb.FLAGS
    assert [STATUS_LAYOUT[n].offset for n in names] == list(range(len(names)))


@pytest.mark.rtl
def test_faults_reported_and_recovered() -> None:
    qa = build_qmodel("tiny_cnn")
    qb = perturbed(qa)
    array = ArrayConfig.parse("4x4")
    pa, pb = lower(qa, array), lower(qb, array)
    work = sim_build() / "faults_tiny_cnn_4x4"
    # the same Verilog as sim/test_network.py's tiny_cnn 4x4 case: one shared Verilator build
    va = write_rtl(pa, out_dir=work / "rtl_a") / "accel.v"
    vb = write_rtl(pb, out_dir=work / "rtl_b") / "accel.v"
    assert va.read_text() == vb.read_text(), "model B needs a different design"
    images, _ = load_mnist_sample()
    xs = quantize_input(images[:3])
    la, lb = golden_logits(qa, xs), golden_logits(qb, xs)
    assert all((a != b).any() for a, b in zip(la, lb, strict=True)), "B's logits equal A's"
    beats_a, beats_b = weight_beats(pa), weight_beats(pb)
    assert len(beats_a) == len(beats_b) and (beats_a != beats_b).any()

    data = work / "stimuli.npz"
    np.savez(data, beats_a=beats_a, beats_b=beats_b, logits_a=la, logits_b=lb,
             images=np.asarray([image_values(pa, x) for x in xs]))  # fmt: skip
    results = work / "results.json"
    results.unlink(missing_ok=True)
    params = work / "params.json"
    params.write_text(json.dumps({"data": str(data), "results": str(results),
                                  "n_layers": len(pa.layers)}))  # fmt: skip
    res = run_cocotb(
        verilog=va,
        toplevel="accel",
        test_module="hwgen.sim.tb.faults_tb",
        config_name=work.name,
        env={"HWGEN_PARAMS": str(params)},
    )
    assert res.tests == len(SCENARIOS), f"{res.tests} cocotb tests ran, want {len(SCENARIOS)}"
    assert res.failed == 0, f"{res.failed} fault scenario(s) failed: see {res.results_xml}"
    assert json.loads(results.read_text()) == {"reload": "ok"}, "the last scenario did not end"
