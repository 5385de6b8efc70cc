"""Random networks through the schedule: the emulated program equals the golden model.

Shapes, channel counts, kernels, strides, paddings, pools and array sizes are drawn from a
seeded generator, so a failure names its seed and replays exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from hwgen.config import ArrayConfig
from hwgen.golden.run import run
from hwgen.quant.qmodel import QAvgPool, QConv, QFlatten, QLinear, QMaxPool, QModel
from hwgen.schedule.emulate import emulate
from hwgen.schedule.lower import lower


def _mac_params(rng: np.random.Generator, n: int) -> dict:
    return {
        "bias": rng.integers(-3000, 3000, n),
        "multiplier": rng.integers(1 << 30, 1 << 31, n),
        "shift": rng.integers(6, 12, n),
        "act_min": int(rng.choice([-128, 0])),
    }


def random_model(seed: int) -> QModel:
    rng = np.random.default_rng(seed)
    c, h, w = int(rng.integers(1, 5)), int(rng.integers(6, 15)), int(rng.integers(6, 15))
    in_shape = (c, h, w)
    layers: list = []
    for li in range(int(rng.integers(1, 4))):
        k = int(rng.integers(1, 4))
        s = int(rng.integers(1, 3))
        pad = int(rng.integers(0, k))
        oh, ow = (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1
        if oh < 1 or ow < 1:
            break
        cout = int(rng.integers(1, 13))
        layers.append(QConv(
            f"conv{li}", (c, h, w), (cout, oh, ow),
            weight=rng.integers(-127, 128, (cout, c, k, k)), kernel=k, stride=s, padding=pad,
            **_mac_params(rng, cout),
        ))
        c, h, w = cout, oh, ow
        if rng.random() < 0.5 and min(h, w) >= 2:
            pk = 2
            cls = QMaxPool if rng.random() < 0.5 else QAvgPool
            layers.append(cls(f"pool{li}", (c, h, w), (c, h // pk, w // pk), kernel=pk, stride=pk))
            h, w = h // pk, w // pk
    layers.append(QFlatten("flat", (c, h, w), (c * h * w,)))
    k_in = c * h * w
    for li in range(int(rng.integers(1, 3))):
        n = int(rng.integers(1, 40))
        layers.append(QLinear(f"fc{li}", (k_in,), (n,), weight=rng.integers(-127, 128, (n, k_in)),
                              **_mac_params(rng, n)))
        k_in = n
    return QModel(f"rand{seed}", in_shape, 1 / 127, tuple(layers))


@pytest.mark.parametrize("seed", range(24))
def test_random_network_schedule_equals_golden(seed: int) -> None:
    qm = random_model(seed)
    rng = np.random.default_rng(1000 + seed)
    shapes = [(1, 1), (2, 3), (3, 5), (4, 4), (5, 2), (8, 8), (16, 16)]
    array = ArrayConfig(*shapes[seed % len(shapes)])
    prog = lower(qm, array)
    x = rng.integers(-128, 128, qm.in_shape).astype(np.int8)
    logits, _ = emulate(prog, x)
    want = run(qm, x)[-1][1].reshape(-1)
    assert np.array_equal(logits, want), f"seed {seed} on {array}:\n{prog.text()}"
