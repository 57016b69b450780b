"""Instance leases in a real Redis: one owner at a time, a higher fence for each new owner, and no
write from an owner that was late (server/cluster/leases.py)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from server.cluster.leases import BeatInput, Lease, RedisLeases
from server.cluster.placement import Reservations, secret_for
from server.tasks import stop_task
from tests.tools import WAIT, until

from .conftest import PrivateRedis

pytestmark = pytest.mark.cluster

TTL = 20 * WAIT
INST = "machida-city-hall#1"


def source(url: str, seats: dict[str, dict[str, str]] | None = None) -> Callable[[], BeatInput]:
    def beat() -> BeatInput:
        s = seats if seats is not None else {}
        return BeatInput(url, sum(len(v) for v in s.values()), {k: len(v) for k, v in s.items()}, s)

    return beat


@pytest.fixture
async def made(redis_server: PrivateRedis, prefix: str) -> AsyncIterator[list[RedisLeases]]:
    out: list[RedisLeases] = []
    yield out
    for lease in out:
        await lease.stop()


def node(
    made: list[RedisLeases],
    redis_server: PrivateRedis,
    prefix: str,
    pid: str,
    src: Callable[[], BeatInput],
) -> RedisLeases:
    leases = RedisLeases(redis_server.url, pid, src, prefix=prefix, ttl=TTL, interval=TTL / 4)
    made.append(leases)
    return leases


async def test_one_owner_at_a_time_and_the_next_one_gets_a_higher_fence(
    made: list[RedisLeases], redis_server: PrivateRedis, prefix: str
) -> None:
    seats = {INST: {"tok-a": json.dumps({"who": "a"})}}
    a = node(made, redis_server, prefix, "a", source("http://a", seats))
    b = node(made, redis_server, prefix, "b", source("http://b"))
    await a.start()
    await b.start()
    got = await a.acquire(INST)
    assert isinstance(got, Lease) and got.fence >= 1
    first = got.fence
    other = await b.acquire(INST)
    assert not isinstance(other, Lease) and other is not None and other.process_id == "a"
    # a keeps it while it beats, and its deadline moves on
    before = got.valid_until
    await until(lambda: a.mine[INST].valid_until > before)
    await b.beat()
    assert b.holders[INST].process_id == "a" and set(b.members) == {"a", "b"}
    assert await b.token_instance("tok-a") == INST

    # a stops beating (a process paused): the lease expires and b takes it, with the seats
    await stop_task(a._task)
    taken: list[tuple[Lease, dict[str, object]]] = []
    b.on_takeover.append(lambda lease, s: taken.append((lease, s)))
    await until(lambda: taken, 4 * TTL + 40 * WAIT)
    lease, saved = taken[0]
    assert lease.instance == INST and lease.fence > first
    assert saved == {"tok-a": {"who": "a"}}

    # a wakes up: it is late; its next beat learns it lost, and its seats are not written
    assert time.monotonic() > a.mine[INST].valid_until
    seats[INST] = {"tok-late": json.dumps({"who": "late"})}
    await a.beat()
    assert INST not in a.mine and got.lost and got.valid_until == -math.inf
    r = aioredis.Redis.from_url(redis_server.url)
    try:
        assert b"tok-late" not in await r.hkeys(f"{prefix}seats:{INST}")
        assert await r.get(f"{prefix}tok:tok-late") is None
    finally:
        await r.aclose()


async def test_an_owner_takes_its_leases_again_after_redis_came_back_empty(
    made: list[RedisLeases], redis_server: PrivateRedis, prefix: str
) -> None:
    a = node(made, redis_server, prefix, "a", source("http://a"))
    await a.start()
    got = await a.acquire(INST)
    assert isinstance(got, Lease)
    r = aioredis.Redis.from_url(redis_server.url)
    try:
        keys = await r.keys(f"{prefix}*")
        await r.delete(*keys)  # what a Redis without persistence looks like after a restart
        await a.beat()
        assert a.mine[INST] is got and not got.lost
        assert await r.get(f"{prefix}lease:{INST}") == f"a {got.fence}".encode()
        assert await r.get(f"{prefix}fence:{INST}") == str(got.fence).encode()
    finally:
        await r.aclose()


def test_a_seat_reservation_is_signed_and_short_lived() -> None:
    seats = Reservations(secret_for(None, "staff-token"), seconds=10)
    seat = seats.sign(INST, 1, now=1000.0)
    assert seats.check(seat, now=1005.0) is not None
    assert seats.check(seat, now=1005.0).instance == INST  # type: ignore[union-attr]
    assert seats.check(seat, now=1011.0) is None, "expired"
    payload, _, mac = seat.partition(".")
    forged = Reservations(secret_for(None, "another token")).sign("machida-city-hall#9", 0)
    assert seats.check(forged.partition(".")[0] + "." + mac, now=1005.0) is None
    assert seats.check(forged, now=1005.0) is None, "another cluster's secret"
    assert seats.check(payload + ".", now=1005.0) is None
    assert Reservations(secret_for("explicit", "x")).check(seat, now=1005.0) is None
