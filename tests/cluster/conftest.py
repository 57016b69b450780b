"""A private Redis for the cluster tests, and emachi servers that join it.

Never the machine's shared Redis on 6379: each Redis here is ``redis-server`` on a free port, with
no persistence, started by a fixture and killed at the end. Each test uses its own key prefix,
so tests sharing the session's Redis do not see each other.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from aiohttp import web

from server.app import create_app
from server.config import Config
from server.keys import CLUSTER
from tests.integration.client import WAIT
from tests.integration.conftest import STAFF_TOKEN, RunningServer

REDIS = shutil.which("redis-server")


def _free_port() -> int:
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
    port: int = field(default_factory=_free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS is not None
        self.proc = subprocess.Popen(
            [
                REDIS,
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
        for _ in range(200):
            if _answers(self.port):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(WAIT)
        raise RuntimeError(f"private redis-server on port {self.port} did not start")

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
    if REDIS is None:
        pytest.skip("redis-server is not installed")
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


@pytest.fixture(autouse=True)
def every_log_line(caplog: pytest.LogCaptureFixture) -> None:
    """Make every log call of the server build its record, as ``emachi serve`` does: a bad
    ``extra`` field fails the test instead of the first real run."""
    caplog.set_level(logging.DEBUG, logger="emachi")


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:8]}:"


StartNode = Callable[..., Awaitable[RunningServer]]

#: the cluster settings of the test servers: a short time to live, a fast beat
TTL = 40 * WAIT
INTERVAL = 4 * WAIT


@pytest.fixture
async def start_node(tmp_path: Path, prefix: str) -> AsyncIterator[StartNode]:
    """Start emachi servers (in this process, on free ports) with Config overrides; the cluster
    settings are the tests' (prefix, short TTL). All are stopped at the end of the test."""
    runners: list[web.AppRunner] = []

    async def start(data_dir: Path | None = None, **overrides: object) -> RunningServer:
        data = data_dir if data_dir is not None else tmp_path / f"node{len(runners)}"
        config = replace(
            Config(port=0, data_dir=data, staff_token=STAFF_TOKEN),
            **overrides,  # type: ignore[arg-type]
        )
        app = create_app(config)
        cluster = app[CLUSTER]
        cluster.prefix, cluster.ttl, cluster.interval = prefix, TTL, INTERVAL
        runner = web.AppRunner(app, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        return RunningServer(app, config, runner.addresses[0][1])

    yield start
    for r in reversed(runners):
        await r.cleanup()
