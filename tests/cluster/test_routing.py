"""One city on several processes: a hello that reaches a process that does not own its instance is
redirected to the owner (server/cluster/placement.py), so residents connected anywhere meet."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from server import cluster
from server.cluster.placement import MAX_HOPS
from server.keys import PLACEMENT
from server.protocol.codes import PROTOCOL_VERSION, CloseCode
from server.protocol.messages import Hello, Redirect, Welcome, decode
from tests.integration.client import Client
from tests.tools import WAIT, until

from .conftest import PrivateRedis, StartNode

pytestmark = pytest.mark.cluster

WORLD = "machida-city-hall"


async def nodes(start_node: StartNode, redis: PrivateRedis, n: int = 2, **kw: Any) -> list[Any]:
    out = [await start_node(redis_url=redis.url, **kw) for _ in range(n)]

    def everyone_sees_everyone() -> bool:
        return all(len(s.app[cluster.CLUSTER].leases.members) == n for s in out)

    await until(everyone_sees_everyone, 200 * WAIT)
    return out


async def test_two_residents_connected_to_different_processes_see_each_other_walk(
    start_node: StartNode, redis_server: PrivateRedis
) -> None:
    one, two = await nodes(start_node, redis_server)
    a = Client(one.ws, name="あ")
    b = Client(two.ws, name="い")
    try:
        await a.connect()
        await b.connect()
        assert a.welcome is not None and b.welcome is not None
        assert a.welcome.instance == b.welcome.instance == f"{WORLD}#1"
        assert len(a.redirects) + len(b.redirects) == 1, "one of them was sent to the owner"
        assert a.served == b.served
        # each sees the other, and sees it move
        await a.until(lambda: b.avatar_id in a.view)
        start = a.position(b.avatar_id)
        for _ in range(10):
            await b.move(0.0, 1.0)
            await b.sync()
        await a.until(lambda: a.position(b.avatar_id) != start)
        await b.until(lambda: a.avatar_id in b.view)
    finally:
        await a.close()
        await b.close()


async def test_the_one_past_capacity_lands_in_instance_two_wherever_it_connects(
    start_node: StartNode, redis_server: PrivateRedis
) -> None:
    servers = await nodes(start_node, redis_server, capacity=2)
    clients = [Client(servers[i % 2].ws, name=f"住民{i}") for i in range(4)]
    try:
        for c in clients:
            await c.connect()
        instances = [c.welcome.instance for c in clients if c.welcome]
        assert instances[:2] == [f"{WORLD}#1"] * 2
        assert instances[2:] == [f"{WORLD}#2"] * 2, instances
    finally:
        for c in clients:
            await c.close()


async def test_a_resident_resumes_through_any_process_with_the_same_avatar_where_it_stood(
    start_node: StartNode, redis_server: PrivateRedis
) -> None:
    one, two = await nodes(start_node, redis_server)
    a = Client(one.ws, name="あ")
    await a.connect()
    owner, other = (one, two) if a.served == one.ws else (two, one)
    try:
        for _ in range(6):
            await a.move(1.0, 0.0)
            await a.sync()
        await a.move(0.0, 0.0)
        await a.until(lambda: a.last_snapshot is not None and a.last_snapshot.last_seq >= a.seq)
        where = a.position()
        avatar, token = a.avatar_id, a.resume
        await a.close()
        # through the process that does not own the instance: sent to the owner, same avatar
        back = Client(other.ws, name="別人", resume=token)
        await back.connect()
        try:
            assert back.redirects and back.served == owner.ws
            assert back.avatar_id == avatar and back.resume == token
            await back.until(lambda: back.position() is not None)
            f, x, z = back.position()  # type: ignore[misc]
            assert where is not None and f == where[0]
            assert abs(x - where[1]) < 0.3 and abs(z - where[2]) < 0.3
        finally:
            await back.close()
    finally:
        await a.close()


async def test_a_forged_seat_reservation_is_not_followed(
    start_node: StartNode, redis_server: PrivateRedis
) -> None:
    one, two = await nodes(start_node, redis_server)
    a = Client(one.ws, name="あ")
    await a.connect()
    try:
        other = two if a.served == one.ws else one
        # a made-up seat for an instance nobody opened: served where it is, never redirected on
        b = Client(other.ws, name="い", seat="eyJpIjoieCMxIiwiaCI6MCwiZSI6OTk5OTk5OTk5OX0.AAAA")
        await b.connect()
        assert b.welcome is not None and b.welcome.instance == a.welcome.instance  # type: ignore[union-attr]
        assert b.served == a.served
        await b.close()
    finally:
        await a.close()


async def test_a_resume_out_of_redirects_is_told_to_try_again_not_given_a_new_avatar(
    start_node: StartNode, redis_server: PrivateRedis
) -> None:
    """During a failover the processes' views of who owns what are a beat apart, so a resume can
    be redirected until its hops run out. It must then keep the resident's place: closed MOVED
    with no REDIRECT (the web client says hello again through the balancer), never welcomed as a
    new avatar in another instance; and the next plain resume gets the same avatar back."""
    one, two = await nodes(start_node, redis_server)
    a = Client(one.ws, name="あ")
    await a.connect()
    owner, other = (one, two) if a.served == one.ws else (two, one)
    avatar, token, inst = a.avatar_id, a.resume, a.welcome.instance  # type: ignore[union-attr]
    await a.close()
    placement = other.app[PLACEMENT]
    seat = placement.reservations.sign(inst, MAX_HOPS)  # as if redirected MAX_HOPS times
    async with connect(other.ws, compression=None) as ws:
        await ws.send(
            Hello(version=PROTOCOL_VERSION, name="あ", resume=token, opts={"seat": seat}).encode()
        )
        got = []
        with contextlib.suppress(ConnectionClosed):
            async for data in ws:
                got.append(decode(data))  # type: ignore[arg-type]
        assert ws.close_code == CloseCode.MOVED, (ws.close_code, ws.close_reason, got)
        assert not any(isinstance(m, Welcome | Redirect) for m in got), got
    back = Client(other.ws, name="あ", resume=token)
    await back.connect()
    try:
        assert back.served == owner.ws and back.avatar_id == avatar
        assert back.welcome is not None and back.welcome.instance == inst
    finally:
        await back.close()
