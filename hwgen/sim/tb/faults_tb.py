"""cocotb body: field faults on the Accelerator's streams and control, and the recovery from each.

Every scenario ends with an image whose logits must equal the golden model bit for bit, and
checks the exact `status` flags (STATUS_LAYOUT in hwgen/rtl/top.py). An aborted run must not run
the network: its per-layer and result-transfer perf counters stay 0. Both streams have random
idle cycles and the logits random backpressure (seeded by HWGEN_SEED). Parameters (JSON named in
HWGEN_PARAMS): the stimuli file with model A's and model B's weight beats (same program,
different weights), the images and both models' golden logits.
"""

from __future__ import annotations

import json

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, First, ReadOnly, RisingEdge, Timer

from hwgen.emit.images import IMAGE_BITS, WEIGHT_BITS, with_last
from hwgen.rtl.loader import LOADED_LATENCY
from hwgen.rtl.top import PERF_READ_LATENCY
from hwgen.sim.tb.common import load_params, rng_from_env

# STATUS_LAYOUT field order (hwgen/rtl/top.py); the TB does not import hwgen.rtl (no Amaranth)
FLAGS = ("image_short", "image_long", "weights_short", "weights_long",
         "start_unloaded", "start_busy", "start_unread", "weights_header")  # fmt: skip
TIMEOUT_CYCLES = 400_000
GAP = 0.15  # probability of an idle cycle on a stream (source) or of backpressure (sink)


def flags(*names: str) -> int:
    return sum(1 << FLAGS.index(n) for n in names)


def decode(status: int) -> list[str]:
    return [n for i, n in enumerate(FLAGS) if status >> i & 1]


