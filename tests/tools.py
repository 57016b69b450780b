"""What every test folder shares: the one wait unit, polling for a condition, and required tools.

- ``WAIT`` is the unit every wait in the tests is a multiple of (the browser tests use ``5 * WAIT``).
- ``until(condition, timeout)`` polls a condition (a plain or an async callable) every ``WAIT``
  and fails the test with what it waited for once ``timeout`` passes; ``until_sync`` is the same
  for code that runs outside an event loop. A test never sleeps and then asserts.
- ``require(tool)`` / ``require_module(name)``: a test that needs a program (node, redis-server,
  chromium) or an optional Python module is skipped when it is missing on a developer's machine,
  but FAILS when ``CI=true``: a test that skips in CI is not a test (``scripts/install.sh --test``
  installs everything the tests need).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import TypeVar

import pytest

__all__ = ["WAIT", "in_ci", "missing", "require", "require_module", "until", "until_sync"]

WAIT = 0.05  # seconds: the one unit every wait in the tests is a multiple of

T = TypeVar("T")


def _what(condition: object) -> str:
    doc = getattr(condition, "__doc__", None)
    name = getattr(condition, "__qualname__", None) or repr(condition)
    if name.endswith("<lambda>"):
        try:
            return inspect.getsource(condition).strip()  # type: ignore[arg-type]
        except (OSError, TypeError):
            pass
    return f"{name}: {doc}" if doc and not name.endswith("<lambda>") else name


async def until(
    condition: Callable[[], T | Awaitable[T]], timeout: float = 100 * WAIT, *, what: str = ""
) -> T:
    """Poll ``condition`` every ``WAIT`` until it returns something truthy, and return that.

    Raises:
        AssertionError: when ``timeout`` seconds pass first (with what was waited for).
    """
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        got = condition()
        if inspect.isawaitable(got):
            got = await got
        if got:
            return got  # type: ignore[return-value]
        if loop.time() > end:
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for {what or _what(condition)}"
            )
        await asyncio.sleep(WAIT)


def until_sync(
    condition: Callable[[], T], timeout: float = 100 * WAIT, *, step: float = WAIT, what: str = ""
) -> T:
    """``until`` for code outside an event loop (starting a child process, a browser page)."""
    end = time.monotonic() + timeout
    while True:
        got = condition()
        if got:
            return got
        if time.monotonic() > end:
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for {what or _what(condition)}"
            )
        time.sleep(step)


def in_ci() -> bool:
    """Whether this run is CI's (``CI=true``, as GitHub Actions, GitLab and most others set it)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing(what: str) -> None:
    """Skip the test because ``what`` is missing, or fail it under ``CI=true``."""
    message = f"{what} is not installed (scripts/install.sh --test installs it)"
    if in_ci():
        pytest.fail(
            f"{message}; under CI=true a missing tool is an error, not a skip", pytrace=False
        )
    pytest.skip(message)


def require(tool: str) -> str:
    """The path of program ``tool`` (a name on PATH or an absolute path): skip the test without
    it, or fail it under ``CI=true``."""
    path = tool if os.path.isabs(tool) and os.access(tool, os.X_OK) else shutil.which(tool)
    if path is None:
        missing(tool)
    assert path is not None
    return path


def require_module(name: str) -> ModuleType:
    """Import the optional module ``name``: skip the test without it, or fail it under ``CI=true``."""
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(f"the Python module {name}")
        raise  # not reached: skip and fail raise
