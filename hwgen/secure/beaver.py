"""Beaver multiplication: opening masked operands, elementwise / linear / conv products, AND.

For x∘y with a triple (a, b, c = a∘b) the parties open d = x − a and e = y − b (one round);
since x∘y = d∘y + a∘e + c, party i's share is

    [z]_i = d ∘ [y]_i + [a]_i ∘ e + [c]_i                               (``gemm_operands``)

(the public d∘e term is inside d∘[y]). This is the product the share-mode MAC array computes:
one GEMM over the concatenated operands [d | [a]_i] × [[y]_i ; e], accumulated onto [c]_i
(plus the party's bias share). The secret-share multiply unit computes the elementwise form
[z]_i = [c]_i + d·[b]_i + e·[a]_i (+ d·e at P0 only), ``local_product_elementwise``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hwgen.secure.channel import Channel
from hwgen.secure.dealer import BoolTriple, Dealer, Triple
from hwgen.secure.ring import AShare, BShare, Ring, ShareError
from hwgen.secure.tensor import im2col, matmul_ring

__all__ = [
    "Gemm", "GemmJob", "numpy_gemm", "open_shares", "open_many", "mul", "conv2d", "linear", "and_",
    "local_product_elementwise",
]

# A batch of local GEMMs, one per party: [(party, X (M, K'), Y (K', N), init (M, N))] ->
# [init + X @ Y mod 2**k]. A batch lets the two parties' engines run at the same time.
GemmJob = tuple[int, np.ndarray, np.ndarray, np.ndarray]
Gemm = Callable[[list[GemmJob]], list[np.ndarray]]


def numpy_gemm(ring: Ring) -> Gemm:
    def g(jobs: list[GemmJob]) -> list[np.ndarray]:
        return [ring.reduce(init + matmul_ring(x, y)) for _, x, y, init in jobs]
    return g


def open_many(ch: Channel, xs: list[AShare], tag: str) -> list[np.ndarray]:
    """Open several shared tensors in one round: each party sends its shares, adds what it got."""
    ring = xs[0].ring
    s0 = np.concatenate([x.shares[0].ravel() for x in xs])
    s1 = np.concatenate([x.shares[1].ravel() for x in xs])
    r0, r1 = ch.exchange(tag, s0, s1, ring.nbytes)
    v = ring.reduce(s0 + r0)
    assert np.array_equal(v, ring.reduce(s1 + r1))  # both parties open the same value
    out, i = [], 0
    for x in xs:
        out.append(v[i : i + x.shares[0].size].reshape(x.shape))
        i += x.shares[0].size
    return out


def open_shares(ch: Channel, x: AShare, tag: str) -> np.ndarray:
    return open_many(ch, [x], tag)[0]


def _check_triple(t: Triple, ring: Ring, kind: str, a_shape, b_shape) -> None:
    if t.kind != kind:
        raise ShareError(f"a {t.kind} triple cannot serve a {kind} product")
    if t.a.ring != ring:
        raise ShareError(f"triple over {t.a.ring} used with shares of {ring}")
    if t.a.shape != tuple(a_shape) or t.b.shape != tuple(b_shape):
        raise ShareError(f"{kind} triple shaped {t.a.shape}, {t.b.shape} for operands "
                         f"{tuple(a_shape)}, {tuple(b_shape)}")
    t.use()


def local_product_elementwise(party: int, d, e, a_i, b_i, c_i, ring: Ring) -> np.ndarray:
    """The secret-share multiply lane: [z]_i = [c]_i + d·[b]_i + e·[a]_i (+ d·e at P0)."""
    z = c_i + d * b_i + e * a_i
    if party == 0:
        z = z + d * e
    return ring.reduce(z)


def mul(ch: Channel, x: AShare, y: AShare, t: Triple) -> AShare:
    """Elementwise product of two shared tensors of one shape."""
    x._check(y, "multiply")
    _check_triple(t, x.ring, "elementwise", x.shape, y.shape)
    d, e = open_many(ch, [x - t.a, y - t.b], "mul")
    return AShare(x.ring, tuple(
        local_product_elementwise(i, d, e, t.a.shares[i], t.b.shares[i], t.c.shares[i], x.ring)
        for i in (0, 1)))


def _ring_operand(x: AShare, w: AShare, what: str) -> Ring:
    if not isinstance(x, AShare) or not isinstance(w, AShare):
        raise ShareError(f"{what}: operands must be arithmetic shares")
    if x.ring != w.ring:
        raise ShareError(f"{what}: input shares of {x.ring} but weight shares of {w.ring}")
    return x.ring


def conv2d(ch: Channel, x: AShare, w: AShare, bias: AShare, t: Triple, stride: int,
           padding: int, gemm: Gemm) -> AShare:
    """[acc + bias] for x (C, H, W), w (Cout, C, k, k), bias (Cout,) -> (Cout, OH, OW)."""
    ring = _ring_operand(x, w, "conv")
    _check_triple(t, ring, "conv", x.shape, w.shape)
    cout, _, k, _ = w.shape
    d, e = open_many(ch, [x - t.a, w - t.b], "conv")
    dcols = im2col(d, k, stride, padding)
    oh = (x.shape[1] + 2 * padding - k) // stride + 1
    ow = (x.shape[2] + 2 * padding - k) // stride + 1
    jobs = []
    for i in (0, 1):
        xop = np.hstack([dcols, im2col(t.a.shares[i], k, stride, padding)])
        yop = np.vstack([w.shares[i].reshape(cout, -1).T, e.reshape(cout, -1).T])
        init = ring.reduce(t.c.shares[i].reshape(cout, -1).T + bias.shares[i][None, :])
        jobs.append((i, xop, yop, init))
    out = [np.ascontiguousarray(z.T.reshape(cout, oh, ow)) for z in gemm(jobs)]
    return AShare(ring, (out[0], out[1]))


def linear(ch: Channel, x: AShare, w: AShare, bias: AShare, t: Triple, gemm: Gemm) -> AShare:
    """[acc + bias] for x (K,), w (N, K), bias (N,) -> (N,)."""
    ring = _ring_operand(x, w, "linear")
    n, k = w.shape
    wt = w.map(lambda s: s.T)
    _check_triple(t, ring, "matmul", (1, k), (k, n))
    d, e = open_many(ch, [x.map(lambda s: s.reshape(1, k)) - t.a, wt - t.b], "linear")
    jobs = [(i, np.hstack([d, t.a.shares[i]]), np.vstack([wt.shares[i], e]),
             ring.reduce(t.c.shares[i] + bias.shares[i][None, :])) for i in (0, 1)]
    out = [z.reshape(n) for z in gemm(jobs)]
    return AShare(ring, (out[0], out[1]))


def and_(ch: Channel, x: BShare, y: BShare, t: BoolTriple) -> BShare:
    """Bitwise AND of XOR-shared words: open d = x^a, e = y^b; z = c ^ d&b ^ e&a (^ d&e at P0)."""
    if x.shape != y.shape or t.a.shape != x.shape:
        raise ShareError(f"AND of shapes {x.shape}, {y.shape} with a triple of {t.a.shape}")
    t.use()
    s0, s1 = (np.concatenate([(x.shares[i] ^ t.a.shares[i]).ravel(),
                              (y.shares[i] ^ t.b.shares[i]).ravel()]) for i in (0, 1))
    r0, r1 = ch.exchange("and", s0, s1, 8)
    de = s0 ^ r0
    n = x.shares[0].size
    d, e = de[:n].reshape(x.shape), de[n:].reshape(x.shape)
    z = [t.c.shares[i] ^ (d & t.b.shares[i]) ^ (e & t.a.shares[i]) for i in (0, 1)]
    z[0] = z[0] ^ (d & e)
    return BShare((z[0], z[1]))


def and_fresh(ch: Channel, dealer: Dealer, x: BShare, y: BShare) -> BShare:
    return and_(ch, x, y, dealer.and_words(x.shape))
