"""Output-stationary R×C systolic array of ``PE``\\ s with a per-column drain chain.

Ports (R = cfg.rows, C = cfg.cols):

* ``row_in``   In  R × {valid, first, last, a: signed(a_width)}: activation tokens, row i
  enters PE(i, 0) and moves right one PE per cycle.
* ``col_w``    In  C × signed(w_width): conv-mode weights, column j enters PE(0, j) and moves
  down one PE per cycle.
* ``w_direct`` In  R·C × signed(w_width): direct-mode weights, index i·C + j feeds PE(i, j).
* ``direct``   In  1: selects ``w_direct`` instead of the column flow, for the whole mesh.
* ``col_out``  Out C × {valid, data: signed(acc_width)}: drained tile results.
* ``col_w2``, ``w2_sel`` In C × signed(w_width), In C (only with ``inject_row`` = Q): a second
  conv weight stream entering PE(Q, j) instead of the chain from PE(Q-1, j) where
  ``w2_sel[j]`` is set (the two-stream remainder tiles, hwgen.schedule.lower._remainder_stream:
  rows Q.. run another K part). Its timing is the chain's at row Q: element k's weight on
  ``col_w2[j]`` (with ``w2_sel[j]``) at s+k+j-1+Q.

Timing contract (cycle t = an input is held during t and sampled by the edge ending t; an
output "at t" is readable during t). The caller applies every skew:

* Element k of a tile: the token of row i is on ``row_in[i]`` at cycle s+k+i; in conv mode
  its weight for column j is on ``col_w[j]`` at s+k+j-1; in direct mode the weight of
  PE(i, j) is on ``w_direct[i*C+j]`` at s+k+i+j-1 (``weight_lead`` = 1: each PE registers
  its weight select in front of the multiplier). PE(i, j) pairs them at cycle s+k+i+j.
  Cycles between elements may hold tokens with valid = 0 (their other fields and weights are
  ignored).
* PE(i, j) sums the products of its valid tokens from ``first`` through ``last`` (inclusive,
  possibly the same token), modulo 2**acc_width.
* Let t_last0 be the cycle the tile's ``last`` token is on ``row_in[0]`` (so row i's is at
  t_last0+i). Then ``col_out[j]`` carries row i's result, valid = 1, at cycle
  ``t_last0 + j + i + out_latency`` with ``out_latency = mult_latency + rows + 2``: rows
  0..R-1 of a column come out on R consecutive cycles; valid = 0 on every other cycle.
* Caller's promise: on each row, consecutive ``last`` tokens are at least R cycles apart
  (tiles issued back to back with interval max(K, R) satisfy it). Then the drain chain never
  collides.
* ``direct`` travels with the systolic skew: one register at the array's edge, then down
  column 0 and right along each row, one register per PE (no net drives the whole mesh: a
  broadcast register would fan out to 8 LUTs per PE). The weight source of PE(i, j) for
  its operand of cycle t is ``direct`` of cycle t-2-i-j, exactly when the tokens presented
  at t-i-j reach it. So a change of ``direct`` between layers must be presented no later
  than s-2 (s of the new layer's first tile) and no earlier than t_last0-1 (t_last0 of the
  old layer's final tile); ``direct_latency`` = 2 is the latency at PE(0, 0).

Drain: the sum of PE(i, j) is in its result register from cycle τ + result_latency (τ: its
``last`` token at the PE, t_last0 + i + j; ``result_latency`` = mult_latency + 2, the PE's
two accumulator halves) and is loaded into its chain register at the edge ending
τ + result_latency + i, by a pulse made from the row's own valid & last, delayed
result_latency + i registers at the row's left edge and travelling right with the tokens.
The chain shifts down one PE per cycle, so row i reaches the bottom at
t_last0 + j + i + mult_latency + R + 2: a tile's rows move down as one compact block, and the
block of a tile whose ``last`` is ≥ R cycles later never meets it (row r of a tile occupies
chain register i ≥ r only in one cycle, τ0 + r + i + const, and register i is loaded in a
cycle where register i-1 is empty). Reset clears valid bits only (tokens, product pipeline,
load pulses, chain); the wide data registers are reset-less.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from amaranth import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hwgen.config import MAX_ARRAY_DIM, ArrayConfig
from hwgen.rtl.arith import Arithmetic
from hwgen.rtl.pe import PE, _checked_operands, result_layout, token_layout, wrap_signed

__all__ = ["MAX_DIM", "SystolicArray", "systolic_golden"]

MAX_DIM = MAX_ARRAY_DIM  # defined once, in hwgen.config


def systolic_golden(a: npt.ArrayLike, w: npt.ArrayLike, acc_width: int) -> np.ndarray:
    """Tile results ``out[t, i, j]`` wrapped to signed ``acc_width``.

    ``a``: int[tiles, R, K]. ``w``: int[tiles, C, K] (conv: ``sum_k a[t,i,k] * w[t,j,k]``) or
    int[tiles, R, C, K] (direct: ``sum_k a[t,i,k] * w[t,i,j,k]``). Returns int[tiles, R, C].
    """
    a_ = _checked_operands(a, "a")
    w_ = _checked_operands(w, "w")
    if a_.ndim != 3:
        raise ValueError(f"a must be [tiles, R, K], not shape {a_.shape}")
    t, r, k = a_.shape
    if acc_width > 62 or a_.dtype == object or w_.dtype == object:
        a_, w_ = a_.astype(object), w_.astype(object)
    if w_.ndim == 3 and w_.shape[0] == t and w_.shape[2] == k:
        prod = a_[:, :, None, :] * w_[:, None, :, :]
    elif w_.ndim == 4 and w_.shape[:2] == (t, r) and w_.shape[3] == k:
        prod = a_[:, :, None, :] * w_
    else:
        raise ValueError(
            f"w must be [tiles, C, K] (conv) or [tiles, R, C, K] (direct) matching a "
            f"{a_.shape}, not {w_.shape}"
        )
    return wrap_signed(prod.sum(axis=3), acc_width)


class SystolicArray(wiring.Component):
    """Output-stationary ``cfg.rows`` × ``cfg.cols`` MAC mesh; see the module docstring."""

    def __init__(self, cfg: ArrayConfig, inject_row: int | None = None) -> None:
        if not isinstance(cfg, ArrayConfig):
            raise TypeError(f"Array configuration must be an ArrayConfig, not {cfg!r}")
        for name in ("rows", "cols"):
            v = getattr(cfg, name)
            if v > MAX_DIM:
                raise ValueError(f"Systolic array {name} must be in 1..{MAX_DIM}, not {v}")
        self.cfg = cfg
        self.arith = arith = Arithmetic.from_config(cfg)
        r, c = cfg.rows, cfg.cols
        if inject_row is not None and not 1 <= inject_row < r:
            raise ValueError(f"inject_row must be in 1..{r - 1}, not {inject_row!r}")
        self.inject_row = inject_row
        ports = {
            "row_in": In(data.ArrayLayout(token_layout(arith.a_width), r)),
            "col_w": In(data.ArrayLayout(arith.w_shape, c)),
            "w_direct": In(data.ArrayLayout(arith.w_shape, r * c)),
            "direct": In(1),
            "col_out": Out(data.ArrayLayout(result_layout(arith.acc_width), c)),
        }
        if inject_row is not None:
            ports |= {"col_w2": In(data.ArrayLayout(arith.w_shape, c)), "w2_sel": In(c)}
        super().__init__(ports)

    @property
    def result_latency(self) -> int:
        """The PE's: cycles from a ``last`` token to its sum in the result register."""
        return self.cfg.mult_latency + 2

    @property
    def out_latency(self) -> int:
        """``col_out[j]`` emits row i at ``t_last0 + j + i + out_latency``."""
        return self.result_latency + self.cfg.rows

    @property
    def weight_lead(self) -> int:
        """Cycles a weight on ``col_w``/``w_direct`` comes before its token (the PE's)."""
        return 1

    @property
    def direct_latency(self) -> int:
        """Cycles from ``direct`` to the PEs' weight-source muxes."""
        return 2

    @property
    def min_last_interval(self) -> int:
        """Minimum spacing of consecutive ``last`` tokens on a row."""
        return self.cfg.rows

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self.cfg
        r, c = cfg.rows, cfg.cols
        pes = [
            [
                PE(arith=self.arith, mult_latency=cfg.mult_latency)
                for _ in range(c)
            ]
            for _ in range(r)
        ]
        for i in range(r):
            for j in range(c):
                m.submodules[f"pe_{i}_{j}"] = pes[i][j]
        pe = pes[0][0]  # the contract above is the PE's
        assert (pe.result_latency, pe.weight_lead) == (self.result_latency, self.weight_lead)

        # `direct` enters through one register and follows the skew: PE(i, 0) takes it from
        # PE(i-1, 0), PE(i, j) from PE(i, j-1) (each PE registers it once).
        direct_in = Signal(name="direct_in", reset_less=True)
        m.d.sync += direct_in.eq(self.direct)
        for i in range(r):
            # Load pulse of row i: valid & last delayed result_latency + i cycles.
            ld = Signal(name=f"ld_row{i}_d0")
            m.d.comb += ld.eq(self.row_in[i].valid & self.row_in[i].last)
            for d in range(self.result_latency + i):
                nxt = Signal(name=f"ld_row{i}_d{d + 1}")
                m.d.sync += nxt.eq(ld)
                ld = nxt

            for j in range(c):
                pe = pes[i][j]
                if j > 0:
                    d_src = pes[i][j - 1].direct_out
                else:
                    d_src = direct_in if i == 0 else pes[i - 1][0].direct_out
                m.d.comb += [pe.direct.eq(d_src), pe.w_direct.eq(self.w_direct[i * c + j])]
                if j == 0:
                    m.d.comb += [pe.a_in.eq(self.row_in[i]), pe.ld_in.eq(ld)]
                else:
                    left = pes[i][j - 1]
                    m.d.comb += [pe.a_in.eq(left.a_out), pe.ld_in.eq(left.ld_out)]
                if i == 0:
                    m.d.comb += [pe.w_in.eq(self.col_w[j]), pe.chain_in.valid.eq(0)]
                else:
                    w_up = pes[i - 1][j].w_out
                    if i == self.inject_row:
                        w_up = Mux(self.w2_sel[j], self.col_w2[j], w_up)
                    m.d.comb += [
                        pe.w_in.eq(w_up),
                        pe.chain_in.eq(pes[i - 1][j].chain_out),
                    ]
        for j in range(c):
            m.d.comb += self.col_out[j].eq(pes[r - 1][j].chain_out)
        return m
