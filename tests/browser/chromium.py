"""How emachi runs Debian's Chromium headless: the browser tests, bench/first_frame.py and the
screenshot scripts all launch it with these flags (no browser download, no outside network)."""

from __future__ import annotations

__all__ = ["CHROMIUM", "CHROMIUM_ARGS"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # without these Chromium reaches for Google's hosts, which this machine's network refuses
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # WebGL on the CPU
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]
