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

from dataclasses import dataclass, replace

import numpy as np

from hwgen.config import ArrayConfig
from hwgen.errors import HwgenError
from hwgen.quant.qmodel import (
    INPUT,
    QAdd,
    QAvgPool,
    QConcat,
    QConv,
    QFlatten,
    QLinear,
    QMaxPool,
    QModel,
    resolve_inputs,
)

from .alloc import Region, allocate
from .program import ACT_ABS_MAX, MODE_CONV, MODE_DIRECT, POOL_AVG, POOL_MAX, LayerPlan, Program

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
    # conv remainder tiles (_remainder): faster, but their pre-skewed weights grow the
    # direct-weight memory (mnist_cnn 8x8: 1,644 -> 3,292 words of R*C bytes)
    remainder_tiles: bool = True
    remainder_stream: bool = False  # their two-stream form (_remainder_stream)


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


@dataclass
class _Instr:
    """One controller instruction: a Conv/Linear/Add and the pool fused into its write-back."""

    lay: QConv | QLinear | QAdd
    src: str  # the tensor (or concat) it reads; an Add reads its operand pair region
    pool: QMaxPool | QAvgPool | None = None
    out_shape: tuple[int, ...] = ()
    copy_of: str | None = None  # an identity copy the schedule inserted (of this tensor)

    @property
    def name(self) -> str:
        return self.lay.name


@dataclass(frozen=True)
class _View:
    """How an instruction sees its input in a region: ``slots[c]`` = the physical channel
    slot (word * C + lane, from the view's first word) of logical channel c."""

    region: Region
    off: int  # word offset of the view inside a pixel
    h: int
    w: int
    slots: tuple[int, ...]


def _instructions(qm: QModel) -> tuple[list[_Instr], dict[str, str], dict[str, list[str]]]:
    """Instructions in program order, the tensor each layer name is (pools fused into their
    conv, Flatten a view), and each Concat's input tensors."""
    ins_of = resolve_inputs(qm.layers)
    users: dict[str, int] = {}
    for ins in ins_of:
        for i in ins:
            users[i] = users.get(i, 0) + 1
    alias: dict[str, str] = {INPUT: INPUT}
    concats: dict[str, list[str]] = {}
    instrs: list[_Instr] = []
    by_out: dict[str, _Instr] = {}
    for lay, ins in zip(qm.layers, ins_of, strict=True):
        srcs = [alias[i] for i in ins]
        if isinstance(lay, (QConv, QLinear, QAdd)):
            ins_t = INPUT if isinstance(lay, QAdd) else srcs[0]  # Add: set with its region
            it = _Instr(lay, ins_t, out_shape=tuple(lay.out_shape))
            if isinstance(lay, QAdd):
                it.src = f"{lay.name}:operands"
                concats[it.src] = srcs
            instrs.append(it)
            by_out[lay.name] = it
            alias[lay.name] = lay.name
        elif isinstance(lay, (QMaxPool, QAvgPool)):
            prod = by_out.get(srcs[0])
            if prod is None or prod.pool is not None or not isinstance(prod.lay, QConv) or (
                users.get(ins[0], 0) != 1
            ):
                raise ScheduleError(
                    f"layer '{lay.name}' ({lay.kind}): a pool must directly follow a conv "
                    "(+ReLU) whose output nothing else uses; it is fused into that conv's "
                    "write-back"
                )
            prod.pool, prod.out_shape = lay, tuple(lay.out_shape)
            alias[lay.name] = srcs[0]
        elif isinstance(lay, QFlatten):
            alias[lay.name] = srcs[0]  # layout only: the next linear's weight order
        elif isinstance(lay, QConcat):
            concats[lay.name] = srcs
            alias[lay.name] = lay.name
        else:
            raise ScheduleError(f"layer '{lay.name}' ({type(lay).__name__}): not schedulable")
    if not instrs:
        raise ScheduleError(f"model '{qm.name}' has no conv or linear layer")
    return instrs, alias, concats


