"""A real load balancer for the cluster tests: Debian's ``haproxy`` on a free port.

``await HAProxy(folder, backends).start()`` writes the configuration docs/cluster.md recommends (round
robin, no stickiness, WebSocket upgrades passed through with a ``tunnel`` timeout, a health check
on ``/healthz`` every second) for the given ``(host, port)`` backends, runs ``haproxy -db`` (in the
foreground) on a free loopback port and waits until every backend is up behind it. The fixture
``start_haproxy`` starts one for a test and stops it at the end. Without ``haproxy`` the test is
skipped, or fails under ``CI=true`` (``tests/tools.py`` ``require``; ``scripts/install.sh --test``
installs it).
"""

from __future__ import annotations

import resource
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import aiohttp
import pytest

from tests.private_redis import free_port
from tests.tools import WAIT, require, until

__all__ = ["HAProxy", "StartHAProxy", "config_text", "start_haproxy"]


def config_text(port: int, backends: Sequence[tuple[str, int]], *, maxconn: int = 20000) -> str:
    """An HAProxy configuration: round robin over ``backends``, no stickiness, WebSockets."""
    servers = "\n".join(
        f"    server p{i} {host}:{p} check inter 1s fastinter 250ms fall 3 rise 1"
        " observe layer4 error-limit 1 on-error mark-down"
        for i, (host, p) in enumerate(backends, 1)
    )
    return f"""\
global
    maxconn {maxconn}

defaults
    mode http
    option http-server-close
    retries 3
    option redispatch 1
    timeout connect 2s
    timeout check 3s
    timeout client 30s
    timeout server 30s
    timeout tunnel 1h
    timeout client-fin 5s
    timeout http-request 10s

frontend emachi
    bind 127.0.0.1:{port}
    default_backend emachi

backend emachi
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
    option forwardfor
{servers}
"""


async def _up(url: str) -> str | None:
    """The process id that answered ``/healthz`` at ``url``, or None (a new connection each
    time, so round robin moves on)."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20 * WAIT)) as http,
            http.get(url + "/healthz") as r,
        ):
            if r.status != 200:
                return None
            body = await r.json()
    except (OSError, ValueError, aiohttp.ClientError, TimeoutError):
        return None
    cluster = body.get("cluster") or {}
    return str(cluster.get("process", "single"))


@dataclass(slots=True)
class HAProxy:
    """One ``haproxy`` child process in front of ``backends``."""

    folder: Path
    backends: Sequence[tuple[str, int]]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def log(self) -> Path:
        return self.folder / "haproxy.log"

    async def start(self) -> None:
        """Start it and wait until round robin reaches every backend (each answers /healthz)."""
        exe = require("haproxy")
        cfg = self.folder / "haproxy.cfg"
        # each proxied connection takes two descriptors: stay within this process's limit
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        maxconn = max(100, min(20000, (soft - 200) // 2))
        cfg.write_text(config_text(self.port, self.backends, maxconn=maxconn), encoding="utf-8")
        check = subprocess.run([exe, "-c", "-q", "-f", str(cfg)], capture_output=True)
        if check.returncode != 0:
            raise RuntimeError(f"haproxy refused its configuration: {check.stderr.decode()}")
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [exe, "-db", "-f", str(cfg)], stdout=out, stderr=subprocess.STDOUT
            )
        proc, seen = self.proc, set()

        async def all_up() -> bool:
            if proc.poll() is not None:
                return True
            got = await _up(self.http)
            if got is not None:
                seen.add(got)
            return len(seen) >= len(self.backends)

        await until(all_up, 400 * WAIT, what=f"haproxy on {self.port} reaching every backend")
        if proc.poll() is not None:
            raise RuntimeError(f"haproxy exited with {proc.returncode}: {self.log.read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=100 * WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class StartHAProxy(Protocol):
    async def __call__(self, backends: Sequence[tuple[str, int]]) -> HAProxy: ...


@pytest.fixture
def start_haproxy(tmp_path: Path) -> Iterator[StartHAProxy]:
    """Start ``haproxy`` in front of backends (``[(host, port), ...]``); stopped at the end."""
    started: list[HAProxy] = []

    async def start(backends: Sequence[tuple[str, int]]) -> HAProxy:
        folder = tmp_path / f"haproxy{len(started)}"
        folder.mkdir()
        lb = HAProxy(folder, list(backends))
        started.append(lb)
        await lb.start()
        return lb

    try:
        yield start
    finally:
        for lb in started:
            lb.stop()
