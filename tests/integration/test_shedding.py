"""A process out of CPU sheds snapshots and keeps ticking (server/shedding.py), for real: a server
whose budget is set below what it uses sends each viewer a snapshot every 4 ticks while its
instance still ticks 20 times a second, and goes back to every tick once the budget allows."""

from __future__ import annotations

import math
import time

from server.keys import HALL
from tests.integration.client import Client
from tests.integration.conftest import StartServer


def _steps(c: Client, since: int) -> set[int]:
    ticks = [t for t, _ in c.received[since:]]
    return {b - a for a, b in zip(ticks, ticks[1:], strict=False)}


async def test_over_its_cpu_budget_a_process_sends_fewer_snapshots_at_the_same_tick_rate(
    start_server: StartServer,
) -> None:
    srv = await start_server(tick_rate=20, snapshot_rate=20, shed_above=1e-6)
    hall = srv.app[HALL]
    hall.governor.every = 0.2
    async with Client(srv.ws, "a") as a, Client(srv.ws, "b") as b:
        await a.move(1.0, 0.0)
        inst = hall.instances[0]
        await a.until(lambda: inst.shed == 4)
        since = len(a.received), len(b.received)
        tick0, t0 = inst.tick, time.monotonic()
        await a.until(lambda: len(a.received) > since[0] + 10 and len(b.received) > since[1] + 10)
        # each viewer: every 4th tick, and nothing else
        assert _steps(a, since[0]) == {4}, a.received[since[0] :]
        assert _steps(b, since[1]) == {4}, b.received[since[1] :]
        # while the instance kept its 20 ticks a second (some slack for a busy test machine)
        rate = (inst.tick - tick0) / (time.monotonic() - t0)
        assert rate > 15, rate
        # and a viewer still sees the other walk, at the fewer snapshots
        seen = b.position(a.avatar_id)
        assert seen is not None

        def walked() -> bool:
            now = b.position(a.avatar_id)
            return now is not None and math.dist(now[1:], seen[1:]) > 0.5

        await b.until(walked)

        # the budget allows it again: back one step a window, to every tick
        hall.governor.high = 100.0
        await a.until(lambda: inst.shed == 1)
        again = len(a.received)
        await a.until(lambda: len(a.received) > again + 10)
        assert _steps(a, again) == {1}, a.received[again:]
