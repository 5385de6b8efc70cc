"""Lower a quantized model onto an R×C output-stationary systolic array.

Dataflow and loop order (why):

* Conv: tiles of R consecutive output pixels × C consecutive output channels; channel group
  is the outer loop and pixel tiles the inner one, so (a) a tile's weights are the same K
  words for every pixel tile of a group and (b) the results of a group leave the array in
  raster order, which lets a streaming pool unit consume them with a one-row line buffer.
  Tiles issue back to back every max(K, R) cycles: K cycles of MACs, and never faster than
  the R-cycle drain of a column.
* Linear at batch 1: each weight is used once, so weight bandwidth, not MACs, is the limit
  unless every PE gets its own weight each cycle. Direct mode does that from a wide
  (R·C bytes) weight memory whose image is pre-skewed here; all rows stream the same input
  vector. A tile covers R·C outputs and takes K + R + C − 2 cycles.
* Activations are stored HWC with channels padded to whole C-lane words; padding channels
  and pixels carry zero weights and are never written, so no im2col is ever materialised:
  window addresses are generated per row in hardware from the increments computed here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwgen.config import ArrayConfig
from hwgen.errors import HwgenError
from hwgen.quant.qmodel import QAvgPool, QConv, QFlatten, QLinear, QMaxPool, QModel

from .program import MODE_CONV, MODE_DIRECT, POOL_AVG, POOL_MAX, LayerPlan, Program

__all__ = ["ScheduleError", "BufferLimits", "lower"]


class ScheduleError(HwgenError, ValueError):
    """The model cannot be mapped onto the array/buffers: the message names layer and sizes."""


@dataclass(frozen=True)
class BufferLimits:
    """Upper bounds for the on-chip memories (words); a model that needs more is an error."""

    act_words: int = 1 << 14
    convw_words: int = 1 << 16
    directw_words: int = 1 << 14
    param_words: int = 1 << 12
    pool_max_k: int = 4
    max_dim: int = 2047  # feature-map height/width


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _group_mac_layers(qm: QModel) -> list[tuple[QConv | QLinear, QMaxPool | QAvgPool | None]]:
    """Pair each Conv/Linear with the pool that follows it (fused into its write-back)."""
    out: list[tuple[QConv | QLinear, QMaxPool | QAvgPool | None]] = []
    for lay in qm.layers:
        if isinstance(lay, (QConv, QLinear)):
            out.append((lay, None))
        elif isinstance(lay, (QMaxPool, QAvgPool)):
            if not out or out[-1][1] is not None or not isinstance(out[-1][0], QConv):
                raise ScheduleError(
                    f"layer '{lay.name}' ({lay.kind}): a pool must directly follow a conv "
                    "(+ReLU); it is fused into that conv's write-back"
                )
            out[-1] = (out[-1][0], lay)
        elif isinstance(lay, QFlatten):
            continue  # layout only: HWC buffers are flattened by the next linear's weight order
        else:
            raise ScheduleError(f"layer '{lay.name}' ({type(lay).__name__}): not schedulable")
    if not out:
        raise ScheduleError(f"model '{qm.name}' has no conv or linear layer")
    return out


def _conv_weights_hwc(lay: QConv) -> np.ndarray:
    """[Cout, Cin, k, k] -> [Cout, K] with K ordered (ky, kx, c), the feeders' loop order."""
    w = np.asarray(lay.weight, dtype=np.int64)
    return w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1)


def _linear_weights_hwc(lay: QLinear, h: int, w: int, c: int) -> np.ndarray:
    """Permute K from PyTorch's CHW flatten order to the buffers' HWC order."""
    wt = np.asarray(lay.weight, dtype=np.int64)
    n = wt.shape[0]
    if wt.shape[1] != h * w * c:
        raise ScheduleError(
            f"layer '{lay.name}' (QLinear): expects {wt.shape[1]} inputs, the previous layer "
            f"produces {c}x{h}x{w} = {h * w * c}"
        )
    return wt.reshape(n, c, h, w).transpose(0, 2, 3, 1).reshape(n, -1)


