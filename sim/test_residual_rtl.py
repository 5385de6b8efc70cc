"""Graphs beyond a chain in RTL: a residual Add and a channel Concat, bit-exact in Verilator.

A small in-memory DAG (skip connection whose branch is two convs, an Add with a fused ReLU,
two convs concatenated on the channel axis, a Linear head reading the concatenation) on a
non-square array: exercises the strided reads of an Add operand (c_step), the zero-copy
placement of Concat/Add operands (dst_base, dst_cw), the buffer allocator and an identity
copy the schedule inserts for a one-conv residual branch, and an Add of two Linear outputs
(vectors: a 1x1 conv on a 1x1 map) that produces the logits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hwgen


class TinyRes(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(2, 5, 3)  # 5x8x8; 5 channels: Concat/Add parts with lane gaps
        self.c2 = nn.Conv2d(5, 3, 1)
        self.c3 = nn.Conv2d(3, 5, 3, padding=1)
        self.c5 = nn.Conv2d(5, 5, 3, padding=1)  # a one-conv branch: needs an identity copy
        self.c4a = nn.Conv2d(5, 3, 3, stride=2)  # 3x3x3
        self.c4b = nn.Conv2d(5, 4, 3, stride=2)
        self.fc = nn.Linear(7 * 3 * 3, 6)
        self.fc_b = nn.Linear(7 * 3 * 3, 6)  # logits = fc + fc_b: an Add of vectors

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.c1(x))
        z = F.relu(x + self.c3(F.relu(self.c2(x))))
        z = z + self.c5(z)
        z = torch.cat([F.relu(self.c4a(z)), self.c4b(z)], dim=1)
        z = z.flatten(1)
        return self.fc(z) + self.fc_b(z)


@pytest.mark.rtl
def test_residual_concat_bit_exact_in_rtl(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(3)
    x = np.random.default_rng(4).normal(size=(40, 2, 10, 10)).astype(np.float32)
    design = hwgen.compile(TinyRes(), calib=x, array="2x4", name="tiny_res")
    kinds = [lay.kind for lay in design.qmodel.layers]
    assert "QAdd" in kinds and "QConcat" in kinds
    assert any(p.name == "add_copy_add_1" for p in design.program.layers)
    got = design.simulate(x[:3], gap=0.2)
    assert np.array_equal(got, design.golden(x[:3]).astype(np.int64))


@pytest.mark.rtl
def test_res_cnn_bit_exact_in_rtl() -> None:
    """The shipped residual model (Add + Concat, trained weights) on a small non-square array;
    the 20-image 8x8 and 4x8 runs are in the README (hwgen sim --model res_cnn -n 20)."""
    from hwgen.config import ArrayConfig
    from hwgen.datasets import load_mnist_sample
    from hwgen.evaluate import build_qmodel
    from hwgen.sim.network import prepare, simulate

    images, _ = load_mnist_sample()
    case = prepare(build_qmodel("res_cnn"), ArrayConfig.parse("3x8"), images[:2], gap=0.1)
    res, out, _ = simulate(case)
    imgs = out.get("images", [])
    assert len(imgs) == 2 and all(r["match"] for r in imgs), imgs
    assert res.failed == 0
