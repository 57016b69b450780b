"""Bytes before the first frame and time to first frame of the web client, on loopback.

Starts ``emachi serve`` on a free port, opens the client in headless Chromium (Debian's, with
SwiftShader for WebGL: a CPU renderer, so the times are an upper bound for a machine with a GPU)
in a fresh context (empty cache) RUNS times at PC and phone size, and reads from the page:

- time to first frame: navigation start → the first ``renderer.render`` of the hall
  (``window.emachi.state().firstFrameMs``, a ``performance.now()``);
- bytes before the first frame: ``transferSize`` (compressed bytes on the wire, headers included)
  of the document and every resource whose response ended before the first frame.

Writes ``bench/results/first-frame.json``. Measures, never asserts.

Usage: .venv/bin/python bench/first_frame.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a file: python bench/first_frame.py

from tests.browser.chromium import CHROMIUM  # noqa: E402
from tests.browser.chromium import CHROMIUM_ARGS as ARGS  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "first-frame.json"
SIZES = {"pc": (1280, 800, False), "phone": (390, 844, True)}

MEASURE_JS = """() => {
  const first = window.emachi.state().firstFrameMs;
  const nav = performance.getEntriesByType('navigation')[0];
  const res = performance.getEntriesByType('resource');
  const before = [nav, ...res].filter((e) => e.responseEnd <= first);
  const bytes = before.reduce((n, e) => n + (e.transferSize || 0), 0);
  const decoded = before.reduce((n, e) => n + (e.decodedBodySize || 0), 0);
  return {
    first_frame_ms: first,
    bytes: bytes,
    decoded_bytes: decoded,
    requests: before.length,
    files: before.map((e) => ({ url: e.name.replace(location.origin, ''), transfer: e.transferSize, decoded: e.decodedBodySize })),
  };
}"""


def start_server(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    log = tmp / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                str(ROOT / ".venv/bin/emachi"),
                "serve",
                "--port",
                "0",
                "--data-dir",
                str(tmp / "data"),
                "--staff-token",
                "bench",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    for _ in range(200):
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", log.read_text(errors="replace"))
        if m:
            return proc, m.group(0)
        if proc.poll() is not None:
            sys.exit(f"emachi serve exited:\n{log.read_text()}")
        time.sleep(0.1)
    proc.kill()
    sys.exit("emachi serve did not start")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(Path(tmp))
        results: dict[str, object] = {}
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                for label, (w, h, phone) in SIZES.items():
                    runs = []
                    for _ in range(args.runs):
                        ctx = browser.new_context(
                            viewport={"width": w, "height": h}, has_touch=phone, is_mobile=phone
                        )
                        page = ctx.new_page()
                        page.goto(url)
                        page.wait_for_function(
                            "window.emachi && window.emachi.state().firstFrameMs !== null",
                            timeout=60000,
                        )
                        runs.append(page.evaluate(MEASURE_JS))
                        ctx.close()
                    times = [r["first_frame_ms"] for r in runs]
                    results[label] = {
                        "viewport": [w, h],
                        "runs": len(runs),
                        "first_frame_ms": {
                            "median": round(statistics.median(times), 1),
                            "min": round(min(times), 1),
                            "max": round(max(times), 1),
                        },
                        "bytes_before_first_frame": runs[-1]["bytes"],
                        "decoded_bytes_before_first_frame": runs[-1]["decoded_bytes"],
                        "requests": runs[-1]["requests"],
                        "files": runs[-1]["files"],
                    }
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    doc = {
        "what": "web client: bytes (compressed, on the wire) and time from navigation to the first frame of the hall",
        "where": "loopback, headless Chromium with SwiftShader (CPU WebGL), fresh cache each run",
        "targets": {"bytes": 1_500_000, "first_frame_ms": 3000},
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "results": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    for label, r in results.items():
        print(
            f"{label}: first frame {r['first_frame_ms']['median']} ms (median of {r['runs']}), "
            f"{r['bytes_before_first_frame']} bytes in {r['requests']} requests"
        )
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
