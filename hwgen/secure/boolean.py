"""Exact non-linear layers on shares: arithmetic↔binary conversion and boolean circuits.

Boolean values are XOR-shared 64-bit words (one word per tensor element, bit i of the word =
bit i of the two's-complement value); every AND gate is a bitwise AND of whole words with an
AND triple, all the ANDs of one circuit level in one round. Circuits:

* ``add``: Kogge–Stone adder (1 + ceil(log2 bits) rounds);
* ``a2b``: the parties' arithmetic shares, as (x0, 0) and (0, x1), through ``add``;
* ``b2a``: bit j = b0 + b1 − 2·b0·b1 with one elementwise Beaver product per bit;
* ``requant``: sign-extend the Z_2^32 accumulator to Z_2^64 exactly (carry bit of
  u0 + u1 for u = acc + 2^31, converted to arithmetic), multiply by the public M locally,
  + 2^30, a2b over 64 bits, then SRDHM's ``>> 31`` and RDBPOT's ``>> shift`` are wiring,
  RDBPOT's rounding bit is ``bit[s-1] AND (NOT neg OR any(bits[s-2:0]))``, an incrementer adds
  it, and the clamp compares with two adders and selects with one AND round;
* ``maxpool``: a > b is the sign of a + ~b (= a − b − 1), max by one AND mux per pair;
* ``avgpool``: the window sum is local, then a2b, sign extension (wiring) and RDBPOT.

Every step is exact: the reconstruction equals ``hwgen.golden`` bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwgen.secure.beaver import mul
from hwgen.secure.channel import Channel
from hwgen.secure.dealer import Dealer
from hwgen.secure.ring import AShare, BShare, Ring

__all__ = ["Ctx", "and_many", "add", "a2b", "b2a", "requant", "maxpool", "avgpool",
           "extend64", "reveal_bool"]

U64 = np.uint64
ONES = U64(0xFFFF_FFFF_FFFF_FFFF)
R64 = Ring(64)


@dataclass
class Ctx:
    ch: Channel
    dealer: Dealer  # over the protocol's ring k
    dealer64: Dealer  # Z_2^64 triples for the exact sign extension
    ring: Ring


def _i64(w: np.ndarray) -> np.ndarray:
    return w.view(np.int64)


def sar(w: np.ndarray, s) -> np.ndarray:
    """Arithmetic shift right of words (linear over XOR: sign bits are copies)."""
    return (_i64(w) >> np.asarray(s, np.int64)).view(U64)


def spread_sign(b: BShare) -> BShare:
    return b.local(lambda w: sar(w, 63))


def public(c, shape) -> BShare:
    c = np.broadcast_to(np.asarray(c, np.int64).astype(U64), shape).copy()
    return BShare((c, np.zeros(shape, U64)))


def and_many(ctx: Ctx, pairs: list[tuple[BShare, BShare]]) -> list[BShare]:
    """Several ANDs in one round with one triple (concatenated)."""
    from hwgen.secure.beaver import and_

    xs = BShare(tuple(np.concatenate([p[0].shares[i].ravel() for p in pairs]) for i in (0, 1)))
    ys = BShare(tuple(np.concatenate([p[1].shares[i].ravel() for p in pairs]) for i in (0, 1)))
    z = and_(ctx.ch, xs, ys, ctx.dealer.and_words(xs.shape))
    out, j = [], 0
    for x, _ in pairs:
        n = x.shares[0].size
        out.append(BShare(tuple(z.shares[i][j : j + n].reshape(x.shape) for i in (0, 1))))
        j += n
    return out


def or_(ctx: Ctx, pairs: list[tuple[BShare, BShare]]) -> list[BShare]:
    ands = and_many(ctx, pairs)
    return [x ^ y ^ a for (x, y), a in zip(pairs, ands, strict=True)]


def add(ctx: Ctx, x: BShare, y: BShare, bits: int = 64) -> BShare:
    """x + y mod 2**64 (exact in the low ``bits`` bits): Kogge–Stone prefix carries."""
    g, p = and_many(ctx, [(x, y)])[0], x ^ y
    s = 1
    while s < bits:
        gs = g.local(lambda w, s=s: w << U64(s))
        ps = p.local(lambda w, s=s: w << U64(s))
        if 2 * s < bits:
            pg, pp = and_many(ctx, [(p, gs), (p, ps)])
            p = pp
        else:
            (pg,) = and_many(ctx, [(p, gs)])
        g = g ^ pg  # g and p·g_shifted are disjoint, so OR = XOR
        s *= 2
    return x ^ y ^ g.local(lambda w: w << U64(1))


def a2b(ctx: Ctx, v: AShare, bits: int) -> BShare:
    """Arithmetic shares (low ``bits`` of their sum are wanted) -> XOR shares of the sum."""
    z = np.zeros(v.shape, U64)
    return add(ctx, BShare((v.shares[0], z)), BShare((z, v.shares[1])), bits)


def b2a(ctx: Ctx, b: BShare, nbits: int, ring: Ring, signed: bool, dealer: Dealer) -> AShare:
    """The low ``nbits`` of XOR-shared words as arithmetic shares in ``ring``."""
    j = np.arange(nbits, dtype=U64).reshape((nbits,) + (1,) * len(b.shape))
    bits = [(b.shares[i][None] >> j) & U64(1) for i in (0, 1)]  # (nbits, ...)
    z = np.zeros_like(bits[0])
    x0, x1 = AShare(ring, (bits[0], z)), AShare(ring, (z, bits[1]))
    prod = mul(ctx.ch, x0, x1, dealer.elementwise(bits[0].shape))
    arith = (x0 + x1) - prod.mul_public(2)  # b = b0 + b1 - 2·b0·b1
    weights = [1 << i for i in range(nbits)]
    if signed:
        weights[-1] = -weights[-1]
    w = np.asarray(weights, np.int64).reshape(j.shape)
    s = arith.mul_public(w)
    return AShare(ring, tuple(ring.reduce(s.shares[i].sum(axis=0, dtype=U64)) for i in (0, 1)))


def extend64(ctx: Ctx, v: AShare) -> AShare:
    """Signed value of Z_2^32 shares -> the same value in Z_2^64, exactly."""
    if v.ring.k == 64:
        return v
    u = v.add_public(1 << 31)  # now in [0, 2**32) as an unsigned value
    carry = a2b(ctx, u, 33).local(lambda w: (w >> U64(32)) & U64(1))
    w64 = b2a(ctx, carry, 1, R64, False, ctx.dealer64)
    u64 = AShare(R64, (u.shares[0].copy(), u.shares[1].copy()))
    return (u64 - w64.mul_public(1 << 32)).add_public(-(1 << 31))


def rdbpot(ctx: Ctx, q: BShare, shift: np.ndarray) -> BShare:
    """RoundingDivideByPOT of XOR-shared int64 words by public per-element shifts 0..31."""
    s = np.broadcast_to(np.asarray(shift, np.int64), q.shape)
    sm1 = np.maximum(s - 1, 0).astype(U64)
    r = q.local(lambda w: sar(w, s))
    bit = q.local(lambda w: (w >> sm1) & U64(1))
    bit = bit.and_public(np.where(s >= 1, U64(1), U64(0)))
    low = q.and_public(np.where(s >= 2, (U64(1) << sm1) - U64(1), U64(0)))
    for sh in (16, 8, 4, 2, 1):  # OR-reduce the low bits into bit 0
        low = or_(ctx, [(low, low.local(lambda w, sh=sh: w >> U64(sh)))])[0]
    neg = q.local(lambda w: w >> U64(63))
    nlow = low.xor_public(U64(1)).and_public(U64(1))
    (neg_nolow,) = and_many(ctx, [(neg, nlow)])
    (rnd,) = and_many(ctx, [(bit, neg_nolow.xor_public(U64(1)))])
    return add(ctx, r, rnd.and_public(U64(1)), 40)


def clamp(ctx: Ctx, z: BShare, lo: np.ndarray, hi: np.ndarray) -> BShare:
    """clamp(z, lo, hi) for public per-element lo <= hi."""
    shp = z.shape
    lo_b = np.broadcast_to(np.asarray(lo, np.int64), shp)
    hi_b = np.broadcast_to(np.asarray(hi, np.int64), shp)
    notz = z.xor_public(ONES)
    # hi - z = hi + 1 + ~z ; z - lo: one batched adder over both
    xs = BShare(tuple(np.concatenate([a, b]) for a, b in
                      zip(public(hi_b + 1, shp).shares, z.shares, strict=True)))
    ys = BShare(tuple(np.concatenate([a, b]) for a, b in
                      zip(notz.shares, public(-lo_b, shp).shares, strict=True)))
    d = spread_sign(add(ctx, xs, ys, 64))
    n = shp[0] if shp else 1
    gt = BShare(tuple(d.shares[i][:n] for i in (0, 1)))
    lt = BShare(tuple(d.shares[i][n:] for i in (0, 1)))
    a, b = and_many(ctx, [(lt, z.xor_public(lo_b.astype(U64))),
                          (gt, z.xor_public(hi_b.astype(U64)))])
    return z ^ a ^ b


def requant(ctx: Ctx, acc: AShare, mult, shift, lo: int, hi: int) -> BShare:
    """clamp(RDBPOT(SRDHM(acc, M), shift), lo, hi) with public per-element M, shift."""
    shp = acc.shape
    flat = acc.map(lambda s: s.reshape(-1))
    m = np.broadcast_to(np.asarray(mult, np.int64), shp).reshape(-1)
    s = np.broadcast_to(np.asarray(shift, np.int64), shp).reshape(-1)
    y = extend64(ctx, flat).mul_public(m).add_public(1 << 30)
    q = a2b(ctx, y, 64).local(lambda w: sar(w, 31))  # SRDHM = (acc·M + 2^30) >> 31
    out = clamp(ctx, rdbpot(ctx, q, s), np.full_like(m, lo), np.full_like(m, hi))
    return out.local(lambda w: w.reshape(shp))


def _windows(w: np.ndarray, k: int, stride: int) -> list[np.ndarray]:
    c, h, wd = w.shape
    oh, ow = (h - k) // stride + 1, (wd - k) // stride + 1
    return [np.ascontiguousarray(w[:, dy : dy + stride * (oh - 1) + 1 : stride,
                                   dx : dx + stride * (ow - 1) + 1 : stride])
            for dy in range(k) for dx in range(k)]


def maxpool(ctx: Ctx, x: BShare, k: int, stride: int) -> BShare:
    """Max over each window of XOR-shared int64 words (floor mode)."""
    cur = [BShare((a, b)) for a, b in zip(_windows(x.shares[0], k, stride),
                                          _windows(x.shares[1], k, stride), strict=True)]
    while len(cur) > 1:
        pairs = [(cur[i], cur[i + 1]) for i in range(0, len(cur) - 1, 2)]
        a = BShare(tuple(np.stack([p[0].shares[i] for p in pairs]) for i in (0, 1)))
        b = BShare(tuple(np.stack([p[1].shares[i] for p in pairs]) for i in (0, 1)))
        # a > b  <=>  a + ~b = a - b - 1 >= 0
        sign = spread_sign(add(ctx, a, b.xor_public(ONES), 64))
        (sel,) = and_many(ctx, [(sign.xor_public(ONES), a ^ b)])
        m = b ^ sel
        nxt = [BShare((m.shares[0][i], m.shares[1][i])) for i in range(len(pairs))]
        cur = nxt + ([cur[-1]] if len(cur) % 2 else [])
    return cur[0]


def avgpool(ctx: Ctx, x: AShare, k: int, stride: int) -> BShare:
    """RDBPOT(window sum, log2(k²)) exactly."""
    n = k * k
    sums = x.map(lambda s: sum(_windows(s, k, stride)))
    kbits = x.ring.k
    b = a2b(ctx, sums, kbits)
    if kbits < 64:  # sign-extend from bit k-1: wiring
        b = b.local(lambda w: sar(w << U64(64 - kbits), 64 - kbits))
    return rdbpot(ctx, b, np.full(b.shape, n.bit_length() - 1))


def reveal_bool(ch: Channel, b: BShare, to: str = "P1", nbytes: int = 1) -> np.ndarray:
    """The other party sends its share (low ``nbytes`` bytes suffice for int8 values)."""
    src = 0 if to == "P1" else 1
    sent = ch.send("online", f"P{src}", to, "output", b.shares[src], nbytes)
    mask = U64((1 << (8 * nbytes)) - 1)
    v = (sent ^ b.shares[1 - src]) & mask
    return (v.astype(np.int64) ^ (1 << (8 * nbytes - 1))) - (1 << (8 * nbytes - 1))
