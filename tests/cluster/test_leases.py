"""Instance leases in a real Redis: one owner at a time, a higher fence for each new owner, and no
write from an owner that was late (server/cluster/leases.py)."""

from __future__ import annotations

import asyncio
import json
import math
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from server.cluster.leases import NODE, BeatInput, Lease, RedisLeases
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


async def test_whoever_takes_an_instance_a_dead_process_left_takes_its_seats_in_the_same_step(
    made: list[RedisLeases], redis_server: PrivateRedis, prefix: str
) -> None:
    """A lost seat is a resident who comes back as a stranger: the seats must come with the lease
    (a hello or a beat between the two would find the instance held here and empty)."""
    seats = {INST: {"tok-a": json.dumps({"who": "a"}), "tok-b": json.dumps({"who": "b"})}}
    a = node(made, redis_server, prefix, "a", source("http://a", seats))
    b = node(made, redis_server, prefix, "b", source("http://b"))  # INST not open on b
    await a.start()
    assert isinstance(await a.acquire(INST), Lease)
    await a.beat()
    await stop_task(a._task)  # a dies: no more beats

    taken: list[dict[str, object]] = []
    held_empty: list[float] = []
    b.on_takeover.append(lambda lease, s: taken.append(s))
    watching = True

    async def watch() -> None:  # every turn of the loop: never held here without the seats
        while watching:
            if INST in b.mine and not taken:
                held_empty.append(time.monotonic())
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    r = aioredis.Redis.from_url(redis_server.url)
    try:
        await b.start()
        # b's beat takes it over, or b does when it is free (as a reservation or a new
        # instance's number would)
        await until(lambda: INST in b.mine or _gone(r, f"{prefix}lease:{INST}"), 4 * TTL)
        got = await b.acquire(INST)
        assert isinstance(got, Lease) and b.mine[INST] is got
        assert taken == [{"tok-a": {"who": "a"}, "tok-b": {"who": "b"}}]
        assert not held_empty, "the instance was held here before its avatars were given back"
        # b's beats, while the instance is not open on b, keep its seats in Redis
        await b.beat()
        assert set(await r.hkeys(f"{prefix}seats:{INST}")) == {b"tok-a", b"tok-b"}
        # a new avatar's seat is written at once, not a beat later
        b.seat(INST, "tok-c", json.dumps({"who": "c"}))
        await until(lambda: _has(r, f"{prefix}seats:{INST}", "tok-c"), 40 * WAIT)
        assert await r.get(f"{prefix}tok:tok-c") == INST.encode()
    finally:
        watching = False
        await watcher
        await r.aclose()


def _gone(r: aioredis.Redis, key: str) -> Awaitable[bool]:
    async def check() -> bool:
        return not await r.exists(key)

    return check()


async def _has(r: aioredis.Redis, key: str, field: str) -> bool:
    return bool(await r.hexists(key, field))


async def test_a_redis_call_that_timed_out_does_not_hold_a_takeover_back_for_a_lease(
    made: list[RedisLeases], own_redis: PrivateRedis, prefix: str
) -> None:
    """On a loaded machine one call times out now and then; a process that saw that must still
    take over an instance whose owner died when its lease expires, not a whole lease later."""
    ttl, interval = 2.0, 0.25  # a gap shorter than ttl less two beats (1.5 s) lets no lease lapse
    seats = {INST: {"tok-a": json.dumps({"who": "a"})}}
    a = RedisLeases(own_redis.url, "a", source("http://a", seats), prefix=prefix, ttl=ttl)
    b = RedisLeases(own_redis.url, "b", source("http://b"), prefix=prefix, ttl=ttl)
    a.interval = b.interval = interval
    made.extend([a, b])
    await a.start()
    await b.start()
    assert isinstance(await a.acquire(INST), Lease)
    await a.beat()
    await stop_task(a._task)  # a dies
    taken: list[float] = []
    b.on_takeover.append(lambda lease, s: taken.append(time.monotonic()))
    paused = time.monotonic()
    own_redis.pause()  # b's calls time out for a second
    try:
        await until(lambda: not b.connected, 40 * WAIT)
        await until(lambda: time.monotonic() > paused + 1.0, 40 * WAIT)
    finally:
        own_redis.resume()
    await until(lambda: b.connected, 40 * WAIT)
    back = time.monotonic()
    await until(lambda: taken, 2 * ttl + 40 * WAIT)
    # a's lease expired ttl after its last beat (a second after Redis answered b again), and b
    # took it then: not a whole lease after Redis was back
    assert taken[0] - back < ttl - 0.4, f"taken {taken[0] - back:.2f} s after Redis was back"


