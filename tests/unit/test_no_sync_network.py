"""No synchronous network client anywhere in ``server/``: it would end up called from a coroutine.

A blocking call on the event loop freezes every client of the process: the kiosk counts' old
``redis.Redis`` client froze snapshots for 0.5 s per kiosk view while Redis was paused. Network
I/O in ``server/`` goes through asyncio (``redis.asyncio``, aiohttp); records go through the
outbox of ``server.store``. This test walks every module's syntax tree and fails on a sync
client's import or call, wherever it is (inside a function too: an import there still runs on the
loop the first time a handler calls it).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from server.config import ROOT

SERVER = ROOT / "server"

#: modules whose import means a blocking network client
SYNC_MODULES = {
    "requests",
    "urllib.request",
    "urllib3",
    "http.client",
    "httplib2",
    "smtplib",
    "ftplib",
    "telnetlib",
    "xmlrpc.client",
    "psycopg2",
    "pymysql",
    "pymongo",
    "redis.client",
    "redis.connection",
    "redis.cluster",
    "redis.sentinel",
}
#: ``import redis`` / ``import psycopg`` are the sync clients; these parts of them are not
ALLOWED_SUBMODULES = {
    "redis": {"redis.asyncio", "redis.exceptions", "redis.backoff"},
    "psycopg": {"psycopg.errors", "psycopg.rows", "psycopg.sql"},
}
#: ``from X import NAME``: the async names of a package that also has a sync client
ASYNC_NAMES = {
    "redis": {"asyncio", "exceptions", "backoff"},
    "psycopg": {"AsyncConnection", "AsyncCursor", "errors", "rows", "sql"},
}
#: calls that open a connection or resolve a name, blocking
SYNC_CALLS = {
    "redis.Redis",
    "redis.StrictRedis",
    "redis.from_url",
    "redis.Redis.from_url",
    "socket.create_connection",
    "socket.getaddrinfo",
    "socket.gethostbyname",
    "socket.gethostbyname_ex",
    "psycopg.connect",
    "psycopg.Connection.connect",
    "http.client.HTTPConnection",
    "urllib.request.urlopen",
}

#: Places allowed a sync client, each with why it can never run on the server's event loop.
#: (None today: ``emachi serve --redis`` checks Redis with ``redis.asyncio`` before serving,
#: and the briefing renderer calls its TTS engine as a subprocess, not over the network.)
ALLOWED: dict[str, str] = {}


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _bad_module(name: str) -> bool:
    for mod in SYNC_MODULES:
        if name == mod or name.startswith(mod + "."):
            return True
    root = name.split(".")[0]
    if root in ALLOWED_SUBMODULES:
        return not any(name == a or name.startswith(a + ".") for a in ALLOWED_SUBMODULES[root])
    return False


def sync_network_uses(source: str, filename: str = "<string>") -> list[str]:
    """``line: what`` for every sync network client imported or called in ``source``."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _bad_module(alias.name):
                    found.append(f"{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            mod = node.module
            if mod in ASYNC_NAMES:
                for alias in node.names:
                    if alias.name not in ASYNC_NAMES[mod]:
                        found.append(f"{node.lineno}: from {mod} import {alias.name}")
            elif _bad_module(mod):
                found.append(f"{node.lineno}: from {mod} import ...")
            elif mod in ("urllib", "http", "xmlrpc"):
                for alias in node.names:
                    if _bad_module(f"{mod}.{alias.name}"):
                        found.append(f"{node.lineno}: from {mod} import {alias.name}")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name in SYNC_CALLS:
                found.append(f"{node.lineno}: {name}(...)")
    return found


def test_server_has_no_synchronous_network_client() -> None:
    problems = []
    for path in sorted(SERVER.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in ALLOWED:
            continue
        problems += [f"{rel}:{p}" for p in sync_network_uses(path.read_text("utf-8"), rel)]
    assert problems == [], "sync network clients in server/ (use asyncio ones):\n" + "\n".join(
        problems
    )


def test_every_allowed_place_exists_and_says_why() -> None:
    for rel, why in ALLOWED.items():
        assert (ROOT / rel).is_file(), rel
        assert len(why) > 20, rel


# The kiosk counts as they were (server/kiosk/counts.py before the records store), and others.
OLD_COUNTS = """
class RedisCountStore:
    @classmethod
    def from_url(cls, url):
        import redis

        return cls(redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5))
"""


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (OLD_COUNTS, ["5: import redis", "7: redis.Redis.from_url(...)"]),
        ("import requests\nrequests.get('http://x')", ["1: import requests"]),
        ("from urllib.request import urlopen", ["1: from urllib.request import ..."]),
        ("from urllib import request", ["1: from urllib import request"]),
        ("import http.client", ["1: import http.client"]),
        (
            "import socket\nasync def f():\n    socket.create_connection(('h', 1))",
            ["3: socket.create_connection(...)"],
        ),
        ("from redis import Redis", ["1: from redis import Redis"]),
        ("import redis.exceptions\nredis.Redis()", ["2: redis.Redis(...)"]),
        ("import psycopg\n", ["1: import psycopg"]),
        ("from psycopg import connect", ["1: from psycopg import connect"]),
        # what server/ does use
        ("import redis.asyncio as aioredis\naioredis.Redis.from_url('redis://x')", []),
        ("import redis.exceptions\nfrom redis.backoff import NoBackoff", []),
        ("from redis.asyncio.retry import Retry", []),
        ("from psycopg import AsyncConnection", []),
        ("from urllib.parse import quote\nimport socket\nsocket.gethostname()", []),
        ("import socket\nsocket.create_server(('h', 0))", []),
    ],
)
def test_the_check_tells_sync_clients_from_async_ones(source: str, expected: list[str]) -> None:
    assert sync_network_uses(source) == expected


def test_the_check_reads_every_server_module() -> None:
    files = list(SERVER.rglob("*.py"))
    assert len(files) > 30 and Path(SERVER / "store" / "redis_store.py") in files
