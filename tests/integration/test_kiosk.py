"""Kiosks on a real server on a free port, with real WebSocket clients.

The avatar really walks (INPUT messages, the server's tick moves it); where it stands is read from
the server's own instance, which is what the kiosk's reach check uses.
"""

from __future__ import annotations

import math
from pathlib import Path

import aiohttp
import pytest

import server.kiosk as kiosk
from server.keys import HALL
from server.protocol.messages import (
    Error,
    HelperAnswer,
    HelperAsk,
    KioskChoose,
    KioskLink,
    KioskOpen,
    KioskPanel,
)
from tests.integration.client import Client
from tests.integration.conftest import STAFF_TOKEN, RunningServer, StartServer

JUMINHYO = "kiosk-juminhyo"  # world.toml: floor 1f, x 12, z 16, radius 2
JUMINHYO_LINE = "https://liff.line.me/2000000000-Sample01/juminhyo"
JUMINHYO_GRAFFER = "https://ttzk.graffer.jp/city-machida/smart-apply/apply-procedure-alias/juminhyo"


def where(srv: RunningServer, c: Client) -> tuple[str, float, float]:
    """Where the server has the avatar: what the kiosk's reach check uses."""
    return srv.app[HALL].instances[0].position(c.avatar_id)


async def walk_to(srv: RunningServer, c: Client, x: float, z: float, within: float = 0.4) -> None:
    """Steer towards (x, z), once per snapshot, until within ``within`` metres; then stop."""
    for _ in range(400):
        _, ax, az = where(srv, c)
        dx, dz = x - ax, z - az
        d = math.hypot(dx, dz)
        if d <= within:
            break
        s = min(1.0, d / 1.5) / d
        await c.move(dx * s, dz * s)
        seen = c.snapshots
        await c.until(lambda seen=seen: c.snapshots > seen + 1)
    await c.move(0.0, 0.0)
    _, ax, az = where(srv, c)
    assert math.hypot(x - ax, z - az) <= within + 0.3, f"stuck at {ax:.1f}, {az:.1f}"


async def test_walk_up_open_choose_and_the_counts_survive_a_restart(
    start_server: StartServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    srv = await start_server(data_dir=data)
    async with Client(srv.ws, "住民") as c:
        await walk_to(srv, c, 12.0, 17.5)
        await c.send(KioskOpen(kiosk_id=JUMINHYO, lang="ja"))
        panel = await c.reply(KioskPanel)
        assert panel.kiosk_id == JUMINHYO and panel.panel["title"]["ja"] == "住民票の写し"
        assert [ch["id"] for ch in panel.panel["channels"]] == ["line", "graffer", "city-page"]

        await c.send(KioskChoose(kiosk_id=JUMINHYO, channel="line", device="pc"))
        link = await c.reply(KioskLink)
        # each link handed out carries its own opaque reference (the counters' funnel)
        assert link.channel == "line" and link.url.startswith(JUMINHYO_LINE + "?emachi_ref=")
        assert link.qr_svg is not None and link.qr_svg.startswith("<svg")

        await c.send(KioskChoose(kiosk_id=JUMINHYO, channel="graffer", device="phone"))
        link = await c.reply(KioskLink)
        assert link.url.startswith(JUMINHYO_GRAFFER + "?emachi_ref=") and link.qr_svg is None

        # An unknown channel, or a URL in place of one, is an error, never a link.
        for bad in ("fax", "https://evil.example/"):
            await c.send(KioskChoose(kiosk_id=JUMINHYO, channel=bad, device="pc"))
            err = await c.reply(Error)
            assert err.code == "channel_unknown"
        await c.sync()  # a link would have come before the answer to the ping
        assert c.messages(KioskLink) == []
    await srv.stop()

    srv2 = await start_server(data_dir=data)
    # a person's browser: ?token= once sets the session cookie (on 127.0.0.1, hence unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        r = await http.get(
            f"{srv2.http}/staff/kiosks.csv?days=2",
            headers={"Authorization": f"Bearer {STAFF_TOKEN}"},
        )
        assert r.status == 200
        lines = (await r.text()).strip().splitlines()
        body = {tuple(x.split(",")[1:]) for x in lines[1:]}
        assert ("kiosk-juminhyo", "juminhyo", "view", "", "1") in body
        assert ("kiosk-juminhyo", "juminhyo", "open", "line", "1") in body
        assert ("kiosk-juminhyo", "juminhyo", "open", "graffer", "1") in body
        assert not any("avatar" in x or "住民" in x for x in lines)  # no personal data
        page = await http.get(f"{srv2.http}/staff/kiosks?token={STAFF_TOKEN}")
        html = await page.text()
        assert page.status == 200 and "<svg" in html and "住民票の写し" in html


