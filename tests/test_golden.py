"""hwgen.golden: integer ops equal torch (float64 on integer values is exact) and Fractions."""

from __future__ import annotations

import ast
import math
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hwgen.golden.ops import avgpool_int, conv2d_int, linear_int, maxpool_int, requant
from hwgen.golden.run import predict, quantize_input, run
from hwgen.quant.fixedpoint import requantize
from hwgen.quant.qmodel import QAvgPool, QConv, QFlatten, QLinear, QMaxPool, QModel

GOLDEN = Path(__file__).resolve().parents[1] / "hwgen" / "golden"


def ints(rng, shape, lo=-128, hi=127, dtype=np.int8):
    return rng.integers(lo, hi, shape, endpoint=True).astype(dtype)


def t64(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a.astype(np.float64))


@pytest.mark.parametrize(
    "cin, cout, k, stride, padding, h, w",
    [
        (1, 4, 3, 1, 0, 9, 9),
        (3, 5, 3, 1, 1, 8, 7),
        (2, 3, 3, 2, 1, 9, 9),
        (4, 2, 5, 2, 2, 11, 10),
        (3, 6, 1, 1, 0, 5, 5),
        (2, 2, 2, 3, 0, 10, 11),  # stride > kernel, ragged floor
        (1, 1, 3, 1, 0, 3, 3),  # single output pixel
    ],
)
def test_conv2d_equals_torch(cin, cout, k, stride, padding, h, w) -> None:
    rng = np.random.default_rng(cin * 100 + cout * 10 + k)
    x, wt = ints(rng, (3, cin, h, w)), ints(rng, (cout, cin, k, k), -127)
    got = conv2d_int(x, wt, stride, padding)
    want = F.conv2d(t64(x), t64(wt), stride=stride, padding=padding).numpy()
    assert got.dtype == np.int64
    assert np.array_equal(got, want.astype(np.int64))
    # unbatched (C, H, W) gives the same as the batch's first element
    assert np.array_equal(conv2d_int(x[0], wt, stride, padding), got[0])


def test_conv2d_extreme_values_exact() -> None:
    x = np.full((1, 64, 6, 6), -128, np.int8)
    wt = np.full((2, 64, 3, 3), -127, np.int8)
    got = conv2d_int(x, wt, 1, 1)
    want = F.conv2d(t64(x), t64(wt), padding=1).numpy().astype(np.int64)
    assert np.array_equal(got, want) and got.max() == 128 * 127 * 64 * 9


def test_linear_equals_torch() -> None:
    rng = np.random.default_rng(3)
    x, wt = ints(rng, (7, 50)), ints(rng, (10, 50), -127)
    assert np.array_equal(linear_int(x, wt), F.linear(t64(x), t64(wt)).numpy().astype(np.int64))
    assert np.array_equal(linear_int(x[2], wt), linear_int(x, wt)[2])


@pytest.mark.parametrize("k, stride, h", [(2, 2, 8), (2, 2, 11), (3, 2, 9), (3, 3, 10), (2, 1, 5)])
def test_maxpool_equals_torch(k, stride, h) -> None:
    x = ints(np.random.default_rng(k + h), (2, 3, h, h + 1))
    want = F.max_pool2d(t64(x), k, stride).numpy().astype(np.int64)
    assert np.array_equal(maxpool_int(x, k, stride), want)


def ref_avg(window: np.ndarray) -> int:
    q = Fraction(int(window.sum()), window.size)
    return int(math.copysign(math.floor(abs(q) + Fraction(1, 2)), q))


@pytest.mark.parametrize("k, stride", [(2, 2), (4, 4), (2, 1), (4, 2)])
def test_avgpool_rounding_vs_fraction(k, stride) -> None:
    rng = np.random.default_rng(k * 7 + stride)
    x = ints(rng, (2, 3, 9, 8))
    x[0, 0, :2, :2] = [[1, 0], [1, 0]]  # 2/4 = 0.5 -> 1
    x[0, 1, :2, :2] = [[-1, 0], [-1, 0]]  # -0.5 -> -1 (away from zero)
    got = avgpool_int(x, k, stride)
    oh, ow = (9 - k) // stride + 1, (8 - k) // stride + 1
    assert got.shape == (2, 3, oh, ow)
    for n, c, i, j in np.ndindex(got.shape):
        win = x[n, c, i * stride : i * stride + k, j * stride : j * stride + k]
        assert got[n, c, i, j] == ref_avg(win)
    if k == 2:
        assert got[0, 0, 0, 0] == 1 and got[0, 1, 0, 0] == -1
    # never leaves int8, and agrees with torch wherever torch's mean is not a tie
    assert got.min() >= -128 and got.max() <= 127


def test_avgpool_rejects_non_power_of_two() -> None:
    with pytest.raises(ValueError, match="power of two"):
        avgpool_int(np.zeros((1, 6, 6), np.int8), 3, 3)


