"""Shared fixtures of the pure-Python tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

MODEL_SRC = textwrap.dedent(
    """
    import torch
    from torch import nn


    class Small(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.conv = nn.Conv2d(1, 4, 3)
            self.pool = nn.MaxPool2d(2)
            self.fc = nn.Linear(4 * 3 * 3, 5)

        def forward(self, x):
            x = self.pool(torch.relu(self.conv(x)))
            return self.fc(torch.flatten(x, 1))


    class Adds(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3, padding=1)

        def forward(self, x):
            return self.conv(x) + x


    class NoVector(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)

        def forward(self, x):
            return torch.flatten(self.conv(x), 1)


    def big():
        # 16 outputs: even split over the rows (the direct-mode K split) its weights need more
        # words than the direct weight memory's limit
        return nn.Sequential(nn.Conv2d(1, 64, 3, padding=1), nn.Flatten(), nn.Linear(64 * 256, 16))
    """
)


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A work dir with the model file, its weights and 8x8 calibration images."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HWGEN_WORKDIR", raising=False)
    (tmp_path / "net.py").write_text(MODEL_SRC)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "cal.npz", images=rng.integers(0, 256, (12, 8, 8), dtype=np.uint8),
             labels=rng.integers(0, 5, 12))  # fmt: skip
    ns: dict = {}
    exec(MODEL_SRC, ns)  # noqa: S102 - the test's own model source
    torch.save(ns["Small"]().state_dict(), tmp_path / "w.pt")
    return tmp_path
