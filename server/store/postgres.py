"""Records in PostgreSQL (``emachi serve --database postgresql://…``): what a cluster uses.

Every process of a cluster writes to the same database, each through its own outbox. Calls go
through a small ``asyncpg`` pool (connected on first use, so a database that is away at start is
retried like at any other time) and each is bounded: a read gives up after ``timeout`` seconds,
a batch after ``apply_timeout`` and half a millisecond per operation (20,000 waiting records:
12 s), with :class:`~server.store.base.StoreAway`. A connection whose
call timed out or broke is closed, never handed to the next caller half way through a reply.

A batch is one transaction that first inserts its id into ``store_batches``
(``ON CONFLICT DO NOTHING``): a retry of a batch whose first try committed after the client gave
up changes nothing, and a retry racing its first try (still running on the server) waits for it
and then changes nothing. The outbox acknowledges a record only once :meth:`PostgresStore.apply`
returned, that is after COMMIT answered.

Appended records are kept in the order they were committed, per stream, across processes: a
batch takes a transaction lock on each stream it appends to (``pg_advisory_xact_lock``, streams in
sorted order so two batches never wait on each other in a circle) before inserting, so a record
with a lower ``seq`` is never committed after one with a higher one, and a reader paging with
``after`` never misses one. Counter and value rows are written in key order for the same reason.

The schema is migrated on start (``server.store.migrations``), under a transaction lock, so
processes starting together migrate once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

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
from .migrations import LATEST, POSTGRES, VERSION_TABLE_POSTGRES, SchemaTooNew, too_new

__all__ = [
    "PostgresStore",
    "DOWN",
    "check_database",
    "migrate_postgres",
    "postgres_version",
    "redact",
]

log = logging.getLogger("emachi.store.postgres")

T = TypeVar("T")

#: how long an applied batch id is remembered (a retry comes within seconds or minutes)
BATCH_MEMORY = 7 * 86400.0
POOL_SIZE = 4
#: seconds a batch is given per operation, on top of ``apply_timeout``
PER_OP = 0.0005
#: the advisory lock key that serialises migrations ("emachi" in ASCII)
MIGRATION_LOCK = 0x656D61636869

#: what says the database is away (down, restarting, unreachable, shutting down) rather than that
#: the call was wrong: the outbox keeps the batch and tries again
DOWN: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,  # admin or crash shutdown, starting up
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, disk full
    asyncpg.exceptions.TransactionRollbackError,  # a deadlock or serialisation failure
)

_NOW = "extract(epoch from clock_timestamp())"


def redact(url: str) -> str:
    """``url`` without its password, for logs and messages."""
    head, at, tail = url.rpartition("@")
    if not at or "://" not in head:
        return url
    scheme, _, user = head.partition("://")
    return f"{scheme}://{user.split(':', 1)[0]}@{tail}"


class PostgresStore:
    """Records in the PostgreSQL database at ``url`` (a libpq URL: ``postgresql://user@host/db``,
    a unix socket folder as ``?host=/path``)."""

    kind = "postgres"

    def __init__(self, url: str, timeout: float = 2.0, apply_timeout: float = 2.0) -> None:
        self.url = url
        self.timeout = timeout
        self.apply_timeout = apply_timeout
        #: the schema version found at start (None until the database first answered)
        self.found_version: int | None = None
        self._pool: asyncpg.Pool | None = None
        self._ready = False
        self._ready_lock = asyncio.Lock()

    # -- connections ------------------------------------------------------------------------------

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            # min_size=0: nothing is connected here, so this never waits on the database
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=0,
                max_size=POOL_SIZE,
                timeout=self.timeout,  # connecting
                command_timeout=None,  # every call is bounded here, as a whole
                max_inactive_connection_lifetime=60.0,
                reset=_no_reset,  # no session state is ever set: nothing to reset on release
            )
        return self._pool

    async def _call(self, fn: Callable[[Any], Awaitable[T]], timeout: float) -> T:
        """Run ``fn(connection)`` within ``timeout`` seconds, connecting and migrating included.

        The bound is a timer that closes the connection, not a cancellation: asyncpg answers a
        cancelled query by asking the server to cancel it and waiting for that, which a paused
        server never answers. A closed connection fails every wait on it at once.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        conn: Any = None
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            _kill(conn)

        try:
            async with asyncio.timeout(timeout):
                pool = await self._get_pool()
                conn = await pool.acquire()
        except DOWN as exc:
            raise StoreAway(f"postgres: {_why(exc, timeout)}") from None
        timer = loop.call_at(deadline, expire)
        try:
            if not self._ready:
                await self._migrate(conn)
            return await fn(conn)
        except DOWN as exc:
            _kill(conn)  # a reply may still come: nobody may read it as theirs
            why = f"no answer within {timeout:g} s" if expired else _why(exc, timeout)
            raise StoreAway(f"postgres: {why}") from None
        except BaseException:
            _kill(conn)
            raise
        finally:
            timer.cancel()
            if self._pool is not None:
                with contextlib.suppress(Exception):
                    await self._pool.release(conn, timeout=self.timeout)

    async def _migrate(self, conn: Any) -> None:
        async with self._ready_lock:
            if self._ready:
                return
            found, version = await migrate_postgres(conn, redact(self.url))
            self.found_version = found
            await conn.execute(f"DELETE FROM store_batches WHERE at < {_NOW} - $1", BATCH_MEMORY)
            await conn.execute(f"DELETE FROM store_values WHERE expires <= {_NOW}")
            if found != version:
                log.info(
                    "records schema migrated",
                    extra={"store": "postgres", "from": found, "to": version},
                )
            self._ready = True

    async def start(self) -> None:
        """Connect and migrate; a database that is away is tried again on first use.

        Raises:
            SchemaTooNew: the database was migrated by a newer emachi.
        """
        try:
            await self._call(lambda _conn: _nothing(), self.apply_timeout)
        except StoreAway as exc:
            log.warning(
                "records database away at start; will migrate when it answers",
                extra={"store": "postgres", "why": str(exc)},
            )

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                async with asyncio.timeout(self.timeout):
                    await pool.close()
            except (Exception, TimeoutError):
                pool.terminate()

    # -- writes -----------------------------------------------------------------------------------

    async def apply(self, batch: Batch) -> bool:
        counters: dict[tuple[str, str, str], int] = {}
        values: dict[tuple[str, str], Put | Delete] = {}
        appends: list[Append | DropStream] = []  # in order: a drop forgets what came before it
        for op in batch.ops:
            if isinstance(op, Add):
                k = (op.space, op.key[0], split_key(op.key))
                counters[k] = counters.get(k, 0) + op.n
            elif isinstance(op, Put | Delete):
                values.pop((op.space, op.key), None)
                values[op.space, op.key] = op  # the last one for a key is what stays
            elif isinstance(op, Append | DropStream):
                appends.append(op)
        puts = [
            (s, k, v.value, v.ttl) for (s, k), v in sorted(values.items()) if isinstance(v, Put)
        ]
        deletes = [(s, k) for (s, k), v in sorted(values.items()) if isinstance(v, Delete)]
        adds = [(*k, n) for k, n in sorted(counters.items())]
        streams = sorted({a.stream for a in appends})

        async def run(conn: Any) -> bool:
            async with conn.transaction():
                first = await conn.fetchval(
                    f"INSERT INTO store_batches (id, at) VALUES ($1, {_NOW}) "
                    "ON CONFLICT (id) DO NOTHING RETURNING true",
                    batch.id,
                )
                if not first:
                    return False  # applied before: this transaction changed nothing
                for stream in streams:
                    await conn.execute(
                        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", stream
                    )
                if adds:
                    await conn.executemany(
                        "INSERT INTO store_counters (space, head, tail, n) VALUES ($1, $2, $3, $4) "
                        "ON CONFLICT (space, head, tail) DO UPDATE SET n = store_counters.n + excluded.n",
                        adds,
                    )
                if puts:
                    await conn.executemany(
                        "INSERT INTO store_values (space, key, value, expires) "
                        f"VALUES ($1, $2, $3, {_NOW} + $4::double precision) "
                        "ON CONFLICT (space, key) DO UPDATE "
                        "SET value = excluded.value, expires = excluded.expires",
                        puts,
                    )
                if deletes:
                    await conn.executemany(
                        "DELETE FROM store_values WHERE space = $1 AND key = $2", deletes
                    )
                run_: list[tuple[str, str, str]] = []
                for a in [*appends, None]:
                    if isinstance(a, Append):
                        run_.append((a.stream, a.id, a.data))
                        continue
                    if run_:
                        await conn.executemany(
                            "INSERT INTO store_records (stream, id, data) VALUES ($1, $2, $3) "
                            "ON CONFLICT (stream, id) DO NOTHING",
                            run_,
                        )
                        run_ = []
                    if isinstance(a, DropStream):
                        await conn.execute("DELETE FROM store_records WHERE stream = $1", a.stream)
            return True

        # a big batch (an outbox that waited out an outage) is given the time its rows take
        return await self._call(run, self.apply_timeout + PER_OP * len(batch.ops))

    # -- reads ------------------------------------------------------------------------------------

    async def counters(self, space: str, since: str | None = None) -> dict[tuple[str, ...], int]:
        async def read(conn: Any) -> list[Any]:
            return list(
                await conn.fetch(
                    "SELECT head, tail, n FROM store_counters WHERE space = $1 AND head >= $2",
                    space,
                    since or "",
                )
            )

        rows = await self._call(read, self.timeout)
        return {join_key(r["head"], r["tail"]): int(r["n"]) for r in rows}

    async def get(self, space: str, key: str) -> Any | None:
        async def read(conn: Any) -> str | None:
            value: str | None = await conn.fetchval(
                "SELECT value FROM store_values WHERE space = $1 AND key = $2 "
                f"AND (expires IS NULL OR expires > {_NOW})",
                space,
                key,
            )
            return value

        raw = await self._call(read, self.timeout)
        return None if raw is None else json.loads(raw)

    async def records(self, stream: str, after: int = 0, limit: int = 1000) -> list[Record]:
        async def read(conn: Any) -> list[Any]:
            return list(
                await conn.fetch(
                    "SELECT id, data FROM store_records WHERE stream = $1 "
                    "ORDER BY seq LIMIT $2 OFFSET $3",
                    stream,
                    limit,
                    after,
                )
            )

        rows = await self._call(read, self.timeout)
        return [Record(after + i + 1, r["id"], json.loads(r["data"])) for i, r in enumerate(rows)]

    # -- for tools and tests ----------------------------------------------------------------------

    async def schema_version(self) -> int:
        """The database's schema version now (0: no tables yet)."""
        return await self._call(postgres_version, self.timeout)


