"""hwgen.quant.artifact: exact round trip, and every corruption is named on load."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from hwgen.quant.artifact import MANIFEST, NPZ, ArtifactError, load, read_manifest, save, seal
from hwgen.quant.qmodel import QAvgPool, QConv, QFlatten, QLinear, QMaxPool, QModel


def sample_qmodel() -> QModel:
    rng = np.random.default_rng(0)

    def arrays(wshape):
        c = wshape[0]
        return dict(
            weight=rng.integers(-127, 128, wshape).astype(np.int8),
            bias=rng.integers(-(2**20), 2**20, c).astype(np.int32),
            multiplier=rng.integers(2**30, 2**31, c).astype(np.int32),
            shift=rng.integers(0, 32, c).astype(np.int32),
            w_scale=rng.random(c) + 0.01,
        )

    return QModel(
        name="sample",
        in_shape=(1, 8, 8),
        in_scale=1 / 127,
        layers=(
            QConv(name="conv1", in_shape=(1, 8, 8), out_shape=(4, 8, 8), kernel=3, padding=1,
                  act_min=0, in_scale=1 / 127, out_scale=0.0123, **arrays((4, 1, 3, 3))),
            QMaxPool(name="pool1", in_shape=(4, 8, 8), out_shape=(4, 4, 4)),
            QConv(name="conv2", in_shape=(4, 4, 4), out_shape=(3, 2, 2), kernel=3, stride=2,
                  padding=1, in_scale=0.0123, out_scale=0.05, **arrays((3, 4, 3, 3))),
            QAvgPool(name="avg", in_shape=(3, 2, 2), out_shape=(3, 1, 1)),
            QFlatten(name="flat", in_shape=(3, 1, 1), out_shape=(3,)),
            QLinear(name="fc", in_shape=(3,), out_shape=(10,), in_scale=0.05, out_scale=0.1,
                    **arrays((10, 3))),
        ),
    )  # fmt: skip


FIELDS = ("weight", "bias", "multiplier", "shift", "w_scale")
SCALARS = ("name", "kind", "in_shape", "out_shape", "act_min", "act_max", "in_scale",
           "out_scale", "kernel", "stride", "padding")  # fmt: skip


def assert_same(a: QModel, b: QModel) -> None:
    assert (a.name, a.in_shape, a.in_scale) == (b.name, b.in_shape, b.in_scale)
    assert len(a.layers) == len(b.layers)
    for la, lb in zip(a.layers, b.layers, strict=True):
        assert type(la) is type(lb)
        for f in SCALARS:
            assert getattr(la, f, None) == getattr(lb, f, None), (la.name, f)
        for f in FIELDS:
            va, vb = getattr(la, f, None), getattr(lb, f, None)
            if va is not None:
                assert va.dtype == vb.dtype and np.array_equal(va, vb), (la.name, f)


def test_round_trip(tmp_path: Path) -> None:
    qm = sample_qmodel()
    save(qm, tmp_path / "a", meta={"k": [1, 2]})
    back = load(tmp_path / "a")
    assert_same(qm, back)
    assert read_manifest(tmp_path / "a")["meta"] == {"k": [1, 2]}
    # saving the loaded model reproduces the same arrays
    save(back, tmp_path / "b")
    assert_same(back, load(tmp_path / "b"))
    assert not list((tmp_path / "a").glob("*.tmp"))


def test_round_trip_real_quantizer_output(tmp_path: Path) -> None:
    from hwgen.golden.run import predict
    from hwgen.ir.graph import Conv2d, Flatten, Graph, Linear, ReLU, TensorType
    from hwgen.quant.quantize import quantize

    rng = np.random.default_rng(4)
    t = TensorType
    g = Graph(
        "rt",
        t((1, 6, 6)),
        (
            Conv2d("conv", t((1, 6, 6)), t((3, 4, 4)), weight=rng.normal(size=(3, 1, 3, 3)),
                   bias=rng.normal(size=3) * 0.1, kernel=3),
            ReLU("relu", t((3, 4, 4)), t((3, 4, 4))),
            Flatten("flat", t((3, 4, 4)), t((48,))),
            Linear("fc", t((48,)), t((5,)), weight=rng.normal(size=(5, 48)) * 0.2,
                   bias=rng.normal(size=5) * 0.1),
        ),
    )  # fmt: skip
    qm = quantize(g, rng.random((16, 1, 6, 6)).astype(np.float32))
    save(qm, tmp_path)
    back = load(tmp_path)
    assert_same(qm, back)
    p = rng.integers(0, 256, (5, 6, 6)).astype(np.uint8)
    assert np.array_equal(predict(qm, p), predict(back, p))


# -- corruption helpers ------------------------------------------------------------------


def rewrite(d: Path, arrays: Callable[[dict], None] | None = None, manifest=None) -> None:
    """Mutate the npz arrays and/or manifest, keeping the recorded size and hash consistent
    (so the check under test is the one that fires, not the hash)."""
    man = json.loads((d / MANIFEST).read_text())
    if arrays is not None:
        with np.load(d / NPZ) as z:
            data = {k: z[k] for k in z.files}
        arrays(data)
        buf = io.BytesIO()
        np.savez(buf, **data)
        (d / NPZ).write_bytes(buf.getvalue())
    if manifest is not None:
        manifest(man)
    raw = (d / NPZ).read_bytes()
    man["npz"]["bytes"], man["npz"]["sha256"] = len(raw), hashlib.sha256(raw).hexdigest()
    (d / MANIFEST).write_text(json.dumps(seal(man)))


@pytest.fixture
def art(tmp_path: Path) -> Path:
    save(sample_qmodel(), tmp_path)
    return tmp_path


def expect(d: Path, *parts: str) -> None:
    with pytest.raises(ArtifactError) as ei:
        load(d)
    msg = str(ei.value)
    for p in parts:
        assert p in msg, msg


def test_missing_manifest(tmp_path: Path) -> None:
    expect(tmp_path, "manifest.json", "missing")


def test_missing_npz(art: Path) -> None:
    (art / NPZ).unlink()
    expect(art, "qmodel.npz", "missing")


def test_truncated_npz(art: Path) -> None:
    raw = (art / NPZ).read_bytes()
    (art / NPZ).write_bytes(raw[: len(raw) // 2])
    expect(art, "qmodel.npz", "truncated")


def test_truncated_npz_with_matching_manifest(art: Path) -> None:
    raw = (art / NPZ).read_bytes()
    (art / NPZ).write_bytes(raw[: len(raw) // 2])
    rewrite(art)
    expect(art, "qmodel.npz", "not a readable npz")


def test_hash_mismatch(art: Path) -> None:
    raw = bytearray((art / NPZ).read_bytes())
    raw[len(raw) // 3] ^= 0xFF
    (art / NPZ).write_bytes(bytes(raw))
    expect(art, "qmodel.npz", "sha256 mismatch")


def test_bad_json(art: Path) -> None:
    (art / MANIFEST).write_text("{not json")
    expect(art, "manifest.json", "not valid JSON")


def test_edited_manifest_is_detected(art: Path) -> None:
    """An edit that keeps the manifest valid (a clamp inside int8) still fails: it is sealed."""
    man = json.loads((art / MANIFEST).read_text())
    man["layers"][0]["params"]["act_max"] = 100
    (art / MANIFEST).write_text(json.dumps(man))
    expect(art, "manifest.json", "manifest_sha256 does not match")


def test_wrong_version(art: Path) -> None:
    rewrite(art, manifest=lambda m: m.update(version=99))
    expect(art, "manifest.json", "version 99", "not supported")


def test_wrong_format(art: Path) -> None:
    rewrite(art, manifest=lambda m: m.update(format="something-else"))
    expect(art, "manifest.json", "format")


def test_missing_array(art: Path) -> None:
    rewrite(art, arrays=lambda a: a.pop("conv2.bias"))
    expect(art, "conv2.bias", "missing")


def test_unlisted_array(art: Path) -> None:
    rewrite(art, arrays=lambda a: a.update(extra=np.zeros(3)))
    expect(art, "'extra'", "not listed")


def test_dtype_differs_from_table(art: Path) -> None:
    rewrite(art, arrays=lambda a: a.update({"fc.weight": a["fc.weight"].astype(np.int16)}))
    expect(art, "fc.weight", "dtype int16", "manifest says int8")


def test_weight_not_int8(art: Path) -> None:
    def widen(m):
        m["arrays"]["fc.weight"]["dtype"] = "int16"

    rewrite(art, arrays=lambda a: a.update({"fc.weight": a["fc.weight"].astype(np.int16)}),
            manifest=widen)  # fmt: skip
    expect(art, "layer fc field weight", "dtype int16, must be int8")


def test_wrong_shape(art: Path) -> None:
    def shrink(m):
        m["arrays"]["conv1.multiplier"]["shape"] = [3]

    rewrite(art, arrays=lambda a: a.update({"conv1.multiplier": a["conv1.multiplier"][:3]}),
            manifest=shrink)  # fmt: skip
    expect(art, "layer conv1 field multiplier", "shape (3,), expected (4,)")


def test_missing_layer_field(art: Path) -> None:
    rewrite(art, manifest=lambda m: m["layers"][0]["params"].pop("stride"))
    expect(art, "layer conv1 params", "missing field 'stride'")


def set_value(key: str, idx: int, value: int):
    def f(a):
        a[key][np.unravel_index(idx, a[key].shape)] = value

    return f


@pytest.mark.parametrize(
    "key, value, parts",
    [
        ("conv1.weight", -128, ("layer conv1 field weight", "-128 outside -127..127")),
        ("conv2.multiplier", 2**30 - 1, ("layer conv2 field multiplier", "multiplier[1]",
                                         "outside [2**30, 2**31)")),
        ("fc.multiplier", -5, ("layer fc field multiplier", "multiplier[1] = -5")),
        ("fc.shift", 32, ("layer fc field shift", "shift[1] = 32 outside 0..31")),
        ("conv1.shift", -1, ("layer conv1 field shift", "outside 0..31")),
    ],
)  # fmt: skip
def test_out_of_range_values(art: Path, key: str, value: int, parts: tuple[str, ...]) -> None:
    rewrite(art, arrays=set_value(key, 1, value))
    expect(art, *parts)


def test_zero_multiplier_is_allowed(art: Path) -> None:
    rewrite(art, arrays=set_value("fc.multiplier", 0, 0))
    assert load(art).layers[-1].multiplier[0] == 0


def test_bad_activation_clamp(art: Path) -> None:
    rewrite(art, manifest=lambda m: m["layers"][0]["params"].update(act_min=-200))
    expect(art, "layer conv1", "activation clamp")


def test_broken_layer_chain(art: Path) -> None:
    rewrite(art, manifest=lambda m: m["layers"][1].update(in_shape=[4, 9, 9]))
    expect(art, "layer pool1", "in_shape (4, 9, 9) != previous output (4, 8, 8)")


def test_save_refuses_values_that_do_not_fit(tmp_path: Path) -> None:
    qm = sample_qmodel()
    fc = qm.layers[-1]
    bad = QLinear(name="fc", in_shape=fc.in_shape, out_shape=fc.out_shape,
                  weight=fc.weight.astype(np.int16) * 2, bias=fc.bias, multiplier=fc.multiplier,
                  shift=fc.shift, w_scale=fc.w_scale)  # fmt: skip
    qm = QModel(qm.name, qm.in_shape, qm.in_scale, qm.layers[:-1] + (bad,))
    with pytest.raises(ArtifactError, match="layer fc field weight: values do not fit int8"):
        save(qm, tmp_path)


def test_save_is_deterministic(tmp_path: Path) -> None:
    save(sample_qmodel(), tmp_path / "a")
    save(sample_qmodel(), tmp_path / "b")
    assert (tmp_path / "a" / NPZ).read_bytes() == (tmp_path / "b" / NPZ).read_bytes()
    assert (tmp_path / "a" / MANIFEST).read_text() == (tmp_path / "b" / MANIFEST).read_text()
