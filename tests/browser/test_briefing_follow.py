"""Briefings anyone can follow, in real Chromium against a real ``emachi serve``:

- the server restarts in the middle of the narration and the watch page's caption goes on from
  the sentence it was at (not from 開始前 at 0:00);
- a viewer who chose 0.75× hears the voice at 0.75× with its pitch kept, falls behind live, and
  the slide and the caption are those of what that viewer hears, not of the live position;
- the slide's text is real text in the accessibility tree (and shown as text on a phone), the
  announced start time is on the page before the start, and the question on the screen sits
  beside the presenter, not over the slide.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from server.briefing.render import render_script
from server.briefing.script import parse_script

from .conftest import WAIT, EmachiServer, _start_server, wait_for

BID = "follow-briefing"
SCRIPT = """\
format: emachi-briefing/1
id: follow-briefing
title: 聞きやすさの説明会
date: 2024-01-02
cast:
  - {avatar: clerk, role: 事務局, name: 情報システム課, voice: ja-openjtalk, speed: 1.0}
segments:
  - speaker: clerk
    slide: {title: 一枚目の論点, bullets: [戦略1は窓口のオンライン化, 戦略2は職員の働き方]}
    narration: 論点1は、戦略1と2にあたります。窓口に来なくても手続きができるようにします。
    pause_after: 0.3
  - speaker: clerk
    slide: {title: 二枚目の論点, bullets: [戦略3はデータの活用]}
    narration: 論点2を説明します。データを使って、市民の声を施策に生かします。以上です。
    pause_after: 0
