"""models: the registry, the committed weights and the shape rules of each model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from hwgen import zoo as models
from hwgen.datasets import load_mnist_sample
from hwgen.train import evaluate_float
from hwgen.zoo import MODELS, UnknownModelError, get_model, input_shape, model_names, weights_path


def test_registry() -> None:
    assert model_names() == ["digits_cnn", "digits_tiny", "mnist_cnn", "res_cnn", "tiny_cnn"]
    assert set(MODELS) == set(model_names())
    assert all(input_shape(n) == (1, 28, 28) for n in ("mnist_cnn", "res_cnn", "tiny_cnn"))
    assert input_shape("digits_cnn") == (1, 8, 8) and models.dataset("digits_cnn") == "digits"


def test_unknown_name_lists_known_ones() -> None:
    with pytest.raises(KeyError) as info:
        get_model("lenet")
    assert isinstance(info.value, UnknownModelError)
    assert str(info.value) == (
        "unknown model 'lenet'; known models: digits_cnn, digits_tiny, mnist_cnn, res_cnn, tiny_cnn"
    )
    with pytest.raises(UnknownModelError, match="known models"):
        weights_path("resnet")


@pytest.mark.parametrize("name", ["mnist_cnn", "res_cnn", "tiny_cnn"])
def test_get_model_loads_committed_weights(name: str) -> None:
    model = get_model(name)
    assert not model.training
    path = weights_path(name)
    assert path.stat().st_size < 5_000_000
    saved = torch.load(path, weights_only=True)
    for k, v in model.state_dict().items():
        assert torch.equal(v, saved[k]), k
    images, labels = load_mnist_sample()
    assert evaluate_float(model, images, labels) >= 0.95  # the 200-image sample


def test_pretrained_false_is_fresh() -> None:
    model = get_model("mnist_cnn", pretrained=False)
    assert model.training
    out = model(torch.zeros(2, 1, 28, 28))
    assert out.shape == (2, 10)


def test_missing_weights_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(models, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="python -m hwgen.train --model tiny_cnn"):
        get_model("tiny_cnn")


def _macs(model: nn.Module) -> int:
    macs = 0

    def hook(m: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal macs
        if isinstance(m, nn.Conv2d):
            macs += out[0].numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            macs += m.in_features * m.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 1, 28, 28))
    for h in handles:
        h.remove()
    return macs


def test_mnist_cnn_shape() -> None:
    model = get_model("mnist_cnn", pretrained=False)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (1, 32, (3, 3)),
        (32, 64, (3, 3)),
    ]
    assert _macs(model) == 26 * 26 * 32 * 9 + 11 * 11 * 64 * 288 + 1600 * 64 + 64 * 10


def test_tiny_cnn_exercises_the_hardware() -> None:
    model = get_model("tiny_cnn", pretrained=False)
    mods = list(model.modules())
    convs = [m for m in mods if isinstance(m, nn.Conv2d)]
    assert _macs(model) < 300_000
    assert any(c.padding != (0, 0) for c in convs)
    assert any(c.stride == (2, 2) for c in convs)
    assert any(c.out_channels % 8 for c in convs)
    assert any(isinstance(m, nn.AvgPool2d) for m in mods)
    assert any(isinstance(m, nn.BatchNorm2d) for m in mods)
    assert isinstance(mods[-1], nn.Linear) and mods[-1].out_features == 10


def test_digits_tiny_weights_accuracy_and_no_pool() -> None:
    """The iCEBreaker's model: committed weights, >= 88 % float on the 360 test digits, and
    no pooling layer (so its design has no pool unit, which is what makes it fit the UP5K)."""
    from hwgen.datasets import load_digits

    model = get_model("digits_tiny")
    saved = torch.load(weights_path("digits_tiny"), weights_only=True)
    for k, v in model.state_dict().items():
        assert torch.equal(v, saved[k]), k
    x, y = load_digits("test")
    assert evaluate_float(model, x, y) >= 0.88
    assert not any(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) for m in model.modules())