def _regions(
    qm: QModel, instrs: list[_Instr], concats: dict[str, list[str]], C: int
) -> dict[str, Region]:
    """Tensor -> its region: one per instruction output, except the inputs of a Concat or of
    an Add, which share one region side by side (their producers write them in place)."""
    cin0, h0, w0 = qm.in_shape
    out: dict[str, Region] = {INPUT: Region(INPUT, h0 * w0, [(INPUT, _ceil(cin0, C))], fixed=0)}
    shapes = {it.name: it.out_shape for it in instrs}
    for name, parts in concats.items():
        for p in parts:
            if p == INPUT or p in concats or p in out or parts.count(p) > 1:
                why = (
                    "is the model input" if p == INPUT
                    else "is itself a concatenation" if p in concats
                    else "is used twice in it" if parts.count(p) > 1
                    else "already shares a region with another Concat/Add"
                )  # fmt: skip
                raise ScheduleError(
                    f"layer '{name.split(':')[0]}': operand '{p}' {why}; a Concat/Add operand "
                    "must be a conv/linear output placed in the operands' region only"
                )
        hw = {tuple(shapes[p][1:]) or (1, 1) for p in parts}  # a vector: one 1x1 pixel
        if len(hw) != 1:
            raise ScheduleError(f"layer '{name.split(':')[0]}': operands of different shapes")
        h, w = hw.pop()
        reg = Region(name, h * w, [(p, _ceil(shapes[p][0], C)) for p in parts])
        out.update({p: reg for p in parts})
        out[name] = reg
    for it in instrs:
        if it.name not in out:
            shp = it.out_shape
            pixels = shp[1] * shp[2] if len(shp) == 3 else 1
            out[it.name] = Region(it.name, pixels, [(it.name, _ceil(shp[0], C))])
    return out


def _place(qm: QModel, instrs: list[_Instr], concats: dict, C: int, keep_input: bool) -> tuple:
    """Regions, views and the allocation (hwgen.schedule.alloc) of the instructions. With
    ``keep_input`` the input region stays live to the end, so that no layer writes over it
    and the next image can be loaded into it while this one runs (the preload)."""
    regions = _regions(qm, instrs, concats, C)
    regions[INPUT].keep = keep_input
    shapes = {INPUT: tuple(qm.in_shape), **{it.name: it.out_shape for it in instrs}}
    views = [_view(it.src, regions, concats, shapes, C) for it in instrs]
    for i, (it, v) in enumerate(zip(instrs, views, strict=True)):
        v.region.readers.append(i)
        regions[it.name].writers.append(i)
    edges = [(v.region, regions[it.name], it.name) for it, v in zip(instrs, views, strict=True)]
    regions[instrs[-1].name].keep = True  # the logits: read by the controller at the end
    uniq = list({id(r): r for r in regions.values()}.values())
    return allocate(uniq, edges, len(instrs)), regions, views


# --- identity copies: lift the limits of zero-copy placement in two buffers ---------------


def _needs_copy(p: str, k: int, join: str, parts: list[str], ctx: dict) -> bool:
    """An operand that cannot be placed in the join's region as it is: the model input (its
    layout is the loader's), a concatenation, an operand already placed in another join, a
    repeat (x + x), or one that an instruction reads to write another operand of this join."""
    claimed, instrs = ctx["claimed"], ctx["instrs"]
    if p == INPUT or p in ctx["concats"] or p in claimed or p in parts[:k]:
        return True
    return any(it.src == p and it.name in parts for it in instrs)


def _shape_of(p: str, qm: QModel, instrs: list[_Instr], concats: dict) -> tuple[int, ...]:
    if p == INPUT:
        return tuple(qm.in_shape)
    if p in concats:
        shapes = [_shape_of(q, qm, instrs, concats) for q in concats[p]]
        return (sum(s[0] for s in shapes), *shapes[0][1:])
    return next(it.out_shape for it in instrs if it.name == p)


def _copy_operands(qm: QModel, instrs: list[_Instr], concats: dict) -> None:
    """Replace every join operand ``_needs_copy`` selects by an identity copy."""
    claimed: dict[str, str] = {}
    ctx = {"claimed": claimed, "instrs": instrs, "concats": concats}
    for join, parts in list(concats.items()):
        for k, p in enumerate(list(parts)):
            if _needs_copy(p, k, join, parts, ctx):
                claimed[_insert_copy(qm, instrs, concats, join, k)] = join
            else:
                claimed.setdefault(p, join)


def _insert_copy(qm: QModel, instrs: list[_Instr], concats: dict, join: str, k: int) -> str:
    """Operand k of ``join`` becomes an identity copy, inserted right after the last writer of
    the join's operands and of the copied tensor (so before any reader of the join): a 1x1
    conv with weight 2 on the diagonal and multiplier 2**30 (0.5), so
    SRDHM(2a, 2**30) = a exactly. It reads the operand where it is (its own region now) and
    writes it into the join's region. Returns the copy's name."""
    p = concats[join][k]
    shape = _shape_of(p, qm, instrs, concats)
    names = {it.name for it in instrs} | set(concats)
    name = _fresh(f"{p.strip('<>')}_copy_{join.split(':')[0]}", names)
    at = _after_writers([*concats[join], p], instrs, concats)
    cov = _golden_name(p, instrs)
    instrs.insert(at, _Instr(_identity(name, shape), p, out_shape=shape, copy_of=cov))
    concats[join][k] = name
    return name


