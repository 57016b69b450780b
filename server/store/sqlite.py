"""Records in one SQLite file in the data dir: the embedded default.

Every call runs on one dedicated thread that owns the connection, so the event loop never waits
on the disk; the loop awaits the thread's answer. A batch is one transaction that first records
its id in ``store_batches``: a batch seen before changes nothing. WAL journal with
``synchronous=NORMAL``: a crash of the process loses nothing committed, a power cut at most the
last transactions. The schema is migrated when the store starts (``server.store.migrations``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .base import (
    Add,
    Append,
    Batch,
    Delete,
    DropStream,
    Put,
    Record,
    StoreAway,
    join_key,
    split_key,
)
from .migrations import migrate_sqlite

__all__ = ["SqliteStore"]

T = TypeVar("T")
log = logging.getLogger("emachi.store.sqlite")

#: how long an applied batch id is remembered (a retry comes within seconds or minutes)
BATCH_MEMORY = 7 * 86400.0


class SqliteStore:
    """One SQLite file, one writer thread; reads give up after ``timeout`` seconds."""

    kind = "sqlite"

    def __init__(self, path: Path, timeout: float = 2.0) -> None:
        self.path = path
        self.timeout = timeout
        self._db: sqlite3.Connection | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="emachi-store")

    async def _call(self, fn: Callable[[], T], timeout: float | None) -> T:
        fut = asyncio.get_running_loop().run_in_executor(self._pool, fn)
        if timeout is None:
            return await fut
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise StoreAway(f"{self.path.name} did not answer within {timeout:g} s") from None

    async def start(self) -> None:
        await self._call(self._open, None)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        try:
            found, version = migrate_sqlite(db, str(self.path))
        except BaseException:
            db.close()
            raise
        if found != version:
            log.info(
                "records schema migrated", extra={"store": "sqlite", "from": found, "to": version}
            )
        now = time.time()
        db.execute("DELETE FROM store_batches WHERE at < ?", (now - BATCH_MEMORY,))
        db.execute("DELETE FROM store_values WHERE expires IS NOT NULL AND expires <= ?", (now,))
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            await self._call(self._db.close, None)
            self._db = None
        self._pool.shutdown(wait=False)

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreAway(f"{self.path.name} is not open")
        return self._db

    # -- writes -----------------------------------------------------------------------------------

    async def apply(self, batch: Batch) -> bool:
        # a write is never abandoned half way: the thread finishes the transaction either way
        return await self._call(lambda: self._apply(batch), None)

    def _apply(self, batch: Batch) -> bool:
        db = self._conn()
        now = time.time()
        db.execute("BEGIN IMMEDIATE")
        try:
            cur = db.execute(
                "INSERT OR IGNORE INTO store_batches (id, at) VALUES (?, ?)", (batch.id, now)
            )
            if cur.rowcount == 0:
                db.execute("ROLLBACK")
                return False
            for op in batch.ops:
                if isinstance(op, Add):
                    db.execute(
                        "INSERT INTO store_counters (space, head, tail, n) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (space, head, tail) DO UPDATE SET n = n + excluded.n",
                        (op.space, op.key[0], split_key(op.key), op.n),
                    )
                elif isinstance(op, Put):
                    expires = None if op.ttl is None else now + op.ttl
                    db.execute(
                        "INSERT OR REPLACE INTO store_values (space, key, value, expires) "
                        "VALUES (?, ?, ?, ?)",
                        (op.space, op.key, op.value, expires),
                    )
                elif isinstance(op, Delete):
                    db.execute(
                        "DELETE FROM store_values WHERE space = ? AND key = ?", (op.space, op.key)
                    )
                elif isinstance(op, Append):
                    db.execute(
                        "INSERT OR IGNORE INTO store_records (stream, id, data) VALUES (?, ?, ?)",
                        (op.stream, op.id, op.data),
                    )
                elif isinstance(op, DropStream):
                    db.execute("DELETE FROM store_records WHERE stream = ?", (op.stream,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return True

    # -- reads ------------------------------------------------------------------------------------

    async def counters(self, space: str, since: str | None = None) -> dict[tuple[str, ...], int]:
        def read() -> dict[tuple[str, ...], int]:
            rows = self._conn().execute(
                "SELECT head, tail, n FROM store_counters WHERE space = ? AND head >= ?",
                (space, since or ""),
            )
            return {join_key(head, tail): n for head, tail, n in rows}

        return await self._call(read, self.timeout)

    async def get(self, space: str, key: str) -> Any | None:
        def read() -> str | None:
            row = (
                self._conn()
                .execute(
                    "SELECT value FROM store_values WHERE space = ? AND key = ? "
                    "AND (expires IS NULL OR expires > ?)",
                    (space, key, time.time()),
                )
                .fetchone()
            )
            return None if row is None else str(row[0])

        raw = await self._call(read, self.timeout)
        return None if raw is None else json.loads(raw)

    async def records(self, stream: str, after: int = 0, limit: int = 1000) -> list[Record]:
        def read() -> list[tuple[str, str]]:
            return (
                self._conn()
                .execute(
                    "SELECT id, data FROM store_records WHERE stream = ? ORDER BY seq LIMIT ? OFFSET ?",
                    (stream, limit, after),
                )
                .fetchall()
            )

        rows = await self._call(read, self.timeout)
        return [Record(after + i + 1, k, json.loads(v)) for i, (k, v) in enumerate(rows)]
