"""axe-core finds no serious or critical violation on the pages residents and staff use.

axe-core comes from the npm registry, vendored in ``tests/browser/vendor/axe-core/`` by
``scripts/vendor-axe.sh``. The pages send a strict CSP (scripts from their own origin and hashed
inline scripts only), so ``page.add_script_tag(content=...)`` would be refused; the source is
evaluated through Playwright instead (DevTools' evaluation is not subject to the page's CSP), after
the page is ready, and the page under test is otherwise as a visitor gets it.

Pages checked: the hall after joining at PC (1280×800) and phone (390×844) size, the 住民票 kiosk's
panel open in the hall (walked to with "take me to"), the watch page of the 2022-06-29 committee
briefing, and the staff console of that briefing signed in with the staff token.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from server.briefing.render import render_script
from server.briefing.script import load_script

from .conftest import ROOT, WAIT, EmachiServer, join, wait_for

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
BID = "2022-06-29-digital-committee"
PC = {"width": 1280, "height": 800}
BLOCKING = ("serious", "critical")

# every serious or critical violation as {id, impact, help, targets}
RUN_AXE = """async (blocking) => {
  const r = await axe.run(document, { resultTypes: ['violations'] });
  return r.violations
    .filter((v) => blocking.includes(v.impact))
    .map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      targets: v.nodes.filter((n) => blocking.includes(n.impact)).map((n) => n.target.join(' ')),
    }));
}"""


def _violations(page: Any) -> list[dict[str, Any]]:
    """Inject axe-core (once per document) and run it on the whole page."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    assert page.evaluate("typeof window.axe?.run === 'function'"), "axe-core did not load"
    return page.evaluate(RUN_AXE, list(BLOCKING))


def _assert_clean(page: Any, where: str) -> None:
    found = _violations(page)
    report = "\n".join(
        f"  {v['id']} ({v['impact']}): {v['help']}\n    " + "\n    ".join(v["targets"][:8])
        for v in found
    )
    assert not found, f"axe-core: serious or critical violations on {where}:\n{report}"


@pytest.fixture(scope="module")
def briefing(emachi: EmachiServer) -> str:
    """The 2022-06-29 committee briefing, rendered with its first segment only: the page and the
    console are the same for every segment, and one is quick to synthesise."""
    script = load_script(ROOT / "briefings" / f"{BID}.yaml")
    render_script(dataclasses.replace(script, segments=script.segments[:1]), emachi.data_dir)
    return BID


def _take_me_to(page: Any, dest: str) -> None:
    """Walk there with "take me to"; a guide that gives up on a busy machine (SwiftShader drawing
    slowly) is asked again from where the avatar stands."""
    said = ""
    for _ in range(3):
        assert page.evaluate("(id) => window.emachi.app.takeMeTo(id)", dest)
        wait_for(page, "!window.emachi.guide().active", timeout=160 * WAIT)
        said = page.locator("#guide-live").inner_text()
        if "着きました" in said:
            return
    raise AssertionError(
        f"not arrived at {dest}: {said!r} at {page.evaluate('window.emachi.self()')}"
    )


# walking to the kiosk takes real time with SwiftShader on a shared CPU
@pytest.mark.timeout(300)
def test_hall_and_kiosk_panel_at_pc_size(open_page: Any) -> None:
    page = open_page(**PC)
    join(page, "アクセシビリティ")
    wait_for(page, "document.querySelector('#nearby-live')?.textContent.trim() !== ''")
    _assert_clean(page, "the hall at 1280×800")

    _take_me_to(page, "kiosk-juminhyo")
    try:
        wait_for(
            page,
            "document.querySelector('.kiosk-offer') && !document.querySelector('.kiosk-offer').hidden",
        )
    except AssertionError as e:
        seen = page.evaluate(
            """() => ({ kiosk: typeof window.emachiKiosk, offered: window.emachiKiosk?.offered(),
              me: window.emachi.self(), near: document.querySelector('#nearby-live')?.textContent,
              offer: document.querySelector('.kiosk-offer')?.outerHTML })"""
        )
        raise AssertionError(f"no kiosk offer: {seen}") from e
    _assert_clean(page, "the hall with the kiosk's offer")
    page.click(".kiosk-offer button")
    wait_for(page, "document.querySelector('.kiosk-panel .kiosk-channel') !== null")
    _assert_clean(page, "the 住民票 kiosk's panel")


def test_hall_at_phone_size(open_page: Any) -> None:
    page = open_page(phone=True)
    join(page, "アクセシビリティ")
    wait_for(page, "document.querySelector('#nearby-live')?.textContent.trim() !== ''")
    _assert_clean(page, "the hall at 390×844")
    # and the check can fail: a button with no name is a critical violation axe reports
    page.evaluate(
        "document.body.append(Object.assign(document.createElement('button'), {id: 'axe-probe'}))"
    )
    assert any(v["id"] == "button-name" and "#axe-probe" in v["targets"] for v in _violations(page))


def test_briefing_watch_page(emachi: EmachiServer, briefing: str, open_page: Any) -> None:
    page = open_page(f"{emachi.url}/briefing/{briefing}", width=PC["width"], height=PC["height"])
    wait_for(page, "window.emachiBriefing?.player.segments.length > 0")
    _assert_clean(page, f"/briefing/{briefing}")


def test_staff_briefing_console(emachi: EmachiServer, briefing: str, open_page: Any) -> None:
    page = open_page(
        f"{emachi.url}/staff/briefings/{briefing}/console?token={emachi.staff_token}",
        width=PC["width"],
        height=PC["height"],
    )
    wait_for(page, "document.querySelector('#state')?.dataset.state === 'scheduled'")
    _assert_clean(page, f"the staff console of {briefing}")
