"""Graphs beyond a chain (issue 14 part 3): residual Add and channel Concat, without RTL.

Front end (torch.fx and ONNX) -> DAG IR; quantization (Add: int8 branch weights + gemmlowp
requant; Concat: one common scale); golden model vs float; the buffer allocator (regions,
2-colouring, liveness, first fit); the schedule emulated vs golden; descriptor widths; errors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hwgen.config import ArrayConfig
from hwgen.frontend.importer import import_model
from hwgen.golden.run import add_int, predict, quantize_input, run
from hwgen.ir import INPUT, Add, Concat
from hwgen.quant import artifact
from hwgen.quant.calibrate import run_float
from hwgen.quant.fixedpoint import requantize
from hwgen.quant.qmodel import QAdd, QConcat
from hwgen.quant.quantize import QuantizationError, _branch_weights, quantize
from hwgen.rtl.descriptor import pack_descriptor
from hwgen.schedule.alloc import Region, allocate
from hwgen.schedule.emulate import buffer_to_chw, emulate
from hwgen.schedule.lower import ScheduleError, lower
from hwgen.zoo import get_model


class Block(nn.Module):
    """conv -> [skip | two-conv branch] -> relu(add) -> cat(conv a, conv b) -> linear."""

    def __init__(self, branch: int = 2, c: int = 6) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, c, 3)
        self.branch = nn.Sequential(
            *[m for _ in range(branch) for m in (nn.Conv2d(c, c, 3, padding=1), nn.ReLU())][:-1]
        )
        self.a = nn.Conv2d(c, 3, 3, stride=2)
        self.b = nn.Conv2d(c, 5, 3, stride=2)
        self.fc = nn.Linear(8 * 3 * 3, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.c1(x)), 2)  # 16x16 -> 14x14 -> 7x7
        z = F.relu(x + self.branch(x))
        z = torch.cat([F.relu(self.a(z)), self.b(z)], dim=1)
        return self.fc(z.flatten(1))


IN = (1, 16, 16)


def _data(n: int = 60) -> np.ndarray:
    return np.random.default_rng(7).random((n, *IN), dtype=np.float32)


def _block(branch: int = 2, seed: int = 0) -> tuple[nn.Module, object]:
    torch.manual_seed(seed)
    m = Block(branch).eval()
    return m, import_model(m, IN, "block")


def test_fx_builds_a_dag_and_verifies_it() -> None:
    m, g = _block()
    adds = [n for n in g.nodes if isinstance(n, Add)]
    cats = [n for n in g.nodes if isinstance(n, Concat)]
    assert len(adds) == 1 and len(cats) == 1
    assert adds[0].inputs[0] == "max_pool2d" and len(cats[0].inputs) == 2
    assert cats[0].out_type.shape == (8, 3, 3)
    x = _data(3)
    with torch.no_grad():
        want = m(torch.from_numpy(x)).numpy()
    got = np.stack([run_float(g, xi[None])[0] for xi in x])
    assert np.allclose(got.reshape(want.shape), want, atol=1e-4)


def test_onnx_import_gives_the_same_golden_logits(tmp_path: Path) -> None:
    from hwgen.frontend.onnx_export import export_onnx
    from hwgen.frontend.onnx_import import import_onnx

    m, g = _block()
    export_onnx(m, IN, tmp_path / "block.onnx")
    g2, shape = import_onnx(tmp_path / "block.onnx")
    assert shape == IN
    assert [n.op for n in g2.nodes] == [n.op for n in g.nodes]
    x = _data()
    q1, q2 = quantize(g, x), quantize(g2, x)
    assert np.array_equal(predict(q1, x), predict(q2, x))


def test_add_quantization_and_golden_follow_float() -> None:
    _, g = _block()
    x = _data()
    qm = quantize(g, x)
    add = next(lay for lay in qm.layers if isinstance(lay, QAdd))
    assert add.relu and add.inputs == ("max_pool2d", "branch_2")
    scales = {lay.name: getattr(lay, "out_scale", None) for lay in qm.layers}
    sa = scales["c1"]  # the pool keeps the conv's scale
    sb = scales["branch_2"]
    wa, wb = (int(w) for w in add.weight)
    # the integer weights carry the ratio of the branch scales, to their rounding
    (w_small, s_small), (w_big, s_big) = sorted(((wa, sa), (wb, sb)), key=lambda t: t[1])
    assert abs(w_small / w_big - s_small / s_big) <= 0.5 / w_big
    # golden == the formula, on a random pair of int8 tensors
    rng = np.random.default_rng(0)
    a, b = (rng.integers(-128, 128, (2, *add.in_shape)) for _ in range(2))
    acc = wa * a + wb * b
    want = requantize(acc, add.multiplier[0], add.shift[0], 0, add.act_min, add.act_max)
    assert np.array_equal(add_int(add, a, b), want)
    # the whole model's integer logits track the float model
    fl = run_float(g, x)
    gold = predict(qm, x).astype(np.float64) * qm.layers[-1].out_scale
    err = np.abs(gold - fl).max() / np.abs(fl).max()
    assert err < 0.08, err
    assert np.mean(gold.argmax(1) == fl.argmax(1)) >= 0.9


def test_branch_weights_ratio() -> None:
    for sa, sb in ((1.0, 1.0), (0.02, 0.013), (0.013, 0.02), (1.0, 0.001), (0.3, 0.1)):
        wa, wb = _branch_weights(sa, sb, 0.0)
        (w_small, s_small), (w_big, s_big) = sorted(((wa, sa), (wb, sb)), key=lambda t: t[1])
        assert 1 <= w_big <= 127 and 0 <= w_small <= w_big
        assert abs(w_small / w_big - s_small / s_big) <= 0.5 / 127 + 1e-12  # best of all w
    assert _branch_weights(0.3, 0.1, 0.0) == (3, 1)  # exact ratios need no big weight
    wa, wb = _branch_weights(1.0, 0.5, 40.5)  # the multiplier bound: the big weight > 40.5
    assert wa >= 41 and wb * 2 == wa


def test_concat_inputs_share_one_scale() -> None:
    _, g = _block()
    qm = quantize(g, _data())
    by = {lay.name: lay for lay in qm.layers}
    cat = next(lay for lay in qm.layers if isinstance(lay, QConcat))
    scales = {by[i].out_scale for i in cat.inputs}
    assert len(scales) == 1
    x = quantize_input((_data(1) * 255).astype(np.uint8))[0]
    outs = dict(run(qm, x))
    assert np.array_equal(outs[cat.name], np.concatenate([outs[i] for i in cat.inputs]))


def test_artifact_round_trip(tmp_path: Path) -> None:
    _, g = _block()
    x = _data()
    qm = quantize(g, x)
    artifact.save(qm, tmp_path)
    qm2 = artifact.load(tmp_path)
    assert [lay.inputs for lay in qm2.layers] == [lay.inputs for lay in qm.layers]
    assert np.array_equal(predict(qm2, x), predict(qm, x))


@pytest.mark.parametrize("array", ["8x8", "4x8", "3x5", "1x1"])
def test_emulated_dag_program_equals_golden(array: str) -> None:
    _, g = _block()
    x = _data()
    qm = quantize(g, x)
    prog = lower(qm, ArrayConfig.parse(array))
    for xi in quantize_input((x[:2] * 255).astype(np.uint8)):
        outs = dict(run(qm, xi))
        logits, snaps = emulate(prog, xi)
        assert np.array_equal(logits, outs[qm.layers[-1].name].reshape(-1))
        for lay, snap in zip(prog.layers, snaps, strict=True):
            want = np.asarray(outs[lay.covers[-1]])
            want = want.reshape(-1, 1, 1) if want.ndim == 1 else want
            got = buffer_to_chw(snap, lay.final_h, lay.final_w, lay.cout, lay.dst_stride,
                                lay.dst_base)  # fmt: skip
            assert np.array_equal(got, want), f"{array} {lay.name}"


def test_allocator_liveness_first_fit() -> None:
    """Regions with intersecting live ranges never share words of one buffer; a region whose
    range has ended gives its words to the next one; the graph must be 2-colourable."""
    inp = Region(INPUT, 10, [(INPUT, 1)], readers=[0], fixed=0)
    a = Region("a", 10, [("a", 2)], writers=[0], readers=[1, 3])  # live 0..3
    b = Region("b", 10, [("b", 1)], writers=[1], readers=[2])
    c = Region("c", 10, [("c", 1)], writers=[2], readers=[3])  # live 2..3, with a
    d = Region("d", 4, [("d", 1)], writers=[3], keep=True)  # the output: live 3..end
    edges = [(inp, a, "l0"), (a, b, "l1"), (b, c, "l2"), (c, d, "l3")]
    al = allocate([inp, a, b, c, d], edges, 4)
    assert (inp.buf, a.buf, b.buf, c.buf, d.buf) == (0, 1, 0, 1, 0)
    assert (a.base, c.base) == (0, 20)  # c is live while a is: after a's 20 words
    assert (inp.base, b.base, d.base) == (0, 0, 0)  # each one's range ended before the next
    assert al.depth == (10, 30)
    e = Region("e", 4, [("e", 1)], writers=[4])
    with pytest.raises(ScheduleError, match=r"^layer 'l4': reads and writes buffer"):
        allocate([inp, a, b, c, d, e], [*edges, (a, e, "l4"), (b, e, "l4")], 5)


def test_allocator_regions_and_liveness() -> None:
    _, g = _block()
    qm = quantize(g, _data())
    prog = lower(qm, ArrayConfig.parse("4x4"))
    lay = {p.name: p for p in prog.layers}
    # the Add's operands share one region: the skip (c1, pooled) and the branch output
    assert lay["c1"].dst == lay["branch_2"].dst
    assert lay["c1"].dst_stride == lay["branch_2"].dst_stride == 4  # 2 + 2 words of 4 lanes
    assert lay["branch_2"].dst_base == lay["c1"].dst_base + 2
    # the branch's first conv reads the skip inside that region: stride 4, 2 words its own
    assert lay["branch_0"].in_cw == 4 and lay["branch_0"].c_step == 3
    # the Add is a 1x1 conv over the pair; the Concat region is read whole by the linear
    assert (lay["add"].kh, lay["add"].cin) == (1, 8 + 6)  # b from slot 8: lanes 6, 7 unused
    assert lay["a"].dst_stride == lay["b"].dst_stride == 3 and lay["b"].dst_base == 1
    # every instruction reads one buffer and writes the other
    assert all(p.src != p.dst for p in prog.layers)
    # the logits: at word 0 of buffer 1, or in buffer 0 after the (kept live) input region
    last, in_words = prog.layers[-1], prog.in_shape[1] * prog.in_shape[2] * prog.in_cw
    assert last.dst_base == (in_words if last.dst == 0 else 0)


def test_chain_programs_are_unchanged() -> None:
    """A chain is ping-pong: at word 0 in buffer 1, after the input region (kept live for
    the next image's preload) in buffer 0."""
    from hwgen.evaluate import build_qmodel

    prog = lower(build_qmodel("tiny_cnn"), ArrayConfig.parse("4x4"))
    n = len(prog.layers)
    in_words = prog.in_shape[1] * prog.in_shape[2] * prog.in_cw
    assert [(p.src, p.dst) for p in prog.layers] == [(i % 2, 1 - i % 2) for i in range(n)]
    assert all(p.dst_base == in_words * (1 - p.dst) and p.c_step == 1 for p in prog.layers)
    assert all(p.in_base == in_words * (1 - p.src) * (i > 0) for i, p in enumerate(prog.layers))
    assert all(p.dst_stride == p.out_cw for p in prog.layers)


class TwiceUsed(nn.Module):
    """The skip tensor is an operand of the Add and of the Concat after it (DenseNet-like)."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)
        self.c3 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(8 * 14 * 14, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.c1(x))
        z = F.relu(x + self.c3(F.relu(self.c2(x))))
        return self.fc(torch.cat([z, x], dim=1).flatten(1))


class InputAdd(nn.Module):
    """x + conv(x) on the model input, then x + x: operands the loader's layout or a repeat."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(1, 1, 3, padding=1)
        self.fc = nn.Linear(16 * 16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x + self.c(x)
        return self.fc((y + y).flatten(1))


def _models() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    return {"branch1": Block(branch=1), "branch3": Block(branch=3), "twice": TwiceUsed(),
            "input_add": InputAdd()}  # fmt: skip


@pytest.mark.parametrize("name", ["branch1", "branch3", "twice", "input_add"])
def test_identity_copies_make_any_join_schedulable(name: str) -> None:
    """Single-conv or odd-length residual branches, an operand of two joins, the model input
    or a repeated tensor as an operand: the schedule inserts exact identity copies (1x1 conv,
    weight 2, multiplier 2**30) and the emulated program still equals the golden model."""
    g = import_model(_models()[name].eval(), IN, name)
    x = _data()
    qm = quantize(g, x)
    for array in ("4x4", "3x5"):
        prog = lower(qm, ArrayConfig.parse(array))
        copies = [p for p in prog.layers if "_copy" in p.name]
        assert copies and all(p.model_macs == 0 for p in copies)
        assert prog.macs == qm.macs  # copies are not model MACs
        for xi in quantize_input((x[:2] * 255).astype(np.uint8)):
            logits, _ = emulate(prog, xi)
            assert np.array_equal(logits, dict(run(qm, xi))[qm.layers[-1].name].reshape(-1))


class VectorAdd(nn.Module):
    """Adds of vectors (Linear outputs), the last one producing the logits."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(256, 12)
        self.b = nn.Linear(256, 12)
        self.c = nn.Linear(12, 5)
        self.d = nn.Linear(12, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        h = F.relu(self.a(x) + self.b(x))
        return self.c(h) + self.d(h)


@pytest.mark.parametrize("array", ["4x4", "2x3", "1x1"])
def test_add_of_vectors_runs_as_a_1x1_conv(array: str) -> None:
    torch.manual_seed(0)
    x = _data()
    qm = quantize(import_model(VectorAdd(), IN, "vadd"), x)
    prog = lower(qm, ArrayConfig.parse(array))
    adds = [p for p in prog.layers if p.name.startswith("add")]
    assert len(adds) == 2 and all((p.out_h, p.out_w, p.kh) == (1, 1, 1) for p in adds)
    for xi in quantize_input((x[:3] * 255).astype(np.uint8)):
        logits, _ = emulate(prog, xi)
        assert np.array_equal(logits, dict(run(qm, xi))[qm.layers[-1].name].reshape(-1))


class InputJoin(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.c(x), x], dim=1).flatten(1)


def test_concat_of_the_input_is_a_named_error() -> None:
    torch.manual_seed(0)
    g = import_model(InputJoin(), IN, "cat_in")
    with pytest.raises(QuantizationError, match=r"^node cat \(Concat\): input <input> carries"):
        quantize(g, _data())


class ReluOfShared(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.c(x)
        return (F.relu(y) + y).flatten(1)


def test_relu_of_a_shared_tensor_is_a_named_error() -> None:
    torch.manual_seed(0)
    g = import_model(ReluOfShared(), IN, "shared")
    with pytest.raises(QuantizationError, match=r"^node relu: ReLU of Conv2d c, whose output"):
        quantize(g, _data())


def test_descriptor_fields_are_checked_against_their_widths() -> None:
    from dataclasses import replace

    _, g = _block()
    prog = lower(quantize(g, _data()), ArrayConfig.parse("4x4"))
    lay = replace(prog.layers[1], dst_base=1 << 24)
    with pytest.raises(ScheduleError, match=r"descriptor field dst_base = 16777216 does not fit"):
        pack_descriptor(lay, 4)
    lay = replace(prog.layers[1], c_step=4096)
    with pytest.raises(ScheduleError, match=r"^layer 'branch_0': descriptor field c_step"):
        pack_descriptor(lay, 4)


def test_res_cnn_is_a_dag_with_add_and_concat() -> None:
    g = import_model(get_model("res_cnn"), (1, 28, 28), "res_cnn")
    kinds = [n.op for n in g.nodes]
    assert "Add" in kinds and "Concat" in kinds
    qm = quantize(g, _mnist_x(50))
    assert any(isinstance(lay, QAdd) for lay in qm.layers)
    assert any(isinstance(lay, QConcat) for lay in qm.layers)
    prog = lower(qm, ArrayConfig.parse("4x8"))
    x = quantize_input(_mnist_u8(2))
    for xi in x:
        logits, _ = emulate(prog, xi)
        assert np.array_equal(logits, dict(run(qm, xi))[qm.layers[-1].name].reshape(-1))


def _mnist_u8(n: int) -> np.ndarray:
    from hwgen.datasets import load_mnist_sample

    return load_mnist_sample()[0][:n]


def _mnist_x(n: int) -> np.ndarray:
    return (_mnist_u8(n).astype(np.float32) / 255)[:, None]


def test_res_cnn_onnx_equals_the_torch_path(tmp_path: Path) -> None:
    from hwgen.frontend.onnx_export import export_onnx
    from hwgen.frontend.onnx_import import import_onnx

    m = get_model("res_cnn")
    export_onnx(m, (1, 28, 28), tmp_path / "res_cnn.onnx")
    g2, _ = import_onnx(tmp_path / "res_cnn.onnx")  # verified against onnxruntime
    g = import_model(m, (1, 28, 28), "res_cnn")
    assert [n.op for n in g2.nodes] == [n.op for n in g.nodes]
    x = _mnist_x(200)
    u8 = _mnist_u8(200)
    assert np.array_equal(predict(quantize(g2, x), u8), predict(quantize(g, x), u8))
