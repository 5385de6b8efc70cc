"""Window generation: Sequencer + RowFeeder chain vs the emulator's per-row element streams.

The RowFeeders generate each array row's operand stream from the activation buffer with
incremental address arithmetic (no im2col). This test builds the same chain as
hwgen/rtl/top.py around read-only buffer copies holding random words (every lane, padding
lanes included, so a wrong lane or word is visible), runs every layer of small hand-made
programs in the Amaranth simulator, and compares, cycle by cycle and row by row,
(valid, first, last, a) with the stream `hwgen.schedule.emulate` computes
(`row_pixel_states` + `_window_offsets` + bounds check). That golden is itself checked
against a closed-form im2col for every real output pixel. The sequencer's weight-memory
reads and its `busy` are checked at their cycle too: the weight alignment in top.py relies
on them.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pytest
from amaranth import Fragment, Module, Value, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator, SimulatorContext

from hwgen.config import ArrayConfig
from hwgen.quant.qmodel import QAdd, QConcat, QConv, QFlatten, QLinear, QMaxPool, QModel
from hwgen.rtl.descriptor import DESC_LAYOUT, pack_descriptor
from hwgen.rtl.feeder import FEEDER_LATENCY, ROW_IN_LAYOUT, RowFeeder, feed_cfg
from hwgen.rtl.sequencer import Sequencer
from hwgen.rtl.traits import SmallDeviceSim, trait
from hwgen.schedule.emulate import _window_offsets, row_pixel_states
from hwgen.schedule.lower import lower
from hwgen.schedule.program import MODE_CONV, MODE_DIRECT, LayerPlan, Program

# Cycles from the `start` pulse to the sequencer's first registered token: start is sampled
# (running goes high), then the first element is computed and registered.
ISSUE_LATENCY = 2


def _bits(n: int) -> int:
    return max(1, (max(n, 1) - 1).bit_length())  # same as hwgen.rtl.top._bits


# ---------------------------------------------------------------- harness


class WindowHarness(wiring.Component):
    """Sequencer + R RowFeeders wired as in top.py; row i reads private copies of both
    activation buffers (read-only memories initialised with ``images``)."""

    def __init__(self, rows: int, cols: int, images: Sequence[np.ndarray]) -> None:
        self.R, self.C = rows, cols
        self.images = images
        self.addr_width = _bits(max(len(im) for im in images))
        super().__init__(
            {
                "desc": In(DESC_LAYOUT),
                "start": In(1),
                "start_next": In(1),
                "busy": Out(1),
                "rows": Out(data.ArrayLayout(ROW_IN_LAYOUT, rows)),
                "convw_en": Out(1),
                "convw_addr": Out(unsigned(24)),
                "directw_en": Out(1),
                "directw_addr": Out(unsigned(24)),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        C = self.C
        seq = Sequencer(cols=C, rows=self.R)
        m.submodules.seq = seq
        m.d.comb += [
            seq.desc.eq(self.desc),
            seq.start.eq(self.start),
            seq.start_next.eq(self.start_next),
            self.busy.eq(seq.busy),
            self.convw_en.eq(seq.convw_en),
            self.convw_addr.eq(seq.convw_addr),
            self.directw_en.eq(seq.directw_en),
            self.directw_addr.eq(seq.directw_addr),
        ]
        words = [_pack(im, C) for im in self.images]
        prev = None
        for i in range(self.R):
            f = RowFeeder(index=i, rows=self.R, cols=C, addr_width=self.addr_width)
            m.submodules[f"feed{i}"] = f
            if prev is None:
                m.d.comb += [f.tok_in.eq(seq.tok), f.pix_in.eq(seq.pix),
                             f.cfg_in.eq(feed_cfg(m, self.desc, seq.rem, self.R, trait(
                                 platform, "path_registers", True)))]
            else:
                m.d.comb += f.follow(prev)
            for b in range(2):
                mem = memory.Memory(shape=unsigned(8 * C), depth=len(words[b]), init=words[b])
                m.submodules[f"act{b}_{i}"] = mem
                rp = mem.read_port()  # registered, as in top.py
                m.d.comb += [rp.addr.eq(f.raddr), getattr(f, f"rdata{b}").eq(rp.data)]
            m.d.comb += self.rows[i].eq(f.row)
            prev = f
        return m


def _pack(img: np.ndarray, C: int) -> list[int]:
    out = []
    for row in np.asarray(img, dtype=np.int64):
        v = 0
        for j, x in enumerate(row.tolist()):
            v |= (int(x) & 0xFF) << (8 * j)
        out.append(v)
    return out


# ---------------------------------------------------------------- golden


@dataclass(frozen=True)
class Token:
    valid: int
    first: int
    last: int
    a: int | None  # None: don't care (invalid cycle)


def _is_rem(lay: LayerPlan, t: int) -> bool:
    """Pixel tile t is the layer's remainder tile (direct mode, K split over kernel rows)."""
    return bool(lay.rem_split) and t == lay.ptiles - 1


