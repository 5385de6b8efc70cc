"""Two-party inference of a QModel on shares: P0 = model owner, P1 = client.

Setup (once per model): the owner shares every weight and bias with the client. Online (per
image): the client shares its int8 image; conv/linear layers are Beaver products whose local
GEMMs run on each party's own ``gemm`` engine (NumPy, or the simulated share-mode accelerator);
requant/ReLU/pools are the exact boolean circuits of ``hwgen.secure.boolean``; the owner sends
its share of the int8 logits to the client, who reconstructs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hwgen.errors import HwgenError
from hwgen.quant.qmodel import QAvgPool, QConv, QFlatten, QLinear, QMaxPool, QModel
from hwgen.secure import boolean as bo
from hwgen.secure.beaver import Gemm, conv2d, linear, numpy_gemm
from hwgen.secure.channel import Channel
from hwgen.secure.dealer import CSPRNG, Dealer
from hwgen.secure.ring import AShare, BShare, Ring, ShareError

__all__ = ["SecureModel", "share_tensor", "share_model", "secure_infer"]


def share_tensor(ch: Channel, ring: Ring, x, owner: str, rng: CSPRNG, phase: str, tag: str
                 ) -> AShare:
    """``owner`` keeps a random r and sends x − r to the other party."""
    v = ring.encode(x)
    r = rng.ring(ring, v.shape)
    other = "P1" if owner == "P0" else "P0"
    sent = ch.send(phase, owner, other, tag, ring.reduce(v - r), ring.nbytes)
    return AShare(ring, (r, sent) if owner == "P0" else (sent, r))


@dataclass
class SecureModel:
    qmodel: QModel
    ring: Ring
    params: dict[str, tuple[AShare, AShare]] = field(default_factory=dict)


def share_model(qm: QModel, ring: Ring, ch: Channel, rng: CSPRNG) -> SecureModel:
    for lay in qm.layers:
        if lay.inputs:  # secure_infer walks a chain: each layer on the previous one's output
            raise HwgenError(
                f"model {qm.name}: layer {lay.name} ({lay.kind}) reads {', '.join(lay.inputs)}; "
                "secure inference runs straight-line models only (no residual Add or Concat)"
            )
    sm = SecureModel(qm, ring)
    for lay in qm.layers:
        if isinstance(lay, QConv | QLinear):
            w = share_tensor(ch, ring, lay.weight, "P0", rng, "setup", f"{lay.name}.w")
            b = share_tensor(ch, ring, lay.bias, "P0", rng, "setup", f"{lay.name}.b")
            sm.params[lay.name] = (w, b)
    return sm


def _arith(ctx: bo.Ctx, x: AShare | BShare) -> AShare:
    return x if isinstance(x, AShare) else bo.b2a(ctx, x, 8, ctx.ring, True, ctx.dealer)


def secure_infer(sm: SecureModel, x_int8: np.ndarray, ch: Channel, dealer: Dealer,
                 dealer64: Dealer, client_rng: CSPRNG, gemm: Gemm | None = None,
                 trace: list | None = None) -> np.ndarray:
    """One image (C, H, W) int8 -> the int8 logits reconstructed by the client."""
    qm, ring = sm.qmodel, sm.ring
    if dealer.ring != ring:
        raise ShareError(f"dealer produces triples over {dealer.ring}, model shared over {ring}")
    x_int8 = np.asarray(x_int8)
    if x_int8.dtype != np.int8 or x_int8.shape != tuple(qm.in_shape):
        raise ShareError(f"input must be int8 {tuple(qm.in_shape)}, got {x_int8.dtype} "
                         f"{x_int8.shape}")
    gemm = gemm or numpy_gemm(ring)
    ctx = bo.Ctx(ch, dealer, dealer64, ring)
    x: AShare | BShare = share_tensor(ch, ring, x_int8, "P1", client_rng, "online", "image")
    for lay in qm.layers:
        if isinstance(lay, QConv):
            w, b = sm.params[lay.name]
            xa = _arith(ctx, x)
            t = dealer.conv(xa.shape, w.shape, lay.stride, lay.padding)
            acc = conv2d(ch, xa, w, b, t, lay.stride, lay.padding, gemm)
            per_c = (-1, 1, 1)
            x = bo.requant(ctx, acc, lay.multiplier.reshape(per_c), lay.shift.reshape(per_c),
                           lay.act_min, lay.act_max)
        elif isinstance(lay, QLinear):
            w, b = sm.params[lay.name]
            xa = _arith(ctx, x)
            t = dealer.matmul(1, w.shape[1], w.shape[0])
            acc = linear(ch, xa, w, b, t, gemm)
            x = bo.requant(ctx, acc, lay.multiplier, lay.shift, lay.act_min, lay.act_max)
        elif isinstance(lay, QMaxPool):
            if isinstance(x, AShare):
                x = bo.a2b(ctx, x, ring.k)  # not reached in the zoo (pools follow a conv)
            x = bo.maxpool(ctx, x, lay.kernel, lay.stride)
        elif isinstance(lay, QAvgPool):
            x = bo.avgpool(ctx, _arith(ctx, x), lay.kernel, lay.stride)
        elif isinstance(lay, QFlatten):
            x = x.map(lambda s: s.reshape(-1)) if isinstance(x, AShare) else \
                x.local(lambda s: s.reshape(-1))
        else:
            raise TypeError(f"layer {lay.name}: {type(lay).__name__} has no secure protocol")
        if trace is not None:
            trace.append((lay.name, x))
    if isinstance(x, AShare):
        x = bo.a2b(ctx, x, ring.k)
    return bo.reveal_bool(ch, x, "P1", 1).astype(np.int8)
