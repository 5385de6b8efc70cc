"""hwgen.quant.quantize (and calibrate): contract checks, errors, ReLU handling, accuracy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hwgen.config import QuantConfig
from hwgen.golden.run import predict, quantize_input, run
from hwgen.ir.graph import (
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Flatten,
    Graph,
    Linear,
    MaxPool2d,
    ReLU,
    TensorType,
)
from hwgen.quant.calibrate import INPUT, calibrate, run_float
from hwgen.quant.qmodel import QConv, QLinear, QMaxPool
from hwgen.quant.quantize import (
    IN_SCALE,
    AccumulatorOverflowError,
    QuantizationError,
    quantize,
)


def tt(*shape: int) -> TensorType:
    return TensorType(tuple(shape))


def np32(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().astype(np.float32)


def conv(name, mod: nn.Conv2d, ins, outs) -> Conv2d:
    return Conv2d(
        name, tt(*ins), tt(*outs), weight=np32(mod.weight),
        bias=None if mod.bias is None else np32(mod.bias),
        kernel=mod.kernel_size[0], stride=mod.stride[0], padding=mod.padding[0],
    )  # fmt: skip


def linear(name, mod: nn.Linear) -> Linear:
    return Linear(
        name, tt(mod.in_features), tt(mod.out_features), weight=np32(mod.weight),
        bias=np32(mod.bias),
    )  # fmt: skip


def images(n: int, shape=(1, 12, 12), seed: int = 0) -> np.ndarray:
    """Blobby [0, 1] images (mostly dark, like MNIST), and their uint8 pixels."""
    rng = np.random.default_rng(seed)
    p = (rng.random((n, *shape)) ** 4 * 255).round().astype(np.uint8)
    return p


def small_net(seed: int = 0) -> tuple[nn.Module, Graph]:
    """conv-relu-maxpool-conv-relu-flatten-fc-relu-fc, as a torch module and a hand-built IR."""
    torch.manual_seed(seed)
    c1, c2 = nn.Conv2d(1, 6, 3, padding=1), nn.Conv2d(6, 8, 3, stride=2)
    f1, f2 = nn.Linear(8 * 2 * 2, 16), nn.Linear(16, 10)
    m = nn.Sequential(
        c1, nn.ReLU(), nn.MaxPool2d(2), c2, nn.ReLU(), nn.Flatten(), f1, nn.ReLU(), f2
    )
    g = Graph(
        "small",
        tt(1, 12, 12),
        (
            conv("conv1", c1, (1, 12, 12), (6, 12, 12)),
            ReLU("relu1", tt(6, 12, 12), tt(6, 12, 12)),
            MaxPool2d("pool1", tt(6, 12, 12), tt(6, 6, 6)),
            conv("conv2", c2, (6, 6, 6), (8, 2, 2)),
            ReLU("relu2", tt(8, 2, 2), tt(8, 2, 2)),
            Flatten("flatten", tt(8, 2, 2), tt(32)),
            linear("fc1", f1),
            ReLU("relu3", tt(16), tt(16)),
            linear("fc2", f2),
        ),
    )
    return m.eval(), g


def test_float_interpreter_matches_torch() -> None:
    m, g = small_net()
    x = images(20).astype(np.float32) / 255
    with torch.no_grad():
        want = m(torch.from_numpy(x)).numpy()
    assert np.allclose(run_float(g, x, batch=7), want, atol=1e-5)


def test_calibrate_max_and_percentile() -> None:
    _, g = small_net()
    x = images(30).astype(np.float32) / 255
    r = calibrate(g, x)
    assert r[INPUT].absmax == pytest.approx(x.max())
    assert r["relu1"].absmax == pytest.approx(r["conv1"].posmax)
    assert r["conv1"].absmax >= r["conv1"].posmax > 0
    rp = calibrate(g, x, method="percentile", percentile=99.0)
    assert 0 < rp["conv1"].absmax <= r["conv1"].absmax
    with pytest.raises(ValueError, match="method"):
        calibrate(g, x, method="mse")


def test_quantized_model_contract_and_relu_fusion() -> None:
    m, g = small_net()
    qm = quantize(g, images(64).astype(np.float32) / 255)
    assert qm.in_scale == IN_SCALE
    assert [lay.name for lay in qm.layers] == ["conv1", "pool1", "conv2", "flatten", "fc1", "fc2"]
    relus = {lay.name: lay.relu for lay in qm.layers if isinstance(lay, QConv | QLinear)}
    assert relus == {"conv1": True, "conv2": True, "fc1": True, "fc2": False}
    for lay in qm.layers:
        if isinstance(lay, QConv | QLinear):
            assert lay.weight.dtype == np.int8 and np.abs(lay.weight).max() == 127
            assert lay.weight.min() >= -127
            assert lay.bias.dtype == lay.multiplier.dtype == lay.shift.dtype == np.int32
            assert np.all((lay.multiplier >= 2**30) | (lay.multiplier == 0))
            assert np.all((lay.shift >= 0) & (lay.shift <= 31))
            acc_bound = 128 * np.abs(lay.weight.astype(np.int64)).reshape(len(lay.bias), -1).sum(1)
            assert np.all(acc_bound + np.abs(lay.bias.astype(np.int64)) <= 2**31 - 1)
    # scale chain: each MAC consumes the previous MAC's output scale
    macs = [lay for lay in qm.layers if isinstance(lay, QConv | QLinear)]
    assert macs[0].in_scale == IN_SCALE
    for a, b in zip(macs, macs[1:], strict=False):
        assert b.in_scale == a.out_scale


def test_int8_tracks_float() -> None:
    m, g = small_net(1)
    qm = quantize(g, images(200, seed=1).astype(np.float32) / 255)
    p = images(300, seed=2)
    with torch.no_grad():
        fl = m(torch.from_numpy(p.astype(np.float32) / 255)).numpy()
    q = predict(qm, p)
    err = np.abs(q * qm.layers[-1].out_scale - fl)
    assert err.max() < 6 * qm.layers[-1].out_scale  # a few LSB after four requants
    assert (q.argmax(1) == fl.argmax(1)).mean() > 0.9


def test_relu_after_maxpool_moves_to_conv_exactly() -> None:
    torch.manual_seed(3)
    c = nn.Conv2d(1, 4, 3)
    nodes = (
        conv("conv", c, (1, 12, 12), (4, 10, 10)),
        MaxPool2d("pool", tt(4, 10, 10), tt(4, 5, 5)),
        ReLU("relu", tt(4, 5, 5), tt(4, 5, 5)),
        ReLU("relu_again", tt(4, 5, 5), tt(4, 5, 5)),  # idempotent: dropped
        Flatten("flat", tt(4, 5, 5), tt(100)),
        ReLU("relu_flat", tt(100), tt(100)),  # still non-negative: dropped
    )
    g = Graph("moved", tt(1, 12, 12), nodes)
    qm = quantize(g, images(40).astype(np.float32) / 255)
    assert [lay.name for lay in qm.layers] == ["conv", "pool", "flat"]
    assert qm.layers[0].relu and isinstance(qm.layers[1], QMaxPool)
    # same as the graph with the ReLU written before the pool
    g2 = Graph("fused", g.in_type, (nodes[0], ReLU("r", tt(4, 10, 10), tt(4, 10, 10)), *nodes[1:3]))
    qm2 = quantize(g2, images(40).astype(np.float32) / 255)
    assert np.array_equal(qm.layers[0].multiplier, qm2.layers[0].multiplier)
    x = images(1)[0, 0]  # (H, W) pixels
    assert np.array_equal(run(qm, quantize_input(x))[1][1], run(qm2, quantize_input(x))[1][1])


def test_relu_on_input_is_dropped() -> None:
    torch.manual_seed(0)
    g = Graph(
        "inrelu",
        tt(1, 12, 12),
        (
            ReLU("relu0", tt(1, 12, 12), tt(1, 12, 12)),
            conv("conv", nn.Conv2d(1, 2, 3), (1, 12, 12), (2, 10, 10)),
        ),
    )
    qm = quantize(g, images(8).astype(np.float32) / 255)
    assert [lay.name for lay in qm.layers] == ["conv"] and not qm.layers[0].relu


def test_relu_after_signed_avgpool_raises_naming_it() -> None:
    torch.manual_seed(0)
    g = Graph(
        "avgrelu",
        tt(1, 12, 12),
        (
            conv("conv", nn.Conv2d(1, 2, 3), (1, 12, 12), (2, 10, 10)),
            AvgPool2d("avg", tt(2, 10, 10), tt(2, 5, 5)),
            ReLU("relu_after_avg", tt(2, 5, 5), tt(2, 5, 5)),
        ),
    )
    with pytest.raises(QuantizationError, match="relu_after_avg.*AvgPool2d avg"):
        quantize(g, images(8).astype(np.float32) / 255)


def test_accumulator_overflow_names_layer_channel_bound() -> None:
    w = np.full((2, 8), 1e-6, np.float32)
    w[0] = 1.0  # channel 0 is fine; channel 1 needs a huge int32 bias
    g = Graph(
        "ovf",
        tt(2, 2, 2),
        (
            Flatten("flat", tt(2, 2, 2), tt(8)),
            Linear("fc", tt(8), tt(2), weight=w, bias=np.array([0.0, 100.0], np.float32)),
        ),
    )
    x = np.random.default_rng(0).random((4, 2, 2, 2)).astype(np.float32)
    with pytest.raises(
        AccumulatorOverflowError, match=r"layer fc output channel 1: .* > 2\*\*31-1"
    ):
        quantize(g, x)


def test_accumulator_overflow_from_weights() -> None:
    k = 140_000  # 128 * 127 * 140000 > 2**31
    g = Graph(
        "wide",
        tt(1, 350, 400),
        (
            Flatten("flat", tt(1, 350, 400), tt(k)),
            Linear("fc", tt(k), tt(1), weight=np.ones((1, k), np.float32), bias=None),
        ),
    )
    with pytest.raises(AccumulatorOverflowError, match=r"layer fc output channel 0: 128\*sum"):
        quantize(g, np.full((1, 1, 350, 400), 0.5, np.float32))


def test_multiplier_too_large_names_layer() -> None:
    # w = [1, -1] on two equal inputs: the output is always the tiny bias, so out_scale is
    # tiny and in_scale * w_scale / out_scale >> 1.
    g = Graph(
        "mult",
        tt(2, 1, 1),
        (
            Flatten("flat", tt(2, 1, 1), tt(2)),
            Linear("fc", tt(2), tt(1), weight=np.array([[1.0, -1.0]], np.float32),
                   bias=np.array([1e-3], np.float32)),
        ),
    )  # fmt: skip
    x = np.repeat(np.linspace(0, 1, 5, dtype=np.float32)[:, None], 2, 1).reshape(5, 2, 1, 1)
    with pytest.raises(QuantizationError, match="layer fc output channel 0: requant multiplier"):
        quantize(g, x)


def test_zero_weight_channel_does_not_crash() -> None:
    torch.manual_seed(0)
    c = nn.Conv2d(1, 3, 3)
    with torch.no_grad():
        c.weight[1] = 0
        c.bias[1] = 0.25
        c.weight[2] = 0
        c.bias[2] = 0.0
    g = Graph("zero", tt(1, 12, 12), (conv("conv", c, (1, 12, 12), (3, 10, 10)),))
    qm = quantize(g, images(10).astype(np.float32) / 255)
    lay = qm.layers[0]
    assert np.all(lay.weight[1:] == 0) and lay.multiplier[1] == 2**30 and lay.shift[1] == 7
    out = predict(qm, images(2))
    assert np.all(out[:, 1] == round(0.25 / lay.out_scale)) and np.all(out[:, 2] == 0)


def test_all_zero_layer_does_not_crash() -> None:
    g = Graph(
        "dead",
        tt(1, 4, 4),
        (
            Conv2d("conv", tt(1, 4, 4), tt(2, 2, 2), weight=np.zeros((2, 1, 3, 3), np.float32),
                   bias=np.zeros(2, np.float32), kernel=3),
            ReLU("relu", tt(2, 2, 2), tt(2, 2, 2)),
        ),
    )  # fmt: skip
    qm = quantize(g, np.random.default_rng(0).random((3, 1, 4, 4)).astype(np.float32))
    assert np.all(predict(qm, images(2, (1, 4, 4))) == 0)


@pytest.mark.parametrize(
    "node, match",
    [
        (BatchNorm2d("bn", tt(1, 12, 12), tt(1, 12, 12)), "bn: BatchNorm2d must be folded"),
        (AvgPool2d("avg3", tt(1, 12, 12), tt(1, 4, 4), kernel=3, stride=3), "avg3.*power of two"),
        (MaxPool2d("badshape", tt(1, 10, 10), tt(1, 5, 5)), "badshape: input shape"),
        (Conv2d("cw", tt(1, 12, 12), tt(2, 10, 10), weight=np.zeros((2, 1, 5, 5)), kernel=3),
         "cw: weight shape"),
    ],
)  # fmt: skip
def test_unsupported_graphs_raise_naming_node(node, match: str) -> None:
    torch.manual_seed(0)
    tail = (conv("c", nn.Conv2d(node.out_type.shape[0], 1, 3), node.out_type.shape, (1, 2, 2)),)
    g = Graph("bad", tt(1, 12, 12), (node,) + (() if node.out_type.shape[-1] < 3 else tail))
    with pytest.raises(QuantizationError, match=match):
        quantize(g, images(2).astype(np.float32) / 255)


def test_config_and_input_checks() -> None:
    _, g = small_net()
    x = images(4).astype(np.float32) / 255
    with pytest.raises(QuantizationError, match="int8"):
        quantize(g, x, QuantConfig(act_bits=4))
    with pytest.raises(QuantizationError, match=r"outside the input range"):
        quantize(g, x * 255)


def test_quantize_images_float_and_pixels() -> None:
    from hwgen.quant.inputs import quantize_images

    p = np.arange(256, dtype=np.uint8).reshape(16, 16)
    q = quantize_images(p)
    assert np.array_equal(q, quantize_input(p))  # the golden's pixel rule
    # float inputs: round(x / in_scale), clamped to +-127; x = p/255 at 1/127 = the pixel rule
    assert np.array_equal(quantize_images(p.astype(np.float32) / np.float32(255), 1 / 127), q)
    got = quantize_images(np.array([[-3.0, 0.26, 9.0]]), 0.02)
    assert got.dtype == np.int8 and got.tolist() == [[[-127, 13, 127]]]
    with pytest.raises(ValueError, match="input scale"):
        quantize_images(np.zeros((2, 2), np.float32))


def test_signed_input_derives_its_scale() -> None:
    """Float inputs: in_scale = max|x| / 127, and a first ReLU on a signed input is kept."""
    rng = np.random.default_rng(3)
    t = TensorType
    g = Graph(
        "signed",
        t((2, 6, 6)),
        (
            Conv2d("conv", t((2, 6, 6)), t((3, 4, 4)), weight=rng.normal(size=(3, 2, 3, 3)),
                   bias=np.zeros(3), kernel=3),
            ReLU("relu", t((3, 4, 4)), t((3, 4, 4))),
            Flatten("flat", t((3, 4, 4)), t((48,))),
            Linear("fc", t((48,)), t((4,)), weight=rng.normal(size=(4, 48)), bias=np.zeros(4)),
        ),
    )  # fmt: skip
    x = (rng.random((20, 2, 6, 6)) * 6 - 3).astype(np.float32)
    qm = quantize(g, x, in_scale=None)
    assert qm.in_scale == pytest.approx(float(np.abs(x).max()) / 127)
    assert qm.layers[0].act_min == 0  # the ReLU is fused, not dropped
