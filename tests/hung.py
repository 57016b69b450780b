"""What a hung test was waiting for. pytest-timeout prints the threads' stacks, but a test on an
event loop hangs in ``select`` with every coroutine parked: these hooks print the stack of every
task of every running event loop a few seconds before the timeout ends the test."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
from typing import Any

import pytest

__all__ = ["pytest_timeout_cancel_timer", "pytest_timeout_set_timer"]

EARLY = 3.0  # seconds before the timeout
_TIMER = pytest.StashKey[threading.Timer]()


def _running_loops() -> list[asyncio.AbstractEventLoop]:
    return [
        o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop) and o.is_running()
    ]


def _dump(nodeid: str) -> None:
    out = sys.__stderr__
    if out is None:
        return
    print(f"\n+++ {nodeid}: still running; the tasks of its event loops +++", file=out)
    for loop in _running_loops():
        for _ in range(3):  # the set of tasks may change under us (another thread runs the loop)
            try:
                tasks = list(asyncio.all_tasks(loop))
                break
            except RuntimeError:
                continue
        else:
            continue
        for task in tasks:
            print(f"--- {task!r}", file=out)
            task.print_stack(limit=12, file=out)
    out.flush()


@pytest.hookimpl(hookwrapper=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> Any:
    timeout = getattr(settings, "timeout", None)
    if timeout:
        timer = threading.Timer(max(1.0, timeout - EARLY), _dump, args=(item.nodeid,))
        timer.daemon = True
        timer.start()
        item.stash[_TIMER] = timer
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_timeout_cancel_timer(item: pytest.Item) -> Any:
    timer = item.stash.get(_TIMER, None)
    if timer is not None:
        timer.cancel()
    yield
