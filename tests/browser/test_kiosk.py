"""Kiosks in real Chromium: walk to the 住民票 kiosk, open its panel from the offer, the Graffer
button opens the catalog's link, and the LINE QR code drawn on the page decodes to the LINE link.

The QR is checked from the pixels Chromium drew, so what is checked is what a phone would scan:
sampled module by module it is segno's matrix for the LINE link, and it decodes to that link with
zxing-cpp (``zxing-cpp`` on PyPI, a binary wheel of the zxing-cpp decoder).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import segno

from .conftest import WAIT, join, wait_for

JUMINHYO = "kiosk-juminhyo"  # world.toml: 1f, x 12, z 16, radius 2
# From the entrance: west first (a pillar stands at x 24, z 34), up the lobby west of the stairs
# (x 12.5-15.5, z 28-40), then east to just in front of the kiosk.
ROUTE = [(10.0, None), (10.0, 16.9), (12.0, 16.9)]
LINE_URL = "https://liff.line.me/2000000000-Sample01/juminhyo"
GRAFFER_URL = "https://ttzk.graffer.jp/city-machida/smart-apply/apply-procedure-alias/juminhyo"
SPEED = 1.8  # m/s when walking with the keys (App.js WALK × the server's max speed)


def _calibrate(page: Any) -> tuple[tuple[float, float], tuple[float, float]]:
    """Press W briefly and see where it goes: (forward, right) unit vectors in (x, z)."""
    before = page.evaluate("window.emachi.self()")
    page.keyboard.down("KeyW")
    page.wait_for_timeout(2 * WAIT * 1000)  # how long the key is held
    page.keyboard.up("KeyW")
    after = wait_for(
        page,
        "(b) => { const s = window.emachi.self(); return Math.hypot(s.x - b.x, s.z - b.z) > 0.2 && s; }",
        arg=before,
    )  # W moved the avatar
    fx, fz = after["x"] - before["x"], after["z"] - before["z"]
    n = math.hypot(fx, fz)
    fx, fz = fx / n, fz / n
    return (fx, fz), (-fz, fx)  # the right hand of forward (x east, z south)


def _walk_to(page: Any, axes: Any, x: float, z: float, within: float = 0.8) -> dict[str, Any]:
    """Walk with the keys towards (x, z), holding one key at a time for as long as the distance
    along its direction needs (few round trips: software GL may draw slowly)."""
    (fx, fz), (rx, rz) = axes
    for _ in range(16):
        me = page.evaluate("window.emachi.self()")
        vx, vz = x - me["x"], z - me["z"]
        if math.hypot(vx, vz) <= within:
            return me  # type: ignore[no-any-return]
        ahead, right = vx * fx + vz * fz, vx * rx + vz * rz
        along, key = (ahead, "KeyW" if ahead > 0 else "KeyS")
        if abs(right) > abs(ahead):
            along, key = (right, "KeyD" if right > 0 else "KeyA")
        hold = min(abs(along) / SPEED, 80 * WAIT)
        page.keyboard.down(key)
        page.wait_for_timeout(max(hold, WAIT / 2) * 1000)
        page.keyboard.up(key)
        page.wait_for_timeout(WAIT * 1000)
    raise AssertionError(f"could not walk to {x}, {z}: at {page.evaluate('window.emachi.self()')}")


def _qr_pixels(page: Any) -> np.ndarray:
    """The QR image as Chromium draws it, scaled up without smoothing, as grey levels."""
    data = page.evaluate(
        """async () => {
          const img = document.querySelector('.kiosk-qr');
          await img.decode();
          const size = 400;
          const c = document.createElement('canvas');
          c.width = c.height = size;
          const g = c.getContext('2d');
          g.fillStyle = '#fff';
          g.fillRect(0, 0, size, size);
          g.imageSmoothingEnabled = false;
          g.drawImage(img, 0, 0, size, size);
          const px = g.getImageData(0, 0, size, size).data;
          const grey = new Array(size * size);
          for (let i = 0; i < grey.length; i++) grey[i] = px[4 * i];
          return grey;
        }"""
    )
    return np.array(data, dtype=np.uint8).reshape(400, 400)


def _modules(pixels: np.ndarray, n: int) -> np.ndarray:
    """Sample the centre of each of ``n`` × ``n`` modules: 1 where dark."""
    step = pixels.shape[0] / n
    centres = ((np.arange(n) + 0.5) * step).astype(int)
    return (pixels[np.ix_(centres, centres)] < 128).astype(np.uint8)


def test_walk_to_the_juminhyo_kiosk_open_graffer_and_scan_the_line_qr(open_page: Any) -> None:
    page = open_page(width=480, height=360)  # small, so that software GL draws quickly
    join(page, "さくら")
    # The outside world is not reached: the procedure sites answer from here.
    page.context.route(
        "https://ttzk.graffer.jp/**",
        lambda route: route.fulfill(
            status=200, content_type="text/html", body="<title>Graffer</title>"
        ),
    )
    wait_for(page, "window.emachiKiosk !== undefined")
    axes = _calibrate(page)
    for x, z in ROUTE:
        here = page.evaluate("window.emachi.self()")
        _walk_to(page, axes, x, here["z"] if z is None else z)

    # Walking within the kiosk's radius offers it.
    wait_for(page, "(id) => window.emachiKiosk.offered() === id", arg=JUMINHYO)
    offer = page.locator(".kiosk-offer")
    assert "住民票の写し" in offer.inner_text()
    offer.locator("button").click()

    panel = page.locator(f'.kiosk-panel[data-kiosk="{JUMINHYO}"]')
    panel.wait_for(timeout=40 * WAIT * 1000)
    assert "住民票の写し" in panel.locator("h2").inner_text()
    buttons = panel.locator(".kiosk-channel")
    assert [buttons.nth(i).get_attribute("data-channel") for i in range(buttons.count())] == [
        "line",
        "graffer",
        "city-page",
    ]

    # The Graffer button opens the catalog's link in a new tab.
    with page.context.expect_page(timeout=40 * WAIT * 1000) as tab_info:
        panel.locator('.kiosk-channel[data-channel="graffer"]').click()
    tab = tab_info.value
    # the catalog's link with the opaque reference a completion webhook names (docs/counters.md)
    tab.wait_for_url(
        re.compile(re.escape(GRAFFER_URL) + r"\?emachi_ref=[\w-]{16,}$"), timeout=40 * WAIT * 1000
    )
    tab.close()

    # On a PC, LINE shows a QR code to carry on with a phone; it decodes to the LINE link.
    assert page.evaluate("window.emachi.app.device") == "pc"
    panel.locator('.kiosk-channel[data-channel="line"]').click()
    qr = panel.locator(".kiosk-qr")
    qr.wait_for(timeout=40 * WAIT * 1000)
    link = wait_for(page, "window.emachiKiosk.lastLink()")
    assert isinstance(link, dict) and link["channel"] == "line"
    line_url = str(link["url"])  # the LIFF link, with the reference a completion webhook names
    assert re.fullmatch(re.escape(LINE_URL) + r"\?emachi_ref=[\w-]{16,}", line_url), line_url
    pixels = _qr_pixels(page)
    expected = np.array(segno.make(line_url, error="m", micro=False).matrix, dtype=np.uint8)
    drawn = _modules(pixels, expected.shape[0] + 8)  # the code has a 4-module quiet zone
    assert np.array_equal(drawn[4:-4, 4:-4], expected) and not drawn[:4].any()
    import zxingcpp  # a real decoder reads what a phone camera would

    assert [r.text for r in zxingcpp.read_barcodes(pixels)] == [line_url]


def test_a_kiosk_across_the_hall_is_not_offered_and_opening_it_is_refused(open_page: Any) -> None:
    page = open_page(width=480, height=360)
    me = join(page, "もみじ")
    assert math.hypot(me["x"] - 12.0, me["z"] - 16.0) > 20
    wait_for(page, "window.emachiKiosk !== undefined")
    # after a few 'near' updates (about one a second; the kiosk's own listener runs first)
    page.evaluate(
        "() => { window.nears = 0; window.emachi.app.on('near', () => { window.nears += 1; }); }"
    )
    wait_for(page, "window.nears >= 2")
    assert page.evaluate("window.emachiKiosk.offered()") is None
    page.evaluate("(id) => window.emachiKiosk.open(id)", JUMINHYO)
    notice = page.locator(".kiosk-notice")
    notice.wait_for(timeout=40 * WAIT * 1000)
    assert "近くまで歩いて" in notice.inner_text()
    assert page.locator(".kiosk-panel").count() == 0


def test_moving_checklist_helper_answers_in_the_panel(open_page: Any) -> None:
    page = open_page(width=480, height=600)
    join(page, "つばめ")
    wait_for(page, "window.emachiKiosk !== undefined")
    axes = _calibrate(page)
    _walk_to(page, axes, 8.5, 45.5)  # world.toml: kiosk-moving-checklist at x 8, z 44, radius 2.5
    wait_for(page, "() => window.emachiKiosk.offered() === 'kiosk-moving-checklist'")
    page.locator(".kiosk-offer button").click()
    form = page.locator(".kiosk-panel .kiosk-moving")
    form.wait_for(timeout=40 * WAIT * 1000)
    form.locator('fieldset[data-question="direction"] input[value="out"]').check()
    form.locator('fieldset[data-question="nhi"] input').check()
    form.locator("button[type=submit]").click()
    steps = form.locator(".kiosk-steps > li")
    steps.first.wait_for(timeout=40 * WAIT * 1000)
    ids = [steps.nth(i).get_attribute("data-step") for i in range(steps.count())]
    assert ids == ["move-out-notice", "nhi-leave", "bulky-garbage"]
    online = steps.first.locator("a.kiosk-online")
    assert online.get_attribute("href").startswith("https://myna.go.jp/")
    assert "マイナポータル" in online.inner_text()
    assert "保険年金課" in form.locator(".kiosk-result").inner_text()


def test_bulky_garbage_helper_names_the_category_and_says_unknown_items_plainly(
    open_page: Any,
) -> None:
    page = open_page(width=480, height=600)
    join(page, "かえで")
    wait_for(page, "window.emachiKiosk !== undefined")
    axes = _calibrate(page)
    _walk_to(page, axes, 50.5, 45.5)  # world.toml: kiosk-bulky-garbage at x 52, z 44, radius 2.5
    wait_for(page, "() => window.emachiKiosk.offered() === 'kiosk-bulky-garbage'")
    page.locator(".kiosk-offer button").click()
    form = page.locator(".kiosk-panel .kiosk-garbage")
    form.wait_for(timeout=40 * WAIT * 1000)
    result = form.locator(".kiosk-result")

    form.locator("input[name=item]").fill("ｿﾌｧｰ")  # half-width katakana
    form.locator("button[type=submit]").click()
    wait_for(
        page,
        "() => document.querySelector('.kiosk-garbage .kiosk-fee')?.textContent.includes('1,600円')",
    )
    assert "粗大ごみ" in result.locator(".kiosk-category").inner_text()
    book = result.locator("a.kiosk-online").first
    assert book.get_attribute("href").startswith("https://line.me/R/oaMessage/@")

    form.locator("input[name=item]").fill("宇宙船")
    form.locator("button[type=submit]").click()
    unknown = result.locator(".kiosk-unknown")
    unknown.wait_for(timeout=40 * WAIT * 1000)
    assert "このガイドにありません" in unknown.inner_text()
    page_link = result.locator('a[href^="https://www.city.machida.tokyo.jp/"]')
    assert page_link.count() == 1
