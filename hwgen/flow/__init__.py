"""The build driver: one BuildConfig, one pipeline of named steps (see steps.py), and the
Python API ``compile(module, calib=..., array=...) -> Design``."""

from __future__ import annotations

from .config import BUILD_STEPS, SIM_STEPS, STEPS, BuildConfig
from .design import Design, compile
from .steps import STEP_FUNCS, BuildState, run

__all__ = [
    "STEPS",
    "SIM_STEPS",
    "BUILD_STEPS",
    "STEP_FUNCS",
    "BuildConfig",
    "BuildState",
    "Design",
    "compile",
    "run",
]