def lower(qm: QModel, array: ArrayConfig, limits: BufferLimits | None = None) -> Program:
    lim = limits or BufferLimits()
    R, C = array.rows, array.cols
    if array.acc_width < 32:
        raise ScheduleError(f"accumulator width {array.acc_width} < 32: the int8 contract needs 32")
    cin0, h0, w0 = qm.in_shape
    h, w, c = h0, w0, cin0
    cw = _ceil(c, C)
    plans: list[LayerPlan] = []
    convw_words: list[np.ndarray] = []
    directw_words: list[np.ndarray] = []
    p_bias: list[np.ndarray] = []
    p_mult: list[np.ndarray] = []
    p_shift: list[np.ndarray] = []
    convw_at = directw_at = param_at = 0
    buf_need = [h * w * cw, 0]
    if buf_need[0] > lim.act_words:
        raise ScheduleError(
            f"input {cin0}x{h0}x{w0}: needs {buf_need[0]} words in activation buffer 0 "
            f"({C} lanes per word) > its {lim.act_words} words"
        )
    src = 0
    for lay, pool in _group_mac_layers(qm):
        if isinstance(lay, QConv):
            if tuple(lay.in_shape) != (c, h, w):
                raise ScheduleError(
                    f"layer '{lay.name}' (QConv): input {lay.in_shape} but the previous layer "
                    f"produces {(c, h, w)}"
                )
            cout, oh, ow = lay.out_shape
            if pool is not None and pool.stride == pool.kernel and pool.kernel > 0:
                # Dead-output elimination: a floor-mode pool never reads the last row/column
                # when the map is not a multiple of its kernel, so the conv does not compute
                # them (mnist_cnn conv2: 11x11 -> 10x10, three pixel tiles fewer per group).
                oh, ow = (oh // pool.kernel) * pool.kernel, (ow // pool.kernel) * pool.kernel
            k, s, pad = lay.kernel, lay.stride, lay.padding
            kh = kw = k
            mode = MODE_CONV
            wmat = _conv_weights_hwc(lay)
        else:
            cout = lay.out_shape[0]
            oh = ow = 1
            kh, kw, s, pad = h, w, 1, 0
            mode = MODE_DIRECT
            wmat = _linear_weights_hwc(lay, h, w, c)
        for dim_name, dim in (("height", oh), ("width", ow)):
            if dim > lim.max_dim:
                raise ScheduleError(f"layer '{lay.name}': output {dim_name} {dim} > {lim.max_dim}")
        k_len = kh * kw * c
        out_cw = _ceil(cout, C)
        P = oh * ow
        if mode == MODE_CONV:
            groups, ptiles = out_cw, _ceil(P, R)
            interval = max(k_len, R, 2)  # >= 2: the sequencer's loop flags need it
            # conv weight image: word g*K + k, lane j = weight of channel g*C+j, element k
            img = np.zeros((groups * k_len, C), dtype=np.int64)
            for g in range(groups):
                for j in range(C):
                    n = g * C + j
                    if n < cout:
                        img[g * k_len : (g + 1) * k_len, j] = wmat[n]
            wbase = convw_at
            convw_at += img.shape[0]
            convw_words.append(img)
            rows_limit = P
        else:
            groups, ptiles = _ceil(out_cw, R), 1
            interval = max(k_len + R + C - 2, 2)
            # direct image, pre-skewed: word t, lane i*C+j = W[n][t-i-j], n = g*R*C + i*C + j
            img = np.zeros((groups * interval, R * C), dtype=np.int64)
            for g in range(groups):
                for i in range(R):
                    for j in range(C):
                        n = g * R * C + i * C + j
                        if n < cout:
                            t0 = g * interval + i + j
                            img[t0 : t0 + k_len, i * C + j] = wmat[n]
            wbase = directw_at
            directw_at += img.shape[0]
            directw_words.append(img)
            rows_limit = out_cw
        # requant parameters, one word per C output channels
        pw = out_cw
        bias = np.zeros((pw, C), dtype=np.int64)
        mult = np.zeros((pw, C), dtype=np.int64)
        shift = np.zeros((pw, C), dtype=np.int64)
        for n in range(cout):
            bias[n // C, n % C] = int(lay.bias[n])
            mult[n // C, n % C] = int(lay.multiplier[n])
            shift[n // C, n % C] = int(lay.shift[n])
        pbase = param_at
        param_at += pw
        p_bias.append(bias)
        p_mult.append(mult)
        p_shift.append(shift)

        pool_kw: dict[str, int] = {}
        fh, fw = oh, ow
        covers = [lay.name]
        if pool is not None:
            if pool.stride != pool.kernel:
                raise ScheduleError(
                    f"layer '{pool.name}' ({pool.kind}): stride {pool.stride} != kernel "
                    f"{pool.kernel}; only non-overlapping pools are fused"
                )
            if pool.kernel > lim.pool_max_k:
                raise ScheduleError(
                    f"layer '{pool.name}' ({pool.kind}): kernel {pool.kernel} > {lim.pool_max_k}"
                )
            pk = pool.kernel
            fh, fw = oh // pk, ow // pk
            if fh * fw == 0 or (fh, fw) != tuple(pool.out_shape[1:]):
                raise ScheduleError(f"layer '{pool.name}': output shape mismatch {pool.out_shape}")
            pool_kw = dict(
                pool_en=1,
                pool_k=pk,
                pool_mode=POOL_AVG if isinstance(pool, QAvgPool) else POOL_MAX,
                pool_shift=(pk * pk).bit_length() - 1,
                pool_out_h=fh,
                pool_out_w=fw,
            )
            covers.append(pool.name)
        dst = 1 - src
        need = fh * fw * out_cw
        if need > lim.act_words:
            raise ScheduleError(
                f"layer '{lay.name}': output {cout}x{fh}x{fw} needs {need} words in activation "
                f"buffer {dst} ({C} lanes per word) > its {lim.act_words} words"
            )
        buf_need[dst] = max(buf_need[dst], need)
        for what, used, cap in (
            ("conv weight memory", convw_at, lim.convw_words),
            ("direct weight memory", directw_at, lim.directw_words),
            ("parameter memory", param_at, lim.param_words),
        ):
            if used > cap:
                raise ScheduleError(
                    f"layer '{lay.name}': the {what} needs {used} words up to and including "
                    f"this layer > its {cap} words"
                )
        plans.append(
            LayerPlan(
                name=lay.name,
                covers=tuple(covers),
                mode=mode,
                src=src,
                dst=dst,
                in_h=h,
                in_w=w,
                cin=c,
                in_cw=cw,
                kh=kh,
                kw=kw,
                stride=s,
                pad=pad,
                out_h=oh,
                out_w=ow,
                cout=cout,
                out_cw=out_cw,
                groups=groups,
                ptiles=ptiles,
                k_len=k_len,
                interval=interval,
                dx=R % ow,
                dy=R // ow,
                step1=s * cw if mode == MODE_CONV else 0,
                wrap_delta=(s * w * cw - ow * s * cw) if mode == MODE_CONV else 0,
                row_jump=(w - kw) * cw,
                wbase=wbase,
                pbase=pbase,
                act_lo=int(lay.act_min),
                act_hi=int(lay.act_max),
                rows_limit=rows_limit,
                macs=int(cout * oh * ow * k_len),
                model_macs=int(lay.macs),
                **pool_kw,
            )
        )
        h, w, c, cw = fh, fw, cout, out_cw
        src = dst

    last = plans[-1]
    if last.pool_en or last.final_h * last.final_w != 1:
        raise ScheduleError(
            f"the last layer '{last.name}' must produce a vector (a Linear, or a conv to 1x1)"
        )

    def _cat(parts: list[np.ndarray], width: int) -> np.ndarray:
        arr = np.concatenate(parts) if parts else np.zeros((0, width), dtype=np.int64)
        return arr if len(arr) else np.zeros((1, width), dtype=np.int64)  # keep memories > 0

    return Program(
        model=qm.name,
        array=array,
        in_shape=(cin0, h0, w0),
        in_cw=_ceil(cin0, C),
        layers=tuple(plans),
        buf_depth=(max(buf_need[0], 1), max(buf_need[1], 1)),
        convw_depth=max(convw_at, 1),
        directw_depth=max(directw_at, 1),
        param_depth=max(param_at, 1),
        pool_max_out_w=max([p.pool_out_w for p in plans if p.pool_en] + [0]),  # 0: no pool
        pool_max_k=max([p.pool_k for p in plans] + [2]),
        out_len=last.cout,
        out_buf=last.dst,
        convw=_cat(convw_words, C),
        directw=_cat(directw_words, R * C),
        bias=_cat(p_bias, C),
        mult=_cat(p_mult, C),
        shift=_cat(p_shift, C),
    )
