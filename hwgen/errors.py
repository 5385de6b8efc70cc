"""The one base class of errors a user can cause (bad option, file, model or data).

The CLI prints ``hwgen: error: <message>`` (one line) and exits with status 2 for any
HwgenError; everything else is a bug and keeps its traceback. Messages name the thing at
fault (option, file, layer, field, tensor) and the reason. Every stage may import this module.
"""

from __future__ import annotations

__all__ = ["HwgenError", "ToolMissing", "UsageError"]


class HwgenError(Exception):
    """A user error: the message is one line naming the thing at fault and the reason."""


class UsageError(HwgenError, ValueError):
    """A bad command-line option or API argument (names the option)."""


class ToolMissing(HwgenError, RuntimeError):
    """A required simulator or FPGA tool is not installed (a failure, never a skip)."""
