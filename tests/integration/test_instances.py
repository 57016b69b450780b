"""Instances over time, and what a client's acks and inputs may do to its own stream.

A mass leave then rejoin stays in the first instance; an extra instance that stands empty is
disposed and stops ticking; an ACK for a tick never sent does not force full snapshots; a
reloaded page that resumes its avatar moves it with its first input.
"""

from __future__ import annotations

import asyncio
import math

from server.hall import Hall
from server.instance import InstanceState
from server.keys import HALL
from server.protocol.messages import Ack, Input
from server.session import Session
from tests.integration.client import WAIT, Client
from tests.integration.conftest import RunningServer, StartServer

U32_MAX = 2**32 - 1


async def _until(predicate: object, timeout: float = 100 * WAIT) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        if loop.time() > end:
            raise AssertionError(
                f"timed out waiting for {getattr(predicate, '__name__', predicate)}"
            )
        await asyncio.sleep(WAIT)


def _session(name: str) -> Session:
    s = Session(256 * 1024, 60.0, 120.0)
    s.name = name
    return s


async def test_mass_leave_then_rejoin_of_300_lands_all_in_instance_1(
    start_server: StartServer,
) -> None:
    # the hall's placement is what is tested: sessions without sockets, as the handler makes them
    srv = await start_server(capacity=300, tick_rate=2, snapshot_rate=2)
    hall: Hall = srv.app[HALL]
    first = [hall.join(_session(f"a{i}")) for i in range(300)]
    assert {s.instance for s in first} == {hall.instances[0]}
    for s in first:
        hall.leave(s)  # everyone leaves at once (a briefing ends) ...
    again = [hall.join(_session(f"b{i}")) for i in range(300)]  # ... and comes back at once
    assert len(hall.instances) == 1
    assert {s.instance for s in again} == {hall.instances[0]}
    assert sorted(s.avatar_id for s in again) == list(range(300))


async def test_a_join_goes_to_the_emptiest_open_instance(start_server: StartServer) -> None:
    srv = await start_server(capacity=4, tick_rate=2, snapshot_rate=2)
    hall: Hall = srv.app[HALL]
    people = [hall.join(_session(f"p{i}")) for i in range(6)]  # 4 in #1, 2 in #2
    assert [len(i.sessions) for i in hall.instances] == [4, 2]
    for s in people[:3]:
        hall.leave(s)  # #1 now holds 1, #2 holds 2
    newcomer = hall.join(_session("new"))
    assert newcomer.instance is hall.instances[0]
    assert len(hall.instances) == 2


async def test_an_empty_extra_instance_is_disposed_and_stops_ticking(
    start_server: StartServer,
) -> None:
    srv = await start_server(capacity=1, resume_window=0.1)
    hall: Hall = srv.app[HALL]
    hall.dispose_grace = 0.2
    hall.reap_every = 0.1
    async with Client(srv.ws, "one") as one:
        async with Client(srv.ws, "two") as two:
            assert two.welcome is not None and two.welcome.instance.endswith("#2")
            extra = hall.instances[1]
            await two.until(lambda: two.snapshots > 2)
        # "two" has left; once its resume window and the grace period are over, #2 goes
        await _until(lambda: extra.state is InstanceState.DISPOSED, 200 * WAIT)
        assert extra not in hall.instances
        assert extra._task is not None and extra._task.done()
        stopped_at = extra.tick
        await asyncio.sleep(4 * WAIT)  # a stopped tick must stay stopped: nothing to wait for
        assert extra.tick == stopped_at
        # the first instance is never disposed, and still serves
        n = one.snapshots
        await one.until(lambda: one.snapshots > n + 2)
        assert hall.instances[0].id.endswith("#1")


async def test_an_ack_for_a_tick_never_sent_does_not_force_full_snapshots(
    server: RunningServer,
) -> None:
    async with Client(server.ws, "a") as a, Client(server.ws, "b") as b:
        await a.move(0.0, 1.0)
        await b.until(lambda: b.last_snapshot is not None and b.last_snapshot.base_tick > 0)
        await b.send(Ack(tick=U32_MAX))
        await b.send(Input(seq=1, ack_tick=U32_MAX - 1, mx=0.0, mz=0.0, yaw=0.0))
        n = b.snapshots
        await b.until(lambda: b.snapshots > n + 10)
        snap = b.last_snapshot
        assert snap is not None
        assert snap.base_tick > 0 and snap.full == b""  # still deltas, against real acks
        assert b.close_code is None


async def test_a_reload_that_resumes_moves_at_once(server: RunningServer) -> None:
    async with Client(server.ws, "watcher") as watcher:
        first = Client(server.ws, "ゆうた")
        await first.connect()
        me = first.avatar_id
        first.seq = 500  # the old page has sent many inputs
        await first.move(1.0, 0.0)
        await watcher.until(lambda: watcher.position(me) is not None)
        await first.move(0.0, 0.0)
        await first.close()
        token = first.resume
        # the reloaded page finds its token and counts its inputs from 1 again
        async with Client(server.ws, "ゆうた", resume=token) as again:
            assert again.avatar_id == me and again.seq == 0
            await again.until(lambda: again.position() is not None)
            start = again.position()
            assert start is not None
            await again.move(0.0, 1.0)
            await again.until(lambda: _dist(again.position(), start) > 0.5, 40 * WAIT)
            last = again.last_snapshot
            assert last is not None and last.last_seq == 1


def _dist(a: tuple[int, float, float] | None, b: tuple[int, float, float]) -> float:
    assert a is not None
    return math.hypot(a[1] - b[1], a[2] - b[2])
