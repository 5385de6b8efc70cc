"""The Python API: ``hwgen.compile(module, calib=images, array="8x8") -> Design``.

design = hwgen.compile(net, calib=images, array="8x8")   # import, quantize, schedule
design.golden(x)           # int8 logits of the bit-exact golden model
design.simulate(x)         # the same logits from the generated RTL (Verilator)
design.write_verilog(dir)  # accel.v, manifest.json, program.txt
design.report()            # the model, the program and the last RTL run as text
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from hwgen.config import ArrayConfig, QuantConfig
from hwgen.errors import HwgenError

from .config import BuildConfig
from .data import check_images
from .steps import BuildState, run

__all__ = ["Design", "compile"]


class Design:
    """A compiled accelerator: the quantized model, its program and the steps that made it."""

    def __init__(self, state: BuildState) -> None:
        self.state = state

    @property
    def name(self) -> str:
        return self.state.name

    @property
    def qmodel(self) -> Any:
        return self.state.qmodel

    @property
    def program(self) -> Any:
        return self.state.program

    @property
    def graph(self) -> Any:
        return self.state.graph

    @property
    def array(self) -> ArrayConfig:
        return self.state.cfg.array

    def golden(self, x: Any) -> np.ndarray:
        """int8 logits (N, classes) of the integer golden model for images ``x`` (uint8
        pixels or float model inputs, (N,H,W) or (N,C,H,W))."""
        from hwgen.golden.run import predict

        return predict(self.qmodel, check_images(x, None, "x").images)

    def simulate(self, x: Any, *, gap: float = 0.0, seed: int = 1) -> np.ndarray:
        """Run ``x`` through the generated RTL in Verilator; returns the RTL's int8 logits
        (N, classes). Raises if any logit differs from :meth:`golden` (bit-exact check)."""
        from hwgen.perf.model import summarize
        from hwgen.sim.network import prepare, simulate

        images = check_images(x, None, "x").images
        replace(self.state.cfg, gap=gap, seed=seed)  # validates gap and seed
        case = prepare(
            self.qmodel, self.array, images, gap=gap, tag=f"_api{'' if gap else '_nogap'}"
        )
        res, out, _ = simulate(case, seed=seed)
        imgs = out.get("images", [])
        if len(imgs) != len(images):
            raise RuntimeError(
                f"RTL simulation failed: {len(imgs)}/{len(images)} images ran ({res.results_xml})"
            )
        self.state.case = case
        self.state.summary = summarize(case.prog, imgs, None, out)
        bad = [r["index"] for r in imgs if not r["match"]]
        if bad:
            raise RuntimeError(f"RTL differs from the golden model on image(s) {bad}")
        return np.asarray([r["logits"] for r in imgs], dtype=np.int64)

    def write_verilog(self, out_dir: str | Path) -> Path:
        """Write accel.v, manifest.json and program.txt into ``out_dir``; returns it."""
        from hwgen.emit.verilog import write_rtl

        return write_rtl(self.program, Path(out_dir))

    def report(self) -> str:
        parts = [self.qmodel.summary(), self.program.text()]
        if self.state.summary is not None:
            parts.append(self.state.summary["text"])
        return "\n\n".join(parts)


def compile(  # noqa: A001 - the public name the API promises
    module: Any,
    calib: Any,
    array: str | ArrayConfig = "8x8",
    *,
    labels: Any = None,
    name: str | None = None,
    in_shape: tuple[int, ...] | None = None,
    quant: QuantConfig | None = None,
    workdir: str | Path | None = None,
) -> Design:
    """Import, quantize (calibrating on ``calib``) and schedule a torch ``nn.Module``.

    ``calib``: images the model takes, (N,H,W) or (N,C,H,W): uint8 pixels (the model sees
    p/255; input scale 1/127) or float model inputs (the input scale is derived from them).
    """
    if calib is None:
        raise HwgenError("calib: hwgen.compile needs calibration images")
    cfg = BuildConfig(
        model=None,
        module=module,
        calib_data=calib,
        labels=labels,
        name=name,
        in_shape=tuple(in_shape) if in_shape else None,
        array=array,  # type: ignore[arg-type] - parsed by BuildConfig
        quant=quant or QuantConfig(),
        workdir=Path(workdir) if workdir else None,
        steps=("import", "quantize", "schedule"),
    )
    return Design(run(cfg))
