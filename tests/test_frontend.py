"""hwgen.frontend: expected IR for the registered models, BN folding, the float reference,
and one clear error per unsupported construct."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from hwgen import ir
from hwgen.frontend import (
    FrontendError,
    UnsupportedLayerError,
    fold_batchnorm,
    import_model,
    run_float,
    verify_graph,
)
from hwgen.zoo import get_model

IN = (1, 28, 28)


class Seq(nn.Module):
    """Wrap layers so the fx node names are predictable: l0, l1, ..."""

    def __init__(self, *layers: nn.Module) -> None:
        super().__init__()
        for i, layer in enumerate(layers):
            self.add_module(f"l{i}", layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.children():
            x = layer(x)
        return x


def _torch_layers(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x)


def _randomize_bn(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics so that the fold is really tested."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g))
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(n, generator=g))
            m.bias.data.copy_(torch.randn(n, generator=g))


# --- the registered models ---------------------------------------------------------------


def test_mnist_cnn_ir() -> None:
    g = import_model(get_model("mnist_cnn"), IN, "mnist_cnn")
    assert g.name == "mnist_cnn" and g.in_type == ir.TensorType((1, 28, 28))
    got = [(n.name, n.op, n.in_type.shape, n.out_type.shape) for n in g.nodes]
    assert got == [
        ("conv1", "Conv2d", (1, 28, 28), (32, 26, 26)),
        ("relu1", "ReLU", (32, 26, 26), (32, 26, 26)),
        ("pool1", "MaxPool2d", (32, 26, 26), (32, 13, 13)),
        ("conv2", "Conv2d", (32, 13, 13), (64, 11, 11)),
        ("relu2", "ReLU", (64, 11, 11), (64, 11, 11)),
        ("pool2", "MaxPool2d", (64, 11, 11), (64, 5, 5)),
        ("flatten", "Flatten", (64, 5, 5), (1600,)),
        ("fc1", "Linear", (1600,), (64,)),
        ("relu3", "ReLU", (64,), (64,)),
        ("fc2", "Linear", (64,), (10,)),
    ]
    conv1, pool1, fc1 = g.nodes[0], g.nodes[2], g.nodes[7]
    assert isinstance(conv1, ir.Conv2d) and isinstance(pool1, ir.MaxPool2d)
    assert (conv1.kernel, conv1.stride, conv1.padding) == (3, 1, 0)
    assert (pool1.kernel, pool1.stride) == (2, 2)
    assert conv1.weight.shape == (32, 1, 3, 3) and conv1.weight.dtype == np.float32
    assert fc1.weight.shape == (64, 1600) and fc1.bias.shape == (64,)
    assert not conv1.weight.flags.writeable  # frozen nodes, frozen arrays


def test_mnist_cnn_run_float_matches_torch() -> None:
    from hwgen.datasets import load_mnist_sample, to_model_input

    model = get_model("mnist_cnn")
    g = import_model(model, IN, "mnist_cnn")
    x = to_model_input(load_mnist_sample()[0][:4])
    want = _torch_layers(model, torch.from_numpy(x)).numpy()
    for i in range(len(x)):
        outs = run_float(g, x[i, 0][None])
        assert [n for n, _ in outs] == [n.name for n in g.nodes]
        np.testing.assert_allclose(outs[-1][1], want[i], rtol=1e-5, atol=1e-5)


def test_tiny_cnn_ir_and_bn_fold() -> None:
    model = get_model("tiny_cnn")
    g = import_model(model, IN, "tiny_cnn")
    got = [(n.name, n.op, n.out_type.shape) for n in g.nodes]
    assert got == [
        ("conv1", "Conv2d", (12, 14, 14)),  # bn1 folded in: no BatchNorm2d node
        ("relu", "ReLU", (12, 14, 14)),  # F.relu
        ("pool1", "AvgPool2d", (12, 7, 7)),
        ("conv2", "Conv2d", (20, 7, 7)),
        ("relu2", "ReLU", (20, 7, 7)),
        ("conv3", "Conv2d", (24, 5, 5)),
        ("flatten", "Flatten", (600,)),
        ("fc", "Linear", (10,)),
    ]
    conv1 = g.nodes[0]
    assert isinstance(conv1, ir.Conv2d)
    assert (conv1.kernel, conv1.stride, conv1.padding) == (3, 2, 1)
    assert np.any(conv1.bias != 0)  # the conv has no bias: this one comes from the BN


def test_tiny_cnn_matches_torch_through_every_layer() -> None:
    model = get_model("tiny_cnn")
    _randomize_bn(model)  # trained statistics plus a perturbation: a real fold
    g = import_model(model, IN, "tiny_cnn")
    x = torch.rand(3, *IN, generator=torch.Generator().manual_seed(1))
    # Per-layer torch reference, matched to the IR by node name (bn1 -> folded conv1).
    acts: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        h = model.bn1(model.conv1(x))
        acts["conv1"] = h
        acts["relu"] = h = F.relu(h)
        acts["pool1"] = h = model.pool1(h)
        acts["conv2"] = h = model.conv2(h)
        acts["relu2"] = h = model.relu2(h)
        acts["conv3"] = h = model.conv3(h)
        acts["flatten"] = h = model.flatten(h)
        acts["fc"] = h = model.fc(h)
        np.testing.assert_allclose(h.numpy(), model(x).numpy(), rtol=0, atol=0)
    for i in range(len(x)):
        for name, out in run_float(g, x[i].numpy()):
            np.testing.assert_allclose(out, acts[name][i].numpy(), rtol=1e-5, atol=1e-5)


def test_fold_batchnorm_unit() -> None:
    rng = np.random.default_rng(0)
    t = ir.TensorType((3, 4, 4))
    conv = ir.Conv2d(
        "c",
        ir.TensorType((2, 4, 4)),
        t,
        weight=rng.standard_normal((3, 2, 1, 1)).astype(np.float32),
        bias=np.array([1, 2, 3], np.float32),
        kernel=1,
    )
    bn = ir.BatchNorm2d(
        "bn",
        t,
        t,
        gamma=np.array([2, 1, 0.5], np.float32),
        beta=np.array([0, 1, 0], np.float32),
        mean=np.array([1, 0, 3], np.float32),
        var=np.array([4, 1, 0.25], np.float32) - 1e-5,
        eps=1e-5,
    )
    g = ir.Graph("g", conv.in_type, (conv, bn))
    folded = fold_batchnorm(g)
    assert [n.name for n in folded.nodes] == ["c"]
    x = rng.standard_normal((2, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(run_float(folded, x)[-1][1], run_float(g, x)[-1][1], atol=1e-6)
    np.testing.assert_allclose(folded.nodes[0].bias, [0, 3, 0], atol=1e-6)


# --- supported variants --------------------------------------------------------------------


class Variants(nn.Module):
    """Functional forms and idioms: torch.relu, .relu(), F.max_pool2d, F.avg_pool2d,
    Dropout, Identity, x.view(x.size(0), -1), padding='same', a conv without bias."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 5, 3, padding="same", bias=False)
        self.drop = nn.Dropout(0.5)
        self.ident = nn.Identity()
        self.conv2 = nn.Conv2d(5, 6, (3, 3), stride=(2, 2), padding=(1, 1))
        self.fc = nn.Linear(6 * 3 * 3, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(x))
        x = F.max_pool2d(x, 2)
        x = self.ident(self.drop(x)).relu()
        x = F.avg_pool2d(self.conv2(x), kernel_size=2, stride=2)
        x = F.dropout(x, 0.2, training=self.training)
        return self.fc(x.view(x.size(0), -1))


