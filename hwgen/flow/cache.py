"""Cache keys: every cached result is keyed by the code and the data that produced it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from hwgen import paths

__all__ = ["code_digest", "graph_digest", "key_digest", "artifact_digest"]

# Sources whose change must invalidate a cached QModel (relative to the hwgen package).
QUANT_CODE = ("frontend", "ir", "quant", "config.py", "flow/data.py", "datasets.py")
# ... and a cached accuracy (which also runs the float model and the golden model).
EVAL_CODE = (*QUANT_CODE, "golden", "flow/steps.py")


def code_digest(parts: tuple[str, ...]) -> str:
    """sha256 over the package sources ``parts`` (sorted, path-tagged, package-relative, so
    the same code hashes the same wherever it is installed)."""
    h = hashlib.sha256()
    for rel in parts:
        p = paths.PACKAGE_DIR / rel
        files = sorted(p.rglob("*.py")) if p.is_dir() else [p]
        for f in files:
            if f.is_file():
                h.update(str(f.relative_to(paths.PACKAGE_DIR)).encode() + b"\0")
                h.update(f.read_bytes() + b"\0")
    return h.hexdigest()


def graph_digest(graph: Any) -> str:
    """sha256 of an IR Graph: every node's type, fields and array bytes (the float model as
    the rest of the flow sees it, whatever source it came from)."""
    h = hashlib.sha256()

    def put(v: Any) -> None:
        if isinstance(v, np.ndarray):
            a = np.ascontiguousarray(v)
            h.update(f"nd{a.dtype}{a.shape}".encode() + a.tobytes())
        elif dataclasses.is_dataclass(v) and not isinstance(v, type):
            h.update(type(v).__name__.encode())
            for f in dataclasses.fields(v):
                h.update(f.name.encode())
                put(getattr(v, f.name))
        elif isinstance(v, (tuple, list)):
            h.update(b"(")
            for x in v:
                put(x)
            h.update(b")")
        else:
            h.update(repr(v).encode() + b"\0")

    put(graph)
    return h.hexdigest()


def key_digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def artifact_digest(d: Path) -> str:
    """The sealed manifest's own hash (it covers the npz's sha256): identifies a QModel."""
    return str(json.loads((d / "manifest.json").read_text())["manifest_sha256"])
