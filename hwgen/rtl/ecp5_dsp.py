"""ECP5 implementation of the multiplier seam: instantiated, fully registered MULT18X18D blocks.

A platform mixes in :class:`Ecp5Multipliers` and every :class:`~hwgen.rtl.mult.Multiplier`
asks it for its implementation (``get_multiplier``, the pattern of Amaranth's ``get_ff_sync``):

* operands of at most 18 bits: one MULT18X18D with its input, pipeline and output registers
  on (Lattice sysDSP: the product appears three clock edges after its operands), operands
  sign- (or zero-) extended to 18 bits, plus ``latency - 3`` fabric registers (the PE's
  latency 4: one, so that its accumulate starts at a flip-flop);
* operands of at most 35 bits (the requant lanes' 32x32 product): four MULT18X18D on 17-bit
  halves, then three fabric stages — a register on each product, the middle sum ``lh + hl``
  and the final add — so latency ``>= 6``; a seventh edge is a register on the operands,
  the block's own copy, which the placer puts by its four DSPs;
* once the device's DSP blocks are used up (``dsp_budget``), operands of at most 18 bits:
  :func:`hwgen.rtl.lut_mult.lut_multiplier`, row pairs on instantiated CCU2C carry cells
  (:mod:`hwgen.rtl.ecp5_carry`, the ANDs inside the cells) and a tree of two-operand adds
  that yosys maps onto CCU2C chains (under half the logic of yosys's own ``*``), the same
  latency (3) and bits;
* anything else: the generic registered ``*``, which the board build synthesises in LUTs
  (``synth_ecp5 -nodsp``).

The mixin also builds the PE's accumulate (``accumulate``, asked by ``hwgen.rtl.pe.PE``) as
one CCU2C chain with the ``first`` multiplexer inside the cells.

yosys ships only a blackbox of MULT18X18D; ``MULT18X18D_MODEL`` is a behavioural Verilog
model of the mode used here, for Verilator (``sim/test_mult.py`` checks it against ``*``);
``CCU2C_MODEL`` likewise for the carry cell (``sim/test_lut_mult.py``).
"""

from __future__ import annotations

from pathlib import Path

from amaranth import Cat, ClockSignal, Const, Instance, Module, Mux, Signal, signed

from .attrs import UNSHARED
from .delay import chain, registered
from .ecp5_carry import CCU2C_MODEL, ccu2c_accumulate, ccu2c_pair
from .lut_mult import LUT_MULT_LATENCY, lut_multiplier
from .mult import Multiplier, generic_multiplier
from .traits import LargeDevice

__all__ = [
    "DSP_LATENCY",
    "WIDE_LATENCY",
    "MULT18X18D_MODEL",
    "Ecp5Multipliers",
    "Ecp5DspSim",
    "mult18x18d",
]

DSP_LATENCY = 3  # input, pipeline and output registers of one MULT18X18D
# + a fabric register on the four products (the DSP's clock-to-out and route into the fabric
# took 5.2-5.9 ns on the routed 8x8: no add fits behind it) + middle sum + final add
WIDE_LATENCY = DSP_LATENCY + 3
MULT18X18D_MODEL = Path(__file__).with_name("models") / "MULT18X18D.v"
_HALF = 17  # low halves are unsigned 17-bit, so they fit a signed 18-bit operand


def mult18x18d(m: Module, a, b, name: str) -> Signal:
    """One registered MULT18X18D: ``a``, ``b`` signed (<= 18 bits); returns the signed(36)
    product, valid three edges after the operands."""
    p = Signal(signed(36), name=f"{name}_p")
    a18 = Signal(signed(18), name=f"{name}_a")
    b18 = Signal(signed(18), name=f"{name}_b")
    m.d.comb += [a18.eq(a), b18.eq(b)]  # sign extension
    # Only the pins of this mode are connected (as yosys' own DSP mapping does): nextpnr
    # cannot route constant ties on the unused clock/enable/shift pins.
    ports = {}
    for i in range(18):
        ports[f"i_A{i}"] = a18[i]
        ports[f"i_B{i}"] = b18[i]
        ports[f"i_C{i}"] = Const(0, 1)
    for i in range(36):
        ports[f"o_P{i}"] = p[i]
    ports.update(i_CLK0=ClockSignal(), i_CE0=Const(1, 1), i_RST0=Const(0, 1))
    m.submodules[name] = Instance(
        "MULT18X18D",
        p_REG_INPUTA_CLK="CLK0",
        p_REG_INPUTB_CLK="CLK0",
        p_REG_PIPELINE_CLK="CLK0",
        p_REG_OUTPUT_CLK="CLK0",
        p_GSR="DISABLED",
        p_RESETMODE="SYNC",
        i_SIGNEDA=Const(1, 1),
        i_SIGNEDB=Const(1, 1),
        i_SOURCEA=Const(0, 1),
        i_SOURCEB=Const(0, 1),
        **ports,
    )
    return p


def _delay(m: Module, sig: Signal, n: int) -> Signal:
    return chain(m, sig, [None] * n)


