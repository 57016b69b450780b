"""A service counter in real Chromium (issue 13, docs/counters.md, clients/web/counters/): a staff
member takes the 市民課 counter from the desk panel; a resident on a phone walks up, takes a ticket
and sees the position and the wait; walks away; the staff member calls the next ticket and the
resident is called back (the notice, the sound, the way back shown); the resident accepts and both
are in the booth; the staff member puts the 住民票 kiosk panel on the booth's screen and hands the
LINE link, which the resident sees with its QR code; ending frees the booth. A resident who leaves
the queue sees that they did.

Screenshots of the ticket card, the call and the booth (phone and PC) go to docs/screenshots/.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from server.briefing.render import render_script
from server.briefing.script import parse_script

from .conftest import EMACHI, ROOT, WAIT, EmachiServer, _start_server, join, wait_for

COUNTER = "counter-shimin"  # world.toml: 1f, x 8, z 1.5, width 8 (市民課)
JUMINHYO = "kiosk-juminhyo"  # world.toml: 1f, x 12, z 16
LINE_URL = "https://liff.line.me/2000000000-Sample01/juminhyo"
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
STEP = 40 * WAIT  # one user-visible step (a state round trip, a short walk)
WALK = 160 * WAIT  # a walk across the lobby by "take me to" (software GL may draw slowly)
ACCOUNT, PASSWORD = "kato", "correct horse battery"  # a staff account (role staff), no token
BID = "counter-slides"
SCRIPT = f"""\
format: emachi-briefing/1
id: {BID}
title: 窓口の説明
date: 2024-01-02
cast:
  - {{avatar: clerk, role: 市民課, name: 市民課, voice: ja-openjtalk, speed: 1.0}}
segments:
  - speaker: clerk
    slide: {{title: 転入の手続き, bullets: [本人確認書類, マイナンバーカード]}}
    narration: 転入の手続きを説明します。
    pause_after: 0
"""


@pytest.fixture(scope="module")
def emachi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmachiServer]:
    """This module's server (open_page's too): its counters ignore the wall clock's service hours
    (the tests may run at night); a staff account made as ``emachi staff add`` makes it, and a
    one-slide briefing for the booth's screen."""
    tmp = tmp_path_factory.mktemp("counters")
    added = subprocess.run(
        [str(EMACHI), "staff", "add", ACCOUNT, "--role", "staff", "--password-stdin"]
        + ["--data-dir", str(tmp / "data")],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert added.returncode == 0, added.stderr
    render_script(parse_script(SCRIPT, "slides.yaml"), tmp / "data")
    server = _start_server(tmp, "--counters-always-open")
    yield server
    server.stop()


def _shot(page: Any, name: str) -> None:
    """With ``EMACHI_SHOTS=1``, save what the person sees as docs/screenshots/NAME (the README's
    pictures); a plain test run leaves the checkout as it was."""
    if os.environ.get("EMACHI_SHOTS") != "1":
        return
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name))


def _take_me_to(page: Any, dest: str) -> None:
    """The floor map's "take me to" button, as a keyboard or screen-reader user would use it."""
    if not page.locator(".map-panel").count():
        page.click("#nearby-map")
    page.locator(f'.map-go[data-dest="{dest}"]').click()
    wait_for(page, "(d) => window.emachi.guide().dest === d", arg=dest, timeout=STEP)


def _distance_to(page: Any, x: float, z: float) -> float:
    me = page.evaluate("window.emachi.self()")
    return math.hypot(me["x"] - x, me["z"] - z)


def _staff_page(open_page: Any, server: EmachiServer, name: str) -> Any:
    page = open_page(server.url + "/", width=1280, height=800)
    # what the staff console leaves in the tab when one signs in (clients/web/briefing/staff.js)
    page.evaluate("(t) => sessionStorage.setItem('emachi.staff', t)", server.staff_token)
    join(page, name)
    desk = page.locator(".counter-desk")
    desk.wait_for(timeout=STEP * 1000)
    return page


