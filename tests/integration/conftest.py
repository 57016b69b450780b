"""A real emachi server on a free port, in this process, for integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from aiohttp import web

from server.app import create_app
from server.config import Config

STAFF_TOKEN = "test-staff-token"


@dataclass(slots=True)
class RunningServer:
    app: web.Application
    config: Config
    port: int

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"


StartServer = Callable[..., Awaitable[RunningServer]]


@pytest.fixture
async def start_server(tmp_path: Path) -> AsyncIterator[StartServer]:
    """Start servers with Config overrides; all are stopped at the end of the test."""
    runners: list[web.AppRunner] = []

    async def start(**overrides: object) -> RunningServer:
        config = replace(Config(port=0, data_dir=tmp_path / "data", staff_token=STAFF_TOKEN), **overrides)  # type: ignore[arg-type]
        app = create_app(config)
        runner = web.AppRunner(app, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return RunningServer(app, config, port)

    yield start
    for r in reversed(runners):
        await r.cleanup()


@pytest.fixture
async def server(start_server: StartServer) -> RunningServer:
    return await start_server()
