"""Emachi servers that join a private Redis (``redis_server``, ``own_redis``: tests/private_redis.py).

Each test uses its own key prefix, so tests sharing the session's Redis do not see each other.
The servers are the integration tests' ``start_server`` with the cluster's timings shortened.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from server.keys import CLUSTER
from tests.integration.conftest import RunningServer, StartServer
from tests.private_redis import PrivateRedis, free_port
from tests.tools import WAIT

__all__ = ["INTERVAL", "LEASE_TTL", "TTL", "PrivateRedis", "StartNode", "free_port", "start_node"]


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
#: the instances' leases of the test servers (beat: a third of it)
LEASE_TTL = 30 * WAIT


@pytest.fixture
def start_node(start_server: StartServer, tmp_path: Path, prefix: str) -> StartNode:
    """Start emachi servers (``start_server``: in this process, on free ports, stopped at the end)
    with the tests' cluster settings (prefix, short TTL, short leases); each has a data folder of
    its own and knows its port before it starts (the address it tells the cluster)."""
    count = 0

    def tune(app: web.Application) -> None:
        cluster = app[CLUSTER]
        cluster.prefix, cluster.ttl, cluster.interval = prefix, TTL, INTERVAL

    async def start(data_dir: Path | None = None, **overrides: object) -> RunningServer:
        nonlocal count
        data = data_dir if data_dir is not None else tmp_path / f"node{count}"
        count += 1
        overrides.setdefault("port", free_port())
        overrides.setdefault("lease_ttl", LEASE_TTL)
        return await start_server(configure=tune, data_dir=data, **overrides)

    return start
