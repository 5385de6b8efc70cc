"""A resources-only board build: yosys and nextpnr's packer, no placement, no routing.

nextpnr's ``--pack-only`` report counts the same LUT4 / FF / MULT18X18D / DP16KD as a routed
build's (every figure equal on the 4x4 and on tiny_cnn 2x2, sim/test_board.py), in seconds
after synthesis instead of an hour or more of place and route. The estimator
(hwgen.sweep.estimate) takes these reports as resource points of today's design; Fmax needs a
routed build and is left out.
"""

from __future__ import annotations

import json
from pathlib import Path

from .build import report_common, resources_lines, write_json

__all__ = ["PACK_STEP", "pack_only", "resources_report", "write_report"]

PACK_STEP = "pack only (nextpnr --pack-only: resources, no placement)"


def pack_only(ctx: dict, platform, steps) -> dict:
    """nextpnr's packer on the synthesized netlist of ``ctx`` (hwgen.boards.build); the
    report dict, also written to reports/board_<name>_resources.md/.json."""
    out: Path = ctx["out"]
    cmd = [*platform.nextpnr_command(), "--pack-only", "--report", "report_pack.json"]
    steps.run(PACK_STEP, cmd, "nextpnr_pack.log")
    util = json.loads((out / "report_pack.json").read_text())["utilization"]
    rep = resources_report(ctx, util, steps)
    paths = write_report(rep, ctx["job"].report_name)
    rep.update(report_md=str(paths["md"]), report_json=str(paths["json"]))
    return rep


def resources_report(ctx: dict, util: dict, steps) -> dict:
    """The build report's common part (hwgen.boards.build.report_common), marked
    resources-only: no seeds, no Fmax, no cycles, no bitstream."""
    rep = {**report_common(ctx, util, steps), "resources_only": True,
           "resources_source": "nextpnr --pack-only (after packing, before placement)"}
    # (placement would fail on these: the packed count is what the device must hold)
    rep["over"] = [f"{k} {v['used']:,}/{v['available']:,}" for k, v in rep["resources"].items()
                   if v["available"] is not None and v["used"] > v["available"]]
    return rep


def write_report(rep: dict, name: str) -> dict[str, Path]:
    jpath, mpath = write_json(rep, name)
    lines = [
        f"# Board resources: {rep['model']} on a {rep['array']} array, {rep['device']}",
        "",
        f"Command: `{rep['command']}`  ",
        f"Resources: {rep['resources_source']}; no placement, so no Fmax and no bitstream "
        "(`hwgen build` without `--resources-only` routes and measures them).",
        "",
        *([f"**Does not fit the device: {', '.join(rep['over'])}.**", ""] if rep["over"] else []),
        *resources_lines(rep),
        "Step times (s, wall): " + ", ".join(f"{k} {v:g}" for k, v in rep["step_seconds"].items()),
        "",
    ]
    mpath.write_text("\n".join(lines))
    return {"json": jpath, "md": mpath}
