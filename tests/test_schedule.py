"""The schedule, executed in NumPy exactly as the hardware walks it, equals the golden model."""

from __future__ import annotations

import numpy as np
import pytest

from hwgen.config import ArrayConfig
from hwgen.datasets import load_mnist_sample
from hwgen.evaluate import build_qmodel
from hwgen.golden.run import quantize_input, run
from hwgen.quant.qmodel import QConv, QFlatten, QLinear, QMaxPool, QModel
from hwgen.schedule.emulate import buffer_to_chw, emulate
from hwgen.schedule.lower import BufferLimits, ScheduleError, lower


@pytest.mark.parametrize(
    "model,array",
    [("mnist_cnn", "8x8"), ("mnist_cnn", "3x5"), ("tiny_cnn", "4x4"), ("tiny_cnn", "16x16"),
     ("tiny_cnn", "1x1"), ("mnist_cnn", "12x12"), ("mnist_cnn", "16x16")],
)
def test_emulated_program_equals_golden(model: str, array: str) -> None:
    qm = build_qmodel(model)
    prog = lower(qm, ArrayConfig.parse(array))
    images, _ = load_mnist_sample()
    for x in quantize_input(images[:2]):
        outs = dict(run(qm, x))
        logits, snaps = emulate(prog, x)
        assert np.array_equal(logits, outs[qm.layers[-1].name].reshape(-1))
        for lay, snap in zip(prog.layers, snaps, strict=True):
            want = np.asarray(outs[lay.covers[-1]])
            if want.ndim == 1:
                want = want.reshape(-1, 1, 1)
            got = buffer_to_chw(snap, lay.final_h, lay.final_w, lay.cout, lay.dst_stride,
                                lay.dst_base)
            assert np.array_equal(got, want), f"{lay.name} differs"


def test_mnist_program_shape() -> None:
    prog = lower(build_qmodel("mnist_cnn"), ArrayConfig())
    assert [lay.name for lay in prog.layers][:2] == ["conv1", "conv2"]
    assert [lay.mode for lay in prog.layers] == [0, 0, 1, 1]
    assert prog.layers[0].pool_en and prog.layers[1].pool_en
    assert prog.macs == 2_528_000  # the model's MACs
    # conv2's 11x11 output feeds a floor-mode 2x2 pool: row/column 10 are never computed
    assert prog.layers[1].out_h == prog.layers[1].out_w == 10
    assert prog.executed_macs == 2_528_000 - 21 * 64 * 288
    text = prog.text()
    assert "DIRECT" in text and "maxpool2" in text


def test_preload_marks_and_input_kept_live() -> None:
    """The input region stays live (no layer writes over it) and the layers after its last
    reader that do not read buffer 0 (but never the last) are marked `preload`: mnist_cnn's
    conv2 and nothing else. A buffer limit the kept input does not fit falls back to the
    plain allocation with no preload."""
    prog = lower(build_qmodel("mnist_cnn"), ArrayConfig(8, 8))
    in_words = 28 * 28 * prog.in_cw
    assert [lay.preload for lay in prog.layers] == [0, 1, 0, 0]
    assert all(lay.dst_base >= in_words for lay in prog.layers if lay.dst == 0)
    assert prog.buf_depth[0] == in_words + prog.layers[1].out_words  # conv2's pooled map
    tight = lower(build_qmodel("mnist_cnn"), ArrayConfig(8, 8),
                  BufferLimits(act_words=in_words + 10))
    assert [lay.preload for lay in tight.layers] == [0, 0, 0, 0]
    assert tight.buf_depth[0] == in_words and tight.layers[-1].dst_base == 0


