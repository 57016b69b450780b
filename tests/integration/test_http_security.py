"""Browser-facing HTTP on a real server: security headers, staff routes that refuse cross-site
requests and keep the token out of links, the /ws Origin rule, the helper endpoints' limit, assets
by range, and /metrics as Prometheus reads it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from assets_manifest.store import AssetStore
from server.app import create_app
from server.config import CLIENT_DIR, Config
from server.errors import LoadError

from .client import WAIT, Client
from .conftest import STAFF_TOKEN, RunningServer, StartServer
from .test_briefing import BID, _start
from .test_briefing import mounted as mounted  # noqa: F401 - fixtures used by name
from .test_briefing import rendered as rendered  # noqa: F401

BEARER = {"Authorization": f"Bearer {STAFF_TOKEN}"}
EVIL = "http://evil.example"


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 100 * WAIT) -> None:
    """Wait for ``check()`` to hold, polling every WAIT; fail after ``timeout``."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not await check():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(WAIT)


@pytest.fixture
async def bserver(
    mounted: None,  # noqa: F811
    rendered: Path,  # noqa: F811
    start_server: StartServer,
    tmp_path: Path,
) -> RunningServer:
    return await _start(start_server, rendered, tmp_path)


async def briefing_state(srv: RunningServer) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{srv.http}/staff/briefings/{BID}", headers=BEARER) as r,
    ):
        assert r.status == 200
        return str((await r.json())["state"])


def import_map_hash() -> str:
    html = (CLIENT_DIR / "index.html").read_text(encoding="utf-8")
    body = re.search(r'<script type="importmap">(.*?)</script>', html, re.DOTALL)
    assert body is not None
    return base64.b64encode(hashlib.sha256(body.group(1).encode()).digest()).decode()


