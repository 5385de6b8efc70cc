"""Front-end errors."""

from __future__ import annotations

from hwgen.errors import HwgenError

__all__ = ["FrontendError", "UnsupportedLayerError"]


class UnsupportedLayerError(HwgenError, ValueError):
    """The model uses a layer, an option or a graph shape the hardware flow cannot express.

    The message always names the torch.fx node, its op/target and why it is rejected.
    """


class FrontendError(RuntimeError):
    """An internal inconsistency: the imported graph does not reproduce the torch module.

    Raised by the import-time self-check instead of letting wrong numbers reach hardware.
    """
