"""One bitstream, many models: ONE Verilog build, sized by MemoryPlan.fit for two models, runs
them back to back (A, B, A) bit-exact; the program is loaded at run time with the weights."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwgen.config import ArrayConfig
from hwgen.datasets import load_mnist_sample
from hwgen.emit.images import image_values, weight_beats
from hwgen.emit.verilog import write_design
from hwgen.evaluate import build_qmodel
from hwgen.golden.run import predict, quantize_input
from hwgen.paths import sim_build
from hwgen.schedule.capacity import MemoryPlan
from hwgen.schedule.lower import lower
from hwgen.sim.runner import assert_passed, run_cocotb
from sim.test_controller import tiny_model


def _run(models: list, array: str, n: int, tag: str) -> list[dict]:
    arr = ArrayConfig.parse(array)
    mnist, _ = load_mnist_sample()
    rng = np.random.default_rng(4)
    progs = [lower(qm, arr) for qm in models]
    plan = MemoryPlan.fit(progs)
    work = sim_build() / f"multi_{tag}_{array}"
    vdir = write_design(plan, work / "rtl")
    cases = []
    for qm, prog in zip(models, progs, strict=True):
        plan.check(prog)
        imgs = mnist[:n] if qm.in_shape == (1, 28, 28) else rng.integers(
            0, 256, (n, *qm.in_shape)).astype(np.uint8)  # fmt: skip
        xq = quantize_input(imgs)
        f = work / f"{qm.name}.npz"
        np.savez(f, beats=weight_beats(prog), logits=predict(qm, imgs).astype(np.int64),
                 images=np.stack([image_values(prog, x) for x in xq]))  # fmt: skip
        cases.append({"name": qm.name, "data": str(f), "layers": len(prog.layers),
                      "out_len": prog.out_len})  # fmt: skip
    results = work / "results.json"
    if results.exists():
        results.unlink()
    params = {"cases": cases, "order": [0, 1, 0], "gap": 0.1, "results": str(results)}
    (work / "params.json").write_text(json.dumps(params))
    res = run_cocotb(verilog=vdir / "accel.v", toplevel="accel",
                     test_module="hwgen.sim.tb.multi_tb", config_name=work.name,
                     env={"HWGEN_PARAMS": str(work / "params.json")})  # fmt: skip
    assert_passed(res, work.name)
    log = json.loads(results.read_text())
    assert len(log) == 3 * n and all(r["match"] for r in log)
    assert [r["model"] for r in log[::n]] == [models[0].name, models[1].name, models[0].name]
    return log


@pytest.mark.rtl
def test_one_build_two_models() -> None:
    _run([build_qmodel("tiny_cnn"), tiny_model()], "4x4", 2, "tiny")


@pytest.mark.rtl
@pytest.mark.slow
def test_one_build_mnist_and_tiny() -> None:
    _run([build_qmodel("mnist_cnn"), build_qmodel("tiny_cnn")], "8x8", 3, "mnist_tiny")
