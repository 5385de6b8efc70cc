"""hwgen: PyTorch CNN -> int8 systolic-array accelerator, verified bit-exact in RTL.

``hwgen.compile(module, calib=images, array="8x8") -> Design`` (see hwgen.flow). Importing
hwgen stays cheap: the flow (and torch) load on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["compile", "BuildConfig", "HwgenError"]


def __getattr__(name: str) -> Any:
    if name in ("compile", "BuildConfig", "Design"):
        from hwgen import flow

        return getattr(flow, name)
    if name == "HwgenError":
        from hwgen.errors import HwgenError

        return HwgenError
    raise AttributeError(f"module 'hwgen' has no attribute {name!r}")
