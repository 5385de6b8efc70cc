"""cocotb body: whole-network inference on the Accelerator, bit-exact against the golden model.

Model transfer (weight beats) once, then per image: start, data transfer (random gaps),
Python sleeps until the first result is valid (the design runs from its own memories, the
clock toggles in the simulator: ``Clock(..., impl="gpi")``), result transfer (random
backpressure), compare every logit. On a mismatch the image is re-run layer by layer
(dbg_stop) and the activation buffers are compared with the golden model's tensors to name
the first diverging layer.
"""

from __future__ import annotations

import json
import time

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge, Timer

from hwgen.emit.images import IMAGE_BITS, WEIGHT_BITS, with_last
from hwgen.rtl.loader import LOADED_LATENCY
from hwgen.rtl.top import DBG_READ_LATENCY, PERF_READ_LATENCY
from hwgen.sim.tb.common import load_params, rng_from_env, start_clock_and_reset


class StreamSource:
    """Drives a valid/ready stream whose payload is {data: `width` bits, last}; `gap` is the
    probability of an idle cycle."""

    def __init__(self, dut, prefix: str, clk, rng, gap: float, width: int) -> None:
        self.valid = getattr(dut, f"{prefix}__valid")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.clk, self.rng, self.gap, self.width = clk, rng, gap, width

    async def send(self, values, last: bool = True) -> None:
        """Send `values`, `last` on the final one (unless last=False)."""
        for v in with_last(values, self.width, last=last):
            while self.gap and self.rng.random() < self.gap:
                self.valid.value = 0
                await RisingEdge(self.clk)
            self.valid.value = 1
            self.payload.value = int(v)
            await ReadOnly()
            while not self.ready.value:
                await RisingEdge(self.clk)
                await ReadOnly()
            await RisingEdge(self.clk)
        self.valid.value = 0


async def receive(dut, rng, gap: float, n: int) -> list[int]:
    """Sink for the logits stream with random backpressure.

    Python sleeps in the simulator until the first result is valid (no per-cycle polling
    while the network computes), then takes the results cycle by cycle.
    """
    out = []
    if not dut.logits__valid.value:
        await RisingEdge(dut.logits__valid)
    while len(out) < n:
        ready = 0 if (gap and rng.random() < gap) else 1
        dut.logits__ready.value = ready
        await ReadOnly()
        if ready and dut.logits__valid.value:
            word = int(dut.logits__payload.value)
            val = word & 0xFF
            out.append(val - 256 if val >= 128 else val)
            last = (word >> 8) & 1
            assert last == (len(out) == n), f"logits 'last' flag wrong at item {len(out) - 1}"
        await RisingEdge(dut.clk)
    dut.logits__ready.value = 0
    return out


async def read_perf(dut, n: int) -> list[int]:
    vals = []
    for i in range(n):
        dut.perf_sel.value = i
        for _ in range(PERF_READ_LATENCY):  # perf_data is registered twice
            await RisingEdge(dut.clk)
        await ReadOnly()
        vals.append(int(dut.perf_data.value))
        await Timer(1, "ns")
    return vals


async def read_words(dut, buf: int, addrs: list[int], lanes: int) -> np.ndarray:
    out = np.zeros((len(addrs), lanes), dtype=np.int64)
    dut.dbg_buf.value = buf
    for n, a in enumerate(addrs):
        dut.dbg_addr.value = a
        for _ in range(DBG_READ_LATENCY):
            await RisingEdge(dut.clk)
        await ReadOnly()
        word = int(dut.dbg_data.value)
        await RisingEdge(dut.clk)
        for j in range(lanes):
            b = (word >> (8 * j)) & 0xFF
            out[n, j] = b - 256 if b >= 128 else b
    return out


async def run_image(dut, src: StreamSource, values, rng, gap: float, n_out: int, stop=None):
    if stop is None:
        dut.dbg_stop.value = 0
    else:
        dut.dbg_stop.value = 1
        dut.dbg_layers.value = stop
    dut.start.value = 1
    await RisingEdge(dut.clk)
    dut.start.value = 0
    await src.send(values)
    if stop is not None:
        await RisingEdge(dut.done)
        return None
    recv = cocotb.start_soon(receive(dut, rng, gap, n_out))
    return await recv


@cocotb.test()
async def network(dut) -> None:
    p = load_params()
    rng = rng_from_env()
    data = np.load(p["data"])
    beats, images, expected = data["beats"], data["images"], data["logits"]
    gap = p["gap"]
    await start_clock_and_reset(dut)
    dut.logits__ready.value = 0
    dut.start.value = 0
    dut.dbg_stop.value = 0
    dut.weights_restart.value = 1
    await RisingEdge(dut.clk)
    dut.weights_restart.value = 0

    t0 = time.perf_counter()
    wsrc = StreamSource(dut, "weights", dut.clk, rng, gap, WEIGHT_BITS)
    await wsrc.send(beats.tolist())
    for _ in range(1 + LOADED_LATENCY):  # (`loaded` rises LOADED_LATENCY after the final beat)
        await RisingEdge(dut.clk)
    assert int(dut.weights_loaded.value) == 1, "weights_loaded is low after the whole image"
    assert int(dut.error.value) == 0, f"error after the model transfer: status {dut.status.value}"
    t_load = time.perf_counter() - t0

    src = StreamSource(dut, "image", dut.clk, rng, gap, IMAGE_BITS)
    n_perf = 3 + len(p["layers"])
    results = []
    t0 = time.perf_counter()
    try:
        await _run_images(dut, src, images, expected, rng, gap, n_perf, data, p, results)
    finally:  # one write at the end: rewriting the file per image is O(n^2)
        with open(p["results"], "w") as f:
            json.dump({"weights_load_s": t_load, "images": results,
                       "wall_s": time.perf_counter() - t0}, f)
    bad = [r for r in results if not r["match"]]
    assert not bad, f"{len(bad)} image(s) differ from the golden model; first: {bad[0]}"


async def _run_images(dut, src, images, expected, rng, gap, n_perf, data, p, results) -> None:
    for n in range(len(images)):
        got = await run_image(dut, src, images[n].tolist(), rng, gap, p["out_len"])
        perf = await read_perf(dut, n_perf)
        want = expected[n].tolist()
        ok = got == want and int(dut.error.value) == 0
        rec = {"index": n, "logits": got, "golden": want, "match": ok, "cycles": perf,
               "status": int(dut.status.value)}
        if not ok:
            rec["first_bad_layer"] = await locate(dut, src, images[n].tolist(), rng, data, n, p)
        results.append(rec)
        dut._log.info(
            "image %d/%d: %s, %d cycles", n + 1, len(images), "bit-exact" if ok else "MISMATCH",
            perf[0],
        )


async def locate(dut, src, values, rng, data, n: int, p: dict) -> str:
    """Re-run the image stopping after each layer; compare its output buffer with the golden."""
    for li, lay in enumerate(p["layers"]):
        await run_image(dut, src, values, rng, 0.0, p["out_len"], stop=li)
        got = await read_words(dut, lay["dst"], lay["addrs"], p["cols"])
        want = data[f"layer{li}"][n]
        if not np.array_equal(got, want):
            diff = np.argwhere(got != want)[0]
            return (
                f"{lay['name']} (covers {lay['covers']}): word {diff[0]} lane {diff[1]} "
                f"got {got[tuple(diff)]} want {want[tuple(diff)]}"
            )
    return "no layer output differs (result transfer?)"
