"""What every records backend offers: the operations a batch carries and the ``Store`` interface.

A record is written as an operation in a :class:`Batch`; a backend applies a whole batch at once
(one SQLite transaction, one Redis script, one PostgreSQL transaction) and remembers its id,
so a batch sent twice (a retry after a timeout whose first try did reach the backend) is applied
once. Reads are async and bounded: a backend that does not answer raises :class:`StoreAway`
instead of making the caller wait.

Four kinds of record cover what must last:

============  =========================================  ===============================
operation     what                                       e.g.
============  =========================================  ===============================
``Add``       add ``n`` to a counter named by a key      kiosk and counter counts
``Put``       set a value (JSON), optionally expiring    briefing state, resume records
``Delete``    forget a value                             a resume record taken back
``Append``    a record with an id, kept in order, once   attendance, the moderation log
``DropStream`` forget every record of a stream           attendance past its retention
============  =========================================  ===============================
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "Add",
    "Put",
    "Delete",
    "Append",
    "DropStream",
    "Op",
    "Batch",
    "Record",
    "Store",
    "StoreAway",
    "answered_within",
    "SEP",
    "check_name",
    "check_key",
    "split_key",
    "join_key",
    "dumps",
]

#: joins the parts of a counter key after the first (no part may contain it)
SEP = "\x1f"
MAX_NAME = 128


class StoreAway(Exception):  # noqa: N818 - a state of the backend, said as such
    """The records backend did not answer in time (down, paused, unreachable)."""


@contextlib.asynccontextmanager
async def answered_within(seconds: float, who: str = "the records store") -> AsyncIterator[None]:
    """A read of the Store bounded by ``seconds``: past them, :class:`StoreAway`.

    Raises:
        StoreAway: ``who`` did not answer in time.
    """
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise StoreAway(f"{who} did not answer in time") from None


@dataclass(frozen=True, slots=True)
class Add:
    """Add ``n`` to the counter ``key`` of ``space``; the first part of the key is what
    :meth:`Store.counters` filters on (a day, usually)."""

    space: str
    key: tuple[str, ...]
    n: int


@dataclass(frozen=True, slots=True)
class Put:
    """Set ``space``/``key`` to ``value`` (JSON text); ``ttl`` seconds, or None to keep it."""

    space: str
    key: str
    value: str
    ttl: float | None = None


@dataclass(frozen=True, slots=True)
class Delete:
    space: str
    key: str


@dataclass(frozen=True, slots=True)
class Append:
    """Add a record to ``stream`` unless one with the same ``id`` is there already."""

    stream: str
    id: str
    data: str  # JSON text


@dataclass(frozen=True, slots=True)
class DropStream:
    """Forget every record of ``stream`` (a retention period is over); dropping twice is safe."""

    stream: str


Op = Add | Put | Delete | Append | DropStream


@dataclass(frozen=True, slots=True)
class Batch:
    """Operations applied together, once: ``id`` is unique in the whole cluster."""

    id: str
    ops: tuple[Op, ...]


@dataclass(frozen=True, slots=True)
class Record:
    """One appended record: its place in the stream (1, 2, ...), its id, its data."""

    seq: int
    id: str
    data: Any


def _storable(text: str) -> bool:
    """Whether every backend can hold ``text``: UTF-8 (no lone surrogate) without NUL, which
    PostgreSQL's text refuses. Refused when taken, since a batch no backend takes would be tried
    again forever and hold back every record after it."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_name(name: str, what: str = "name") -> None:
    """A space, stream or key: 1-128 characters, none of them the separator or NUL.

    Raises:
        ValueError: it is not.
    """
    if (
        not isinstance(name, str)
        or not 0 < len(name) <= MAX_NAME
        or SEP in name
        or not _storable(name)
    ):
        raise ValueError(
            f"{what}: expected 1-{MAX_NAME} characters without \\x1f or \\x00 (UTF-8), "
            f"got {name!r:.80}"
        )


def check_key(key: tuple[str, ...]) -> None:
    """A counter key: one to eight strings (the first non-empty), none with the separator.

    Raises:
        ValueError: it is not.
    """
    if not isinstance(key, tuple) or not 0 < len(key) <= 8 or not key[0]:
        raise ValueError(f"counter key: expected 1-8 strings, the first non-empty, got {key!r:.80}")
    for part in key:
        if not isinstance(part, str) or SEP in part or len(part) > MAX_NAME or not _storable(part):
            raise ValueError(
                f"counter key: each part a string of at most {MAX_NAME} characters, "
                "without \\x1f or \\x00 (UTF-8)"
            )


def split_key(key: tuple[str, ...]) -> str:
    """The parts of a counter key after the first, each behind a separator (``("d", "")`` and
    ``("d",)`` stay apart)."""
    return "".join(SEP + part for part in key[1:])


def join_key(head: str, tail: str) -> tuple[str, ...]:
    """The counter key back from :func:`split_key`'s text."""
    return (head, *tail.split(SEP)[1:])


def dumps(value: Any) -> str:
    """JSON text of a record value (compact, non-ASCII kept).

    Raises:
        TypeError: JSON cannot hold ``value``. ValueError: it holds a lone surrogate, which no
        backend can store as UTF-8 (NUL in a string is written ``\\u0000``, which they can).
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"record value: a string that is not UTF-8 ({exc.reason})") from None
    return text


class Store(Protocol):
    """Where records last. Every method is async; none may block the event loop.

    Implementations: :class:`~server.store.memory.MemoryStore` (tests),
    :class:`~server.store.sqlite.SqliteStore` (the embedded default, one file in the data dir),
    :class:`~server.store.redis_store.RedisStore` (``--redis``),
    :class:`~server.store.postgres.PostgresStore` (``--database``, for a cluster). Writes come through the
    :class:`~server.store.outbox.Outbox`, never straight from a request.
    """

    #: "memory", "sqlite", "redis", "postgres": for logs, /healthz and the staff pages
    kind: str

    async def start(self) -> None:
        """Open what needs opening. A network backend that is away does not fail this."""
        ...

    async def close(self) -> None: ...

    async def apply(self, batch: Batch) -> bool:
        """Apply every operation of ``batch`` atomically, unless a batch with its id was applied.

        Returns:
            True when applied now, False when it had been applied before (nothing changed).

        Raises:
            StoreAway: the backend did not answer; the batch may or may not have been applied,
            and applying it again is safe.
        """
        ...

    async def counters(self, space: str, since: str | None = None) -> dict[tuple[str, ...], int]:
        """Every counter of ``space`` whose key's first part is ``since`` or later (as text).

        Raises:
            StoreAway: no answer in time.
        """
        ...

    async def get(self, space: str, key: str) -> Any | None:
        """The value at ``space``/``key`` (decoded JSON), or None (never set, deleted, expired).

        Raises:
            StoreAway: no answer in time.
        """
        ...

    async def records(self, stream: str, after: int = 0, limit: int = 1000) -> list[Record]:
        """Up to ``limit`` records of ``stream`` after the ``after``-th, in the order appended.

        Raises:
            StoreAway: no answer in time.
        """
        ...
