"""The reference MNIST CNN (about 2.5M MACs per image).

Input ``x = pixel/255`` in [0, 1], shape [N, 1, 28, 28], with no mean/std normalisation: the
integer contract needs a zero pixel to stay exactly zero.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MnistCnn"]


class MnistCnn(nn.Module):
    in_shape: tuple[int, int, int] = (1, 28, 28)

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)  # 32x26x26
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)  # 32x13x13
        self.conv2 = nn.Conv2d(32, 64, 3)  # 64x11x11
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)  # 64x5x5 (floor drops the last row/column)
        self.flatten = nn.Flatten()  # 1600, CHW order
        self.fc1 = nn.Linear(1600, 64)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.relu3(self.fc1(self.flatten(x)))
        return self.fc2(x)