async def test_opening_from_across_the_hall_is_refused(server: RunningServer) -> None:
    async with Client(server.ws, "住民") as c:
        floor, x, z = where(server, c)  # the entrance, about 30 m from the kiosk row
        assert math.hypot(x - 12.0, z - 16.0) > 20
        await c.send(KioskOpen(kiosk_id=JUMINHYO, lang="ja"))
        err = await c.reply(Error)
        assert err.code == "kiosk_too_far" and "walk up to the kiosk" in err.reason
        # Choosing without having opened it gets no link either.
        await c.send(KioskChoose(kiosk_id=JUMINHYO, channel="line", device="pc"))
        err = await c.reply(Error)
        assert err.code == "kiosk_not_open"
        await c.sync()
        assert c.messages((KioskPanel, KioskLink)) == []
    assert await server.app[kiosk.KIOSKS].store.rows() == []  # type: ignore[attr-defined]


async def test_unknown_kiosk_gets_an_error_and_the_connection_stays(server: RunningServer) -> None:
    async with Client(server.ws, "住民") as c:
        await c.send(KioskOpen(kiosk_id="kiosk-nowhere", lang="ja"))
        assert (await c.reply(Error)).code == "kiosk_unknown"
        await c.send(KioskChoose(kiosk_id="kiosk-nowhere", channel="line", device="pc"))
        assert (await c.reply(Error)).code == "kiosk_unknown"
        # still connected: a helper question is answered
        await c.send(HelperAsk(helper="garbage", query={"item": "ｿﾌｧｰ"}))
        ans = await c.reply(HelperAnswer)
        assert ans.answer["item"]["name"]["ja"] == "ソファ（2人掛け以上）"
        assert ans.answer["booking"][0]["url"].startswith("https://line.me/R/oaMessage/@")


async def test_helpers_over_the_socket_and_http(server: RunningServer) -> None:
    async with Client(server.ws, "住民") as c:
        await c.send(
            HelperAsk(helper="moving", query={"direction": "out", "who": "alone", "nhi": True})
        )
        ans = await c.reply(HelperAnswer)
        assert [s["id"] for s in ans.answer["steps"]] == [
            "move-out-notice",
            "nhi-leave",
            "bulky-garbage",
        ]
        await c.send(HelperAsk(helper="moving", query={"direction": "up"}))
        assert (await c.reply(Error)).code == "helper_query"
    async with aiohttp.ClientSession() as http:
        r = await http.post(f"{server.http}/api/helpers/garbage", json={"item": "けいこうとう"})
        assert r.status == 200
        assert (await r.json())["answer"]["item"]["category"]["id"] == "hazardous"
        r = await http.post(f"{server.http}/api/helpers/garbage", json={"item": "宇宙船"})
        assert (await r.json())["answer"]["found"] is False
        r = await http.post(f"{server.http}/api/helpers/oracle", json={})
        assert r.status == 400 and (await r.json())["code"] == "helper_unknown"


@pytest.mark.parametrize(
    ("path", "headers", "status", "says"),
    [
        ("/staff/kiosks", {}, 401, "staff token required"),
        ("/staff/kiosks.csv", {}, 401, "staff token required"),
        ("/staff/kiosks?token=wrong", {}, 401, "not valid"),
        ("/staff/kiosks", {"Authorization": "Bearer wrong"}, 401, "not valid"),
        ("/staff/kiosks", {"Authorization": f"Bearer {STAFF_TOKEN}"}, 200, "キオスクの利用状況"),
        ("/staff/kiosks?days=0", {"Authorization": f"Bearer {STAFF_TOKEN}"}, 400, "days"),
    ],
)
async def test_staff_page_needs_the_token(
    server: RunningServer, path: str, headers: dict[str, str], status: int, says: str
) -> None:
    async with aiohttp.ClientSession() as http:
        r = await http.get(server.http + path, headers=headers)
        assert r.status == status
        assert says in await r.text()
        if status == 401:
            assert r.headers["WWW-Authenticate"].startswith("Bearer")
