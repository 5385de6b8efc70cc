"""HostTop end to end in Verilator: the real host driver talks to the whole design through a
bit-level UART model (hwgen/sim/tb/hostlink_tb.py).

One build sized for two models (MemoryPlan.fit) runs: refusal of an inference before any and
before a complete load, a corrupted frame (CRC error reply, no state change), a truncated frame
(timeout error reply), 20 MNIST images on tiny_cnn bit-exact, a second model with a different
input shape loaded between images, and tiny_cnn again.
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
def test_hostlink_end_to_end() -> None:
    array = ArrayConfig.parse("4x4")
    mnist, _ = load_mnist_sample()
    rng = np.random.default_rng(11)
    qb = tiny_model()
    a = _case(build_qmodel("tiny_cnn"), array, mnist[:20])
    b = _case(qb, array, rng.integers(0, 256, (3, *qb.in_shape)).astype(np.uint8))
    plan = MemoryPlan.fit([a["prog"], b["prog"]])
    name = "hostlink_tiny_4x4"
    work = sim_build() / name
    work.mkdir(parents=True, exist_ok=True)
    with open(work / "cases.pkl", "wb") as f:
        pickle.dump({"a": a, "b": b}, f)
    results = work / "results.json"
    if results.exists():
        results.unlink()
    params = {
        "cases": str(work / "cases.pkl"), "results": str(results), "cpb": CPB,
        "rows": array.rows, "cols": array.cols, "n_again": 2, "read_timeout_bits": 100_000,
    }  # fmt: skip
    top = HostTop(plan, clk_freq=CPB * 1_000_000, baud=1_000_000, timeout_bits=200)
    run_unit(top, toplevel="hosttop", test_module="hwgen.sim.tb.hostlink_tb", name=name,
             params=params)  # fmt: skip
    log = json.loads(results.read_text())
    assert log["a1"] == a["logits"].tolist() and len(log["a1"]) == 20
    assert log["b"] == b["logits"].tolist()
    assert len(log["a1_cycles"]["layers"]) == len(a["prog"].layers)
    assert len(log["b_cycles"]["layers"]) == len(b["prog"].layers)
