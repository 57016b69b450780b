"""SIGKILL in the middle of an event: every acknowledged attendance record is there after the
restart (a WELCOME acknowledges a join, an ``event_left`` notice a leave)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import connect

from server.events.wire import Host
from server.protocol.codes import PROTOCOL_VERSION
from server.protocol.messages import Hello, Notice, Welcome, decode
from tests.integration.client import WAIT, until
from tests.integration.process import STAFF_TOKEN, ServeProcess

GUESTS = 50
AUTH = {"Authorization": f"Bearer {STAFF_TOKEN}"}


def when(seconds: float) -> str:
    return dt.datetime.fromtimestamp(time.time() + seconds, dt.UTC).isoformat()


async def api(base: str, method: str, path: str, body: Any = None) -> Any:
    async with (
        aiohttp.ClientSession(headers=AUTH) as http,
        http.request(method, base + path, json=body) as r,
    ):
        assert r.status < 300, (r.status, await r.text())
        return await r.json()


async def guest(
    url: str, name: str, token: str, event: str, leaves: bool, acked: dict[str, set[str]]
) -> None:
    """Join, and (some) leave; what the server acknowledged goes into ``acked``."""
    with contextlib.suppress(Exception):  # the server is killed under some of them
        async with connect(url) as ws:
            await ws.send(
                Hello(
                    version=PROTOCOL_VERSION, name=name, opts={"invite": token, "event": event}
                ).encode()
            )
            while not isinstance(decode(await ws.recv()), Welcome):  # type: ignore[arg-type]
                pass
            acked["join"].add(name)
            if not leaves:
                await asyncio.sleep(60 * WAIT)  # stays until the kill
                return
            await ws.send(Host(action="leave", args={}).encode())
            while True:
                msg = decode(await ws.recv())  # type: ignore[arg-type]
                if isinstance(msg, Notice) and msg.kind == "event_left":
                    acked["leave"].add(name)
                    return


@pytest.mark.parametrize("records", ["sqlite", "postgres"])
async def test_sigkill_keeps_every_acknowledged_attendance_record(
    tmp_path: Path, records: str, request: pytest.FixtureRequest
) -> None:
    """On the embedded default (SQLite in the data dir) and on a real PostgreSQL (a cluster's)."""
    args: tuple[str, ...] = ()
    if records == "postgres":
        pg = request.getfixturevalue("postgres_server")
        args = ("--database", pg.new_database())
    srv = ServeProcess(tmp_path / "data", args)
    await srv.start()
    try:
        ev = await api(
            srv.http,
            "POST",
            "/staff/events",
            {
                "title": {"ja": "内定式", "en": "Offer ceremony"},
                "start": when(-60),
                "end": when(3600),
                "capacity": GUESTS,
                "agenda": [{"kind": "round", "minutes": 30}],
            },
        )
        inv = await api(
            srv.http,
            "POST",
            f"/staff/events/{ev['id']}/invites",
            {"role": "guest", "label": "2027年度 内定者"},
        )
        acked: dict[str, set[str]] = {"join": set(), "leave": set()}

        async def arrive(i: int) -> None:
            await asyncio.sleep(i * WAIT / 5)
            await guest(srv.ws, f"g{i:02d}", inv["token"], ev["id"], i % 3 != 0, acked)

        tasks = [asyncio.create_task(arrive(i)) for i in range(GUESTS)]
        await until(lambda: len(acked["join"]) >= GUESTS // 2 and acked["leave"], 400 * WAIT)
        srv.kill()  # SIGKILL: no drain, no flush
        await asyncio.gather(*tasks)
        joins, leaves = set(acked["join"]), set(acked["leave"])
        assert joins and leaves

        await srv.start()
        got = await api(srv.http, "GET", f"/staff/events/{ev['id']}/attendance")
        stored_joins = {v["name"] for v in got["visits"] if v["joined"]}
        stored_leaves = {v["name"] for v in got["visits"] if v["left"]}
        assert joins <= stored_joins, sorted(joins - stored_joins)
        assert leaves <= stored_leaves, sorted(leaves - stored_leaves)
        assert all(v["label"] == "2027年度 内定者" and v["role"] == "guest" for v in got["visits"])
    finally:
        srv.kill()
