"""Walking the hall in real Chromium: people see each other move, the phone joystick walks, a cut
connection comes back with the same avatar, the hall is drawn, a full hall says so."""

from __future__ import annotations

import math
from typing import Any

from .conftest import WAIT, TcpProxy, join, wait_for

NEAR_M = 1.0


def _seen(page: Any, avatar_id: int) -> dict[str, Any] | None:
    for o in page.evaluate("window.emachi.others()"):
        if o["id"] == avatar_id:
            return o
    return None


def _dist(a: dict[str, Any], b: dict[str, Any]) -> float:
    return math.hypot(a["x"] - b["x"], a["z"] - b["z"])


def _wait_sees(page: Any, avatar_id: int) -> None:
    wait_for(page, "(id) => window.emachi.others().some((o) => o.id === id)", arg=avatar_id)


def _wait_matches(observer: Any, walker: Any, avatar_id: int, steps: int = 80) -> float:
    """Wait until the observer draws the walker's avatar within 1 m of where the walker draws
    itself (both read together, again and again: the walker may still be settling)."""
    gap = math.inf
    for _ in range(steps):
        me = walker.evaluate("window.emachi.self()")
        seen = _seen(observer, avatar_id)
        if seen is not None and me is not None:
            gap = _dist(seen, me)
            if gap <= NEAR_M:
                return gap
        observer.wait_for_timeout(WAIT * 1000)
    raise AssertionError(f"the observer draws avatar {avatar_id} {gap:.2f} m from where it is")


def _settled(page: Any, steps: int = 80) -> dict[str, Any]:
    """Wait until the own avatar stands still (two reads a few waits apart agree within 5 cm and
    the last correction from the server is gone); returns where it stands."""
    last = page.evaluate("window.emachi.self()")
    for _ in range(steps):
        page.wait_for_timeout(2 * WAIT * 1000)
        now = page.evaluate("window.emachi.self()")
        if _dist(now, last) < 0.05:
            return now  # type: ignore[no-any-return]
        last = now
    raise AssertionError("the avatar never came to rest")


def _hold(page: Any, key: str, steps: int) -> None:
    """Hold a key for ``steps`` waits, then give the stop a moment to reach the server."""
    page.keyboard.down(key)
    page.wait_for_timeout(steps * WAIT * 1000)
    page.keyboard.up(key)
    page.wait_for_timeout(2 * WAIT * 1000)


def test_two_people_see_each_other_and_follow_a_walk(open_page: Any) -> None:
    a = open_page()
    b = open_page()
    me_a = join(a, "あおい")
    me_b = join(b, "Ben")
    id_a = a.evaluate("window.emachi.state().avatarId")
    id_b = b.evaluate("window.emachi.state().avatarId")
    assert id_a != id_b
    _wait_sees(a, id_b)
    _wait_sees(b, id_a)
    # each sees the other where the other is
    assert _wait_matches(b, a, id_a) <= NEAR_M
    assert _wait_matches(a, b, id_b) <= NEAR_M
    # the name tag data travels too
    assert _seen(b, id_a)["name"] == "あおい"

    # a scripted walk: forward, then strafe, then forward again
    for key, steps in (("KeyW", 6), ("KeyD", 4), ("KeyW", 3)):
        _hold(a, key, steps)
        # mid-walk the observer keeps up (within 1 m once the walker pauses)
        assert _wait_matches(b, a, id_a) <= NEAR_M
    end_a = a.evaluate("window.emachi.self()")
    assert _dist(end_a, me_a) > 2.0, "the walker did not move"
    # the observer did not move
    assert _dist(b.evaluate("window.emachi.self()"), me_b) < 0.1


