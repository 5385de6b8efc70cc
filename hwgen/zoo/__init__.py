"""Model registry: name -> nn.Module class, with committed float weights in zoo/weights/.

get_model("mnist_cnn")            # trained weights loaded, eval mode
get_model("tiny_cnn", pretrained=False)  # fresh initialisation (for training)
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from hwgen.errors import HwgenError

from .digits_cnn import DigitsCnn
from .digits_tiny import DigitsTiny
from .mnist_cnn import MnistCnn
from .res_cnn import ResCnn
from .tiny_cnn import TinyCnn

__all__ = [
    "MODELS",
    "WEIGHTS_DIR",
    "UnknownModelError",
    "dataset",
    "get_model",
    "input_shape",
    "model_names",
    "weights_path",
]

MODELS: dict[str, type[nn.Module]] = {
    "digits_cnn": DigitsCnn,
    "digits_tiny": DigitsTiny,
    "mnist_cnn": MnistCnn,
    "res_cnn": ResCnn,
    "tiny_cnn": TinyCnn,
}

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


class UnknownModelError(HwgenError, KeyError):
    """A model name not in the registry (a KeyError whose message is printed unquoted)."""

    def __str__(self) -> str:
        return str(self.args[0])


def model_names() -> list[str]:
    return sorted(MODELS)


def _cls(name: str) -> type[nn.Module]:
    try:
        return MODELS[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}; known models: {', '.join(model_names())}"
        ) from None


def input_shape(name: str) -> tuple[int, int, int]:
    """(C, H, W) of one input image, without the batch dimension."""
    return tuple(_cls(name).in_shape)  # type: ignore[attr-defined, return-value]


def dataset(name: str) -> str:
    """The data set a zoo model trains, calibrates and tests on ("mnist" or "digits")."""
    return str(getattr(_cls(name), "dataset", "mnist"))


def weights_path(name: str) -> Path:
    _cls(name)
    return WEIGHTS_DIR / f"{name}.pt"


def get_model(name: str, pretrained: bool = True) -> nn.Module:
    """A new instance of model ``name`` in eval mode, with its committed trained weights
    (``pretrained=False``: freshly initialised, in train mode, for hwgen.train)."""
    model = _cls(name)()
    if not pretrained:
        return model
    path = weights_path(name)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no trained weights for {name!r}; run `python -m hwgen.train --model {name}`"
        )
    # weights_only: a state_dict needs no pickled code, so never execute any.
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()
