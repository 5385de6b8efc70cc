"""One processing element of the output-stationary systolic array.

A PE multiplies the activation token arriving from its left neighbour by a weight (from its
upper neighbour in conv mode, from its own ``w_direct`` input in direct mode), accumulates the
products of one tile, latches the finished sum, and on a ``ld_in`` pulse drops that sum into
the column's drain chain (a second register that otherwise just passes ``chain_in`` down).

Cycle contract (cycle t = the inputs are held during t and sampled by the edge that ends t;
an output "at t" is readable during t):

* ``a_out``/``ld_out``/``direct_out`` are ``a_in``/``ld_in``/``direct`` one cycle later
  (``direct_out`` is the PE's own registered copy, which the array chains to the next PE so
  that no flip-flop drives the whole mesh). ``w_out`` is the PE's weight register: ``w_in``
  one cycle later, or ``w_direct`` while ``direct`` is 1 (a lower PE in direct mode ignores
  it).
* The weight paired with the token presented in cycle t is presented one cycle earlier
  (``weight_lead`` = 1): ``w_direct`` of cycle t-1 if ``direct`` was 1 in cycle t-1, else
  ``w_in`` of cycle t-1. It is registered in front of the multiplier, so the DSP's operand
  pins are driven by flip-flops (``direct`` is static during a layer).
* A token with ``valid`` = 1 presented in cycle t has its product added modulo
  2**acc_width, ``acc = p`` if ``first`` else ``acc + p``: the low half of the accumulator
  in the edge ending t + ``mult_latency``, the high half (with the low half's carry) one
  edge later. ``first``/``last``/``a`` of a token with ``valid`` = 0 are ignored. ``first``
  and ``last`` may be the same token (K = 1).
* If the token with ``last`` = 1 is presented in cycle t, its tile's sum is held in the
  result register from cycle t + ``result_latency`` (= mult_latency + 2) until the edge that
  latches the next tile's sum.
* If ``ld_in`` is 1 in cycle t, ``chain_out`` in cycle t+1 is {valid: 1, data: result};
  otherwise it is ``chain_in`` of cycle t. The caller keeps ``chain_in.valid`` = 0 in a cycle
  with ``ld_in`` = 1 (the array's schedule guarantees it).

Reset clears the control bits (token valid/first/last, product pipeline, ``ld``, chain)
only; the wide data registers are reset-less.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from amaranth import Cat, Module, Mux, Signal, signed
from amaranth.hdl import Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hwgen.rtl.arith import INT8, Arithmetic

__all__ = ["PE", "pe_golden", "result_layout", "token_layout", "wrap_signed"]


def token_layout(a_width: int) -> data.StructLayout:
    """An activation token: ``valid``, tile delimiters ``first``/``last``, operand ``a``."""
    return data.StructLayout({"valid": 1, "first": 1, "last": 1, "a": signed(a_width)})


def result_layout(acc_width: int) -> data.StructLayout:
    """A drained tile result."""
    return data.StructLayout({"valid": 1, "data": signed(acc_width)})


def wrap_signed(x: npt.ArrayLike, width: int) -> np.ndarray:
    """Reduce integers modulo 2**width into the signed range [-2**(width-1), 2**(width-1))."""
    x = np.asarray(x)
    if x.dtype == object or width > 62:
        f = np.frompyfunc(
            lambda v: ((int(v) + (1 << (width - 1))) % (1 << width)) - (1 << (width - 1)), 1, 1
        )
        return f(x).astype(object)
    half = np.int64(1 << (width - 1))
    return ((x + half) & np.int64((1 << width) - 1)) - half


def _checked_operands(x: npt.ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype != object and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, not {arr.dtype}")
    return arr.astype(object) if arr.dtype == object else arr.astype(np.int64)


def pe_golden(a: npt.ArrayLike, w: npt.ArrayLike, acc_width: int) -> np.ndarray:
    """Per tile dot product ``sum_k a[t,k] * w[t,k]`` wrapped to signed ``acc_width``.

    ``a``, ``w``: int[tiles, K]. Returns int[tiles].
    """
    a_ = _checked_operands(a, "a")
    w_ = _checked_operands(w, "w")
    if a_.ndim != 2 or a_.shape != w_.shape:
        raise ValueError(f"a and w must both be [tiles, K], not {a_.shape} and {w_.shape}")
    if acc_width > 62 or a_.dtype == object or w_.dtype == object:
        a_, w_ = a_.astype(object), w_.astype(object)
    return wrap_signed((a_ * w_).sum(axis=1), acc_width)


# A platform's ``accumulate`` hook (hwgen.rtl.ecp5_dsp.Ecp5Multipliers.accumulate).
_AccumulateHook = Callable[..., Value]


def _check_width(value: object, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise TypeError(f"{what} must be a positive integer, not {value!r}")


class PE(wiring.Component):
    """Multiply-accumulate cell with a result latch and one drain-chain register.

    Parameters (keyword-only): ``arith`` (an ``Arithmetic``: operand/accumulator shapes, the
    product and the wrap; ``hwgen.rtl.arith``), or for the plaintext arithmetic ``a_width``,
    ``w_width``, ``acc_width`` (defaults: INT8's 8, 8, 32); ``mult_latency``.
    See the module docstring for the cycle contract.
    """

    def __init__(
        self,
        *,
        a_width: int | None = None,
        w_width: int | None = None,
        acc_width: int | None = None,
        mult_latency: int = 3,
        arith: Arithmetic | None = None,
    ) -> None:
        # The arithmetic (widths, products, wrap) lives behind the seam: either given whole
        # (``arith``) or the plaintext arithmetic with the given widths (INT8's by default).
        if arith is None:
            arith = Arithmetic.plaintext(
                INT8.a_width if a_width is None else a_width,
                INT8.w_width if w_width is None else w_width,
                INT8.acc_width if acc_width is None else acc_width,
            )
        elif not isinstance(arith, Arithmetic):
            raise TypeError(f"PE arithmetic must be an Arithmetic, not {arith!r}")
        _check_width(mult_latency, "Multiplier latency")
        self.arith = arith
        self.a_width = arith.a_width
        self.w_width = arith.w_width
        self.acc_width = arith.acc_width
        self.mult_latency = mult_latency
        super().__init__(
            {
                "a_in": In(token_layout(self.a_width)),
                "a_out": Out(token_layout(self.a_width)),
                "w_in": In(arith.w_shape),
                "w_out": Out(arith.w_shape),
                "w_direct": In(arith.w_shape),
                "direct": In(1),
                "direct_out": Out(1),
                "ld_in": In(1),
                "ld_out": Out(1),
                "chain_in": In(result_layout(self.acc_width)),
                "chain_out": Out(result_layout(self.acc_width)),
            }
        )

    @property
    def result_latency(self) -> int:
        """Cycles from the ``last`` token on ``a_in`` to its sum in the result register: the
        product, the low half's edge, the high half's edge."""
        return self.mult_latency + 2

    @property
    def weight_lead(self) -> int:
        """Cycles a token's weight is presented (``w_in``/``w_direct``) before the token."""
        return 1

    def elaborate(self, platform) -> Module:
        """Forwarding registers, multiplier, accumulator halves, result and drain chain."""
        m = Module()
        m.submodules.mult = mult = self.arith.multiplier(self.mult_latency)
        a_valid, a_dat, w_reg = self._forward(m)
        m.d.comb += [mult.a.eq(self.a_in.a), mult.b.eq(w_reg)]
        valid, fl = self._control(m, a_valid, a_dat)
        result = self._accumulate(m, platform, mult.p, valid, fl)
        self._drain(m, result)
        return m

    def _forward(self, m: Module) -> tuple[Signal, Signal, Signal]:
        """The token, weight, load pulse and ``direct`` registers, forwarded to the outputs."""
        # Forwarding registers: the token to the right, the weight down, the load pulse right.
        # The weight register is also the multiplier's operand: it takes ``w_direct`` or
        # ``w_in`` (one cycle ahead of the token, ``weight_lead``), so the DSP's inputs come
        # straight from flip-flops (a: the left neighbour's token register).
        # The token travels as two registers per stage (few words for a simulator to copy:
        # one per bit measured 17 % slower on mnist_cnn 8x8): valid, which reset clears, and
        # {operand, first, last}, reset-less (first/last are don't-care while valid = 0), so
        # only one flip-flop per PE stage sits on the reset net.
        a_valid = Signal()
        a_dat = Signal(len(self.a_in.a) + 2, reset_less=True)
        w_reg = Signal(self.arith.w_shape, reset_less=True)
        ld_reg = Signal()
        direct_r = Signal(reset_less=True)
        m.d.sync += [
            a_valid.eq(self.a_in.valid),
            a_dat.eq(Cat(self.a_in.first, self.a_in.last, self.a_in.a)),
            # `direct` one cycle before the token (= direct_r with the token)
            w_reg.eq(Mux(self.direct, self.w_direct, self.w_in)),
            ld_reg.eq(self.ld_in),
            direct_r.eq(self.direct),
        ]
        m.d.comb += [
            self.a_out.valid.eq(a_valid),
            self.a_out.first.eq(a_dat[0]),
            self.a_out.last.eq(a_dat[1]),
            self.a_out.a.eq(a_dat[2:]),
            self.w_out.eq(w_reg),
            self.ld_out.eq(ld_reg),
            self.direct_out.eq(direct_r),
        ]
        return a_valid, a_dat, w_reg

    def _control(self, m: Module, a_valid: Signal, a_dat: Signal) -> tuple[Value, Value]:
        """The token's valid and first/last at the product (the multiplier's last stage)."""
        # Control bits follow the product down the multiplier pipeline; the forwarding
        # register (`_forward`) is its first stage. Split like it (valid reset, first/last
        # not): each stage then equals the next PE's forwarding register bit for bit, and
        # yosys merges the two.
        valid, fl = a_valid, a_dat[:2]
        for stage in range(1, self.mult_latency):
            nv = Signal(name=f"ctl_v{stage + 1}")
            nfl = Signal(2, name=f"ctl_fl{stage + 1}", reset_less=True)
            m.d.sync += [nv.eq(valid), nfl.eq(fl)]
            valid, fl = nv, nfl
        return valid, fl

    def _accumulate(self, m: Module, platform, p: Value, valid: Value, fl: Value) -> Signal:
        """The two accumulator halves and the result register, latched on a tile's last."""
        first = fl[0]

        # Accumulate (wraps: modulo 2**acc_width) in two halves, so that no carry chain
        # between registers is longer than half the accumulator: the low half with the
        # product in the edge ending t + mult_latency, the high half one edge later with the
        # low half's registered carry. The tile's result is latched with the high half:
        # {lo (a register by then), hi_next}.
        arith = self.arith
        lo_w = arith.lo_width
        hi_w = self.acc_width - lo_w
        # A platform may build the same function itself (cf. get_multiplier): the ECP5 puts
        # the ``first`` multiplexer and the carries inside the carry cells (hwgen.rtl.ecp5_dsp).
        hook = getattr(platform, "accumulate", None)
        p_ext = Signal(arith.acc_shape)
        m.d.comb += p_ext.eq(p)  # sign-extended (or wrapped) to the accumulator
        lo, lo_next = self._low_half(m, hook, p_ext[:lo_w], first, valid)
        # the high half's stage: the token's control, the carry and the product's high bits
        # (for int8 products all copies of the sign: yosys keeps one flip-flop)
        valid2 = Signal(name="ctl_v_hi")
        fl2 = Signal(2, name="ctl_fl_hi", reset_less=True)
        carry = Signal(name="acc_carry", reset_less=True)
        m.d.sync += [valid2.eq(valid), fl2.eq(fl), carry.eq(lo_next[lo_w])]
        result = Signal(self.arith.acc_shape, reset_less=True)
        if hi_w:
            whole = Cat(lo, self._high_half(m, hook, p_ext[lo_w:], fl2, valid2, carry))
        else:
            whole = lo
        with m.If(valid2 & fl2[1]):
            m.d.sync += result.eq(whole)
        return result

    def _low_half(self, m: Module, hook: _AccumulateHook | None, p_lo: Value, first: Value,
                  valid: Value) -> tuple[Signal, Signal]:
        """The accumulator's low half and its next value with the carry out (one bit more)."""
        lo_w = self.arith.lo_width
        lo = Signal(lo_w, reset_less=True)
        lo_next = Signal(lo_w + 1)  # with the carry out
        if hook is not None:
            m.d.comb += lo_next.eq(hook(m, lo, first, p_lo, carry_out=True))
        else:
            m.d.comb += lo_next.eq(self.arith.accumulate(lo, first, p_lo))
        with m.If(valid):
            m.d.sync += lo.eq(lo_next[:lo_w])
        return lo, lo_next

    def _high_half(self, m: Module, hook: _AccumulateHook | None, p_high: Value, fl2: Signal,
                   valid2: Signal, carry: Signal) -> Signal:
        """The accumulator's high half (one edge after the low half); returns its next value."""
        hi_w = self.acc_width - self.arith.lo_width
        p_hi = Signal(hi_w, name="p_hi", reset_less=True)
        hi = Signal(hi_w, reset_less=True)
        hi_next = Signal(hi_w)
        m.d.sync += p_hi.eq(p_high)
        if hook is not None:
            m.d.comb += hi_next.eq(hook(m, hi, fl2[0], p_hi, carry=carry))
        else:
            m.d.comb += hi_next.eq(self.arith.accumulate(hi, fl2[0], p_hi, carry))
        with m.If(valid2):
            m.d.sync += hi.eq(hi_next)
        return hi_next

    def _drain(self, m: Module, result: Signal) -> None:
        """The drain chain register: ``result`` on ``ld_in``, else ``chain_in`` passed down."""
        # Drain chain register: load the result on ld_in, else pass chain_in down.
        c_valid = Signal()
        c_data = Signal(self.arith.acc_shape, reset_less=True)
        with m.If(self.ld_in):
            m.d.sync += [c_valid.eq(1), c_data.eq(result)]
        with m.Else():
            m.d.sync += [c_valid.eq(self.chain_in.valid), c_data.eq(self.chain_in.data)]
        m.d.comb += [self.chain_out.valid.eq(c_valid), self.chain_out.data.eq(c_data)]
