"""Stopping background tasks for certain."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["stop_task"]


async def stop_task(task: asyncio.Task[Any] | None, *, every: float = 0.5) -> None:
    """Cancel ``task`` and wait until it has really ended.

    One ``cancel()`` is not always enough: a library that runs its own ``asyncio.timeout`` (redis-py
    does, for its socket timeout) can turn our cancellation into a ``TimeoutError`` that the task
    then handles as an ordinary fault and carries on. So cancel again until the task is done;
    shutting down must never hang on a background loop.
    """
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=every)
    if not task.cancelled() and task.exception() is not None:
        task.exception()  # retrieved: the task's own code already logged it
