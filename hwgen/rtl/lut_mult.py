"""A LUT multiplier for narrow operands, pipelined so it maps onto ECP5 LUT4 + CCU2C chains.

The multiplier seam's fallback once the DSP blocks are used up (``hwgen.rtl.ecp5_dsp``).
yosys turns a plain ``a * b`` into one compressor tree of full adders built from LUT4s (an
int8 x int8 product: 287 LUT4 + 8 CCU2C, measured); here the product is a sum of shifted
partial-product rows written as two-operand adds, each of which yosys maps onto a CCU2C
carry chain (64 LUT4 + 37 CCU2C for int8, measured; docs/architecture.md):

* edge 1: operand registers (as the DSP's input registers);
* edge 2: row pairs ``pair[i] = row[2i] + (row[2i+1] << 1)``, registered, where
  ``row[j] = a if b[j] else 0`` and a signed ``b``'s top row counts negative (two's
  complement: ``b = sum_{j<n-1} b_j 2^j - b_{n-1} 2^(n-1)``);
* edge 3: a balanced tree of two-operand adds of the pairs (shifted by 2, 4, ...), registered;
* then ``latency - 3`` plain delay registers.

So the latency is the DSP path's (``DSP_LATENCY`` = 3) and the bits are those of ``a * b``
(``lut_mult_golden`` is the same structure on integers; tests prove both equal to ``*``).

A platform may build the row pairs itself (``pair_adder``): on the ECP5 each pair bit
``(a_k & b_lo) + (a_(k-1) & b_hi)`` fits one half of a CCU2C carry cell, ANDs included
(``hwgen.rtl.ecp5_carry``), which drops the pairs' AND LUTs.
"""

from __future__ import annotations

from collections.abc import Callable

from amaranth import Module, Mux, Signal, Value

from .mult import Multiplier

__all__ = ["LUT_MULT_LATENCY", "PairAdder", "lut_mult_golden", "lut_multiplier", "pair_weights"]

LUT_MULT_LATENCY = 3  # operand registers, row pairs, adder tree
# (module, a, b_lo, b_hi, subtract, is_signed, name) -> (a if b_lo else 0) +/- ((a if b_hi
# else 0) << 1) as a Value of a's width + 2 bits
PairAdder = Callable[[Module, Value, Value, Value, bool, bool, str], Value]


def pair_weights(b_width: int, is_signed: bool) -> list[tuple[int, ...]]:
    """Per row pair, the sign (+1/-1) of each of its rows (one row if ``b_width`` is odd)."""
    signs = [1] * b_width
    if is_signed:
        signs[-1] = -1  # two's complement: the top bit weighs -2^(n-1)
    return [tuple(signs[i:i + 2]) for i in range(0, b_width, 2)]


def _tree(values: list, shift: int, add) -> object:
    """Balanced two-operand sum of ``values[k] << (k*shift)``: pairs of neighbours, then
    pairs of those (shift doubled), until one is left."""
    while len(values) > 1:
        nxt = [add(values[k], values[k + 1], shift) for k in range(0, len(values) - 1, 2)]
        if len(values) % 2:
            nxt.append(values[-1])
        values, shift = nxt, 2 * shift
    return values[0]


def lut_mult_golden(a: int, b: int, b_width: int, is_signed: bool = True) -> int:
    """The LUT multiplier's arithmetic on integers, step by step as the hardware does it:
    ``b``'s bits (two's complement if ``is_signed``) select rows of ``a``; rows are summed in
    pairs, the pairs in a balanced tree. Equals ``a * b`` (tests/test_lut_mult.py)."""
    bits = [(b >> j) & 1 for j in range(b_width)]
    pairs = []
    for i, signs in enumerate(pair_weights(b_width, is_signed)):
        terms = [s * (a if bits[2 * i + k] else 0) << k for k, s in enumerate(signs)]
        pairs.append(sum(terms))
    return _tree(pairs, 2, lambda x, y, sh: x + (y << sh))


def lut_multiplier(mult: Multiplier, pair_adder: PairAdder | None = None) -> Module:
    """``mult.p`` = ``mult.a * mult.b`` from LUTs and carry chains, ``mult.latency`` (>= 3)
    edges later; two-row pairs built by ``pair_adder`` if given (else Amaranth ``+``)."""
    if mult.latency < LUT_MULT_LATENCY:
        raise ValueError(f"LUT multiplier latency must be at least {LUT_MULT_LATENCY}, "
                         f"not {mult.latency}")
    m = Module()
    # Edge 1: operand registers. Datapath registers carry no reset (validity travels beside).
    a_r = Signal.like(mult.a, reset_less=True)
    b_r = Signal.like(mult.b, reset_less=True)
    m.d.sync += [a_r.eq(mult.a), b_r.eq(mult.b)]

    # Edge 2: row pairs, one two-operand add (one carry chain) each.
    pairs = []
    for i, signs in enumerate(pair_weights(mult.b_width, mult.is_signed)):
        if pair_adder is not None and len(signs) == 2:
            expr = pair_adder(m, a_r, b_r[2 * i], b_r[2 * i + 1], signs[1] < 0,
                              mult.is_signed, f"pair{i}")
        else:
            rows = [Mux(b_r[2 * i + k], a_r, 0) for k in range(len(signs))]
            expr = rows[0] if signs[0] > 0 else -rows[0]
            if len(rows) == 2:
                expr = expr + (rows[1] << 1) if signs[1] > 0 else expr - (rows[1] << 1)
        pair = Signal(expr.shape(), name=f"pair{i}", reset_less=True)
        m.d.sync += pair.eq(expr)
        pairs.append(pair)

    # Edge 3: the tree. ``keep`` on each partial sum stops yosys's alumacc from merging the
    # adds into one $macc (which it would build as a LUT compressor tree again).
    n_sums = 0

    def add(x, y, sh):
        nonlocal n_sums
        expr = x + (y << sh)
        s = Signal(expr.shape(), name=f"sum{n_sums}", attrs={"keep": 1})
        n_sums += 1
        m.d.comb += s.eq(expr)
        return s

    stage = Signal.like(mult.p, reset_less=True)
    m.d.sync += stage.eq(_tree(pairs, 2, add))  # exact: a*b fits p's a_width+b_width bits
    for _ in range(mult.latency - LUT_MULT_LATENCY):
        nxt = Signal.like(mult.p, reset_less=True)
        m.d.sync += nxt.eq(stage)
        stage = nxt
    m.d.comb += mult.p.eq(stage)
    return m
