"""The drain says "reconnect with your resume token": after a restart of the process, it works.

Found: after a SIGTERM and a restart, 0 of 20 tokens worked (the hall lived only in memory).
Here a real ``emachi serve`` child process serves 20 walking clients, is stopped with SIGTERM and
started again on the same data dir; every client comes back with the same avatar id, in the same
instance, where it stood, under its name.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from pathlib import Path

from server.protocol.messages import Notice
from tests.integration.client import WAIT, Client
from tests.integration.process import ServeProcess

N = 20


async def test_resume_tokens_survive_a_sigterm_and_a_restart(tmp_path: Path) -> None:
    await restart_and_resume(ServeProcess(tmp_path / "data"))


async def restart_and_resume(
    srv: ServeProcess,
    between: Callable[[], Awaitable[None]] | None = None,
    said: str = "resumable after restart",
) -> None:
    """Walk ``N`` clients on ``srv``, SIGTERM it, (run ``between``,) start it again: every client
    resumes its avatar where it stood."""
    await srv.start()
    clients = [Client(srv.ws, name=f"住民{i:02d}") for i in range(N)]
    before: dict[str, tuple[int, str, str, tuple[int, float, float]]] = {}
    try:
        for c in clients:
            await c.connect()
        # everyone walks out from the entrance for a while, each its own way, then stops
        for _ in range(8):
            for i, c in enumerate(clients):
                a = 2 * math.pi * i / N
                await c.move(math.sin(a), math.cos(a))
            await _pause(clients[0], 2 * WAIT)
        for c in clients:
            await c.move(0.0, 0.0)
        for c in clients:
            # the stop is processed, and a snapshot after it has arrived
            await c.until(
                lambda c=c: c.last_snapshot is not None and c.last_snapshot.last_seq >= c.seq
            )
            seen = c.snapshots
            await c.until(lambda c=c, seen=seen: c.snapshots >= seen + 2)
        moved = 0
        for c in clients:
            pos = c.position()
            assert pos is not None and c.welcome is not None and c.resume
            before[c.resume] = (c.avatar_id, c.welcome.instance, c.name, pos)
            moved += pos != clients[0].position() or c is clients[0]
        assert moved == N  # twenty different places
        assert await srv.terminate() == 0
        for c in clients:
            await c.until(lambda c=c: c.close_code is not None)
            assert any(n.kind == "draining" for n in c.messages(Notice))
    finally:
        for c in clients:
            await c.close()
        srv.kill()

    if between is not None:
        await between()
    await srv.start()  # the same data dir (and, in a cluster, the same address)
    back = [Client(srv.ws, name="別の名前", resume=token) for token in before]
    try:
        for c in back:
            await c.connect()
        for c in back:
            token = c.resume
            assert token is not None and token in before
            avatar_id, instance, name, (floor, x, z) = before[token]
            assert c.welcome is not None
            assert (c.avatar_id, c.welcome.instance) == (avatar_id, instance)
            await c.until(lambda c=c: c.position() is not None)
            f2, x2, z2 = c.position()  # type: ignore[misc]
            assert f2 == floor and math.hypot(x2 - x, z2 - z) < 0.3, (name, (x, z), (x2, z2))
        # the others see each avatar under the name it had, not the one the new hello gave
        names = {before[c.resume][0]: before[c.resume][2] for c in back if c.resume}
        seen_by_first = back[0]
        await seen_by_first.until(lambda: len(seen_by_first.names) >= 2)
        for avatar_id, shown in seen_by_first.names.items():
            assert shown == names[avatar_id]
    finally:
        for c in back:
            await c.close()
        await srv.terminate()
    assert said in srv.output() and f"avatars={N}" in srv.output()


async def _pause(c: Client, seconds: float) -> None:
    """Let ``seconds`` of ticks pass (a walk's stride), as a condition on the clock."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    await c.until(lambda: loop.time() >= end, timeout=seconds + 10 * WAIT)
