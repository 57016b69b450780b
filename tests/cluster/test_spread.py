"""Instances spread over the processes of a cluster, when they open and after a failover, and a
process killed with SIGKILL stops being routed to before its leases expire
(server/cluster/placement.py, leases.py), under three real ``emachi serve --redis`` child
processes behind Debian's HAProxy (round robin, no stickiness).

What an operator notices: how many instances each process owns (``/healthz`` ``cluster.leases``);
what a resident notices: every hello is welcomed, and after a process dies it is back with its
avatar having been sent at most once to the dead address.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from tests.haproxy import StartHAProxy
from tests.integration.client import Client
from tests.integration.process import ServeProcess
from tests.private_redis import PrivateRedis
from tests.tools import WAIT, until

from .test_failover import cluster_of, health

pytestmark = pytest.mark.cluster

WORLD = "machida-city-hall"
CAPACITY = 4


async def welcomed(url: str, name: str) -> Client:
    """A newcomer through ``url`` (following REDIRECTs); fails with the close code when the
    hello is refused (WORLD_FULL) instead of welcomed."""
    c = Client(url, name=name)
    try:
        await c.connect()
    except ConnectionClosed as exc:
        raise AssertionError(f"{name}'s hello was refused: {exc.rcvd}") from exc
    return c


async def owned(procs: Sequence[ServeProcess]) -> list[list[str]]:
    """The instances each process owns, as its /healthz says."""
    return [sorted((await health(p))["cluster"]["leases"]) for p in procs]


async def back_through(c: Client, url: str) -> int:
    """Reconnect with the resume token through the balancer as the web client does: again
    0.2 s after a redirect that led nowhere (the next hello says which address: ``opts.gone``),
    after 0.5 s otherwise. Returns how many redirects led nowhere."""
    await c.close()
    c.url = url
    lost = 0
    while True:
        try:
            await c.connect()
            return lost
        except (OSError, AssertionError, TimeoutError, ConnectionClosed, InvalidHandshake):
            if c.redirects:
                lost += 1
                await asyncio.sleep(4 * WAIT)
            else:
                await asyncio.sleep(10 * WAIT)


async def test_new_instances_open_on_every_process_and_no_hello_is_refused(
    own_redis: PrivateRedis, tmp_path: Path, start_haproxy: StartHAProxy
) -> None:
    async with cluster_of(3, own_redis, tmp_path, "--capacity", str(CAPACITY)) as procs:
        lb = await start_haproxy([("127.0.0.1", p.port) for p in procs])
        clients: list[Client] = []
        try:
            # one after another, as fast as they come: each process's beat lags behind
            for i in range(3 * CAPACITY):
                clients.append(await welcomed(lb.ws, f"住民{i:02d}"))
            per_instance = Counter(c.welcome.instance for c in clients if c.welcome)
            assert sorted(per_instance.values()) == [CAPACITY] * 3, per_instance
            assert sorted(len(x) for x in await owned(procs)) == [1, 1, 1], await owned(procs)
            # then a burst at once, through every process: one more instance, nobody refused
            more = await asyncio.gather(
                *(welcomed(lb.ws, f"後から{i}") for i in range(CAPACITY)), return_exceptions=True
            )
            clients += [c for c in more if isinstance(c, Client)]
            refused = [str(x) for x in more if not isinstance(x, Client)]
            assert not refused, refused
            per_instance = Counter(c.welcome.instance for c in clients if c.welcome)
            assert sorted(per_instance.values()) == [CAPACITY] * 4, per_instance
            assert sorted(len(x) for x in await owned(procs)) == [1, 1, 2], await owned(procs)
        finally:
            for c in clients:
                await c.close()


async def test_a_killed_process_is_routed_around_before_its_leases_expire_and_its_instances_spread(
    own_redis: PrivateRedis, tmp_path: Path, start_haproxy: StartHAProxy
) -> None:
    # a long lease: the dead process's presence record and leases outlive its beat by seconds
    ttl = 5.0
    async with cluster_of(
        3, own_redis, tmp_path, "--capacity", str(CAPACITY), lease_ttl=ttl
    ) as procs:
        lb = await start_haproxy([("127.0.0.1", p.port) for p in procs])
        clients: list[Client] = []
        redis = aioredis.Redis.from_url(own_redis.url)
        try:
            for i in range(4 * CAPACITY):
                clients.append(await welcomed(lb.ws, f"住民{i:02d}"))
            leases = await owned(procs)
            per_instance = Counter(c.welcome.instance for c in clients if c.welcome)
            assert sorted(per_instance.values()) == [CAPACITY] * 4, (per_instance, leases)
            victim = procs[max(range(3), key=lambda i: len(leases[i]))]
            lost = sorted(leases[procs.index(victim)])
            assert len(lost) == 2, leases
            survivors = [p for p in procs if p is not victim]
            theirs = [c for c in clients if c.welcome is not None and c.welcome.instance in lost]
            assert len(theirs) == 2 * CAPACITY
            pid = (await health(victim))["cluster"]["process"]

            async def seated() -> bool:
                """Every avatar of the victim has its seat in Redis (written when it joined)."""
                n = [await redis.hlen(f"emachi:seats:{i}") for i in lost]
                return n == [CAPACITY, CAPACITY]

            await until(seated, 200 * WAIT)
            before = {c.name: (c.resume, c.avatar_id, c.welcome.instance) for c in theirs}  # type: ignore[union-attr]

            others = [(await health(p))["cluster"]["process"] for p in survivors]
            assert victim.proc is not None
            victim.proc.kill()
            killed = time.monotonic()
            # half of its residents come back at once: until the survivors notice, a hello may
            # still be sent to the dead address, once
            early = [asyncio.create_task(back_through(c, lb.ws)) for c in theirs[::2]]

            async def routed_around() -> bool:
                """No survivor routes to the dead process any more."""
                views = [(await health(p))["cluster"]["live"] for p in survivors]
                return all(pid not in v for v in views)

            await until(routed_around, 2 * ttl)
            # ... and its leases have not expired yet: its beat, not its record, told (on one
            # machine its refused port tells too: a survivor may hold them already, with a
            # higher fence, but none lapsed unheld)
            held = [await redis.get(f"emachi:lease:{i}") for i in lost]
            assert time.monotonic() - killed < ttl
            assert all(
                h is not None and h.decode().rpartition(" ")[0] in (pid, *others) for h in held
            ), held
            # the other half comes back now, before the leases expire: never sent to it
            late = [asyncio.create_task(back_through(c, lb.ws)) for c in theirs[1::2]]
            early_lost = await asyncio.wait_for(asyncio.gather(*early), 4 * ttl)
            late_lost = await asyncio.wait_for(asyncio.gather(*late), 4 * ttl)
            assert max(early_lost) <= 1, early_lost
            assert late_lost == [0] * len(late_lost), late_lost
            # every one with its own avatar in its own instance
            for c in theirs:
                assert (c.resume, c.avatar_id, c.welcome.instance) == before[c.name]  # type: ignore[union-attr]
            # the two instances reopened one on each survivor
            now = await owned(survivors)
            assert sorted(len(x) for x in now) == [2, 2], now
            assert sorted(i for x in now for i in x) == sorted(f"{WORLD}#{n}" for n in range(1, 5))
        finally:
            with contextlib.suppress(Exception):
                await redis.aclose()
            for c in clients:
                await c.close()