def _golden_name(t: str, instrs: list[_Instr]) -> str:
    """The golden layer whose output tensor ``t`` holds (a pooled conv's is the pool's)."""
    it = next((i for i in instrs if i.name == t), None)
    if it is None:
        return t  # the model input or a concatenation
    return it.copy_of or (it.pool.name if it.pool is not None else t)


def _after_writers(tensors: list[str], instrs: list[_Instr], concats: dict) -> int:
    """Index just after the last instruction writing any of ``tensors`` (a concatenation
    stands for its parts; the model input has no writer)."""
    todo, names = list(tensors), set()
    while todo:
        t = todo.pop()
        if t in concats:
            todo += concats[t]
        else:
            names.add(t)
    return max((i + 1 for i, it in enumerate(instrs) if it.name in names), default=0)


def _subdivide(layer: str, qm: QModel, instrs: list[_Instr], concats: dict) -> bool:
    """Break an odd cycle of buffers at ``layer`` (the instruction the colouring could not
    place): it writes a region of its own, and an identity copy inserted right after it
    takes its place (every reader and join now names the copy), so that edge becomes two and
    the cycle's parity flips. False if there is no such instruction."""
    at = next((i for i, it in enumerate(instrs) if it.name == layer), None)
    if at is None:
        return False
    it = instrs[at]
    shape = it.out_shape
    names = {i.name for i in instrs} | set(concats)
    name = _fresh(f"{layer}_copy", names)
    for other in instrs[at + 1 :]:
        if other.src == layer:
            other.src = name
    for parts in concats.values():
        parts[:] = [name if p == layer else p for p in parts]
    covers = it.copy_of or _golden_name(layer, instrs)
    instrs.insert(at + 1, _Instr(_identity(name, shape), layer, out_shape=shape, copy_of=covers))
    return True


def _fresh(base: str, names: set[str]) -> str:
    name, n = base, 1
    while name in names:
        name, n = f"{base}{n}", n + 1
    names.add(name)
    return name


def _identity(name: str, shape: tuple[int, ...]) -> QConv:
    """The copy as a 1x1 conv (a vector is a 1x1 map)."""
    c = shape[0]
    shape = shape if len(shape) == 3 else (c, 1, 1)
    w = np.zeros((c, c, 1, 1), dtype=np.int8)
    w[np.arange(c), np.arange(c)] = 2
    return QConv(
        name=name, in_shape=shape, out_shape=shape, weight=w,
        bias=np.zeros(c, dtype=np.int32), multiplier=np.full(c, 1 << 30, dtype=np.int32),
        shift=np.zeros(c, dtype=np.int32), kernel=1,
    )  # fmt: skip


def _view(name: str, regions: dict[str, Region], concats: dict, shapes: dict, C: int) -> _View:
    reg = regions[name]
    if name in concats:  # the whole region, channels of each part from its first word
        slots = [reg.offset(p) * C + c for p in concats[name] for c in range(shapes[p][0])]
        h, w = tuple(shapes[concats[name][0]][1:]) or (1, 1)  # the pair of an Add of vectors
        return _View(reg, 0, h, w, tuple(slots))
    shp = shapes[name]
    h, w = (shp[1], shp[2]) if len(shp) == 3 else (1, 1)
    return _View(reg, reg.offset(name), h, w, tuple(range(shp[0])))


def _conv_weights_hwc(w: np.ndarray, slots: tuple[int, ...], cin: int) -> np.ndarray:
    """[Cout, Cin, k, k] -> [Cout, K] with K ordered (ky, kx, slot), the feeders' loop order;
    slots no channel occupies (a Concat part's padding lanes) get weight 0."""
    w = np.asarray(w, dtype=np.int64)
    cout, _, k, _ = w.shape
    out = np.zeros((cout, k, k, cin), dtype=np.int64)
    out[:, :, :, list(slots)] = w.transpose(0, 2, 3, 1)
    return out.reshape(cout, -1)


def _add_weights(lay: QAdd, slots: tuple[int, ...], cin: int) -> np.ndarray:
    """The Add as a 1x1 conv over its operand region: out[n] = wa*a[n] + wb*b[n]."""
    n = lay.out_shape[0]
    out = np.zeros((n, cin), dtype=np.int64)
    wa, wb = (int(x) for x in lay.weight)
    out[np.arange(n), list(slots[:n])] = wa
    out[np.arange(n), list(slots[n:])] = wb
    return out


