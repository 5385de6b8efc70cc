"""ECP5 row pairs of the LUT multiplier on instantiated CCU2C carry cells.

A row pair of ``hwgen.rtl.lut_mult`` is ``x + y`` (or ``x - y``) with
``x_k = a_k & b_lo`` and ``y_k = a_(k-1) & b_hi`` (``a`` sign- or zero-extended). One half of
a CCU2C (``hwgen/rtl/models/CCU2C.v``) computes ``S = F ^ cin`` and
``cout = F ? cin : G`` with ``F`` any function of its four inputs and ``G`` the same
INIT's low four bits as a function of ``A``, ``B`` (``F`` at ``C = D = 0``). With ``y``'s two
bits on A, B and ``x``'s on C, D:

* add: ``F = (A & B) ^ (C & D)`` = x ^ y, ``G = A & B`` = y, which is the carry whenever
  x = y: a full adder of x, y and the carry, its two ANDs inside the cell;
* subtract: ``F = (C & D) ^ ~(A & B)`` = x ^ ~y, ``G = ~(A & B)``, carry into the chain 1:
  ``x + ~y + 1`` = ``x - y``.

So a pair of an int8 multiplier is five CCU2C and no LUT4 (yosys's own adder needs a LUT4
per AND in front of its CCU2C).

The PE's accumulate ``Mux(first, 0, acc) + p`` fits the same way (``ccu2c_accumulate``):
``A = acc_k``, ``B = first``, ``C = p_k``: ``F = (A & ~B) ^ C``, ``G = A & ~B``, so the
``first`` multiplexer (one LUT4 per accumulator bit with yosys's adder) is inside the cells.
The PE's two accumulator halves are two such chains: the low one with a carry out, the high
one with the registered carry in.
Measured per PE: docs/architecture.md.
"""

from __future__ import annotations

from pathlib import Path

from amaranth import Cat, Const, Instance, Module, Signal, Value

__all__ = ["CCU2C_MODEL", "INIT_ACC", "INIT_ADD", "INIT_SUB", "ccu2c_accumulate", "ccu2c_pair",
           "lut_init"]

CCU2C_MODEL = Path(__file__).with_name("models") / "CCU2C.v"


def lut_init(f) -> int:
    """A LUT4's INIT: bit ``{D, C, B, A}`` is ``f(A, B, C, D)`` (yosys's LUT4 model)."""
    return sum(1 << i for i in range(16) if f(i & 1, (i >> 1) & 1, (i >> 2) & 1, (i >> 3) & 1))


INIT_ADD = lut_init(lambda a, b, c, d: (a & b) ^ (c & d))
INIT_SUB = lut_init(lambda a, b, c, d: (c & d) ^ (1 - (a & b)))
INIT_ACC = lut_init(lambda a, b, c, d: (a & (1 - b)) ^ c)  # acc_k, first, p_k; D unused


def _chain(m: Module, name: str, init: int, cin: Value, ins: list[tuple]) -> Signal:
    """One CCU2C carry chain over ``ins`` (per bit the (A, B, C, D) inputs, an even count)
    with the same INIT in every half; returns the sum bits."""
    s = Signal(len(ins), name=f"{name}_s")
    for i in range(0, len(ins), 2):
        cout = Signal(name=f"{name}_co{i}")
        (a0, b0, c0, d0), (a1, b1, c1, d1) = ins[i], ins[i + 1]
        m.submodules[f"{name}_ccu{i}"] = Instance(
            "CCU2C",
            p_INIT0=Const(init, 16),
            p_INIT1=Const(init, 16),
            p_INJECT1_0="NO",
            p_INJECT1_1="NO",
            i_CIN=cin,
            i_A0=a0, i_B0=b0, i_C0=c0, i_D0=d0,
            i_A1=a1, i_B1=b1, i_C1=c1, i_D1=d1,
            o_S0=s[i],
            o_S1=s[i + 1],
            o_COUT=cout,
        )  # fmt: skip
        cin = cout
    return s


def ccu2c_pair(m: Module, a: Value, b_lo: Value, b_hi: Value, subtract: bool,
               is_signed: bool, name: str) -> Value:
    """``(a if b_lo else 0) +/- ((a if b_hi else 0) << 1)`` on one CCU2C chain, as a Value
    of ``len(a) + 2`` bits (signed if ``a`` is signed or the pair subtracts)."""
    n = len(a)
    width = n + 2  # |pair| <= 3 * 2**(n-1) (signed) or 3 * (2**n - 1) (unsigned)

    def a_bit(k: int) -> Value:
        if k < 0:
            return Const(0, 1)
        if k >= n:
            return a[n - 1] if is_signed else Const(0, 1)
        return a[k]

    zero = Const(0, 1)
    # y's bits on A, B (G = their AND), x's on C, D
    ins = [(a_bit(k - 1), b_hi, a_bit(k), b_lo) for k in range(width)]
    if width % 2:
        ins.append((zero, zero, zero, zero))
    s = _chain(m, name, INIT_SUB if subtract else INIT_ADD, Const(int(subtract), 1), ins)
    out = Cat(s[:width])
    return out.as_signed() if is_signed or subtract else out


def ccu2c_accumulate(m: Module, acc: Value, first: Value, product: Value, name: str,
                     carry_in: Value | None = None, carry_out: bool = False) -> Value:
    """``Mux(first, 0, acc) + product (+ carry_in)`` on one CCU2C chain, ``len(acc)`` bits
    (the product sign- or zero-extended, or truncated, to the accumulator's width), or
    ``len(acc) + 1`` with ``carry_out`` (the top bit is the carry out of the last bit).

    A carry in from the fabric enters through a leading half with ``A = C = carry_in``,
    ``B = 0``: ``F = 0``, so its carry out is ``G = carry_in`` (what nextpnr's own carry
    feed-in does); a carry out leaves through a trailing half with all inputs 0 (``S`` = the
    carry into it)."""
    n = len(acc)
    p = Signal(n, name=f"{name}_p")
    m.d.comb += p.eq(product)
    zero = Const(0, 1)
    ins = [] if carry_in is None else [(carry_in, zero, carry_in, zero)]
    lead = len(ins)
    ins += [(acc[k], first, p[k], zero) for k in range(n)]
    if carry_out:
        ins.append((zero, zero, zero, zero))
    if len(ins) % 2:
        ins.append((zero, zero, zero, zero))
    return _chain(m, name, INIT_ACC, zero, ins)[lead : lead + n + int(carry_out)]