def test_linear_k_split() -> None:
    """A linear layer with fewer outputs than PEs is split along K (LayerPlan.ksplit): fc1 on
    16x16 by word (4 parts of 25 words), on 12x12 by pixel (2 parts of 13 pixels, the last
    one past the input), fc2 on 8x8 by word; the direct-weight memory shrinks with it."""
    qm = build_qmodel("mnist_cnn")
    by_name = {}
    for array in ("16x16", "12x12", "8x8"):
        prog = lower(qm, ArrayConfig.parse(array))
        by_name[array] = {lay.name: lay for lay in prog.layers}
        assert prog.directw_depth == sum(
            lay.issue_cycles for lay in prog.layers if lay.mode == 1
        ) + sum(lay.groups * lay.rem_span for lay in prog.layers)
    fc1 = by_name["16x16"]["fc1"]
    assert (fc1.ksplit, fc1.kw, fc1.cin, fc1.in_cw, fc1.interval) == (4, 25, 16, 1, 430)
    assert fc1.macs == 64 * 1600  # executed MACs: the layer's, not K/P
    fc1 = by_name["12x12"]["fc1"]
    assert (fc1.ksplit, fc1.kw, fc1.cin, fc1.in_cw, fc1.interval) == (2, 13, 64, 6, 854)
    assert by_name["8x8"]["fc1"].ksplit == 1  # 8 output words fill the 8 rows already
    fc2 = by_name["8x8"]["fc2"]
    assert (fc2.ksplit, fc2.k_len, fc2.interval) == (4, 16, 30)


