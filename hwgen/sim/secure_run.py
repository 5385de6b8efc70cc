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
from hwgen.quant.qmodel import QConv, QLinear, QModel
from hwgen.rtl.share_gemm import ShareGemm, gemm_layout
from hwgen.secure.beaver import GemmJob
from hwgen.secure.channel import Channel
from hwgen.secure.dealer import CSPRNG, Dealer
from hwgen.secure.infer import secure_infer, share_model
from hwgen.secure.ring import Ring
from hwgen.sim.runner import build_verilog, run_cocotb

__all__ = ["run_secure", "engine_for", "engine_depths", "RtlGemm"]

BURST = 64  # words per host transaction of the engines' load/read port


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


def engine_depths(qm: QModel, cfg: ArrayConfig) -> tuple[int, int, int]:
    """The operand / output memory depths that fit every GEMM of the model."""
    lay = [gemm_layout(cfg, m, n, k) for _, m, k, n in _gemm_shapes(qm)]
    return tuple(max(x[w] for x in lay) for w in ("a_words", "b_words", "o_words"))


def engine_for(qm: QModel, cfg: ArrayConfig) -> ShareGemm:
    return ShareGemm(cfg, *engine_depths(qm, cfg))


def _cached_verilog(qm: QModel, cfg: ArrayConfig, burst: int) -> str:
    """Amaranth → Verilog of the engine, cached by its parameters and the RTL sources (the
    conversion of the 8x8 engine takes minutes). The component is built only on a miss."""
    import hashlib

    from hwgen.paths import PACKAGE_DIR, sim_build

    depths = engine_depths(qm, cfg)
    h = hashlib.sha256(repr((cfg, depths, burst)).encode())
    for f in sorted((PACKAGE_DIR / "rtl").glob("*.py")):
        h.update(f.read_bytes())
    path = sim_build() / "secure_verilog" / f"share_gemm_{h.hexdigest()[:16]}.v"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(build_verilog(ShareGemm(cfg, *depths, burst=burst), "share_gemm"))
        tmp.replace(path)
    return path.read_text()


class RtlGemm:
    """The two parties' engines: Verilator processes serving GEMM jobs over local sockets."""

    def __init__(self, qm: QModel, cfg: ArrayConfig) -> None:
        self.cfg = cfg
        self.tmp = tempfile.TemporaryDirectory(prefix="hwgen-secure-")
        key = secrets.token_bytes(16)
        self.listener = Listener(str(Path(self.tmp.name) / "sock"), family="AF_UNIX",
                                 authkey=key)
        self.burst = BURST
        verilog = _cached_verilog(qm, cfg, self.burst)
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
            conn.send((cfg.rows, cfg.cols, cfg.acc_width, self.burst))
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


def _party_bytes(ch: Channel) -> dict:
    out = {}
    for p in ("P0", "P1"):
        out[p] = {
            "online_sent": ch.sent(p, "online"), "online_received": ch.received(p, "online"),
            "offline_received": ch.received(p, "offline"),
            "offline_messages": ch.count(p, "offline"),
        }
    return out


def run_secure(model: str, array: ArrayConfig, n: int, k: int = 32,
               plain: dict | None = None) -> dict:
    """Secure inference of n sample images; prints one line per image; returns the summary."""
    from hwgen.datasets import load_mnist_sample
    from hwgen.evaluate import build_qmodel
    from hwgen.golden.run import predict, quantize_input

    t_start = time.perf_counter()
    qm = build_qmodel(model)
    images, labels = load_mnist_sample()
    images, labels = images[:n], labels[:n]
    ring = Ring(k)
    cfg = ArrayConfig.shares(k, array.rows, array.cols, array.mult_latency)
    ch = Channel()
    sm = share_model(qm, ring, ch, CSPRNG())  # the owner's randomness (OS CSPRNG key)
    setup = {p: ch.received(p, "setup") for p in ("P0", "P1")}
    dealer, dealer64 = Dealer(ring, ch), Dealer(Ring(64), ch)
    client_rng = CSPRNG()
    gold = predict(qm, images)
    print(f"[hwgen sim-secure] {model}: 2 parties, ring Z_2^{k}, each party's Beaver GEMMs on "
          f"its own {cfg} share-mode engine in Verilator (building) ...", flush=True)
    t_build = time.perf_counter()
    engines = RtlGemm(qm, cfg)
    per_image = []
    try:
        for i in range(n):
            ch.reset()
            c_before, b_before = dict(engines.cycles), dict(engines.beats)
            t0 = time.perf_counter()
            logits = secure_infer(sm, quantize_input(images[i]), ch, dealer, dealer64,
                                  client_rng, gemm=engines)
            wall = time.perf_counter() - t0
            rec = {
                "index": i, "match": bool(np.array_equal(logits, gold[i])),
                "pred": int(np.argmax(logits)), "golden_pred": int(np.argmax(gold[i])),
                "label": int(labels[i]), "logits": logits.tolist(),
                "cycles": {p: engines.cycles[p] - c_before[p] for p in (0, 1)},
                "io_beats": {p: engines.beats[p] - b_before[p] for p in (0, 1)},
                "bytes": _party_bytes(ch), "rounds_online": ch.rounds["online"], "wall_s": wall,
            }
            per_image.append(rec)
            if i == 0:
                print(f"[hwgen sim-secure] engines up after {t0 - t_build:.1f} s", flush=True)
            print(f"image {i:3d}: reconstructed logits {'==' if rec['match'] else '!='} "
                  f"plaintext int8 logits (bit-exact: {rec['match']}), class {rec['pred']} "
                  f"(golden {rec['golden_pred']}, label {rec['label']}), "
                  f"cycles P0 {rec['cycles'][0]} P1 {rec['cycles'][1]}, {wall:.1f} s",
                  flush=True)
    finally:
        engines.close()
    for p in (0, 1):
        res = engines.results.get(p)
        if res is None or res.failed or res.tests == 0:
            raise RuntimeError(f"party {p}'s engine simulation failed: {res}")
    summary = _summarize(model, cfg, k, per_image, setup, engines.cycles)
    summary["wall_s"] = time.perf_counter() - t_start
    if plain:  # the plaintext accelerator's measured cycles (hwgen sim, run by the caller)
        summary["plaintext"] = plain
    summary["text"] = _text(summary)
    return summary