def test_functional_variants() -> None:
    model = Variants()
    g = import_model(model.train(), IN, "variants")  # traced as inference regardless
    assert model.training  # mode restored
    assert [n.op for n in g.nodes] == [
        "Conv2d",
        "ReLU",
        "MaxPool2d",
        "ReLU",
        "Conv2d",
        "AvgPool2d",
        "Flatten",
        "Linear",
    ]
    assert [n.out_type.shape for n in g.nodes][-4:] == [(6, 7, 7), (6, 3, 3), (54,), (7,)]
    assert g.nodes[0].padding == 1 and not np.any(g.nodes[0].bias)
    x = torch.rand(1, *IN)
    want = _torch_layers(model, x)[0].numpy()
    np.testing.assert_allclose(run_float(g, x[0].numpy())[-1][1], want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "flatten",
    [
        lambda x: torch.flatten(x, 1),
        lambda x: x.flatten(1),
        lambda x: x.reshape(x.shape[0], -1),
        lambda x: x.view(-1, 8 * 13 * 13),
        lambda x: x.view(x.size(0), 8 * 13 * 13),
    ],
    ids=["torch.flatten", "method", "reshape-shape0", "view-minus1", "view-size0-n"],
)
def test_flatten_idioms(flatten) -> None:
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 8, 3)
            self.pool = nn.MaxPool2d(2)
            self.fc = nn.Linear(8 * 13 * 13, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(flatten(self.pool(self.conv(x))))

    g = import_model(M(), IN, "m")
    assert [n.op for n in g.nodes] == ["Conv2d", "MaxPool2d", "Flatten", "Linear"]


def test_mlp_with_1d_input() -> None:
    g = import_model(Seq(nn.Linear(20, 5), nn.ReLU(), nn.Linear(5, 3)), (20,), "mlp")
    assert [n.out_type.shape for n in g.nodes] == [(5,), (5,), (3,)]


def test_verify_catches_a_wrong_graph() -> None:
    model = Seq(nn.Conv2d(1, 4, 3), nn.ReLU())
    g = import_model(model, IN, "m")
    conv = g.nodes[0]
    bad = ir.Graph(
        "m",
        g.in_type,
        (
            ir.Conv2d(
                conv.name,
                conv.in_type,
                conv.out_type,
                weight=conv.weight * 2,
                bias=conv.bias,
                kernel=3,
            ),
            g.nodes[1],
        ),
    )
    with pytest.raises(FrontendError, match="does not reproduce the torch module"):
        verify_graph(bad, model)


def test_run_float_checks_input_shape() -> None:
    g = import_model(Seq(nn.Conv2d(1, 4, 3)), IN, "m")
    with pytest.raises(ValueError, match=r"shape \(1, 28, 28\)"):
        run_float(g, np.zeros((1, 1, 28, 28), np.float32))


# --- unsupported constructs: each gives its message ---------------------------------------


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + x


class Branch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(1, 2, 3)
        self.b = nn.Conv2d(1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.a(x)
        return self.b(x)


class Broadcast(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + x


class Fn(nn.Module):
    """conv -> fn(conv output, input): a multi-input op under test."""

    def __init__(self, fn, cout: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, cout, 3, padding=1)
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.conv(x), x)


class TwoOutputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.conv(x)
        return y, y


class ControlFlow(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if x.sum() > 0 else -x


class ViewOne(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).view(1, -1)


class TrainingDropout(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(self.conv(x), 0.5, training=True)


C = nn.Conv2d(1, 4, 3)  # a plain first layer

UNSUPPORTED = {
    "groups": (
        Seq(nn.Conv2d(1, 4, 3), nn.Conv2d(4, 4, 3, groups=2)),
        "node 'l1' (Conv2d): groups=2 is not supported (groups must be 1)",
    ),
    "dilation": (
        Seq(nn.Conv2d(1, 4, 3, dilation=2)),
        "node 'l0' (Conv2d): dilation=(2, 2) is not supported (dilation must be 1)",
    ),
    "rect-kernel": (
        Seq(nn.Conv2d(1, 4, (3, 1))),
        "node 'l0' (Conv2d): kernel_size=(3, 1) is not supported (kernels must be",
    ),
    "asym-padding": (
        Seq(nn.Conv2d(1, 4, 3, padding=(1, 0))),
        "node 'l0' (Conv2d): padding=(1, 0) is not supported",
    ),
    "rect-stride": (
        Seq(nn.Conv2d(1, 4, 3, stride=(1, 2))),
        "node 'l0' (Conv2d): stride=(1, 2) is not supported",
    ),
    "padding-mode": (
        Seq(nn.Conv2d(1, 4, 3, padding=1, padding_mode="reflect")),
        "node 'l0' (Conv2d): padding_mode='reflect' is not supported",
    ),
    "sigmoid": (Seq(C, nn.Sigmoid()), "node 'l1' (Sigmoid): unsupported laye"),
    "add-broadcast": (
        Broadcast(),
        "node 'add' (call_function operator.add): adds float32[2x28x28] and float32[1x28x28]: "
        "broadcasting is not supported",
    ),
    "add-alpha": (
        Fn(lambda a, b: torch.add(a, b, alpha=2)),
        "node 'add' (call_function torch.add): alpha=2 is not supported",
    ),
    "add-constant": (
        Fn(lambda a, b: a + 1.0),
        "node 'add' (call_function operator.add): the second operand is 1.0, not a tensor",
    ),
    "cat-axis": (
        Fn(lambda a, b: torch.cat([a, b], dim=2)),
        "node 'cat' (call_function torch.cat): dim=2 is not supported (only the channel axis",
    ),
    "cat-size": (
        Fn(lambda a, b: torch.cat([a, b[:, :, 1:]], dim=1)),
        "node 'getitem' (call_function operator.getitem): unsupported op",
    ),
    "mul": (Fn(lambda a, b: a * b), "node 'mul' (call_function operator.mul): unsupported op"),
    "branch": (Branch(), "node 'a' (Conv2d): its output is never used (dead branch)"),
    "two-outputs": (TwoOutputs(), "node 'output' (output): the model must return"),
    "bn-not-after-conv": (
        Seq(C, nn.ReLU(), nn.BatchNorm2d(4)),
        "node 'l2' (BatchNorm2d): a BatchNorm2d must directly follow a "
        "Conv2d ... but it follows ReLU 'l1'",
    ),
    "bn-first": (Seq(nn.BatchNorm2d(1)), "node 'l0' (BatchNorm2d): ... follows the graph input"),
    "bn-no-stats": (
        Seq(C, nn.BatchNorm2d(4, track_running_stats=False)),
        "node 'l1' (BatchNorm2d): track_running_stats=False",
    ),
    "avgpool-3x3": (
        Seq(C, nn.AvgPool2d(3)),
        "node 'l1' (AvgPool2d): kernel_size=3 is not supported ... power of two",
    ),
    "avgpool-divisor": (
        Seq(C, nn.AvgPool2d(2, divisor_override=3)),
        "node 'l1' (AvgPool2d): divisor_override=3",
    ),
    "maxpool-ceil": (
        Seq(C, nn.MaxPool2d(2, ceil_mode=True)),
        "node 'l1' (MaxPool2d): ceil_mode=True is not supported",
    ),
    "avgpool-ceil": (
        Seq(C, nn.AvgPool2d(2, ceil_mode=True)),
        "node 'l1' (AvgPool2d): ceil_mode=True is not supported",
    ),
    "maxpool-padding": (
        Seq(C, nn.MaxPool2d(3, padding=1)),
        "node 'l1' (MaxPool2d): padding=1 is not supported",
    ),
    "maxpool-dilation": (
        Seq(C, nn.MaxPool2d(2, dilation=2)),
        "node 'l1' (MaxPool2d): dilation=2 is not supported",
    ),
    "maxpool-rect": (
        Seq(C, nn.MaxPool2d((2, 3))),
        "node 'l1' (MaxPool2d): kernel_size=(2, 3) is not supported",
    ),
    "linear-unflattened": (Seq(C, nn.Linear(26, 4)), "node 'l1' (Linear): needs a flattened input"),
    "linear-size": (
        Seq(C, nn.Flatten(), nn.Linear(100, 4)),
        "node 'l2' (Linear): expects 100 inputs, but its input is float32[2704]",
    ),
    "conv-channels": (Seq(nn.Conv2d(3, 4, 3)), "node 'l0' (Conv2d): expects 3 input channels"),
    "flatten-batch": (Seq(C, nn.Flatten(0)), "node 'l1' (Flatten): start_dim=0"),
    "view-1": (ViewOne(), "node 'view' (call_method view): reshape to (1, -1)"),
    "adaptive-pool": (
        Seq(C, nn.AdaptiveAvgPool2d(1)),
        "node 'l1' (AdaptiveAvgPool2d): unsupported laye",
    ),
    "control-flow": (ControlFlow(), "model 'm' cannot be traced by torch.fx"),
    "dropout-training": (
        TrainingDropout(),
        "node 'dropout' (call_function torch.nn.functional.dropout): training=True",
    ),
    "window-too-big": (Seq(nn.Conv2d(1, 2, 29)), "node 'l0' (Conv2d): a 29x29 window"),
}


class TorchSigmoid(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv(x))


UNSUPPORTED["torch.sigmoid"] = (
    TorchSigmoid(),
    "node 'sigmoid' (call_function torch.sigmoid): unsupported op",
)


def _in_order(message: str, expected: str) -> bool:
    """``expected``'s parts, split at "...", appear in ``message`` in that order."""
    pos = 0
    for part in expected.split("..."):
        pos = message.find(part.strip(), pos)
        if pos < 0:
            return False
    return True


@pytest.mark.parametrize("case", sorted(UNSUPPORTED))
def test_unsupported_message(case: str) -> None:
    model, expected = UNSUPPORTED[case]
    with pytest.raises(UnsupportedLayerError) as info:
        import_model(model, IN, "m")
    assert isinstance(info.value, ValueError)
    assert _in_order(str(info.value), expected), str(info.value)


def test_bad_in_shape() -> None:
    with pytest.raises(ValueError, match="without the batch dimension"):
        import_model(Seq(C), (1, 1, 28, 28), "m")


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    k=st.integers(1, 5),
    s=st.integers(1, 3),
    p=st.integers(0, 2),
    cout=st.integers(1, 9),
    pool=st.sampled_from(["max", "avg", "none"]),
    pk=st.sampled_from([1, 2, 4]),
    ps=st.integers(1, 3),
    size=st.integers(8, 14),
)
def test_conv_pool_shapes_and_values_match_torch(
    k: int, s: int, p: int, cout: int, pool: str, pk: int, ps: int, size: int
) -> None:
    """IR shapes (the output-size arithmetic) and run_float values equal torch's."""
    layers: list[nn.Module] = [nn.Conv2d(3, cout, k, stride=s, padding=p), nn.ReLU()]
    if pool == "max":
        layers.append(nn.MaxPool2d(pk, stride=ps))
    elif pool == "avg":
        layers.append(nn.AvgPool2d(pk, stride=ps))
    torch.manual_seed(0)
    model = Seq(*layers, nn.Flatten()).eval()
    x = torch.rand(1, 3, size, size)
    try:
        want = _torch_layers(model, x)[0].numpy()
    except RuntimeError:  # torch rejects it too (window larger than the input)
        with pytest.raises(UnsupportedLayerError, match="does not fit"):
            import_model(model, (3, size, size), "m")
        return
    g = import_model(model, (3, size, size), "m")
    assert g.out_type.shape == want.shape
    np.testing.assert_allclose(run_float(g, x[0].numpy())[-1][1], want, rtol=1e-5, atol=1e-5)
