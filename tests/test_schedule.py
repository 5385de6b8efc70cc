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
        )
    fc1 = by_name["16x16"]["fc1"]
    assert (fc1.ksplit, fc1.kw, fc1.cin, fc1.in_cw, fc1.interval) == (4, 25, 16, 1, 430)
    assert fc1.macs == 64 * 1600  # executed MACs: the layer's, not K/P
    fc1 = by_name["12x12"]["fc1"]
    assert (fc1.ksplit, fc1.kw, fc1.cin, fc1.in_cw, fc1.interval) == (2, 13, 64, 6, 854)
    assert by_name["8x8"]["fc1"].ksplit == 1  # 8 output words fill the 8 rows already
    fc2 = by_name["8x8"]["fc2"]
    assert (fc2.ksplit, fc2.k_len, fc2.interval) == (4, 16, 30)


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
