"""Random CNNs for the RTL regression: a seeded spec -> torch module -> QModel on a random array.

A ``NetSpec`` is the whole case (network structure, array shape, seeds of the weights, the
calibration and test images), so a case replays exactly from its seed and the shrinker can
edit it structurally. Every spec the generator returns has been lowered onto its array
(``hwgen.schedule.lower``) and fits a simulation-cycle budget.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hwgen.config import ArrayConfig

__all__ = ["ConvSpec", "LinearSpec", "NetSpec", "random_spec", "build_module", "quantized",
           "images", "check", "MAX_SIDE", "CYCLE_BUDGET"]

MAX_SIDE = 16  # array sides are drawn from 1..MAX_SIDE
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


def _side(rng: np.random.Generator, max_side: int) -> int:
    # Most cases on small arrays (cheap to build); every side 1..max_side stays possible.
    small, any_ = rng.integers(1, min(8, max_side) + 1), rng.integers(1, max_side + 1)
    return int(small if rng.random() < 0.75 else any_)


def _draw(rng: np.random.Generator, seed: int, max_side: int) -> NetSpec:
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
    rows, cols = _side(rng, max_side), _side(rng, max_side)
    return NetSpec(seed, in_ch, h, w, tuple(convs), linears, rows, cols)


def check(spec: NetSpec) -> int:
    """Lower the spec's network (random weights) onto its array; return issue cycles per image.

    Raises ValueError (or a ScheduleError / QuantizationError) when the spec cannot run.
    """
    from hwgen.schedule.lower import lower

    spec.shapes()
    prog = lower(quantized(spec), spec.array)
    return sum(lay.issue_cycles for lay in prog.layers)


def random_spec(seed: int, budget: int = CYCLE_BUDGET, max_side: int = MAX_SIDE) -> NetSpec:
    """The case for ``seed``: redraws (from the same seeded stream) until it lowers and fits.

    ``max_side`` caps the array sides (the smoke test uses small, quick-to-build arrays).
    """
    rng = np.random.default_rng([seed, 0x5EED, max_side])
    for _ in range(200):
        spec = _draw(rng, seed, max_side)
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
