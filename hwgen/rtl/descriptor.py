"""The controller's instruction word: one LayerPlan packed into a data.StructLayout.

Derived quantities (initial window origin, per-tile address steps) are computed here once so
that the hardware only ever adds: no multiplier or divider sits in the address path.
"""

from __future__ import annotations

from amaranth import Shape, Signal, Value, signed, unsigned
from amaranth.lib import data

from hwgen.schedule.fields import DESC_CLASSES, descriptor_fields
from hwgen.schedule.program import LayerPlan, Program

from .reduce import SPLIT_BITS

__all__ = [
    "DESC_LAYOUT",
    "HEADER_LAYOUT",
    "HEADER_MAGIC",
    "HEADER_REGIONS",
    "beat_writes",
    "check_fields",
    "narrow_fields",
    "pack_descriptor",
    "pack_header",
]

G = 12  # geometry fields (heights, widths, channels)
REM_BITS = 14  # a remainder tile's K part and interval (lower checks before using one)
REM_WBASE_BITS = 15  # its first direct-weight word
A = 24  # addresses and address steps

DESC_LAYOUT = data.StructLayout(
    {
        "mode": 1,
        "src": 1,
        "dst": 1,
        "in_h": unsigned(G),
        "in_w": unsigned(G),
        "cin": unsigned(G),
        "in_cw": unsigned(G),
        "kh": unsigned(G),
        "kw": unsigned(G),
        "stride": unsigned(4),
        "out_w": unsigned(G),
        "out_h": unsigned(G),
        "out_cw": unsigned(G),
        "groups": unsigned(G),
        "ptiles": unsigned(16),
        "k_len": unsigned(20),
        "interval": unsigned(20),
        "init_pos": signed(G),  # -pad: window origin of output pixel (0, 0)
        "init_base": signed(A),
        "dx": unsigned(G),
        "tile_dix": signed(16),
        "tile_diy": signed(16),
        "tile_dbase": signed(A),
        "wrap_ix": unsigned(16),  # out_w * stride
        "step1": signed(A),
        "wrap_delta": signed(A),
        "row_jump": signed(A),
        "c_step": unsigned(G),  # word step at a channel-loop end (1: the input fills its pixels)
        "dst_base": unsigned(A),  # first output word (a Concat/Add part, or a live region's)
        "dst_cw": unsigned(G),  # words per output pixel in the destination region
        "wbase": unsigned(A),
        "pbase": unsigned(16),
        "act_lo": signed(8),
        "act_hi": signed(8),
        "rows_limit": unsigned(16),
        "writes": unsigned(A),
        "rows_total": unsigned(A),  # rows after the row reduction: groups * ptiles * R / P
        "ksplit_m1": unsigned(SPLIT_BITS),  # direct mode: K split P - 1 (hwgen.rtl.reduce)
        "pool_en": 1,
        "pool_k": unsigned(4),
        "pool_mode": 1,
        "pool_shift": unsigned(4),
        "pool_count": unsigned(16),  # pooled pixels per channel group
        "preload": 1,  # the next image may be written into buffer 0 during this layer
        # conv: each group's last pixel tile in direct mode with a K split of ksplit_m1 + 1
        # over kernel rows (LayerPlan.rem_split; hwgen.schedule.lower._remainder)
        # (a design with ArrayConfig.remainder_stream runs every remainder tile in the
        # two-stream form, LayerPlan.rem_conv: ksplit_m1 is then R/2 - 1, the feeders'
        # block; part 1's real length is k_len - rem_k_len)
        "rem": 1,
        "rem_k_len": unsigned(REM_BITS),
        "rem_interval": unsigned(REM_BITS),
        "rem_rows_m1": unsigned(SPLIT_BITS),  # R / P - 1: reduced rows of a remainder tile
        "rem_wbase": unsigned(REM_WBASE_BITS),  # group g's words: rem_wbase + g*(its span)
        "rem_step1": signed(A),  # feeder step to the next part (h input rows)
        "rem_wrap": signed(A),  # feeder step from a block's last part to the next pixel
    }
)


