"""Kiosk counts for the city: views, opens and channel choices per kiosk per day.

No personal data is kept: a count row is (day, kiosk id, event, channel, n) and nothing else, no
avatar id, no address, no time of day. Days are Japan dates (UTC+9, no daylight saving), the city's
working day. :class:`CountStore` is the small interface; :class:`SqliteCountStore` is the durable
default (one file under the data dir), :class:`MemoryCountStore` the in-process one for tests, and a
Redis implementation can come later behind the same interface.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Protocol

__all__ = [
    "EVENTS",
    "CountRow",
    "CountStore",
    "MemoryCountStore",
    "SqliteCountStore",
    "japan_day",
]

JST = timezone(timedelta(hours=9), "JST")
# view: a panel was opened; open: a channel was chosen (the row names it); ask: a helper answered.
EVENTS = ("view", "open", "ask")


def japan_day(now: datetime | None = None) -> str:
    """Today's date in Japan as ``YYYY-MM-DD``."""
    return (now or datetime.now(UTC)).astimezone(JST).date().isoformat()


@dataclass(frozen=True, slots=True)
class CountRow:
    day: str
    kiosk: str
    event: str
    channel: str  # "" for view and ask
    n: int


class CountStore(Protocol):
    """Where counts go. Implementations must be safe to call from the event loop (fast, no await)."""

    def add(self, day: str, kiosk: str, event: str, channel: str = "", n: int = 1) -> None:
        """Add ``n`` to one (day, kiosk, event, channel) counter."""

    def rows(self, since: str | None = None) -> list[CountRow]:
        """All counters from ``since`` (a day, inclusive) on, sorted by day, kiosk, event, channel."""

    def close(self) -> None:
        """Flush and release the store."""


def _check(event: str, kiosk: str, channel: str, n: int) -> None:
    if event not in EVENTS:
        raise ValueError(f"event must be one of {EVENTS}, got {event!r}")
    if not kiosk or len(kiosk) > 64 or len(channel) > 32 or n < 1:
        raise ValueError("kiosk id 1-64 chars, channel ≤ 32 chars, n ≥ 1")


class MemoryCountStore:
    """Counts in a dictionary; lost at exit."""

    def __init__(self) -> None:
        self._c: dict[tuple[str, str, str, str], int] = {}

    def add(self, day: str, kiosk: str, event: str, channel: str = "", n: int = 1) -> None:
        _check(event, kiosk, channel, n)
        key = (day, kiosk, event, channel)
        self._c[key] = self._c.get(key, 0) + n

    def rows(self, since: str | None = None) -> list[CountRow]:
        return [CountRow(*k, n) for k, n in sorted(self._c.items()) if since is None or k[0] >= since]

    def close(self) -> None:
        pass


class SqliteCountStore:
    """Counts in one SQLite file; each add is one upsert, committed at once (WAL journal)."""

    SCHEMA = """
        CREATE TABLE IF NOT EXISTS kiosk_counts (
            day     TEXT NOT NULL,
            kiosk   TEXT NOT NULL,
            event   TEXT NOT NULL,
            channel TEXT NOT NULL DEFAULT '',
            n       INTEGER NOT NULL,
            PRIMARY KEY (day, kiosk, event, channel)
        ) WITHOUT ROWID
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL with WAL survives a crash of the process; only a power cut may lose the last adds.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(self.SCHEMA)

    def add(self, day: str, kiosk: str, event: str, channel: str = "", n: int = 1) -> None:
        _check(event, kiosk, channel, n)
        with self._lock:
            self._db.execute(
                "INSERT INTO kiosk_counts (day, kiosk, event, channel, n) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (day, kiosk, event, channel) DO UPDATE SET n = n + excluded.n",
                (day, kiosk, event, channel, n),
            )

    def rows(self, since: str | None = None) -> list[CountRow]:
        with self._lock:
            cur = self._db.execute(
                "SELECT day, kiosk, event, channel, n FROM kiosk_counts WHERE day >= ? "
                "ORDER BY day, kiosk, event, channel",
                (since or "",),
            )
            return [CountRow(*r) for r in cur.fetchall()]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def days_back(n: int, today: str | None = None) -> str:
    """The day ``n - 1`` days before ``today`` (so ``n`` days including today)."""
    t = date.fromisoformat(today or japan_day())
    return (t - timedelta(days=max(n, 1) - 1)).isoformat()


__all__ += ["days_back", "JST"]
