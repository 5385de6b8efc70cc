"""Images -> the int8 model input: the input side of the integer contract.

* Integer pixels (0..255; the MNIST convention): the model sees x = p/255 and
  q = (254*p + 255) // 510 = round(p/255 * 127), i.e. input scale 1/127 (hwgen.golden's
  ``quantize_input``, integer-only).
* Float model inputs x (any range): q = clamp(round_half_even(x / in_scale), -127, 127),
  ``in_scale`` being the QModel's input scale (derived from the calibration data).
"""

from __future__ import annotations

import numpy as np

__all__ = ["quantize_images"]


def quantize_images(images, in_scale: float | None = None) -> np.ndarray:
    """(H,W) / (N,H,W) / (N,C,H,W) images -> int8 (N,C,H,W) (a 3-D array is a batch of
    one-channel images)."""
    p = np.asarray(images)
    if p.ndim == 2:
        p = p[None]
    elif p.ndim == 3:
        p = p[:, None]
    elif p.ndim != 4:
        raise ValueError(f"images must be (H,W), (N,H,W) or (N,C,H,W), got shape {p.shape}")
    if p.dtype.kind in "iu":
        if p.size and (p.min() < 0 or p.max() > 255):
            raise ValueError(f"pixels must be in 0..255, got [{p.min()}, {p.max()}]")
        return ((254 * p.astype(np.int64) + 255) // 510).astype(np.int8)  # never a tie
    if p.dtype.kind != "f":
        raise TypeError(f"images must be integer pixels or float inputs, not {p.dtype}")
    if in_scale is None or not in_scale > 0:
        raise ValueError("float images need the model's input scale (in_scale > 0)")
    if p.size and not np.all(np.isfinite(p)):
        raise ValueError("images contain NaN or infinite values")
    return np.clip(np.rint(p.astype(np.float64) / in_scale), -127, 127).astype(np.int8)
