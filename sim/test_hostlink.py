"""HostTop end to end in Verilator, as the board builds it (Ecp5DspSim: the DSP and carry cells
on their Verilog models, each unit on its own registered reset): the real host driver talks to
the whole design through a bit-level UART model (hwgen/sim/tb/hostlink_tb.py).

One build sized for two models (MemoryPlan.fit) runs: refusal of an inference before any and
before a complete load, a corrupted frame (CRC error reply, no state change), a truncated frame
(timeout error reply), a frame longer than the frame buffer (length error reply), too many
beats / a wrong image length / an unknown command refused,
20 MNIST images on tiny_cnn bit-exact, then a second model with a different input shape loaded
through Board.load, its own logits bit-exact. The slow variant (mnist_cnn 8x8 + tiny_cnn)
also reloads the first model and checks it again.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from hwgen.config import ArrayConfig
from hwgen.datasets import load_mnist_sample
from hwgen.emit.images import weight_beats
from hwgen.evaluate import build_qmodel
from hwgen.golden.run import predict
from hwgen.hostlink.top import HostTop
from hwgen.paths import sim_build
from hwgen.rtl.ecp5_dsp import Ecp5DspSim
from hwgen.rtl.top import fetch_cycles
from hwgen.rtl.traits import SmallDeviceSim
from hwgen.schedule.capacity import MemoryPlan
from hwgen.schedule.lower import lower
from hwgen.sim.runner import run_unit
from sim.test_controller import tiny_model

CPB = 4  # clocks per UART bit: a fast simulation


def _case(qm, array, images) -> dict:
    prog = lower(qm, array)
    return {
        "prog": prog,
        "beats": weight_beats(prog).astype("<u4").tobytes(),
        "in_len": int(np.prod(prog.in_shape)),
        "images": images,
        "logits": predict(qm, images),
    }


@pytest.mark.rtl
@pytest.mark.parametrize("platform", [Ecp5DspSim(), SmallDeviceSim()], ids=["ecp5", "small"])
def test_hostlink_end_to_end(platform) -> None:
    """On the ULX3S's netlist, and with the small device's traits (the iCEBreaker's: no
    register slices on the streams, narrower cycle counters, folded requant lanes)."""
    rng = np.random.default_rng(11)
    qb = tiny_model()
    _run("tiny_cnn", qb, rng.integers(0, 256, (3, *qb.in_shape)).astype(np.uint8), "4x4", 0,
         platform)


@pytest.mark.rtl
@pytest.mark.slow
def test_hostlink_mnist_8x8() -> None:
    """mnist_cnn on 8x8 (20 images), tiny_cnn as the second model, one build."""
    mnist, _ = load_mnist_sample()
    _run("mnist_cnn", build_qmodel("tiny_cnn"), mnist[20:23], "8x8", 3)


def _run(model_a: str, qb, images_b, array_text: str, n_again: int,
         platform=None) -> None:
    """A: 20 MNIST images; B loaded between; A reloaded for `n_again` more images.
    ``platform``: the simulation stand-in (default Ecp5DspSim, the ULX3S's netlist)."""
    platform = platform or Ecp5DspSim()
    array = ArrayConfig.parse(array_text)
    mnist, _ = load_mnist_sample()
    a = _case(build_qmodel(model_a), array, mnist[:20])
    b = _case(qb, array, images_b)
    plan = MemoryPlan.fit([a["prog"], b["prog"]])
    name = f"hostlink_{model_a}_{array}_{type(platform).__name__}"
    work = sim_build() / name
    work.mkdir(parents=True, exist_ok=True)
    with open(work / "cases.pkl", "wb") as f:
        pickle.dump({"a": a, "b": b}, f)
    results = work / "results.json"
    if results.exists():
        results.unlink()
    top = HostTop(plan, clk_freq=CPB * 1_000_000, baud=1_000_000, timeout_bits=200)
    params = {
        "cases": str(work / "cases.pkl"), "results": str(results), "cpb": CPB,
        "rows": array.rows, "cols": array.cols, "n_again": n_again, "read_timeout_bits": 100_000,
        "max_payload": top.max_payload,
    }  # fmt: skip
    # Ecp5DspSim: the board's netlist, MULT18X18D/CCU2C on their models, each unit on its own
    # reset; SmallDeviceSim: the iCEBreaker's traits
    run_unit(top, toplevel="hosttop", test_module="hwgen.sim.tb.hostlink_tb", name=name,
             params=params, platform=platform)  # fmt: skip
    log = json.loads(results.read_text())
    assert log["a1"] == a["logits"].tolist() and len(log["a1"]) == 20
    assert log["b"] == b["logits"].tolist()
    assert log["a2"] == a["logits"][:n_again].tolist()
    for key, case in (("a1_cycles", a), ("b_cycles", b)):
        _check_cycles(log[key], len(case["prog"].layers), fetch_cycles(platform), key)


def _check_cycles(c: dict, n_layers: int, fetch: int, what: str) -> None:
    """The CYCLES reply read every counter byte right: the controller's counter identity
    (every state but IDLE/DONE counts in the total; FETCH only there) holds."""
    assert len(c["layers"]) == n_layers, f"{what}: {c}"
    assert all(x > 0 for x in c["layers"]) and c["input"] > 0 and c["output"] > 0, f"{what}: {c}"
    parts = c["input"] + c["output"] + sum(c["layers"]) + fetch * n_layers
    assert c["total"] == parts, f"{what}: total {c['total']} != the parts' {parts}: {c}"