"""
HOOK = "window.emachiBriefing"


def _render(server: EmachiServer) -> None:
    render_script(parse_script(SCRIPT, "follow.yaml"), server.data_dir)


def _staff(server: EmachiServer, action: str, body: Any = None) -> dict[str, Any]:
    req = urllib.request.Request(
        f"{server.url}/staff/briefings/{BID}/{action}",
        method="POST",
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {server.staff_token}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(req, timeout=40 * WAIT) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def _viewer(open_page: Any, server: EmachiServer, *, phone: bool = False) -> Any:
    page = open_page(f"{server.url}/briefing/{BID}", phone=phone, width=1100, height=800)
    wait_for(page, f"{HOOK}.state() !== null && {HOOK}.player.segments.length > 0")
    if page.evaluate(f"{HOOK}.audio()") != "running":
        page.click(".bp-sound")  # browsers start sound only after a tap or a key
    wait_for(page, f"{HOOK}.audio() === 'running'")
    return page


def _captions(page: Any) -> list[tuple[float, float, str]]:
    """Every sentence as (start, end, text) in briefing seconds."""
    return [
        (seg["start"] + a, seg["start"] + b, text)
        for seg in page.evaluate(f"{HOOK}.player.segments")
        for a, b, text in seg["captions"]
    ]


@pytest.fixture
def server(start_emachi: Any) -> EmachiServer:
    s: EmachiServer = start_emachi()
    _render(s)
    return s


def test_a_restart_in_the_middle_and_the_caption_goes_on(
    server: EmachiServer, open_page: Any
) -> None:
    page = _viewer(open_page, server)
    # the server goes away and comes back: Chromium logs the refused reconnects
    open_page.expect(page, r"WebSocket connection .* failed|ERR_CONNECTION_REFUSED")
    lines = _captions(page)
    page.wait_for_timeout(4 * WAIT * 1000)  # a few ping/pongs for the clock offset
    _staff(server, "start")
    second = lines[1][2]
    wait_for(page, f"{HOOK}.caption() === {json.dumps(second)}")
    cut = page.evaluate(f"{HOOK}.position()")

    server.stop()  # SIGTERM: the drain
    again = _start_server(server.log.parent, "--port", str(server.port))
    try:
        # the page reconnects by itself and hears the sentence that was cut, from its start
        wait_for(
            page, f"{HOOK}.state().state === 'live' && {HOOK}.state().notice?.kind === 'resumed'"
        )
        wait_for(page, f"{HOOK}.sounding() > 0 && {HOOK}.caption() !== ''")
        pos = page.evaluate(f"{HOOK}.position()")
        caption = page.evaluate(f"{HOOK}.caption()")
        assert caption in (second, lines[2][2]), caption
        assert lines[1][0] - 0.1 <= pos, (pos, cut)
        assert page.inner_text(".bp-state") == "配信中 / Live"
    finally:
        again.stop()


def test_a_viewer_at_three_quarters_speed_stays_in_step_with_the_slides(
    server: EmachiServer, open_page: Any
) -> None:
    page = _viewer(open_page, server)
    lines = _captions(page)
    boundary = page.evaluate(f"{HOOK}.player.segments[1].start")
    page.select_option(".bp-speed", "0.75")
    page.wait_for_timeout(4 * WAIT * 1000)
    _staff(server, "start")
    wait_for(page, f"{HOOK}.media() && !{HOOK}.media().paused")
    media = page.evaluate(f"{HOOK}.media()")
    assert media["rate"] == 0.75 and media["pitch"] is True

    samples = []  # (epoch ms, own position, live position, slide index, caption, heard)
    for _ in range(240):
        s = page.evaluate(
            f"""(() => {{ const b = {HOOK}; const m = b.media();
            return [b.epochNow(), b.position(), b.player.timelinePosition(), b.slideIndex(),
                    b.caption(), m && !m.paused && m.index >= 0
                      ? b.player.segments[m.index].start + m.time : null]; }})()"""
        )
        samples.append(s)
        if s[1] > boundary + 0.5:
            break
        page.wait_for_timeout(WAIT * 1000)
    # the voice goes at 0.75 of the live pace, and the viewer falls behind live
    (t0, p0, *_), (t1, p1, *_) = samples[2], samples[-1]
    assert 0.62 <= (p1 - p0) / ((t1 - t0) / 1000) <= 0.88, samples
    assert samples[-1][2] - samples[-1][1] > 1.0, "not behind live"
    assert "秒遅れ" in page.inner_text(".bp-behind")
    crossed_live_first = False
    for _, own, live, slide, caption, heard in samples:
        if heard is not None:
            assert abs(heard - own) < 0.15, (heard, own)  # captions read off the voice
        if abs(own - boundary) > 0.1:
            assert slide == (1 if own > boundary else 0), (own, slide)
        if live > boundary + 0.2 and own < boundary - 0.1:
            crossed_live_first = True  # live shows slide 2 while this viewer still hears slide 1
        said = [text for a, b, text in lines if a <= own < b]
        near = min(min(abs(own - a), abs(own - b)) for a, b, _ in lines)
        if said and near > 0.1:
            assert caption == said[0], (own, caption)
    assert crossed_live_first
    # back to live: the viewer follows the live timeline again at 1×
    page.click(".bp-live")
    wait_for(page, f"{HOOK}.own() === null && {HOOK}.sounding() > 0")
    assert page.input_value(".bp-speed") == "1"


def test_the_slide_is_text_the_start_time_is_shown_and_questions_sit_beside_the_presenter(
    server: EmachiServer, open_page: Any
) -> None:
    _staff(server, "schedule", {"at": "2030-04-01T14:00:00+09:00"})
    pc = _viewer(open_page, server)
    phone = _viewer(open_page, server, phone=True)
    for p in (pc, phone):
        wait_for(p, "document.querySelector('.bp-start').textContent.includes('開始予定')")
        assert "2030年4月1日 14:00" in p.inner_text(".bp-start")
    _staff(server, "start")
    for p in (pc, phone):
        wait_for(p, f"{HOOK}.slideIndex() === 0 && {HOOK}.state().state === 'live'")
        tree = p.locator(".bp-slide").aria_snapshot()
        assert "一枚目の論点" in tree and "戦略1は窓口のオンライン化" in tree, tree
        assert "listitem" in tree and "heading" in tree, tree
        assert p.get_attribute("#slide", "aria-hidden") == "true"
    # on a phone the canvas is too small to read: the text is shown; on a PC it is for screen
    # readers only (the canvas shows it)
    assert phone.locator(".bp-slide").bounding_box()["height"] > 40
    assert pc.locator(".bp-slide").bounding_box()["height"] <= 1

    # a question on the screen: beside the presenter, not over the slide
    pc.fill(".bp-ask input", "資料はどこで見られますか？")
    pc.click(".bp-ask button[type=submit]")
    wait_for(pc, "document.querySelector('.bp-ask-status').textContent.includes('送信しました')")
    _staff(server, "questions/1/show")
    for p in (pc, phone):
        assert wait_for(p, f"{HOOK}.screenQuestion()") == "資料はどこで見られますか？"
        q = p.locator(".side .bp-question").bounding_box()
        slide = p.locator("#slide").bounding_box()
        face = p.locator(".presenter").bounding_box()
        overlap_x = min(q["x"] + q["width"], slide["x"] + slide["width"]) - max(q["x"], slide["x"])
        overlap_y = min(q["y"] + q["height"], slide["y"] + slide["height"]) - max(
            q["y"], slide["y"]
        )
        assert overlap_x <= 0 or overlap_y <= 0, "the question covers the slide"
        overlap_fx = min(q["x"] + q["width"], face["x"] + face["width"]) - max(q["x"], face["x"])
        overlap_fy = min(q["y"] + q["height"], face["y"] + face["height"]) - max(q["y"], face["y"])
        assert overlap_fx <= 0 or overlap_fy <= 0, "the question hides the presenter"
