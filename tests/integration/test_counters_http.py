"""The counters over HTTP on a real server: the kiosk's ref completed once by the signed
webhook however often it is sent, forged and replayed calls refused and counted, reservations
booked with a display name and entered with the code, the staff pages and the CSV."""

from __future__ import annotations

import json
import time
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import aiohttp
from aiohttp import web

from server.counters.webhook import HEADER, sign
from server.keys import COUNTERS
from server.protocol.messages import Error, KioskChoose, KioskLink, KioskOpen, KioskPanel
from tests.integration.client import Client
from tests.integration.conftest import STAFF_TOKEN, StartServer
from tests.integration.test_counters import SHIMIN, act, refused, state
from tests.integration.test_kiosk import JUMINHYO, walk_to
from tests.tools import until

SECRET = "webhook-test-secret"
AUTH = {"Authorization": f"Bearer {STAFF_TOKEN}"}


async def test_the_webhook_completes_a_ref_once(start_server: StartServer) -> None:
    srv = await start_server(webhook_secret=SECRET)
    async with Client(srv.ws, "住民") as c:
        await walk_to(srv, c, 12.0, 17.5)
        await c.send(KioskOpen(kiosk_id=JUMINHYO, lang="ja"))
        await c.reply(KioskPanel)
        await c.send(KioskChoose(kiosk_id=JUMINHYO, channel="graffer", device="phone"))
        link = await c.reply(KioskLink)
    ref = parse_qs(urlsplit(link.url).query)["emachi_ref"][0]
    url = f"{srv.http}/api/procedures/completed"

    async def post(
        http: aiohttp.ClientSession, body: bytes, header: str | None
    ) -> tuple[int, dict]:
        headers = {"Content-Type": "application/json", **({HEADER: header} if header else {})}
        async with http.post(url, data=body, headers=headers) as resp:
            return resp.status, await resp.json()

    body = json.dumps({"ref": ref, "completed_at": int(time.time())}).encode()
    now = int(time.time())
    async with aiohttp.ClientSession() as http:
        answers = [await post(http, body, sign(SECRET.encode(), now, body)) for _ in range(4)]
        assert answers[0] == (200, {"ref": ref, "already": False, "procedure": "juminhyo"})
        assert all(a == (200, {"ref": ref, "already": True}) for a in answers[1:])
        forged = await post(http, body, sign(b"guess", now, body))
        replayed = await post(http, body, sign(SECRET.encode(), now - 301, body))
        unsigned = await post(http, body, None)
        other = json.dumps({"ref": "never-issued-ref-123", "completed_at": now}).encode()
        unknown = await post(http, other, sign(SECRET.encode(), now, other))
        assert [forged[0], replayed[0], unsigned[0], unknown[0]] == [401, 401, 401, 404]
        assert [forged[1]["code"], replayed[1]["code"], unknown[1]["code"]] == [
            "forged",
            "replayed",
            "unknown_ref",
        ]

        async def funnel() -> list[str]:
            async with http.get(f"{srv.http}/staff/counters/stats.csv", headers=AUTH) as resp:
                assert resp.status == 200
                return [
                    ln
                    for ln in (await resp.text()).splitlines()
                    if ln.startswith("funnel,juminhyo") and ln.endswith(",1,1,1")
                ]

        # viewed once, opened once, completed once (however often the webhook said it)
        assert len(await until(funnel)) == 1
        async with http.get(f"{srv.http}/staff/counters/stats", headers=AUTH) as resp:
            html = await resp.text()
            assert resp.status == 200 and "<svg" in html and "juminhyo" in html
        async with http.get(f"{srv.http}/staff/counters/stats") as resp:
            assert resp.status == 401
        async with http.get(f"{srv.http}/metrics") as resp:
            text = await resp.text()
    for reason in ("webhook_forged", "webhook_replayed", "webhook_unsigned", "webhook_unknown_ref"):
        assert f'emachi_counters_refused_total{{reason="{reason}"}} 1.0' in text, reason


