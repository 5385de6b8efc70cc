"""hwgen.train on the committed 200-image sample (the full training run is `make`-level)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

import hwgen.train as train_mod
from hwgen.datasets import load_mnist_sample, to_model_input
from hwgen.train import build_parser, evaluate_float, fit, train
from hwgen.zoo import get_model


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # Tiny batches: a second thread only adds synchronisation, and is far slower on a
    # shared, loaded machine.
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


def _state_bytes(model: torch.nn.Module) -> list[bytes]:
    return [v.numpy().tobytes() for v in model.state_dict().values()]


def test_fit_is_deterministic() -> None:
    images, labels = load_mnist_sample()
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = get_model("tiny_cnn", pretrained=False)
        fit(model, images, labels, epochs=1, seed=3, batch_size=32, progress=False)
        runs.append(_state_bytes(model))
    assert runs[0] == runs[1]
    assert not torch.are_deterministic_algorithms_enabled()  # the global switch is restored


def test_evaluate_float_inputs_and_mode() -> None:
    images, labels = load_mnist_sample()
    model = get_model("mnist_cnn").train()
    acc_u8 = evaluate_float(model, images, labels, batch_size=64)
    acc_f32 = evaluate_float(model, to_model_input(images), labels)
    assert acc_u8 == acc_f32 and 0.95 <= acc_u8 <= 1.0
    assert model.training  # mode restored


def test_train_end_to_end_on_sample(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(train_mod, "load_mnist", lambda split: load_mnist_sample())
    out = tmp_path / "w.pt"
    res = train("tiny_cnn", epochs=1, seed=0, out_path=out, log_every=2, threads=1)
    text = capsys.readouterr().out
    assert "epoch 1/1 batch 2/4 loss" in text and "acc" in text
    assert "epoch 1/1: test accuracy" in text
    assert len(res.test_accuracy) == 1 and 0.0 <= res.final_accuracy <= 1.0
    assert out.is_file() and set(torch.load(out, weights_only=True)) == set(
        get_model("tiny_cnn", pretrained=False).state_dict()
    )


def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["--help"])
    assert e.value.code == 0
    assert "--model {digits_cnn,digits_tiny,mnist_cnn,res_cnn,tiny_cnn}" in capsys.readouterr().out
    args = build_parser().parse_args(["--model", "mnist_cnn", "--epochs", "2"])
    assert args.epochs == 2 and args.out is None
    np.testing.assert_equal(args.seed, 0)
