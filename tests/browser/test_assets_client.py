"""The client loads assets through the manifest, at content-addressed URLs the browser may keep."""

from __future__ import annotations

import hashlib
import struct
import zlib
from typing import Any

from assets_manifest.store import AssetStore

from .conftest import EmachiServer


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    row = b"\x00" + bytes(rgb) * width
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def test_an_image_asset_loads_through_the_manifest_and_is_cached(
    open_page: Any, emachi: EmachiServer
) -> None:
    png = _png(3, 2, (200, 40, 40))
    entry = AssetStore(emachi.data_dir / "assets").put(
        png, media_type="image/png", licence="CC0-1.0", source="made by the test"
    )
    page = open_page()
    got = page.evaluate(
        """async (sha) => {
          const app = window.emachi.app;
          const url = await app.assets.url(sha);
          const r = await fetch(url);
          const bytes = new Uint8Array(await r.arrayBuffer());
          const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
          const hex = [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
          const tex = await app.assets.texture(app.THREE, sha);
          return { url, hex, cache: r.headers.get('cache-control'), type: r.headers.get('content-type'),
                   w: tex.image.width, h: tex.image.height };
        }""",
        entry.sha256,
    )
    assert got["url"] == f"/assets/{entry.sha256}"
    assert got["hex"] == hashlib.sha256(png).hexdigest()
    assert "immutable" in got["cache"]
    assert got["type"] == "image/png"
    assert (got["w"], got["h"]) == (3, 2)
    # a second load is answered by the browser's cache: nothing crosses the network
    second = page.evaluate(
        """async (url) => {
          await (await fetch(url)).arrayBuffer();
          const entries = performance.getEntriesByName(location.origin + url);
          const last = entries[entries.length - 1];
          return { transfer: last.transferSize, body: last.decodedBodySize, count: entries.length };
        }""",
        got["url"],
    )
    assert second["count"] >= 2
    assert second["transfer"] == 0 and second["body"] == len(png), second
