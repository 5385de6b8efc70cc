"""A small CNN that exercises the hardware's generality rather than accuracy.

Features the reference model lacks: zero padding, stride 2, AvgPool2d, a BatchNorm2d to be
folded, a functional ``F.relu``, a conv with no ReLU, and channel counts (12, 20, 24) that are
not multiples of 8 (so the array's channel tiling has ragged edges). ~241k MACs per image:

    conv1  1->12, 3x3, stride 2, pad 1   12x14x14    21,168 MACs
    bn1 (folded into conv1), F.relu
    pool1  AvgPool2d(2)                  12x7x7
    conv2 12->20, 3x3, pad 1, ReLU       20x7x7     105,840 MACs
    conv3 20->24, 3x3, no ReLU           24x5x5     108,000 MACs
    flatten, fc 600->10                               6,000 MACs

The AvgPool sits before conv2 (not after it) to keep the total under 300k MACs: at 14x14,
a 12->20 conv alone would be 423k MACs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TinyCnn"]


class TinyCnn(nn.Module):
    in_shape: tuple[int, int, int] = (1, 28, 28)

    def __init__(self) -> None:
        super().__init__()
        # bias=False: the folded BN supplies the bias (a conv without bias is also a case).
        self.conv1 = nn.Conv2d(1, 12, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(12)
        self.pool1 = nn.AvgPool2d(2)
        self.conv2 = nn.Conv2d(12, 20, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(20, 24, 3)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(24 * 5 * 5, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(F.relu(self.bn1(self.conv1(x))))
        x = self.relu2(self.conv2(x))
        x = self.conv3(x)  # no ReLU: a requant with the full int8 range
        return self.fc(self.flatten(x))
