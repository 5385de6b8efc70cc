"""Memory plan: the sizes one generated design is built with, and whether a Program fits them.

The program (header + one descriptor per layer) is loaded at run time with the weights, so a
design is defined by its array and its memory depths, not by a model. `MemoryPlan.of(prog)`
sizes a design for one program, `MemoryPlan.fit(progs)` for several (element-wise maximum),
and `plan.check(prog)` raises `FitError` naming the layer, the memory and both sizes before
anything is transferred.

The PE accumulators are sized the same way: a program's layers carry their overflow bound
(``LayerPlan.acc_bound`` = 128·max Σ|w|), `MemoryPlan.of` builds the narrowest accumulator
that holds the largest (``Program.acc_bits``), and `check` refuses a program with a layer
whose bound needs more bits than the design has (never a silent wrap).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hwgen.config import ArrayConfig

from .fields import DESC_CLASSES, class_bits, class_needs
from .lower import ScheduleError, lower
from .program import MODE_CONV, LayerPlan, Program, acc_bits_for

__all__ = ["FitError", "MemoryPlan", "banked_blocks", "dp16kd_blocks", "layer_extents",
           "lower_fit"]

# ECP5 DP16KD aspect ratios (depth, width): true dual port up to 18 bits wide, 512x36 for a
# memory with one read port
_TDP = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18))
_SDP = (*_TDP, (512, 36))
# yosys's memory_libmap puts shallow, small memories in LUT RAM (TRELLIS_DPR16X4). Seen in the
# builds: the requant parameters at 22 words x 288 bits went to LUT RAM; at 43 x 288 (8x4),
# 22 x 576 (8x8: 16 DP16KD) and 11 x 1152 (8x16: 32 DP16KD) to block RAM.
LUTRAM_MAX_DEPTH = 32
LUTRAM_MAX_BITS = 8192
PARAM_LANE_BITS = 72  # a requant lane's bias, multiplier and shift (hwgen.rtl.writeback)
WEIGHT_BANK_DEPTH = 1024  # the weight memories' explicit banks (hwgen.rtl.bankmem.BANK_DEPTH)


def dp16kd_blocks(depth: int, width: int, one_read_port: bool = False) -> int:
    """Fewest DP16KD holding a depth×width memory (cascade in depth, side by side in width),
    0 for a memory yosys puts in LUT RAM."""
    if depth <= LUTRAM_MAX_DEPTH and depth * width <= LUTRAM_MAX_BITS:
        return 0
    shapes = _SDP if one_read_port else _TDP
    return min(-(-depth // d) * -(-width // w) for d, w in shapes)


def banked_blocks(depth: int, width: int, one_read_port: bool = True) -> int:
    """DP16KD of a weight memory built as explicit banks of WEIGHT_BANK_DEPTH words (each
    full bank 1024x18 blocks side by side; the last, partial one as yosys maps a memory of
    its depth: at 12x8 the remainder tiles' 2,054 direct words are two banks of 43 blocks and
    6 words of LUT RAM, where one 2,054-deep memory would take 110). With a second read
    port (two-stream remainder tiles, yosys's true dual-port mapping, 18 bits a port) the
    last bank cannot use the 512x36 shape."""
    full, rest = divmod(depth, WEIGHT_BANK_DEPTH)
    return full * -(-width // 18) + (dp16kd_blocks(rest, width, one_read_port) if rest else 0)


class FitError(ScheduleError):
    """A program needs more than the design's memories hold (one line: layer, memory, sizes)."""


@dataclass(frozen=True)
class MemoryPlan:
    """Capacity of one Accelerator build (depths in words; widths follow from the array)."""

    array: ArrayConfig
    buf_depth: tuple[int, int]  # activation buffers 0 and 1, words of C lanes (x ceil(R/2) copies)
    convw_depth: int  # words of C int8 lanes
    directw_depth: int  # words of R*C int8 lanes
    param_depth: int  # words of C requant-parameter lanes
    max_layers: int  # descriptor memory depth (= layers of the program)
    pool_max_k: int = 2
    pool_max_out_w: int = 1  # the fused pool's line buffer length
    acc_width: int = 32  # PE accumulator bits (the requant lanes stay array.acc_width = 32)
    # the descriptor register's magnitude bits per field class (hwgen.schedule.fields,
    # DESC_CLASSES order); None: the layout's full widths
    desc_bits: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        a = self.array
        if not a.a_width + a.w_width <= self.acc_width <= a.acc_width:
            raise ValueError(
                f"MemoryPlan.acc_width must be in {a.a_width + a.w_width}..{a.acc_width}, "
                f"not {self.acc_width}"
            )
        for name in ("convw_depth", "directw_depth", "param_depth", "max_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"MemoryPlan.{name} must be >= 1, not {getattr(self, name)}")
        if min(self.buf_depth) < 1:
            raise ValueError(f"MemoryPlan.buf_depth must be >= 1, not {self.buf_depth}")
        if self.desc_bits is not None and (len(self.desc_bits) != len(DESC_CLASSES)
                                           or min(self.desc_bits) < 1):
            raise ValueError(f"MemoryPlan.desc_bits must be {len(DESC_CLASSES)} widths >= 1 "
                             f"({', '.join(DESC_CLASSES)}), not {self.desc_bits}")

    @classmethod
    def of(cls, prog: Program) -> MemoryPlan:
        """The smallest plan that runs `prog` (what a single-model build gets)."""
        return cls(
            array=prog.array,
            buf_depth=prog.buf_depth,
            convw_depth=prog.convw_depth,
            directw_depth=prog.directw_depth,
            param_depth=prog.param_depth,
            max_layers=len(prog.layers),
            pool_max_k=prog.pool_max_k,
            pool_max_out_w=prog.pool_max_out_w,
            acc_width=prog.acc_bits,
            desc_bits=class_bits([prog]),
        )

    @classmethod
    def fit(cls, progs: Iterable[Program]) -> MemoryPlan:
        """The smallest plan that runs every program in `progs` (all on the same array)."""
        plans = [cls.of(p) for p in progs]
        if not plans:
            raise ValueError("MemoryPlan.fit needs at least one program")
        arrays = {p.array for p in plans}
        if len(arrays) != 1:
            arrs = sorted(map(str, arrays))
            raise ValueError(f"MemoryPlan.fit: programs for different arrays {arrs}")
        return cls(
            array=plans[0].array,
            buf_depth=(max(p.buf_depth[0] for p in plans), max(p.buf_depth[1] for p in plans)),
            convw_depth=max(p.convw_depth for p in plans),
            directw_depth=max(p.directw_depth for p in plans),
            param_depth=max(p.param_depth for p in plans),
            max_layers=max(p.max_layers for p in plans),
            pool_max_k=max(p.pool_max_k for p in plans),
            pool_max_out_w=max(p.pool_max_out_w for p in plans),
            acc_width=max(p.acc_width for p in plans),
            desc_bits=_widest([p.desc_bits for p in plans]),
        )

    def block_ram(self, budget: int | None = None) -> dict[str, int]:
        """DP16KD per memory: activation buffers x2 x ceil(R/2) copies (each copy serves two
        rows through its two ports), conv and direct weights, requant parameters. The
        parameters (a few words, C lanes of 72 bits wide) go to LUT RAM when the rest would
        not leave them room in a device of ``budget`` blocks (`params_in_lutram`)."""
        a = self.array
        copies = (a.rows + 1) // 2
        out = {"activations": sum(copies * dp16kd_blocks(d, 8 * a.cols) for d in self.buf_depth),
               "conv_weights": banked_blocks(self.convw_depth, 8 * a.cols,
                                             not (a.remainder_tiles and a.remainder_stream
                                                  and a.rows % 2 == 0)),
               "direct_weights": banked_blocks(self.directw_depth, 8 * a.pes),
               "params": dp16kd_blocks(self.param_depth, PARAM_LANE_BITS * a.cols, True)}
        if budget is not None and sum(out.values()) > budget:
            out["params"] = 0
        return out

    def params_in_lutram(self, budget: int | None) -> bool:
        """Whether the parameter memory goes to LUT RAM: only past the device's block RAM
        (its read address then fans out to every LUT-RAM cell of the C lanes, a longer net
        than a block's; `budget` None: a simulation, no device)."""
        return (self.block_ram(budget)["params"] == 0
                and self.block_ram()["params"] > 0)

    def text(self) -> str:
        a = self.array
        return (
            f"{a} array; activation buffers {self.buf_depth[0]}/{self.buf_depth[1]} words x "
            f"{a.cols} lanes (x{(a.rows + 1) // 2} copies); "
            f"conv weights {self.convw_depth} words; direct "
            f"weights {self.directw_depth} words; params {self.param_depth} words; "
            f"{self.max_layers} layers; pool k<={self.pool_max_k}, pooled width<="
            f"{self.pool_max_out_w}; PE accumulators {self.acc_width} bits; descriptor "
            + ("full widths" if self.desc_bits is None else ", ".join(
                f"{c} {b}" for c, b in zip(DESC_CLASSES, self.desc_bits, strict=True)) + " bits")
        )

    def check(self, prog: Program) -> Program:
        """Raise FitError for the first thing of `prog` that does not fit; return `prog`."""
        what = f"model '{prog.model}'"
        if prog.array != self.array:
            raise FitError(
                f"{what} is scheduled for a {prog.array} array, the design is {self.array}"
            )
        if len(prog.layers) > self.max_layers:
            raise FitError(
                f"{what}: {len(prog.layers)} layers > descriptor memory of {self.max_layers}"
            )
        in_words = prog.in_shape[1] * prog.in_shape[2] * prog.in_cw
        _need(what, "input", "activation buffer 0", in_words, self.buf_depth[0])
        for lay in prog.layers:
            ext = layer_extents(lay)
            at = f"{what}: layer '{lay.name}'"
            buf = f"activation buffer {lay.dst}"
            _need(at, "output", buf, lay.dst_end, self.buf_depth[lay.dst])
            wmem, wdepth = (
                ("conv weight memory", self.convw_depth)
                if lay.mode == MODE_CONV
                else ("direct weight memory", self.directw_depth)
            )
            _need(at, "weights", wmem, lay.wbase + ext["weights"], wdepth)
            if lay.rem_split:  # a conv's remainder tiles: pre-skewed direct words
                _need(at, "remainder-tile weights", "direct weight memory",
                      lay.rem_wbase + lay.groups * lay.rem_span, self.directw_depth)
            _need(at, "parameters", "parameter memory", lay.pbase + ext["params"], self.param_depth)
            if acc_bits_for(lay.acc_bound) > self.acc_width:
                raise FitError(
                    f"{at}: accumulator bound 128*sum|w| = {lay.acc_bound} needs "
                    f"{acc_bits_for(lay.acc_bound)} bits, the design's PE accumulators have "
                    f"{self.acc_width}"
                )
            if lay.pool_en and lay.pool_k > self.pool_max_k:
                raise FitError(f"{at}: pool kernel {lay.pool_k} > the design's {self.pool_max_k}")
            if lay.pool_en and lay.pool_out_w > self.pool_max_out_w:
                raise FitError(
                    f"{at}: pooled width {lay.pool_out_w} > the pool line buffer of "
                    f"{self.pool_max_out_w}"
                )
            self._check_fields(at, lay)
        return prog

    def _check_fields(self, at: str, lay: LayerPlan) -> None:
        """Every classed descriptor field within the design's bits for its class."""
        if self.desc_bits is None:
            return
        needs = class_needs(lay, self.array.rows)
        for (cls, (need, f, v)), bits in zip(needs.items(), self.desc_bits, strict=True):
            if need > bits:
                raise FitError(f"{at}: descriptor field {f} = {v} needs {need} bits, the "
                               f"design keeps {bits} for {cls} fields")


def _widest(bits: list[tuple[int, ...] | None]) -> tuple[int, ...] | None:
    """The element-wise maximum of class widths (None, the full widths, if any is None)."""
    if any(b is None for b in bits):
        return None
    return tuple(max(col) for col in zip(*bits, strict=True))


def _need(at: str, what: str, mem: str, need: int, have: int) -> None:
    if need > have:
        raise FitError(f"{at}: {what} need {need} words of the {mem}, the design has {have}")


def layer_extents(lay: LayerPlan) -> dict[str, int]:
    """Words of the weight and parameter memories one layer occupies from its base."""
    weights = lay.groups * (lay.k_len if lay.mode == MODE_CONV else lay.interval)
    return {"weights": weights, "params": lay.out_cw}


def lower_fit(qm, plan: MemoryPlan) -> Program:
    """Lower `qm` onto `plan.array` and check it against the plan (FitError if it does not fit)."""
    return plan.check(lower(qm, plan.array))
