"""QModel <-> artifact directory: ``qmodel.npz`` (all arrays) + ``manifest.json``.

The format is documented in docs/artifact.md. ``load`` trusts nothing: every array's
presence, dtype, shape and value range and the npz's size and sha256 are checked, and any
failure raises ArtifactError naming the file, layer/field and reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from hwgen.errors import HwgenError
from hwgen.quant.qmodel import (
    INPUT,
    QAdd,
    QAvgPool,
    QConcat,
    QConv,
    QFlatten,
    QLayer,
    QLinear,
    QMaxPool,
    QModel,
)

__all__ = [
    "FORMAT",
    "VERSION",
    "MANIFEST",
    "NPZ",
    "ArtifactError",
    "save",
    "load",
    "read_manifest",
    "seal",
]

FORMAT = "hwgen-qmodel"
VERSION = 2  # 2: manifest_sha256 seals the manifest itself
MANIFEST = "manifest.json"
NPZ = "qmodel.npz"

_KINDS: dict[str, type] = {
    c.__name__: c for c in (QConv, QLinear, QMaxPool, QAvgPool, QFlatten, QAdd, QConcat)
}
_MACS = ("QConv", "QLinear", "QAdd")  # kinds with weight/bias/requant arrays
# Per-kind scalar parameters stored in the manifest (all ints except the informational scales).
_PARAMS: dict[str, tuple[str, ...]] = {
    "QConv": ("kernel", "stride", "padding", "act_min", "act_max", "in_scale", "out_scale"),
    "QLinear": ("act_min", "act_max", "in_scale", "out_scale"),
    "QMaxPool": ("kernel", "stride"),
    "QAvgPool": ("kernel", "stride"),
    "QFlatten": (),
    "QAdd": ("act_min", "act_max", "in_scale", "out_scale"),
    "QConcat": (),
}
_FLOAT_PARAMS = {"in_scale", "out_scale"}
_ARRAYS = ("weight", "bias", "multiplier", "shift", "w_scale")
_DTYPES = {
    "weight": "int8",
    "bias": "int32",
    "multiplier": "int32",
    "shift": "int32",
    "w_scale": "float64",
}


class ArtifactError(HwgenError, ValueError):
    """A quantized-model artifact is missing, corrupt or violates the integer contract."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _atomic_write(path: Path, write) -> None:
    """Write via a temp file + rename so a reader never sees a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _write_npz(f, arrays: dict[str, np.ndarray]) -> None:
    """np.savez, but byte-for-byte deterministic (fixed zip timestamps, sorted names), so the
    same QModel always hashes the same and concurrent cache writers agree."""
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
        for key in sorted(arrays):
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            with zf.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, arrays[key], allow_pickle=False)


def _dumps(obj: Any) -> str:
    """Indented JSON with short scalar lists (shapes) kept on one line; floats are repr'd,
    so they round-trip exactly."""
    text = json.dumps(obj, indent=1)
    flat = re.sub(r"\[[^\[\]{}]*\]", lambda m: re.sub(r"\n\s*", " ", m.group()), text)
    return flat.replace("[ ", "[").replace(" ]", "]") + "\n"


def _manifest_digest(man: dict[str, Any]) -> str:
    body = {k: v for k, v in man.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def seal(man: dict[str, Any]) -> dict[str, Any]:
    """Set ``manifest_sha256``: the sha256 of the manifest's canonical JSON without that key,
    so an edit to any field (an act_max, a shape, the cache key) is detected on load."""
    man["manifest_sha256"] = _manifest_digest(man)
    return man


def save(qmodel: QModel, path_dir: str | os.PathLike, meta: dict[str, Any] | None = None) -> Path:
    """Write ``qmodel`` to ``path_dir`` (created if needed); returns the manifest path.

    ``meta`` is free-form JSON stored verbatim (e.g. the cache key of hwgen.evaluate).
    """
    d = Path(path_dir)
    d.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    layers = []
    for lay in qmodel.layers:
        if lay.kind not in _KINDS:
            raise ArtifactError(f"layer {lay.name}: cannot save layer kind {lay.kind}")
        entry: dict[str, Any] = {
            "kind": lay.kind,
            "name": lay.name,
            "in_shape": list(lay.in_shape),
            "out_shape": list(lay.out_shape),
            "params": {p: getattr(lay, p) for p in _PARAMS[lay.kind]},
            "arrays": {},
        }
        if lay.inputs:  # a DAG edge (absent: the previous layer, as in every chain)
            entry["inputs"] = list(lay.inputs)
        if isinstance(lay, (QConv, QLinear, QAdd)):
            for field in _ARRAYS:
                key = f"{lay.name}.{field}"
                if key in arrays:
                    raise ArtifactError(f"layer {lay.name}: duplicate layer name")
                src = np.asarray(getattr(lay, field))
                arr = np.ascontiguousarray(src, dtype=_DTYPES[field])
                if arr.shape != src.shape or not np.array_equal(arr, src):
                    # never let a cast wrap or round a value silently
                    raise ArtifactError(
                        f"layer {lay.name} field {field}: values do not fit {_DTYPES[field]}"
                    )
                arrays[key] = arr
                entry["arrays"][field] = key
        layers.append(entry)

    _atomic_write(d / NPZ, lambda f: _write_npz(f, arrays))
    npz = d / NPZ
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "model": qmodel.name,
        "in_shape": list(qmodel.in_shape),
        "in_scale": qmodel.in_scale,
        "npz": {"file": NPZ, "bytes": npz.stat().st_size, "sha256": _sha256(npz)},
        "arrays": {k: {"dtype": str(a.dtype), "shape": list(a.shape)} for k, a in arrays.items()},
        "layers": layers,
        "meta": meta or {},
    }
    text = _dumps(seal(manifest))
    _atomic_write(d / MANIFEST, lambda f: f.write(text.encode()))
    return d / MANIFEST


def read_manifest(path_dir: str | os.PathLike) -> dict[str, Any]:
    """The parsed manifest.json of an artifact (format and version checked)."""
    mpath = Path(path_dir) / MANIFEST
    if not mpath.is_file():
        raise ArtifactError(f"{mpath}: missing (not a quantized-model artifact)")
    try:
        man = json.loads(mpath.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArtifactError(f"{mpath}: not valid JSON ({e})") from None
    if not isinstance(man, dict) or man.get("format") != FORMAT:
        raise ArtifactError(f"{mpath}: format is not {FORMAT!r}")
    if man.get("version") != VERSION:
        raise ArtifactError(
            f"{mpath}: format version {man.get('version')!r} is not supported (expected {VERSION})"
        )
    if man.get("manifest_sha256") != _manifest_digest(man):
        raise ArtifactError(
            f"{mpath}: manifest_sha256 does not match its contents (the manifest was edited "
            "or corrupted)"
        )
    return man


class _Checker:
    """Field access with ArtifactError messages naming the manifest and the field."""

    def __init__(self, mpath: Path) -> None:
        self.mpath = mpath

    def fail(self, where: str, why: str) -> ArtifactError:
        return ArtifactError(f"{self.mpath}: {where}: {why}")

    def get(self, obj: Any, key: str, typ: type | tuple[type, ...], where: str) -> Any:
        if not isinstance(obj, dict) or key not in obj:
            raise self.fail(where, f"missing field {key!r}")
        v = obj[key]
        ok = isinstance(v, typ) and not (isinstance(v, bool) and typ is not bool)
        if not ok:
            raise self.fail(where, f"field {key!r} = {v!r} has the wrong type")
        return v

    def shape(self, obj: Any, key: str, where: str) -> tuple[int, ...]:
        v = self.get(obj, key, list, where)
        if not v or not all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in v):
            raise self.fail(where, f"field {key!r} = {v!r} is not a shape")
        return tuple(v)


def _check_array(ck: _Checker, where: str, field: str, a: np.ndarray) -> None:
    """Contract ranges of one layer array (dtype/shape are checked by the caller)."""
    if field == "weight" and a.size and a.min() < -127:
        # int8 dtype already bounds it above; -128 breaks the symmetric +-127 contract.
        raise ck.fail(where, f"weight value {a.min()} outside -127..127")
    if field == "multiplier":
        bad = (a != 0) & ((a < 2**30) | (a.astype(np.int64) >= 2**31))
        if bad.any():
            c = int(np.flatnonzero(bad)[0])
            raise ck.fail(where, f"multiplier[{c}] = {a[c]} outside [2**30, 2**31) (and not 0)")
    if field == "shift":
        bad = (a < 0) | (a > 31)
        if bad.any():
            c = int(np.flatnonzero(bad)[0])
            raise ck.fail(where, f"shift[{c}] = {a[c]} outside 0..31")
    if field == "w_scale" and not (np.all(np.isfinite(a)) and np.all(a > 0)):
        raise ck.fail(where, "w_scale must be finite and positive")


def _expected_shapes(kind: str, ins: tuple, outs: tuple, p: dict) -> dict[str, tuple]:
    cout = outs[0]
    if kind == "QConv":
        w = (cout, ins[0], p["kernel"], p["kernel"])
    elif kind == "QAdd":
        w = (2,)
    else:
        w = (cout, ins[0])
    return {"weight": w, **{f: (cout,) for f in _ARRAYS if f != "weight"}}


def load(path_dir: str | os.PathLike) -> QModel:
    """Read and fully validate an artifact written by ``save``."""
    d = Path(path_dir)
    man = read_manifest(d)
    ck = _Checker(d / MANIFEST)
    npz, data = _read_npz(ck, d, man)
    table = _check_table(ck, npz, man, data)
    name = ck.get(man, "model", str, "manifest")
    in_shape = ck.shape(man, "in_shape", "manifest")
    in_scale = ck.get(man, "in_scale", (int, float), "manifest")
    if not (0 < in_scale < float("inf")):
        raise ck.fail("manifest", f"in_scale {in_scale!r} must be positive and finite")
    layers: list[QLayer] = []
    names: set[str] = set()
    shapes: dict[str, tuple[int, ...]] = {INPUT: in_shape}
    for i, entry in enumerate(ck.get(man, "layers", list, "manifest")):
        prev = layers[-1].out_shape if layers else in_shape
        layers.append(_layer(ck, i, entry, names, shapes, prev, table, data))
    if not layers:
        raise ck.fail("manifest", "no layers")
    return QModel(name=name, in_shape=in_shape, in_scale=float(in_scale), layers=tuple(layers))


def _read_npz(ck: _Checker, d: Path, man: dict) -> tuple[Path, dict[str, np.ndarray]]:
    """The npz file: present, of the listed size and hash, readable; its path and arrays."""
    npz_info = ck.get(man, "npz", dict, "manifest")
    fname = ck.get(npz_info, "file", str, "npz")
    if Path(fname).name != fname:
        raise ck.fail("npz", f"file name {fname!r} must be a plain name in the artifact dir")
    npz = d / fname
    if not npz.is_file():
        raise ArtifactError(f"{npz}: missing (listed in {ck.mpath})")
    size = npz.stat().st_size
    want_size = ck.get(npz_info, "bytes", int, "npz")
    if size != want_size:
        raise ArtifactError(f"{npz}: truncated or resized: {size} bytes, manifest says {want_size}")
    digest = _sha256(npz)
    if digest != ck.get(npz_info, "sha256", str, "npz"):
        raise ArtifactError(f"{npz}: sha256 mismatch ({digest} != manifest {npz_info['sha256']})")
    try:
        with np.load(npz, allow_pickle=False) as z:
            return npz, {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ArtifactError(f"{npz}: not a readable npz ({type(e).__name__}: {e})") from None


def _check_table(ck: _Checker, npz: Path, man: dict, data: dict[str, np.ndarray]) -> dict:
    """The array table: every listed array present with its dtype and shape, nothing extra."""
    table = ck.get(man, "arrays", dict, "manifest")
    for key, spec in table.items():
        where = f"array {key!r}"
        if key not in data:
            raise ArtifactError(f"{npz}: {where} listed in the manifest is missing")
        dt, shp = ck.get(spec, "dtype", str, where), tuple(ck.get(spec, "shape", list, where))
        if str(data[key].dtype) != dt:
            raise ArtifactError(f"{npz}: {where} has dtype {data[key].dtype}, manifest says {dt}")
        if data[key].shape != shp:
            raise ArtifactError(f"{npz}: {where} has shape {data[key].shape}, manifest says {shp}")
    for key in data:
        if key not in table:
            raise ArtifactError(f"{npz}: array {key!r} is not listed in the manifest")
    return table


def _layer(ck: _Checker, i: int, entry: dict, names: set[str],
           shapes: dict[str, tuple[int, ...]], prev: tuple[int, ...], table: dict,
           data: dict[str, np.ndarray]) -> QLayer:
    """Layer entry i: its name, kind, inputs and shapes checked against the layers before
    (``names`` and ``shapes`` take it), then its parameters and arrays."""
    lname = ck.get(entry, "name", str, f"layers[{i}]")
    where = f"layer {lname}"
    if lname in names:
        raise ck.fail(where, "duplicate layer name")
    names.add(lname)
    kind = ck.get(entry, "kind", str, where)
    if kind not in _KINDS:
        raise ck.fail(where, f"unknown layer kind {kind!r}")
    ins, outs = ck.shape(entry, "in_shape", where), ck.shape(entry, "out_shape", where)
    inputs = tuple(entry.get("inputs", ()))
    for src in inputs:
        if not isinstance(src, str) or src not in shapes:
            raise ck.fail(where, f"input {src!r} is not the model input or an earlier layer")
    n_in = {"QAdd": 2, "QConcat": len(inputs)}.get(kind, 1)
    if (inputs and len(inputs) != n_in) or (kind in ("QAdd", "QConcat") and len(inputs) < 2):
        raise ck.fail(where, f"{kind} with inputs {list(inputs)}")
    first = shapes[inputs[0]] if inputs else prev
    if ins != first:
        what = f"the output of {inputs[0]}" if inputs else "previous output"
        raise ck.fail(where, f"in_shape {ins} != {what} {first}")
    shapes[lname] = outs
    params = _layer_params(ck, where, kind, ck.get(entry, "params", dict, where))
    arrs = _layer_arrays(ck, where, kind, entry, ins, outs, params, table, data)
    return _KINDS[kind](name=lname, in_shape=ins, out_shape=outs, inputs=inputs, **params, **arrs)


def _layer_params(ck: _Checker, where: str, kind: str, params_in: dict) -> dict[str, Any]:
    """A layer's scalar parameters, typed and range-checked."""
    params: dict[str, Any] = {}
    for p in _PARAMS[kind]:
        typ = (int, float) if p in _FLOAT_PARAMS else int
        params[p] = ck.get(params_in, p, typ, f"{where} params")
        if p in _FLOAT_PARAMS:
            params[p] = float(params[p])
    for p in ("kernel", "stride"):
        if p in params and params[p] < 1:
            raise ck.fail(where, f"{p} = {params[p]} must be >= 1")
    if params.get("padding", 0) < 0:
        raise ck.fail(where, f"padding = {params['padding']} must be >= 0")
    return params


