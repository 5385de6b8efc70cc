"""cocotb body: one Accelerator build runs several programs back to back (run-time program).

For each model in turn: `weights_restart`, its model transfer (header, descriptors, weights),
then its images, every logit compared with the golden model. The models differ in layers,
input shape and memory use; the design was sized for all of them (MemoryPlan.fit).
"""

from __future__ import annotations

import json

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge

from hwgen.emit.images import IMAGE_BITS, WEIGHT_BITS
from hwgen.rtl.loader import LOADED_LATENCY
from hwgen.sim.tb.accel_tb import StreamSource, read_perf, run_image
from hwgen.sim.tb.common import load_params, rng_from_env, start_clock_and_reset


@cocotb.test()
async def models_back_to_back(dut) -> None:
    p = load_params()
    rng = rng_from_env()
    await start_clock_and_reset(dut)
    dut.logits__ready.value = 0
    dut.start.value = 0
    dut.dbg_stop.value = 0
    wsrc = StreamSource(dut, "weights", dut.clk, rng, p["gap"], WEIGHT_BITS)
    src = StreamSource(dut, "image", dut.clk, rng, p["gap"], IMAGE_BITS)
    log = []
    for rnd in p["order"]:
        case = p["cases"][rnd]
        data = np.load(case["data"])
        dut.weights_restart.value = 1
        await RisingEdge(dut.clk)
        dut.weights_restart.value = 0
        await wsrc.send(data["beats"].tolist())
        for _ in range(1 + LOADED_LATENCY):  # (`loaded` rises LOADED_LATENCY after the last beat)
            await RisingEdge(dut.clk)
        assert int(dut.weights_loaded.value) == 1, f"{case['name']}: not loaded"
        assert int(dut.prog_layers.value) == case["layers"], "header: layer count"
        for n, values in enumerate(data["images"]):
            got = await run_image(dut, src, values.tolist(), rng, p["gap"], case["out_len"])
            perf = await read_perf(dut, 3 + case["layers"])
            want = data["logits"][n].tolist()
            log.append({"model": case["name"], "index": n, "match": got == want,
                        "logits": got, "golden": want, "cycles": perf[0]})  # fmt: skip
            with open(p["results"], "w") as f:
                json.dump(log, f)
    bad = [r for r in log if not r["match"]]
    assert not bad, f"{len(bad)} image(s) differ from the golden model; first {bad[0]}"