DONT_CARE = 1 << 20  # an element whose weight is 0 by construction (read anything)


def _dont_care(lay: LayerPlan, R: int, i: int, ky: int) -> bool:
    """In a remainder tile: a part's kernel rows past kh, or a block past the last pixel."""
    P = lay.rem_split
    h = lay.rem_k_len // (lay.kw * lay.cin)
    real = lay.out_h * lay.out_w - (lay.ptiles - 1) * R
    return (i % P) * h + ky >= lay.kh or i // P >= real


def golden_rows(lay: LayerPlan, R: int, C: int, src: np.ndarray) -> list[np.ndarray]:
    """a[tile][i, k] as the emulator computes it (tile = pixel tile; same for every group).
    A remainder tile has rem_k_len elements per row, read without a bounds check; elements
    that meet a zero weight by construction are DONT_CARE."""
    offs = _window_offsets(lay, C)
    states = row_pixel_states(lay, R)
    out = []
    for t in range(lay.ptiles):
        rem = _is_rem(lay, t)
        k_len = lay.rem_k_len if rem else lay.k_len
        a = np.zeros((R, k_len), dtype=np.int64)
        for i in range(R):
            iy0, ix0, base = states[t][i]
            for k, (ky, kx, off, lane) in enumerate(offs[:k_len]):
                iy, ix = iy0 + ky, ix0 + kx
                if rem and _dont_care(lay, R, i, ky):
                    a[i, k] = DONT_CARE
                elif lay.mode == MODE_DIRECT or rem:  # no bounds (zero weights past the input)
                    a[i, k] = src[base + off, lane] if base + off < len(src) else 0
                elif 0 <= iy < lay.in_h and 0 <= ix < lay.in_w:
                    a[i, k] = src[base + off, lane]
        out.append(a)
    return out


