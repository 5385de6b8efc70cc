"""BuildConfig: every setting of one build, frozen, validated on construction (before any work).

The pattern is FINN's DataflowBuildConfig: one object names the model source, the data, the
array and the steps to run; ``hwgen.flow.run(cfg)`` executes the steps in order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwgen.config import ArrayConfig, QuantConfig
from hwgen.errors import UsageError

__all__ = ["STEPS", "SIM_STEPS", "BUILD_STEPS", "BuildConfig"]

# Every step, in pipeline order. A build runs a subset, always in this order.
STEPS = ("import", "quantize", "schedule", "evaluate", "emit", "simulate", "build", "report")
# `hwgen sim`: the simulate step writes its own Verilog (into its case directory).
SIM_STEPS = ("import", "quantize", "schedule", "evaluate", "simulate", "report")
# `hwgen build`: the board build simulates the board's own design (hwgen.boards.build).
BUILD_STEPS = ("import", "quantize", "schedule", "build")


@dataclass(frozen=True)
class BuildConfig:
    """One build. ``model`` is a zoo name, ``path/file.py:ClassOrFactory`` or ``path/net.onnx``
    (or None with ``module`` set: an in-memory nn.Module, see hwgen.compile)."""

    model: str | None = "mnist_cnn"
    weights: Path | None = None  # state_dict .pt for a file model (or to override a zoo model)
    calib: Path | None = None  # .npz (images [+ labels]) / .npy (images)
    array: ArrayConfig = ArrayConfig()  # noqa: RUF009 - frozen
    workdir: Path | None = None  # every output goes under it (default: hwgen.paths.workdir())
    n: int = 20  # images to simulate
    seed: int = 1  # stimulus / backpressure seed
    gap: float = 0.1  # probability of an idle/backpressure cycle on each stream
    quant: QuantConfig = QuantConfig()  # noqa: RUF009 - frozen
    calib_method: str = "max"  # see hwgen.quant.calibrate; measured to meet the 0.3-point budget
    eval_n: int | None = None  # images for the evaluate step (None: the whole test set)
    out_dir: Path | None = None  # Verilog directory of the emit step (default rtl_out/<name>)
    build_dir: Path | None = None  # cache root (default <workdir>/build)
    lint: bool = False  # run verilator --lint-only in the emit step
    fit: tuple[str, ...] = ()  # zoo models the emitted design's memories must also fit
    # simulate step engine: "cocotb" (stream gaps, names the first diverging layer) or "fast"
    # (hwgen.sim.fast: compiled Verilator harness as Dask tasks, gap-free streams)
    engine: str = "cocotb"
    # Dask: local worker processes and a scheduler address instead of a LocalCluster, for the
    # fast engine's images and the build's placement seeds
    workers: int = 2
    scheduler: str | None = None
    steps: tuple[str, ...] = SIM_STEPS
    # build step (hwgen.boards): board, placement seeds, PLL clock (None: the board's), UART
    board: str = "ulx3s"
    seeds: int = 3
    first_seed: int = 1  # nextpnr --seed of the first placement (then +1 each)
    freq_mhz: float | None = None
    pnr_freq_mhz: float | None = None  # nextpnr's target when tighter than the PLL's (ECP5)
    baud: int = 115_200
    stall_minutes: float = 30.0  # a nextpnr seed's log unchanged this long: replaced (0: never)
    router: str = "router1"  # nextpnr's router (router1 or router2)
    resources_only: bool = False  # yosys + nextpnr's packer only (hwgen.boards.resources)
    # An in-memory source (hwgen.compile): not compared, not printed.
    module: Any = field(default=None, compare=False, repr=False)
    calib_data: Any = field(default=None, compare=False, repr=False)
    labels: Any = field(default=None, compare=False, repr=False)
    in_shape: tuple[int, ...] | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.array, str):
            try:
                object.__setattr__(self, "array", ArrayConfig.parse(self.array))
            except ValueError as e:
                raise UsageError(f"array: {e}") from None
        for f in ("weights", "calib", "workdir", "out_dir", "build_dir"):
            v = getattr(self, f)
            if v is not None and not isinstance(v, Path):
                object.__setattr__(self, f, Path(v))
        _int_at_least("-n", self.n, 1)
        if self.eval_n is not None:
            _int_at_least("-n", self.eval_n, 1)
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise UsageError(f"--seed {self.seed!r}: must be an integer")
        g = self.gap
        if not isinstance(g, (int, float)) or not math.isfinite(g) or not 0 <= g < 1:
            raise UsageError(
                f"--gap {g!r}: not a probability in [0, 1) (1 would stall every stream forever)"
            )
        if self.engine not in ("cocotb", "fast"):
            raise UsageError(f"--engine {self.engine!r}: must be cocotb or fast")
        _int_at_least("--workers", self.workers, 1)
        bad = [s for s in self.steps if s not in STEPS]
        if bad:
            raise UsageError(f"steps: unknown step(s) {bad}; the steps are {', '.join(STEPS)}")
        object.__setattr__(self, "steps", tuple(s for s in STEPS if s in self.steps))
        if self.model is None and self.module is None:
            raise UsageError("model: give a model source (zoo name, file.py:Class, net.onnx)")
        if "build" in self.steps:  # the board options: checked before any work
            from hwgen.boards.build import check_options

            check_options(self.board, self.seeds, self.freq_mhz, self.baud, self.stall_minutes,
                          self.router, self.pnr_freq_mhz, self.first_seed)


def _int_at_least(name: str, v: object, lo: int) -> None:
    if not isinstance(v, int) or isinstance(v, bool) or v < lo:
        raise UsageError(f"{name} {v!r}: must be an integer >= {lo}")
