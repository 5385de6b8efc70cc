"""``hwgen sim-secure``: two-party mnist_cnn inference with each party's Beaver GEMMs on its
own simulated share-mode accelerator (a ``ShareGemm`` in Verilator, one process per party).

"Accelerator" here means the share-mode GEMM engine: the SystolicArray in ring arithmetic
(Z_2^k) with its operand memories, skew feeders, deskew and an accumulate-into-output memory
(``hwgen.rtl.share_gemm``). The host (the party's CPU) im2cols the opened masked input beside
its triple share and loads the operands; the non-linear layers run in the NumPy protocol.
"""

from __future__ import annotations

import secrets
import tempfile
import threading
import time
from multiprocessing.connection import Listener
from pathlib import Path

import numpy as np

from hwgen.config import ArrayConfig
from hwgen.errors_compat import UserError
from hwgen.quant.qmodel import QConv, QLinear, QModel
from hwgen.rtl.share_gemm import ShareGemm, gemm_layout
from hwgen.secure.beaver import GemmJob
from hwgen.secure.channel import Channel
from hwgen.secure.dealer import CSPRNG, Dealer
from hwgen.secure.infer import secure_infer, share_model
from hwgen.secure.ring import Ring
from hwgen.sim.runner import build_verilog, run_cocotb

__all__ = ["run_secure", "engine_for", "RtlGemm"]


def _gemm_shapes(qm: QModel) -> list[tuple[str, int, int, int]]:
    """(layer, M, K', N) of every Beaver GEMM (K' = 2K: [d | a_i] × [w_i ; e])."""
    out = []
    for lay in qm.layers:
        if isinstance(lay, QConv):
            cout, oh, ow = lay.out_shape
            out.append((lay.name, oh * ow, 2 * lay.weight[0].size, cout))
        elif isinstance(lay, QLinear):
            out.append((lay.name, 1, 2 * lay.weight.shape[1], lay.weight.shape[0]))
    return out


def engine_for(qm: QModel, cfg: ArrayConfig) -> ShareGemm:
    lay = [gemm_layout(cfg, m, n, k) for _, m, k, n in _gemm_shapes(qm)]
    return ShareGemm(cfg, *(max(x[w] for x in lay) for w in ("a_words", "b_words", "o_words")))


class RtlGemm:
    """The two parties' engines: Verilator processes serving GEMM jobs over local sockets."""

    def __init__(self, qm: QModel, cfg: ArrayConfig) -> None:
        self.cfg = cfg
        self.tmp = tempfile.TemporaryDirectory(prefix="hwgen-secure-")
        key = secrets.token_bytes(16)
        self.listener = Listener(str(Path(self.tmp.name) / "sock"), family="AF_UNIX",
                                 authkey=key)
        verilog = build_verilog(engine_for(qm, cfg), "share_gemm")
        self.results: dict[int, object] = {}
        self.threads = []
        for party in (0, 1):
            env = {"HWGEN_SECURE_ADDR": self.listener.address, "HWGEN_SECURE_KEY": key.hex(),
                   "HWGEN_SECURE_PARTY": str(party)}
            th = threading.Thread(target=self._sim, args=(party, verilog, env, qm.name),
                                  daemon=True)
            th.start()
            self.threads.append(th)
        self.conns = {}
        for _ in (0, 1):
            conn = self.listener.accept()
            self.conns[conn.recv()] = conn
        for conn in self.conns.values():
            conn.send((cfg.rows, cfg.cols, cfg.acc_width))
        self.cycles = {0: 0, 1: 0}
        self.beats = {0: 0, 1: 0}

    def _sim(self, party: int, verilog: str, env: dict, model: str) -> None:
        self.results[party] = run_cocotb(
            verilog=verilog, toplevel="share_gemm", test_module="hwgen.sim.tb.share_gemm_tb",
            config_name=f"secure_{model}_{self.cfg}_k{self.cfg.acc_width}_p{party}", env=env)

    def __call__(self, jobs: list[GemmJob]) -> list[np.ndarray]:
        for party, x, y, init in jobs:  # both engines work at once
            self.conns[party].send((x, y, init))
            lay = gemm_layout(self.cfg, x.shape[0], y.shape[1], x.shape[1])
            self.beats[party] += lay["a_words"] + lay["b_words"] + 2 * lay["o_words"]
        out = []
        for party, *_ in jobs:
            z, cyc = self.conns[party].recv()
            self.cycles[party] += cyc
            out.append(z)
        return out

    def close(self) -> None:
        for conn in self.conns.values():
            conn.send(None)
            conn.close()
        for th in self.threads:
            th.join()
        self.listener.close()
        self.tmp.cleanup()
