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

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import WAIT, EmachiServer, _start_server, join, wait_for

COUNTER = "counter-shimin"  # world.toml: 1f, x 8, z 1.5, width 8 (市民課)
JUMINHYO = "kiosk-juminhyo"  # world.toml: 1f, x 12, z 16
LINE_URL = "https://liff.line.me/2000000000-Sample01/juminhyo"
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
STEP = 40 * WAIT  # one user-visible step (a state round trip, a short walk)
WALK = 160 * WAIT  # a walk across the lobby by "take me to" (software GL may draw slowly)


@pytest.fixture(scope="module")
def emachi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmachiServer]:
    """This module's server (open_page's too): its counters ignore the wall clock's service hours
    (the tests may run at night)."""
    server = _start_server(tmp_path_factory.mktemp("counters"), "--counters-always-open")
    yield server
    server.stop()


def _shot(page: Any, name: str) -> None:
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
    page = open_page(server.url + "/", width=640, height=560)
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
    resident.click("#nearby-map")
    note = resident.locator(f'.map-go[data-dest="{COUNTER}"] .map-note').inner_text()
    assert "受付中" in note and "待ちなし" in note, note  # in the page's language (ja)
    # walk up by the map's "take me to": the counter offers a ticket
    _take_me_to(resident, COUNTER)
    wait_for(resident, "(c) => window.emachiCounters.offered() === c", arg=COUNTER, timeout=WALK)
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
