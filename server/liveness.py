"""Finding dead peers: one sweep over every open WebSocket, every few seconds.

A peer whose network vanished without a FIN (a phone that walked out of the Wi-Fi) leaves a TCP
connection that looks open for as long as the kernel retries. aiohttp's per-connection heartbeat
finds it, but it reschedules a timer on every inbound message, and every avatar sends about twenty
a second. Here instead the receive loop writes one float per message (``Session.last_heard``), and
a single task, every ``every`` seconds:

- pings each connection quiet for ``ping_after`` seconds (a live peer answers with a Pong, which
  counts as heard);
- closes with SILENT each one quiet for ``silent_limit`` seconds, its TCP connection ending in a
  reset (``Session.close_silent``): a dead peer never takes a FIN.

With the defaults (20 s, 30 s, a sweep every 5 s) a dead peer is closed 30 to 35 s after it was
last heard, as with the heartbeat of 20 s it replaces.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from server.keys import CONFIG, CONNECTIONS
from server.tasks import stop_task

if TYPE_CHECKING:
    from aiohttp import web

    from server.session import Connections

__all__ = ["Liveness", "liveness_ctx"]

log = logging.getLogger("emachi.liveness")


@dataclass(slots=True)
class Liveness:
    """The sweep's bounds (seconds): ping after ``ping_after`` of quiet, close after ``silent_limit``."""

    conns: Connections
    ping_after: float = 20.0
    silent_limit: float = 30.0

    @property
    def every(self) -> float:
        """Seconds between sweeps: a quarter of ``ping_after``, at most 5 s."""
        return max(0.01, min(5.0, self.ping_after / 4))

    def sweep(self, now: float) -> tuple[int, int]:
        """One pass at monotonic time ``now``; returns (pinged, closed)."""
        pinged = closed = 0
        ping_before = now - self.ping_after
        close_before = now - self.silent_limit
        for ws, s in self.conns.sessions():
            heard = s.last_heard
            if heard > ping_before or s.ws is not ws or s.closing:
                continue
            if heard <= close_before:
                log.info("silent peer closed", extra={"quiet_s": round(now - heard, 1)})
                s.close_silent()
                closed += 1
            elif s.ping():
                pinged += 1
        return pinged, closed

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                self.sweep(time.monotonic())
            except Exception:  # a bug of ours must not end the sweep for good
                log.exception("liveness sweep failed")


async def liveness_ctx(app: web.Application) -> AsyncIterator[None]:
    """aiohttp cleanup context: the sweep runs while the app does."""
    config = app[CONFIG]
    live = Liveness(app[CONNECTIONS], config.ping_after, config.silent_limit)
    task = asyncio.get_running_loop().create_task(live.run(), name="liveness sweep")
    yield
    await stop_task(task)