def test_ticket_call_booth_and_link(emachi: EmachiServer, open_page: Any) -> None:
    server = emachi
    staff = _staff_page(open_page, server, "田中")
    # the desk: take the 市民課 counter
    staff.select_option(".counter-desk .counter-pick select", COUNTER)
    staff.click(".counter-desk .counter-duty")
    wait_for(staff, "(c) => window.emachiCounters.state().desk?.counter === c", arg=COUNTER)
    assert "市民課" in staff.locator(".counter-onduty").inner_text()

    resident = open_page(server.url + "/", phone=True)
    join(resident, "さくら")
    # the counter says it is open, with the staff member's name, in 3D and in the text alternative
    sign = wait_for(
        resident,
        "(c) => { const s = window.emachiCounters.sign(c); return s && s.status === 'open' && s; }",
        arg=COUNTER,
    )
    assert "田中" in " ".join(sign["lines"])
    assert "受付中" in sign["lines"][0] and "Open" in sign["lines"][0]
    # a counter inside its hours with nobody on duty says so, not "closed"
    other = resident.evaluate("window.emachiCounters.sign('counter-doro')")
    assert "担当者不在" in other["lines"][0] and "受付時間外" not in other["lines"][0], other
    # the staff member's badge, by the avatar id the server gives (not by the name)
    staff_id = staff.evaluate("window.emachi.self().id")
    shown = wait_for(
        resident,
        "(c) => window.emachiCounters.state().counters.find((x) => x.id === c)?.staff_ids",
        arg=COUNTER,
    )
    assert shown == [staff_id], shown
    resident.click("#nearby-map")
    note = resident.locator(f'.map-go[data-dest="{COUNTER}"] .map-note').inner_text()
    assert "受付中" in note and "待ちなし" in note, note  # in the page's language (ja)
    # walk up by the map's "take me to": the counter offers a ticket
    _take_me_to(resident, COUNTER)
    wait_for(resident, "(c) => window.emachiCounters.offered() === c", arg=COUNTER, timeout=WALK)
    # at the counter, the staff member behind it wears the badge
    wait_for(resident, "(i) => window.emachiCounters.badges().includes(i)", arg=staff_id)
    offer = resident.locator(f'.counter-offer[data-counter="{COUNTER}"]')
    offer.wait_for(timeout=STEP * 1000)
    assert "市民課" in offer.inner_text()
    offer.locator(".counter-take").click()

    card = resident.locator(".counter-ticket")
    card.wait_for(timeout=STEP * 1000)
    wait_for(resident, "document.querySelector('.counter-ticket').dataset.state === 'waiting'")
    assert "1番目" in card.locator(".counter-position").inner_text()
    assert "約" in card.locator(".counter-wait").inner_text()  # an estimate in minutes
    assert "列を離れる" in card.locator(".counter-leave").inner_text()
    live = resident.locator(".counter-ticket .counter-live").inner_text()
    assert "1番目" in live and "about" in live, live
    _shot(resident, "counter-ticket-phone.png")
    # the staff desk sees the resident waiting
    wait_for(staff, "document.querySelector('.counter-queue')?.textContent.includes('さくら')")

    # the resident walks away, to the 住民票 kiosk across the lobby
    _take_me_to(resident, JUMINHYO)
    wait_for(resident, "window.emachi.guide().active === false", timeout=WALK)
    assert _distance_to(resident, 8.0, 1.5) > 8
    assert resident.locator(".counter-ticket").is_visible()  # still holding the ticket

    # the staff member calls the next ticket; the resident is called back
    staff.click(".counter-desk .counter-call-next")
    wait_for(resident, "document.querySelector('.counter-ticket')?.dataset.state === 'called'")
    call = resident.locator(".counter-call")
    assert "順番が来ました" in call.locator(".counter-call-title").inner_text()
    assert resident.locator('.counter-call [role="alert"]').count() == 1
    heard = resident.evaluate("window.emachiCounters.heard()")
    assert heard["calls"] == 1 and heard["beeps"] == 1, heard  # the sound played once
    way = call.locator(".counter-way").inner_text()
    assert "窓口は" in way and " m" in way, way  # the way back: direction and distance
    assert "秒" in call.locator(".counter-deadline").inner_text()  # the deadline counts down
    assert resident.evaluate(
        "document.activeElement?.classList.contains('counter-accept')"
    )  # the accept button has the focus
    _shot(resident, "counter-called-phone.png")
    call.locator(".counter-guide").click()  # "take me back": the hall's guide shows the way
    wait_for(resident, "(c) => window.emachi.guide().dest === c", arg=COUNTER)
    assert len(resident.evaluate("window.emachi.guide().path")) > 1

    # accept: both are in the booth
    call.locator(".counter-accept").click()
    booth = resident.locator(".counter-booth")
    booth.wait_for(timeout=STEP * 1000)
    assert "田中" in booth.locator(".counter-with").inner_text()
    assert "お二人の間だけ" in booth.locator(".counter-private").inner_text()
    staff_booth = staff.locator(".counter-booth")
    staff_booth.wait_for(timeout=STEP * 1000)
    assert "さくら" in staff_booth.locator(".counter-with").inner_text()

    # the staff member puts the 住民票 kiosk panel on the screen and hands the LINE link
    tools = staff.locator(".counter-booth-tools")
    tools.wait_for(timeout=STEP * 1000)
    staff.select_option(".counter-screen-kiosk-pick select", JUMINHYO)
    staff.click(".counter-put-kiosk")
    wait_for(
        resident,
        "document.querySelector('.counter-booth .counter-screen')?.textContent.includes('住民票の写し')",
    )
    # then a briefing's slide: the resident sees its title and points
    staff.select_option(".counter-screen-slide-pick select", f"{BID}/0")
    staff.click(".counter-put-slide")
    wait_for(
        resident,
        "document.querySelector('.counter-booth .counter-slide')?.textContent.includes('転入の手続き')",
    )
    assert "マイナンバーカード" in resident.locator(".counter-booth .counter-slide").inner_text()
    staff.select_option(".counter-link-procedure select", "juminhyo")
    staff.select_option(".counter-link-channel select", "line")
    staff.click(".counter-hand")
    link = resident.locator(".counter-booth .counter-link")
    link.wait_for(timeout=STEP * 1000)
    # the catalog's link, with the opaque reference that counts the procedure's completion
    assert str(link.get_attribute("data-url")).startswith(LINE_URL + "?emachi_ref=")
    qr = resident.locator(".counter-booth .counter-qr")
    assert qr.count() == 1 and qr.get_attribute("src").startswith("data:image/svg+xml")
    _shot(resident, "counter-booth-phone.png")
    _shot(staff, "counter-booth-staff-pc.png")

    # ending frees the booth: the resident is told, the desk can call again
    staff.click(".counter-end")
    wait_for(resident, "document.querySelector('.counter-booth')?.hidden === true")
    wait_for(resident, "!!document.querySelector('.counter-notice[data-why=\"done\"]')")
    wait_for(staff, "document.querySelector('.counter-call-next')?.disabled === false")


