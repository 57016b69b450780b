"""A private ``redis-server`` for the tests that need a real Redis (cluster, kiosk counts).

Never the machine's shared Redis on 6379: each one is a child process on a free port, with no
persistence, killed at the end. ``redis_server`` is the session's (tests that share it use key
prefixes of their own); ``own_redis`` is one test's, which it may kill, pause and restart. Without
``redis-server`` the tests are skipped, or fail under ``CI=true`` (tests/tools.py).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.tools import WAIT, require, until_sync

__all__ = ["PrivateRedis", "free_port", "own_redis", "redis_server"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10 * WAIT) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass(slots=True)
class PrivateRedis:
    """One ``redis-server`` child process on a free port; can be killed, paused and restarted."""

    folder: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                require("redis-server"),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        proc = self.proc
        until_sync(
            lambda: _answers(self.port) or proc.poll() is not None,
            200 * WAIT,
            what=f"the private redis-server on port {self.port}",
        )
        if proc.poll() is not None:
            raise RuntimeError(
                f"private redis-server on port {self.port} exited with {proc.returncode}"
            )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a paused one must be able to die
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)


def _private(folder: Path) -> Iterator[PrivateRedis]:
    require("redis-server")
    r = PrivateRedis(folder)
    r.start()
    try:
        yield r
    finally:
        r.kill()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    """The session's private Redis (tests that do not kill it share it)."""
    yield from _private(tmp_path_factory.mktemp("redis"))


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A private Redis for one test, which it may kill, pause and restart."""
    folder = tmp_path / "redis"
    folder.mkdir()
    yield from _private(folder)