def test_phone_walks_with_the_joystick(open_page: Any) -> None:
    page = open_page(phone=True)
    start = join(page, "スマホ")
    stick = page.locator("#joystick")
    assert stick.is_visible(), "no joystick on a phone"
    box = stick.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    cdp = page.context.new_cdp_session(page)

    def touch(kind: str, x: float, y: float) -> None:
        points = [] if kind == "touchEnd" else [{"x": x, "y": y, "id": 1}]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    touch("touchStart", cx, cy)
    for i in range(1, 6):
        touch("touchMove", cx, cy - box["height"] * 0.09 * i)  # push the stick up: forward
    page.wait_for_timeout(8 * WAIT * 1000)
    touch("touchEnd", cx, cy)
    wait_for(
        page,
        "(s) => Math.hypot(window.emachi.self().x - s.x, window.emachi.self().z - s.z) > 1.5",
        arg=start,
    )
    # the page fits a portrait phone: nothing sticks out sideways
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_a_cut_connection_comes_back_with_the_same_avatar(
    open_page: Any, tcp_proxy: TcpProxy
) -> None:
    watcher = open_page()
    join(watcher, "見守り")
    page = open_page(tcp_proxy.url + "/")
    join(page, "つながり")
    avatar = page.evaluate("window.emachi.state().avatarId")
    _wait_sees(watcher, avatar)
    _hold(page, "KeyW", 4)
    before = _settled(page)

    # while the network is down the browser logs failed connections and requests: expected here
    open_page.expect(page, r"WebSocket connection to .* failed")
    open_page.expect(
        page,
        r"Failed to load resource: net::ERR_(CONNECTION_RESET|CONNECTION_REFUSED|EMPTY_RESPONSE)",
    )
    tcp_proxy.refusing = True
    tcp_proxy.cut()
    wait_for(page, "window.emachi.state().state === 'reconnecting'")
    assert page.locator("#banner").is_visible(), "no message while the connection is down"
    tcp_proxy.refusing = False
    wait_for(page, "window.emachi.state().state === 'connected'", timeout=120 * WAIT)

    assert page.evaluate("window.emachi.state().avatarId") == avatar
    after = _settled(page)
    assert _dist(after, before) < NEAR_M, "the avatar did not keep its place"
    assert not page.locator("#banner").is_visible()
    # the others still see one avatar of that name, the same id, not a duplicate
    wait_for(
        watcher,
        "(id) => window.emachi.others().filter((o) => o.name === 'つながり').length === 1",
        arg=avatar,
    )
    assert _seen(watcher, avatar) is not None
    # and it still walks (how far depends on how busy the machine is: only that it moved)
    _hold(page, "KeyW", 4)
    assert _dist(_settled(page), after) > 0.2


def test_the_hall_is_drawn(open_page: Any) -> None:
    page = open_page()
    join(page, "がめん")
    pixels = page.evaluate("window.emachi.sampleColours()")
    assert pixels["colours"] >= 12, f"the view is nearly blank: {pixels}"
    assert pixels["top"] < 0.8, f"one colour fills the view: {pixels}"


def test_chat_reaches_the_other_person_and_english_switches(open_page: Any) -> None:
    a = open_page()
    b = open_page()
    join(a, "はなこ")
    join(b, "Taro")
    a.fill("#chat-input", "こんにちは、受付はどこですか")
    a.press("#chat-input", "Enter")
    wait_for(b, "document.querySelector('#chat-log').textContent.includes('受付はどこですか')")
    assert "はなこ" in b.locator("#chat-log").inner_text()
    assert "接続済み" in b.locator("#status-text").inner_text()
    b.click("#status button.lang")
    wait_for(b, "document.querySelector('#status-text').textContent.includes('Connected')")
    assert b.evaluate("document.documentElement.lang") == "en"
    # the hall is drawn again with English labels, and still drawn
    assert b.evaluate("window.emachi.sampleColours()")["colours"] >= 12


def test_a_full_hall_says_so(open_page: Any, start_emachi: Any) -> None:
    small = start_emachi("--capacity", "1", "--max-instances", "1")
    first = open_page(small.url + "/")
    join(first, "ひとりめ")
    second = open_page(small.url + "/")
    second.fill("#join-name", "ふたりめ")
    second.click("#join button[type=submit]")
    # the waiting page of the line (tests/browser/test_hallux.py follows it through)
    wait_for(second, "document.querySelector('#queue') && !document.querySelector('#queue').hidden")
    assert "満員" in second.locator("#queue").inner_text()
    assert second.evaluate("window.emachi.state().state") != "connected"