def test_called_at_pc_size_and_leave_the_queue(emachi: EmachiServer, open_page: Any) -> None:
    server = emachi
    staff = _staff_page(open_page, server, "佐藤")
    staff.select_option(".counter-desk .counter-pick select", COUNTER)
    staff.click(".counter-desk .counter-duty")
    wait_for(staff, "(c) => window.emachiCounters.state().desk?.counter === c", arg=COUNTER)

    resident = open_page(server.url + "/", width=1024, height=640)
    join(resident, "ゆうき")
    _take_me_to(resident, COUNTER)
    wait_for(resident, "(c) => window.emachiCounters.offered() === c", arg=COUNTER, timeout=WALK)
    resident.locator(".counter-offer .counter-take").click()
    card = resident.locator(".counter-ticket")
    card.wait_for(timeout=STEP * 1000)
    _shot(resident, "counter-ticket-pc.png")
    staff.click(".counter-desk .counter-call-next")
    wait_for(resident, "document.querySelector('.counter-ticket')?.dataset.state === 'called'")
    _shot(resident, "counter-called-pc.png")
    # called, and leaving all the same
    card.locator(".counter-leave").click()
    wait_for(resident, "document.querySelector('.counter-ticket').hidden === true")
    wait_for(resident, "!!document.querySelector('.counter-notice[data-why=\"left\"]')")
    wait_for(staff, "!document.querySelector('.counter-queue')?.textContent.includes('ゆうき')")


