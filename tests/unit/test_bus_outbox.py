"""The bus outbox (server/cluster/bus.py ``Outbox``): a staff action's message is handed to the bus
before the process that took it writes to its own audience (``Outbox.handed``), without waiting
for the bus to answer."""

from __future__ import annotations

import asyncio

from server.cluster.bus import Outbox


class SlowBus:
    """A bus whose publish starts at once (what Redis's client does: it writes, then waits for
    the answer) and answers only when told."""

    def __init__(self) -> None:
        self.started: list[bytes] = []
        self.answer = asyncio.Event()

    async def publish(self, channel: str, data: bytes) -> None:
        self.started.append(data)
        await self.answer.wait()


async def test_handed_lets_the_publish_start_and_does_not_wait_for_the_answer() -> None:
    bus = SlowBus()
    out = Outbox(bus)  # type: ignore[arg-type]
    await out.start()
    try:
        out.put("briefing", b"one")
        await asyncio.wait_for(out.handed(), 1.0)
        assert bus.started == [b"one"]  # on its way before the caller goes on
        # the first publish has not been answered: the next one waits its turn, handed returns
        out.put("briefing", b"two")
        await asyncio.wait_for(out.handed(), 1.0)
        assert bus.started == [b"one"]
        bus.answer.set()
        for _ in range(10):
            await asyncio.sleep(0)
        assert bus.started == [b"one", b"two"]  # in order
    finally:
        await out.stop()


async def test_handed_returns_at_once_with_nothing_queued_or_not_started() -> None:
    bus = SlowBus()
    out = Outbox(bus)  # type: ignore[arg-type]
    await asyncio.wait_for(out.handed(), 1.0)
    out.put("briefing", b"x")  # not started: kept for the task
    await asyncio.wait_for(out.handed(), 1.0)
    assert bus.started == []
