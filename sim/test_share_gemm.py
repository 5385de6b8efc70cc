# amaranth: UnusedElaboratable=no
"""ShareGemm (share-mode MAC array + feeders): bit-exact in Verilator against the NumPy
protocol's local products of both parties; the reconstruction equals the plaintext int32
accumulators."""

from __future__ import annotations

import numpy as np
import pytest

from hwgen.config import ArrayConfig
from hwgen.golden.ops import conv2d_int, linear_int
from hwgen.paths import sim_build
from hwgen.rtl.share_gemm import ShareGemm, gemm_layout, share_gemm_golden
from hwgen.secure.beaver import conv2d, linear, numpy_gemm
from hwgen.secure.channel import Channel
from hwgen.secure.dealer import CSPRNG, Dealer
from hwgen.secure.infer import share_tensor
from hwgen.secure.ring import Ring
from hwgen.sim.runner import run_unit


def _protocol_jobs(k: int, seed: int):
    """Record every local GEMM of a Beaver conv and linear (both parties) + plaintext refs."""
    ring, ch, rng = Ring(k), Channel(), CSPRNG(seed)
    dealer = Dealer(ring, ch, seed=seed + 1)
    jobs: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    base = numpy_gemm(ring)

    def rec(batch):
        zs = base(batch)
        jobs.extend((*job, z) for job, z in zip(batch, zs, strict=True))
        return zs

    g = np.random.default_rng(seed)
    x, w = g.integers(-128, 128, (2, 6, 5)), g.integers(-127, 128, (5, 2, 3, 3))
    b = g.integers(-(2**20), 2**20, 5)
    sh = [share_tensor(ch, ring, v, o, rng, "online", "t") for v, o in
          ((x, "P1"), (w, "P0"), (b, "P0"))]
    conv2d(ch, *sh, dealer.conv(x.shape, w.shape, 1, 1), 1, 1, rec)
    v, wl, bl = g.integers(-128, 128, 20), g.integers(-127, 128, (7, 20)), b[:1].repeat(7)
    sh = [share_tensor(ch, ring, a, o, rng, "online", "t") for a, o in
          ((v, "P1"), (wl, "P0"), (bl, "P0"))]
    linear(ch, *sh, dealer.matmul(1, 20, 7), rec)
    refs = [conv2d_int(x, w, 1, 1) + b[:, None, None], linear_int(v, wl) + bl]
    # a GEMM with K < R and ragged tiles
    full = ring.mask
    xr = g.integers(0, 2**63, (5, 2), dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    yr = g.integers(0, 2**63, (2, 5), dtype=np.uint64) * np.uint64(3)
    xr, yr = xr & full, yr & full
    xr[0, 0], yr[0, 0] = full, full  # (2**k - 1)**2 wraps
    o = g.integers(0, 2**31, (5, 5)).astype(np.uint64)
    jobs.append((0, xr, yr, o, base([(0, xr, yr, o)])[0]))
    return ring, jobs, refs


@pytest.mark.rtl
@pytest.mark.parametrize("rows,cols,k", [(3, 4, 32), (2, 2, 64)])
def test_share_gemm_rtl(rows: int, cols: int, k: int) -> None:
    cfg = ArrayConfig.shares(k, rows, cols)
    ring, jobs, refs = _protocol_jobs(k, 3)
    lay = [gemm_layout(cfg, x.shape[0], y.shape[1], x.shape[1]) for _, x, y, _, _ in jobs]
    depth = {w: max(L[w] for L in lay) for w in ("a_words", "b_words", "o_words")}
    burst = 5  # bursts shorter than most loads: partial last bursts are exercised
    dut = ShareGemm(cfg, depth["a_words"], depth["b_words"], depth["o_words"], burst=burst)
    name = f"share_gemm_{rows}x{cols}_k{k}"
    work = sim_build() / name
    work.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for j, (_, x, y, o, _z) in enumerate(jobs):
        arrays.update({f"x{j}": x, f"y{j}": y, f"o{j}": o})
    np.savez(work / "jobs.npz", **arrays)
    params = {"jobs": str(work / "jobs.npz"), "results": str(work / "results.npz"),
              "n_jobs": len(jobs), "rows": rows, "cols": cols, "k": k, "burst": burst}
    run_unit(dut, toplevel="share_gemm", test_module="hwgen.sim.tb.share_gemm_tb", name=name,
             params=params)
    res = np.load(work / "results.npz")
    for j, (party, x, y, o, want) in enumerate(jobs):
        assert np.array_equal(res[f"z{j}"], want), f"job {j} (party {party}) differs"
        gold = share_gemm_golden(x, y, o, k)
        assert [int(v) for v in res[f"z{j}"].ravel()] == [int(v) for v in gold.ravel()]
        L = lay[j]
        issue = L["m_tiles"] * L["n_tiles"] * max(L["k_len"], rows)
        assert issue <= int(res[f"cycles{j}"]) <= issue + rows + cols + cfg.mult_latency + 8
    # reconstruction of the two parties' engine outputs = plaintext int32 accumulators
    conv0, conv1, lin0, lin1 = (res[f"z{j}"] for j in range(4))
    acc = ring.decode(conv0 + conv1).T.reshape(refs[0].shape)
    assert np.array_equal(acc, refs[0])
    assert np.array_equal(ring.decode(lin0 + lin1).reshape(-1), refs[1])


def test_share_gemm_golden_is_the_protocol_gemm() -> None:
    ring, jobs, _ = _protocol_jobs(32, 4)
    for _, x, y, o, want in jobs:
        gold = share_gemm_golden(x, y, o, 32)
        assert [int(v) for v in gold.ravel()] == [int(v) for v in want.ravel()]


def test_share_gemm_needs_ring_config() -> None:
    with pytest.raises(ValueError, match="share-mode ArrayConfig"):
        ShareGemm(ArrayConfig(2, 2), 4, 4, 4)