class Bench:
    def __init__(self, dut) -> None:
        self.dut = dut
        self.p = load_params()
        d = np.load(self.p["data"])
        self.beats = {"A": d["beats_a"].tolist(), "B": d["beats_b"].tolist()}
        self.images = [x.tolist() for x in d["images"]]
        self.golden = {"A": d["logits_a"].tolist(), "B": d["logits_b"].tolist()}
        self.n_layers = int(self.p["n_layers"])
        self.rng = rng_from_env()

    async def init(self) -> None:
        """Clock, idle inputs, a design reset and a weights_restart: a clean start per test."""
        d = self.dut
        cocotb.start_soon(Clock(d.clk, 10, unit="ns").start())
        for s in (d.start, d.weights__valid, d.image__valid, d.logits__ready, d.weights_restart,
                  d.dbg_stop, d.dbg_layers, d.dbg_buf, d.dbg_addr, d.perf_sel):  # fmt: skip
            s.value = 0
        await self.reset()
        await self.restart_weights()

    async def reset(self, cycles: int = 2) -> None:
        self.dut.rst.value = 1
        for _ in range(cycles):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0

    async def pulse(self, sig) -> None:
        sig.value = 1
        await RisingEdge(self.dut.clk)
        sig.value = 0

    async def restart_weights(self) -> None:
        await self.pulse(self.dut.weights_restart)

    async def start(self) -> None:
        await self.pulse(self.dut.start)

    async def status(self) -> int:
        await ReadOnly()
        s = int(self.dut.status.value)
        assert int(self.dut.error.value) == int(s != 0), f"error != any(status {s:#x})"
        await RisingEdge(self.dut.clk)
        return s

    async def expect_status(self, want: int, what: str) -> None:
        got = await self.status()
        assert got == want, f"{what}: status {decode(got)}, want {decode(want)}"

    async def send(self, prefix: str, payloads: list[int], max_stall: int = 2000) -> int:
        """Offer payloads in order, one per cycle when ready; returns how many were taken
        (stops early when one waits `max_stall` cycles). Weights return once the loader has
        acted on the last beat taken and `loaded` has risen if it will (LOADED_LATENCY
        cycles later)."""
        d = self.dut
        valid = getattr(d, f"{prefix}__valid")
        payload = getattr(d, f"{prefix}__payload")
        ready = getattr(d, f"{prefix}__ready")
        taken = 0
        for v in payloads:
            while self.rng.random() < GAP:  # the host pauses; `last` must still frame it
                valid.value = 0
                await RisingEdge(d.clk)
            valid.value = 1
            payload.value = int(v)
            for _ in range(max_stall):
                await ReadOnly()
                ok = bool(ready.value)
                await RisingEdge(d.clk)
                if ok:
                    break
            else:
                valid.value = 0
                return taken
            taken += 1
        valid.value = 0
        if prefix == "weights":
            for _ in range(LOADED_LATENCY):
                await RisingEdge(d.clk)
        return taken

    async def load(self, model: str, *, restart: bool = True) -> None:
        if restart:
            await self.restart_weights()
        beats = with_last(self.beats[model], WEIGHT_BITS)
        n = await self.send("weights", beats)
        assert n == len(beats), f"model {model}: {n}/{len(beats)} weight beats taken"
        await ReadOnly()
        assert int(self.dut.weights_loaded.value) == 1, f"model {model}: weights_loaded low"
        await RisingEdge(self.dut.clk)

    async def wait_done(self, what: str) -> None:
        d = self.dut
        await ReadOnly()
        if not int(d.done.value):
            await First(RisingEdge(d.done), Timer(10 * TIMEOUT_CYCLES, "ns"))
            await ReadOnly()
        assert int(d.done.value) == 1, f"{what}: no done after {TIMEOUT_CYCLES} cycles"
        assert int(d.busy.value) == 0, f"{what}: busy together with done"
        await RisingEdge(d.clk)

    async def receive(self, n: int, what: str, total: int | None = None) -> list[int]:
        """Take n logits (of `total`, default n: `last` must be on the total-th)."""
        d = self.dut
        total = total or n
        d.logits__ready.value = 1
        out: list[int] = []
        await ReadOnly()
        if not int(d.logits__valid.value):
            await First(RisingEdge(d.logits__valid), Timer(10 * TIMEOUT_CYCLES, "ns"))
            await ReadOnly()
        for _ in range(TIMEOUT_CYCLES):
            valid = int(d.logits__valid.value)
            if valid and int(d.logits__ready.value):
                w = int(d.logits__payload.value)
                out.append((w & 0xFF) - 256 if w & 0x80 else w & 0xFF)
                assert (w >> 8 & 1) == (len(out) == total), f"{what}: last wrong at {len(out) - 1}"
            elif not valid and not int(d.busy.value):
                raise AssertionError(f"{what}: result transfer stopped after {len(out)} logits")
            await RisingEdge(d.clk)
            if len(out) == n:
                break
            d.logits__ready.value = int(self.rng.random() >= GAP)
            await ReadOnly()
        d.logits__ready.value = 0
        assert len(out) == n, f"{what}: {len(out)}/{n} logits in {TIMEOUT_CYCLES} cycles"
        return out

    async def perf(self) -> list[int]:
        vals = []
        for i in range(3 + self.n_layers):
            self.dut.perf_sel.value = i
            for _ in range(PERF_READ_LATENCY):  # perf_data is registered twice
                await RisingEdge(self.dut.clk)
            await ReadOnly()
            vals.append(int(self.dut.perf_data.value))
            await FallingEdge(self.dut.clk)
        return vals

    async def infer(self, model: str, k: int, what: str, status: int = 0) -> None:
        """A well-formed inference of image k; logits bit-exact for `model`, then `status`."""
        await self.start()
        values = with_last(self.images[k], IMAGE_BITS)
        n = await self.send("image", values)
        assert n == len(values), f"{what}: {n}/{len(values)} image values taken"
        got = await self.receive(len(self.golden[model][k]), what)
        want = self.golden[model][k]
        assert got == want, f"{what}: logits {got} != golden model {model} {want}"
        await self.wait_done(what)
        await self.expect_status(status, what)
        self.dut._log.info("%s: image %d bit-exact (model %s)", what, k, model)

    async def expect_aborted(self, what: str) -> None:
        """The run ended in DONE without computing: no layer ran, no logit was sent."""
        await self.wait_done(what)
        p = await self.perf()
        assert p[2] == 0 and not any(p[3:]), f"{what}: the network ran (perf {p})"
        assert int(self.dut.logits__valid.value) == 0, f"{what}: logits valid after an abort"