async def test_a_process_whose_beat_stops_is_gone_for_routing_before_its_leases_expire(
    made: list[RedisLeases], redis_server: PrivateRedis, prefix: str
) -> None:
    """A SIGKILLed process's presence record lives as long as its leases: its stopped beat
    counter, not the record, tells the others it is gone; its leases still expire only in Redis,
    and then its instances go one to each survivor."""
    ttl, interval = 3.0, 0.25  # stale after two beats (0.5 s); the leases last 3 s
    one, two = "machida-city-hall#1", "machida-city-hall#2"
    seats = {i: {f"tok-{i}": json.dumps({"who": i})} for i in (one, two)}
    a = RedisLeases(redis_server.url, "a", source("http://a", seats), prefix=prefix, ttl=ttl)
    b = RedisLeases(redis_server.url, "b", source("http://b"), prefix=prefix, ttl=ttl)
    c = RedisLeases(redis_server.url, "c", source("http://c"), prefix=prefix, ttl=ttl)
    for x in (a, b, c):
        x.interval = interval
    made.extend([a, b, c])
    for x in (a, b, c):
        await x.start()
    for i in (one, two):
        assert isinstance(await a.acquire(i), Lease)
    await until(lambda: all(set(x.members) == {"a", "b", "c"} for x in (b, c)), 40 * WAIT)
    await until(lambda: all(b.holders.get(i) and c.holders.get(i) for i in (one, two)), 40 * WAIT)

    await stop_task(a._task)  # a dies: no more beats; its record and leases live on in Redis
    taken: dict[str, list[str]] = {"b": [], "c": []}
    b.on_takeover.append(lambda lease, s: taken["b"].append(lease.instance))
    c.on_takeover.append(lambda lease, s: taken["c"].append(lease.instance))
    await until(lambda: all("a" in x.stale and "a" not in x.members for x in (b, c)), 40 * WAIT)
    r = aioredis.Redis.from_url(redis_server.url)
    try:
        # still there: only the counter told
        assert await r.get(f"{prefix}live:a") is not None
        assert all(
            [(await r.get(f"{prefix}lease:{i}") or b"").startswith(b"a ") for i in (one, two)]
        )
        assert await b.member("a") is None, "a hello is not sent to it"
        # each survivor takes its share when the leases expire
        await until(lambda: taken["b"] and taken["c"], 2 * ttl + 40 * WAIT)
        assert len(taken["b"]) == len(taken["c"]) == 1, taken
        assert sorted(taken["b"] + taken["c"]) == [one, two]
    finally:
        await r.aclose()


def probing(url: str, probe: str, seats: dict[str, dict[str, str]]) -> Callable[[], BeatInput]:
    """A beat source that gives a probe address (as ``emachi serve`` does: where it listens)."""

    def beat() -> BeatInput:
        return BeatInput(url, 1, {k: len(v) for k, v in seats.items()}, seats, probe)

    return beat


@pytest.mark.parametrize("listening", [False, True], ids=["dead", "paused"])
async def test_a_stale_owner_whose_port_refuses_is_taken_over_before_its_lease_expires(
    made: list[RedisLeases], redis_server: PrivateRedis, prefix: str, listening: bool
) -> None:
    """A SIGKILLed process on this machine: its beat stops and its port refuses connections, so
    a survivor takes its instance at once with a higher fence (the dead one's seat writes are
    refused), not a lease later. A paused one still listens (the kernel accepts for it): its
    lease is only taken when it expires, as before."""
    if not NODE:
        pytest.skip("no /proc: this machine does not say which processes share its network")
    ttl, interval = 6.0, 0.25
    # a port nothing listens on (dead), or one a socket listens on and never accepts from: the
    # kernel completes the connections for it, as for a paused process (paused)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    probe = f"127.0.0.1:{sock.getsockname()[1]}"
    if listening:
        sock.listen(64)
    else:
        sock.close()
    seats = {INST: {"tok-a": json.dumps({"who": "a"})}}
    a = RedisLeases(
        redis_server.url, "a", probing("http://a", probe, seats), prefix=prefix, ttl=ttl
    )
    b = RedisLeases(redis_server.url, "b", source("http://b"), prefix=prefix, ttl=ttl)
    a.interval = b.interval = interval
    made.extend([a, b])
    taken: list[tuple[int, dict[str, Any]]] = []
    b.on_takeover.append(lambda lease, s: taken.append((lease.fence, s)))
    r = aioredis.Redis.from_url(redis_server.url)
    try:
        await a.start()
        await b.start()
        got = await a.acquire(INST)
        assert isinstance(got, Lease)
        await until(lambda: "a" in b.members and INST in b.holders, 40 * WAIT)
        await stop_task(a._task)  # a's beat stops; its lease lives on for ttl
        stopped = time.monotonic()
        if listening:
            await asyncio.sleep(ttl / 2)  # noqa: ASYNC110 - well past stale, well before expiry
            assert "a" in b.stale and not taken, "a process that still listens was taken over"
            await until(lambda: taken, 2 * ttl)
            assert time.monotonic() - stopped > ttl * 0.8, "taken before its lease expired"
        else:
            await until(lambda: taken, ttl / 2)
            assert time.monotonic() - stopped < ttl / 2
            assert "a" in b.dead
        fence, given = taken[0]
        assert fence > got.fence and given == {"tok-a": {"who": "a"}}
        assert b.mine[INST].fence == fence
        # the dead one's seats are refused now: its fence is not the instance's any more
        a.seat(INST, "tok-late", json.dumps({"who": "late"}))
        await asyncio.sleep(10 * WAIT)  # noqa: ASYNC110 - the seat writer's turn
        assert not await r.hexists(f"{prefix}seats:{INST}", "tok-late")
    finally:
        sock.close()
        await r.aclose()
