"""Two watch-only viewers in real Chromium: the narration plays in step (≤ 50 ms apart), captions
appear with the voice, and the slide changes at the segment boundary.

Uses the shared fixtures (tests/browser/conftest.py): a real ``emachi serve`` subprocess; the
briefing is rendered into its data dir while it runs (the server picks up new timelines)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from server.briefing.render import render_script
from server.briefing.script import parse_script

from .conftest import WAIT, EmachiServer, wait_for

BID = "browser-briefing"
SCRIPT = """\
format: emachi-briefing/1
id: {id}
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
HOOK = "window.emachiBriefing"
HALL_BID = "browser-briefing-hall"
CONSOLE_BID = "browser-briefing-console"


@pytest.fixture
def briefing_server(emachi: EmachiServer) -> EmachiServer:
    for bid in (BID, HALL_BID):
        render_script(parse_script(SCRIPT.format(id=bid), "browser.yaml"), emachi.data_dir)
    return emachi


def _staff(server: EmachiServer, action: str, body: Any = None, bid: str = BID) -> dict[str, Any]:
    req = urllib.request.Request(
        f"{server.url}/staff/briefings/{bid}/{action}",
        method="POST",
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {server.staff_token}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(req, timeout=40 * WAIT) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def _viewer(open_page: Any, server: EmachiServer) -> Any:
    page = open_page(f"{server.url}/briefing/{BID}")
    wait_for(page, f"{HOOK}.state() !== null")
    if page.evaluate(f"{HOOK}.audio()") != "running":
        page.click(".bp-sound")  # browsers start sound only after a tap or a key
    wait_for(page, f"{HOOK}.audio() === 'running'")
    return page


def test_two_viewers_play_in_step_with_captions_and_slides(
    briefing_server: EmachiServer, open_page: Any
) -> None:
    a = _viewer(open_page, briefing_server)
    b = _viewer(open_page, briefing_server)
    segments = a.evaluate(f"{HOOK}.player.segments.map(s => [s.start, s.duration])")
    boundary = segments[1][0]
    end = segments[-1][0] + segments[-1][1]
    a.wait_for_timeout(4 * WAIT * 1000)  # a few ping/pongs for the clock offset
    _staff(briefing_server, "start")
    for p in (a, b):
        wait_for(p, f"{HOOK}.sounding() > 0")

    # captions follow the voice
    assert wait_for(a, f"{HOOK}.caption()") == "論点1は、戦略1と2にあたります。"

    # both viewers are at the same point of the narration at the same moment
    gaps = []
    slides: list[tuple[float, int]] = []
    while True:
        when = a.evaluate(f"{HOOK}.epochNow() + 100")
        pa = a.evaluate(f"{HOOK}.positionAt({when})")
        pb = b.evaluate(f"{HOOK}.positionAt({when})")
        if a.evaluate(f"{HOOK}.sounding()") and 0 < pa < end - 0.2:
            gaps.append(abs(pa - pb))
        pos, idx = b.evaluate(f"[{HOOK}.position(), {HOOK}.slideIndex()]")
        slides.append((pos, idx))
        if pos > boundary + 0.3:
            _staff(briefing_server, "pause")  # hold the second caption on screen
            break
        a.wait_for_timeout(WAIT / 2 * 1000)
    assert len(gaps) >= 5
    assert max(gaps) <= 0.050, f"viewers apart by up to {max(gaps) * 1000:.0f} ms"

    # the slide is the one of the segment being played, and it changes at the boundary
    assert {i for _, i in slides} == {0, 1}
    for pos, idx in slides:
        if abs(pos - boundary) > 0.05:
            assert idx == (1 if pos > boundary else 0), (pos, idx)
    assert b.evaluate(f"{HOOK}.slideTitle()") == "二枚目"
    wait_for(b, f"{HOOK}.state().state === 'paused'")
    assert b.evaluate(f"{HOOK}.caption()") == "論点2を説明します。"


def test_an_avatar_in_the_hall_sees_the_slide_on_the_stage_screen_and_the_captions(
    briefing_server: EmachiServer, open_page: Any
) -> None:
    from .conftest import join

    page = open_page()
    join(page, "傍聴者")
    wait_for(page, f"typeof {HOOK} !== 'undefined'")
    _staff(briefing_server, "start", bid=HALL_BID)
    wait_for(page, f"{HOOK}.state() && {HOOK}.state().id === '{HALL_BID}'")
    # hold the start of the second segment: the same picture however slow the machine is
    _staff(briefing_server, "pause", bid=HALL_BID)
    _staff(briefing_server, "seek", {"segment": 1}, bid=HALL_BID)
    wait_for(page, f"{HOOK}.state().state === 'paused' && {HOOK}.state().segment === 1")
    assert (
        wait_for(page, f"{HOOK}.slideTitle() === '二枚目' && {HOOK}.caption()")
        == "論点2を説明します。"
    )
    screen = page.evaluate(
        "(() => { const s = window.emachi.app.view.screens.get('committee-stage');"
        " return s.material.map && s.material.map.image && s.material.map.image.dataset.slideTitle; })()"
    )
    assert screen == "二枚目"
    _staff(briefing_server, "end", bid=HALL_BID)


def test_staff_run_the_briefing_and_the_questions_from_the_console(
    briefing_server: EmachiServer, open_page: Any
) -> None:
    bid = CONSOLE_BID
    render_script(parse_script(SCRIPT.format(id=bid), "browser.yaml"), briefing_server.data_dir)
    viewer = open_page(f"{briefing_server.url}/briefing/{bid}")
    wait_for(viewer, f"{HOOK}.state() !== null")
    viewer.fill(".bp-ask input", "資料はどこで見られますか？")
    viewer.click(".bp-ask button[type=submit]")
    console = open_page(
        f"{briefing_server.url}/staff/briefings/{bid}/console?token={briefing_server.staff_token}"
    )
    assert "token" not in console.url, "the token leaves the address bar"
    console.click("button[data-action=start]")
    wait_for(console, "window.emachiStaff.last().state === 'live'")
    wait_for(viewer, f"{HOOK}.state().state === 'live'")
    console.click("#segments tr:nth-child(2) button")
    wait_for(viewer, f"{HOOK}.state().segment === 1")
    console.click("button[data-action=pause]")
    wait_for(console, "document.querySelector('#questions td') !== null")
    assert console.inner_text("#questions td") == "資料はどこで見られますか？"
    console.click("#questions button")  # show it on the screen
    shown = wait_for(viewer, f"{HOOK}.state().question && {HOOK}.state().question.text")
    assert shown == "資料はどこで見られますか？"
    assert "資料はどこで見られますか？" in viewer.inner_text(".bp-question")
    assert wait_for(viewer, f"{HOOK}.screenQuestion()") == "資料はどこで見られますか？"
    console.click("button[data-action=end]")
    wait_for(console, "window.emachiStaff.last().state === 'ended'")
    wait_for(console, "document.querySelector('#minutes a[data-format=html]') !== null")
