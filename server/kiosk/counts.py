"""Kiosk counts for the city: views, opens and channel choices per kiosk per day.

No personal data is kept: a count row is (day, kiosk id, event, channel, n) and nothing else, no
avatar id, no address, no time of day. Days are Japan dates (UTC+9, no daylight saving), the city's
working day. :class:`CountStore` is the small interface; :class:`SqliteCountStore` is the durable
default (one file under the data dir), :class:`MemoryCountStore` the in-process one for tests, and a
cluster of processes shares :class:`RedisCountStore` (``emachi serve --redis URL``), so the staff
page of any process shows the counts of all.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "EVENTS",
    "CountRow",
    "CountStore",
    "MemoryCountStore",
    "SqliteCountStore",
    "RedisCountStore",
    "japan_day",
]

log = logging.getLogger("emachi.kiosk.counts")

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


class RedisCountStore:
    """Counts in Redis, one hash per day (``{prefix}{day}``, field ``kiosk|event|channel``).

    Calls are synchronous with a short timeout: a count is one HINCRBY. If Redis does not answer,
    the increment is kept and sent with the next one, and the resident's request goes on.
    """

    def __init__(self, client: Any, prefix: str = "emachi:kiosk-counts:") -> None:
        self.r = client
        self.prefix = prefix
        self._pending: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, prefix: str = "emachi:kiosk-counts:") -> RedisCountStore:
        import redis

        return cls(redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5), prefix)

    def add(self, day: str, kiosk: str, event: str, channel: str = "", n: int = 1) -> None:
        _check(event, kiosk, channel, n)
        import redis

        with self._lock:
            key = (day, f"{kiosk}|{event}|{channel}")
            self._pending[key] = self._pending.get(key, 0) + n
            try:
                pipe = self.r.pipeline(transaction=False)
                for (d, f), k in self._pending.items():
                    pipe.hincrby(self.prefix + d, f, k)
                pipe.execute()
                self._pending.clear()
            except redis.RedisError as exc:
                log.warning("kiosk counts kept until Redis answers: %s", exc)

    def rows(self, since: str | None = None) -> list[CountRow]:
        out: list[CountRow] = []
        pattern = "".join("\\" + c if c in "*?[]\\" else c for c in self.prefix) + "*"
        for raw in self.r.scan_iter(match=pattern, count=500):
            key = raw.decode() if isinstance(raw, bytes) else raw
            day = key[len(self.prefix):]
            if since is not None and day < since:
                continue
            for f, n in self.r.hgetall(key).items():
                field_ = f.decode() if isinstance(f, bytes) else f
                kiosk, event, channel = field_.split("|", 2)
                out.append(CountRow(day, kiosk, event, channel, int(n)))
        out.sort(key=lambda r: (r.day, r.kiosk, r.event, r.channel))
        return out

    def close(self) -> None:
        self.r.close()


def days_back(n: int, today: str | None = None) -> str:
    """The day ``n - 1`` days before ``today`` (so ``n`` days including today)."""
    t = date.fromisoformat(today or japan_day())
    return (t - timedelta(days=max(n, 1) - 1)).isoformat()


__all__ += ["days_back", "JST"]