def _linear_weights_hwc(lay: QLinear, v: _View, cin: int) -> np.ndarray:
    """Permute K from PyTorch's CHW flatten order to the buffers' HWC slot order."""
    wt = np.asarray(lay.weight, dtype=np.int64)
    n = wt.shape[0]
    c = len(v.slots)
    if wt.shape[1] != v.h * v.w * c:
        raise ScheduleError(
            f"layer '{lay.name}' (QLinear): expects {wt.shape[1]} inputs, the previous layer "
            f"produces {c}x{v.h}x{v.w} = {v.h * v.w * c}"
        )
    out = np.zeros((n, v.h, v.w, cin), dtype=np.int64)
    out[:, :, :, list(v.slots)] = wt.reshape(n, c, v.h, v.w).transpose(0, 2, 3, 1)
    return out.reshape(n, -1)


def _check_limits(lay_name: str, used: dict[str, int], lim: BufferLimits) -> None:
    for what, n, cap in (
        ("conv weight memory", used["convw"], lim.convw_words),
        ("direct weight memory", used["directw"], lim.directw_words),
        ("parameter memory", used["param"], lim.param_words),
    ):
        if n > cap:
            raise ScheduleError(
                f"layer '{lay_name}': the {what} needs {n} words up to and including "
                f"this layer > its {cap} words"
            )


def _pool_fields(it: _Instr, oh: int, ow: int, lim: BufferLimits) -> dict[str, int]:
    pool = it.pool
    if pool is None:
        return {}
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
    return dict(
        pool_en=1,
        pool_k=pk,
        pool_mode=POOL_AVG if isinstance(pool, QAvgPool) else POOL_MAX,
        pool_shift=(pk * pk).bit_length() - 1,
        pool_out_h=fh,
        pool_out_w=fw,
    )