def test_keyboard_only_and_the_text_alternative(open_page: Any) -> None:
    other = open_page()
    join(other, "となりの人")
    page = open_page()
    # the first screen puts the focus in the name field: type, Enter
    page.keyboard.press("Control+A")
    page.keyboard.type("キーボード")
    page.keyboard.press("Enter")
    wait_for(page, "window.emachi.state().state === 'connected' && window.emachi.self() !== null")
    start = _settled(page)
    _hold(page, "ArrowUp", 4)
    assert _dist(_settled(page), start) > 0.2, "the arrow keys do not walk"
    # the text alternative names the person nearby, in a live region
    wait_for(page, "document.querySelector('#nearby-live').textContent.includes('となりの人')")
    assert page.get_attribute("#nearby-live", "aria-live") == "polite"
    # Tab reaches the chat; Enter sends
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "chat-input":
            break
    assert page.evaluate("document.activeElement.id") == "chat-input", "Tab never reaches the chat"
    page.keyboard.type("キーボードだけで来ました")
    page.keyboard.press("Enter")
    wait_for(
        other,
        "document.querySelector('#chat-log').textContent.includes('キーボードだけで来ました')",
    )


def test_a_server_restart_is_announced_and_the_page_comes_back(
    open_page: Any, start_emachi: Any
) -> None:
    first = start_emachi()
    page = open_page(first.url + "/")
    join(page, "さいきどう")
    # while the server is away the browser logs the failed attempts: expected here
    open_page.expect(page, r"WebSocket connection to .* failed")
    open_page.expect(
        page,
        r"Failed to load resource: net::ERR_(CONNECTION_RESET|CONNECTION_REFUSED|EMPTY_RESPONSE)",
    )
    first.stop()  # SIGTERM: the server tells its clients it is restarting, then goes
    wait_for(page, "!document.querySelector('#banner').hidden")
    assert "再起動" in page.locator("#banner-text").inner_text()
    start_emachi("--port", str(first.port))
    wait_for(
        page,
        "window.emachi.state().state === 'connected' && window.emachi.self() !== null",
        timeout=160 * WAIT,
    )
    # the restart notice is gone: the page is back, and a banner still shown says so
    # ("戻りました…" or "…入り直しました"), never the promise made while the server was away
    banner = page.locator("#banner")
    text = page.locator("#banner-text").inner_text()
    assert not banner.is_visible() or "再起動して" not in text, text
    assert not banner.is_visible() or ("戻りました" in text or "入り直しました" in text), text
    assert "接続済み" in page.locator("#status-text").inner_text()


def test_clicking_a_person_shows_who_it_is(open_page: Any) -> None:
    other = open_page()
    join(other, "クリックされる人")
    page = open_page()
    join(page, "クリックする人")
    other_id = other.evaluate("window.emachi.state().avatarId")
    _wait_sees(page, other_id)
    # turn the camera until the other person is in view, then click on their body
    spot = None
    for _ in range(16):
        seen = _seen(page, other_id)
        spot = page.evaluate(
            "([x, z]) => window.emachi.screenOf(x, 0.8, z)", [seen["x"], seen["z"]]
        )
        if spot and 0 < spot["x"] < 640 and 60 < spot["y"] < 480:
            break
        _hold(page, "KeyQ", 1)
    assert spot, "the other person never came into view"
    page.mouse.click(spot["x"], spot["y"])
    wait_for(page, "document.querySelector('#panels .panel:not([hidden])') !== null")
    assert "クリックされる人" in page.locator("#panels .panel:not([hidden]) h2").inner_text()
    # Escape closes it
    page.keyboard.press("Escape")
    wait_for(page, "document.querySelector('#panels .panel:not([hidden])') === null")


SPEED_WALK = 1.8  # m/s: the client's walk (0.6 of the server's 3 m/s)


