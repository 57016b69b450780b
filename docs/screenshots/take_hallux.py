"""Take the wayfinding and crowd screenshots of this folder: a crowd of 150 walkers (bench/client.py)
at PC (1280×800) and phone (390×844) size, the information kiosk's map with a "take me to" path, the
signs at a kiosk after arriving, and a full hall's waiting page on a phone. Starts its own
``emachi serve`` processes on free ports.

Usage: .venv/bin/python docs/screenshots/take_hallux.py
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

CROWD = 150
BOTS = """
import asyncio, json, sys, time
sys.path.insert(0, {root!r})
from bench.client import run_clients
world = json.loads(open({world!r}).read())
asyncio.run(run_clients({ws!r}, world, {n}, 0, 8.0, time.time(), {secs}, 7))
"""


def _serve(tmp: str, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    log = Path(tmp) / "serve.log"
    cmd = [str(ROOT / ".venv/bin/emachi"), "serve", "--port", "0", "--data-dir", tmp]
    cmd += ["--staff-token", "screenshots", "--log-level", "warning", *args]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    for _ in range(600):
        m = re.search(r"http://127\.0\.0\.1:\d+/", log.read_text(errors="replace"))
        if m:
            return proc, m.group(0)
        time.sleep(0.1)
    proc.kill()
    sys.exit(f"emachi serve did not start:\n{log.read_text()}")


def _enter(browser, url: str, name: str, w: int, h: int, phone: bool = False, wait: bool = True):  # noqa: ANN001, ANN202
    ctx = browser.new_context(viewport={"width": w, "height": h}, has_touch=phone, is_mobile=phone)
    ctx.add_init_script(
        "localStorage.setItem('emachi.test', '1'); localStorage.setItem('emachi.hint.move', '1')"
    )
    page = ctx.new_page()
    page.goto(url)
    page.wait_for_function("window.emachi && window.emachi.state().frames > 0", timeout=90000)
    page.fill("#join-name", name)
    page.click("#join button[type=submit]")
    if wait:
        page.wait_for_function("window.emachi.self() !== null", timeout=90000)
    return ctx, page


def main() -> int:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as tmp2:
        proc, url = _serve(tmp)
        full, full_url = _serve(tmp2, "--capacity", "1", "--max-instances", "1")
        bots = None
        try:
            world_file = Path(tmp) / "world.json"
            with urllib.request.urlopen(url + "api/world", timeout=10) as r:
                world_file.write_text(json.dumps(json.load(r)))
            ws = url.replace("http://", "ws://") + "ws"
            code = BOTS.format(root=str(ROOT), world=str(world_file), ws=ws, n=CROWD, secs=240)
            bots = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                # the waiting page of a full hall, on a phone
                ctx1, _ = _enter(browser, full_url, "ひとりめ", 640, 400)
                ctx2, page = _enter(browser, full_url, "まつひと", 390, 844, phone=True, wait=False)
                page.wait_for_function("!document.querySelector('#queue').hidden", timeout=60000)
                time.sleep(1.0)
                page.screenshot(path=str(HERE / "waiting-line-phone.png"))
                ctx1.close()
                ctx2.close()
                time.sleep(10.0)  # the crowd has come in and spread from the entrance
                for w, h, phone, out_name in (
                    (1280, 800, False, "crowd-150-pc.png"),
                    (390, 844, True, "crowd-150-phone.png"),
                ):
                    ctx, page = _enter(browser, url, "さくら", w, h, phone)
                    time.sleep(3.0)
                    page.screenshot(path=str(HERE / out_name))
                    if not phone:
                        page.click("#nearby-map")
                        page.fill(".map-search", "住民票")
                        page.evaluate("window.emachi.app.takeMeTo('kiosk-juminhyo')")
                        page.click("#nearby-map")
                        time.sleep(2.5)
                        page.screenshot(path=str(HERE / "take-me-to-pc.png"))
                        page.wait_for_function("!window.emachi.guide().active", timeout=90000)
                        time.sleep(2.0)
                        page.screenshot(path=str(HERE / "arrived-kiosk-pc.png"))
                    ctx.close()
                browser.close()
        finally:
            if bots is not None:
                bots.terminate()
                bots.wait(timeout=10)
            for p in (proc, full):
                p.terminate()
                p.wait(timeout=10)
    print("wrote", ", ".join(p.name for p in sorted(HERE.glob("*.png"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
