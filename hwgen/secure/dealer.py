"""The trusted dealer: Beaver triples from a cryptographically secure generator.

Randomness is SHAKE-256 in counter mode under a 256-bit key drawn from ``secrets`` (the OS
CSPRNG); ``seed`` replaces the key for reproducible tests only. Triples:

* ``elementwise(shape)``: c = a·b elementwise;
* ``matmul(m, k, n)``: C = A @ B;
* ``conv(x_shape, w_shape, stride, padding)``: C = conv2d(A, B) (A shaped like the input,
  B like the weight);
* ``and_words(shape)``: boolean words, c = a & b (bitwise), XOR-shared.

Each triple is one-time: ``use()`` marks it spent and a second ``use()`` raises
``TripleReuseError`` (reusing a triple's masks would let the other party subtract two
openings and learn the difference of two secrets).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field

import numpy as np

from hwgen.secure.channel import Channel
from hwgen.secure.ring import AShare, BShare, Ring
from hwgen.secure.tensor import conv_ring, matmul_ring

__all__ = ["CSPRNG", "Dealer", "Triple", "BoolTriple", "TripleReuseError"]


class TripleReuseError(RuntimeError):
    """A Beaver triple was presented a second time."""


class CSPRNG:
    """SHAKE-256(key ‖ counter) stream of uint64 words."""

    def __init__(self, seed: int | None = None) -> None:
        if seed is None:
            self._key = secrets.token_bytes(32)
        else:
            self._key = hashlib.sha256(b"hwgen-test-seed" + int(seed).to_bytes(16, "little",
                                                                                signed=True)).digest()
        self._ctr = 0

    def words(self, shape) -> np.ndarray:
        n = int(np.prod(shape, dtype=np.int64))
        self._ctr += 1
        raw = hashlib.shake_256(self._key + self._ctr.to_bytes(16, "little")).digest(8 * n)
        return np.frombuffer(raw, dtype="<u8").astype(np.uint64).reshape(shape)

    def ring(self, ring: Ring, shape) -> np.ndarray:
        return self.words(shape) & ring.mask


@dataclass(eq=False)
class Triple:
    """Arithmetic Beaver triple: shares of a, b and c = a ∘ b (∘ = elementwise/matmul/conv)."""

    kind: str
    a: AShare
    b: AShare
    c: AShare
    used: bool = field(default=False)
    ident: int = 0

    def use(self) -> Triple:
        if self.used:
            raise TripleReuseError(f"Beaver triple #{self.ident} ({self.kind}) was already used")
        self.used = True
        return self


@dataclass(eq=False)
class BoolTriple:
    a: BShare
    b: BShare
    c: BShare
    used: bool = field(default=False)
    ident: int = 0

    def use(self) -> BoolTriple:
        if self.used:
            raise TripleReuseError(f"AND triple #{self.ident} was already used")
        self.used = True
        return self


class Dealer:
    def __init__(self, ring: Ring, channel: Channel, seed: int | None = None) -> None:
        self.ring = ring
        self.ch = channel
        self.rng = CSPRNG(seed)
        self._n = 0

    def _share(self, value: np.ndarray, tag: str) -> AShare:
        s0 = self.rng.ring(self.ring, value.shape)
        s1 = self.ring.reduce(value - s0)
        self.ch.deal("P0", tag, s0, self.ring.nbytes)
        self.ch.deal("P1", tag, s1, self.ring.nbytes)
        return AShare(self.ring, (s0, s1))

    def _triple(self, kind: str, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> Triple:
        self._n += 1
        return Triple(kind, self._share(a, kind + ".a"), self._share(b, kind + ".b"),
                      self._share(self.ring.reduce(c), kind + ".c"), ident=self._n)

    def elementwise(self, shape) -> Triple:
        a, b = self.rng.ring(self.ring, shape), self.rng.ring(self.ring, shape)
        return self._triple("elementwise", a, b, a * b)

    def matmul(self, m: int, k: int, n: int) -> Triple:
        a, b = self.rng.ring(self.ring, (m, k)), self.rng.ring(self.ring, (k, n))
        return self._triple("matmul", a, b, matmul_ring(a, b))

    def conv(self, x_shape, w_shape, stride: int, padding: int) -> Triple:
        a, b = self.rng.ring(self.ring, x_shape), self.rng.ring(self.ring, w_shape)
        return self._triple("conv", a, b, conv_ring(a, b, stride, padding))

    def and_words(self, shape) -> BoolTriple:
        a, b = self.rng.words(shape), self.rng.words(shape)
        self._n += 1
        parts = []
        for v, tag in ((a, "and.a"), (b, "and.b"), (a & b, "and.c")):
            s0 = self.rng.words(shape)
            self.ch.deal("P0", tag, s0, 8)
            self.ch.deal("P1", tag, s0 ^ v, 8)
            parts.append(BShare((s0, s0 ^ v)))
        return BoolTriple(*parts, ident=self._n)
