"""The controller's instruction word as values: each layer's descriptor fields, and the width
classes a design narrows its descriptor register to.

The descriptor's layout (hwgen.rtl.descriptor.DESC_LAYOUT) has room for any network; a
design keeps only the bits its programs use. Its fields fall in three classes of like
magnitude (geometry, counts, addresses); `MemoryPlan.desc_bits` holds one width per class
(magnitude bits, the sign bit not counted), the widest value of the programs the design is
built for, and `MemoryPlan.check` refuses a program with a wider value (FitError naming the
layer and the field), so the narrowed register never truncates. The classes, not every
field, travel in the host link's INFO reply (four bytes).
"""

from __future__ import annotations

from collections.abc import Iterable

from .program import LayerPlan, Program

__all__ = ["DESC_CLASSES", "class_bits", "class_needs", "descriptor_fields", "magnitude_bits"]

# field class -> its fields (the rest, flags and small fields, keep the layout's widths)
DESC_CLASSES: dict[str, tuple[str, ...]] = {
    "geometry": ("in_h", "in_w", "cin", "in_cw", "kh", "kw", "out_w", "out_h", "out_cw",
                 "groups", "dx", "c_step", "dst_cw", "wrap_ix", "init_pos", "tile_dix",
                 "tile_diy"),
    "count": ("ptiles", "k_len", "interval", "rows_limit", "writes", "rows_total",
              "pool_count", "rem_k_len", "rem_interval"),
    "address": ("init_base", "tile_dbase", "step1", "wrap_delta", "row_jump", "dst_base",
                "wbase", "pbase", "rem_wbase", "rem_step1", "rem_wrap"),
}  # fmt: skip


def magnitude_bits(v: int) -> int:
    """Bits of v's magnitude: v fits an unsigned field of that many bits (v >= 0) or a signed
    one of one more (any v), and no fewer."""
    return (v if v >= 0 else -v - 1).bit_length()


def class_needs(lay: LayerPlan, rows: int) -> dict[str, tuple[int, str, int]]:
    """Per class (DESC_CLASSES order): the bits its widest field of `lay` needs, that field's
    name and value (the first of the widest)."""
    fields = descriptor_fields(lay, rows)
    out = {}
    for cls, names in DESC_CLASSES.items():
        f = max(names, key=lambda n: magnitude_bits(fields[n]))
        out[cls] = (magnitude_bits(fields[f]), f, fields[f])
    return out


def class_bits(progs: Iterable[Program]) -> tuple[int, ...]:
    """Each class's width (DESC_CLASSES order, at least 1): the widest value of `progs`."""
    need = dict.fromkeys(DESC_CLASSES, 1)
    for prog in progs:
        for lay in prog.layers:
            for cls, (bits, _, _) in class_needs(lay, prog.array.rows).items():
                need[cls] = max(need[cls], bits)
    return tuple(need.values())


def descriptor_fields(lay: LayerPlan, rows: int) -> dict[str, int]:
    """The instruction word's field values of one layer on an array of `rows` rows (packed
    into hwgen.rtl.descriptor.DESC_LAYOUT, which checks them against its widths)."""
    s = lay.stride
    if lay.pool_en:
        writes = lay.groups * lay.pool_out_h * lay.pool_out_w
    elif lay.mode == 0:
        writes = lay.groups * lay.out_h * lay.out_w
    else:
        writes = lay.out_cw
    return {
        "mode": lay.mode,
        "src": lay.src,
        "dst": lay.dst,
        "in_h": lay.in_h,
        "in_w": lay.in_w,
        "cin": lay.cin,
        "in_cw": lay.in_cw,
        "kh": lay.kh,
        "kw": lay.kw,
        "stride": s,
        "out_w": lay.out_w,
        "out_h": lay.out_h,
        "out_cw": lay.out_cw,
        "groups": lay.groups,
        "ptiles": lay.ptiles,
        "k_len": lay.k_len,
        "interval": lay.interval,
        "init_pos": -lay.pad,
        "init_base": (-lay.pad * lay.in_w - lay.pad) * lay.in_cw + lay.in_base,
        "dx": lay.dx,
        "tile_dix": lay.dx * s,
        "tile_diy": lay.dy * s,
        "tile_dbase": lay.dx * lay.step1 + lay.dy * s * lay.in_w * lay.in_cw,
        "wrap_ix": lay.out_w * s,
        "step1": lay.step1,
        "wrap_delta": lay.wrap_delta,
        "row_jump": lay.row_jump,
        "c_step": lay.c_step,
        "dst_base": lay.dst_base,
        "dst_cw": lay.dst_stride,
        "wbase": lay.wbase,
        "pbase": lay.pbase,
        "act_lo": lay.act_lo,
        "act_hi": lay.act_hi,
        "rows_limit": lay.rows_limit,
        "writes": writes,
        "rows_total": lay.rows_out(rows),
        # rows per feeder block - 1: a remainder tile's P parts of a pixel, or (two streams)
        # its R/2 pixels of a part; a linear layer's K split
        "ksplit_m1": (rows // 2 if lay.rem_conv else lay.rem_split or lay.ksplit) - 1,
        "pool_en": lay.pool_en,
        "pool_k": lay.pool_k,
        "pool_mode": lay.pool_mode,
        "pool_shift": lay.pool_shift,
        "pool_count": lay.pool_out_h * lay.pool_out_w if lay.pool_en else 0,
        "preload": lay.preload,
        "rem": int(lay.rem_split > 0),
        "rem_k_len": lay.rem_k_len,
        "rem_interval": lay.rem_interval,
        "rem_rows_m1": rows // lay.rem_split - 1 if lay.rem_split else 0,
        "rem_wbase": lay.rem_wbase,
        "rem_step1": lay.rem_step1,
        "rem_wrap": lay.rem_wrap,
    }
