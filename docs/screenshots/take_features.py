"""Screenshots of the features as a person meets them: a kiosk panel in the lobby (PC), the LINE
QR code, and a briefing playing on the watch-only page. Starts its own server on a free port.

Usage: .venv/bin/python docs/screenshots/take_features.py
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.chromium import CHROMIUM  # noqa: E402
from tests.browser.chromium import CHROMIUM_ARGS as ARGS  # noqa: E402
from tests.browser.test_kiosk import ROUTE, _calibrate, _walk_to  # noqa: E402

TOKEN = "screenshot-token"
BID = "2022-06-29-digital-committee"


def main() -> int:
    from playwright.sync_api import sync_playwright

    subprocess.run(
        [
            str(ROOT / ".venv/bin/emachi"),
            "briefing",
            "render",
            str(ROOT / "briefings" / f"{BID}.yaml"),
        ],
        check=True,
        cwd=ROOT,
    )
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "serve.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [str(ROOT / ".venv/bin/emachi"), "serve", "--port", "0", f"--staff-token={TOKEN}"],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            for _ in range(200):
                m = re.search(r"http://[\d.]+:(\d+)/", log.read_text())
                if m:
                    break
                time.sleep(0.1)
            url = f"http://127.0.0.1:{m.group(1)}/"  # type: ignore[union-attr]
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                ctx = browser.new_context(viewport={"width": 1280, "height": 800})
                ctx.add_init_script("localStorage.setItem('emachi.test', '1')")  # window.emachi
                page = ctx.new_page()
                page.goto(url)
                page.wait_for_function(
                    "window.emachi && window.emachi.state().frames > 0", timeout=60000
                )
                page.fill("#join-name", "さくら")
                page.click("#join button[type=submit]")
                page.wait_for_function(
                    "window.emachi.self() !== null && window.emachiKiosk !== undefined",
                    timeout=60000,
                )
                axes = _calibrate(page)
                for x, z in ROUTE:
                    here = page.evaluate("window.emachi.self()")
                    _walk_to(page, axes, x, here["z"] if z is None else z)
                page.wait_for_function("window.emachiKiosk.offered() !== null", timeout=30000)
                page.locator(".kiosk-offer button").click()
                page.locator(".kiosk-panel").wait_for(timeout=20000)
                page.wait_for_timeout(1500)
                page.screenshot(path=str(HERE / "kiosk-panel-pc.png"))
                page.locator('.kiosk-panel .kiosk-channel[data-channel="line"]').click()
                page.locator(".kiosk-qr").wait_for(timeout=20000)
                page.wait_for_timeout(800)
                page.screenshot(path=str(HERE / "kiosk-line-qr-pc.png"))
                ctx.close()

                req = urllib.request.Request(
                    f"{url}staff/briefings/{BID}/start",
                    method="POST",
                    headers={"Authorization": f"Bearer {TOKEN}"},
                    data=b"{}",
                )
                print(json.loads(urllib.request.urlopen(req).read())["state"])
                ctx = browser.new_context(viewport={"width": 1280, "height": 800})
                ctx.add_init_script("localStorage.setItem('emachi.test', '1')")  # window.emachi
                page = ctx.new_page()
                page.goto(f"{url}briefing/{BID}")
                page.wait_for_timeout(9000)
                page.screenshot(path=str(HERE / "briefing-watch-pc.png"))
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
