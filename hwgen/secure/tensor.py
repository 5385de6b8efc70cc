"""Conv / matmul on ring elements (uint64, wrapping), im2col in the golden model's order."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["im2col", "conv_ring", "matmul_ring"]


def im2col(x: np.ndarray, k: int, stride: int, padding: int) -> np.ndarray:
    """(C, H, W) -> (OH·OW, C·k·k) rows in raster order, columns in (c, ky, kx) order
    (= ``weight.reshape(Cout, -1)``); zero padding."""
    if padding:
        x = np.pad(x, ((0, 0), (padding, padding), (padding, padding)))
    win = sliding_window_view(x, (k, k), axis=(1, 2))[:, ::stride, ::stride]  # C,OH,OW,k,k
    c, oh, ow = win.shape[:3]
    return np.ascontiguousarray(np.moveaxis(win, 0, 2)).reshape(oh * ow, c * k * k)


def matmul_ring(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """uint64 matmul modulo 2**64 (the caller masks to k bits)."""
    return np.matmul(a.astype(np.uint64), b.astype(np.uint64))


def conv_ring(x: np.ndarray, w: np.ndarray, stride: int, padding: int) -> np.ndarray:
    """x (C, H, W), w (Cout, C, k, k) -> (Cout, OH, OW) modulo 2**64."""
    cout, _, k, _ = w.shape
    cols = im2col(x, k, stride, padding)
    oh = (x.shape[1] + 2 * padding - k) // stride + 1
    ow = (x.shape[2] + 2 * padding - k) // stride + 1
    return matmul_ring(cols, w.reshape(cout, -1).T).T.reshape(cout, oh, ow)
