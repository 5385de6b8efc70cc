# amaranth: UnusedElaboratable=no
"""The Accelerator's control contract, checked every cycle in the Amaranth simulator.

One simulation of a tiny hand-made 3-layer model on a 4x4 array walks through: reset state,
an aborted model transfer + `weights_restart`, the real model transfer, an inference with
random input gaps and output backpressure, a back-to-back inference from DONE, two
`dbg_stop` runs (buffer read back through `dbg_*`), a second model transfer and a final
inference. A monitor checks on every cycle:

* busy/done: both 0 before the first start; busy from the cycle after `start` until `done`;
  `done` holds until the next `start`; never both;
* `image.ready` only with a model loaded or while busy, never during the result transfer; a
  value offered before `start` is taken (the preload) and counts for that run;
* `weights.ready` == ~`weights_loaded` & ~`weights_restart` & ~`busy`, and low in the cycle
  after a header beat or a beat with `last` is taken (the loader's input stage acts on it
  then) and in the header check's cycles after the header's last beat;
* `error` stays low (every stream is well formed, every start is legal);
* `logits`: no valid outside the result transfer; payload and valid hold while
  valid & ~ready; `last` exactly on the final logit;

and after each run: logits == `hwgen.golden.run.run` and the perf-counter identity
total == input + output + sum(layers) + fetch_cycles() per executed layer, each term
also measured independently from the ports.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pytest
from amaranth import Value
from amaranth.hdl import ValueLike
from amaranth.sim import Simulator, SimulatorContext

from hwgen.config import ArrayConfig
from hwgen.emit.images import (
    IMAGE_BITS,
    WEIGHT_BITS,
    image_values,
    program_beats,
    weight_beats,
    with_last,
)
from hwgen.golden.run import run
from hwgen.quant.qmodel import QConv, QFlatten, QLinear, QMaxPool, QModel
from hwgen.rtl.descriptor import DESC_LAYOUT, HEADER_LAYOUT
from hwgen.rtl.loader import HEADER_CHECK_CYCLES, LOADED_LATENCY, beats_per_word
from hwgen.rtl.top import (
    DBG_READ_LATENCY,
    LOGIT_LAYOUT,
    PERF_READ_LATENCY,
    RESULT_READ_LATENCY,
    STATUS_LAYOUT,
    Accelerator,
    fetch_cycles,
    perf_index,
)
from hwgen.schedule.lower import lower
from hwgen.schedule.program import Program
from hwgen.sim.network import layer_words
from hwgen.sim.runner import build_verilog

MAX_RUN_CYCLES = 20_000


# ---------------------------------------------------------------- model


def tiny_model(seed: int = 3) -> QModel:
    """conv3x3 p1 (5->5, ReLU) + maxpool2, conv2x2 (5->6, ReLU), linear 24->10.

    5 input channels on C=4 make the data transfer fill 2 words per pixel, the second one
    partial; 10 logits on C=4 make the last output word partial. Small weights keep most
    outputs away from the clamps, so the comparison is meaningful."""
    rng = np.random.default_rng(seed)

    def mac(n: int) -> dict[str, np.ndarray]:
        return {
            "bias": rng.integers(-500, 500, n),
            "multiplier": rng.integers(1 << 30, 1 << 31, n),
            "shift": rng.integers(6, 11, n),
        }

    c1 = QConv("c1", (5, 6, 6), (5, 6, 6), weight=rng.integers(-40, 41, (5, 5, 3, 3)),
               act_min=0, kernel=3, stride=1, padding=1, **mac(5))  # fmt: skip
    p1 = QMaxPool("p1", (5, 6, 6), (5, 3, 3), kernel=2, stride=2)
    c2 = QConv("c2", (5, 3, 3), (6, 2, 2), weight=rng.integers(-40, 41, (6, 5, 2, 2)),
               act_min=0, kernel=2, stride=1, padding=0, **mac(6))  # fmt: skip
    fl = QFlatten("f", (6, 2, 2), (24,))
    fc = QLinear("fc", (24,), (10,), weight=rng.integers(-60, 61, (10, 24)), **mac(10))
    return QModel("ctrl_tiny", (5, 6, 6), 1 / 127, (c1, p1, c2, fl, fc))


def golden(qm: QModel, x: np.ndarray) -> tuple[list[int], dict[str, np.ndarray]]:
    outs = dict(run(qm, x))
    return outs[qm.layers[-1].name].reshape(-1).tolist(), outs


# ---------------------------------------------------------------- driver + monitor


@dataclass
class RunRecord:
    start: int  # cycle of the start pulse
    dbg_stop: bool  # a dbg_stop run: no result transfer
    done_at: int = -1  # first cycle with done = 1
    in_accepted: int = 0
    ready_cycles: int = 0  # cycles with image.ready = 1
    logit_valid_cycles: int = 0
    logits: list[int] = field(default_factory=list)
    perf: list[int] = field(default_factory=list)


class Driver:
    """Single-threaded cycle driver: callers set inputs, then `await cycle()` checks the
    settled outputs of this cycle against the contract and advances the clock."""

    def __init__(
        self, ctx: SimulatorContext, dut: Accelerator, prog: Program, rng: np.random.Generator
    ) -> None:
        self.ctx, self.dut, self.prog, self.rng = ctx, dut, prog, rng
        self.n = 0  # current cycle
        self.ever_started = False
        self.run: RunRecord | None = None
        self.in_total = int(np.prod(prog.in_shape))
        self.prev_logit: int | None = None  # payload that must hold while valid & ~ready
        self.logit_payload = Value.cast(dut.logits.payload)
        self.image_payload = Value.cast(dut.image.payload)
        self.weight_payload = Value.cast(dut.weights.payload)
        self.o_data = LOGIT_LAYOUT["data"].offset
        self.o_last = LOGIT_LAYOUT["last"].offset
        self.hdr_beats = beats_per_word(HEADER_LAYOUT.size)
        self.w_taken = 0  # weight beats accepted in the current transfer
        self.checking = 0  # stall cycles left after the header's last beat
        # cycles the loader takes no beat: it acts on a header beat, or on `last` (the final
        # beat here) and `loaded` rises a cycle after that (`done`)
        self.w_hold = 0

    def g(self, sig: ValueLike) -> int:
        return self.ctx.get(sig)

    async def cycle(self) -> dict[str, int]:
        d, g = self.dut, self.g
        s = {
            "start": g(d.start), "busy": g(d.busy), "done": g(d.done),
            "i_valid": g(d.image.valid), "i_ready": g(d.image.ready),
            "o_valid": g(d.logits.valid), "o_ready": g(d.logits.ready),
            "o_payload": g(self.logit_payload),
            "w_ready": g(d.weights.ready), "w_loaded": g(d.weights_loaded),
            "w_restart": g(d.weights_restart), "error": g(d.error),
        }  # fmt: skip
        at = f"cycle {self.n}"
        assert not (s["busy"] and s["done"]), f"{at}: busy and done both high"
        assert s["error"] == 0, f"{at}: error flagged on a well-formed sequence: {s}"
        # a restart cycle takes no beat (it would be lost in the rewind); none while busy
        want_w = (1 - s["w_loaded"]) & (1 - s["w_restart"]) & (1 - s["busy"])
        want_w &= not (self.checking or self.w_hold)
        assert s["w_ready"] == want_w, f"{at}: weights.ready != ~loaded & ~restart & ~busy: {s}"
        took = bool(g(d.weights.valid) and s["w_ready"])
        last = g(self.weight_payload) >> 32 & 1
        if took:
            self.w_hold = LOADED_LATENCY if last else int(self.w_taken < self.hdr_beats)
        else:
            self.w_hold = 0 if s["w_restart"] else max(self.w_hold - 1, 0)
        if took and self.w_taken == self.hdr_beats - 1:
            # (the acting cycle, then the check's)
            self.checking = HEADER_CHECK_CYCLES + 1
        elif self.checking:
            self.checking = 0 if s["w_restart"] else self.checking - 1
        self.w_taken = 0 if s["w_restart"] or s["w_loaded"] else self.w_taken + took
        r = self.run
        running = r is not None and r.done_at < 0 and self.n > r.start
        if not self.ever_started:  # IDLE after reset (including the first start cycle)
            assert (s["busy"], s["done"]) == (0, 0), f"{at}: busy/done before any run: {s}"
        elif self.n == r.start:  # start sampled in DONE: the FSM is still in DONE
            assert (s["busy"], s["done"]) == (0, 1), f"{at}: start cycle from DONE: {s}"
        elif running:
            if s["done"]:
                r.done_at = self.n
            else:
                assert s["busy"] == 1, f"{at}: busy low during a run (started {r.start})"
        else:  # after done, before the next start
            assert (s["busy"], s["done"]) == (0, 1), f"{at}: done dropped without a start: {s}"
        # image.ready: the slot takes the next image while idle with a model or while busy
        # (the preload), never in the result transfer (its port reads the output buffer)
        if s["i_ready"]:
            assert s["w_loaded"] or s["busy"], f"{at}: image.ready idle without a model: {s}"
            assert not s["o_valid"], f"{at}: image.ready during the result transfer"
        if r is not None and r.in_accepted < self.in_total:
            r.ready_cycles += s["i_ready"] if running else 0
            r.in_accepted += s["i_ready"] & s["i_valid"]
        # logits stream
        if self.prev_logit is not None:
            assert s["o_valid"] == 1, f"{at}: logits.valid dropped before the transfer"
            assert s["o_payload"] == self.prev_logit, (
                f"{at}: logits payload changed under backpressure: "
                f"{self.prev_logit:#x} -> {s['o_payload']:#x}"
            )
        if s["o_valid"]:
            assert running and r.in_accepted == self.in_total, (
                f"{at}: logits.valid outside the result transfer"
            )
            r.logit_valid_cycles += 1
            if s["o_ready"]:
                byte = (s["o_payload"] >> self.o_data) & 0xFF
                last = (s["o_payload"] >> self.o_last) & 1
                idx = len(r.logits)
                r.logits.append(byte - 256 if byte >= 128 else byte)
                assert last == int(idx == self.prog.out_len - 1), (
                    f"{at}: logit {idx}: last={last} (out_len {self.prog.out_len})"
                )
        self.prev_logit = s["o_payload"] if s["o_valid"] and not s["o_ready"] else None
        self.n += 1
        await self.ctx.tick()
        return s

    # -------------------------------------------------------- model transfer

    async def send_weights(self, beats: list[int], gap: float) -> int:
        """Offer `beats` (payloads: `last` in bit 32 of the final one, see with_last) with random
        idle cycles; returns how many were accepted. Stops at the end of the list."""
        d = self.dut
        i = 0
        while i < len(beats):
            if gap and self.rng.random() < gap:
                self.ctx.set(d.weights.valid, 0)
            else:
                self.ctx.set(d.weights.valid, 1)
                self.ctx.set(self.weight_payload, beats[i])
            s = await self.cycle()
            if s["w_loaded"]:
                assert i == len(beats), f"weights_loaded after {i}/{len(beats)} beats"
            if self.g(d.weights.valid) and s["w_ready"]:
                i += 1
        self.ctx.set(d.weights.valid, 0)
        for _ in range(LOADED_LATENCY):  # the loader acts on the last beat, `loaded` rises
            await self.cycle()
        return i

    async def restart_weights(self) -> None:
        self.ctx.set(self.dut.weights_restart, 1)
        await self.cycle()
        self.ctx.set(self.dut.weights_restart, 0)
        assert self.g(self.dut.weights_loaded) == 0, "weights_loaded still high after restart"

    # -------------------------------------------------------- one inference

    async def run_image(
        self, values: list[int], *, gap_in: float, gap_out: float, stop: int | None = None,
        idle_before: int = 0,
    ) -> RunRecord:
        d, ctx = self.dut, self.ctx
        values = with_last(values, IMAGE_BITS)
        ctx.set(d.dbg_stop, int(stop is not None))
        ctx.set(d.dbg_layers, stop or 0)
        # The source may offer values before start: they are taken (the preload) and the run
        # starts on the image they begin.
        self.run = r = RunRecord(start=1 << 40, dbg_stop=stop is not None)
        offered = False
        for _ in range(idle_before + 1):
            i = r.in_accepted
            if not offered:
                offered = True
                ctx.set(d.image.valid, 1)
                ctx.set(self.image_payload, values[i])
            if _ == idle_before:
                r.start = self.n
                ctx.set(d.start, 1)
            await self.cycle()
            offered = offered and r.in_accepted == i
        self.ever_started = True
        ctx.set(d.start, 0)
        while r.done_at < 0:
            assert self.n - r.start < MAX_RUN_CYCLES, f"no done {MAX_RUN_CYCLES} cycles after start"
            i = r.in_accepted
            if i < len(values) and not offered:  # hold an offered value until it is taken
                offered = not (gap_in and self.rng.random() < gap_in)
                ctx.set(d.image.valid, int(offered))
                ctx.set(self.image_payload, values[i])
            elif i >= len(values):
                ctx.set(d.image.valid, 0)
            ctx.set(d.logits.ready, int(not (gap_out and self.rng.random() < gap_out)))
            await self.cycle()
            if r.in_accepted != i:
                offered = False
        ctx.set(d.logits.ready, 0)
        r.perf = await self.read_perf()
        return r

    async def read_perf(self) -> list[int]:
        """perf_data shows the counter selected PERF_READ_LATENCY edges earlier."""
        vals = []
        for k in range(3 + len(self.prog.layers)):
            self.ctx.set(self.dut.perf_sel, k)
            for _ in range(PERF_READ_LATENCY):
                await self.ctx.tick()  # plain edges: the counters are static after done
                self.n += 1
            vals.append(self.g(self.dut.perf_data))
        return vals

    async def read_buffer(self, buf: int, words: int, base: int = 0) -> np.ndarray:
        """dbg port: read of copy 0, one word per cycle from word `base`, each
        DBG_READ_LATENCY cycles after its address."""
        C = self.prog.array.cols
        out = np.zeros((words, C), dtype=np.int64)
        self.ctx.set(self.dut.dbg_buf, buf)
        for a in range(words + DBG_READ_LATENCY - 1):
            if a < words:
                self.ctx.set(self.dut.dbg_addr, base + a)
            await self.cycle()
            n = a - (DBG_READ_LATENCY - 1)
            if n < 0:
                continue
            w = self.g(self.dut.dbg_data)
            for j in range(C):
                b = (w >> (8 * j)) & 0xFF
                out[n, j] = b - 256 if b >= 128 else b
        return out


# ---------------------------------------------------------------- checks after a run


def check_perf(prog: Program, r: RunRecord, layers_run: int, what: str) -> None:
    """Counter identity from top.py's FSM: every state but IDLE/DONE counts in `total`;
    LOAD_IN in `input`; OUT (the sender's start cycle, READ/WAIT/SEND) in `output`; RUN in
    its layer's counter; FETCH (fetch_cycles per layer) only in `total`."""
    p = r.perf
    C = prog.array.cols
    total, inp, out = p[perf_index("total")], p[perf_index("input")], p[perf_index("output")]
    lays = [p[perf_index("layer", li)] for li in range(len(prog.layers))]
    assert total == r.done_at - r.start - 1, (
        f"{what}: total {total} != cycles from start to done ({r.done_at - r.start - 1})"
    )
    # LOAD_IN: the image's ready cycles after start, then one cycle to see the slot full (two
    # if the start came while the slot re-armed after the previous run)
    assert r.ready_cycles + 1 <= inp <= r.ready_cycles + 2, (
        f"{what}: input counter {inp} != image.ready cycles {r.ready_cycles} + 1 or 2"
    )
    words_read = -(-prog.out_len // C) if not r.dbg_stop else 0
    per_word = 1 + RESULT_READ_LATENCY  # READ, the read latency, then SEND
    start = 1 if words_read else 0  # OUT's first cycle: the sender's registered start
    assert out == start + per_word * words_read + r.logit_valid_cycles, (
        f"{what}: output counter {out} != {start} + {per_word} per word ({words_read} words) "
        f"+ {r.logit_valid_cycles} OUT_SEND cycles"
    )
    for li, c in enumerate(lays):
        if li < layers_run:
            lay = prog.layers[li]
            assert c >= lay.issue_cycles, (
                f"{what}: layer {lay.name}: {c} cycles < issue {lay.issue_cycles}"
            )
        else:
            assert c == 0, f"{what}: layer {li} counter {c} but the run stopped earlier"
    fetch = fetch_cycles(None)
    assert total == inp + out + sum(lays) + fetch * layers_run, (
        f"{what}: total {total} != input {inp} + output {out} + layers {lays} + "
        f"{fetch}x{layers_run}"
    )


# ---------------------------------------------------------------- the test


def test_controller_contract() -> None:
    qm = tiny_model()
    prog = lower(qm, ArrayConfig(4, 4))
    assert len(prog.layers) == 3 and prog.out_len == 10 and prog.in_cw == 2
    dut = Accelerator(prog)
    rng = np.random.default_rng(7)
    xs = [rng.integers(-128, 128, prog.in_shape).astype(np.int8) for _ in range(3)]
    gold = [golden(qm, x) for x in xs]
    for logits, _ in gold:  # the stimulus is informative: not all clamped to one value
        assert len(set(logits)) > 3, f"degenerate golden logits {logits}"
    beats = with_last(weight_beats(prog), WEIGHT_BITS)
    log: dict[str, object] = {}

    async def bench(ctx: SimulatorContext) -> None:
        drv = Driver(ctx, dut, prog, rng)
        d = dut
        # reset state: nothing happens without start
        for _ in range(5):
            await drv.cycle()
        # an aborted (garbage) model transfer, rewound by weights_restart
        # (a valid program header, so the loader takes it, then garbage words)
        n_hdr = len(program_beats(prog)) - len(prog.layers) * beats_per_word(DESC_LAYOUT.size)
        junk = beats[:n_hdr] + rng.integers(0, 1 << 32, len(beats) // 2).tolist()
        assert await drv.send_weights(junk, gap=0.3) == len(junk)
        assert drv.g(d.weights_loaded) == 0, "weights_loaded high after half a transfer"
        await drv.restart_weights()
        assert await drv.send_weights(beats, gap=0.3) == len(beats)
        await drv.cycle()
        assert drv.g(d.weights_loaded) == 1, "weights_loaded low after the whole transfer"
        # extra beats are refused once loaded
        ctx.set(d.weights.valid, 1)
        for _ in range(3):
            s = await drv.cycle()
            assert s["w_ready"] == 0, "weights.ready high after the transfer completed"
        ctx.set(d.weights.valid, 0)

        runs: list[tuple[str, RunRecord, int]] = []
        # 1: gaps on both streams, first value offered while idle
        r = await drv.run_image(image_values(prog, xs[0]).tolist(), gap_in=0.3, gap_out=0.5,
                                idle_before=4)  # fmt: skip
        assert r.logits == gold[0][0], f"run 1 logits {r.logits} != golden {gold[0][0]}"
        runs.append(("run 1", r, 3))
        # DONE holds (monitor checks done stays high) until the next start
        for _ in range(int(rng.integers(3, 9))):
            await drv.cycle()
        # 2: back to back from DONE, no gaps, no backpressure
        r = await drv.run_image(image_values(prog, xs[1]).tolist(), gap_in=0, gap_out=0)
        assert r.logits == gold[1][0], f"run 2 logits {r.logits} != golden {gold[1][0]}"
        runs.append(("run 2", r, 3))
        # 3, 4: dbg_stop after layer 0 and 1: done, no logits, the layer's buffer is golden
        for stop in (0, 1):
            r = await drv.run_image(image_values(prog, xs[2]).tolist(), gap_in=0.2, gap_out=0,
                                    stop=stop)  # fmt: skip
            assert r.logits == [] and r.logit_valid_cycles == 0, f"dbg_stop {stop}: logits sent"
            lay = prog.layers[stop]
            got = await drv.read_buffer(lay.dst, lay.out_words, lay.dst_base)
            want = layer_words(prog, stop, gold[2][1][lay.covers[-1]])
            assert np.array_equal(got, want), (
                f"dbg_stop {stop}: buffer {lay.dst} after '{lay.name}' differs at words "
                f"{np.argwhere(got != want)[:4].tolist()}"
            )
            runs.append((f"dbg_stop {stop}", r, stop + 1))
        # a second model transfer (rewind + full load), then a normal run again
        await drv.restart_weights()
        assert await drv.send_weights(beats, gap=0.1) == len(beats)
        ctx.set(d.dbg_stop, 0)
        r = await drv.run_image(image_values(prog, xs[2]).tolist(), gap_in=0.1, gap_out=0.3)
        assert r.logits == gold[2][0], f"run 5 logits {r.logits} != golden {gold[2][0]}"
        runs.append(("run 5", r, 3))
        log["runs"] = runs
        log["cycles"] = drv.n

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    t0 = time.perf_counter()
    sim.run()
    wall = time.perf_counter() - t0
    runs = log["runs"]
    assert len(runs) == 5, "the testbench did not reach its end"
    full_layers = None
    for what, r, n_layers in runs:
        check_perf(prog, r, n_layers, what)
        lays = r.perf[3 : 3 + n_layers]
        # RUN time does not depend on the data or on the stream gaps
        if n_layers == 3:
            full_layers = full_layers or lays
            assert lays == full_layers, f"{what}: layer cycles {lays} != {full_layers}"
        else:
            assert lays == full_layers[:n_layers], f"{what}: layer cycles {lays}"
    print(f"{log['cycles']} cycles in {wall:.1f} s; layer cycles {full_layers}, "
          f"issue {[lay.issue_cycles for lay in prog.layers]}")  # fmt: skip


@pytest.mark.parametrize("array", ["1x1", "2x3"])
def test_small_arrays_convert_and_run(array: str) -> None:
    """Degenerate geometries elaborate, convert to Verilog, and still infer bit-exactly."""
    qm = tiny_model()
    prog = lower(qm, ArrayConfig.parse(array))
    text = build_verilog(Accelerator(prog), "accel")
    assert "module accel" in text and "logits__payload" in text, "unexpected Verilog"
    dut = Accelerator(prog)
    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, prog.in_shape).astype(np.int8)
    want, _ = golden(qm, x)
    result: dict[str, RunRecord] = {}

    async def bench(ctx: SimulatorContext) -> None:
        drv = Driver(ctx, dut, prog, rng)
        beats = with_last(weight_beats(prog), WEIGHT_BITS)
        assert await drv.send_weights(beats, gap=0) == len(beats)
        r = await drv.run_image(image_values(prog, x).tolist(), gap_in=0.1, gap_out=0.3)
        result["r"] = r

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    r = result["r"]
    assert r.logits == want, f"{array}: logits {r.logits} != golden {want}"
    check_perf(prog, r, len(prog.layers), array)


def test_start_while_busy_is_refused_in_every_state() -> None:
    """`start` held high for a whole run (from the cycle after the accepted one): every busy
    cycle is a refused start, in every controller state including FETCH. The run is
    unaffected (logits golden, same cycle count as with a pulse); `status` holds start_busy
    from the first cycle and start_unread from the first result-transfer cycle on."""
    qm = tiny_model()
    prog = lower(qm, ArrayConfig(4, 4))
    dut = Accelerator(prog)
    rng = np.random.default_rng(9)
    x = rng.integers(-128, 128, prog.in_shape).astype(np.int8)
    want, _ = golden(qm, x)
    busy_bit = 1 << STATUS_LAYOUT["start_busy"].offset
    unread_bit = 1 << STATUS_LAYOUT["start_unread"].offset
    out: dict[str, object] = {}

    async def bench(ctx: SimulatorContext) -> None:
        drv = Driver(ctx, dut, prog, rng)
        beats = with_last(weight_beats(prog), WEIGHT_BITS)
        assert await drv.send_weights(beats, gap=0) == len(beats)
        # (the image slot opens the cycle after weights_loaded rises: one idle cycle, so the
        # first run's image is not held back by a cycle the second run does not see)
        await drv.cycle()
        r0 = await drv.run_image(image_values(prog, x).tolist(), gap_in=0, gap_out=0)
        values = with_last(image_values(prog, x), IMAGE_BITS)
        image = Value.cast(dut.image.payload)
        ctx.set(dut.logits.ready, 1)
        ctx.set(dut.start, 1)
        await ctx.tick()  # accepted from DONE
        i, logits, cycles, seen = 0, [], 0, []
        while not ctx.get(dut.done):
            assert cycles < MAX_RUN_CYCLES, "no done with start held high"
            ctx.set(dut.start, 1)
            ctx.set(dut.image.valid, int(i < len(values)))
            ctx.set(image, values[min(i, len(values) - 1)])
            took = ctx.get(dut.image.ready) and i < len(values)
            if ctx.get(dut.logits.valid):
                logits.append(ctx.get(dut.logits.payload.data))
            await ctx.tick()
            seen.append(ctx.get(dut.status.as_value()))
            i += took
            cycles += 1
        ctx.set(dut.start, 0)
        out.update(r0=r0, logits=logits, cycles=cycles, seen=seen,
                   perf=await drv.read_perf(), error=ctx.get(dut.error))  # fmt: skip

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert out["r0"].logits == want
    assert out["logits"] == want, f"logits {out['logits']} != golden {want} with start held"
    seen = out["seen"]
    assert out["cycles"] == out["perf"][perf_index("total")] == out["r0"].perf[0], "timing changed"
    assert set(seen) == {busy_bit, busy_bit | unread_bit}, f"status values {set(seen)}"
    assert seen[0] == busy_bit, f"first cycle of the run: status {seen[0]:#x}"
    first_unread = seen.index(busy_bit | unread_bit)
    # start_unread from the first OUT_READ cycle: the result transfer takes 1 + the read
    # latency cycles per word
    # plus one per logit (no backpressure), and every later cycle keeps it
    assert all(s & unread_bit for s in seen[first_unread:])
    assert len(seen) - first_unread == out["perf"][perf_index("output")], (
        f"start_unread first set {len(seen) - first_unread} cycles before done, output counter "
        f"{out['perf'][perf_index('output')]}"
    )
    assert out["error"] == 1