def _book(server: EmachiServer, name: str) -> tuple[str, str]:
    """A booking through the public API (docs/counters.md): the first free slot two days on or
    later (never due now, whatever the wall clock says). Returns (slot, code)."""
    for ahead in range(2, 14):
        day = (date.today() + timedelta(days=ahead)).isoformat()
        with urllib.request.urlopen(f"{server.url}/api/counters/{COUNTER}/slots?date={day}") as r:
            free = json.load(r)["free"]
        if free:
            req = urllib.request.Request(
                f"{server.url}/api/counters/{COUNTER}/reservations",
                data=json.dumps({"slot": free[0], "name": name}).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(req) as r:
                assert r.status == 201
                return free[0], str(json.load(r)["code"])
    raise AssertionError("no free slot in the next two weeks")


def test_a_signed_in_account_takes_a_counter_and_a_booking_code(
    emachi: EmachiServer, open_page: Any
) -> None:
    server = emachi
    slot, code = _book(server, "ひかり")
    # a staff member signs in with an account (no shared token in the tab), then opens the hall
    staff = open_page(server.url + "/", width=1280, height=800)
    # the sign-in form, typed and submitted; it lands on the counters' staff page, whose link
    # opens the hall as staff
    staff.goto(f"{server.url}/staff/signin?next=/staff/counters/")
    staff.fill("#name", ACCOUNT)
    staff.fill("#password", PASSWORD)
    with staff.expect_navigation():
        staff.click("button[type=submit]")
    assert staff.url.endswith("/staff/counters/"), staff.inner_text("body")
    with staff.expect_navigation():
        staff.click("a.desk-hall")
    wait_for(staff, "window.emachi && window.emachi.state().frames > 0")
    assert staff.evaluate("sessionStorage.getItem('emachi.staff')") is None
    join(staff, "加藤")
    assert staff.evaluate("window.emachiCounters.passGiven()")
    staff.locator(".counter-desk .counter-pick").wait_for(timeout=STEP * 1000)
    staff.select_option(".counter-desk .counter-pick select", COUNTER)
    staff.click(".counter-desk .counter-duty")
    wait_for(staff, "(c) => window.emachiCounters.state().desk?.counter === c", arg=COUNTER)
    # the desk lists the day's bookings (today's only: this one is for a later day)
    assert staff.locator(".counter-bookings").is_visible()

    resident = open_page(server.url + "/", phone=True)
    join(resident, "ひかり")
    wait_for(
        resident,
        "(c) => window.emachiCounters.sign(c)?.lines.join(' ').includes('加藤')",
        arg=COUNTER,
    )
    _take_me_to(resident, COUNTER)
    wait_for(resident, "(c) => window.emachiCounters.offered() === c", arg=COUNTER, timeout=WALK)
    resident.locator(".counter-offer .counter-code").click()
    field = resident.locator(".counter-code-panel .counter-code-input")
    field.wait_for(timeout=STEP * 1000)
    assert resident.evaluate("document.activeElement?.classList.contains('counter-code-input')")
    # a code that is not one: said in the panel
    field.fill("ZZZZZ-ZZZZZ")
    resident.locator(".counter-code-panel button[type=submit]").click()
    status = ".counter-code-panel .counter-status"
    wait_for(
        resident,
        "(s) => document.querySelector(s)?.textContent.includes('見つかりません')",
        arg=status,
    )
    # the booked code, typed in lower case: known, and its slot (a later day) has not come yet
    field.fill(code.lower())
    resident.locator(".counter-code-panel button[type=submit]").click()
    wait_for(
        resident, "(s) => document.querySelector(s)?.textContent.includes('まだです')", arg=status
    )
    assert resident.locator(".counter-booth").is_hidden()
