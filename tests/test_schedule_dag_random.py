"""Random DAGs (residual Adds, Concats, pooled convs, dead branches) through the schedule: the
program, emulated as the hardware walks it, equals the golden model tensor for tensor.

The models are drawn at the QModel level (random integer weights and requant parameters), so
every join shape the allocator and the identity copies must handle turns up: operands shared
by several joins, repeats (y + y), the model input as an Add operand, branches of any length,
Concats of Concats, Concat parts whose channels do not fill their words.
"""

from __future__ import annotations

import numpy as np
import pytest

from hwgen.config import ArrayConfig
from hwgen.golden.run import run
from hwgen.quant.qmodel import (
    INPUT,
    QAdd,
    QConcat,
    QConv,
    QFlatten,
    QLinear,
    QMaxPool,
    QModel,
)
from hwgen.schedule.emulate import buffer_to_chw, emulate
from hwgen.schedule.lower import lower


def _requant(rng: np.random.Generator, cout: int, k: int) -> dict:
    # keep outputs mostly inside int8: acc ~ 127*64*sqrt(k), scaled by ~0.75 / 2**shift
    shift = int(np.clip(np.round(np.log2(127 * 64 * np.sqrt(k) * 0.75 / 40)), 0, 31))
    return dict(
        bias=rng.integers(-500, 500, cout),
        multiplier=rng.integers(1 << 30, 1 << 31, cout),
        shift=np.full(cout, shift),
        act_min=int(rng.choice([0, -128])),
    )


def _conv(rng, name: str, src: str, shape: tuple, cout: int, k: int) -> QConv:
    cin, h, w = shape
    return QConv(
        name, shape, (cout, h, w), inputs=(src,), weight=rng.integers(-127, 128, (cout, cin, k, k)),
        kernel=k, stride=1, padding=k // 2, **_requant(rng, cout, cin * k * k),
    )  # fmt: skip


def random_dag(seed: int) -> QModel:
    rng = np.random.default_rng(seed)
    h = int(rng.integers(5, 9))
    in_shape = (int(rng.integers(1, 4)), h, h)
    layers: list = []
    maps: list[tuple[str, tuple]] = [(INPUT, in_shape)]

    def pick(shape_hw=None) -> tuple[str, tuple]:
        cands = [m for m in maps if shape_hw is None or m[1][1:] == shape_hw]
        return cands[int(rng.integers(len(cands)))]

    for i in range(int(rng.integers(3, 8))):
        op = rng.choice(["conv", "conv", "add", "cat", "pool"])
        src, shape = pick()
        name = f"l{i}"
        if op == "pool" and shape[1] >= 4 and src != INPUT:
            conv = _conv(rng, f"{name}c", src, shape, int(rng.integers(2, 7)), 3)
            out = (conv.out_shape[0], shape[1] // 2, shape[2] // 2)
            pool = QMaxPool(name, conv.out_shape, out, inputs=(conv.name,), kernel=2, stride=2)
            layers += [conv, pool]
            maps.append((name, out))
        elif op == "add":
            if rng.random() < 0.2:
                other = src  # y + y
            else:
                bsrc, bshape = pick(shape[1:])
                conv = _conv(rng, f"{name}b", bsrc, bshape, shape[0], int(rng.choice([1, 3])))
                layers.append(conv)
                other = conv.name
            layers.append(QAdd(
                name, shape, shape, inputs=(src, other),
                weight=rng.integers(1, 128, 2), **_requant(rng, shape[0], 2 * 64),
            ))  # fmt: skip
            maps.append((name, shape))
        elif op == "cat" and len([m for m in maps if m[1][1:] == shape[1:]]) >= 2:
            parts = [m for m in maps if m[1][1:] == shape[1:] and m[0] != INPUT]
            if len(parts) < 2:
                continue
            size = min(len(parts), int(rng.integers(2, 4)))
            idx = rng.choice(len(parts), size=size, replace=False)
            chosen = [parts[j] for j in sorted(idx)]
            c = sum(p[1][0] for p in chosen)
            out = (c, *shape[1:])
            layers.append(QConcat(name, chosen[0][1], out, inputs=tuple(p[0] for p in chosen)))
            maps.append((name, out))
        else:
            conv = _conv(rng, name, src, shape, int(rng.integers(1, 9)), int(rng.choice([1, 3])))
            layers.append(conv)
            maps.append((name, conv.out_shape))
    src, shape = maps[-1]
    if src == INPUT:
        conv = _conv(rng, "last", src, shape, 3, 3)
        layers.append(conv)
        src = conv.name
    n = int(np.prod(shape))
    layers.append(QFlatten("flat", shape, (n,), inputs=(src,)))
    nout = int(rng.integers(3, 12))
    layers.append(QLinear(
        "fc", (n,), (nout,), weight=rng.integers(-127, 128, (nout, n)),
        **_requant(rng, nout, n),
    ))  # fmt: skip
    return QModel(f"dag{seed}", in_shape, 1 / 127, tuple(layers))


@pytest.mark.parametrize("seed", range(40))
def test_random_dag_program_equals_golden(seed: int) -> None:
    qm = random_dag(seed)
    x = np.random.default_rng(seed + 1000).integers(-127, 128, qm.in_shape).astype(np.int8)
    outs = dict(run(qm, x))
    for array in ("4x4", "3x5", "2x8"):
        prog = lower(qm, ArrayConfig.parse(array))
        logits, snaps = emulate(prog, x)
        assert np.array_equal(logits, outs["fc"]), f"{qm.name} {array}"
        for lay, snap in zip(prog.layers, snaps, strict=True):
            want = x if lay.covers[-1] == INPUT else outs[lay.covers[-1]]
            want = want.reshape(-1, 1, 1) if want.ndim == 1 else want
            got = buffer_to_chw(snap, lay.final_h, lay.final_w, lay.cout, lay.dst_stride,
                                lay.dst_base)  # fmt: skip
            assert np.array_equal(got, want), f"{qm.name} {array} {lay.name}"


def test_random_dags_cover_the_joins() -> None:
    """The draws above contain what the allocator must handle."""
    seen: set[str] = set()
    for seed in range(40):
        qm = random_dag(seed)
        prog = lower(qm, ArrayConfig.parse("4x4"))
        kinds = {lay.kind for lay in qm.layers}
        seen |= {k for k in ("QAdd", "QConcat", "QMaxPool") if k in kinds}
        if any("_copy" in p.name for p in prog.layers):
            seen.add("copy")
        if any(p.c_step > 1 for p in prog.layers):
            seen.add("strided read")
        if any(INPUT in lay.inputs for lay in qm.layers if isinstance(lay, QAdd)):
            seen.add("input operand")
    assert {"QAdd", "QConcat", "QMaxPool", "copy", "strided read", "input operand"} <= seen, seen