def narrow_fields(bits: tuple[int, ...] | None) -> dict[str, Signal]:
    """The descriptor register, one reset-less register per field: a classed field keeps
    min(its width, its class's magnitude bits + its sign bit) (``bits`` in DESC_CLASSES
    order; None: every field its full width)."""
    keep = {}
    if bits is not None:
        keep = {f: b for names, b in zip(DESC_CLASSES.values(), bits, strict=True) for f in names}
    regs = {}
    for name, fld in DESC_LAYOUT:
        shape = Shape.cast(fld.shape)
        w = min(shape.width, keep.get(name, shape.width) + shape.signed)
        regs[name] = Signal(Shape(w, shape.signed), name=f"desc_{name}", reset_less=True)
    return regs


def beat_writes(regs: dict[str, Signal], i: int, word: Value) -> list:
    """The assignments that load program beat i (32 bits of the layout, `word`) into the
    narrowed registers: each register's bits that lie in that beat."""
    out = []
    lo, hi = 32 * i, 32 * (i + 1)
    for name, fld in DESC_LAYOUT:
        reg = regs[name]
        a, b = max(fld.offset, lo), min(fld.offset + len(reg), hi)
        if a < b:
            out.append(reg[a - fld.offset : b - fld.offset].eq(word[a - lo : b - lo]))
    return out


def _fits(shape, v: int) -> bool:
    lo = -(1 << (shape.width - 1)) if shape.signed else 0
    hi = (1 << (shape.width - 1 if shape.signed else shape.width)) - 1
    return lo <= v <= hi


def check_fields(name: str, fields: dict[str, int], layout: data.StructLayout) -> None:
    """Every value fits its field's width, else a ScheduleError naming the layer and field
    (a wrapped descriptor field would make the hardware compute a different layer)."""
    from hwgen.schedule.lower import ScheduleError

    for key, v in fields.items():
        shape = Shape.cast(layout[key].shape)
        if not _fits(shape, int(v)):
            raise ScheduleError(
                f"layer '{name}': descriptor field {key} = {v} does not fit its "
                f"{'signed' if shape.signed else 'unsigned'} {shape.width} bits"
            )


def pack_descriptor(lay: LayerPlan, rows: int) -> dict[str, int]:
    """The instruction word's fields (checked against their widths)."""
    fields = descriptor_fields(lay, rows)
    check_fields(lay.name, fields, DESC_LAYOUT)
    return fields


# The program header: the first word of every model transfer. It gives the controller the
# model's shape (input values, channels, logits, layers) and the loader the number of words of
# each following region, so one design runs any program that fits its memories.
HEADER_MAGIC = 0xA7
HEADER_LAYOUT = data.StructLayout(
    {
        "magic": unsigned(8),  # HEADER_MAGIC: a transfer that does not start with it is refused
        "n_layers": unsigned(8),  # descriptor words that follow
        "out_buf": unsigned(1),  # activation buffer holding the logits
        "in_c": unsigned(G),  # input channels
        "in_len": unsigned(A),  # input values (C*H*W) of the data transfer
        "out_len": unsigned(16),  # logits of the result transfer
        "convw_words": unsigned(20),
        "directw_words": unsigned(20),
        "param_words": unsigned(16),
    }
)
# header field giving the word count of each region after the header, in load order
HEADER_REGIONS = ("n_layers", "convw_words", "directw_words", "param_words")


def pack_header(prog: Program) -> dict[str, int]:
    """The header's fields (checked against their widths)."""
    fields = _header_fields(prog)
    check_fields("<header>", fields, HEADER_LAYOUT)
    return fields


def _header_fields(prog: Program) -> dict[str, int]:
    c, h, w = prog.in_shape
    return {
        "magic": HEADER_MAGIC,
        "n_layers": len(prog.layers),
        "out_buf": prog.out_buf,
        "in_c": c,
        "in_len": c * h * w,
        "out_len": prog.out_len,
        "convw_words": prog.convw_depth,
        "directw_words": prog.directw_depth,
        "param_words": prog.param_depth,
    }
