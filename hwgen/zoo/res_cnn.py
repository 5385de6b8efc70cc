"""A small residual MNIST CNN with a skip-connection Add and a channel Concat (issue 14.3).

    conv1 (16, 3x3) + BN + ReLU + maxpool 2         -> x  16x13x13
    conv2 (8, 1x1) + BN + ReLU                      -> bottleneck 8x13x13
    conv3 (16, 3x3, pad 1) + BN                     -> y  16x13x13
    relu(x + y)                                     -> z  16x13x13   (residual Add)
    cat(relu(bn(conv4a(z))), relu(bn(conv4b(z))))   -> 32x6x6  (3x3 stride-2 convs; Concat)
    fc1 (64) + ReLU, fc2 (10)

Input ``x = pixel/255`` in [0, 1], shape [N, 1, 28, 28], like mnist_cnn. About 0.55M MACs.
Trained by ``python -m hwgen.train --model res_cnn --epochs 5 --threads 1`` (deterministic, CPU:
163 s; float 99.14 % on the 10,000 MNIST test images).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ResCnn"]


class ResCnn(nn.Module):
    in_shape: tuple[int, int, int] = (1, 28, 28)

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3)  # 16x26x26 -> pool 16x13x13
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 8, 1)
        self.bn2 = nn.BatchNorm2d(8)
        self.conv3 = nn.Conv2d(8, 16, 3, padding=1)
        self.bn3 = nn.BatchNorm2d(16)
        self.conv4a = nn.Conv2d(16, 16, 3, stride=2)  # 16x6x6
        self.bn4a = nn.BatchNorm2d(16)
        self.conv4b = nn.Conv2d(16, 16, 3, stride=2)
        self.bn4b = nn.BatchNorm2d(16)
        self.fc1 = nn.Linear(32 * 6 * 6, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        y = self.bn3(self.conv3(F.relu(self.bn2(self.conv2(x)))))
        z = F.relu(x + y)  # the skip connection
        a = F.relu(self.bn4a(self.conv4a(z)))
        b = F.relu(self.bn4b(self.conv4b(z)))
        z = torch.cat([a, b], dim=1)
        return self.fc2(F.relu(self.fc1(torch.flatten(z, 1))))
