"""Kiosks on a real server on a free port, with real WebSocket clients.

The avatar really walks (INPUT messages, the server's tick moves it); where it stands is read from
the server's own instance, which is what the kiosk's reach check uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from websockets.asyncio.client import ClientConnection, connect

import server.kiosk as kiosk
from server.app import create_app
from server.config import Config
from server.keys import HALL
from server.protocol.codes import PROTOCOL_VERSION, MsgType
from server.protocol.messages import (
    Error,
    Hello,
    HelperAnswer,
    HelperAsk,
    Input,
    KioskChoose,
    KioskLink,
    KioskOpen,
    KioskPanel,
    Message,
    decode,
)

WAIT = 0.05  # every wait below is a multiple of this
STAFF_TOKEN = "kiosk-test-token"
JUMINHYO = "kiosk-juminhyo"  # world.toml: floor 1f, x 12, z 16, radius 2
JUMINHYO_LINE = "https://liff.line.me/2000000000-Sample01/juminhyo"
JUMINHYO_GRAFFER = "https://ttzk.graffer.jp/city-machida/smart-apply/apply-procedure-alias/juminhyo"
# Frames a kiosk test does not read (movement); they are skipped before decoding.
SKIP = {int(MsgType.SNAPSHOT), int(MsgType.AUDIO_SUBS), int(MsgType.VOICE_FRAME)}


@dataclass(slots=True)
class Running:
    app: web.Application
    runner: web.AppRunner
    port: int

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"


Start = Callable[[Path], Awaitable[Running]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    runners: list[web.AppRunner] = []

    async def go(data_dir: Path) -> Running:
        config = replace(Config(port=0, data_dir=data_dir, staff_token=STAFF_TOKEN))
        app = create_app(config)
        kiosk.setup(app)  # a no-op once server.features mounts kiosks itself
        runner = web.AppRunner(app, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        return Running(app, runner, runner.addresses[0][1])

    yield go
    for r in reversed(runners):
        await r.cleanup()


class KioskClient:
    """Says hello, keeps every non-movement message, walks by sending inputs."""

    def __init__(self, srv: Running) -> None:
        self.srv = srv
        self.ws: ClientConnection | None = None
        self.avatar_id = -1
        self.inbox: list[Message] = []
        self.seq = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> KioskClient:
        self.ws = await connect(f"ws://127.0.0.1:{self.srv.port}/ws", compression=None)
        await self.ws.send(Hello(version=PROTOCOL_VERSION, name="住民", resume=None, opts={}).encode())
        welcome = decode(await asyncio.wait_for(self.ws.recv(), 100 * WAIT))
        self.avatar_id = welcome.avatar_id  # type: ignore[attr-defined]
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.ws is not None
        await self.ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task

    async def _read(self) -> None:
        assert self.ws is not None
        async for data in self.ws:
            assert isinstance(data, bytes)
            # [type, ...]: byte 0 is the array header, byte 1 the type code (a positive fixint).
            if len(data) > 1 and data[1] in SKIP:
                continue
            self.inbox.append(decode(data))

    async def send(self, msg: Message) -> None:
        assert self.ws is not None
        await self.ws.send(msg.encode())

    def where(self) -> tuple[str, float, float]:
        inst = self.srv.app[HALL].instances[0]
        return inst.position(self.avatar_id)

    async def walk_to(self, x: float, z: float, within: float = 0.4) -> None:
        """Steer towards (x, z) until within ``within`` metres; fail after 400 waits."""
        for _ in range(400):
            _, ax, az = self.where()
            dx, dz = x - ax, z - az
            d = math.hypot(dx, dz)
            if d <= within:
                break
            s = min(1.0, d / 1.5) / d
            self.seq += 1
            await self.send(Input(seq=self.seq, ack_tick=0, mx=dx * s, mz=dz * s, yaw=math.atan2(dx, dz)))
            await asyncio.sleep(2 * WAIT)
        self.seq += 1
        await self.send(Input(seq=self.seq, ack_tick=0, mx=0.0, mz=0.0, yaw=0.0))
        _, ax, az = self.where()
        assert math.hypot(x - ax, z - az) <= within + 0.3, f"stuck at {ax:.1f}, {az:.1f}"

    async def reply(self, kind: type[Message] | tuple[type[Message], ...]) -> Any:
        """The next message of ``kind`` (removed from the inbox), waiting up to 100 waits."""
        for _ in range(100):
            for i, m in enumerate(self.inbox):
                if isinstance(m, kind):
                    return self.inbox.pop(i)
            await asyncio.sleep(WAIT)
        raise AssertionError(f"no {kind} came; inbox {self.inbox}")

    def links(self) -> list[KioskLink]:
        return [m for m in self.inbox if isinstance(m, KioskLink)]


async def test_walk_up_open_choose_and_the_counts_survive_a_restart(start: Start, tmp_path: Path) -> None:
    data = tmp_path / "data"
    srv = await start(data)
    async with KioskClient(srv) as c:
        await c.walk_to(12.0, 17.5)
        await c.send(KioskOpen(kiosk_id=JUMINHYO, lang="ja"))
        panel = await c.reply(KioskPanel)
        assert panel.kiosk_id == JUMINHYO and panel.panel["title"]["ja"] == "住民票の写し"
        assert [ch["id"] for ch in panel.panel["channels"]] == ["line", "graffer", "city-page"]

        await c.send(KioskChoose(kiosk_id=JUMINHYO, channel="line", device="pc"))
        link = await c.reply(KioskLink)
        assert (link.channel, link.url) == ("line", JUMINHYO_LINE)
        assert link.qr_svg is not None and link.qr_svg.startswith("<svg")

        await c.send(KioskChoose(kiosk_id=JUMINHYO, channel="graffer", device="phone"))
        link = await c.reply(KioskLink)
        assert (link.url, link.qr_svg) == (JUMINHYO_GRAFFER, None)

        # An unknown channel, or a URL in place of one, is an error, never a link.
        for bad in ("fax", "https://evil.example/"):
            await c.send(KioskChoose(kiosk_id=JUMINHYO, channel=bad, device="pc"))
            err = await c.reply(Error)
            assert err.code == "channel_unknown"
        await asyncio.sleep(4 * WAIT)
        assert c.links() == []
    await srv.runner.cleanup()

    srv2 = await start(data)
    async with aiohttp.ClientSession() as http:
        r = await http.get(f"{srv2.http}/staff/kiosks.csv?days=2",
                           headers={"Authorization": f"Bearer {STAFF_TOKEN}"})
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


async def test_opening_from_across_the_hall_is_refused(start: Start, tmp_path: Path) -> None:
    srv = await start(tmp_path / "data")
    async with KioskClient(srv) as c:
        floor, x, z = c.where()  # the entrance, about 30 m from the kiosk row
        assert math.hypot(x - 12.0, z - 16.0) > 20
        await c.send(KioskOpen(kiosk_id=JUMINHYO, lang="ja"))
        err = await c.reply(Error)
        assert err.code == "kiosk_too_far" and "walk up to the kiosk" in err.reason
        # Choosing without having opened it gets no link either.
        await c.send(KioskChoose(kiosk_id=JUMINHYO, channel="line", device="pc"))
        err = await c.reply(Error)
        assert err.code == "kiosk_not_open"
        await asyncio.sleep(4 * WAIT)
        assert not any(isinstance(m, KioskPanel | KioskLink) for m in c.inbox)
    assert await srv.app[kiosk.KIOSKS].store.rows() == []  # type: ignore[attr-defined]


async def test_unknown_kiosk_gets_an_error_and_the_connection_stays(start: Start, tmp_path: Path) -> None:
    srv = await start(tmp_path / "data")
    async with KioskClient(srv) as c:
        await c.send(KioskOpen(kiosk_id="kiosk-nowhere", lang="ja"))
        assert (await c.reply(Error)).code == "kiosk_unknown"
        await c.send(KioskChoose(kiosk_id="kiosk-nowhere", channel="line", device="pc"))
        assert (await c.reply(Error)).code == "kiosk_unknown"
        # still connected: a helper question is answered
        await c.send(HelperAsk(helper="garbage", query={"item": "ｿﾌｧｰ"}))
        ans = await c.reply(HelperAnswer)
        assert ans.answer["item"]["name"]["ja"] == "ソファ（2人掛け以上）"
        assert ans.answer["booking"][0]["url"].startswith("https://line.me/R/oaMessage/@")


async def test_helpers_over_the_socket_and_http(start: Start, tmp_path: Path) -> None:
    srv = await start(tmp_path / "data")
    async with KioskClient(srv) as c:
        await c.send(HelperAsk(helper="moving", query={"direction": "out", "who": "alone", "nhi": True}))
        ans = await c.reply(HelperAnswer)
        assert [s["id"] for s in ans.answer["steps"]] == ["move-out-notice", "nhi-leave", "bulky-garbage"]
        await c.send(HelperAsk(helper="moving", query={"direction": "up"}))
        assert (await c.reply(Error)).code == "helper_query"
    async with aiohttp.ClientSession() as http:
        r = await http.post(f"{srv.http}/api/helpers/garbage", json={"item": "けいこうとう"})
        assert r.status == 200
        assert (await r.json())["answer"]["item"]["category"]["id"] == "hazardous"
        r = await http.post(f"{srv.http}/api/helpers/garbage", json={"item": "宇宙船"})
        assert (await r.json())["answer"]["found"] is False
        r = await http.post(f"{srv.http}/api/helpers/oracle", json={})
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
async def test_staff_page_needs_the_token(start: Start, tmp_path: Path, path: str,
                                          headers: dict[str, str], status: int, says: str) -> None:
    srv = await start(tmp_path / "data")
    async with aiohttp.ClientSession() as http:
        r = await http.get(srv.http + path, headers=headers)
        assert r.status == status
        assert says in await r.text()
        if status == 401:
            assert r.headers["WWW-Authenticate"].startswith("Bearer")