async def test_a_reservation_is_entered_with_its_code_during_its_slot(
    start_server: StartServer,
) -> None:
    def at_ten(
        app: web.Application,
    ) -> None:  # Monday 2 June 2025, 10:05 in Machida (slots 08:30, 08:50, ...)
        tz = app[COUNTERS].clock().tzinfo
        app[COUNTERS].clock = lambda: datetime(2025, 6, 2, 10, 5, tzinfo=tz)

    srv = await start_server(configure=at_ten)
    base = f"{srv.http}/api/counters"
    async with aiohttp.ClientSession() as http:
        async with http.get(base) as resp:
            listed = await resp.json()
            assert [c["id"] for c in listed["counters"]][0] == SHIMIN and len(
                listed["counters"]
            ) == 6
        async with http.get(f"{base}/{SHIMIN}/slots?date=2025-06-02") as resp:
            free = (await resp.json())["free"]
            assert free[0] == "2025-06-02T09:50" and "2025-06-02T09:30" not in free  # gone by
        async with http.post(
            f"{base}/{SHIMIN}/reservations", json={"slot": "2025-06-02T09:50", "name": "山田"}
        ) as resp:
            assert resp.status == 201
            code = (await resp.json())["code"]
        async with http.post(
            f"{base}/{SHIMIN}/reservations", json={"slot": "2025-06-02T09:50", "name": "田中"}
        ) as resp:
            assert resp.status == 409 and (await resp.json())["code"] == "slot_taken"
        async with http.post(
            f"{base}/{SHIMIN}/reservations",
            json={"slot": "2025-06-02T10:00", "name": "田中"},  # not a slot
        ) as resp:
            assert resp.status == 400 and (await resp.json())["code"] == "bad_slot"
        async with http.get(f"{srv.http}/staff/counters/", headers=AUTH) as resp:
            assert "山田" in await resp.text()
    async with Client(srv.ws, "職員", staff=STAFF_TOKEN) as staff, Client(srv.ws, "山田") as r:
        await act(staff, "duty", counter=SHIMIN)
        await staff.until(lambda: (state(staff).get("desk") or {}).get("bookings"))
        assert state(staff)["desk"]["bookings"] == [
            {"slot": "2025-06-02T09:50", "name": "山田", "state": "booked"}
        ]
        await act(r, "enter", code=code.lower())
        await r.until(lambda: state(r).get("booth") is not None)
        assert state(r)["booth"]["with"] == "職員"
        async with Client(srv.ws, "二度目") as again:
            await refused(again, "enter", "code_used", code=code)
        await act(staff, "end")
        await r.until(lambda: state(r).get("booth") is None)
        err = await refused(r, "enter", "code_used", code=code)
        assert isinstance(err, Error)


def _at_ten(app: web.Application) -> None:
    """Monday 2 June 2025, 10:05 in Machida (the slot 09:50 is on, 10:10 is ahead)."""
    tz = app[COUNTERS].clock().tzinfo
    app[COUNTERS].clock = lambda: datetime(2025, 6, 2, 10, 5, tzinfo=tz)


async def test_a_code_used_before_a_restart_stays_used(start_server: StartServer) -> None:
    """A reservation entered and ended, the server stopped and started on the same data dir:
    the same code is refused (it was already used), the staff desk shows it done, and another
    reservation made before the restart still lets its resident in."""
    srv = await start_server(configure=_at_ten)
    base = f"{srv.http}/api/counters/{SHIMIN}/reservations"
    async with aiohttp.ClientSession() as http:
        codes = []
        for slot, name in (("2025-06-02T09:50", "山田"), ("2025-06-02T10:10", "田中")):
            async with http.post(base, json={"slot": slot, "name": name}) as resp:
                assert resp.status == 201
                codes.append((await resp.json())["code"])
    used, kept = codes
    async with Client(srv.ws, "職員", staff=STAFF_TOKEN) as staff, Client(srv.ws, "山田") as r:
        await act(staff, "duty", counter=SHIMIN)
        await staff.until(lambda: (state(staff).get("desk") or {}).get("counter") == SHIMIN)
        await act(r, "enter", code=used)
        await r.until(lambda: state(r).get("booth") is not None)
        await act(staff, "end")
        await r.until(lambda: state(r).get("booth") is None)
    await srv.stop()

    again = await start_server(configure=_at_ten)  # the same data dir
    async with (
        Client(again.ws, "職員", staff=STAFF_TOKEN) as staff,
        Client(again.ws, "山田") as r,
        Client(again.ws, "田中") as t,
    ):
        await act(staff, "duty", counter=SHIMIN)
        await staff.until(lambda: len((state(staff).get("desk") or {}).get("bookings", [])) == 2)
        assert state(staff)["desk"]["bookings"] == [
            {"slot": "2025-06-02T09:50", "name": "山田", "state": "done"},
            {"slot": "2025-06-02T10:10", "name": "田中", "state": "booked"},
        ]
        err = await refused(r, "enter", "code_used", code=used)
        assert "done" in err.reason
        await act(t, "enter", code=kept)  # 5 minutes before its slot: in
        await t.until(lambda: state(t).get("booth") is not None)
