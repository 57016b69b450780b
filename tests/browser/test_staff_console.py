"""The staff console in Chromium: states said in Japanese with the English beside, the minutes as
links to real files, and no request that fails (the favicon included)."""

from __future__ import annotations

import subprocess
import time
from typing import Any

from server.briefing.render import render_script
from server.briefing.script import parse_script

from .conftest import EMACHI, ROOT, WAIT, EmachiServer, wait_for

BID = "browser-staff-console"
SCRIPT = f"""\
format: emachi-briefing/1
id: {BID}
title: 職員画面のテスト
date: 2024-01-02
cast:
  - {{avatar: clerk, role: 事務局, name: 情報システム課, voice: ja-openjtalk, speed: 1.0}}
segments:
  - speaker: clerk
    slide: {{title: 一枚目, bullets: [戦略1]}}
    narration: 論点1を説明します。
    pause_after: 0
"""


def test_console_says_states_in_japanese_and_links_the_minutes_files(
    emachi: EmachiServer, open_page: Any
) -> None:
    render_script(parse_script(SCRIPT, "staff.yaml"), emachi.data_dir)
    viewer = open_page(f"{emachi.url}/briefing/{BID}")
    viewer.fill(".bp-ask input", "資料はどこですか？")
    viewer.click(".bp-ask button[type=submit]")
    console = open_page(f"{emachi.url}/staff/briefings/{BID}/console?token={emachi.staff_token}")
    failed: list[str] = []
    console.on(
        "response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None
    )

    assert wait_for(console, "document.querySelector('#state').textContent") == "開始前 / scheduled"
    console.click("button[data-action=start]")
    wait_for(console, "document.querySelector('#state').textContent === '配信中 / live'")
    assert console.get_attribute("#state", "data-state") == "live"
    queued = wait_for(console, "document.querySelector('#questions td[data-state]')?.textContent")
    assert queued == "受付済み / queued"
    # it plays to its end by itself: the minutes hold what was heard
    wait_for(console, "document.querySelector('#state').textContent === '終了 / ended'")

    href = wait_for(
        console, "document.querySelector('#minutes a[data-format=html]')?.getAttribute('href')"
    )
    assert (
        isinstance(href, str)
        and href.startswith(f"/staff/minutes/{BID}-")
        and href.endswith(".html")
    )
    text = wait_for(console, "document.querySelector('#minutes').textContent")
    assert "JST" in str(text)  # the run's start, in the city's zone
    # the link is a real address, opened with the staff session: the minutes page, not a blob:
    page = console.context.new_page()
    resp = page.goto(emachi.url + href, timeout=40 * WAIT * 1000)
    assert resp is not None and resp.status == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert "論点1を説明します。" in page.inner_text("body") and "JST" in page.inner_text("body")
    page.close()
    assert failed == [], failed


def test_a_staff_member_signs_in_through_the_form_and_reaches_the_console(
    emachi: EmachiServer, open_page: Any
) -> None:
    """The sign-in form as a person uses it: typed, submitted by its button. Chromium sends the
    form's Origin (a page with ``Referrer-Policy: no-referrer`` would send ``Origin: null`` and
    the server would refuse it as cross-site)."""
    added = subprocess.run(
        [str(EMACHI), "staff", "add", "suzuki", "--role", "staff", "--password-stdin"]
        + ["--data-dir", str(emachi.data_dir)],
        input="a long enough password\n",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert added.returncode == 0, added.stderr
    page = open_page()  # the hall, then the staff pages in the same tab
    deadline = time.monotonic() + 40 * WAIT  # the running server reads new accounts every 2 s
    while True:
        page.goto(f"{emachi.url}/staff/signin?next=/staff")
        page.fill("#name", "suzuki")
        page.fill("#password", "a long enough password")
        with page.expect_navigation():
            page.click("button[type=submit]")
        body = page.inner_text("body")
        assert "cross-site" not in body, body
        if page.url.rstrip("/").endswith("/staff"):
            break
        assert time.monotonic() < deadline, body
        page.wait_for_timeout(WAIT * 1000)
    assert "suzuki" in body
