"""Opaque references the kiosk puts on the deep links it hands out (``emachi_ref``), and their
completion, counted once however often the webhook says it. Pure: the time is passed in.

A ref is 16 random bytes, base64url; it maps to what the city may learn (the procedure, the
channel, the hour it was opened), never to a person. Refs expire after :data:`TTL`; a completed
ref stays, marked done, until then, so a repeated webhook is answered ``already`` and not counted.
The shell keeps the same records in the Store (``server.counters.records``) so another process,
or this one after a restart, knows them too.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal

__all__ = ["TTL", "RefInfo", "Refs", "Outcome"]

TTL = 30 * 86400.0
MAX_REFS = 200_000

Outcome = Literal["done", "already", "unknown"]


@dataclass(slots=True)
class RefInfo:
    """What a ref stands for: a procedure opened on a channel at an hour (``YYYY-MM-DDTHH``)."""

    procedure: str
    channel: str
    hour: str
    issued: float  # unix seconds
    done: bool = False

    def as_record(self) -> dict[str, object]:
        return {
            "p": self.procedure,
            "c": self.channel,
            "h": self.hour,
            "i": self.issued,
            "d": self.done,
        }

    @classmethod
    def from_record(cls, rec: object) -> RefInfo | None:
        if not isinstance(rec, dict):
            return None
        try:
            return cls(str(rec["p"]), str(rec["c"]), str(rec["h"]), float(rec["i"]), bool(rec["d"]))
        except (KeyError, TypeError, ValueError):
            return None


class Refs:
    """The refs this process knows, with their state."""

    def __init__(self, ttl: float = TTL) -> None:
        self.ttl = ttl
        self.known: dict[str, RefInfo] = {}

    def issue(self, procedure: str, channel: str, hour: str, now: float) -> str:
        """A new ref for a procedure opened on ``channel`` at ``hour``."""
        if len(self.known) >= MAX_REFS:
            self.expire(now)
            while len(self.known) >= MAX_REFS:  # still full: the oldest go first
                self.known.pop(next(iter(self.known)))
        ref = secrets.token_urlsafe(16)
        self.known[ref] = RefInfo(procedure, channel, hour, now)
        return ref

    def learn(self, ref: str, info: RefInfo) -> None:
        """A ref read back from the Store (issued elsewhere, or before a restart)."""
        mine = self.known.get(ref)
        if mine is None or (info.done and not mine.done):
            self.known[ref] = info

    def get(self, ref: str, now: float) -> RefInfo | None:
        info = self.known.get(ref)
        if info is not None and now - info.issued > self.ttl:
            del self.known[ref]
            return None
        return info

    def complete(self, ref: str, now: float) -> tuple[Outcome, RefInfo | None]:
        """Mark ``ref`` completed: ``done`` the first time (count it), ``already`` after that,
        ``unknown`` for a ref never issued or expired."""
        info = self.get(ref, now)
        if info is None:
            return "unknown", None
        if info.done:
            return "already", info
        info.done = True
        return "done", info

    def expire(self, now: float) -> int:
        old = [r for r, i in self.known.items() if now - i.issued > self.ttl]
        for r in old:
            del self.known[r]
        return len(old)
