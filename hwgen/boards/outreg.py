"""ECP5 netlist pass: move the flip-flops right after a block RAM's read data into the block's
own output register (DP16KD ``REGMODE_x = "OUTREG"``).

yosys maps every block RAM with its output register off (``NOREG``): its clock-to-out is then
5.8 ns on the -6 part (nextpnr's timing model), so a block RAM feeding a flip-flop alone
leaves under 1 ns of a 150 MHz cycle for routing. With the output register on, the same data
leaves the block one cycle later, which is exactly what the flip-flop after it did. The pass
runs on yosys's JSON netlist between synthesis and nextpnr, and only where that is the whole
story for a port x of a DP16KD in a mode of at most 18 bits:

* ``REGMODE_x`` is ``NOREG``, ``RSTx`` is constant 0 (no read reset), ``CLKxMUX`` is ``CLKx``;
* every used ``DOx`` bit drives exactly one pin, the ``DI`` of a TRELLIS_FF clocked by the same
  net as ``CLKx`` (not inverted), with no set/reset (``LSR`` constant 0) and all of those
  flip-flops share one clock enable (which becomes ``OCEx``, or 1).

Then the flip-flops go and ``DOx`` drives their outputs' nets. Same value, same cycle: the
DP16KD's output register is a D flip-flop on the read data, clocked by ``CLKx``, enabled by
``OCEx``, reset by ``RSTx`` (Lattice TN1264, sysMEM). The 36-bit pseudo-dual-port mode is
left alone (its read data leaves on both ports' pins).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

__all__ = ["absorb_in_file", "absorb_output_registers"]


def _width(param: str) -> int:
    return int(param.strip(), 2) if set(param.strip()) <= {"0", "1"} else int(param)


def _sinks(cells: dict) -> dict:
    """net bit -> [(cell name, port)] of every input pin."""
    sinks: dict = defaultdict(list)
    for name, c in cells.items():
        for port, bits in c["connections"].items():
            if c.get("port_directions", {}).get(port) != "output":
                for b in bits:
                    if isinstance(b, int):
                        sinks[b].append((name, port))
    return sinks


def _port_ffs(cells: dict, sinks: dict, ram: dict, x: str) -> list[tuple[str, str]] | None:
    """[(DO pin, flip-flop)] if port x of ``ram`` qualifies (see the module docstring)."""
    p, conn = ram["parameters"], ram["connections"]
    if p.get(f"REGMODE_{x}", "NOREG").strip() != "NOREG" or conn.get(f"RST{x}") != ["0"]:
        return None
    if p.get(f"CLK{x}MUX", f"CLK{x}").strip() != f"CLK{x}":
        return None
    pairs, ces = [], set()
    for i in range(18):
        bit = conn.get(f"DO{x}{i}", [None])[0]
        users = sinks.get(bit, []) if isinstance(bit, int) else []
        if not users:
            continue
        if len(users) != 1 or users[0][1] != "DI":
            return None
        ff = cells[users[0][0]]
        fp, fc = ff["parameters"], ff["connections"]
        if ff["type"] != "TRELLIS_FF" or fc.get("CLK") != conn[f"CLK{x}"]:
            return None
        if fp.get("CLKMUX", "CLK").strip() != "CLK" or fc.get("LSR", ["0"]) != ["0"]:
            return None
        ces.add("1" if fp.get("CEMUX", "CE").strip() == "1" else str(fc.get("CE")))
        pairs.append((f"DO{x}{i}", users[0][0]))
    return pairs if pairs and len(ces) == 1 else None


def absorb_output_registers(netlist: dict, top: str) -> dict:
    """Rewrite ``netlist`` (yosys JSON) in place; returns counts for the build report."""
    cells = netlist["modules"][top]["cells"]
    sinks = _sinks(cells)
    ports = bits = 0
    for ram in [c for c in cells.values() if c["type"] == "DP16KD"]:
        p = ram["parameters"]
        if max(_width(p.get("DATA_WIDTH_A", "18")), _width(p.get("DATA_WIDTH_B", "18"))) > 18:
            continue
        for x in "AB":
            pairs = _port_ffs(cells, sinks, ram, x)
            if pairs is None:
                continue
            ff0 = cells[pairs[0][1]]
            ce_used = ff0["parameters"].get("CEMUX", "CE").strip() != "1"
            ram["connections"][f"OCE{x}"] = ff0["connections"]["CE"] if ce_used else ["1"]
            ram["parameters"][f"REGMODE_{x}"] = "OUTREG"
            for pin, ff in pairs:
                ram["connections"][pin] = cells[ff]["connections"]["Q"]
                del cells[ff]
            ports += 1
            bits += len(pairs)
    return {"ports": ports, "flip_flops_absorbed": bits}


def absorb_in_file(path: Path, top: str = "top") -> dict:
    """Apply :func:`absorb_output_registers` to a yosys JSON file."""
    netlist = json.loads(Path(path).read_text())
    stats = absorb_output_registers(netlist, top)
    Path(path).write_text(json.dumps(netlist))
    return stats
