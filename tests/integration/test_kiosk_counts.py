"""Kiosk counts through the records outbox and store, and the staff page when the store is away.

The store suite itself (memory, SQLite, Redis) is tests/cluster/test_store.py; a Redis that is
paused under a serving process is tests/cluster/test_store_pause.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import pytest

from server.keys import KIOSKS, OUTBOX
from server.kiosk.counts import CountRow, KioskCounts
from server.store import MemoryStore, Outbox, SqliteStore, StoreAway
from tests.integration.conftest import STAFF_TOKEN, StartServer

WAIT = 0.05


async def test_counts_go_through_the_outbox_and_read_back_sorted(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "records.sqlite3")
    await store.start()
    outbox = Outbox(store)
    await outbox.start()
    counts = KioskCounts(outbox, store)
    try:
        t0 = time.perf_counter()
        for _ in range(3):
            counts.add("2026-11-25", "kiosk-juminhyo", "view")
        counts.add("2026-11-25", "kiosk-juminhyo", "open", "line")
        counts.add("2026-11-26", "kiosk-juminhyo", "open", "line", 2)
        counts.add("2026-11-26", "kiosk-koseki", "view")
        assert time.perf_counter() - t0 < 0.01  # nothing waited on the disk
        assert await counts.rows() == []  # not committed yet: not shown as if it were
        await outbox.committed()
        assert await counts.rows() == [
            CountRow("2026-11-25", "kiosk-juminhyo", "open", "line", 1),
            CountRow("2026-11-25", "kiosk-juminhyo", "view", "", 3),
            CountRow("2026-11-26", "kiosk-juminhyo", "open", "line", 2),
            CountRow("2026-11-26", "kiosk-koseki", "view", "", 1),
        ]
        assert [r.day for r in await counts.rows("2026-11-26")] == ["2026-11-26", "2026-11-26"]
    finally:
        await outbox.close()
        await store.close()


async def test_counts_refuse_unknown_events_and_keep_nothing_else() -> None:
    store = MemoryStore()
    counts = KioskCounts(Outbox(store), store)
    with pytest.raises(ValueError):
        counts.add("2026-11-26", "kiosk-juminhyo", "avatar-7")
    with pytest.raises(ValueError):
        counts.add("2026-11-26", "", "view")
    assert counts.waiting == 0


async def test_a_store_that_does_not_answer_is_said_plainly_on_the_staff_page(
    start_server: StartServer,
) -> None:
    srv = await start_server()
    service = srv.app[KIOSKS]
    away = MemoryStore()
    service.store = counts = KioskCounts(srv.app[OUTBOX], away, read_timeout=4 * WAIT)
    auth = {"Authorization": f"Bearer {STAFF_TOKEN}"}
    async with aiohttp.ClientSession() as http:
        counts.add(service.today(), "kiosk-juminhyo", "view")
        # (the app's outbox writes to its own SQLite store; this page reads `away`)
        page = await http.get(f"{srv.http}/staff/kiosks", headers=auth)
        assert page.status == 200
        assert "が応答しません" not in await page.text()

        away.away = True
        with pytest.raises(StoreAway):
            await counts.rows()
        page = await http.get(f"{srv.http}/staff/kiosks", headers=auth)
        html = await page.text()
        assert page.status == 200, html
        assert "記録の保存先（memory）が応答しません" in html
        assert "The records store (memory) is not answering" in html
        assert "Traceback" not in html and "<table>" in html
        csv = await http.get(f"{srv.http}/staff/kiosks.csv", headers=auth)
        assert csv.status == 503 and "not answering" in await csv.text()

        away.away = False
        page = await http.get(f"{srv.http}/staff/kiosks", headers=auth)
        assert page.status == 200 and "が応答しません" not in await page.text()
