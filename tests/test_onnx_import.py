"""ONNX front end: the shipped models exported by torch.onnx.export import to the torch path's
IR and quantize to the same golden logits; the op forms of other exporters (BatchNormalization,
MatMul + Add) import and match onnxruntime; unsupported ops and options are named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from hwgen import ir
from hwgen.datasets import load_mnist_sample
from hwgen.flow import BuildConfig, run
from hwgen.frontend import UnsupportedLayerError, import_model
from hwgen.frontend.onnx_export import export_onnx
from hwgen.frontend.onnx_import import import_onnx, verify_onnx
from hwgen.golden.run import predict
from hwgen.zoo import get_model, input_shape

ZOO = ["mnist_cnn", "tiny_cnn"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("onnx")
    return {n: export_onnx(get_model(n), input_shape(n), d / f"{n}.onnx") for n in ZOO}


def _same_ir(a: ir.Graph, b: ir.Graph) -> None:
    """Same chain of ops, types and hyper-parameters; parameters equal up to float32 rounding
    (the exporter may fold a BatchNorm itself, in float32)."""
    assert a.in_type == b.in_type
    assert [type(n) for n in a.nodes] == [type(n) for n in b.nodes]
    for x, y in zip(a.nodes, b.nodes, strict=True):
        assert (x.in_type, x.out_type) == (y.in_type, y.out_type), (x.name, y.name)
        for f in ("kernel", "stride", "padding"):
            assert getattr(x, f, None) == getattr(y, f, None), (x.name, f)
        for f in ("weight", "bias"):
            if hasattr(x, f):
                np.testing.assert_allclose(getattr(x, f), getattr(y, f), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ZOO)
def test_zoo_model_imports_to_the_torch_ir(exported: dict[str, Path], name: str) -> None:
    graph, in_shape = import_onnx(exported[name], name=name)
    assert in_shape == input_shape(name)
    _same_ir(graph, import_model(get_model(name), input_shape(name), name))


@pytest.mark.parametrize("name", ZOO)
def test_zoo_model_golden_logits_equal_torch_path(
    exported: dict[str, Path], name: str, tmp_path: Path
) -> None:
    # Through the build flow `hwgen sim --model x.onnx` runs: same calibration, same code.
    def qmodel(model: str):
        cfg = BuildConfig(model=model, workdir=tmp_path, steps=("import", "quantize"))
        return run(cfg).qmodel

    images, _ = load_mnist_sample()
    logits = predict(qmodel(str(exported[name])), images)
    assert np.array_equal(logits, predict(qmodel(name), images))


# --- hand-built graphs: other exporters' op forms, and the errors -------------------------


def _init(name: str, a: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(np.asarray(a, dtype=np.float32), name)


def _save(tmp_path: Path, nodes: list, inits: list, in_shape: list[int], out_shape: list[int],
          out: str = "y", inputs: list | None = None) -> Path:  # fmt: skip
    g = helper.make_graph(
        nodes,
        "g",
        inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, out_shape)],
        initializer=inits,
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "net.onnx"
    onnx.save(model, str(path))
    return path


def test_batchnorm_and_matmul_add_forms(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 2, 3, 3))
    gamma, beta, mean = rng.standard_normal(4), rng.standard_normal(4), rng.standard_normal(4)
    var = rng.random(4) + 0.5
    fc_w, fc_b = rng.standard_normal((4 * 2 * 2, 5)), rng.standard_normal(5)  # [K, N]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["n"], name="bn",
                         epsilon=1e-3),  # fmt: skip
        helper.make_node("Relu", ["n"], ["r"], name="relu"),
        helper.make_node("AveragePool", ["r"], ["p"], name="pool", kernel_shape=[2, 2],
                         strides=[2, 2]),  # fmt: skip
        helper.make_node("Constant", [], ["shape"], name="k",
                         value=numpy_helper.from_array(np.array([1, -1], np.int64))),
        helper.make_node("Reshape", ["p", "shape"], ["f"], name="flat"),
        helper.make_node("MatMul", ["f", "fw"], ["mm"], name="fc"),
        helper.make_node("Add", ["mm", "fb"], ["y"], name="fc_bias"),
    ]  # fmt: skip
    inits = [_init("w", w), _init("g", gamma), _init("b", beta), _init("m", mean),
             _init("v", var), _init("fw", fc_w), _init("fb", fc_b)]  # fmt: skip
    path = _save(tmp_path, nodes, inits, [1, 2, 4, 4], [1, 5])
    graph, in_shape = import_onnx(path)  # verifies against onnxruntime
    assert in_shape == (2, 4, 4)
    assert [n.op for n in graph.nodes] == ["Conv2d", "ReLU", "AvgPool2d", "Flatten", "Linear"]
    assert graph.nodes[0].padding == 1
    lin = graph.nodes[-1]
    assert np.array_equal(lin.weight, fc_w.T.astype(np.float32))
    assert np.array_equal(lin.bias, fc_b.astype(np.float32))
    assert verify_onnx(graph, path) < 1e-5


def _conv_then(tmp_path: Path, node, extra_inits=(), out_shape=(1, 2, 6, 6)) -> Path:
    conv = helper.make_node("Conv", ["x", "w"], ["c"], name="conv")
    inits = [_init("w", np.ones((2, 1, 3, 3))), *extra_inits]
    return _save(tmp_path, [conv, node], inits, [1, 1, 8, 8], list(out_shape))


def test_unsupported_op_is_named(tmp_path: Path) -> None:
    path = _conv_then(tmp_path, helper.make_node("Sigmoid", ["c"], ["y"], name="sig"))
    with pytest.raises(
        UnsupportedLayerError, match=r"^node 'sig' \(Sigmoid\): unsupported op \(supported ONNX "
    ):
        import_onnx(path)


def test_unsupported_op_from_torch_export(tmp_path: Path) -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.conv(x))

    path = export_onnx(Net(), (1, 8, 8), tmp_path / "sig.onnx")
    with pytest.raises(UnsupportedLayerError, match=r"^node '\w+' \(Sigmoid\): unsupported op"):
        import_onnx(path)


def test_conv_dilation_is_named(tmp_path: Path) -> None:
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="dil", dilations=[2, 2])
    path = _save(tmp_path, [conv], [_init("w", np.ones((2, 1, 3, 3)))], [1, 1, 8, 8],
                 [1, 2, 4, 4])  # fmt: skip
    with pytest.raises(
        UnsupportedLayerError,
        match=r"^node 'dil' \(Conv\): dilations=\(2, 2\) is not supported \(dilation must be 1\)$",
    ):
        import_onnx(path)


def test_pool_options_are_named(tmp_path: Path) -> None:
    pool = helper.make_node("MaxPool", ["c"], ["y"], name="mp", kernel_shape=[2, 2], ceil_mode=1)
    path = _conv_then(tmp_path, pool, out_shape=(1, 2, 3, 3))
    with pytest.raises(UnsupportedLayerError, match=r"^node 'mp' \(MaxPool\): ceil_mode=True"):
        import_onnx(path)


def test_residual_add_and_concat_are_a_dag(tmp_path: Path) -> None:
    conv = helper.make_node("Conv", ["x", "w"], ["c"], name="conv")
    relu = helper.make_node("Relu", ["c"], ["r"], name="relu")
    add = helper.make_node("Add", ["r", "c"], ["s"], name="res")
    cat = helper.make_node("Concat", ["s", "c"], ["y"], name="cat", axis=1)
    path = _save(tmp_path, [conv, relu, add, cat], [_init("w", np.ones((2, 1, 3, 3)))],
                 [1, 1, 8, 8], [1, 4, 6, 6])  # fmt: skip
    graph, _ = import_onnx(path)  # verified against onnxruntime
    assert [(n.op, n.inputs) for n in graph.nodes] == [
        ("Conv2d", ()), ("ReLU", ()), ("Add", ("relu", "conv")), ("Concat", ("res", "conv")),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "node, shape, match",
    [
        (helper.make_node("Add", ["c", "x"], ["y"], name="res"), [1, 2, 6, 6],
         r"^node 'res' \(Add\): adds float32\[2x6x6\] and float32\[1x8x8\]: broadcasting"),
        (helper.make_node("Concat", ["c", "c"], ["y"], name="cat", axis=2), [1, 2, 12, 6],
         r"^node 'cat' \(Concat\): axis=2 is not supported"),
        (helper.make_node("Concat", ["c", "x"], ["y"], name="cat", axis=1), [1, 3, 6, 6],
         r"^node 'cat' \(Concat\): concatenates .*same height and width"),
    ],
)  # fmt: skip
def test_unsupported_add_concat_are_named(tmp_path: Path, node, shape, match: str) -> None:
    conv = helper.make_node("Conv", ["x", "w"], ["c"], name="conv")
    path = _save(tmp_path, [conv, node], [_init("w", np.ones((2, 1, 3, 3)))], [1, 1, 8, 8], shape)
    with pytest.raises(UnsupportedLayerError, match=match):
        import_onnx(path)


def test_bad_files_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all")
    with pytest.raises(UnsupportedLayerError, match=r"bad\.onnx: not a valid ONNX model"):
        import_onnx(bad)
    with pytest.raises(UnsupportedLayerError, match=r"missing\.onnx: ONNX file not found$"):
        import_onnx(tmp_path / "missing.onnx")


def test_cli_export_onnx_of_an_onnx_model_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hwgen.cli import main

    path = _conv_then(tmp_path, helper.make_node("Relu", ["c"], ["y"], name="relu"))
    assert main(["export-onnx", "--model", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"hwgen: error: --model {path}: already an ONNX model\n"


def test_legacy_exporter_names_become_identifiers(tmp_path: Path) -> None:
    # torch's legacy exporter names nodes like "/conv1/Conv"; the IR name is an identifier
    # (it keys the artifact's arrays), errors quote the file's own name.
    relu = helper.make_node("Relu", ["c"], ["y"], name="/act/Relu")
    path = _conv_then(tmp_path, relu)
    graph, _ = import_onnx(path)
    assert [n.name for n in graph.nodes] == ["conv", "act_Relu"]
    sig = helper.make_node("Sigmoid", ["c"], ["y"], name="/act/Sigmoid")
    with pytest.raises(UnsupportedLayerError, match=r"^node '/act/Sigmoid' \(Sigmoid\)"):
        import_onnx(_conv_then(tmp_path, sig))
