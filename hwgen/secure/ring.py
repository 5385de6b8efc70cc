"""Rings Z_2^k, arithmetic shares (both parties' halves) and XOR (boolean) shares.

A value is held as two uint64 arrays, ``shares[0]`` (party P0, the model owner) and
``shares[1]`` (P1, the client); the simulator keeps both so one process can run the
protocol, but every function that computes on shares uses only that party's half plus what
the ``Channel`` delivered to it. Ring elements live in the low k bits of a uint64; uint64
arithmetic wraps modulo 2**64, so masking with 2**k - 1 reduces modulo 2**k.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ShareError", "Ring", "AShare", "BShare", "ring_of"]

U64 = np.uint64


class ShareError(ValueError):
    """Shares that cannot be combined: a different ring width, shape or party layout."""


@dataclass(frozen=True)
class Ring:
    """Z_2^k for k in {32, 64}."""

    k: int = 32

    def __post_init__(self) -> None:
        if self.k not in (32, 64):
            raise ShareError(f"ring width must be 32 or 64 bits, not {self.k!r}")

    @property
    def mask(self) -> np.uint64:
        return U64((1 << self.k) - 1) if self.k < 64 else U64(0xFFFF_FFFF_FFFF_FFFF)

    @property
    def nbytes(self) -> int:
        return self.k // 8

    def reduce(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=U64) & self.mask

    def encode(self, x) -> np.ndarray:
        """Signed integers -> ring elements (two's complement mod 2**k)."""
        return np.asarray(x, dtype=np.int64).astype(U64) & self.mask

    def decode(self, x: np.ndarray) -> np.ndarray:
        """Ring elements -> signed int64 in [-2**(k-1), 2**(k-1))."""
        x = np.asarray(x, dtype=U64) & self.mask
        if self.k == 64:
            return x.view(np.int64)
        half = U64(1 << (self.k - 1))
        return x.astype(np.int64) - ((x & half) != 0).astype(np.int64) * (1 << self.k)

    def __str__(self) -> str:
        return f"Z_2^{self.k}"


def ring_of(x: object) -> Ring:
    if not isinstance(x, AShare):
        raise ShareError(f"expected arithmetic shares, got {type(x).__name__}")
    return x.ring


@dataclass(frozen=True, eq=False)
class AShare:
    """Additive shares: value = shares[0] + shares[1] mod 2**k."""

    ring: Ring
    shares: tuple[np.ndarray, np.ndarray]

    def __post_init__(self) -> None:
        s0, s1 = self.shares
        if s0.shape != s1.shape:
            raise ShareError(f"the two parties' shares differ in shape: {s0.shape} vs {s1.shape}")
        if s0.dtype != U64 or s1.dtype != U64:
            raise ShareError("shares must be uint64 arrays holding ring elements")

    @property
    def shape(self) -> tuple[int, ...]:
        return self.shares[0].shape

    def _check(self, other: AShare, op: str) -> None:
        if not isinstance(other, AShare):
            raise ShareError(f"cannot {op} arithmetic shares and {type(other).__name__}")
        if other.ring != self.ring:
            raise ShareError(f"cannot {op} shares of {self.ring} and {other.ring}")
        if other.shape != self.shape:
            raise ShareError(f"cannot {op} shares of shape {self.shape} and {other.shape}")

    def map(self, fn) -> AShare:
        """A local, linear rearrangement applied by each party to its own share."""
        return AShare(self.ring, (np.ascontiguousarray(fn(self.shares[0])),
                                  np.ascontiguousarray(fn(self.shares[1]))))

    def __add__(self, other: AShare) -> AShare:
        self._check(other, "add")
        return AShare(self.ring, tuple(self.ring.reduce(a + b) for a, b in
                                       zip(self.shares, other.shares, strict=True)))

    def __sub__(self, other: AShare) -> AShare:
        self._check(other, "subtract")
        return AShare(self.ring, tuple(self.ring.reduce(a - b) for a, b in
                                       zip(self.shares, other.shares, strict=True)))

    def add_public(self, c) -> AShare:
        """+ a public constant: only P0 adds it."""
        c = self.ring.encode(c)
        return AShare(self.ring, (self.ring.reduce(self.shares[0] + c), self.shares[1]))

    def mul_public(self, c) -> AShare:
        """× a public integer (elementwise, broadcast): local at both parties."""
        c = self.ring.encode(c)
        return AShare(self.ring, tuple(self.ring.reduce(s * c) for s in self.shares))


@dataclass(frozen=True, eq=False)
class BShare:
    """XOR shares of 64-bit words: value = shares[0] ^ shares[1] (bit-sliced per element)."""

    shares: tuple[np.ndarray, np.ndarray]

    def __post_init__(self) -> None:
        s0, s1 = self.shares
        if s0.shape != s1.shape or s0.dtype != U64 or s1.dtype != U64:
            raise ShareError("boolean shares must be two uint64 arrays of one shape")

    @property
    def shape(self) -> tuple[int, ...]:
        return self.shares[0].shape

    def local(self, fn) -> BShare:
        """A bitwise-linear map applied by each party to its own share (shift, mask, ...)."""
        return BShare((np.asarray(fn(self.shares[0]), U64), np.asarray(fn(self.shares[1]), U64)))

    def __xor__(self, other: BShare) -> BShare:
        if not isinstance(other, BShare) or other.shape != self.shape:
            raise ShareError("cannot XOR boolean shares of different kinds or shapes")
        return BShare((self.shares[0] ^ other.shares[0], self.shares[1] ^ other.shares[1]))

    def xor_public(self, c) -> BShare:
        return BShare((self.shares[0] ^ np.asarray(c, U64), self.shares[1]))

    def and_public(self, c) -> BShare:
        return self.local(lambda s: s & np.asarray(c, U64))
