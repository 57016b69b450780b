"""``emachi serve --redis URL`` as an operator runs it: it joins the cluster, or says why it can not."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from server.keys import CLUSTER
from tests.tools import WAIT, until

from .conftest import PrivateRedis, StartNode, free_port

pytestmark = pytest.mark.cluster

SERVING = re.compile(rb"serving \S+ on http://([\d.]+):(\d+)/")


async def serve(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        "serve",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "EMACHI_STAFF_TOKEN": "cli-test-token"},
    )


@pytest.fixture
def prefix() -> str:
    """``emachi serve`` uses the default prefix; the in-process node of these tests does too (on
    the private Redis, where the other tests use prefixes of their own)."""
    return "emachi:"


@pytest.fixture
async def processes() -> AsyncIterator[list[asyncio.subprocess.Process]]:
    started: list[asyncio.subprocess.Process] = []
    yield started
    for p in started:
        if p.returncode is None:
            p.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(p.wait(), 200 * WAIT)
            except TimeoutError:
                p.kill()
                await p.wait()


async def test_a_redis_that_does_not_answer_is_refused_at_start_in_one_line(
    processes: list[asyncio.subprocess.Process], tmp_path: Path
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    p = await serve("--port", "0", "--data-dir", str(tmp_path), "--redis", url)
    processes.append(p)
    _, err = await asyncio.wait_for(p.communicate(), 400 * WAIT)
    assert p.returncode == 1
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"emachi: --redis {url}: cannot reach Redis")


async def test_a_redis_url_of_another_scheme_is_refused(
    processes: list[asyncio.subprocess.Process], tmp_path: Path
) -> None:
    p = await serve("--port", "0", "--data-dir", str(tmp_path), "--redis", "http://127.0.0.1/")
    processes.append(p)
    _, err = await asyncio.wait_for(p.communicate(), 400 * WAIT)
    assert p.returncode == 1
    assert "redis://" in err.decode() and "Traceback" not in err.decode()


async def test_a_served_process_joins_the_cluster_of_another(
    processes: list[asyncio.subprocess.Process],
    start_node: StartNode,
    redis_server: PrivateRedis,
    tmp_path: Path,
) -> None:
    # the CLI uses the default prefix: so does the in-process node here, on the private Redis
    node = await start_node(redis_url=redis_server.url)
    p = await serve("--port", "0", "--data-dir", str(tmp_path / "cli"), "--redis", redis_server.url)
    processes.append(p)
    assert p.stdout is not None
    line = await asyncio.wait_for(p.stdout.readline(), 400 * WAIT)
    m = SERVING.search(line)
    assert m, line
    url = f"http://{m[1].decode()}:{m[2].decode()}/healthz"

    def health() -> dict[str, object]:
        with urllib.request.urlopen(url, timeout=100 * WAIT) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]

    mine = node.app[CLUSTER].process_id

    async def sees_the_other() -> dict[str, Any] | None:
        h = await asyncio.to_thread(health)
        cluster = h["cluster"]
        assert isinstance(cluster, dict)
        return cluster if any(m["id"] == mine for m in cluster["members"]) else None

    cluster = await until(sees_the_other, 400 * WAIT)
    assert cluster["redis"] == "ok"
