"""Execute a Program in NumPy exactly as the hardware walks it.

Same memory images, same incremental window-address arithmetic, same tile order, same
write-back addresses: if this equals the golden model, the schedule is right and any RTL
mismatch is in the RTL. Also the source of the buffer layouts the RTL tests compare.
"""

from __future__ import annotations

import numpy as np

from hwgen.golden.ops import avgpool_int, maxpool_int
from hwgen.quant.fixedpoint import requantize

from .program import MODE_CONV, POOL_AVG, LayerPlan, Program

__all__ = ["load_input", "emulate", "buffer_to_chw", "row_pixel_states"]


def _wrap32(x: np.ndarray) -> np.ndarray:
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def load_input(prog: Program, x_int8: np.ndarray) -> np.ndarray:
    """Input map [C,H,W] int8 -> buffer-0 contents [depth, C lanes] (HWC, padded)."""
    C = prog.array.cols
    cin, h, w = prog.in_shape
    buf = np.zeros((prog.buf_depth[0], C), dtype=np.int64)
    hwc = np.asarray(x_int8, dtype=np.int64).reshape(cin, h, w).transpose(1, 2, 0)
    for c in range(cin):
        buf[np.arange(h * w) * prog.in_cw + c // C, c % C] = hwc[:, :, c].reshape(-1)
    return buf


def buffer_to_chw(buf: np.ndarray, h: int, w: int, c: int, cw: int, base: int = 0) -> np.ndarray:
    """Inverse of the HWC-padded layout (``cw`` words per pixel from word ``base``): buffer
    words -> [C, H, W]."""
    C = buf.shape[1]
    out = np.zeros((c, h, w), dtype=np.int64)
    for ch in range(c):
        out[ch] = buf[base + np.arange(h * w) * cw + ch // C, ch % C].reshape(h, w)
    return out


def row_pixel_states(lay: LayerPlan, R: int) -> list[list[tuple[int, int, int]]]:
    """Per tile, per row: (iy0, ix0, base) as the feeders compute them incrementally. A
    remainder tile (``lay.rem_split``, the last one) steps rem_step1 words per row and
    rem_wrap after each block of P rows (direct mode: iy0/ix0 unused, kept as row 0's)."""
    s, ow = lay.stride, lay.out_w
    states = []
    oy = ox = 0
    iy0 = ix0 = -lay.pad
    base = (-lay.pad * lay.in_w - lay.pad) * lay.in_cw + lay.in_base
    for tile in range(lay.ptiles):
        rows = []
        y, x, ry, rx, rb = oy, ox, iy0, ix0, base
        rem = lay.rem_split and tile == lay.ptiles - 1
        # rows per block: P parts of a pixel, or (two streams) Q = R/2 pixels of a part
        blk = R // lay.rem_split if lay.rem_conv else lay.rem_split
        if rem:
            x = 0
        for i in range(R):
            if i > 0 and rem:  # the next step within a block, rem_wrap after a block
                x += 1
                rb += lay.rem_step1
                if x == blk:
                    x = 0
                    rb += lay.rem_wrap - lay.rem_step1
            elif i > 0 and lay.mode != MODE_CONV:  # direct: the next part, back after P rows
                x += 1
                rb += lay.step1
                if x == lay.ksplit:
                    x = 0
                    rb += lay.wrap_delta
            elif i > 0:  # row i = row i-1 plus one pixel
                x += 1
                rx += s
                rb += lay.step1
                if x == ow:
                    x = 0
                    y += 1
                    rx -= ow * s
                    ry += s
                    rb += lay.wrap_delta
            rows.append((ry, rx, rb))
        states.append(rows)
        # row 0 of the next tile: R pixels on
        ox += lay.dx
        oy += lay.dy
        ix0 += lay.dx * s
        iy0 += lay.dy * s
        base += lay.dx * lay.step1 + lay.dy * s * lay.in_w * lay.in_cw
        if ox >= ow:
            ox -= ow
            oy += 1
            ix0 -= ow * s
            iy0 += s
            base += lay.wrap_delta
    return states


def _window_offsets(lay: LayerPlan, C: int) -> list[tuple[int, int, int, int]]:
    """The shared K loop: (ky, kx, offset word, lane) per element, built incrementally: +1
    word per lane wrap, +c_step at a channel-loop end, +row_jump when kx wraps."""
    out = []
    off = 0
    for ky in range(lay.kh):
        for kx in range(lay.kw):
            for c in range(lay.cin):
                out.append((ky, kx, off + c // C, c % C))
            off += (lay.cin - 1) // C + lay.c_step
        off += lay.row_jump
    return out


def _read(src: np.ndarray, addr: int, lane: int) -> int:
    """A feeder's read without bounds (direct mode): whatever is read past the buffer meets a
    zero weight, so 0 stands for it."""
    return int(src[addr, lane]) if 0 <= addr < len(src) else 0


def _remainder_tile(prog: Program, lay: LayerPlan, src: np.ndarray, rows: list,
                    offs: list, g: int) -> np.ndarray:
    """Group g's remainder tile: direct mode, K split P over kernel rows; returns the R/P
    reduced rows [R/P, C] (the write-back's RowReduce)."""
    R, C = prog.array.rows, prog.array.cols
    P, L = lay.rem_split, lay.rem_k_len
    if lay.rem_conv:
        return _stream_tile(prog, lay, src, rows, offs, g)
    w0 = lay.rem_wbase + g * lay.rem_span
    acc = np.zeros((R, C), dtype=np.int64)
    for i in range(R):
        base = rows[i][2]
        a = np.array([_read(src, base + off, lane) for (_, _, off, lane) in offs])
        for j in range(C):
            acc[i, j] = a @ prog.directw[w0 + i + j : w0 + i + j + L, i * C + j]
    return acc.reshape(R // P, P, C).sum(axis=1)


def _stream_tile(prog: Program, lay: LayerPlan, src: np.ndarray, rows: list,
                 offs: list, g: int) -> np.ndarray:
    """Group g's two-stream remainder tile: row i runs part i // Q (Q = R/2) of pixel i % Q
    with the conv words of that part (part 1's past rem_k1 gated to 0); returns the Q rows
    the write-back's fold gives (row i + row i + Q)."""
    R, L = prog.array.rows, lay.rem_k_len
    Q = R // 2
    gbase = lay.wbase + g * lay.k_len
    w = [prog.convw[gbase : gbase + L],
         np.zeros((L, prog.array.cols), dtype=np.int64)]
    w[1][: lay.rem_k1] = prog.convw[gbase + L : gbase + L + lay.rem_k1]
    acc = np.zeros((R, prog.array.cols), dtype=np.int64)
    for i in range(R):
        base = rows[i][2]
        a = np.array([_read(src, base + off, lane) for (_, _, off, lane) in offs])
        acc[i] = a @ w[i // Q]
    return acc[:Q] + acc[Q:]


def _write_rows(prog: Program, lay: LayerPlan, acc: np.ndarray, t: int, g: int, R: int,
                pre_pool: np.ndarray, dst: np.ndarray) -> None:
    """Requantize a tile's (reduced) rows and write them as the write-back does."""
    stride, wbase = lay.dst_stride, lay.dst_base
    acc = _wrap32(acc)
    for i in range(len(acc)):
        if lay.mode == MODE_CONV:
            r = t * R + i
            if r >= lay.rows_limit:
                continue
            pw = lay.pbase + g
        else:
            r = g * len(acc) + i
            if r >= lay.rows_limit:
                continue
            pw = lay.pbase + r
        y = requantize(
            _wrap32(acc[i] + prog.bias[pw]),
            prog.mult[pw],
            prog.shift[pw],
            0,
            lay.act_lo,
            lay.act_hi,
        )
        if lay.mode == MODE_CONV:
            pre_pool[g, r] = y
            if not lay.pool_en:
                dst[wbase + r * stride + g] = y
        else:
            dst[wbase + r] = y


def emulate(prog: Program, x_int8: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Run the program; returns (logits int8 [N], buffer snapshot after every layer).

    The buffers persist across layers, as in the hardware: a layer writes only its own words
    (a Concat/Add operand region is filled by several layers)."""
    R, C = prog.array.rows, prog.array.cols
    bufs = [load_input(prog, x_int8), np.zeros((prog.buf_depth[1], C), dtype=np.int64)]
    snaps = []
    for lay in prog.layers:
        src = bufs[lay.src]
        dst = bufs[lay.dst]
        stride, wbase = lay.dst_stride, lay.dst_base
        offs = _window_offsets(lay, C)
        rem_offs = _window_offsets(lay, C)[: lay.rem_k_len]  # h kernel rows of the K loop
        states = row_pixel_states(lay, R)
        pre_pool = np.zeros((lay.groups, lay.out_h * lay.out_w, C), dtype=np.int64)
        for g in range(lay.groups):
            for t in range(lay.ptiles):
                if lay.rem_split and t == lay.ptiles - 1:
                    acc = _remainder_tile(prog, lay, src, states[t], rem_offs, g)
                    _write_rows(prog, lay, acc, t, g, R, pre_pool, dst)
                    continue
                a = np.zeros((R, lay.k_len), dtype=np.int64)
                for i in range(R):
                    iy0, ix0, base = states[t][i]
                    for k, (ky, kx, off, lane) in enumerate(offs):
                        iy, ix = iy0 + ky, ix0 + kx
                        if lay.mode != MODE_CONV:  # no bounds: zero weights past the input
                            a[i, k] = src[base + off, lane] if base + off < len(src) else 0
                        elif 0 <= iy < lay.in_h and 0 <= ix < lay.in_w:
                            a[i, k] = src[base + off, lane]
                if lay.mode == MODE_CONV:
                    wt = prog.convw[lay.wbase + g * lay.k_len : lay.wbase + (g + 1) * lay.k_len]
                    acc = a @ wt  # [R, C]
                else:
                    acc = np.zeros((R, C), dtype=np.int64)
                    w0 = lay.wbase + g * lay.interval
                    for i in range(R):
                        for j in range(C):
                            col = prog.directw[w0 + i + j : w0 + i + j + lay.k_len, i * C + j]
                            acc[i, j] = a[i] @ col
                    # the write-back's row reduction: each block of P rows is one row
                    P = lay.ksplit
                    acc = acc.reshape(R // P, P, C).sum(axis=1)
                _write_rows(prog, lay, acc, t, g, R, pre_pool, dst)
        if lay.pool_en:
            pool = avgpool_int if lay.pool_mode == POOL_AVG else maxpool_int
            for g in range(lay.groups):
                m = pre_pool[g].reshape(lay.out_h, lay.out_w, C).transpose(2, 0, 1)
                pooled = pool(m, lay.pool_k, lay.pool_k)  # [C, fh, fw]
                q = pooled.transpose(1, 2, 0).reshape(-1, C)
                dst[wbase + np.arange(len(q)) * stride + g] = q
        snaps.append(dst.copy())
    last = prog.layers[-1]
    out = bufs[prog.out_buf][last.dst_base :]  # the logits region's first word
    logits = out.reshape(-1)[: last.cout] if last.out_cw else None
    return np.asarray(logits), snaps