def _summarize(model, cfg, k, per_image, setup, cycles) -> dict:
    n = len(per_image)
    mean = lambda f: float(np.mean([f(r) for r in per_image])) if n else 0.0  # noqa: E731
    parties = {}
    for i, p in enumerate(("P0", "P1")):
        parties[p] = {
            "online_bytes_sent": mean(lambda r, p=p: r["bytes"][p]["online_sent"]),
            "online_bytes_received": mean(lambda r, p=p: r["bytes"][p]["online_received"]),
            "offline_bytes_received": mean(lambda r, p=p: r["bytes"][p]["offline_received"]),
            "offline_messages": mean(lambda r, p=p: r["bytes"][p]["offline_messages"]),
            "engine_cycles": mean(lambda r, i=i: r["cycles"][i]),
            "engine_io_beats": mean(lambda r, i=i: r["io_beats"][i]),
            "setup_bytes_received": setup[p],
        }
    return {
        "model": model, "array": str(cfg), "ring_bits": k, "n": n,
        "n_match": sum(r["match"] for r in per_image),
        "all_match": all(r["match"] for r in per_image) and n > 0,
        "rounds_online": mean(lambda r: r["rounds_online"]),
        "parties": parties, "per_image": per_image,
        "wall_per_image_s": mean(lambda r: r["wall_s"]),
    }


def _text(s: dict) -> str:
    lines = [
        f"{s['model']} secure inference, ring Z_2^{s['ring_bits']}, {s['array']} share-mode "
        f"engines: {s['n_match']}/{s['n']} images with reconstructed logits bit-exact to the "
        f"plaintext int8 model",
        f"online rounds per inference: {s['rounds_online']:.0f} (offline: the dealer's "
        f"messages are input-independent, 1 round before the input)",
        "per inference     | online sent | online recv | offline recv (triples) | engine "
        "cycles | engine I/O beats",
    ]
    for p, d in s["parties"].items():
        who = "owner" if p == "P0" else "client"
        mb = [d[f] / 1e6 for f in ("online_bytes_sent", "online_bytes_received",
                                    "offline_bytes_received")]
        lines.append(
            f"{p} ({who})  | {mb[0]:8.2f} MB | {mb[1]:8.2f} MB | {mb[2]:8.2f} MB "
            f"({d['offline_messages']:.0f} msgs) | {d['engine_cycles']:.0f} | "
            f"{d['engine_io_beats']:.0f}")
    lines.append(f"model sharing (once): P1 received {s['parties']['P1']['setup_bytes_received']}"
                 f" bytes")
    if "plaintext" in s:
        pl = s["plaintext"]
        c0 = s["parties"]["P0"]["engine_cycles"]
        lines.append(
            f"plaintext accelerator ({s['array'].split()[0]}): {pl['cycles_total']:.0f} cycles/"
            f"inference ({pl['cycles_compute']:.0f} in layers); each party's share engine: "
            f"{c0:.0f} compute cycles = {c0 / pl['cycles_compute']:.2f}x the plaintext layers")
    lines.append(f"wall time: {s['wall_s']:.1f} s total, {s['wall_per_image_s']:.2f} s per "
                 f"image (protocol in NumPy + both engines in Verilator)")
    return "\n".join(lines)