@cocotb.test()
async def start_without_weights(dut) -> None:
    """start before any complete model transfer: refused, flagged; then load and infer."""
    b = Bench(dut)
    await b.init()
    await b.start()
    await b.expect_status(flags("start_unloaded"), "start before the model transfer")
    assert int(dut.busy.value) == 0 and int(dut.done.value) == 0, "a refused start ran"
    # offered image values are not taken: the controller never left IDLE
    assert await b.send("image", with_last(b.images[0][:4], IMAGE_BITS), max_stall=50) == 0
    await b.load("A")
    await b.expect_status(flags("start_unloaded"), "the flag is sticky across a load")
    await b.infer("A", 0, "first image after the refused start")  # accepted start clears


@cocotb.test()
async def reset_during_weight_load(dut) -> None:
    """A design reset in the middle of the model transfer: the rest of the beats cannot make a
    complete load (the loader starts again at the header and refuses them: weights_header),
    start is refused; a full transfer recovers."""
    b = Bench(dut)
    await b.init()
    beats = with_last(b.beats["A"], WEIGHT_BITS)
    half = len(beats) // 2
    assert await b.send("weights", beats[:half]) == half
    await b.reset()
    await b.expect_status(0, "status after the reset")
    assert await b.send("weights", beats[half:]) == len(beats) - half
    # the loader restarted at the header: the rest of the beats are no valid program header
    await b.expect_status(flags("weights_header"), "rest of the beats after a reset")
    assert int(dut.weights_loaded.value) == 0, "weights_loaded high after a broken transfer"
    await b.start()
    await b.expect_status(flags("weights_header", "start_unloaded"), "start after a broken load")
    assert int(dut.busy.value) == 0, "start ran on a broken load"
    await b.load("A", restart=False)  # the loader rewound itself: no restart needed
    await b.infer("A", 1, "image after the reload")


@cocotb.test()
async def weight_stream_length(dut) -> None:
    """Weight stream too short (early last) and too long (extra beats): flagged, not loaded,
    the extra beats discarded up to their last; weights_restart clears the weight flags."""
    b = Bench(dut)
    await b.init()
    beats = b.beats["A"]
    short = with_last(beats[:-3], WEIGHT_BITS)
    assert await b.send("weights", short) == len(short)
    await b.expect_status(flags("weights_short"), "short weight stream")
    assert int(dut.weights_loaded.value) == 0, "loaded after a short stream"
    await b.restart_weights()
    await b.expect_status(0, "weights_restart clears the weight flags")
    long = with_last(beats + beats[:5], WEIGHT_BITS)
    assert await b.send("weights", long) == len(long), "the tail of a long stream was not taken"
    await b.expect_status(flags("weights_long"), "long weight stream")
    assert int(dut.weights_loaded.value) == 0, "loaded after a long stream"
    # a complete stream with no last at all, then a well-formed one: the first is flagged and
    # the loader discards up to the next last, i.e. the whole second stream
    await b.restart_weights()
    nolast = with_last(beats, WEIGHT_BITS, last=False)
    assert await b.send("weights", nolast) == len(nolast)
    await b.expect_status(flags("weights_long"), "weight stream without last")
    await b.send("weights", with_last(beats, WEIGHT_BITS))
    assert int(dut.weights_loaded.value) == 0, "loaded while discarding"
    await b.load("A", restart=False)
    await b.infer("A", 2, "image after the length faults")


@cocotb.test()
async def image_short(dut) -> None:
    """last one value early: flagged, no layer runs, DONE; the next image is bit-exact. Also a
    short image with no last at all: the next image's values complete it, which is flagged
    (too long), discarded up to that image's last; then bit-exact again."""
    b = Bench(dut)
    await b.init()
    await b.load("A")
    await b.start()
    vals = with_last(b.images[0][:-1], IMAGE_BITS)
    assert await b.send("image", vals) == len(vals)
    await b.expect_aborted("short image")
    await b.expect_status(flags("image_short"), "short image")
    await b.infer("A", 1, "image after a short one")
    # one value short and no last: the controller still waits for the final value
    await b.start()
    vals = with_last(b.images[0][:-1], IMAGE_BITS, last=False)
    assert await b.send("image", vals) == len(vals)
    assert int(dut.busy.value) == 1, "not waiting for the rest of the image"
    await b.start()  # the host's next image: refused, the controller is still loading
    vals = with_last(b.images[2], IMAGE_BITS)
    assert await b.send("image", vals) == len(vals), "the next image's values were not taken"
    await b.expect_aborted("image completed by the next one")
    await b.expect_status(flags("start_busy", "image_long"), "image completed by the next one")
    await b.infer("A", 2, "image after the misframed pair")


