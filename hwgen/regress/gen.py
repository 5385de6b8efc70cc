"""Random CNNs for the RTL regression: a seeded spec -> torch module -> QModel on a random array.

A ``NetSpec`` is the whole case (network structure, array shape, seeds of the weights, the
calibration and test images), so a case replays exactly from its seed and the shrinker can
edit it structurally. Every spec the generator returns has been lowered onto its array
(``hwgen.schedule.lower``), fits a simulation-cycle budget and fits the memory plan of its
array (``plan_for``).

Arrays come from a fixed menu of shapes (``SHAPES``, 1x1 to 16x16, square and not), each with
one generous ``MemoryPlan``: the design loads its program at run time, so every case on a
shape runs on the same Verilog, and a run builds one Verilator model per shape instead of one
per case. The shape of a case is drawn from its own seeded stream (``case_shape``), so a run
knows which designs it needs before any network is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hwgen.config import ArrayConfig
from hwgen.schedule.capacity import MemoryPlan

__all__ = ["ConvSpec", "LinearSpec", "NetSpec", "random_spec", "build_module", "quantized",
           "images", "check", "case_shape", "plan_for", "shapes_upto", "MAX_SIDE", "SHAPES",
           "CYCLE_BUDGET"]

MAX_SIDE = 16  # no array side above MAX_SIDE
# The array shapes a case is drawn on (rows, cols): both sides from 1 to 16, square and
# non-square, powers of two and not. One Verilator build per shape serves all its cases.
SHAPES = ((1, 1), (2, 3), (3, 3), (4, 4), (1, 16), (16, 2), (5, 7), (8, 8), (6, 12), (11, 5),
          (16, 16))
CYCLE_BUDGET = 40_000  # issue cycles per image: keeps a case's simulation to seconds
POOLS = (("max", 2), ("max", 3), ("avg", 2), ("avg", 4))  # fusable forms: stride = kernel,
# kernel <= 4, average windows a power of two


@dataclass(frozen=True)
class ConvSpec:
    cout: int
    k: int
    stride: int
    pad: int
    relu: bool
    bn: bool = False  # a BatchNorm2d after the conv (folded by the front end)
    pool: str | None = None  # "max" | "avg", fused into the conv's write-back
    pool_k: int = 0


@dataclass(frozen=True)
class LinearSpec:
    n: int
    relu: bool


@dataclass(frozen=True)
class NetSpec:
    seed: int
    in_ch: int
    h: int
    w: int
    convs: tuple[ConvSpec, ...]
    linears: tuple[LinearSpec, ...]
    rows: int
    cols: int
    n_calib: int = 16

    @property
    def array(self) -> ArrayConfig:
        return ArrayConfig(self.rows, self.cols)

    @property
    def name(self) -> str:
        return f"regress{self.seed}"

    def describe(self) -> str:
        """One line: input, layers, array (what a failure report prints)."""
        parts = [f"in {self.in_ch}x{self.h}x{self.w}"]
        for c in self.convs:
            s = f"conv{c.k}x{c.k}/s{c.stride}/p{c.pad}->{c.cout}"
            s += "+bn" if c.bn else ""
            s += "+relu" if c.relu else ""
            s += f"+{c.pool}pool{c.pool_k}" if c.pool else ""
            parts.append(s)
        parts += [f"fc->{lin.n}" + ("+relu" if lin.relu else "") for lin in self.linears]
        return " | ".join(parts) + f" @ {self.rows}x{self.cols}"

    def shapes(self) -> list[tuple[int, int, int]]:
        """(C, H, W) after each conv block (pool included); raises ValueError if one vanishes."""
        c, h, w = self.in_ch, self.h, self.w
        out = []
        for i, cv in enumerate(self.convs):
            h = (h + 2 * cv.pad - cv.k) // cv.stride + 1
            w = (w + 2 * cv.pad - cv.k) // cv.stride + 1
            if cv.pool:
                h, w = h // cv.pool_k, w // cv.pool_k
            if h < 1 or w < 1:
                raise ValueError(f"conv block {i} of {self.describe()} leaves no output pixel")
            c = cv.cout
            out.append((c, h, w))
        return out


def _conv(rng: np.random.Generator, h: int, w: int) -> ConvSpec | None:
    k = int(rng.integers(1, 6))
    stride = int(rng.integers(1, 3))
    pad = int(rng.integers(0, (k + 1) // 2 + 1)) if k > 1 else int(rng.integers(0, 2))
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    if oh < 1 or ow < 1:
        return None
    pool, pk = (None, 0)
    if rng.random() < 0.5:
        pool, pk = POOLS[int(rng.integers(len(POOLS)))]
        if min(oh, ow) < pk:
            pool, pk = None, 0
    return ConvSpec(
        cout=int(rng.integers(1, 21)), k=k, stride=stride, pad=pad,
        relu=bool(rng.random() < 0.7), bn=bool(rng.random() < 0.2), pool=pool, pool_k=pk,
    )


def shapes_upto(max_side: int) -> tuple[tuple[int, int], ...]:
    """The menu shapes with both sides <= ``max_side`` (never empty: 1x1 is on it)."""
    return tuple(s for s in SHAPES if max(s) <= max_side)


def case_shape(seed: int, max_side: int = MAX_SIDE) -> tuple[int, int]:
    """The array (rows, cols) of case ``seed``: uniform over the menu, its own seeded stream."""
    menu = shapes_upto(max_side)
    return menu[int(np.random.default_rng([seed, 0x5A4E, max_side]).integers(len(menu)))]


def _words(elements: int, lanes: int, floor: int) -> int:
    """Memory words of ``lanes`` lanes for ``elements`` values, a power of two >= ``floor``."""
    return max(floor, 1 << max(0, (-(-elements // lanes) - 1).bit_length()))


def plan_for(array: ArrayConfig) -> MemoryPlan:
    """The generous memory plan of a regression design: ~99 % of the networks the generator
    draws for ``array`` fit it (measured over 150 draws per shape); the rest are redrawn."""
    C, RC = array.cols, array.rows * array.cols
    return MemoryPlan(
        array=array,
        buf_depth=(_words(16384, C, 2048),) * 2,
        convw_depth=_words(16384, C, 2048),
        directw_depth=16384 if RC <= 16 else 8192,  # a linear layer's words hardly shrink
        param_depth=_words(128, C, 16),
        max_layers=8,
        pool_max_k=4,
        pool_max_out_w=32,
    )


def _draw(rng: np.random.Generator, seed: int, shape: tuple[int, int]) -> NetSpec:
    in_ch, h, w = int(rng.integers(1, 4)), int(rng.integers(8, 33)), int(rng.integers(8, 33))
    if rng.random() < 0.5:
        w = h
    convs: list[ConvSpec] = []
    ch, cw = h, w
    for _ in range(int(rng.integers(1, 4))):
        cv = _conv(rng, ch, cw)
        if cv is None:
            break
        convs.append(cv)
        ch = (ch + 2 * cv.pad - cv.k) // cv.stride + 1
        cw = (cw + 2 * cv.pad - cv.k) // cv.stride + 1
        if cv.pool:
            ch, cw = ch // cv.pool_k, cw // cv.pool_k
    linears = tuple(
        LinearSpec(int(rng.integers(1, 33)), bool(rng.random() < 0.5))
        for _ in range(int(rng.integers(1, 3)))
    )
    linears = linears[:-1] + (replace(linears[-1], relu=bool(rng.random() < 0.2)),)
    return NetSpec(seed, in_ch, h, w, tuple(convs), linears, *shape)


def check(spec: NetSpec) -> int:
    """Lower the spec's network (random weights) onto its array and check it against the
    array's plan; return issue cycles per image.

    Raises ValueError (or a ScheduleError / FitError / QuantizationError) when it cannot run.
    """
    from hwgen.schedule.lower import lower

    spec.shapes()
    prog = plan_for(spec.array).check(lower(quantized(spec), spec.array))
    return sum(lay.issue_cycles for lay in prog.layers)


def random_spec(seed: int, budget: int = CYCLE_BUDGET, max_side: int = MAX_SIDE) -> NetSpec:
    """The case for ``seed``: on the array ``case_shape(seed, max_side)``, the network is
    redrawn (from the same seeded stream) until it lowers and fits the budget and the plan.

    ``max_side`` caps the array sides (the smoke test uses small, quick-to-build arrays).
    """
    rng = np.random.default_rng([seed, 0x5EED, max_side])
    shape = case_shape(seed, max_side)
    for _ in range(200):
        spec = _draw(rng, seed, shape)
        try:
            if check(spec) <= budget:
                return spec
        except ValueError:
            continue
    raise RuntimeError(f"seed {seed}: no schedulable network within 200 draws")


def build_module(spec: NetSpec):
    """The float torch module of ``spec`` (weights from the seed, BN statistics random)."""
    import torch
    from torch import nn

    torch.manual_seed(spec.seed)
    layers: list[nn.Module] = []
    cin = spec.in_ch
    for cv in spec.convs:
        layers.append(nn.Conv2d(cin, cv.cout, cv.k, stride=cv.stride, padding=cv.pad,
                                bias=not cv.bn))
        if cv.bn:
            bn = nn.BatchNorm2d(cv.cout)
            with torch.no_grad():
                bn.running_mean.uniform_(-0.2, 0.2)
                bn.running_var.uniform_(0.5, 2.0)
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.uniform_(-0.2, 0.2)
            layers.append(bn)
        if cv.relu:
            layers.append(nn.ReLU())
        if cv.pool == "max":
            layers.append(nn.MaxPool2d(cv.pool_k))
        elif cv.pool == "avg":
            layers.append(nn.AvgPool2d(cv.pool_k))
        cin = cv.cout
    shapes = spec.shapes()
    c, h, w = shapes[-1] if shapes else (spec.in_ch, spec.h, spec.w)
    layers.append(nn.Flatten())
    k = c * h * w
    for lin in spec.linears:
        layers.append(nn.Linear(k, lin.n))
        if lin.relu:
            layers.append(nn.ReLU())
        k = lin.n
    return nn.Sequential(*layers).eval()


def images(spec: NetSpec, n: int, salt: int) -> np.ndarray:
    """``n`` random uint8 images [n, C, H, W] for ``spec`` (salt 0: calibration, 1: test)."""
    rng = np.random.default_rng([spec.seed, salt])
    # Smooth-ish images: a random low-resolution field upsampled, plus noise, so that pools and
    # strides see structure rather than only white noise.
    lo = rng.integers(0, 256, (n, spec.in_ch, (spec.h + 3) // 4, (spec.w + 3) // 4))
    up = lo.repeat(4, axis=2).repeat(4, axis=3)[:, :, : spec.h, : spec.w]
    noise = rng.integers(-40, 41, up.shape)
    return np.clip(up + noise, 0, 255).astype(np.uint8)


def quantized(spec: NetSpec):
    """Front end + quantizer on random calibration images: the QModel the RTL must match."""
    from hwgen.frontend import import_model
    from hwgen.quant.quantize import quantize

    graph = import_model(build_module(spec), (spec.in_ch, spec.h, spec.w), spec.name)
    calib = images(spec, spec.n_calib, 0).astype(np.float32) / np.float32(255.0)
    return quantize(graph, calib)
