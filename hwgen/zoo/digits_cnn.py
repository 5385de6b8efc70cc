"""A small CNN for scikit-learn's bundled 8x8 digits (1,797 images, no download).

Input ``x = (v - 8) / 8`` in [-1, 1] (v = the 0..16 grey level), shape [N, 1, 8, 8]: a signed
input, so the flow derives the input scale from the calibration data (max|x| / 127) and the
first ReLU is a real clamp. Trained by ``python -m hwgen.train --model digits_cnn`` in seconds.

    conv1  1->16, 3x3, pad 1, ReLU   16x8x8     9,216 MACs
    pool1  MaxPool2d(2)              16x4x4
    conv2 16->24, 3x3, pad 1, ReLU   24x4x4    55,296 MACs
    pool2  MaxPool2d(2)              24x2x2
    flatten, fc 96->10                            960 MACs
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DigitsCnn"]


class DigitsCnn(nn.Module):
    in_shape: tuple[int, int, int] = (1, 8, 8)
    dataset = "digits"  # hwgen.datasets.load_digits

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(16, 24, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(24 * 2 * 2, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        return self.fc(self.flatten(x))
