"""Integer-only NumPy reference ops (int64 internally, no floats anywhere).

Feature maps are (C, H, W) with optional leading batch dimensions (..., C, H, W); every op
broadcasts over them so that ``hwgen.golden.run.predict`` can run whole batches at once.
Results are int64 arrays holding the exact integer values; callers cast to int8 where the
contract says a tensor is int8.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from hwgen.quant.fixedpoint import requantize as _requantize
from hwgen.quant.fixedpoint import rounding_divide_by_pot

__all__ = ["conv2d_int", "linear_int", "maxpool_int", "avgpool_int", "requant"]


def _ints(x, what: str) -> np.ndarray:
    """View ``x`` as int64, refusing anything that is not an integer array (floats, bools)."""
    a = np.asarray(x)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{what} must be an integer array, got dtype {a.dtype}")
    return a.astype(np.int64, copy=False)


def _windows(x: np.ndarray, k: int, stride: int) -> np.ndarray:
    """(..., C, H, W) -> (..., C, OH, OW, k, k) strided view of every k x k window (floor mode)."""
    if k < 1 or stride < 1:
        raise ValueError(f"kernel and stride must be >= 1, got kernel={k} stride={stride}")
    if x.shape[-1] < k or x.shape[-2] < k:
        raise ValueError(f"kernel {k} is larger than the (padded) map {x.shape[-2:]}")
    return sliding_window_view(x, (k, k), axis=(-2, -1))[..., ::stride, ::stride, :, :]


def conv2d_int(x, w, stride: int = 1, padding: int = 0) -> np.ndarray:
    """Integer conv: x (..., Cin, H, W), w (Cout, Cin, k, k) -> acc (..., Cout, OH, OW) int64.

    Zero padding is a real zero because activations are symmetric (zero point 0).
    """
    x, w = _ints(x, "conv input"), _ints(w, "conv weight")
    cout, cin, kh, kw = w.shape
    if kh != kw:
        raise ValueError(f"only square kernels are supported, got {kh}x{kw}")
    if x.shape[-3] != cin:
        raise ValueError(f"conv input has {x.shape[-3]} channels, weight expects {cin}")
    if padding:
        pad = [(0, 0)] * (x.ndim - 2) + [(padding, padding)] * 2
        x = np.pad(x, pad)
    win = _windows(x, kh, stride)  # (..., Cin, OH, OW, k, k)
    # im2col to a contiguous (pixels, Cin*k*k) matrix; einsum's contiguous-inner-axis int64
    # loop is ~2x faster than NumPy's (non-BLAS) integer matmul here.
    lead, (oh, ow) = win.shape[:-5], win.shape[-4:-2]
    cols = np.moveaxis(win, -5, -3).reshape(-1, cin * kh * kw)  # (.., OH, OW, Cin, k, k)
    acc = np.einsum("pk,ok->po", cols, w.reshape(cout, -1))  # (pixels, Cout)
    return np.moveaxis(acc.reshape(*lead, oh, ow, cout), -1, -3)


def linear_int(x, w) -> np.ndarray:
    """Integer fully connected layer: x (..., K), w (N, K) -> acc (..., N) int64."""
    x, w = _ints(x, "linear input"), _ints(w, "linear weight")
    if x.shape[-1] != w.shape[1]:
        raise ValueError(f"linear input has {x.shape[-1]} features, weight expects {w.shape[1]}")
    return np.einsum("...k,nk->...n", x, w)


def maxpool_int(x, kernel: int = 2, stride: int = 2) -> np.ndarray:
    """Max over each kernel x kernel window (no padding, floor mode, like nn.MaxPool2d)."""
    return _windows(_ints(x, "maxpool input"), kernel, stride).max(axis=(-2, -1))


def avgpool_int(x, kernel: int = 2, stride: int = 2) -> np.ndarray:
    """Average over a power-of-two window: RoundingDivideByPOT(sum, log2(kernel**2)).

    Same scale in and out; ties round away from zero (gemmlowp RDBPOT), so the result of an
    int8 input stays within int8.
    """
    n = kernel * kernel
    if n & (n - 1):
        raise ValueError(f"avgpool window {kernel}x{kernel} is not a power of two")
    s = _windows(_ints(x, "avgpool input"), kernel, stride).sum(axis=(-2, -1))
    return rounding_divide_by_pot(s, n.bit_length() - 1)


def requant(
    acc,
    bias,
    multiplier,
    shift,
    act_min: int = -128,
    act_max: int = 127,
    channel_axis: int = -1,
) -> np.ndarray:
    """acc + bias, then clamp(RDBPOT(SRDHM(., M[c]), shift[c]), act_min, act_max) per channel.

    ``channel_axis`` is the output-channel axis of ``acc``: -3 for conv (C, H, W) maps, -1 for
    linear outputs. The bias-added accumulator must lie in int32 (checked by ``srdhm``).
    """
    acc = _ints(acc, "accumulator")
    axis = channel_axis % acc.ndim
    trail = (1,) * (acc.ndim - axis - 1)  # broadcast per-channel vectors along that axis

    def per_channel(v, what: str) -> np.ndarray:
        v = _ints(v, what)
        if v.shape != (acc.shape[axis],):
            raise ValueError(f"{what} has shape {v.shape}, expected ({acc.shape[axis]},)")
        return v.reshape(v.shape + trail)

    total = acc + per_channel(bias, "bias")
    return _requantize(
        total,
        per_channel(multiplier, "multiplier"),
        per_channel(shift, "shift"),
        lo=act_min,
        hi=act_max,
    )