def test_requant_per_channel_axis_and_bias() -> None:
    rng = np.random.default_rng(5)
    acc = rng.integers(-(2**20), 2**20, (2, 3, 4, 4))
    bias = np.array([100, -7, 0], np.int32)
    m = np.array([2**30, 1518500250, 2**31 - 1], np.int32)
    s = np.array([9, 10, 12], np.int32)
    got = requant(acc, bias, m, s, 0, 127, channel_axis=-3)
    for c in range(3):
        want = requantize(acc[:, c] + bias[c], int(m[c]), int(s[c]), lo=0, hi=127)
        assert np.array_equal(got[:, c], want)
    with pytest.raises(ValueError, match="shape"):
        requant(acc, bias[:2], m, s, channel_axis=-3)


def test_ops_refuse_floats() -> None:
    with pytest.raises(TypeError, match="integer"):
        conv2d_int(np.zeros((1, 4, 4)), np.zeros((1, 1, 3, 3), np.int8))


def test_quantize_input_formula() -> None:
    p = np.arange(256, dtype=np.uint8)
    q = quantize_input(p.reshape(16, 16))
    assert q.dtype == np.int8 and q.shape == (1, 16, 16)
    for v, got in zip(p, q.ravel(), strict=True):
        assert got == math.floor(Fraction(int(v) * 127, 255) + Fraction(1, 2))
    assert quantize_input(np.zeros((5, 28, 28), np.uint8)).shape == (5, 1, 28, 28)
    assert quantize_input(np.zeros((5, 1, 28, 28), np.uint8)).shape == (5, 1, 28, 28)
    with pytest.raises(TypeError):
        quantize_input(np.zeros((28, 28), np.float32))


def tiny_qmodel() -> QModel:
    rng = np.random.default_rng(11)

    def mac(cls, name, ins, outs, wshape, relu, **kw):
        c = wshape[0]
        return cls(
            name=name, in_shape=ins, out_shape=outs,
            weight=ints(rng, wshape, -127), bias=rng.integers(-3000, 3000, c).astype(np.int32),
            multiplier=rng.integers(2**30, 2**31, c).astype(np.int32),
            shift=rng.integers(8, 12, c).astype(np.int32), act_min=0 if relu else -128,
            w_scale=np.ones(c), **kw,
        )  # fmt: skip

    return QModel(
        name="tiny",
        in_shape=(1, 8, 8),
        in_scale=1 / 127,
        layers=(
            mac(QConv, "c1", (1, 8, 8), (4, 8, 8), (4, 1, 3, 3), True, kernel=3, padding=1),
            QMaxPool(name="p1", in_shape=(4, 8, 8), out_shape=(4, 4, 4)),
            mac(
                QConv,
                "c2",
                (4, 4, 4),
                (4, 2, 2),
                (4, 4, 3, 3),
                False,
                kernel=3,
                stride=2,
                padding=1,
            ),
            QAvgPool(name="p2", in_shape=(4, 2, 2), out_shape=(4, 1, 1)),
            QFlatten(name="f", in_shape=(4, 1, 1), out_shape=(4,)),
            mac(QLinear, "fc", (4,), (3,), (3, 4), False),
        ),
    )


def test_run_every_layer_and_predict_agree() -> None:
    qm = tiny_qmodel()
    imgs = np.random.default_rng(2).integers(0, 256, (7, 8, 8)).astype(np.uint8)
    logits = predict(qm, imgs, batch=3)
    assert logits.dtype == np.int8 and logits.shape == (7, 3)
    for i, img in enumerate(imgs):
        outs = run(qm, quantize_input(img))
        assert [n for n, _ in outs] == ["c1", "p1", "c2", "p2", "f", "fc"]
        assert all(o.dtype == np.int8 for _, o in outs)
        assert outs[0][1].min() >= 0  # fused ReLU
        # recompute layer by layer from the ops to pin the composition
        x = quantize_input(img)
        c1 = qm.layers[0]
        y = requant(conv2d_int(x, c1.weight, 1, 1), c1.bias, c1.multiplier, c1.shift, 0, 127, -3)
        assert np.array_equal(outs[0][1], y)
        assert np.array_equal(outs[1][1], maxpool_int(y, 2, 2))
        assert np.array_equal(outs[-1][1], logits[i])


def test_golden_never_imports_torch_amaranth_cocotb() -> None:
    code = (
        "import sys, hwgen.golden.run, hwgen.golden.ops\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'amaranth', 'cocotb')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_golden_source_has_no_floats() -> None:
    """No float literals, float dtypes or true division in the golden package."""
    for path in GOLDEN.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            assert not (isinstance(node, ast.Constant) and isinstance(node.value, float)), path
            assert not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)), path
            if isinstance(node, ast.Attribute | ast.Name):
                name = node.attr if isinstance(node, ast.Attribute) else node.id
                assert not name.startswith(("float", "double")), (path, name)
