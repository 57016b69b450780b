"""Two watch-only viewers in real Chromium: the narration plays in step (≤ 50 ms apart), captions
appear with the voice, and the slide changes at the segment boundary."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from server import briefing, features
from server.briefing.render import render_script
from server.briefing.script import parse_script
from server.config import Config

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium"),
]

WAIT = 0.05  # the one unit every wait here is a multiple of
TOKEN = "browser-staff-token"
BID = "browser-briefing"
SCRIPT = f"""\
format: emachi-briefing/1
id: {BID}
title: ブラウザテストの説明会
date: 2024-01-02
cast:
  - {{avatar: clerk, role: 事務局, name: 情報システム課, voice: ja-openjtalk, speed: 1.0}}
segments:
  - speaker: clerk
    slide: {{title: 一枚目, bullets: [戦略1]}}
    narration: 論点1は、戦略1と2にあたります。
    pause_after: 0.3
  - speaker: clerk
    slide: {{title: 二枚目, bullets: [戦略2]}}
    narration: 論点2を説明します。以上です。
    pause_after: 0
"""


@pytest.fixture
async def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """A real server with the briefing rendered into its data dir; yields its base URL."""
    data = tmp_path / "data"
    render_script(parse_script(SCRIPT, "browser.yaml"), data)
    if briefing.setup not in features.SETUPS:
        monkeypatch.setattr(features, "SETUPS", [*features.SETUPS, briefing.setup])
    from server.app import create_app

    config = replace(Config(port=0, data_dir=data, staff_token=TOKEN))
    app = create_app(config)
    _serve_assets_if_unwired(app, data)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    s = web.TCPSite(runner, "127.0.0.1", 0)
    await s.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


def _serve_assets_if_unwired(app: web.Application, data: Path) -> None:
    """The lead's app mounts /assets (assets_http) with the data dir's store; until it does,
    mount it here so the page can fetch the narration."""
    if any(getattr(r, "canonical", "").startswith("/assets/") for r in app.router.resources()):
        return
    from assets_manifest.store import AssetStore
    from server import assets_http

    app[assets_http.ASSET_STORES] = [AssetStore(data / "assets")]
    assets_http.setup(app)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(
            executable_path=shutil.which("chromium"),
            args=["--autoplay-policy=no-user-gesture-required"],
        )
        yield b
        await b.close()


async def _staff(base: str, action: str) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{base}/staff/briefings/{BID}/{action}", headers={"Authorization": f"Bearer {TOKEN}"}
        ) as r,
    ):
        assert r.status == 200, await r.text()


async def _until(page: Any, expr: str, n: int = 200) -> Any:
    await page.wait_for_function(expr, timeout=n * WAIT * 1000)
    return await page.evaluate(expr)


async def test_two_viewers_play_in_step_with_captions_and_slides(site: str, browser: Any) -> None:
    pages = []
    for _ in range(2):
        page = await browser.new_page()
        await page.goto(f"{site}/briefing/{BID}")
        await _until(page, "window.emachiBriefing && window.emachiBriefing.state() !== null")
        await _until(page, "window.emachiBriefing.audio() === 'running'")
        pages.append(page)
    a, b = pages
    segments = await a.evaluate(
        "window.emachiBriefing.player.segments.map(s => [s.start, s.duration])"
    )
    boundary = segments[1][0]
    await a.wait_for_timeout(20 * WAIT * 1000)  # a few pings for the clock offset
    await _staff(site, "start")
    for p in pages:
        await _until(p, "window.emachiBriefing.sounding() > 0")

    # captions follow the voice
    first = await _until(a, "window.emachiBriefing.caption()")
    assert first == "論点1は、戦略1と2にあたります。"

    # both viewers hear the same point of the narration at the same moment
    gaps = []
    slides: list[tuple[float, int]] = []
    while True:
        when = await a.evaluate("window.emachiBriefing.epochNow() + 100")
        pa = await a.evaluate(f"window.emachiBriefing.positionAt({when})")
        pb = await b.evaluate(f"window.emachiBriefing.positionAt({when})")
        sounding = await a.evaluate("window.emachiBriefing.sounding()")
        if sounding and 0 < pa < segments[-1][0] + segments[-1][1] - 0.2:
            gaps.append(abs(pa - pb))
        pos, idx = await b.evaluate(
            "[window.emachiBriefing.position(), window.emachiBriefing.slideIndex()]"
        )
        slides.append((pos, idx))
        if pos > boundary + 1.0:
            break
        await a.wait_for_timeout(2 * WAIT * 1000)
    assert len(gaps) >= 10
    assert max(gaps) <= 0.050, f"viewers apart by up to {max(gaps) * 1000:.0f} ms"

    # the slide is the one of the segment being played, and changes at the boundary
    assert {i for _, i in slides} == {0, 1}
    for pos, idx in slides:
        if abs(pos - boundary) > 0.05:
            assert idx == (1 if pos > boundary else 0), (pos, idx)
    assert await b.evaluate("window.emachiBriefing.slideTitle()") == "二枚目"
    second = await _until(
        b, "window.emachiBriefing.caption().startsWith('論点2') && window.emachiBriefing.caption()"
    )
    assert second == "論点2を説明します。"