def test_conv_remainder_tile() -> None:
    """The last pixel tile of each channel group runs in direct mode with a K split over
    kernel rows (LayerPlan.rem_split) where that takes fewer cycles: mnist_cnn conv2 (100
    pixels, 3x3x32) leaves 4 pixels on 8, 12 and 16 rows; the next tile starts after the
    K part (the pre-skewed words' tail is read beside it). Not used where the windows need
    padding (tiny_cnn's pad-1 convs), nor where a plain tile is no slower (4x4: no remainder;
    conv1: K = 9 shorter than a part's drain)."""
    qm = build_qmodel("mnist_cnn")
    want = {"8x8": (2, 192, 206), "12x12": (3, 96, 118), "16x8": (4, 96, 118),
            "16x16": (4, 96, 126), "4x4": (0, 0, 0)}  # fmt: skip
    for array, (P, L, span) in want.items():
        prog = lower(qm, ArrayConfig.parse(array))
        conv1, conv2 = prog.layers[:2]
        # the next group's conv tile is issued after the K part, beside the weights' tail
        ri = L
        assert (conv2.rem_split, conv2.rem_k_len, conv2.rem_interval, conv2.rem_span) == (
            P, L, ri, span), array
        assert conv1.rem_split == 0
        if P:
            R, S = prog.array.rows, conv2.in_cw
            h = -(-3 // P)
            assert conv2.rem_step1 == h * conv2.in_w * S
            assert conv2.rem_wrap == S - (P - 1) * h * conv2.in_w * S
            assert conv2.issue_cycles == conv2.groups * ((conv2.ptiles - 1) * 288 + ri)
            assert conv2.rows_out(R) == conv2.groups * ((conv2.ptiles - 1) * R + R // P)
            assert f"last tile direct x{P} parts" in prog.text()
    prog = lower(qm, ArrayConfig.parse("16x16"))
    assert prog.layers[1].issue_cycles == 4 * (6 * 288 + 96)  # was 4 * 7 * 288
    off = lower(qm, ArrayConfig.parse("16x16"), BufferLimits(remainder_tiles=False))
    assert off.directw_depth == lower(
        qm, ArrayConfig(16, 16, remainder_tiles=False)).directw_depth  # the CLI's switch
    assert off.layers[1].rem_split == 0 and off.layers[1].issue_cycles == 4 * 7 * 288
    assert off.directw_depth == prog.directw_depth - 4 * 126  # the remainders' words
    tiny = lower(build_qmodel("tiny_cnn"), ArrayConfig.parse("4x4"))
    assert [lay.rem_split for lay in tiny.layers if lay.mode == 0] == [0, 0, 4]  # pad 1, 1, 0


def _toy(pool_stride: int = 2, lin_in: int = 36) -> QModel:
    rng = np.random.default_rng(0)
    conv = QConv("c1", (1, 8, 8), (4, 6, 6), weight=rng.integers(-5, 5, (4, 1, 3, 3)),
                 bias=np.zeros(4, int), multiplier=np.full(4, 1 << 30), shift=np.full(4, 4),
                 kernel=3)
    pool = QMaxPool("p1", (4, 6, 6), (4, 3, 3), kernel=2, stride=pool_stride)
    lin = QLinear("fc", (lin_in,), (3,), weight=rng.integers(-5, 5, (3, lin_in)),
                  bias=np.zeros(3, int), multiplier=np.full(3, 1 << 30), shift=np.full(3, 4))
    return QModel("toy", (1, 8, 8), 1 / 127, (conv, pool, QFlatten("f", (4, 3, 3), (36,)), lin))


def test_error_pool_stride() -> None:
    with pytest.raises(ScheduleError, match=r"'p1'.*stride 1 != kernel 2"):
        lower(_toy(pool_stride=1), ArrayConfig(4, 4))


def test_error_linear_shape() -> None:
    with pytest.raises(ScheduleError, match=r"'fc'.*expects 40 inputs.*36"):
        lower(_toy(lin_in=40), ArrayConfig(4, 4))


def test_error_buffer_too_small() -> None:
    """Too-large maps and weights name the layer (or the input), the memory and both sizes."""
    msg = r"input 1x8x8: needs 64 words in activation buffer 0 .* its 10 words"
    with pytest.raises(ScheduleError, match=msg):
        lower(_toy(), ArrayConfig(4, 4), BufferLimits(act_words=10))
    msg = r"layer 'c1': the conv weight memory needs 9 words .* its 5 words"
    with pytest.raises(ScheduleError, match=msg):
        lower(_toy(), ArrayConfig(4, 4), BufferLimits(convw_words=5))


def test_error_pool_after_linear() -> None:
    qm = _toy()
    lin = qm.layers[-1]
    bad = QModel("bad", qm.in_shape, qm.in_scale,
                 (*qm.layers, QMaxPool("p2", (3,), (3,), kernel=2, stride=2)))
    with pytest.raises(ScheduleError, match=r"'p2'.*must directly follow a conv"):
        lower(bad, ArrayConfig(4, 4))
    assert lin.name == "fc"


@pytest.mark.parametrize("array", ["12x8", "12x16", "8x8", "8x16", "14x4"])
def test_two_stream_remainder_tile_equals_golden(array: str) -> None:
    """The two-stream remainder tile (ArrayConfig.remainder_stream): mnist_cnn conv2's last
    pixel tile (4 pixels) as two parts of kernel rows {0, 1} and {2} in conv mode, rows
    part-major: 192 cycles instead of 288, no direct words; the emulated program (part 1's
    weights from the conv words after part 0's, the write-back's fold of row i + Q into
    row i) equals the golden model on every layer."""
    qm = build_qmodel("mnist_cnn")
    a = ArrayConfig.parse(array, remainder_stream=True)
    prog = lower(qm, a)
    plain = lower(qm, ArrayConfig.parse(array, remainder_tiles=False))
    conv2 = prog.layers[1]
    Q, S = a.rows // 2, conv2.in_cw
    assert (conv2.rem_split, conv2.rem_conv, conv2.rem_k_len, conv2.rem_k1) == (2, 1, 192, 96)
    assert conv2.rem_interval == 192 and conv2.rem_span == 0
    assert conv2.rem_step1 == S and conv2.rem_wrap == 2 * conv2.in_w * S - (Q - 1) * S
    assert conv2.issue_cycles == conv2.groups * ((conv2.ptiles - 1) * 288 + 192)
    assert prog.directw_depth == plain.directw_depth  # no pre-skewed words
    assert prog.convw_depth == plain.convw_depth
    assert "last tile two streams x2 parts" in prog.text()
    images, _ = load_mnist_sample()
    for x in quantize_input(images[:2]):
        outs = dict(run(qm, x))
        logits, snaps = emulate(prog, x)
        assert np.array_equal(logits, outs[qm.layers[-1].name].reshape(-1))
        got = buffer_to_chw(snaps[1], conv2.final_h, conv2.final_w, conv2.cout,
                            conv2.dst_stride, conv2.dst_base)
        assert np.array_equal(got, np.asarray(outs[conv2.covers[-1]])), array


def test_two_stream_remainder_needs_an_even_row_count_and_room() -> None:
    """No two-stream tile where rows are odd, where the 4 remainder pixels do not fit a
    part's R/2 rows (6x4: Q = 3), or where the windows need padding."""
    qm = build_qmodel("mnist_cnn")
    for array in ("9x8", "6x4"):
        assert lower(qm, ArrayConfig.parse(array, remainder_stream=True)).layers[1].rem_split == 0
    tiny = lower(build_qmodel("tiny_cnn"), ArrayConfig(4, 4, remainder_stream=True))
    assert [lay.rem_conv for lay in tiny.layers if lay.mode == 0][:2] == [0, 0]  # pad 1
