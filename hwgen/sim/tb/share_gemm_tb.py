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
from cocotb.triggers import ReadOnly, RisingEdge

from hwgen.sim.tb.common import load_params

__all__ = ["pack_words", "unpack_words", "run_gemm"]


def pack_words(lanes: np.ndarray, k: int) -> list[int]:
    """(words, L) ring elements -> one int per word, lane l at bits [l·k, (l+1)·k)."""
    dt = "<u4" if k == 32 else "<u8"
    raw = np.ascontiguousarray(lanes.astype(dt)).tobytes()
    nb = lanes.shape[1] * k // 8
    return [int.from_bytes(raw[i * nb : (i + 1) * nb], "little") for i in range(lanes.shape[0])]


def unpack_words(words: list[int], lanes: int, k: int) -> np.ndarray:
    nb = lanes * k // 8
    raw = b"".join(w.to_bytes(nb, "little") for w in words)
    dt = "<u4" if k == 32 else "<u8"
    return np.frombuffer(raw, dtype=dt).astype(np.uint64).reshape(len(words), lanes)


def _tiles(mat: np.ndarray, rows: int, cols: int) -> np.ndarray:
    out = np.zeros((rows, cols), np.uint64)
    out[: mat.shape[0], : mat.shape[1]] = mat
    return out


async def _load(dut, sel: int, words: list[int]) -> None:
    dut.ld_sel.value = sel
    dut.ld_en.value = 1
    for addr, w in enumerate(words):
        dut.ld_addr.value = addr
        dut.ld_data.value = w
        await RisingEdge(dut.clk)
    dut.ld_en.value = 0


async def run_gemm(dut, r: int, c: int, k: int, x: np.ndarray, y: np.ndarray,
                   o: np.ndarray) -> tuple[np.ndarray, int]:
    """O + X @ Y mod 2**k on the engine; returns (result, compute cycles)."""
    m_rows, kk = x.shape
    n_cols = y.shape[1]
    mt, nt = -(-m_rows // r), -(-n_cols // c)
    xa = _tiles(x, mt * r, kk).reshape(mt, r, kk).transpose(0, 2, 1).reshape(mt * kk, r)
    yb = _tiles(y, kk, nt * c).reshape(kk, nt, c).transpose(1, 0, 2).reshape(nt * kk, c)
    oo = _tiles(o, mt * r, nt * c).reshape(mt, r, nt, c).transpose(2, 0, 1, 3).reshape(-1, c)
    await _load(dut, 0, pack_words(xa, k))
    await _load(dut, 1, pack_words(yb, k))
    await _load(dut, 2, pack_words(oo, k))
    dut.m_tiles.value, dut.n_tiles.value, dut.k_len.value = mt, nt, kk
    dut.rows_total.value = mt * nt * r
    dut.start.value = 1
    await RisingEdge(dut.clk)
    dut.start.value = 0
    await RisingEdge(dut.done)
    cycles = int(dut.cycles.value)
    words = []
    n = oo.shape[0]
    for a in range(n + 1):
        dut.rd_addr.value = min(a, n - 1)
        await ReadOnly()
        if a:
            words.append(int(dut.rd_data.value))
        await RisingEdge(dut.clk)
    res = unpack_words(words, c, k).reshape(nt, mt, r, c).transpose(1, 2, 0, 3)
    res = res.reshape(mt * r, nt * c)[:m_rows, :n_cols]
    return res, cycles


async def _reset(dut) -> None:
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns", impl="gpi").start())
    for name in ("ld_en", "ld_sel", "ld_addr", "ld_data", "start", "m_tiles", "n_tiles",
                 "k_len", "rows_total", "rd_addr"):
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
        r, c, k = conn.recv()
        while (job := conn.recv()) is not None:
            conn.send(await run_gemm(dut, r, c, k, *job))
        conn.close()
        return
    p = load_params()
    jobs = np.load(p["jobs"])
    out = {}
    for j in range(p["n_jobs"]):
        z, cyc = await run_gemm(dut, p["rows"], p["cols"], p["k"], jobs[f"x{j}"], jobs[f"y{j}"],
                                jobs[f"o{j}"])
        out[f"z{j}"] = z
        out[f"cycles{j}"] = np.array(cyc)
    np.savez(p["results"], **out)
