"""cocotb body for ``ShareGemm``: load X, Y, O through the load port, pulse ``start``, await
``done`` (no Python per compute cycle), read O back.

Two modes, one ``run_gemm``: with ``HWGEN_PARAMS`` naming a job file (unit tests) every job
of ``jobs.npz`` runs and the results go to ``results.npz``; with ``HWGEN_SECURE_ADDR`` the
TB serves GEMM jobs from the secure-inference driver over a local socket until it sends None
(one simulator process = one party's accelerator).
"""

from __future__ import annotations

import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from hwgen.sim.tb.common import load_params

__all__ = ["run_gemm"]


def _tiles(mat: np.ndarray, rows: int, cols: int) -> np.ndarray:
    out = np.zeros((rows, cols), np.uint64)
    out[: mat.shape[0], : mat.shape[1]] = mat
    return out


async def _load(dut, sel: int, lanes: np.ndarray, k: int, burst: int, word_bits: int) -> None:
    """One host transaction per burst of ``burst`` words, then wait for ``ld_idle``."""
    dt = "<u4" if k == 32 else "<u8"
    pad = word_bits // k - lanes.shape[1]
    if pad:
        lanes = np.hstack([lanes, np.zeros((lanes.shape[0], pad), np.uint64)])
    raw = np.ascontiguousarray(lanes.astype(dt)).tobytes()
    nb = word_bits // 8
    dut.ld_sel.value = sel
    for a in range(0, lanes.shape[0], burst):
        n = min(burst, lanes.shape[0] - a)
        dut.ld_addr.value = a
        dut.ld_count.value = n
        dut.ld_data.value = int.from_bytes(raw[a * nb : (a + n) * nb], "little")
        dut.ld_valid.value = 1
        await RisingEdge(dut.clk)
        dut.ld_valid.value = 0
        await RisingEdge(dut.ld_idle)


async def _read(dut, n_words: int, lanes: int, k: int, burst: int) -> np.ndarray:
    nb = lanes * k // 8
    raw = b""
    for a in range(0, n_words, burst):
        n = min(burst, n_words - a)
        dut.rd_addr.value = a
        dut.rd_count.value = n
        dut.rd_valid.value = 1
        await RisingEdge(dut.clk)
        dut.rd_valid.value = 0
        await RisingEdge(dut.rd_idle)
        full = int(dut.rd_data.value).to_bytes(burst * nb, "little")
        raw += full[(burst - n) * nb :]
    dt = "<u4" if k == 32 else "<u8"
    return np.frombuffer(raw, dtype=dt).astype(np.uint64).reshape(n_words, lanes)


async def run_gemm(dut, r: int, c: int, k: int, x: np.ndarray, y: np.ndarray,
                   o: np.ndarray, burst: int = 64) -> tuple[np.ndarray, int]:
    """O + X @ Y mod 2**k on the engine; returns (result, compute cycles)."""
    m_rows, kk = x.shape
    n_cols = y.shape[1]
    mt, nt = -(-m_rows // r), -(-n_cols // c)
    xa = _tiles(x, mt * r, kk).reshape(mt, r, kk).transpose(0, 2, 1).reshape(mt * kk, r)
    yb = _tiles(y, kk, nt * c).reshape(kk, nt, c).transpose(1, 0, 2).reshape(nt * kk, c)
    oo = _tiles(o, mt * r, nt * c).reshape(mt, r, nt, c).transpose(2, 0, 1, 3).reshape(-1, c)
    wbits = max(r, c) * k
    await _load(dut, 0, xa, k, burst, wbits)
    await _load(dut, 1, yb, k, burst, wbits)
    await _load(dut, 2, oo, k, burst, wbits)
    dut.m_tiles.value, dut.n_tiles.value, dut.k_len.value = mt, nt, kk
    dut.rows_total.value = mt * nt * r
    dut.start.value = 1
    await RisingEdge(dut.clk)
    dut.start.value = 0
    await RisingEdge(dut.done)
    cycles = int(dut.cycles.value)
    res = (await _read(dut, oo.shape[0], c, k, burst)).reshape(nt, mt, r, c).transpose(1, 2, 0, 3)
    res = res.reshape(mt * r, nt * c)[:m_rows, :n_cols]
    return res, cycles


async def _reset(dut) -> None:
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns", impl="gpi").start())
    for name in ("ld_valid", "ld_sel", "ld_addr", "ld_count", "ld_data", "start", "m_tiles",
                 "n_tiles", "k_len", "rows_total", "rd_valid", "rd_addr", "rd_count"):
        getattr(dut, name).value = 0
    dut.rst.value = 1
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


@cocotb.test()
async def share_gemm(dut) -> None:
    await _reset(dut)
    addr = os.environ.get("HWGEN_SECURE_ADDR")
    if addr:
        from multiprocessing.connection import Client

        conn = Client(addr, authkey=bytes.fromhex(os.environ["HWGEN_SECURE_KEY"]))
        conn.send(int(os.environ["HWGEN_SECURE_PARTY"]))
        r, c, k, burst = conn.recv()
        while (job := conn.recv()) is not None:
            conn.send(await run_gemm(dut, r, c, k, *job, burst=burst))
        conn.close()
        return
    p = load_params()
    jobs = np.load(p["jobs"])
    out = {}
    for j in range(p["n_jobs"]):
        z, cyc = await run_gemm(dut, p["rows"], p["cols"], p["k"], jobs[f"x{j}"], jobs[f"y{j}"],
                                jobs[f"o{j}"], burst=p["burst"])
        out[f"z{j}"] = z
        out[f"cycles{j}"] = np.array(cyc)
    np.savez(p["results"], **out)
