"""Processes that die or stall, and a Redis that stalls, under real ``emachi serve --redis`` child
processes: clients come back with their avatars, a late owner stops ticking, no tick waits on
Redis (server/cluster/leases.py, placement.py)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server.protocol.codes import CloseCode
from tests.cluster.test_store_pause import RunQueue, TimedClient
from tests.integration.client import Client
from tests.integration.process import ServeProcess
from tests.private_redis import PrivateRedis
from tests.tools import WAIT, until

pytestmark = pytest.mark.cluster

LEASE_TTL = 2.0
WORLD = "machida-city-hall"


@contextlib.asynccontextmanager
async def cluster_of(
    n: int, redis: PrivateRedis, tmp: Path, *args: str, lease_ttl: float = LEASE_TTL
) -> AsyncIterator[list[ServeProcess]]:
    procs = [
        # --shed-above 0: the snapshot gaps measured here are the Redis pause's, not shedding's
        ServeProcess(
            tmp / f"p{i}",
            ("--redis", redis.url, "--lease-ttl", str(lease_ttl), "--shed-above", "0", *args),
        )
        for i in range(n)
    ]
    try:
        # several interpreters starting at once on a shared, loaded machine: give them time
        await asyncio.gather(*(p.start(timeout=1200 * WAIT) for p in procs))
        async with aiohttp.ClientSession() as http:

            async def all_live() -> bool:
                for p in procs:
                    h = await (await http.get(p.http + "/healthz")).json()
                    if h["cluster"]["processes"] != n:
                        return False
                return True

            await until(all_live, 400 * WAIT)
        yield procs
    finally:
        for p in procs:
            if p.proc is not None and p.proc.poll() is None:
                os.kill(p.proc.pid, signal.SIGCONT)
            p.kill()


async def health(p: ServeProcess) -> dict[str, Any]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=50 * WAIT)) as http:
        return await (await http.get(p.http + "/healthz")).json()


def owner_of(procs: Sequence[ServeProcess], c: Client) -> ServeProcess:
    return next(p for p in procs if c.served == p.ws)


async def come_back(c: Client, urls: Sequence[str]) -> float:
    """Reconnect with the resume token through ``urls`` in turn (a load balancer that skips the
    dead), as the web client does; returns when it was welcomed (loop time)."""
    loop = asyncio.get_running_loop()
    await c.close()
    i = 0
    while True:
        c.url = urls[i % len(urls)]
        i += 1
        try:
            await c.connect()
            return loop.time()
        except (OSError, AssertionError, TimeoutError, Exception):
            await asyncio.sleep(2 * WAIT)


async def walk_then_stand(clients: Sequence[Client]) -> None:
    for _ in range(5):
        for i, c in enumerate(clients):
            a = 2 * math.pi * i / len(clients)
            await c.move(math.sin(a), math.cos(a))
        await clients[0].sync()
    for c in clients:
        await c.move(0.0, 0.0)
    for c in clients:
        await c.until(lambda c=c: c.last_snapshot is not None and c.last_snapshot.last_seq >= c.seq)


async def test_sigkill_of_the_owner_under_load_its_clients_are_back_with_their_avatars_within_5_s(
    own_redis: PrivateRedis, tmp_path: Path
) -> None:
    # the instance is full (25 and the late one): a resume waiting for the takeover must get its
    # own place back all the same, not a new avatar in an instance with room
    async with cluster_of(3, own_redis, tmp_path, "--capacity", "26") as procs:
        clients = [Client(procs[i % 3].ws, name=f"住民{i:02d}") for i in range(25)]
        try:
            for c in clients:
                await c.connect()
            owner = owner_of(procs, clients[0])
            assert all(c.served == owner.ws for c in clients), "one instance, one owner"
            await walk_then_stand(clients)
            await asyncio.sleep(1.5 * LEASE_TTL / 3 + 0.5)  # noqa: ASYNC110 - a seat write passes
            fence = (await health(owner))["cluster"]["leases"][f"{WORLD}#1"]
            survivors = [p for p in procs if p is not owner]
            # one more resident comes in just before the kill: it has seen the hall (its first
            # snapshot, a twentieth of a second) but no lease beat has passed since it joined
            late = Client(survivors[0].ws, name="遅刻")
            clients.append(late)
            await late.connect()
            await late.until(lambda: late.position() is not None)
            before = {c.name: (c.avatar_id, c.welcome.instance, c.position()) for c in clients}  # type: ignore[union-attr]
            tokens = {c.name: c.resume for c in clients}

            loop = asyncio.get_running_loop()
            assert owner.proc is not None
            owner.proc.kill()
            killed = loop.time()
            # all at once, through both survivors (as a balancer spreads them): the one that
            # takes the instance over must give every avatar back before it serves any hello
            urls = [p.ws for p in survivors]
            back = await asyncio.wait_for(
                asyncio.gather(
                    *(come_back(c, urls[i % 2 :] + urls[: i % 2]) for i, c in enumerate(clients))
                ),
                30.0,
            )
            worst = max(back) - killed
            # a new avatar gets a new resume token (its id may happen to be the same number)
            strangers = [c.name for c in clients if c.resume != tokens[c.name]]
            assert not strangers, f"came back as new avatars: {strangers}"
            for c in clients:
                avatar, instance, (floor, x, z) = before[c.name]  # type: ignore[misc]
                assert (c.avatar_id, c.welcome.instance) == (avatar, instance)  # type: ignore[union-attr]
                await c.until(lambda c=c: c.position() is not None)
                f2, x2, z2 = c.position()  # type: ignore[misc]
                assert f2 == floor and math.hypot(x2 - x, z2 - z) < 0.3
            new_owner = owner_of(survivors, clients[0])
            assert (await health(new_owner))["cluster"]["leases"][f"{WORLD}#1"] > fence
            assert worst <= 5.0, f"the last client was back {worst:.2f} s after the SIGKILL"
        finally:
            for c in clients:
                await c.close()


async def test_an_owner_paused_past_its_lease_does_not_tick_when_it_wakes_and_its_clients_move(
    own_redis: PrivateRedis, tmp_path: Path
) -> None:
    async with cluster_of(2, own_redis, tmp_path) as procs:
        clients = [TimedClient(procs[i % 2].ws, name=f"住民{i}") for i in range(3)]
        try:
            for c in clients:
                await c.connect()
            owner = owner_of(procs, clients[0])
            other = next(p for p in procs if p is not owner)
            await asyncio.sleep(0.8)  # noqa: ASYNC110 - a seat write passes
            fence = (await health(owner))["cluster"]["leases"][f"{WORLD}#1"]
            assert owner.proc is not None
            os.kill(owner.proc.pid, signal.SIGSTOP)

            async def taken_over() -> int:
                f = (await health(other))["cluster"]["leases"].get(f"{WORLD}#1", 0)
                return f if f > fence else 0

            new_fence = await until(taken_over, 10 * LEASE_TTL)
            assert new_fence > fence
            woke = time.time()
            os.kill(owner.proc.pid, signal.SIGCONT)
            for c in clients:
                await c.closed(200 * WAIT)
                assert c.ws is not None and c.ws.close_code == CloseCode.MOVED
                # not one snapshot ticked after the owner woke (those written before are fine)
                assert not [t for t in c.server_times if t > woke + 0.05], c.name
            for c in clients:
                await come_back(c, [p.ws for p in procs])
                assert c.served == other.ws
        finally:
            for c in clients:
                await c.close()


async def test_a_redis_paused_for_10_s_delays_no_tick_and_the_leases_heal(
    own_redis: PrivateRedis, tmp_path: Path
) -> None:
    async with cluster_of(2, own_redis, tmp_path, "--capacity", "2") as procs:
        walkers = [TimedClient(procs[i % 2].ws, name=f"歩く{i}") for i in range(4)]
        tasks: list[asyncio.Task[None]] = []
        running = True

        async def walk(c: Client, i: int) -> None:
            k = 0
            while running:
                a = 2 * math.pi * (i / 4 + k / 10)
                await c.move(math.sin(a), math.cos(a))
                k += 1
                await asyncio.sleep(2 * WAIT)

        try:
            for c in walkers:
                await c.connect()
            assert {c.served for c in walkers} == {p.ws for p in procs}, "two instances, two owners"
            leases = {p.ws: (await health(p))["cluster"]["leases"] for p in procs}
            queues = {p.ws: RunQueue(p.proc.pid) for p in procs if p.proc is not None}
            tasks = [asyncio.create_task(q.run()) for q in queues.values()]
            tasks += [asyncio.create_task(walk(c, i)) for i, c in enumerate(walkers)]
            loop = asyncio.get_running_loop()
            await asyncio.sleep(1.0)  # noqa: ASYNC110 - walking before the pause
            paused_at = time.time()
            own_redis.pause()
            await until(lambda: loop.time() > 0 and time.time() > paused_at + 10.0, 250 * WAIT)
            own_redis.resume()
            resumed_at = time.time()
            await until(lambda: time.time() > resumed_at + 2 * LEASE_TTL, 200 * WAIT)
            running = False
            for t in tasks[len(queues) :]:
                await t
            for c in walkers:
                assert c.close_code is None, (c.name, c.close_code)
                q = queues[c.served]
                times = [t for t in c.server_times if paused_at - 0.5 <= t <= resumed_at + 1.0]
                assert len(times) > 150, (c.name, len(times))
                gaps = [
                    (b - a - q.during(a, b), a, b) for a, b in zip(times, times[1:], strict=False)
                ]
                worst = max(gaps)
                assert worst[0] < 0.100, (
                    f"{c.name}: a {(worst[2] - worst[1]) * 1000:.0f} ms gap, "
                    f"{worst[0] * 1000:.0f} ms of it not waiting for a core"
                )
            # healed without a restart: the same owners, the same fences, Redis seen again
            for p in procs:
                h = await until(lambda p=p: _ok(p), 200 * WAIT)
                assert h["cluster"]["leases"] == leases[p.ws]
        finally:
            running = False
            for t in tasks:
                t.cancel()
                with contextlib.suppress(BaseException):
                    await t
            own_redis.resume()
            for c in walkers:
                await c.close()


async def _ok(p: ServeProcess) -> dict[str, Any] | None:
    h = await health(p)
    return h if h["cluster"]["redis"] == "ok" else None