@cocotb.test()
async def image_long(dut) -> None:
    """One extra value (last on it): flagged, discarded, DONE; then bit-exact. An image without
    any last, then more values up to a last: all discarded; then bit-exact."""
    b = Bench(dut)
    await b.init()
    await b.load("A")
    await b.start()
    vals = with_last(b.images[0] + [17], IMAGE_BITS)
    assert await b.send("image", vals) == len(vals), "the extra value was not taken"
    await b.expect_aborted("long image")
    await b.expect_status(flags("image_long"), "long image")
    await b.infer("A", 0, "image after a long one")
    await b.start()
    vals = with_last(b.images[1], IMAGE_BITS, last=False)
    assert await b.send("image", vals) == len(vals)
    # the slot registers the fault as the final value is taken; the status flag follows
    # one cycle later (from that flip-flop)
    await b.expect_status(0, "image without last, as its final value was taken")
    await b.expect_status(flags("image_long"), "image without last")
    assert int(dut.busy.value) == 1, "stopped discarding before a last"
    await b.start()  # while discarding: refused
    await b.expect_status(flags("image_long", "start_busy"), "start while discarding")
    tail = with_last(b.images[2][:7], IMAGE_BITS)
    assert await b.send("image", tail) == len(tail)
    await b.expect_aborted("discarded tail")
    await b.infer("A", 1, "image after the discarded tail")


@cocotb.test()
async def start_while_busy(dut) -> None:
    """start during the data transfer, the computation and the result transfer: refused and
    flagged (start_busy, start_unread); the running image's logits are still bit-exact."""
    b = Bench(dut)
    await b.init()
    await b.load("A")
    await b.start()
    vals = with_last(b.images[0], IMAGE_BITS)
    half = len(vals) // 2
    assert await b.send("image", vals[:half]) == half
    await b.start()
    await b.expect_status(flags("start_busy"), "start during the data transfer")
    assert await b.send("image", vals[half:]) == len(vals) - half
    for _ in range(50):
        await RisingEdge(dut.clk)
    await b.start()  # computing
    await b.expect_status(flags("start_busy"), "start during the computation")
    await ReadOnly()
    if not int(dut.logits__valid.value):
        await RisingEdge(dut.logits__valid)
    await RisingEdge(dut.clk)
    await b.start()  # the logits are waiting, unread
    await b.expect_status(flags("start_busy", "start_unread"), "start with logits unread")
    got = await b.receive(len(b.golden["A"][0]), "logits after refused starts")
    assert got == b.golden["A"][0], f"logits {got} != golden {b.golden['A'][0]}"
    await b.wait_done("run with refused starts")
    await b.expect_status(flags("start_busy", "start_unread"), "flags stay until a start")
    await b.infer("A", 1, "next image")


@cocotb.test()
async def reset_mid_inference(dut) -> None:
    """A design reset during the data transfer, the computation and the result transfer; the
    model stays loaded (weights_loaded survives a reset) and the next image is bit-exact."""
    b = Bench(dut)
    await b.init()
    await b.load("A")
    for where, k in (("data transfer", 0), ("computation", 1), ("result transfer", 2)):
        await b.start()
        vals = with_last(b.images[k], IMAGE_BITS)
        n = len(vals) // 3 if where == "data transfer" else len(vals)
        assert await b.send("image", vals[:n]) == n
        if where == "computation":
            for _ in range(200):
                await RisingEdge(dut.clk)
        elif where == "result transfer":
            await b.receive(3, "first logits", total=len(b.golden["A"][k]))
        assert int(dut.busy.value) == 1, f"{where}: not busy before the reset"
        await b.reset()
        await ReadOnly()
        assert int(dut.busy.value) == 0 and int(dut.weights_loaded.value) == 1, (
            f"reset during the {where}: busy {dut.busy.value}, loaded {dut.weights_loaded.value}"
        )
        await RisingEdge(dut.clk)
        await b.infer("A", (k + 1) % len(b.images), f"image after a reset during the {where}")