# -- headers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/", {}),
        (f"/briefing/{BID}", {}),
        ("/client/briefing/watch.html", {}),
        (f"/staff/briefings/{BID}/console", BEARER),
        ("/staff/kiosks", BEARER),
        ("/api/world", {}),
        ("/no/such/page", {}),
    ],
)
async def test_every_page_has_the_security_headers(
    bserver: RunningServer, path: str, headers: dict[str, str]
) -> None:
    async with aiohttp.ClientSession() as http, http.get(bserver.http + path, headers=headers) as r:
        assert r.status in (200, 404)
        h = r.headers
    csp = h["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    script = directives["script-src"].split()
    assert "'self'" in script and "'unsafe-inline'" not in script and "'unsafe-eval'" not in script
    assert f"'sha256-{import_map_hash()}'" in script, "the hall page's import map may run"
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["X-Frame-Options"] == "DENY"
    assert h["Referrer-Policy"] == "same-origin"
    assert "microphone=(self)" in h["Permissions-Policy"]


# -- staff ---------------------------------------------------------------------------------------


async def test_a_cross_site_form_post_does_not_start_the_briefing(bserver: RunningServer) -> None:
    url = f"{bserver.http}/staff/briefings/{BID}/start"
    form = {"Content-Type": "text/plain"}
    async with aiohttp.ClientSession() as http:
        # what a page on evil.example can make a staff member's browser send
        r = await http.post(
            f"{url}?token={STAFF_TOKEN}", data=b"x", headers={**form, "Origin": EVIL}
        )
        assert r.status == 403 and "cross-site" in await r.text()
        r = await http.post(
            f"{url}?token={STAFF_TOKEN}",
            data=b"x",
            headers={**form, "Sec-Fetch-Site": "cross-site"},
        )
        assert r.status == 403
        # a staff action never takes the token from the address, even same-site
        r = await http.post(f"{url}?token={STAFF_TOKEN}", data=b"x", headers=form)
        assert r.status == 401 and "Authorization: Bearer" in await r.text()
    assert await briefing_state(bserver) == "scheduled"


async def test_opening_a_staff_page_with_the_token_gives_a_session_and_drops_the_token(
    bserver: RunningServer,
) -> None:
    console = f"/staff/briefings/{BID}/console"
    jar = aiohttp.CookieJar(unsafe=True)  # the server is on 127.0.0.1
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        r = await http.get(f"{bserver.http}{console}?token={STAFF_TOKEN}", allow_redirects=False)
        assert r.status == 303 and r.headers["Location"] == console
        cookie = r.cookies["emachi_staff"]
        assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/staff"
        assert STAFF_TOKEN not in cookie.value, "the cookie holds a signed session, not the token"
        r = await http.get(bserver.http + console)
        assert r.status == 200 and "staff.js" in await r.text()
        # the console's own calls: same origin, the cookie and the session's CSRF token
        own = {"Origin": bserver.http, "Sec-Fetch-Site": "same-origin"}
        r = await http.post(f"{bserver.http}/staff/briefings/{BID}/start", headers=own)
        assert r.status == 403 and "CSRF" in await r.text(), "the cookie alone is not enough"
        csrf = (await (await http.get(f"{bserver.http}/staff/session")).json())["csrf"]
        own["X-CSRF-Token"] = csrf
        r = await http.post(f"{bserver.http}/staff/briefings/{BID}/start", headers=own)
        assert r.status == 200 and (await r.json())["state"] == "live"
        # the same cookie on a request that comes from another site is refused
        r = await http.post(
            f"{bserver.http}/staff/briefings/{BID}/pause",
            headers={"Sec-Fetch-Site": "cross-site", "X-CSRF-Token": csrf},
        )
        assert r.status == 403
    assert await briefing_state(bserver) == "live"
    async with aiohttp.ClientSession() as http:
        r = await http.get(f"{bserver.http}{console}?token=wrong", allow_redirects=False)
        assert r.status == 401 and "Set-Cookie" not in r.headers
        forged = {"Cookie": "emachi_staff=9999999999.abc.0000"}
        r = await http.get(bserver.http + console, headers=forged)
        assert r.status == 401


async def test_the_kiosk_staff_page_has_no_token_in_its_links(server: RunningServer) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        r = await http.get(f"{server.http}/staff/kiosks?days=7&token={STAFF_TOKEN}")
        html = await r.text()
        assert r.status == 200 and "token" not in str(r.url)
        assert str(r.url).endswith("/staff/kiosks?days=7")
        links = re.findall(r'href="([^"]+)"', html)
        assert "/staff/kiosks.csv?days=7" in links and "/staff/kiosks?days=30" in links
        assert STAFF_TOKEN not in html and not any("token" in link for link in links)
        r = await http.get(f"{server.http}/staff/kiosks.csv?days=7")  # the CSV link works too
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/csv")


# -- /ws -----------------------------------------------------------------------------------------


async def ws_status(srv: RunningServer, headers: dict[str, str]) -> int:
    """101 when the WebSocket opens with these headers, else the HTTP status of the refusal."""
    async with aiohttp.ClientSession() as http:
        try:
            ws = await http.ws_connect(srv.ws, headers=headers)
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status
        await ws.close()
        return 101


async def test_ws_refuses_a_dns_rebinding_pair_and_allows_local_names(
    start_server: StartServer,
) -> None:
    srv = await start_server()
    port = srv.port
    # an attacker's name resolved to this server: Host and Origin agree, and both are foreign
    assert await ws_status(srv, {"Host": f"evil.example:{port}", "Origin": f"{EVIL}:{port}"}) == 403
    assert await ws_status(srv, {"Origin": f"http://127.0.0.1:{port + 1}"}) == 403  # another port
    assert await ws_status(srv, {"Origin": "null"}) == 403
    assert await ws_status(srv, {}) == 101  # no Origin: not a browser page
    assert await ws_status(srv, {"Origin": f"http://127.0.0.1:{port}"}) == 101
    local = {"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"}
    assert await ws_status(srv, local) == 101
    v6 = {"Host": f"[::1]:{port}", "Origin": f"http://[::1]:{port}"}
    assert await ws_status(srv, v6) == 101


async def test_ws_allows_the_configured_public_url(start_server: StartServer) -> None:
    srv = await start_server(
        public_url="https://hall.example.jp/", allowed_origins=("http://kiosk.lan:8000",)
    )
    behind_proxy = {"Host": "hall.example.jp", "Origin": "https://hall.example.jp"}
    assert await ws_status(srv, behind_proxy) == 101
    assert await ws_status(srv, {"Origin": "http://kiosk.lan:8000"}) == 101
    assert await ws_status(srv, {"Host": "evil.example", "Origin": "https://evil.example"}) == 403


def test_a_public_url_that_is_not_an_origin_is_said_plainly(tmp_path: Path) -> None:
    with pytest.raises(LoadError) as exc:
        create_app(Config(data_dir=tmp_path, staff_token="t", public_url="hall.example.jp"))
    assert exc.value.problems == [
        "--public-url/--allow-origin: expected an origin like https://hall.example.jp, got 'hall.example.jp'"
    ]


# -- helpers -------------------------------------------------------------------------------------


async def asks_counted(http: aiohttp.ClientSession, srv: RunningServer) -> int:
    async with http.get(f"{srv.http}/staff/kiosks.csv?days=1", headers=BEARER) as r:
        rows = [line.split(",") for line in (await r.text()).strip().splitlines()[1:]]
    return sum(int(row[5]) for row in rows if row[3] == "ask")


async def test_helper_endpoint_checks_origin_and_limits_each_address(
    start_server: StartServer,
) -> None:
    srv = await start_server(helper_rate_per_minute=3)
    url = f"{srv.http}/api/helpers/garbage"
    ask: dict[str, Any] = {"item": "ソファ"}
    async with aiohttp.ClientSession() as http:
        r = await http.post(url, json=ask, headers={"Origin": EVIL})
        assert r.status == 403 and (await r.json())["code"] == "origin"
        for _ in range(3):
            r = await http.post(url, json=ask, headers={"Origin": srv.http})
            assert r.status == 200
        for _ in range(4):
            r = await http.post(url, json=ask)
            assert r.status == 429
            body = await r.json()
            assert body["code"] == "rate_limited" and "3 questions a minute" in body["reason"]
            assert int(r.headers["Retry-After"]) >= 1

        async def three() -> bool:
            return await asks_counted(http, srv) >= 3

        await until(three)
        assert await asks_counted(http, srv) == 3, "refused asks are not counted"


# -- assets --------------------------------------------------------------------------------------


async def test_an_asset_is_served_by_range(start_server: StartServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    blob = bytes(range(256)) * 4096  # 1 MiB
    sha = (
        AssetStore(data / "assets")
        .put(blob, media_type="audio/ogg", licence="CC0-1.0", source="test")
        .sha256
    )
    srv = await start_server(data_dir=data)
    url = f"{srv.http}/assets/{sha}"
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers={"Range": "bytes=1000-1999"}) as r:
            assert r.status == 206 and await r.read() == blob[1000:2000]
            assert r.headers["Content-Range"] == f"bytes 1000-1999/{len(blob)}"
            assert r.headers["ETag"] == f'"{sha}"' and "immutable" in r.headers["Cache-Control"]
            assert r.headers["X-Content-Type-Options"] == "nosniff"
        async with http.get(url, headers={"Range": "bytes=-10"}) as r:
            assert r.status == 206 and await r.read() == blob[-10:]
        async with http.get(url, headers={"Range": f"bytes={len(blob)}-"}) as r:
            assert r.status == 416
        async with http.get(url) as r:
            assert r.status == 200 and r.content_type == "audio/ogg" and await r.read() == blob
        async with http.get(url, headers={"If-None-Match": f'"{sha}"'}) as r:
            assert r.status == 304


# -- /metrics ------------------------------------------------------------------------------------


async def test_metrics_parse_as_prometheus_text_with_the_histograms(server: RunningServer) -> None:
    async with Client(server.ws) as c:
        for _ in range(10):
            await c.move(1.0, 0.0)
            await asyncio.sleep(WAIT)
        async with aiohttp.ClientSession() as http:

            async def families() -> dict[str, Any]:
                async with http.get(f"{server.http}/metrics") as r:
                    assert r.status == 200
                    return {f.name: f for f in text_string_to_metric_families(await r.text())}

            async def carried() -> bool:
                fams = await families()
                count = [
                    s
                    for s in fams["emachi_input_to_snapshot_seconds"].samples
                    if s.name.endswith("_count")
                ]
                return bool(count) and count[0].value >= 1

            await until(carried)
            fams = await families()
    tick = fams["emachi_tick_seconds"]
    assert tick.type == "histogram" and "tick" in tick.documentation
    buckets = [s for s in tick.samples if s.name == "emachi_tick_seconds_bucket"]
    assert len(buckets) > 10 and buckets[-1].labels["le"] == "+Inf" and buckets[-1].value > 0
    values = [b.value for b in buckets]
    assert values == sorted(values), "buckets are cumulative"
    latency = fams["emachi_input_to_snapshot_seconds"]
    assert latency.type == "histogram" and "input" in latency.documentation
    lat_sum = next(s.value for s in latency.samples if s.name.endswith("_sum"))
    assert 0 < lat_sum < 10
    for name in (
        "emachi_frames_sent",
        "emachi_snapshot_bytes",
        "emachi_frames_dropped",
        "emachi_closes",
    ):
        assert fams[name].type == "counter" and len(fams[name].documentation) > 20, name
    frames = next(s.value for s in fams["emachi_frames_sent"].samples)
    assert frames > 0
    assert fams["emachi_avatars"].type == "gauge"
