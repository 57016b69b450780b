"""One suite for every records store (memory, SQLite, a real private Redis, a real private
PostgreSQL) and the outbox.

What a feature relies on: counters add up and filter by their first key part, a batch applied
twice counts once, values expire, appended records keep their order and their ids once, and the
outbox never loses, doubles or blocks on a backend that goes away and comes back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.store import (
    Add,
    Append,
    Batch,
    Delete,
    DropStream,
    MemoryStore,
    Outbox,
    OutboxFull,
    PostgresStore,
    Put,
    RedisStore,
    SqliteStore,
    Store,
    StoreAway,
)
from server.store.base import dumps
from tests.integration.client import WAIT
from tests.private_postgres import PrivatePostgres
from tests.private_redis import PrivateRedis


async def until(predicate: object, timeout: float = 100 * WAIT) -> None:
    end = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {predicate}")
        await asyncio.sleep(WAIT / 5)


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, prefix: str
) -> AsyncIterator[Store]:
    s: Store
    if request.param == "memory":
        s = MemoryStore()
    elif request.param == "sqlite":
        s = SqliteStore(tmp_path / "records.sqlite3")
    elif request.param == "redis":
        redis_server: PrivateRedis = request.getfixturevalue("redis_server")
        s = RedisStore(redis_server.url, prefix=prefix)
    else:
        postgres_server: PrivatePostgres = request.getfixturevalue("postgres_server")
        s = PostgresStore(postgres_server.new_database())
    await s.start()
    yield s
    await s.close()


def batch(bid: str, *ops: Add | Put | Delete | Append) -> Batch:
    return Batch(bid, ops)


# -- the Store interface ------------------------------------------------------------------------


async def test_counters_add_up_and_filter_on_the_first_key_part(store: Store) -> None:
    await store.apply(
        batch(
            "b1",
            Add("k", ("2026-11-25", "juminhyo", "view", ""), 3),
            Add("k", ("2026-11-25", "juminhyo", "open", "line"), 1),
        )
    )
    await store.apply(
        batch(
            "b2",
            Add("k", ("2026-11-26", "juminhyo", "open", "line"), 2),
            Add("k", ("2026-11-25", "juminhyo", "view", ""), 1),
            Add("other", ("2026-11-26", "x"), 9),
        )
    )
    assert await store.counters("k") == {
        ("2026-11-25", "juminhyo", "view", ""): 4,
        ("2026-11-25", "juminhyo", "open", "line"): 1,
        ("2026-11-26", "juminhyo", "open", "line"): 2,
    }
    assert await store.counters("k", "2026-11-26") == {
        ("2026-11-26", "juminhyo", "open", "line"): 2
    }
    assert await store.counters("nothing") == {}


async def test_a_key_with_an_empty_last_part_is_not_a_shorter_key(store: Store) -> None:
    await store.apply(
        batch("b", Add("k", ("d",), 1), Add("k", ("d", ""), 2), Add("k", ("d", "", ""), 3))
    )
    assert await store.counters("k") == {("d",): 1, ("d", ""): 2, ("d", "", ""): 3}


async def test_a_batch_applied_twice_counts_once(store: Store) -> None:
    b = batch("same-id", Add("k", ("d", "a"), 5), Append("log", "r1", '{"who": "staff"}'))
    assert await store.apply(b) is True
    assert await store.apply(b) is False  # a retry after a lost reply
    assert await store.counters("k") == {("d", "a"): 5}
    assert [r.id for r in await store.records("log")] == ["r1"]


async def test_values_are_set_replaced_deleted_and_expire(store: Store) -> None:
    await store.apply(batch("p1", Put("briefing", "b1", '{"at": 1, "名": "説明会"}')))
    assert await store.get("briefing", "b1") == {"at": 1, "名": "説明会"}
    await store.apply(batch("p2", Put("briefing", "b1", "[2]"), Put("resume", "r", "1", ttl=0.3)))
    assert await store.get("briefing", "b1") == [2]
    assert await store.get("resume", "r") == 1
    await store.apply(batch("p3", Delete("briefing", "b1")))
    assert await store.get("briefing", "b1") is None
    deadline = time.monotonic() + 40 * WAIT
    while await store.get("resume", "r") is not None:
        assert time.monotonic() < deadline, "an expiring value did not expire"
        await asyncio.sleep(WAIT)


async def test_records_keep_their_order_and_their_ids_once(store: Store) -> None:
    await store.apply(batch("a1", *(Append("att", f"id{i}", dumps({"n": i})) for i in range(5))))
    await store.apply(
        batch("a2", Append("att", "id2", '{"n": "again"}'), Append("att", "id5", '{"n": 5}'))
    )
    got = await store.records("att")
    assert [(r.seq, r.id, r.data) for r in got] == [(i + 1, f"id{i}", {"n": i}) for i in range(6)]
    assert [r.id for r in await store.records("att", after=2, limit=2)] == ["id2", "id3"]
    assert await store.records("att", after=6) == []


async def test_a_dropped_stream_is_gone_and_others_stay(store: Store) -> None:
    await store.apply(batch("d1", Append("att:a", "x", "1"), Append("att:b", "y", "2")))
    await store.apply(batch("d2", DropStream("att:a"), DropStream("att:never")))
    assert await store.records("att:a") == []
    assert [r.id for r in await store.records("att:b")] == ["y"]
    await store.apply(batch("d3", Append("att:a", "x", "3")))  # the id may come back after a drop
    assert [r.data for r in await store.records("att:a")] == [3]


async def test_sqlite_keeps_everything_across_reopening(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite3"
    s = SqliteStore(path)
    await s.start()
    await s.apply(
        batch("b", Add("k", ("d", "a"), 2), Put("v", "x", '"y"'), Append("s", "1", "null"))
    )
    await s.close()
    s = SqliteStore(path)
    await s.start()
    assert await s.apply(batch("b", Add("k", ("d", "a"), 2))) is False  # the id is remembered
    assert await s.counters("k") == {("d", "a"): 2}
    assert await s.get("v", "x") == "y"
    assert len(await s.records("s")) == 1
    await s.close()


# -- the outbox ---------------------------------------------------------------------------------


async def test_the_outbox_takes_records_at_once_and_acknowledges_them_once_committed(
    store: Store,
) -> None:
    outbox = Outbox(store)
    await outbox.start()
    try:
        seqs = [outbox.add("k", ("d", "view")) for _ in range(100)]
        assert outbox.waiting == 1  # a hundred views of one counter are one operation
        assert not outbox.is_committed(seqs[-1])
        await asyncio.wait_for(outbox.committed(seqs[-1]), 100 * WAIT)
        assert await store.counters("k") == {("d", "view"): 100}
        assert outbox.waiting == 0
    finally:
        await outbox.close()


async def test_the_outbox_keeps_records_while_the_store_is_away_and_never_doubles() -> None:
    store = MemoryStore()
    store.away = True
    outbox = Outbox(store, backoff=(WAIT / 5, WAIT))
    await outbox.start()
    try:
        seq = 0
        for _ in range(5):
            seq = outbox.add("asks", ("d", "garbage"))
        await until(lambda: outbox.failures >= 3)
        assert outbox.away and not outbox.is_committed(seq)
        assert outbox.health() == {"backend": "memory", "up": False, "waiting": 1}
        store.away = False
        await asyncio.wait_for(outbox.committed(seq), 100 * WAIT)
        assert await store.counters("asks") == {("d", "garbage"): 5}
        assert not outbox.away
    finally:
        await outbox.close()


async def test_the_outbox_refuses_new_keys_past_its_bound_but_not_more_of_the_same() -> None:
    store = MemoryStore()
    store.away = True
    outbox = Outbox(store, limit=3, backoff=(WAIT, WAIT))
    for i in range(3):
        outbox.add("k", ("d", str(i)))
    with pytest.raises(OutboxFull):
        outbox.add("k", ("d", "new"))
    outbox.add("k", ("d", "0"), 10)  # an existing counter still counts
    assert outbox.waiting == 3


async def test_the_outbox_refuses_bad_records_with_a_reason() -> None:
    outbox = Outbox(MemoryStore())
    with pytest.raises(ValueError, match="counter key"):
        outbox.add("k", ())
    with pytest.raises(ValueError, match="space"):
        outbox.add("", ("d",))
    with pytest.raises(ValueError, match="n:"):
        outbox.add("k", ("d",), 0)
    with pytest.raises(TypeError):
        outbox.put("k", "x", object())
    assert outbox.waiting == 0


async def test_the_outbox_refuses_text_a_backend_cannot_hold(store: Store) -> None:
    """Found: a NUL in a name (PostgreSQL's text refuses it) or a lone surrogate in a value (not
    UTF-8: SQLite and PostgreSQL refuse it) was taken, and its batch then failed on every try,
    holding back every record after it. Now it is refused when taken, and the rest is written."""
    outbox = Outbox(store)
    await outbox.start()
    try:
        with pytest.raises(ValueError, match="x00"):
            outbox.put("resume", "tok\x00en", 1)
        with pytest.raises(ValueError, match="x00"):
            outbox.add("k", ("d", "a\x00"))
        with pytest.raises(ValueError, match="UTF-8"):
            outbox.append("log", "r1", {"name": "\ud800"})
        with pytest.raises(ValueError, match="UTF-8"):
            outbox.append("log", "\udfff", {})
        seq = outbox.append("log", "r2", {"name": "NUL in a value is fine: \x00"})
        await asyncio.wait_for(outbox.committed(seq), 100 * WAIT)
        assert [(r.id, r.data) for r in await store.records("log")] == [
            ("r2", {"name": "NUL in a value is fine: \x00"})
        ]
    finally:
        await outbox.close()


async def test_a_paused_redis_delays_counts_and_neither_loses_nor_doubles_them(
    own_redis: PrivateRedis, prefix: str
) -> None:
    """The found bug: after a pause, 5 asks were counted as 6 (a timed-out HINCRBY that Redis
    ran later, then sent again). Here every try of the batch reaches Redis after SIGCONT."""
    store = RedisStore(own_redis.url, prefix=prefix, timeout=4 * WAIT)
    outbox = Outbox(store, backoff=(WAIT, 2 * WAIT))
    await outbox.start()
    try:
        outbox.add("asks", ("d", "garbage"))
        await outbox.committed()
        own_redis.pause()
        t0 = time.perf_counter()
        for _ in range(5):
            outbox.add("asks", ("d", "garbage"))
        assert time.perf_counter() - t0 < 0.01  # taking a record never waits
        await until(lambda: outbox.failures >= 4)  # several tries queued in the paused Redis
        with pytest.raises(StoreAway):
            await store.counters("asks")
        own_redis.resume()
        await asyncio.wait_for(outbox.committed(), 200 * WAIT)
        await asyncio.sleep(10 * WAIT)  # any try still queued in Redis has run by now
        assert await store.counters("asks") == {("d", "garbage"): 6}
    finally:
        own_redis.resume()
        await outbox.close()
        await store.close()