class _Images:
    """The weight and parameter memory images, appended layer by layer."""

    def __init__(self, R: int, C: int) -> None:
        self.R, self.C = R, C
        self.convw: list[np.ndarray] = []
        self.directw: list[np.ndarray] = []
        self.bias: list[np.ndarray] = []
        self.mult: list[np.ndarray] = []
        self.shift: list[np.ndarray] = []
        self.used = {"convw": 0, "directw": 0, "param": 0}

    def conv(self, wmat: np.ndarray, groups: int, k_len: int) -> int:
        """Word g*K + k, lane j = weight of channel g*C+j, element k; returns the base."""
        C = self.C
        img = np.zeros((groups * k_len, C), dtype=np.int64)
        for g in range(groups):
            for j in range(C):
                n = g * C + j
                if n < wmat.shape[0]:
                    img[g * k_len : (g + 1) * k_len, j] = wmat[n]
        return self._put("convw", self.convw, img)

    def direct(self, wsplit: np.ndarray, groups: int, interval: int, split: int) -> int:
        """Pre-skewed: word t, lane i*C+j = part i % P of output n's weights, element
        t-i-j, n = g*(R/P)*C + (i//P)*C + j. ``wsplit`` is [N, P, K/P]."""
        R, C = self.R, self.C
        k_len = wsplit.shape[2]
        img = np.zeros((groups * interval, R * C), dtype=np.int64)
        for g in range(groups):
            for i in range(R):
                for j in range(C):
                    n = (g * (R // split) + i // split) * C + j
                    if n < wsplit.shape[0]:
                        t0 = g * interval + i + j
                        img[t0 : t0 + k_len, i * C + j] = wsplit[n, i % split]
        return self._put("directw", self.directw, img)

    def remainder(self, wmat: np.ndarray, rem: dict, groups: int, kh: int, kw: int,
                  cin: int, npx: int) -> int:
        """A conv's remainder tiles (see _remainder), one per group, pre-skewed like
        ``direct``: word g*I + t, lane i*C+j = the weight of channel g*C+j for element t-i-j
        of block i // P's part i % P (kernel rows (i%P)*h ...); blocks past the group's last
        pixel and kernel rows past kh get 0."""
        R, C = self.R, self.C
        P, h, L, ri = rem["rem_split"], rem["h"], rem["rem_k_len"], rem["rem_span"]
        blocks = npx - (npx - 1) // R * R  # real pixels in the remainder tile
        w4 = np.zeros((wmat.shape[0], P * h, kw, cin), dtype=np.int64)
        w4[:, :kh] = wmat.reshape(wmat.shape[0], kh, kw, cin)
        parts = w4.reshape(wmat.shape[0], P, L)  # [N, part, element]
        img = np.zeros((groups * ri, R * C), dtype=np.int64)
        for g in range(groups):
            for i in range(blocks * P):
                for j in range(C):
                    n = g * C + j
                    if n < wmat.shape[0]:
                        t0 = g * ri + i + j
                        img[t0 : t0 + L, i * C + j] = parts[n, i % P]
        return self._put("directw", self.directw, img)

    def params(self, lay: QConv | QLinear | QAdd, out_cw: int) -> int:
        """Requant parameters, one word per C output channels."""
        C = self.C
        arrs = []
        for src in (lay.bias, lay.multiplier, lay.shift):
            a = np.zeros(out_cw * C, dtype=np.int64)
            a[: len(src)] = np.asarray(src, dtype=np.int64)
            arrs.append(a.reshape(out_cw, C))
        self.bias.append(arrs[0])
        self.mult.append(arrs[1])
        base = self._put("param", self.shift, arrs[2])
        return base

    def _put(self, key: str, parts: list[np.ndarray], img: np.ndarray) -> int:
        base = self.used[key]
        parts.append(img)
        self.used[key] += img.shape[0]
        return base


def _geometry(it: _Instr, v: _View, R: int, C: int) -> dict:
    """Kernel, tiling and weight matrix of one instruction over its input view."""
    lay = it.lay
    cin = max(v.slots) + 1  # the K loop runs over every slot up to the last channel's
    if isinstance(lay, QLinear):
        wmat = _linear_weights_hwc(lay, v, cin)
        return dict(mode=MODE_DIRECT, kh=v.h, kw=v.w, s=1, pad=0, oh=1, ow=1, cin=cin, wmat=wmat)
    if isinstance(lay, QAdd):
        want = (len(v.slots) // 2, v.h, v.w) if len(lay.in_shape) == 3 else (len(v.slots) // 2,)
        if tuple(lay.in_shape) != want:
            raise ScheduleError(f"layer '{lay.name}' (QAdd): operands are not {lay.in_shape}")
        wmat = _add_weights(lay, v.slots, cin)
        return dict(mode=MODE_CONV, kh=1, kw=1, s=1, pad=0, oh=v.h, ow=v.w, cin=cin, wmat=wmat)
    if tuple(lay.in_shape) != (len(v.slots), v.h, v.w):
        raise ScheduleError(
            f"layer '{lay.name}' (QConv): input {lay.in_shape} but the previous layer "
            f"produces {(len(v.slots), v.h, v.w)}"
        )
    _, oh, ow = lay.out_shape
    pool = it.pool
    if pool is not None and pool.stride == pool.kernel and pool.kernel > 0:
        # Dead-output elimination: a floor-mode pool never reads the last row/column when
        # the map is not a multiple of its kernel, so the conv does not compute them
        # (mnist_cnn conv2: 11x11 -> 10x10, three pixel tiles fewer per group).
        oh, ow = (oh // pool.kernel) * pool.kernel, (ow // pool.kernel) * pool.kernel
    k = lay.kernel
    wmat = _conv_weights_hwc(lay.weight, v.slots, cin)
    return dict(
        mode=MODE_CONV, kh=k, kw=k, s=lay.stride, pad=lay.padding, oh=oh, ow=ow, cin=cin,
        wmat=wmat,
    )  # fmt: skip


@dataclass(frozen=True)
class _Split:
    """A linear layer's K split (see LayerPlan.ksplit): the input is a sequence of ``units``
    (pixels of ``elems`` channel slots ``stride`` words apart, or single words of C lanes),
    cut into ``split`` parts of ``per_part`` units, one part per row of a block."""

    split: int
    units: int
    per_part: int
    elems: int
    stride: int  # words per unit
    c_step: int
    by_word: bool

    @property
    def k_len(self) -> int:
        return self.per_part * self.elems


def _direct_split(v: _View, cin: int, out_cw: int, R: int, C: int) -> tuple[_Split, int, int]:
    """The split with the fewest issue cycles: each divisor P of R, by pixel or by word.
    Returns (split, groups, interval). P = 1 by pixel is the plain direct mode."""
    S = v.region.stride
    hw = v.h * v.w
    forms = [(hw, cin, S, S - _ceil(cin, C) + 1, False), (hw * S, C, 1, 1, True)]
    best = None
    for P in (p for p in range(1, R + 1) if R % p == 0):
        for units, elems, stride, c_step, by_word in forms:
            sp = _Split(P, units, _ceil(units, P), elems, stride, c_step, by_word)
            groups = _ceil(out_cw, R // P)
            interval = max(sp.k_len + R + C - 2, 2)
            if best is None or groups * interval < best[1] * best[2]:
                best = (sp, groups, interval)
    assert best is not None
    return best


def _split_weights(wmat: np.ndarray, sp: _Split, v: _View, cin: int, C: int) -> np.ndarray:
    """[N, hw*cin] (HWC slot order) -> [N, P, K/P]: part q's element t. Units past the
    input, and slots no channel occupies, get weight 0 (whatever the feeder reads there)."""
    P, kq = sp.split, sp.k_len
    t = np.arange(kq)
    u = np.arange(P)[:, None] * sp.per_part + t[None, :] // sp.elems  # unit of each element
    if sp.by_word:
        S = v.region.stride
        pix, slot = u // S, (u % S) * C + t[None, :] % C
    else:
        pix, slot = u, np.broadcast_to(t[None, :] % sp.elems, u.shape)
    ok = (pix < v.h * v.w) & (slot < cin)
    idx = np.where(ok, pix * cin + slot, 0)
    return np.where(ok[None], wmat[:, idx], 0)


REM_FIELD_MAX = 1 << 14  # rem_k_len / rem_interval bits of the descriptor
REM_WBASE_MAX = 1 << 15  # rem_wbase bits


def _remainder(g: dict, S: int, in_w: int, R: int, C: int, interval: int, ptiles: int) -> dict:
    """The remainder tile of a conv layer, or {} if it would not pay off or cannot be used.

    The last pixel tile of each channel group holds only ``rem`` = npx mod R pixels, but a
    conv tile costs a whole interval: its rows share the column weight stream. In direct mode
    (per-PE weights) it can split K instead: P row blocks per pixel, part q = kernel rows
    [q*h, (q+1)*h) with h = ceil(kh/P), so the tile takes h*kw*cin + R + C - 2 cycles. The
    parts are a constant word step apart (h input rows), so the feeders' direct-mode
    stepping walks them; it has no bounds check, hence no padding (pad == 0), and it moves
    the pixel only along x, hence the remainder pixels must lie in one output row. The
    part's K loop must be at least R long (the drain needs R cycles between a row's last
    elements). Its pre-skewed weight words span L + R + C - 2 cycles; when the group has a
    conv tile after it that lasts at least the R + C - 2 cycles past L, the next tile is
    issued after L cycles and the sequencer reads the last words beside it."""
    kh, kw, cin, s, pad, oh, ow = (g[k] for k in ("kh", "kw", "cin", "s", "pad", "oh", "ow"))
    npx = oh * ow
    rem = npx % R
    first = npx - rem
    if rem == 0 or pad != 0 or first // ow != (npx - 1) // ow:
        return {}
    best: dict = {}
    for P in (p for p in range(2, R + 1) if R % p == 0 and R // p >= rem):
        h = _ceil(kh, P)
        L = h * kw * cin
        span = L + R + C - 2
        ri = L if ptiles >= 2 and (ptiles - 1) * interval >= R + C - 2 else span
        fits = span < REM_FIELD_MAX  # the descriptor's rem_* fields (hwgen.rtl.descriptor)
        if fits and L >= max(R, 2) and ri < interval and (not best or ri < best["rem_interval"]):
            best = dict(rem_split=P, h=h, rem_k_len=L, rem_interval=ri, rem_span=span,
                        rem_step1=h * in_w * S, rem_wrap=s * S - (P - 1) * h * in_w * S)
    return best


def _remainder_stream(g: dict, S: int, in_w: int, R: int, interval: int) -> dict:
    """The two-stream remainder tile, or {} if it would not pay off or cannot be used.

    Like ``_remainder``'s, but in conv mode: P = 2 parts of h = ceil(kh/2) kernel rows, the
    rows ordered part-major (row i: pixel i % Q of the tile, part i // Q, Q = R/2), so each
    part's rows are adjacent and the column weight chain gives them their skew. Part 0's
    weights flow from row 0 as in any conv tile; part 1's (the next L conv words, the first
    L1 = (kh - h)*kw*cin of them real, the rest gated to 0) come from a second read of the
    conv-weight memory, Q cycles later, into row Q. The write-back adds row i + Q to row i.
    The feeders step one pixel per row and, after Q rows, h input rows on and Q - 1 pixels
    back; like ``_remainder``: no padding, the remainder pixels in one output row, a K part
    of at least R elements, and the tile costs L cycles instead of the interval."""
    kh, kw, cin, s, pad, oh, ow = (g[k] for k in ("kh", "kw", "cin", "s", "pad", "oh", "ow"))
    npx = oh * ow
    rem, Q = npx % R, R // 2
    first = npx - rem
    if (rem == 0 or R % 2 or rem > Q or kh < 2 or pad != 0
            or first // ow != (npx - 1) // ow):
        return {}
    h = _ceil(kh, 2)
    L = h * kw * cin
    # consecutive `last` tokens of a row must be >= R cycles apart (the drain): the tile
    # before ends K cycles after it starts, so this tile's K part must be at least R long
    ri = L
    if L < max(R, 2) or ri >= interval or ri >= REM_FIELD_MAX:
        return {}
    return dict(rem_split=2, rem_conv=1, rem_k_len=L, rem_interval=ri,
                rem_span=0, rem_wbase=0, rem_step1=s * S,
                rem_wrap=h * in_w * S - (Q - 1) * s * S)


def _plan(it: _Instr, v: _View, dst: Region, img: _Images, lim: BufferLimits) -> LayerPlan:
    R, C = img.R, img.C
    lay = it.lay
    g = _geometry(it, v, R, C)
    mode, kh, kw, s, pad = g["mode"], g["kh"], g["kw"], g["s"], g["pad"]
    oh, ow, cin = g["oh"], g["ow"], g["cin"]
    for dim_name, dim in (("height", oh), ("width", ow)):
        if dim > lim.max_dim:
            raise ScheduleError(f"layer '{lay.name}': output {dim_name} {dim} > {lim.max_dim}")
    S = v.region.stride  # words per input pixel
    k_len = kh * kw * cin
    cout = lay.out_shape[0]
    out_cw = _ceil(cout, C)
    geo = {}
    if mode == MODE_CONV:
        groups, ptiles = out_cw, _ceil(oh * ow, R)
        interval = max(k_len, R, 2)  # >= 2: the sequencer's loop-end flags need it
        wbase = img.conv(g["wmat"], groups, k_len)
        rows_limit = oh * ow
        if lim.remainder_tiles and lim.remainder_stream:
            geo = _remainder_stream(g, S, v.w, R, interval)
        rem = _remainder(g, S, v.w, R, C, interval, ptiles) if lim.remainder_tiles else {}
        if rem and not lim.remainder_stream and img.used["directw"] < REM_WBASE_MAX:
            rem_wbase = img.remainder(g["wmat"], rem, groups, kh, kw, cin, oh * ow)
            geo = {k: val for k, val in rem.items() if k != "h"} | {"rem_wbase": rem_wbase}
    else:
        sp, groups, interval = _direct_split(v, cin, out_cw, R, C)
        ptiles = 1
        wbase = img.direct(_split_weights(g["wmat"], sp, v, cin, C), groups, interval, sp.split)
        rows_limit = out_cw
        # the K loop walks one part (1 x per_part units); row i starts at part i % P: the
        # feeders step step1 words per row and wrap back after P rows (no bounds check)
        step = sp.per_part * sp.stride
        geo = dict(in_h=1, in_w=sp.units, cin=sp.elems, in_cw=sp.stride, kh=1, kw=sp.per_part,
                   k_len=sp.k_len, step1=step, wrap_delta=-sp.split * step, row_jump=0,
                   c_step=sp.c_step, ksplit=sp.split, dx=0, dy=0)  # fmt: skip
    pbase = img.params(lay, out_cw)
    _check_limits(lay.name, img.used, lim)
    covers = (lay.name,) + ((it.pool.name,) if it.pool is not None else ())
    if it.copy_of is not None:
        covers = (it.copy_of,)  # the copy holds that golden tensor
    fields = dict(
        in_h=v.h, in_w=v.w, cin=cin, in_cw=S, kh=kh, kw=kw, k_len=k_len,
        dx=R % ow, dy=R // ow,
        step1=s * S if mode == MODE_CONV else 0,
        wrap_delta=(s * v.w * S - ow * s * S) if mode == MODE_CONV else 0,
        row_jump=(v.w - kw) * S,
        c_step=S - _ceil(cin, C) + 1,
    )  # fmt: skip
    fields.update(geo)
    return LayerPlan(
        name=lay.name,
        covers=covers,
        mode=mode,
        src=v.region.buf,
        dst=dst.buf,
        stride=s,
        pad=pad,
        out_h=oh,
        out_w=ow,
        cout=cout,
        out_cw=out_cw,
        groups=groups,
        ptiles=ptiles,
        interval=interval,
        wbase=wbase,
        pbase=pbase,
        act_lo=int(lay.act_min),
        act_hi=int(lay.act_max),
        rows_limit=rows_limit,
        acc_bound=ACT_ABS_MAX * int(np.abs(g["wmat"]).sum(axis=1).max(initial=0)),
        macs=int(cout * oh * ow * k_len),
        model_macs=0 if it.copy_of is not None else int(lay.macs),
        in_base=v.region.base + v.off,
        dst_base=dst.base + dst.offset(lay.name),
        dst_cw=dst.stride,
        **fields,
        **_pool_fields(it, oh, ow, lim),
    )


def _placement(qm: QModel, instrs: list[_Instr], concats: dict, C: int, keep_input: bool):
    """_place, adding identity copies where the buffer colouring fails."""
    for _ in range(len(instrs) + 1):  # each failure adds a copy that flips a cycle's parity
        try:
            return _place(qm, instrs, concats, C, keep_input)
        except ScheduleError as e:  # an odd cycle of buffers through e.layer
            if not _subdivide(getattr(e, "layer", ""), qm, instrs, concats):
                raise
    raise ScheduleError(f"model '{qm.name}': no placement in two activation buffers found")


def _preload(plans: list[LayerPlan], reads_input: list[bool]) -> list[LayerPlan]:
    """Mark the layers during which the next image may be written into the (kept live) input
    region: after the input's last reader, not reading buffer 0 (the image's write shares
    its port A with row reads), and not the last layer (its end starts the result transfer,
    which reads through the same port)."""
    after = max(i for i, r in enumerate(reads_input) if r) + 1
    return [
        replace(p, preload=int(after <= i < len(plans) - 1 and p.src != 0))
        for i, p in enumerate(plans)
    ]


def lower(qm: QModel, array: ArrayConfig, limits: BufferLimits | None = None) -> Program:
    """Schedule ``qm`` (a chain or a DAG) on ``array``: instructions, buffer allocation
    (hwgen.schedule.alloc), weight and parameter images."""
    lim = limits or BufferLimits()
    if not array.remainder_tiles:
        lim = replace(lim, remainder_tiles=False)
    elif array.remainder_stream:
        lim = replace(lim, remainder_stream=True)
    R, C = array.rows, array.cols
    if array.acc_width < 32:
        raise ScheduleError(f"accumulator width {array.acc_width} < 32: the int8 contract needs 32")
    cin0, h0, w0 = qm.in_shape
    if h0 * w0 * _ceil(cin0, C) > lim.act_words:
        raise ScheduleError(
            f"input {cin0}x{h0}x{w0}: needs {h0 * w0 * _ceil(cin0, C)} words in activation "
            f"buffer 0 ({C} lanes per word) > its {lim.act_words} words"
        )
    instrs, _, concats = _instructions(qm)
    _copy_operands(qm, instrs, concats)
    # The input region kept live (the next image loads while this one runs) unless that
    # makes buffer 0 deeper than the limit; then the plain allocation, loads only while idle.
    for keep_input in (True, False):
        alloc, regions, views = _placement(qm, instrs, concats, C, keep_input)
        if max(alloc.depth) <= lim.act_words:
            break
    img = _Images(R, C)
    plans = [
        _plan(it, v, regions[it.name], img, lim) for it, v in zip(instrs, views, strict=True)
    ]
    if keep_input:
        plans = _preload(plans, [v.region is regions[INPUT] for v in views])
    for p in plans:
        if p.dst_end > lim.act_words:
            raise ScheduleError(
                f"layer '{p.name}': output {p.cout}x{p.final_h}x{p.final_w} needs words up to "
                f"{p.dst_end} in activation buffer {p.dst} ({C} lanes per word) > its "
                f"{lim.act_words} words"
            )
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
        buf_depth=alloc.depth,
        convw_depth=max(img.used["convw"], 1),
        directw_depth=max(img.used["directw"], 1),
        param_depth=max(img.used["param"], 1),
        pool_max_out_w=max([p.pool_out_w for p in plans if p.pool_en] + [0]),  # 0: no pool
        pool_max_k=max([p.pool_k for p in plans] + [2]),
        out_len=last.cout,
        out_buf=last.dst,
        convw=_cat(img.convw, C),
        directw=_cat(img.directw, R * C),
        bias=_cat(img.bias, C),
        mult=_cat(img.mult, C),
        shift=_cat(img.shift, C),
    )