def _layer_arrays(ck: _Checker, where: str, kind: str, entry: dict, ins: tuple[int, ...],
                  outs: tuple[int, ...], params: dict[str, Any], table: dict,
                  data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A MAC layer's arrays (weights, bias, multipliers, …) by field, each checked; else none."""
    if kind not in _MACS:
        return {}
    lo, hi = params["act_min"], params["act_max"]
    if not (-128 <= lo <= hi <= 127):
        raise ck.fail(where, f"activation clamp [{lo}, {hi}] is not inside int8")
    refs = ck.get(entry, "arrays", dict, where)
    want = _expected_shapes(kind, ins, outs, params)
    arrs: dict[str, np.ndarray] = {}
    for field in _ARRAYS:
        fwhere = f"{where} field {field}"
        key = ck.get(refs, field, str, where)
        if key not in table:
            raise ck.fail(fwhere, f"array {key!r} is not in the array table")
        a = data[key]
        if str(a.dtype) != _DTYPES[field]:
            raise ck.fail(fwhere, f"dtype {a.dtype}, must be {_DTYPES[field]}")
        if a.shape != want[field]:
            raise ck.fail(fwhere, f"shape {a.shape}, expected {want[field]}")
        _check_array(ck, fwhere, field, a)
        arrs[field] = a
    return arrs
