"""The SQL records stores beyond the shared suite: schema migrations (SQLite and PostgreSQL), and
a real private PostgreSQL killed, paused and shared by two writers.

What an operator relies on: an old records file or database is migrated at start with its records
kept, a newer one is refused with a reason, and through a database crash every acknowledged
record is there once, the outbox keeping the rest until the database is back.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import asyncpg
import pytest

from server.store import (
    Add,
    Append,
    Batch,
    Outbox,
    PostgresStore,
    Put,
    SchemaTooNew,
    SqliteStore,
    StoreAway,
)
from server.store.migrations import LATEST, POSTGRES
from server.store.postgres import check_database
from tests.private_postgres import PrivatePostgres
from tests.tools import WAIT, until

pytestmark = pytest.mark.postgres

# The tables of the first release, as it created them (before schema versions existed).
FIRST_RELEASE_SQLITE = """
CREATE TABLE IF NOT EXISTS store_batches (
    id TEXT PRIMARY KEY,
    at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS store_counters (
    space TEXT NOT NULL,
    head  TEXT NOT NULL,
    tail  TEXT NOT NULL,
    n     INTEGER NOT NULL,
    PRIMARY KEY (space, head, tail)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS store_values (
    space   TEXT NOT NULL,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    expires REAL,
    PRIMARY KEY (space, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS store_records (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL,
    id     TEXT NOT NULL,
    data   TEXT NOT NULL,
    UNIQUE (stream, id)
);
"""
INDEXES = {"store_records_order", "store_batches_at", "store_values_expires"}


# -- SQLite -------------------------------------------------------------------------------------


def _sqlite_versions(path: Path) -> list[int]:
    with sqlite3.connect(path) as db:
        return [r[0] for r in db.execute("SELECT version FROM schema_version ORDER BY version")]


def _sqlite_indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}


async def test_sqlite_migrates_an_empty_file_to_the_latest_version(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite3"
    s = SqliteStore(path)
    await s.start()
    await s.close()
    assert _sqlite_versions(path) == list(range(1, LATEST + 1))
    assert _sqlite_indexes(path) >= INDEXES


async def test_sqlite_migrates_a_file_of_the_first_release_and_keeps_its_records(
    tmp_path: Path,
) -> None:
    path = tmp_path / "records.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(FIRST_RELEASE_SQLITE)
        db.execute("INSERT INTO store_batches VALUES ('old-batch', ?)", (time.time(),))
        db.execute("INSERT INTO store_counters VALUES ('kiosk', '2026-11-25', '\x1fask', 7)")
        db.execute("INSERT INTO store_values VALUES ('briefing', 'b1', '{\"live\":true}', NULL)")
        db.executemany(
            "INSERT INTO store_records (stream, id, data) VALUES ('att', ?, ?)",
            [(f"r{i}", f'{{"n":{i}}}') for i in range(3)],
        )
    s = SqliteStore(path)
    await s.start()
    try:
        assert await s.counters("kiosk") == {("2026-11-25", "ask"): 7}
        assert await s.get("briefing", "b1") == {"live": True}
        assert [r.id for r in await s.records("att")] == ["r0", "r1", "r2"]
        # the batch ids it remembered still stop a retry from counting twice
        assert await s.apply(Batch("old-batch", (Add("kiosk", ("2026-11-25", "ask"), 7),))) is False
        await s.apply(Batch("new", (Append("att", "r3", "3"),)))
        assert [r.id for r in await s.records("att")][-1] == "r3"
    finally:
        await s.close()
    assert _sqlite_versions(path) == list(range(1, LATEST + 1))
    assert _sqlite_indexes(path) >= INDEXES
    s = SqliteStore(path)  # a second start finds nothing to do
    await s.start()
    await s.close()
    assert _sqlite_versions(path) == list(range(1, LATEST + 1))


async def test_sqlite_refuses_a_file_from_a_newer_emachi(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite3"
    s = SqliteStore(path)
    await s.start()
    await s.close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO schema_version VALUES (?, 0, 'from the future')", (LATEST + 1,))
    s = SqliteStore(path)
    with pytest.raises(SchemaTooNew, match=f"version {LATEST + 1}.*up to {LATEST}"):
        await s.start()
    await s.close()


# -- PostgreSQL: migrations ---------------------------------------------------------------------


async def _pg_versions(url: str) -> list[int]:
    conn = await asyncpg.connect(url)
    try:
        return [r[0] for r in await conn.fetch("SELECT version FROM schema_version ORDER BY 1")]
    finally:
        await conn.close()


async def _pg_indexes(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        return {r[0] for r in await conn.fetch("SELECT indexname FROM pg_indexes")}
    finally:
        await conn.close()


async def test_postgres_migrates_an_empty_database_once_when_processes_start_together(
    postgres_server: PrivatePostgres,
) -> None:
    url = postgres_server.new_database()
    stores = [PostgresStore(url) for _ in range(3)]
    await asyncio.gather(*(s.start() for s in stores))
    try:
        assert [s.found_version for s in stores].count(0) == 1  # one migrated, two found it done
        assert await _pg_versions(url) == list(range(1, LATEST + 1))
        assert await _pg_indexes(url) >= INDEXES
        await stores[0].apply(Batch("b", (Add("k", ("d",), 1),)))
        assert await stores[2].counters("k") == {("d",): 1}
    finally:
        for s in stores:
            await s.close()


async def test_postgres_migrates_a_v1_database_and_keeps_its_records(
    postgres_server: PrivatePostgres,
) -> None:
    url = postgres_server.new_database()
    conn = await asyncpg.connect(url)
    try:  # a database as version 1 left it
        await conn.execute(
            "CREATE TABLE schema_version (version integer PRIMARY KEY, "
            "applied timestamptz NOT NULL DEFAULT now(), what text NOT NULL)"
        )
        for statement in POSTGRES[0].statements:
            await conn.execute(statement)
        await conn.execute("INSERT INTO schema_version (version, what) VALUES (1, 'v1')")
        await conn.execute("INSERT INTO store_batches VALUES ('old', extract(epoch from now()))")
        await conn.execute("INSERT INTO store_counters VALUES ('kiosk', 'd', '\x1fask', 4)")
        await conn.execute("INSERT INTO store_records (stream, id, data) VALUES ('att', 'a', '1')")
    finally:
        await conn.close()
    assert INDEXES.isdisjoint(await _pg_indexes(url))
    s = PostgresStore(url)
    await s.start()
    try:
        assert s.found_version == 1
        assert await _pg_versions(url) == list(range(1, LATEST + 1))
        assert await _pg_indexes(url) >= INDEXES
        assert await s.apply(Batch("old", (Add("kiosk", ("d", "ask"), 4),))) is False
        assert await s.counters("kiosk") == {("d", "ask"): 4}
        await s.apply(Batch("new", (Append("att", "b", "2"),)))
        assert [(r.seq, r.id, r.data) for r in await s.records("att")] == [(1, "a", 1), (2, "b", 2)]
    finally:
        await s.close()


async def test_postgres_refuses_a_database_from_a_newer_emachi(
    postgres_server: PrivatePostgres,
) -> None:
    url = postgres_server.new_database()
    s = PostgresStore(url)
    await s.start()
    await s.close()
    postgres_server.psql(
        f"INSERT INTO schema_version (version, what) VALUES ({LATEST + 1}, 'future')",
        url.split("/")[3].split("?")[0],
    )
    s = PostgresStore(url)
    with pytest.raises(SchemaTooNew, match=f"version {LATEST + 1}"):
        await s.start()
    await s.close()
    problem = await check_database(url)
    assert problem is not None and f"version {LATEST + 1}" in problem


async def test_check_database_says_why_it_cannot_serve(postgres_server: PrivatePostgres) -> None:
    assert await check_database(postgres_server.new_database()) is None
    bad = await check_database("mysql://x@y/z")
    assert bad is not None and "expected a URL postgresql://" in bad
    gone = await check_database(postgres_server.url("no_such_database"))
    assert gone is not None and "no_such_database" in gone
    secret = (
        postgres_server.url()
        .replace("emachi@", "emachi:hunter2@")
        .replace(str(postgres_server.port), "1")
    )
    away = await check_database(secret, timeout=20 * WAIT)
    assert away is not None and "cannot reach PostgreSQL" in away and "hunter2" not in away


# -- PostgreSQL: a crash, a pause, two writers ----------------------------------------------------


async def test_a_killed_postgres_loses_no_acknowledged_record_and_doubles_none(
    own_postgres: PrivatePostgres,
) -> None:
    """Records are written all along while PostgreSQL is killed (pg_ctl stop -m immediate) twice
    and started again: what was acknowledged is there at once after the restart, the outbox
    writes the rest, each record once, in order, and the counter is exactly the adds taken."""
    store = PostgresStore(own_postgres.url(), timeout=10 * WAIT, apply_timeout=20 * WAIT)
    await store.start()
    outbox = Outbox(store, linger=0, backoff=(WAIT / 5, 2 * WAIT))
    await outbox.start()
    taken: list[tuple[int, str]] = []  # (sequence number, record id)
    running = True

    async def write() -> None:
        i = 0
        while running:
            seq = outbox.append("attendance", f"r{i}", {"n": i, "名": "来場"})
            outbox.add("joins", ("2026-12-01", "hall"))
            taken.append((seq, f"r{i}"))
            i += 1
            await asyncio.sleep(WAIT / 10)

    writer = asyncio.create_task(write())
    try:
        for _ in range(2):
            await until(lambda: outbox.committed_batches > 5 and len(taken) > 20)
            own_postgres.kill()
            acked = {rid for seq, rid in taken if outbox.is_committed(seq)}
            failures = outbox.failures
            await until(lambda f=failures: outbox.failures >= f + 3)  # it keeps trying, and
            assert outbox.away and outbox.waiting > 0  # keeps what it could not write
            own_postgres.start()
            stored = {r.id for r in await _read_all(store)}
            assert acked <= stored, f"{len(acked - stored)} acknowledged records lost"
            await until(lambda: not outbox.away, timeout=200 * WAIT)
        running = False
        await writer
        await asyncio.wait_for(outbox.committed(), 200 * WAIT)
        got = await _read_all(store)
        assert [r.id for r in got] == [rid for _, rid in taken]  # all, once, in order
        assert [r.data["n"] for r in got] == list(range(len(taken)))
        assert await store.counters("joins") == {("2026-12-01", "hall"): len(taken)}
    finally:
        running = False
        writer.cancel()
        await outbox.close()
        await store.close()


async def _read_all(store: PostgresStore) -> list:  # type: ignore[type-arg]
    out: list = []  # type: ignore[type-arg]
    while page := await store.records("attendance", after=len(out)):
        out += page
    return out


async def test_a_paused_postgres_is_given_up_on_in_time_and_its_records_wait(
    own_postgres: PrivatePostgres,
) -> None:
    """SIGSTOP the whole server: a read gives up within its bound instead of hanging (asyncpg's
    own cancel would wait for the paused server), records wait in the outbox, and after SIGCONT
    every one is written once (a try whose COMMIT reached the server is not counted again)."""
    store = PostgresStore(own_postgres.url(), timeout=6 * WAIT, apply_timeout=6 * WAIT)
    await store.start()
    outbox = Outbox(store, backoff=(WAIT, 2 * WAIT))
    await outbox.start()
    try:
        outbox.add("asks", ("d", "garbage"))
        await outbox.committed()
        own_postgres.pause()
        for _ in range(5):
            outbox.add("asks", ("d", "garbage"))
        outbox.put("briefing", "b1", {"live": True})
        t0 = time.monotonic()
        with pytest.raises(StoreAway, match="no answer within"):
            await store.counters("asks")
        assert time.monotonic() - t0 < 6 * WAIT + 1.0
        await until(lambda: outbox.failures >= 3, timeout=200 * WAIT)
        own_postgres.resume()
        await asyncio.wait_for(outbox.committed(), 200 * WAIT)
        assert await store.counters("asks") == {("d", "garbage"): 6}
        assert await store.get("briefing", "b1") == {"live": True}
    finally:
        own_postgres.resume()
        await outbox.close()
        await store.close()


async def test_two_writers_append_to_one_stream_and_a_reader_paging_along_misses_nothing(
    postgres_server: PrivatePostgres,
) -> None:
    """Two processes' stores append to one stream at once; a reader pages with ``after`` while
    they write. Commit order is the order of the stream, so what the reader saw page by page is
    exactly the stream read at the end (no record slipped in before a place already read)."""
    url = postgres_server.new_database()
    a, b, reader = PostgresStore(url), PostgresStore(url), PostgresStore(url)
    for s in (a, b, reader):
        await s.start()
    seen: list[str] = []
    done = False

    async def write(s: PostgresStore, name: str) -> None:
        for i in range(40):
            ops = tuple(Append("log", f"{name}{i}-{j}", "null") for j in range(3))
            await s.apply(Batch(f"{name}-{i}", (*ops, Put("v", name, str(i)))))

    async def read() -> None:
        while True:
            last = done
            seen.extend(r.id for r in await reader.records("log", after=len(seen)))
            if last:
                return

    try:
        r = asyncio.create_task(read())
        await asyncio.gather(write(a, "a"), write(b, "b"))
        done = True
        await r
        final = [x.id for x in await reader.records("log", limit=10_000)]
        assert len(final) == 240 and len(set(final)) == 240
        assert seen == final
        assert await reader.get("v", "a") == 39 and await reader.get("v", "b") == 39
    finally:
        for s in (a, b, reader):
            await s.close()
