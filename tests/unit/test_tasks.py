"""Stopping a background loop ends it even when a library swallowed the first cancellation."""

from __future__ import annotations

import asyncio

from server.tasks import stop_task


async def test_a_loop_that_swallows_one_cancel_still_stops() -> None:
    swallowed = 0

    async def loop() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                # what redis-py's timeout can do: the cancel comes out as an ordinary fault
                if swallowed == 0:
                    swallowed += 1
                    continue
                raise

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)
    await asyncio.wait_for(stop_task(task, every=0.05), 2.0)
    assert task.cancelled()
    assert swallowed == 1


async def test_stopping_nothing_or_a_finished_task_is_fine() -> None:
    await stop_task(None)
    done = asyncio.create_task(asyncio.sleep(0))
    await done
    await stop_task(done)
    assert done.done() and not done.cancelled()
