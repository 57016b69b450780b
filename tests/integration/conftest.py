"""A real emachi server on a free port, in this process: the one server fixture of the
integration tests (the cluster tests start theirs through it too)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from aiohttp import web

from server.app import create_app
from server.config import Config

__all__ = ["STAFF_TOKEN", "RunningServer", "StartServer", "server", "start_server"]

STAFF_TOKEN = "test-staff-token"


@dataclass(slots=True)
class RunningServer:
    """A started server: its app (for what the server itself knows), config and port."""

    app: web.Application
    config: Config
    port: int
    runner: web.AppRunner | None = field(default=None, repr=False)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def stop(self) -> None:
        """Shut it down as ``emachi serve`` does on exit (cleanup hooks run; idempotent)."""
        if self.runner is not None:
            runner, self.runner = self.runner, None
            await runner.cleanup()


StartServer = Callable[..., Awaitable[RunningServer]]


@pytest.fixture
async def start_server(tmp_path: Path) -> AsyncIterator[StartServer]:
    """Start servers with Config overrides; all are stopped at the end of the test.

    ``start_server(configure=fn, **overrides)``: ``fn(app)`` runs after the app is built and
    before it starts (the cluster tests shorten the cluster's timings there). The data folder is
    ``tmp_path / "data"`` unless ``data_dir=`` says otherwise.
    """
    started: list[RunningServer] = []

    async def start(
        configure: Callable[[web.Application], None] | None = None, **overrides: object
    ) -> RunningServer:
        config = replace(
            # shed_above=0: the server shares this process with the test's clients, whose CPU
            # must not make it shed snapshots (tests/integration/test_shedding.py turns it on)
            Config(port=0, data_dir=tmp_path / "data", staff_token=STAFF_TOKEN, shed_above=0.0),
            **overrides,  # type: ignore[arg-type]
        )
        app = create_app(config)
        if configure is not None:
            configure(app)
        runner = web.AppRunner(app, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", config.port)  # 0 unless the test chose one
        await site.start()
        srv = RunningServer(app, config, runner.addresses[0][1], runner)
        started.append(srv)
        return srv

    yield start
    for srv in reversed(started):
        await srv.stop()


@pytest.fixture
async def server(start_server: StartServer) -> RunningServer:
    return await start_server()