def im2col_check(lay: LayerPlan, R: int, C: int, src: np.ndarray, a: list[np.ndarray]) -> None:
    """Closed-form window of every real output pixel (no increments): guards the golden. In
    a remainder tile row i holds pixel (ptiles-1)*R + i//P, kernel rows from (i%P)*h."""
    for t in range(lay.ptiles):
        rem = _is_rem(lay, t)
        P = lay.rem_split if rem else 1
        h = lay.rem_k_len // (lay.kw * lay.cin) if rem else lay.kh
        for i in range(R):
            p = 0 if lay.mode == MODE_DIRECT else t * R + i // P
            if p >= lay.out_h * lay.out_w or (rem and i // P >= R // P):
                continue  # padding row of the last tile: only the emulator defines it
            oy, ox = divmod(p, lay.out_w)
            want = []
            for ky in range(h):
                for kx in range(lay.kw):
                    iy = oy * lay.stride - lay.pad + ky + (i % P) * h
                    ix = ox * lay.stride - lay.pad + kx
                    if lay.mode == MODE_DIRECT:  # row i streams K part i % ksplit
                        iy, ix = 0, (i % lay.ksplit) * lay.kw + kx
                    for c in range(lay.cin):
                        if rem and _dont_care(lay, R, i, ky):
                            want.append(DONT_CARE)
                            continue
                        inside = 0 <= iy < lay.in_h and 0 <= ix < lay.in_w
                        word = lay.in_base + (iy * lay.in_w + ix) * lay.in_cw + c // C
                        if lay.mode == MODE_DIRECT or rem:
                            inside = word < len(src)
                        want.append(int(src[word, c % C]) if inside else 0)
            assert a[t][i].tolist() == want, (
                f"{lay.name}: emulator window of tile {t} row {i} (pixel {p}) is not the im2col"
            )


def expected_streams(
    lay: LayerPlan, R: int, C: int, src: np.ndarray
) -> tuple[list[list[Token]], list[tuple[int, int, int, int]]]:
    """Per issue cycle n (0 = the sequencer's first token): row tokens and weight reads
    (convw_en, convw_addr, directw_en, directw_addr); row i sees cycle n's token at
    n + FEEDER_LATENCY + i."""
    a = golden_rows(lay, R, C, src)
    im2col_check(lay, R, C, src, a)
    toks: list[list[Token]] = []
    conv: list[tuple[int, int]] = []  # (convw_en, convw_addr) per issue cycle
    direct: dict[int, int] = {}  # issue cycle -> directw_addr (the read may outlast the tile)
    for g in range(lay.groups):
        for tp in range(lay.ptiles):
            rem = _is_rem(lay, tp)
            k_len = lay.rem_k_len if rem else lay.k_len
            n0 = len(toks)
            if rem:  # the remainder's pre-skewed words: rem_span per group, read from the
                # tile's first cycle on, past its end when it is overlapped (rem_interval < span)
                for t in range(lay.rem_span):
                    direct[n0 + t] = lay.rem_wbase + g * lay.rem_span + t
            for t in range(lay.rem_interval if rem else lay.interval):
                v = int(t < k_len)
                first, last = int(t == 0), int(t == k_len - 1)
                toks.append(
                    [Token(v, first, last, int(a[tp][i, t]) if v and a[tp][i, t] != DONT_CARE
                           else None) for i in range(R)]
                )
                if lay.mode == MODE_CONV and not rem:
                    # conv weights: word wbase + g*K + t, read only for real elements
                    conv.append((v, lay.wbase + g * lay.k_len + t if v else -1))
                else:
                    conv.append((0, -1))
                if lay.mode == MODE_DIRECT:
                    # pre-skewed direct image: one word per issue cycle, interval per group
                    direct[n0 + t] = lay.wbase + (g * lay.ptiles + tp) * lay.interval + t
    n_all = max(len(toks), max(direct, default=-1) + 1)
    wts = [(*(conv[n] if n < len(conv) else (0, -1)), int(n in direct), direct.get(n, -1))
           for n in range(n_all)]
    return toks, wts


# ---------------------------------------------------------------- models


def _qconv(
    rng: np.random.Generator, name: str, cin: int, hw: tuple[int, int], cout: int, k: int,
    s: int, p: int, relu: bool = True,
) -> QConv:
    h, w = hw
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    return QConv(
        name, (cin, h, w), (cout, oh, ow),
        weight=rng.integers(-127, 128, (cout, cin, k, k)),
        bias=rng.integers(-2000, 2000, cout),
        multiplier=rng.integers(1 << 30, 1 << 31, cout),
        shift=rng.integers(4, 11, cout),
        act_min=0 if relu else -128, kernel=k, stride=s, padding=p,
    )  # fmt: skip


def _qlinear(rng: np.random.Generator, name: str, nin: int, nout: int) -> QLinear:
    return QLinear(
        name, (nin,), (nout,),
        weight=rng.integers(-127, 128, (nout, nin)),
        bias=rng.integers(-2000, 2000, nout),
        multiplier=rng.integers(1 << 30, 1 << 31, nout),
        shift=rng.integers(4, 11, nout),
    )  # fmt: skip


def model_s1p0() -> QModel:
    """3x3 stride 1 pad 0: out 5x5 (P=25: partial last tile on 4 and 3 rows, 8 > out_w)."""
    rng = np.random.default_rng(11)
    c1 = _qconv(rng, "c1", 3, (7, 7), 4, 3, 1, 0)
    fc = _qlinear(rng, "fc", 4 * 5 * 5, 10)
    return QModel("s1p0", (3, 7, 7), 1 / 127, (c1, QFlatten("f", (4, 5, 5), (100,)), fc))


def model_s2p1() -> QModel:
    """Cin 5 (2 words/pixel on C=4), stride 2 pad 1 twice: 9x9 -> 5x5 -> 3x3 (out_w < R)."""
    rng = np.random.default_rng(12)
    c1 = _qconv(rng, "c1", 5, (9, 9), 6, 3, 2, 1)
    c2 = _qconv(rng, "c2", 6, (5, 5), 7, 3, 2, 1)
    fc = _qlinear(rng, "fc", 7 * 3 * 3, 12)
    return QModel("s2p1", (5, 9, 9), 1 / 127, (c1, c2, QFlatten("f", (7, 3, 3), (63,)), fc))


def model_pool() -> QModel:
    """Pad 1 stride 1 on 7x7 feeding a 2x2 pool: the conv is cropped to 6x6 (dead outputs)."""
    rng = np.random.default_rng(13)
    c1 = _qconv(rng, "c1", 2, (7, 7), 3, 3, 1, 1)
    pool = QMaxPool("p1", (3, 7, 7), (3, 3, 3), kernel=2, stride=2)
    c2 = _qconv(rng, "c2", 3, (3, 3), 9, 2, 1, 0)
    fc = _qlinear(rng, "fc", 9 * 2 * 2, 40)  # 40 outputs: several direct groups on small R*C
    return QModel(
        "pool", (2, 7, 7), 1 / 127, (c1, pool, c2, QFlatten("f", (9, 2, 2), (36,)), fc)
    )


def model_rect() -> QModel:
    """Non-square maps (catch h/w mix-ups), a 1x1 stride-2 conv with K = 3 < R and several
    channel groups (interval > K: weights must still advance by K per group), pad 2 with a
    3x3 kernel (edge windows entirely in the padding)."""
    rng = np.random.default_rng(14)
    c1 = _qconv(rng, "c1", 4, (5, 11), 3, 3, 1, 1)
    c2 = _qconv(rng, "c2", 3, (5, 11), 10, 1, 2, 0)
    c3 = _qconv(rng, "c3", 10, (3, 6), 3, 3, 1, 2)
    fc = _qlinear(rng, "fc", 3 * 5 * 8, 7)
    return QModel(
        "rect", (4, 5, 11), 1 / 127, (c1, c2, c3, QFlatten("f", (3, 5, 8), (120,)), fc)
    )


def model_dag() -> QModel:
    """A residual Add and a Concat: c2 reads c1 inside the Add's operand region (pixel stride
    wider than its channels: c_step > 1, in_base), the Add reads its operand pair, c4a/c4b
    write a Concat region the linear reads (channel slots with gaps on C that do not divide
    the parts' channels)."""
    rng = np.random.default_rng(15)
    c1 = _qconv(rng, "c1", 3, (7, 7), 5, 3, 1, 1)
    c2 = replace(_qconv(rng, "c2", 5, (7, 7), 3, 1, 1, 0), inputs=("c1",))
    c3 = _qconv(rng, "c3", 3, (7, 7), 5, 3, 1, 1, relu=False)
    add = QAdd(
        "add", (5, 7, 7), (5, 7, 7), inputs=("c3", "c1"), weight=np.array([100, 77]),
        bias=np.zeros(5, int), multiplier=np.full(5, 1 << 30), shift=np.full(5, 7),
    )  # fmt: skip
    c4a = _qconv(rng, "c4a", 5, (7, 7), 3, 3, 2, 1)
    c4b = replace(_qconv(rng, "c4b", 5, (7, 7), 6, 3, 2, 0), inputs=("add",))
    c4b = replace(c4b, out_shape=(6, 4, 4), padding=1)
    cat = QConcat("cat", (3, 4, 4), (9, 4, 4), inputs=("c4a", "c4b"))
    fc = _qlinear(rng, "fc", 9 * 4 * 4, 10)
    return QModel(
        "dag", (3, 7, 7), 1 / 127,
        (c1, c2, c3, add, c4a, c4b, cat, QFlatten("f", (9, 4, 4), (144,)), fc),
    )  # fmt: skip


def model_rem() -> QModel:
    """A remainder tile in several channel groups (hwgen.schedule.lower._remainder): 3x3 pad
    0 on 8x9 -> 6x7 = 42 pixels, 9 channels; on 4x4 the last tile holds 2 pixels: K split
    P = 2 over kernel rows (rows 0-1, 2-3: the second part runs past the kernel); c2 (1x2,
    stride 4) is a single remainder tile per group on 4x4 and 8x8, so nothing overlaps its
    weight words' tail."""
    rng = np.random.default_rng(16)
    c1 = _qconv(rng, "c1", 4, (8, 9), 9, 3, 1, 0)
    c2 = _qconv(rng, "c2", 9, (6, 7), 5, 3, 4, 0)  # 1x2: a lone remainder tile per group
    fc = _qlinear(rng, "fc", 5 * 1 * 2, 5)
    return QModel("rem", (4, 8, 9), 1 / 127, (c1, c2, QFlatten("f", (5, 1, 2), (10,)), fc))


MODELS = {
    "s1p0": model_s1p0, "s2p1": model_s2p1, "pool": model_pool, "rect": model_rect,
    "dag": model_dag, "rem": model_rem,
}  # fmt: skip
ARRAYS = ("4x4", "3x5", "8x8", "5x3", "1x1")


# ---------------------------------------------------------------- simulation


def run_program(prog: Program, seed: int, platform=None) -> dict[str, int]:
    """Run every layer of `prog` (then layer 0 again, to check nothing leaks from the previous
    layer) through the harness; assert every row token and weight read. Returns stats.
    ``platform``: the traits it is elaborated with (hwgen.rtl.traits; default none)."""
    R, C = prog.array.rows, prog.array.cols
    rng = np.random.default_rng(seed)
    images = [rng.integers(-128, 128, (prog.buf_depth[b], C)) for b in range(2)]
    dut = WindowHarness(R, C, images)
    order = [*range(len(prog.layers)), 0]
    plans = [prog.layers[li] for li in order]
    exp = [expected_streams(lay, R, C, images[lay.src]) for lay in plans]
    descs = [DESC_LAYOUT.const(pack_descriptor(lay, R)) for lay in plans]
    rows_v = [Value.cast(dut.rows[i]) for i in range(R)]
    lay_v = ROW_IN_LAYOUT
    o_valid, o_first, o_last, o_a = (lay_v[n].offset for n in ("valid", "first", "last", "a"))
    stats = {"cycles": 0, "tokens": 0}

    def unpack(word: int) -> Token:
        a = (word >> o_a) & 0xFF
        return Token((word >> o_valid) & 1, (word >> o_first) & 1, (word >> o_last) & 1,
                     a - 256 if a >= 128 else a)  # fmt: skip

    async def bench(ctx: SimulatorContext) -> None:
        for n_lay, (lay, (toks, wts), desc) in enumerate(zip(plans, exp, descs, strict=True)):
            where = f"{prog.model} {prog.array} layer #{n_lay} '{lay.name}'"
            # top.py holds the whole descriptor for a cycle, then pulses start (FETCH's
            # final cycle): the sequencer's per-layer registers are valid at start
            ctx.set(dut.desc, desc)
            ctx.set(dut.start_next, 1)  # (as top.py: high in the cycle before start)
            await ctx.tick()
            ctx.set(dut.start_next, 0)
            ctx.set(dut.start, 1)
            n_issue = len(toks)
            tail = ISSUE_LATENCY + FEEDER_LATENCY + R + 2  # until the last row is quiet
            for cyc in range(n_issue + tail + ISSUE_LATENCY):
                # the sequencer: busy from the start pulse until its last token is out
                busy = ctx.get(dut.busy)
                want_busy = int(cyc < ISSUE_LATENCY - 1 + n_issue)
                assert busy == want_busy, f"{where}: busy={busy} at cycle {cyc}, want {want_busy}"
                n = cyc - ISSUE_LATENCY
                wen, waddr, den, daddr = wts[n] if 0 <= n < len(wts) else (0, -1, 0, -1)
                got_w = (ctx.get(dut.convw_en), ctx.get(dut.convw_addr),
                         ctx.get(dut.directw_en), ctx.get(dut.directw_addr))  # fmt: skip
                assert got_w[0] == wen and got_w[2] == den, (
                    f"{where}: issue cycle {n}: (convw_en, directw_en) = "
                    f"{(got_w[0], got_w[2])}, want {(wen, den)}"
                )
                if wen:
                    assert got_w[1] == waddr, (
                        f"{where}: issue cycle {n}: convw_addr {got_w[1]} want {waddr}"
                    )
                if den:
                    assert got_w[3] == daddr, (
                        f"{where}: issue cycle {n}: directw_addr {got_w[3]} want {daddr}"
                    )
                # row i: issue cycle n's token appears FEEDER_LATENCY + i cycles later
                for i in range(R):
                    n = cyc - ISSUE_LATENCY - FEEDER_LATENCY - i
                    want = toks[n][i] if 0 <= n < n_issue else Token(0, 0, 0, None)
                    got = unpack(ctx.get(rows_v[i]))
                    # flags are compared on every cycle (the feeder masks them off valid);
                    # the operand only where valid: off-valid bytes are don't-care for the PE
                    ok = (got.valid, got.first, got.last) == (want.valid, want.first, want.last)
                    ok = ok and (not want.valid or want.a is None or got.a == want.a)
                    if not ok:
                        g, rest = divmod(n, lay.ptiles * lay.interval)
                        tp, t = divmod(rest, lay.interval)
                        raise AssertionError(
                            f"{where}: row {i} at cycle {cyc} (group {g}, pixel tile {tp}, "
                            f"t={t}): got {got}, want {want}"
                        )
                    stats["tokens"] += want.valid
                await ctx.tick()
                ctx.set(dut.start, 0)
                stats["cycles"] += 1

    sim = Simulator(Fragment.get(dut, platform))
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return stats


CASES = [(model, arr) for model in MODELS for arr in ARRAYS]


@pytest.mark.parametrize("model,array", CASES)
def test_window_streams(model: str, array: str) -> None:
    prog = lower(MODELS[model](), ArrayConfig.parse(array))
    t0 = time.perf_counter()
    st = run_program(prog, seed=zlib.crc32(f"{model}/{array}".encode()))  # fixed per case
    print(f"{model} {array}: {st['cycles']} cycles, {st['tokens']} row tokens, "
          f"{time.perf_counter() - t0:.1f} s")  # fmt: skip


SMALL_CASES = [(model, arr) for model in MODELS for arr in ("4x4", "3x5", "1x1")]


@pytest.mark.parametrize("model,array", SMALL_CASES)
def test_window_streams_small_device(model: str, array: str) -> None:
    """The small device's forms (hwgen.rtl.traits: `path_registers` off, the sequencer's tile
    loads from its per-layer registers, row 0's plain constants from the descriptor): the
    same token, operand and weight read in every cycle."""
    prog = lower(MODELS[model](), ArrayConfig.parse(array))
    run_program(prog, seed=zlib.crc32(f"{model}/{array}".encode()), platform=SmallDeviceSim())


def test_cases_cover_the_brief() -> None:
    """The programs above really contain the shapes this test is meant to exercise."""
    seen: set[str] = set()
    for model in MODELS:
        for array in ARRAYS:
            prog = lower(MODELS[model](), ArrayConfig.parse(array))
            R, C = prog.array.rows, prog.array.cols
            for lay in prog.layers:
                if lay.mode == MODE_DIRECT:
                    seen.add("direct")
                    if lay.groups > 1:
                        seen.add("direct multi-group")
                    if lay.ksplit > 1:
                        seen.add("direct K split")
                        if lay.in_cw > 1:
                            seen.add("direct K split by pixel")
                    continue
                if (lay.kh, lay.stride, lay.pad) == (3, 1, 0):
                    seen.add("3x3 s1 p0")
                if (lay.kh, lay.stride, lay.pad) == (3, 2, 1):
                    seen.add("3x3 s2 p1")
                if lay.cin % C and lay.in_cw > 1:
                    seen.add("cin not a multiple of C, several words/pixel")
                if lay.c_step > 1 and lay.in_base:
                    seen.add("strided read of a region part")
                if lay.out_w < R:
                    seen.add("out_w < R")
                if (lay.out_h * lay.out_w) % R:
                    seen.add("partial last tile")
                if lay.rem_split:
                    seen.add("remainder tile")
                    if lay.groups > 1:
                        seen.add("remainder tile, several groups")
                    if lay.rem_split * lay.rem_k_len > lay.k_len:
                        seen.add("remainder tile, a part past the kernel")
                    seen.add("remainder tile, " + ("overlapped" if lay.rem_interval
                                                   < lay.rem_span else "not overlapped"))
                if lay.groups > 1:
                    seen.add("several channel groups")
                    if lay.k_len < R:
                        seen.add("K < R with several channel groups")
    want = {"direct", "direct multi-group", "direct K split", "direct K split by pixel",
            "3x3 s1 p0", "3x3 s2 p1", "out_w < R",
            "cin not a multiple of C, several words/pixel", "partial last tile",
            "several channel groups", "K < R with several channel groups",
            "strided read of a region part", "remainder tile", "remainder tile, several groups",
            "remainder tile, a part past the kernel", "remainder tile, overlapped",
            "remainder tile, not overlapped"}  # fmt: skip
    assert want <= seen, f"not covered: {sorted(want - seen)}"