@cocotb.test()
async def preload(dut) -> None:
    """The next image is taken while the current one computes (the preload) and runs at the
    next start, bit-exact. A faulty preloaded image (short; long, discarded up to its last)
    leaves the running image alone and is flagged by the start that takes it, whose run is
    dropped. An image preloaded while idle runs; a start before the preload is complete
    waits for the rest."""
    b = Bench(dut)
    await b.init()
    await b.load("A")
    gold = b.golden["A"]
    await b.start()
    for k in (0, 1):  # image 1 is taken during image 0's computation
        vals = with_last(b.images[k], IMAGE_BITS)
        assert await b.send("image", vals) == len(vals), f"image {k}: not all values taken"
    assert int(dut.busy.value) == 1, "image 0 ended before image 1 was preloaded"
    assert await b.receive(len(gold[0]), "image 0") == gold[0]
    await b.wait_done("image 0")
    await b.expect_status(0, "image 0")
    await b.start()  # image 1 is in: the run starts at once; a short image loads meanwhile
    vals = with_last(b.images[2][:-1], IMAGE_BITS)
    assert await b.send("image", vals) == len(vals)
    assert await b.receive(len(gold[1]), "preloaded image 1") == gold[1]
    await b.wait_done("preloaded image 1")
    await b.expect_status(0, "a preloaded short image is flagged by the run that takes it")
    await b.start()
    await b.expect_aborted("preloaded short image")
    await b.expect_status(flags("image_short"), "preloaded short image")
    vals = with_last(b.images[0] + [5], IMAGE_BITS)  # preloaded while idle: long
    assert await b.send("image", vals) == len(vals), "the long image's tail was not discarded"
    await b.expect_status(flags("image_short"), "the long image before its start")
    await b.start()
    await b.expect_aborted("preloaded long image")
    await b.expect_status(flags("image_long"), "preloaded long image")
    vals = with_last(b.images[2], IMAGE_BITS)  # preloaded while idle, half before start
    assert await b.send("image", vals[:300]) == 300
    await b.start()  # the run waits in LOAD_IN for the rest
    assert await b.send("image", vals[300:]) == len(vals) - 300
    assert await b.receive(len(gold[2]), "image completed after start") == gold[2]
    await b.wait_done("image completed after start")
    await b.expect_status(0, "image completed after start")


@cocotb.test()
async def reload_between_images(dut) -> None:
    """Model A, B, A again between images (same program, different weights). A restart and the
    new beats offered during a run wait for it to finish: the running image stays A's."""
    b = Bench(dut)
    await b.init()
    await b.load("A")
    await b.infer("A", 0, "model A")
    await b.load("B")
    await b.infer("B", 0, "model B")
    await b.infer("B", 1, "model B again")
    # reload during a run: beats are held off until done
    await b.start()
    vals = with_last(b.images[2], IMAGE_BITS)
    assert await b.send("image", vals) == len(vals)
    await b.restart_weights()
    beats = with_last(b.beats["A"], WEIGHT_BITS)
    loader = cocotb.start_soon(b.send("weights", beats, max_stall=TIMEOUT_CYCLES))
    got = await b.receive(len(b.golden["B"][2]), "run during a reload")
    assert got == b.golden["B"][2], f"run during a reload: {got} != model B {b.golden['B'][2]}"
    assert await loader == len(beats)
    await ReadOnly()
    assert int(dut.weights_loaded.value) == 1, "reload after the run did not complete"
    await RisingEdge(dut.clk)
    await b.infer("A", 2, "model A after the reload")
    with open(b.p["results"], "w") as f:
        json.dump({"reload": "ok"}, f)
