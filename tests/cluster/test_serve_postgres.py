"""``emachi serve --database postgresql://…``: a real server keeps its records in a real private
PostgreSQL, and a PostgreSQL that stops answering for a while (SIGSTOP) neither stops the city nor
loses or doubles a kiosk ask: residents keep moving and asking, the staff page says the store is
away, and once it answers again the counts are exactly the asks answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

import aiohttp
import pytest

from server.config import Config
from server.protocol.messages import HelperAnswer, HelperAsk
from server.store import PostgresStore, open_store
from tests.integration.client import WAIT, Client
from tests.integration.process import STAFF_TOKEN, ServeProcess
from tests.private_postgres import PrivatePostgres
from tests.private_redis import free_port
from tests.tools import until

pytestmark = pytest.mark.postgres

AUTH = {"Authorization": f"Bearer {STAFF_TOKEN}"}
PAUSE = 4.0  # longer than the server's bound on a batch (2 s)


def test_records_go_to_postgres_when_a_database_is_named_even_in_a_redis_cluster() -> None:
    config = Config(redis_url="redis://127.0.0.1:1/0", database_url="postgresql://x@/y")
    assert isinstance(open_store(config), PostgresStore)


async def _asks_counted(http: aiohttp.ClientSession, srv: ServeProcess) -> int | None:
    """Helper asks in the CSV export, or None while the store does not answer."""
    r = await http.get(f"{srv.http}/staff/kiosks.csv?days=2", headers=AUTH)
    if r.status != 200:
        return None
    lines = (await r.text()).strip().splitlines()[1:]
    return sum(int(x.split(",")[5]) for x in lines if x.split(",")[3] == "ask")


async def _store_health(http: aiohttp.ClientSession, srv: ServeProcess) -> dict[str, object]:
    health: dict[str, dict[str, object]] = await (await http.get(f"{srv.http}/healthz")).json()
    return health["store"]


async def test_kiosk_asks_are_counted_once_through_a_postgres_pause(
    own_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    srv = ServeProcess(tmp_path / "data", ("--database", own_postgres.url()))
    await srv.start()
    asker = Client(srv.ws, name="聞く人")
    walker = Client(srv.ws, name="歩く人")
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=100 * WAIT)) as http:
            await asker.connect()
            await walker.connect()

            def answered() -> int:
                return len(asker.messages(HelperAnswer))

            async def ask() -> None:
                n = answered()
                await asker.send(HelperAsk(helper="garbage", query={"item": "ソファ"}))
                await asker.until(lambda: answered() == n + 1)

            await ask()
            await until(lambda: _counted_is(http, srv, 1), timeout=200 * WAIT)
            assert await _store_health(http, srv) == {
                "backend": "postgres",
                "up": True,
                "waiting": 0,
            }

            own_postgres.pause()
            loop = asyncio.get_running_loop()
            end = loop.time() + PAUSE
            snapshots = walker.snapshots
            while loop.time() < end:  # residents keep asking and walking
                await ask()
                await walker.move(1.0, 0.0)
                await asyncio.sleep(5 * WAIT)
            assert walker.snapshots > snapshots + 10 * PAUSE  # the city went on (20 a second)
            health = await _store_health(http, srv)
            # the store is reported away; the asks wait as one counter (in flight, and after it)
            assert health["up"] is False and health["waiting"] in (1, 2), health
            assert await _asks_counted(http, srv) is None  # 503, not a partial file
            page = await http.get(f"{srv.http}/staff/kiosks", headers=AUTH)
            assert page.status == 200 and "not answering" in await page.text()

            own_postgres.resume()
            total = answered()
            await until(lambda: _counted_is(http, srv, total), timeout=300 * WAIT)
            await until(
                lambda: _store_is(http, srv, {"backend": "postgres", "up": True, "waiting": 0})
            )
            await asyncio.sleep(10 * WAIT)  # a try the paused server still held has run by now
            assert await _asks_counted(http, srv) == total
    finally:
        own_postgres.resume()
        for c in (asker, walker):
            await c.close()
        with contextlib.suppress(AssertionError):
            await srv.terminate()
        srv.kill()


async def _counted_is(http: aiohttp.ClientSession, srv: ServeProcess, n: int) -> bool:
    return await _asks_counted(http, srv) == n


async def _store_is(http: aiohttp.ClientSession, srv: ServeProcess, want: object) -> bool:
    return await _store_health(http, srv) == want


async def test_a_database_that_does_not_answer_is_refused_at_start_in_one_line(
    tmp_path: Path,
) -> None:
    url = f"postgresql://emachi:hunter2@127.0.0.1:{free_port()}/emachi"  # nothing listens there
    p = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "server.cli", "serve", "--port", "0", "--data-dir", str(tmp_path)),
        *("--database", url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(p.communicate(), 400 * WAIT)
    finally:
        if p.returncode is None:
            p.kill()
            await p.wait()
    assert p.returncode == 1
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("emachi: --database postgresql://emachi@127.0.0.1:")
    assert "cannot reach PostgreSQL" in lines[0] and "hunter2" not in lines[0]
