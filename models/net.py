"""The README's "Bring your own model" example: a model file hwgen loads as ``net.py:build``.

    hwgen sim --model models/net.py:build --weights net.pt --calib digits.npz --array 4x4 -n 5
"""

from torch import nn


def build() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 10),
    )
