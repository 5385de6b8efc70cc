"""hwgen.secure: the two-party protocol reconstructs the golden model bit for bit, and every
party's view looks uniform (chi-square per byte)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2_contingency, chisquare

from hwgen.datasets import load_mnist_sample
from hwgen.evaluate import build_qmodel
from hwgen.golden.ops import avgpool_int, conv2d_int, linear_int, maxpool_int
from hwgen.golden.run import quantize_input, run
from hwgen.quant.fixedpoint import requantize
from hwgen.secure import boolean as bo
from hwgen.secure.beaver import conv2d, linear, mul, numpy_gemm, open_shares
from hwgen.secure.channel import Channel, wire_bytes
from hwgen.secure.dealer import CSPRNG, Dealer, TripleReuseError
from hwgen.secure.infer import secure_infer, share_model, share_tensor
from hwgen.secure.ring import AShare, Ring, ShareError

P_MIN = 1e-4  # seeded: deterministic; a leak gives p ~ 0


def _setup(k: int, seed: int = 0, keep: bool = False):
    ring = Ring(k)
    ch = Channel(keep_views=keep)
    d = Dealer(ring, ch, seed=seed + 1)
    d64 = Dealer(Ring(64), ch, seed=seed + 2)
    return ring, ch, bo.Ctx(ch, d, d64, ring), CSPRNG(seed + 3)


def _reveal(x) -> np.ndarray:
    if isinstance(x, AShare):
        return x.ring.decode(x.shares[0] + x.shares[1])
    return (x.shares[0] ^ x.shares[1]).view(np.int64)


# ---------------------------------------------------------------- end to end (NumPy)


@pytest.mark.parametrize("model,k,n", [("tiny_cnn", 32, 2), ("tiny_cnn", 64, 1),
                                       ("mnist_cnn", 32, 1)])
def test_secure_inference_equals_golden(model: str, k: int, n: int) -> None:
    qm = build_qmodel(model)
    images, _ = load_mnist_sample()
    ring, ch, ctx, rng = _setup(k)
    sm = share_model(qm, ring, ch, rng)
    for i in range(n):
        x = quantize_input(images[i])
        trace: list = []
        logits = secure_infer(sm, x, ch, ctx.dealer, ctx.dealer64, rng, trace=trace)
        for (name, got), (_, want) in zip(trace, run(qm, x), strict=True):
            assert np.array_equal(_reveal(got).reshape(want.shape), want), f"{model} {name}"
        assert logits.dtype == np.int8
        assert np.array_equal(logits, run(qm, x)[-1][1])
    assert ch.rounds["online"] > 0 and ch.received("P1", "offline") > 0


# ---------------------------------------------------------------- building blocks


def test_requant_exact_on_extremes() -> None:
    ring, ch, ctx, rng = _setup(32, 5)
    g = np.random.default_rng(5)
    n = 4000
    acc = np.concatenate([g.integers(-(2**31), 2**31, n - 12),
                          [-(2**31), 2**31 - 1, 0, 1, -1, 2**30, -(2**30), 5, -5, 6, -6, 7]])
    m = g.integers(2**30, 2**31, acc.size)
    m[:3] = [2**30, 2**31 - 1, 0]
    s = g.integers(0, 32, acc.size)
    s[3:8] = [0, 1, 31, 2, 30]
    for lo, hi in ((-128, 127), (0, 127)):
        a = share_tensor(ch, ring, acc, "P0", rng, "online", "acc")
        got = _reveal(bo.requant(ctx, a, m, s, lo, hi))
        assert np.array_equal(got, requantize(acc, m, s, lo=lo, hi=hi))


def test_requant_ring64() -> None:
    ring, ch, ctx, rng = _setup(64, 6)
    g = np.random.default_rng(6)
    acc = g.integers(-(2**31), 2**31, 2000)
    m, s = g.integers(2**30, 2**31, 2000), g.integers(0, 32, 2000)
    a = share_tensor(ch, ring, acc, "P1", rng, "online", "acc")
    assert np.array_equal(_reveal(bo.requant(ctx, a, m, s, -128, 127)),
                          requantize(acc, m, s))


def test_pools_exact() -> None:
    ring, ch, ctx, rng = _setup(32, 7)
    g = np.random.default_rng(7)
    x = g.integers(-128, 128, (3, 9, 9))
    x[0, :2, :2] = [[-128, -128], [-128, -128]]
    xb = bo.a2b(ctx, share_tensor(ch, ring, x, "P0", rng, "online", "x"), 32)
    xb = xb.local(lambda w: bo.sar(w << np.uint64(32), 32))
    for k, st in ((2, 2), (3, 3), (3, 2)):
        assert np.array_equal(_reveal(bo.maxpool(ctx, xb, k, st)), maxpool_int(x, k, st))
    xa = share_tensor(ch, ring, x, "P1", rng, "online", "x")
    for k in (2, 4):
        assert np.array_equal(_reveal(bo.avgpool(ctx, xa, k, k)), avgpool_int(x, k, k))


@pytest.mark.parametrize("k", [32, 64])
def test_beaver_products(k: int) -> None:
    ring, ch, ctx, rng = _setup(k, 8)
    g = np.random.default_rng(8)
    x, w = g.integers(-128, 128, (3, 8, 7)), g.integers(-127, 128, (5, 3, 3, 3))
    b = g.integers(-(2**20), 2**20, 5)
    xs = share_tensor(ch, ring, x, "P1", rng, "online", "x")
    ws = share_tensor(ch, ring, w, "P0", rng, "setup", "w")
    bs = share_tensor(ch, ring, b, "P0", rng, "setup", "b")
    z = conv2d(ch, xs, ws, bs, ctx.dealer.conv(x.shape, w.shape, 2, 1), 2, 1, numpy_gemm(ring))
    assert np.array_equal(_reveal(z), conv2d_int(x, w, 2, 1) + b[:, None, None])
    v, wl = g.integers(-128, 128, 40), g.integers(-127, 128, (6, 40))
    vs = share_tensor(ch, ring, v, "P1", rng, "online", "v")
    wls = share_tensor(ch, ring, wl, "P0", rng, "setup", "w")
    bls = share_tensor(ch, ring, b[:1].repeat(6), "P0", rng, "setup", "b")
    z = linear(ch, vs, wls, bls, ctx.dealer.matmul(1, 40, 6), numpy_gemm(ring))
    assert np.array_equal(_reveal(z), linear_int(v, wl) + b[0])
    u = share_tensor(ch, ring, x, "P0", rng, "online", "u")
    assert np.array_equal(_reveal(mul(ch, xs, u, ctx.dealer.elementwise(x.shape))), x * x)


# ---------------------------------------------------------------- errors


def test_triple_used_twice_is_refused() -> None:
    ring, ch, ctx, rng = _setup(32, 9)
    x = share_tensor(ch, ring, np.arange(6), "P0", rng, "online", "x")
    t = ctx.dealer.elementwise((6,))
    mul(ch, x, x, t)
    with pytest.raises(TripleReuseError, match="already used"):
        mul(ch, x, x, t)
    bt = ctx.dealer.and_words((4,))
    xb = bo.public(np.arange(4), (4,))
    from hwgen.secure.beaver import and_
    and_(ch, xb, xb, bt)
    with pytest.raises(TripleReuseError, match="AND triple"):
        and_(ch, xb, xb, bt)


def test_share_mismatches_are_clear_errors() -> None:
    r32, ch, ctx, rng = _setup(32, 10)
    r64 = Ring(64)
    a = share_tensor(ch, r32, np.arange(6), "P0", rng, "online", "a")
    b = share_tensor(ch, r64, np.arange(6), "P0", rng, "online", "b")
    c = share_tensor(ch, r32, np.arange(4), "P0", rng, "online", "c")
    with pytest.raises(ShareError, match=r"shares of Z_2\^32 and Z_2\^64"):
        a + b
    with pytest.raises(ShareError, match=r"shape \(6,\) and \(4,\)"):
        a - c
    with pytest.raises(ShareError, match="triple over Z_2\\^32 used with shares of Z_2\\^64"):
        mul(ch, b, b, ctx.dealer.elementwise((6,)))
    with pytest.raises(ShareError, match="triple shaped"):
        mul(ch, a, a, ctx.dealer.elementwise((5,)))
    with pytest.raises(ShareError, match="ring width must be 32 or 64"):
        Ring(16)
    with pytest.raises(ShareError, match="differ in shape"):
        AShare(r32, (np.zeros(3, np.uint64), np.zeros(4, np.uint64)))


def test_csprng_seeded_only_on_request() -> None:
    assert np.array_equal(CSPRNG(3).words(8), CSPRNG(3).words(8))
    assert not np.array_equal(CSPRNG().words(8), CSPRNG().words(8))


# ---------------------------------------------------------------- security (uniformity)


def _byte_p(data: bytes) -> float:
    counts = np.bincount(np.frombuffer(data, np.uint8), minlength=256)
    return float(chisquare(counts).pvalue)


def _views(img_index: int, seed: int):
    qm = build_qmodel("tiny_cnn")
    images, _ = load_mnist_sample()
    ring, ch, ctx, rng = _setup(32, seed, keep=True)
    sm = share_model(qm, ring, ch, rng)
    own = {p: [wire_bytes(s.shares[i], 4) for s in (w for pair in sm.params.values()
                                                     for w in pair)]
           for i, p in enumerate(("P0", "P1"))}
    secure_infer(sm, quantize_input(images[img_index]), ch, ctx.dealer, ctx.dealer64, rng)
    return {p: b"".join(v) for p, v in ch.views.items()}, {p: b"".join(v) for p, v in own.items()}


def test_views_and_shares_are_uniform() -> None:
    views, own = _views(0, 20)
    for p in ("P0", "P1"):
        assert len(views[p]) >= 10**5 and len(own[p]) >= 10**4
        assert _byte_p(views[p]) > P_MIN, f"{p}'s received bytes are not uniform"
        assert _byte_p(own[p]) > P_MIN, f"{p}'s weight shares are not uniform"
    # the test has power: the plaintext weights (int8 in 4-byte words) fail it at once
    qm = build_qmodel("tiny_cnn")
    plain = wire_bytes(Ring(32).encode(qm.layers[0].weight.repeat(50)), 4)
    assert _byte_p(plain) < 1e-9


def test_view_of_two_images_indistinguishable() -> None:
    a, _ = _views(0, 30)
    b, _ = _views(1, 31)
    for p in ("P0", "P1"):
        ha = np.bincount(np.frombuffer(a[p], np.uint8), minlength=256)
        hb = np.bincount(np.frombuffer(b[p], np.uint8), minlength=256)
        assert chi2_contingency(np.stack([ha, hb])).pvalue > P_MIN
    # the same test separates two inputs sent in the clear (a masked-free sharing would leak)
    images, _ = load_mnist_sample()
    ia = np.bincount(quantize_input(images[0]).view(np.uint8).ravel(), minlength=256)
    ib = np.bincount(quantize_input(images[0] // 2).view(np.uint8).ravel(), minlength=256)
    keep = (ia + ib) > 0
    assert chi2_contingency(np.stack([ia[keep], ib[keep]])).pvalue < 1e-3


def test_open_shares_counts_bytes() -> None:
    ring, ch, ctx, rng = _setup(32, 11)
    x = share_tensor(ch, ring, np.arange(10), "P0", rng, "online", "x")
    ch.reset()
    assert list(ring.decode(open_shares(ch, x, "t"))) == list(range(10))
    assert ch.received("P0", "online") == ch.received("P1", "online") == 40
    assert ch.rounds["online"] == 1
