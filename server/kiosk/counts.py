"""Kiosk counts for the city: views, opens and channel choices per kiosk per day.

No personal data is kept: a count is (day, kiosk id, event, channel) → n and nothing else, no
avatar id, no address, no time of day. Days are Japan dates (UTC+9, no daylight saving), the city's
working day.

The kiosk service counts through a :class:`CountStore` (``add``, synchronous). On a server that is
:class:`KioskCounts`: each ``add`` is one record in the records outbox (``server.store``), so a
resident's request never waits on the disk or on Redis, and the staff page reads the counts back
from the store with a bound (:meth:`KioskCounts.rows`). :class:`MemoryCountStore` is the
dictionary one for tools and unit tests.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Protocol

from server.store import Outbox, OutboxFull, Store, answered_within

__all__ = [
    "EVENTS",
    "SPACE",
    "CountRow",
    "CountStore",
    "MemoryCountStore",
    "KioskCounts",
    "japan_day",
    "days_back",
    "JST",
]

log = logging.getLogger("emachi.kiosk.counts")

JST = timezone(timedelta(hours=9), "JST")
# view: a panel was opened; open: a channel was chosen (the row names it); ask: a helper answered.
EVENTS = ("view", "open", "ask")
#: the counter space of the records store: key (day, kiosk, event, channel)
SPACE = "kiosk-counts"
#: the staff page gives the store this long to answer before it says the store is away
READ_TIMEOUT = 1.0


def japan_day(now: datetime | None = None) -> str:
    """Today's date in Japan as ``YYYY-MM-DD``."""
    return (now or datetime.now(UTC)).astimezone(JST).date().isoformat()


def days_back(n: int, today: str | None = None) -> str:
    """The day ``n - 1`` days before ``today`` (so ``n`` days including today)."""
    t = date.fromisoformat(today or japan_day())
    return (t - timedelta(days=max(n, 1) - 1)).isoformat()


@dataclass(frozen=True, slots=True)
class CountRow:
    day: str
    kiosk: str
    event: str
    channel: str  # "" for view and ask
    n: int


class CountStore(Protocol):
    """Where the kiosk service counts. ``add`` runs on the event loop: it must never wait."""

    def add(self, day: str, kiosk: str, event: str, channel: str = "", n: int = 1) -> None:
        """Add ``n`` to one (day, kiosk, event, channel) counter."""


def _check(event: str, kiosk: str, channel: str, n: int) -> None:
    if event not in EVENTS:
        raise ValueError(f"event must be one of {EVENTS}, got {event!r}")
    if not kiosk or len(kiosk) > 64 or len(channel) > 32 or n < 1:
        raise ValueError("kiosk id 1-64 chars, channel ≤ 32 chars, n ≥ 1")


def _sorted(counts: dict[tuple[str, ...], int]) -> list[CountRow]:
    return [CountRow(k[0], k[1], k[2], k[3], n) for k, n in sorted(counts.items()) if len(k) == 4]


class MemoryCountStore:
    """Counts in a dictionary; lost at exit."""

    def __init__(self) -> None:
        self._c: dict[tuple[str, ...], int] = {}

    def add(self, day: str, kiosk: str, event: str, channel: str = "", n: int = 1) -> None:
        _check(event, kiosk, channel, n)
        key = (day, kiosk, event, channel)
        self._c[key] = self._c.get(key, 0) + n

    def rows(self, since: str | None = None) -> list[CountRow]:
        return _sorted({k: n for k, n in self._c.items() if since is None or k[0] >= since})


class KioskCounts:
    """Counts written through the records outbox and read back from the records store."""

    def __init__(self, outbox: Outbox, store: Store, read_timeout: float = READ_TIMEOUT) -> None:
        self.outbox = outbox
        self.store = store
        self.read_timeout = read_timeout
        #: counts that could not be taken because too many records wait (logged)
        self.dropped = 0
        #: the last successful read: (wall time, since, rows), shown while the store is away
        self.last_read: tuple[float, str | None, list[CountRow]] | None = None

    def add(self, day: str, kiosk: str, event: str, channel: str = "", n: int = 1) -> None:
        _check(event, kiosk, channel, n)
        try:
            self.outbox.add(SPACE, (day, kiosk, event, channel), n)
        except OutboxFull:
            self.dropped += 1
            log.warning("kiosk count dropped: the records outbox is full", extra={"kiosk": kiosk})

    async def rows(self, since: str | None = None) -> list[CountRow]:
        """Every committed counter from ``since`` (a day, inclusive) on, sorted.

        Raises:
            server.store.StoreAway: the store did not answer within ``read_timeout``.
        """
        async with answered_within(self.read_timeout, f"the {self.store.kind} store"):
            counts = await self.store.counters(SPACE, since)
        rows = _sorted(counts)
        self.last_read = (time.time(), since, rows)
        return rows

    @property
    def waiting(self) -> int:
        """Records of this process not yet committed (kiosk counts and any other)."""
        return self.outbox.waiting