def _walk_to(page: Any, x: float, z: float, within: float = 0.6) -> dict[str, Any]:
    """Turn the camera towards (x, z) and hold W for about the time the distance needs, again
    until there (few round trips: software GL may draw slowly)."""
    for _ in range(20):
        me = page.evaluate("window.emachi.self()")
        dx, dz = x - me["x"], z - me["z"]
        d = math.hypot(dx, dz)
        if d <= within:
            return me  # type: ignore[no-any-return]
        page.evaluate("(yaw) => { window.emachi.app.view.cameraYaw = yaw; }", math.atan2(dx, dz))
        page.keyboard.down("KeyW")
        page.wait_for_timeout(max(min(d / SPEED_WALK, 40 * WAIT), WAIT / 2) * 1000)
        page.keyboard.up("KeyW")
        page.wait_for_timeout(WAIT * 1000)
    raise AssertionError(f"could not walk to {x}, {z}: at {page.evaluate('window.emachi.self()')}")


def test_walking_up_the_stairs_reaches_the_second_floor(open_page: Any) -> None:
    page = open_page()
    join(page, "かいだん")
    world = page.evaluate("window.emachi.app.world.stairs[0]")
    (sx, sz), (ex, ez) = world["start"], world["end"]
    ux, uz = (ex - sx) / world["len"], (ez - sz) / world["len"]
    _walk_to(page, sx + 6, sz - 4 * uz)  # beside the bottom, clear of the ramp's side walls
    _walk_to(page, sx - 2 * ux, sz - 2 * uz)  # in front of the bottom end
    _walk_to(page, ex + 2 * ux, ez + 2 * uz)  # up the ramp and off the top
    me = _settled(page)
    upper = page.evaluate("(i) => window.emachi.app.world.floors[i]", world["upper"])
    assert me["floor"] == world["upper"], me
    assert abs(me["y"] - upper["elevation"]) < 0.05, me
    wait_for(page, "document.querySelector('#nearby-live').textContent.includes('2階')")
    assert page.evaluate("window.emachi.sampleColours()")["colours"] >= 12


def test_the_own_avatar_walks_without_being_pulled_back(open_page: Any) -> None:
    """On a clean link the server agrees with the prediction: walking ahead, the avatar as drawn
    never steps back (a rubber band would), and the corrections stay small."""
    page = open_page()
    join(page, "まっすぐ")
    page.evaluate("window.emachi.app.view.cameraYaw = Math.PI")  # face north, open floor ahead
    page.keyboard.down("KeyW")
    samples = []
    for _ in range(12):
        page.wait_for_timeout(WAIT / 2 * 1000)
        samples.append(page.evaluate("window.emachi.self().z"))
    page.keyboard.up("KeyW")
    backs = [b - a for a, b in zip(samples, samples[1:], strict=False) if b - a > 0.1]
    assert samples[0] - samples[-1] > 0.5, f"did not walk: {samples}"
    assert not backs, f"pulled back while walking: {samples}"
    corrections = page.evaluate("window.emachi.corrections()")
    assert max(corrections) < 1.0, corrections


def test_a_visitors_page_carries_no_test_hooks(browser: Any, emachi: Any) -> None:
    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        first_frame = "performance.getEntriesByName('emachi-first-frame').length > 0"
        page.goto(emachi.url + "/")
        wait_for(page, first_frame)
        assert page.evaluate("typeof window.emachi") == "undefined"
        page.goto(emachi.url + "/?test=1")
        wait_for(page, first_frame)
        assert page.evaluate("window.emachi.state().frames") > 0
    finally:
        ctx.close()


CSP_WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


def test_no_page_breaks_the_content_security_policy(browser: Any, emachi: Any) -> None:
    """The hall (import map, modules, WebGL, the socket) and a staff page run under the CSP."""
    ctx = browser.new_context(viewport={"width": 640, "height": 480}, locale="ja-JP")
    ctx.add_init_script(CSP_WATCH)
    refused: list[str] = []
    page = ctx.new_page()
    page.on(
        "console",
        lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
    )
    try:
        r = page.goto(emachi.url + "/?test=1")
        assert "script-src" in r.headers["content-security-policy"]
        wait_for(page, "window.emachi && window.emachi.state().frames > 0")
        join(page, "ポリシー")
        assert page.evaluate("window.__csp") == []
        page.goto(f"{emachi.url}/staff/kiosks?token={emachi.staff_token}")
        assert "token" not in page.url and page.locator("svg").count() >= 1
        assert page.evaluate("window.__csp") == []
    finally:
        ctx.close()
    assert refused == [], refused
