"""Explicit messages between P0, P1 and the dealer, so communication is counted, not estimated.

``exchange`` is one online round: P0 and P1 each send one array to the other at the same time
(the opening of masked values). ``deal`` is a one-way offline message from the dealer. Every
message records its sender, receiver, phase, tag and the exact number of bytes on the wire
(``bytes_per_word`` bytes per element: k/8 for ring elements, 8 for a 64-bit boolean word).
With ``keep_views`` the bytes each party receives are kept for the security tests.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Message", "Channel", "PARTIES"]

PARTIES = ("P0", "P1")


@dataclass(frozen=True)
class Message:
    phase: str  # "setup" (model sharing), "offline" (triples), "online"
    sender: str
    receiver: str
    tag: str
    nbytes: int


def wire_bytes(a: np.ndarray, bytes_per_word: int) -> bytes:
    """The serialisation: each word little-endian in ``bytes_per_word`` bytes."""
    b = np.ascontiguousarray(a, dtype="<u8").reshape(-1).view(np.uint8).reshape(-1, 8)
    return b[:, :bytes_per_word].tobytes()


@dataclass
class Channel:
    keep_views: bool = False
    messages: list[Message] = field(default_factory=list)
    rounds: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    views: dict[str, list[bytes]] = field(default_factory=lambda: {p: [] for p in PARTIES})

    def _send(self, phase: str, sender: str, receiver: str, tag: str, payload: np.ndarray,
              bpw: int) -> None:
        self.messages.append(Message(phase, sender, receiver, tag, int(payload.size) * bpw))
        if self.keep_views and receiver in self.views:
            self.views[receiver].append(wire_bytes(payload, bpw))

    def exchange(self, tag: str, from0: np.ndarray, from1: np.ndarray, bpw: int,
                 phase: str = "online") -> tuple[np.ndarray, np.ndarray]:
        """One round: P0 sends ``from0`` to P1, P1 sends ``from1`` to P0. Returns what
        (P0, P1) received."""
        self._send(phase, "P0", "P1", tag, from0, bpw)
        self._send(phase, "P1", "P0", tag, from1, bpw)
        self.rounds[phase] += 1
        return from1, from0

    def send(self, phase: str, sender: str, receiver: str, tag: str, payload: np.ndarray,
             bpw: int, new_round: bool = True) -> np.ndarray:
        self._send(phase, sender, receiver, tag, payload, bpw)
        if new_round:
            self.rounds[phase] += 1
        return payload

    def deal(self, receiver: str, tag: str, payload: np.ndarray, bpw: int) -> np.ndarray:
        """Dealer -> party (offline; input-independent, so all of it can precede the input)."""
        self._send("offline", "dealer", receiver, tag, payload, bpw)
        return payload

    def received(self, party: str, phase: str) -> int:
        return sum(m.nbytes for m in self.messages if m.receiver == party and m.phase == phase)

    def sent(self, party: str, phase: str) -> int:
        return sum(m.nbytes for m in self.messages if m.sender == party and m.phase == phase)

    def count(self, party: str, phase: str) -> int:
        return sum(1 for m in self.messages if m.receiver == party and m.phase == phase)

    def reset(self) -> None:
        self.messages.clear()
        self.rounds.clear()
        for v in self.views.values():
            v.clear()
