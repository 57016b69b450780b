"""Take the screenshots of this folder: the lobby at PC (1280×800) and phone (390×844) size with a
few people about, and the first screen on a phone. Starts its own ``emachi serve`` on a free port.

Usage: .venv/bin/python docs/screenshots/take.py
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.chromium import CHROMIUM  # noqa: E402
from tests.browser.chromium import CHROMIUM_ARGS as ARGS  # noqa: E402


def _enter(browser, url: str, name: str, w: int, h: int, phone: bool = False):  # noqa: ANN001, ANN202
    ctx = browser.new_context(viewport={"width": w, "height": h}, has_touch=phone, is_mobile=phone)
    ctx.add_init_script("localStorage.setItem('emachi.test', '1')")  # window.emachi
    page = ctx.new_page()
    page.goto(url)
    page.wait_for_function("window.emachi && window.emachi.state().frames > 0", timeout=60000)
    if name:
        page.fill("#join-name", name)
        page.click("#join button[type=submit]")
        page.wait_for_function("window.emachi.self() !== null", timeout=60000)
    return ctx, page


def _walk(page, key: str, seconds: float) -> None:  # noqa: ANN001
    page.keyboard.down(key)
    time.sleep(seconds)
    page.keyboard.up(key)


def main() -> int:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "serve.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [
                    str(ROOT / ".venv/bin/emachi"),
                    "serve",
                    "--port",
                    "0",
                    "--data-dir",
                    tmp,
                    "--staff-token",
                    "screenshots",
                    "--log-level",
                    "warning",
                ],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            url = ""
            for _ in range(300):
                m = re.search(r"http://127\.0\.0\.1:\d+/", log.read_text(errors="replace"))
                if m:
                    url = m.group(0)
                    break
                time.sleep(0.1)
            if not url:
                sys.exit(f"emachi serve did not start:\n{log.read_text()}")
            time.sleep(1.0)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                people = [_enter(browser, url, n, 640, 400)[1] for n in ("はなこ", "Ben", "たろう")]
                for i, p in enumerate(people):
                    _walk(p, "KeyW", 3.5 + i * 0.7)
                people[0].fill("#chat-input", "こんにちは！転入の手続きはどこですか？")
                people[0].press("#chat-input", "Enter")
                for w, h, phone, out_name in (
                    (1280, 800, False, "lobby-pc.png"),
                    (390, 844, True, "lobby-phone.png"),
                ):
                    ctx, page = _enter(browser, url, "さくら", w, h, phone)
                    _walk(page, "KeyW", 2.0)
                    _walk(page, "KeyA", 0.6)
                    time.sleep(1.5)
                    people[1].fill("#chat-input", "Hello! 2階で説明会がありますよ")
                    people[1].press("#chat-input", "Enter")
                    time.sleep(1.0)
                    page.screenshot(path=str(HERE / out_name))
                    ctx.close()
                ctx, page = _enter(browser, url, "", 390, 844, True)
                page.screenshot(path=str(HERE / "first-screen-phone.png"))
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    print("wrote", ", ".join(p.name for p in sorted(HERE.glob("*.png"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
