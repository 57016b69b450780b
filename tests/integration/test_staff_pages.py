"""Staff pages on a real server: the minutes as files with stable links (listed, served as
text/markdown and text/html, times in the city's zone), /staff/kiosks with named channels and
a rate that is defined, a favicon, and the moving checklist carried to a phone."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from server.briefing.service import LiveBriefing
from server.briefing.timeline import Action
from server.keys import BRIEFINGS, KIOSKS
from tests.integration.conftest import STAFF_TOKEN, RunningServer, StartServer
from tests.tools import until
from tests.unit.test_minutes_as_spoken import at, doc

AUTH = {"Authorization": f"Bearer {STAFF_TOKEN}"}


def ended_run(srv: RunningServer) -> LiveBriefing:
    """A run of four segments, started 2022-06-29 14:00 JST, skipped past segment 1, ended."""
    b = LiveBriefing(doc())
    b.act(Action.START, at(0))
    b.act(Action.SEEK, at(1), segment=2)
    b.act(Action.END, at(23))
    srv.app[BRIEFINGS].finish(b)  # what the server does at the end: the minutes in its zone
    return b


async def test_minutes_are_files_listed_with_stable_links_in_the_city_zone(
    start_server: StartServer,
) -> None:
    srv = await start_server()
    ended_run(srv)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{srv.http}/staff/minutes/") as r:
            assert r.status == 401  # staff only
        async with http.get(f"{srv.http}/staff/minutes/", headers=AUTH) as r:
            assert r.status == 200 and r.content_type == "text/html"
            index = await r.text()
        links = re.findall(r'href="(/staff/minutes/[^"]+)"', index)
        assert links == [
            "/staff/minutes/b1-20220629T050000Z.html",
            "/staff/minutes/b1-20220629T050000Z.md",
        ]
        assert "2022-06-29 14:00:00 JST" in index and "Asia/Tokyo" in index

        async with http.get(srv.http + links[1], headers=AUTH) as r:
            assert r.status == 200 and r.content_type == "text/markdown" and r.charset == "utf-8"
            md = await r.text()
        assert "開始 started: 2022-06-29 14:00:00 JST (05:00:00 UTC)" in md
        assert "第2文" in md and "第0文" not in md and "第1文" not in md  # as played
        async with http.get(srv.http + links[0], headers=AUTH) as r:
            assert r.status == 200 and r.content_type == "text/html"
            assert "14:00:23 JST" in await r.text()

        async with http.get(
            f"{srv.http}/staff/minutes/?format=json&briefing=b1", headers=AUTH
        ) as r:
            listing = await r.json()
        assert listing["time_zone"] == "Asia/Tokyo"
        assert listing["minutes"][0]["md"] == links[1] and listing["minutes"][0][
            "started"
        ].startswith("2022-06-29 14:00:00 JST")

        for bad in (
            "..%2Frecords.sqlite3",
            "b1-20220629T050000Z.txt",
            "nothing-20220101T000000Z.md",
        ):
            async with http.get(f"{srv.http}/staff/minutes/{bad}", headers=AUTH) as r:
                assert r.status == 404, bad


async def test_the_time_zone_is_configurable(start_server: StartServer) -> None:
    srv = await start_server(time_zone="Europe/Berlin")
    ended_run(srv)
    url = f"{srv.http}/staff/minutes/b1-20220629T050000Z.md"
    async with aiohttp.ClientSession() as http, http.get(url, headers=AUTH) as r:
        assert "2022-06-29 07:00:00 CEST (05:00:00 UTC)" in await r.text()


async def test_kiosk_page_names_the_channels_and_defines_its_rate(server: RunningServer) -> None:
    service = server.app[KIOSKS]
    day = service.today()
    # one view from which a resident opened LINE and then the city's page: 2 opens per view
    service.store.add(day, "kiosk-juminhyo", "view")
    service.store.add(day, "kiosk-juminhyo", "open", "line")
    service.store.add(day, "kiosk-juminhyo", "open", "city-page")

    async with aiohttp.ClientSession() as http:

        async def page() -> str:
            async with http.get(f"{server.http}/staff/kiosks", headers=AUTH) as r:
                assert r.status == 200
                return await r.text()

        async def counted() -> bool:
            return "<td>2.00</td>" in await page()

        await until(counted, what="the counts on the page")
        html = await page()
    head = re.search(r"<thead>.*?</thead>", html, re.S)[0]  # type: ignore[index]
    for name in (
        "LINE",
        "Graffer グラファー",
        "マイナポータル",
        "東京共同電子申請",
        "市のホームページ",
    ):
        assert name in head
    assert not re.search(r">(graffer|mynaportal|tokyo-eapp|city-page)<", html), (
        "no raw channel ids shown"
    )
    assert "1表示あたりの移動" in head and "%" not in re.search(  # type: ignore[union-attr]
        r"<tr><th scope=row>住民票の写し.*?</tr>", html
    ).group(0)
    assert "1を超えることがあります" in html and "can be above 1" in html
    assert 'rel="icon" href="/favicon.ico"' in html


async def test_the_favicon_is_served(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{server.http}/favicon.ico") as r:
        assert r.status == 200 and r.content_type == "image/svg+xml"
        assert (await r.text()).startswith("<svg")


async def test_the_moving_checklist_goes_to_the_phone_by_qr(server: RunningServer) -> None:
    q = "direction=out&who=alone&nhi=1&done=nhi-leave"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.http}/api/helpers/moving/share?{q}") as r:
            assert r.status == 200
            body: dict[str, Any] = await r.json()
        assert body["qr_svg"].startswith("<svg") and body["done"] == ["nhi-leave"]
        url = urlsplit(body["url"])
        assert (url.path, url.query) == ("/moving", q)
        assert [s["id"] for s in body["checklist"]["steps"]] == [
            "move-out-notice",
            "nhi-leave",
            "bulky-garbage",
        ]
        async with http.get(f"{server.http}/moving?{url.query}") as r:
            assert r.status == 200 and "moving-page.js" in await r.text()
        async with http.get(
            f"{server.http}/api/helpers/moving/share?direction=out&who=alone&name=x"
        ) as r:
            assert r.status == 400 and "'name' is not a question" in (await r.json())["reason"]
