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
``OCEx``, reset by ``RSTx`` (Lattice TN1264, sysMEM).

In the 36-bit pseudo-dual-port mode (yosys's PDPW16KD mapping: write on port A, read on port
B, ``DATA_WIDTH_B`` = 36) the read word leaves on ``DOA0..17`` and ``DOB0..17``. Lattice's
PDPW16KD has a single ``REGMODE`` and ``OCE`` for all 36 bits, so the pass moves the word only
as a whole: all 36 pins' flip-flops qualify against the read clock ``CLKB``, ``CLKA`` is the
same net (then it does not matter which port's setting the silicon applies to ``DOA``), and
both ports get ``OUTREG`` with the flip-flops' clock enable on ``OCEA`` and ``OCEB``.
"""

from __future__ import annotations

from collections import defaultdict

__all__ = ["absorb_output_registers"]


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


def _ffs(cells: dict, sinks: dict, ram: dict, pins: list[str], clk: str) -> tuple | None:
    """([(DO pin, flip-flop)], clock enable) if every used pin of ``pins`` drives only the
    ``DI`` of a plain TRELLIS_FF clocked by ``ram``'s pin ``clk``, all with one enable."""
    conn = ram["connections"]
    pairs, ces = [], set()
    for pin in pins:
        bit = conn.get(pin, [None])[0]
        users = sinks.get(bit, []) if isinstance(bit, int) else []
        if not users:
            continue
        if len(users) != 1 or users[0][1] != "DI":
            return None
        ff = cells[users[0][0]]
        fp, fc = ff["parameters"], ff["connections"]
        if ff["type"] != "TRELLIS_FF" or fc.get("CLK") != conn[clk]:
            return None
        if fp.get("CLKMUX", "CLK").strip() != "CLK" or fc.get("LSR", ["0"]) != ["0"]:
            return None
        ce_used = fp.get("CEMUX", "CE").strip() != "1"
        ces.add(tuple(fc["CE"]) if ce_used else ("1",))
        pairs.append((pin, users[0][0]))
    return (pairs, list(ces.pop())) if pairs and len(ces) == 1 else None


def _plain_port(ram: dict, x: str) -> bool:
    """Port x reads with no output register, no read reset and a non-inverted clock."""
    p, conn = ram["parameters"], ram["connections"]
    return (p.get(f"REGMODE_{x}", "NOREG").strip() == "NOREG" and conn.get(f"RST{x}") == ["0"]
            and p.get(f"CLK{x}MUX", f"CLK{x}").strip() == f"CLK{x}")


def _moves(cells: dict, sinks: dict, ram: dict) -> list[tuple[str, list, list]]:
    """[(ports, [(pin, flip-flop)], clock enable)] to move into ``ram``'s output registers."""
    p, conn = ram["parameters"], ram["connections"]
    wa, wb = _width(p.get("DATA_WIDTH_A", "18")), _width(p.get("DATA_WIDTH_B", "18"))
    if wb == 36:  # PDPW16KD: one register setting for the whole 36-bit word
        if conn.get("CLKA") != conn.get("CLKB") or not all(_plain_port(ram, x) for x in "AB"):
            return []
        pins = [f"DO{x}{i}" for x in "AB" for i in range(18)]
        found = _ffs(cells, sinks, ram, pins, "CLKB")
        return [("AB", *found)] if found else []
    if max(wa, wb) > 18:
        return []
    moves = []
    for x in "AB":
        found = _plain_port(ram, x) and _ffs(cells, sinks, ram, [f"DO{x}{i}" for i in range(18)],
                                              f"CLK{x}")
        if found:
            moves.append((x, *found))
    return moves


def absorb_output_registers(netlist: dict, top: str) -> dict:
    """Rewrite ``netlist`` (yosys JSON) in place; returns counts for the build report."""
    cells = netlist["modules"][top]["cells"]
    sinks = _sinks(cells)
    ports = bits = 0
    for ram in [c for c in cells.values() if c["type"] == "DP16KD"]:
        for xs, pairs, ce in _moves(cells, sinks, ram):
            for x in xs:
                ram["connections"][f"OCE{x}"] = ce
                ram["parameters"][f"REGMODE_{x}"] = "OUTREG"
            for pin, ff in pairs:
                ram["connections"][pin] = cells[ff]["connections"]["Q"]
                del cells[ff]
            ports += 1
            bits += len(pairs)
    return {"ports": ports, "flip_flops_absorbed": bits}
