"""The iCEBreaker's model: a smaller CNN for scikit-learn's 8x8 digits, without pooling.

Same data and input as ``digits_cnn`` (``x = (v - 8) / 8``, shape [N, 1, 8, 8]). Strided
convolutions take the place of the max-pools, so a design for it has no pool unit at all:
that and its small memories make it the zoo model that fits the iCE40UP5K (5,280 logic
cells; ``make bitstream MODEL=digits_tiny BOARD=icebreaker ARRAY=1x1``, README "Boards").
Trained by ``python -m hwgen.train --model digits_tiny --epochs 30 --threads 1`` in seconds.

    conv1  1->16,  3x3, stride 2, pad 1, ReLU   16x4x4    2,304 MACs
    conv2  16->24, 3x3, stride 2, pad 1, ReLU   24x2x2   13,824 MACs
    flatten, fc 96->10                                      960 MACs

89.4 % float on the last 360 digits (digits_cnn: 91.9 %).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DigitsTiny"]


class DigitsTiny(nn.Module):
    in_shape: tuple[int, int, int] = (1, 8, 8)
    dataset = "digits"  # hwgen.datasets.load_digits

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, stride=2, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(16, 24, 3, stride=2, padding=1)
        self.relu2 = nn.ReLU()
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(24 * 2 * 2, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.conv1(x))
        x = self.relu2(self.conv2(x))
        return self.fc(self.flatten(x))