async def _nothing() -> None:
    return None


def _kill(conn: Any) -> None:
    """Close a pooled connection at once (a no-op when it was closed and given back already)."""
    with contextlib.suppress(asyncpg.InterfaceError):
        conn.terminate()


async def _no_reset(_conn: Any) -> None:
    return None


def _why(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    return f"{type(exc).__name__}: {exc}"


async def postgres_version(conn: Any) -> int:
    """The schema version of the database ``conn`` is connected to (0: never migrated)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version"))


async def migrate_postgres(conn: Any, where: str = "the records database") -> tuple[int, int]:
    """Bring the database to :data:`~server.store.migrations.LATEST` in one transaction, under a
    lock that a second process migrating at the same time waits for.

    Returns:
        (the version found, the version now).

    Raises:
        SchemaTooNew: the database is newer than this code.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        found = await postgres_version(conn)
        if found > LATEST:
            raise too_new(found, where)
        if found < LATEST:
            await conn.execute(VERSION_TABLE_POSTGRES)
            for step in POSTGRES[found:]:
                for statement in step.statements:
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_version (version, what) VALUES ($1, $2)",
                    step.version,
                    step.what,
                )
    return found, LATEST


async def check_database(url: str, timeout: float = 5.0) -> str | None:
    """None when the PostgreSQL at ``url`` answers and its schema is migrated (or was migrated
    now), else why not, in one line (for ``emachi serve --database``)."""
    if not url.startswith(("postgresql://", "postgres://")):
        return f"--database {redact(url)!r}: expected a URL postgresql://USER@HOST:PORT/DATABASE"
    store = PostgresStore(url, timeout=timeout, apply_timeout=timeout)
    try:
        await store.schema_version()
    except StoreAway as exc:
        return f"--database {redact(url)}: cannot reach PostgreSQL: {exc}"
    except SchemaTooNew as exc:
        return f"--database {redact(url)}: {exc}"
    except (ValueError, asyncpg.PostgresError) as exc:  # a bad URL, a missing database, no right
        return f"--database {redact(url)}: {type(exc).__name__}: {exc}"
    finally:
        await store.close()
    return None