class Ecp5Multipliers:
    """Platform mixin: ``get_multiplier`` maps each Multiplier onto MULT18X18D blocks.

    ``dsp_budget`` blocks are handed out in elaboration order; past them (or for shapes no
    DSP mapping covers) the generic ``*`` is returned, to be built from LUTs.
    """

    dsp_budget: int = 156  # LFE5U-85F
    # Instantiated CCU2C carry cells for the LUT multiplier's row pairs and the PE's
    # accumulate (hwgen.rtl.ecp5_carry). False: plain `+` for both (yosys's adders, one LUT4
    # more per bit), e.g. to rule the cells out if a board run ever disagrees with simulation.
    carry_cells: bool = True

    def reset_dsp_count(self) -> None:
        self.dsps_used = 0
        self.lut_multipliers = 0

    def _take(self, n: int) -> bool:
        used = getattr(self, "dsps_used", 0)
        if used + n > self.dsp_budget:
            self.lut_multipliers = getattr(self, "lut_multipliers", 0) + 1
            return False
        self.dsps_used = used + n
        return True

    def sim_verilog(self) -> list[str]:
        """Verilog models of the vendor primitives, to append to the design for Verilator."""
        return [MULT18X18D_MODEL.read_text(), CCU2C_MODEL.read_text()]

    def accumulate(self, m: Module, acc, first, product, carry=None, carry_out=False):
        """A PE accumulator half, ``Mux(first, 0, acc) + product (+ carry)``
        (``Arithmetic.accumulate``; ``carry_out``: one bit more, the carry out) as one CCU2C
        chain with the multiplexer inside the cells (``hwgen.rtl.ecp5_carry``)."""
        if not self.carry_cells:  # = Arithmetic.accumulate
            n = len(acc) + int(carry_out)
            s = Mux(first, 0, acc) + product
            return (s if carry is None else s + carry)[:n]
        name = "acc_hi_ccu" if carry is not None else "acc_ccu"
        return ccu2c_accumulate(m, acc, first, product, name, carry_in=carry,
                                carry_out=carry_out)

    def get_multiplier(self, mult: Multiplier):
        # Unsigned operands gain a zero sign bit, so a signed product is always exact.
        aw = mult.a_width + (0 if mult.is_signed else 1)
        bw = mult.b_width + (0 if mult.is_signed else 1)
        if max(aw, bw) <= 18 and mult.latency >= DSP_LATENCY and self._take(1):
            return _narrow(mult)
        if max(aw, bw) <= 2 * _HALF + 1 and mult.latency >= WIDE_LATENCY and self._take(4):
            return _wide(mult)
        if max(aw, bw) <= 18 and mult.latency >= LUT_MULT_LATENCY:
            return lut_multiplier(mult, pair_adder=ccu2c_pair if self.carry_cells else None)
        return generic_multiplier(mult)


def _operands(m: Module, mult: Multiplier) -> tuple[Signal, Signal]:
    aw = mult.a_width + (0 if mult.is_signed else 1)
    bw = mult.b_width + (0 if mult.is_signed else 1)
    a = Signal(signed(aw), name="a_s")
    b = Signal(signed(bw), name="b_s")
    m.d.comb += [a.eq(mult.a), b.eq(mult.b)]
    return a, b


def _narrow(mult: Multiplier) -> Module:
    m = Module()
    a, b = _operands(m, mult)
    p = mult18x18d(m, a, b, "dsp")
    m.d.comb += mult.p.eq(_delay(m, p, mult.latency - DSP_LATENCY))
    return m


def _wide(mult: Multiplier) -> Module:
    """a*b = hh<<34 + (hl+lh)<<17 + ll with 17-bit unsigned low halves (ll < 2**34, so
    ``hh<<34 | ll`` is a concatenation): two adds after the DSPs."""
    m = Module()
    a, b = _operands(m, mult)
    # With an edge to spare, the operands' own register first (UNSHARED: the requant lane's
    # sum also has a copy of its own; timing: the sum's register sits by its adder, and its
    # route to the lane's floorplanned DSPs was 7.85 ns on the 12x16 of 05d735f seed 4).
    pre = mult.latency > WIDE_LATENCY
    a, b = (registered(m, a, "a_r", pre, UNSHARED), registered(m, b, "b_r", pre, UNSHARED))
    al, bl = a[:_HALF].as_unsigned(), b[:_HALF].as_unsigned()
    ah, bh = (a >> _HALF), (b >> _HALF)
    # Stage 4: each product straight into a fabric register.
    ll = _delay(m, mult18x18d(m, al, bl, "dsp_ll"), 1)
    lh = _delay(m, mult18x18d(m, al, bh, "dsp_lh"), 1)
    hl = _delay(m, mult18x18d(m, ah, bl, "dsp_hl"), 1)
    hh = _delay(m, mult18x18d(m, ah, bh, "dsp_hh"), 1)
    # Stage 5: the middle sum; ll and hh wait beside it.
    mid = Signal(signed(38), reset_less=True)
    outer = Signal(signed(2 * _HALF + 36), reset_less=True)
    m.d.sync += [mid.eq(lh + hl), outer.eq(Cat(ll[: 2 * _HALF], hh))]
    # Stage 6: the final add.
    full = Signal(signed(len(mult.p)), reset_less=True)
    m.d.sync += full.eq(outer + (mid << _HALF))
    m.d.comb += mult.p.eq(_delay(m, full, mult.latency - WIDE_LATENCY - int(pre)))
    return m


class Ecp5DspSim(LargeDevice, Ecp5Multipliers):
    """A stand-in platform for simulation: the ULX3S's multiplier hook and traits (no other
    platform resource), so Verilator runs the board's netlist: the DSP instances on
    ``MULT18X18D_MODEL``, each unit on its own registered reset."""

    def __init__(self, dsp_budget: int = 156) -> None:
        self.dsp_budget = dsp_budget
        self.reset_dsp_count()
