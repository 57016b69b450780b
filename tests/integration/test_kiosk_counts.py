"""One test suite for every CountStore: in memory, SQLite, and Redis (a real redis-server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from server.kiosk.counts import (
    CountRow,
    CountStore,
    MemoryCountStore,
    RedisCountStore,
    SqliteCountStore,
)
from tests.private_redis import PrivateRedis, free_port


@pytest.fixture
def redis_url(redis_server: PrivateRedis) -> str:
    return redis_server.url


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CountStore]:
    s: CountStore
    if request.param == "memory":
        s = MemoryCountStore()
    elif request.param == "sqlite":
        s = SqliteCountStore(tmp_path / "counts.sqlite3")
    else:
        url = request.getfixturevalue("redis_url")
        s = RedisCountStore.from_url(url, prefix=f"test:{request.node.name}:")
    yield s
    s.close()


def test_counts_add_up_per_day_kiosk_event_and_channel(store: CountStore) -> None:
    for _ in range(3):
        store.add("2026-11-25", "kiosk-juminhyo", "view")
    store.add("2026-11-25", "kiosk-juminhyo", "open", "line")
    store.add("2026-11-26", "kiosk-juminhyo", "open", "line", 2)
    store.add("2026-11-26", "kiosk-koseki", "view")
    assert store.rows() == [
        CountRow("2026-11-25", "kiosk-juminhyo", "open", "line", 1),
        CountRow("2026-11-25", "kiosk-juminhyo", "view", "", 3),
        CountRow("2026-11-26", "kiosk-juminhyo", "open", "line", 2),
        CountRow("2026-11-26", "kiosk-koseki", "view", "", 1),
    ]
    assert [r.day for r in store.rows("2026-11-26")] == ["2026-11-26", "2026-11-26"]


def test_counts_refuse_unknown_events_and_keep_nothing_else(store: CountStore) -> None:
    with pytest.raises(ValueError):
        store.add("2026-11-26", "kiosk-juminhyo", "avatar-7")
    with pytest.raises(ValueError):
        store.add("2026-11-26", "", "view")
    assert store.rows() == []


def test_two_processes_share_redis_counts(redis_url: str) -> None:
    a = RedisCountStore.from_url(redis_url, prefix="test:shared:")
    b = RedisCountStore.from_url(redis_url, prefix="test:shared:")
    a.add("2026-11-26", "kiosk-juminhyo", "view")
    b.add("2026-11-26", "kiosk-juminhyo", "view")
    assert a.rows() == b.rows() == [CountRow("2026-11-26", "kiosk-juminhyo", "view", "", 2)]
    a.close()
    b.close()


def test_redis_that_does_not_answer_keeps_the_count_for_later(redis_url: str) -> None:
    down = RedisCountStore.from_url(f"redis://127.0.0.1:{free_port()}/0", prefix="test:later:")
    down.add("2026-11-26", "kiosk-juminhyo", "view")  # no exception for the resident's request
    assert down._pending  # kept
    up = RedisCountStore.from_url(redis_url, prefix="test:later:")
    up._pending = down._pending  # the same process once Redis is back
    up.add("2026-11-26", "kiosk-juminhyo", "view")
    assert up.rows() == [CountRow("2026-11-26", "kiosk-juminhyo", "view", "", 2)]
    down.close()
    up.close()
