"""The schedule's output: the program the controller runs and the buffers it runs in.

Everything here is plain data (frozen dataclasses of ints) so that the hardware generator can
bake it into a ROM and the performance model can read it without running anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from hwgen.config import ArrayConfig

__all__ = ["MODE_CONV", "MODE_DIRECT", "POOL_MAX", "POOL_AVG", "ACT_ABS_MAX", "LayerPlan",
           "Program", "acc_bits_for"]

MODE_CONV = 0  # rows = output pixels, weights flow down the columns
MODE_DIRECT = 1  # linear at batch 1: every PE gets its own weight from the wide memory
POOL_MAX = 0
POOL_AVG = 1
ACT_ABS_MAX = 128  # |an int8 activation| <= 128: the quantizer's overflow proof uses the same


def acc_bits_for(bound: int) -> int:
    """Signed bits that hold every sum of magnitude <= ``bound`` (at least an int8 x int8
    product's 16: the PE's accumulator never is narrower than its product)."""
    return max(16, bound.bit_length() + 1)


@dataclass(frozen=True)
class LayerPlan:
    """One controller instruction: a Conv or Linear (with its requant, ReLU and fused pool).

    Hardware layout of every feature map: HWC, channels padded to ``cw`` words of C lanes,
    word address = (y*W + x)*cw + c//C, lane = c % C.
    """

    name: str
    covers: tuple[str, ...]  # golden layer names whose output this instruction produces
    mode: int
    src: int  # activation buffer read (0/1)
    dst: int  # activation buffer written
    # input map
    in_h: int
    in_w: int
    cin: int
    in_cw: int
    kh: int
    kw: int
    stride: int
    pad: int
    # output map of the MAC stage (before pooling)
    out_h: int
    out_w: int
    cout: int
    out_cw: int
    # tiling
    groups: int  # conv: channel groups of C; direct: tiles of R words (R*C channels)
    ptiles: int  # conv: ceil(P/R) pixel tiles; direct: 1
    k_len: int  # reduction length K = kh*kw*cin
    interval: int  # cycles between tile starts
    # incremental address generation (see rtl/feeder.py)
    dx: int  # R mod out_w: row 0's pixel step per tile
    dy: int  # R div out_w
    step1: int  # base address step for one pixel to the right (stride*in_cw)
    wrap_delta: int  # extra base step when a pixel row wraps
    row_jump: int  # extra offset step when the kernel's x loop wraps ((in_w-kw)*in_cw)
    # memories
    wbase: int  # first word in the conv or direct weight memory
    pbase: int  # first word in the requant parameter memory
    act_lo: int
    act_hi: int
    rows_limit: int  # writer: rows with index >= this are padding and are not written
    # fused pool (applied to the requantized conv output)
    pool_en: int = 0
    pool_k: int = 1
    pool_mode: int = POOL_MAX
    pool_shift: int = 0
    pool_out_h: int = 0
    pool_out_w: int = 0
    macs: int = 0  # MACs the array executes (outputs a fused pool discards are skipped)
    model_macs: int = 0  # MACs of the layer as the model defines it
    # placement (hwgen.schedule.alloc): where the input is read and the output written.
    # in_cw above is the source region's words per pixel; the K loop covers cin channel
    # slots from in_base and steps c_step words at each channel-loop end (1 when the input
    # fills its region's pixels; more when it is one part of a Concat/Add region).
    in_base: int = 0
    c_step: int = 1
    dst_base: int = 0  # the output's first word in the dst buffer
    dst_cw: int = 0  # words per output pixel in the dst region (0: out_cw, a plain tensor)
    # direct mode: K split P. Row i of a tile computes outputs (i // P)*C + j over part i % P
    # of the input units (step1 words apart); the write-back sums each block of P rows.
    ksplit: int = 1
    # overflow bound of the PE accumulator: ACT_ABS_MAX * max over output channels of
    # sum|w| (the bias is added in the 32-bit requant lane, not in the PE), so |sum a*w| of
    # any tile <= acc_bound and acc_bits_for(acc_bound) accumulator bits never wrap
    acc_bound: int = 0
    # 1: the next image may be written into the input region while this layer runs (the
    # input is kept live and no longer read, and this layer does not read buffer 0; see
    # hwgen.schedule.lower._preload and the controller in rtl/top.py)
    preload: int = 0
    # conv: the remainder tile (hwgen.schedule.lower._remainder). With rem_split = P > 0 the
    # last pixel tile of every group runs in direct mode with a K split: row i computes pixel
    # (ptiles-1)*R + i//P over kernel rows [(i%P)*h, (i%P+1)*h) (h = ceil(kh/P)) of its
    # window, with its own pre-skewed weights (group g's from word rem_wbase + g*rem_span
    # of the direct-weight memory); the feeders step rem_step1 words (h input rows) per row
    # and rem_wrap at a block's end (the next pixel); the write-back sums each block of P.
    # The pre-skewed words of a remainder tile span rem_k_len + R + C - 2 cycles
    # (rem_span words per group); when the next tile is a conv tile long enough, the
    # sequencer issues it after rem_k_len cycles and reads the remaining words beside it
    # (rem_interval = rem_k_len), else rem_interval = rem_span.
    rem_split: int = 0
    # the two-stream form (hwgen.schedule.lower._remainder_stream): rem_conv = 1, P = 2,
    # rows part-major (row i: pixel i % (R/2), part i // (R/2)), conv mode; part 1's
    # weights are conv words wbase + g*k_len + rem_k_len + k, the first rem_k1 of them real
    # (kernel rows past kh are zero); the write-back adds row i + R/2 to row i
    rem_conv: int = 0
    rem_k_len: int = 0
    rem_interval: int = 0
    rem_span: int = 0
    rem_wbase: int = 0
    rem_step1: int = 0
    rem_wrap: int = 0

    @property
    def rem_k1(self) -> int:
        """A two-stream remainder tile's part 1: its real elements (the rest are zero)."""
        return self.k_len - self.rem_k_len if self.rem_conv else 0

    @property
    def tiles(self) -> int:
        return self.groups * self.ptiles

    @property
    def issue_cycles(self) -> int:
        if self.rem_split:
            return self.groups * ((self.ptiles - 1) * self.interval + self.rem_interval)
        return self.tiles * self.interval

    def rows_out(self, rows: int) -> int:
        """Rows after the write-back's row reduction (what its counters see)."""
        if self.rem_split:
            return self.groups * ((self.ptiles - 1) * rows + rows // self.rem_split)
        return self.groups * self.ptiles * (rows // self.ksplit)

    @property
    def final_h(self) -> int:
        return self.pool_out_h if self.pool_en else self.out_h

    @property
    def final_w(self) -> int:
        return self.pool_out_w if self.pool_en else self.out_w

    @property
    def out_words(self) -> int:
        return self.final_h * self.final_w * self.out_cw

    @property
    def dst_stride(self) -> int:
        return self.dst_cw or self.out_cw

    @property
    def dst_end(self) -> int:
        """One past the last dst-buffer word this layer writes."""
        return self.dst_base + (self.final_h * self.final_w - 1) * self.dst_stride + self.out_cw


@dataclass(frozen=True, eq=False)
class Program:
    model: str
    array: ArrayConfig
    in_shape: tuple[int, int, int]  # (C, H, W)
    in_cw: int
    layers: tuple[LayerPlan, ...]
    buf_depth: tuple[int, int]  # words per activation buffer (stored buf_copies times)
    convw_depth: int  # words of C int8 lanes
    directw_depth: int  # words of R*C int8 lanes
    param_depth: int  # words of C (bias, mult, shift) lanes
    pool_max_out_w: int
    pool_max_k: int
    out_len: int  # number of int8 results streamed out
    out_buf: int
    # memory images (int64 arrays)
    convw: np.ndarray = field(repr=False)  # [convw_depth, C]
    directw: np.ndarray = field(repr=False)  # [directw_depth, R*C]
    bias: np.ndarray = field(repr=False)  # [param_depth, C]
    mult: np.ndarray = field(repr=False)  # [param_depth, C]
    shift: np.ndarray = field(repr=False)  # [param_depth, C]

    @property
    def acc_bits(self) -> int:
        """PE accumulator bits the program needs: its largest layer bound (acc_bits_for)."""
        return max(acc_bits_for(lay.acc_bound) for lay in self.layers)

    @property
    def macs(self) -> int:
        """The model's MACs (the issue's MAC bound is macs / PEs)."""
        return sum(lay.model_macs for lay in self.layers)

    @property
    def executed_macs(self) -> int:
        return sum(lay.macs for lay in self.layers)

    @property
    def ideal_cycles(self) -> float:
        return self.macs / self.array.pes

    @property
    def executed_ideal_cycles(self) -> float:
        return self.executed_macs / self.array.pes

    def layer_dicts(self) -> list[dict]:
        return [asdict(lay) for lay in self.layers]

    @property
    def buf_copies(self) -> int:
        """Physical copies of each activation buffer: one per two array rows (a dual-port
        block RAM serves two rows' reads; see hwgen/rtl/top.py)."""
        return (self.array.rows + 1) // 2

    def text(self) -> str:
        """Human-readable program listing (the controller's instruction list)."""
        a = self.array
        lines = [
            f"; hwgen program for {self.model} on a {a.rows}x{a.cols} array",
            f"; input {self.in_shape} -> buffer 0 ({self.in_cw} word(s)/pixel)",
            f"; buffers: {self.buf_depth[0]} and {self.buf_depth[1]} words x {a.cols} lanes,"
            f" each x{self.buf_copies} copies; conv weights {self.convw_depth} words x {a.cols};"
            f" direct weights {self.directw_depth} words x {a.rows * a.cols};"
            f" params {self.param_depth} words",
        ]
        for i, lay in enumerate(self.layers):
            mode = "CONV  " if lay.mode == MODE_CONV else "DIRECT"
            pool = ""
            if lay.pool_en:
                kind = "max" if lay.pool_mode == POOL_MAX else "avg"
                pool = f" +{kind}pool{lay.pool_k}->{lay.pool_out_h}x{lay.pool_out_w}"
            lines.append(
                f"{i:2d}: {mode} {lay.name:<10} buf{lay.src}->buf{lay.dst} "
                f"in {lay.in_h}x{lay.in_w}x{lay.cin} k{lay.kh}x{lay.kw} s{lay.stride} "
                f"p{lay.pad} out {lay.out_h}x{lay.out_w}x{lay.cout}{pool} | "
                f"{lay.groups}x{lay.ptiles} tiles K={lay.k_len}"
                f"{f' x{lay.ksplit} parts' if lay.ksplit > 1 else ''} every {lay.interval} cyc "
                f"{_rem(lay)}"
                f"= {lay.issue_cycles} cyc | w@{lay.wbase} p@{lay.pbase} "
                f"clamp[{lay.act_lo},{lay.act_hi}]{_placement(lay)}"
            )
        lines.append(f"OUT   {self.out_len} int8 from buf{self.out_buf}")
        return "\n".join(lines)


def _rem(lay: LayerPlan) -> str:
    """The remainder tile, if the layer has one (direct mode, K split)."""
    if not lay.rem_split:
        return ""
    if lay.rem_conv:
        return (f"(last tile two streams x{lay.rem_split} parts K={lay.rem_k_len} "
                f"{lay.rem_interval} cyc) ")
    return f"(last tile direct x{lay.rem_split} parts K={lay.rem_k_len} {lay.rem_interval} cyc) "


def _placement(lay: LayerPlan) -> str:
    """Region placement (hwgen.schedule.alloc), shown only where it is not plain ping-pong:
    read from word in_base with in_cw words per pixel (c_step at a pixel's channel end),
    write from dst_base with dst_stride words per pixel."""
    if (lay.in_base, lay.c_step, lay.dst_base, lay.dst_stride) == (0, 1, 0, lay.out_cw):
        return ""
    return (
        f" | rd @{lay.in_base}/{lay.in_cw}w step {lay.c_step}"
        f" wr @{lay.dst_base}/{lay.dst_stride}w"
    )
