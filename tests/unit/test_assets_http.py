"""GET /assets/{sha256} and GET /api/manifest on a real aiohttp server on a free port."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from assets_manifest.store import AssetStore
from server import assets_http

OGG = b"OggS" + bytes(range(256)) * 8


@pytest.fixture
async def base(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    store = AssetStore(tmp_path / "var")
    entry = store.put(OGG, media_type="audio/ogg", licence="CC0-1.0", source="tts")
    app = web.Application()
    app[assets_http.ASSET_STORES] = [AssetStore(tmp_path / "empty"), store]
    assets_http.setup(app)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield str(server.make_url("")), entry.sha256
    finally:
        await server.close()


async def test_asset_is_served_immutable_with_its_hash_as_etag(base: tuple[str, str]) -> None:
    url, sha = base
    async with aiohttp.ClientSession() as http, http.get(f"{url}/assets/{sha}") as r:
        assert r.status == 200
        assert r.content_type == "audio/ogg"
        assert "immutable" in r.headers["Cache-Control"]
        assert r.headers["ETag"] == f'"{sha}"'
        body = await r.read()
    assert hashlib.sha256(body).hexdigest() == sha


async def test_a_client_that_has_it_gets_304(base: tuple[str, str]) -> None:
    url, sha = base
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{url}/assets/{sha}", headers={"If-None-Match": f'"{sha}"'}) as r,
    ):
        assert r.status == 304
        assert await r.read() == b""


async def test_a_byte_range_for_audio_seeking(base: tuple[str, str]) -> None:
    url, sha = base
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{url}/assets/{sha}", headers={"Range": "bytes=4-7"}) as r,
    ):
        assert r.status == 206
        assert r.headers["Content-Range"] == f"bytes 4-7/{len(OGG)}"
        assert await r.read() == OGG[4:8]


@pytest.mark.parametrize("name", ["0" * 64, "not-a-hash", "A" * 64 + "0"])
async def test_unknown_or_malformed_names_are_404(base: tuple[str, str], name: str) -> None:
    url, _ = base
    async with aiohttp.ClientSession() as http, http.get(f"{url}/assets/{name}") as r:
        assert r.status == 404


async def test_manifest_lists_every_store(base: tuple[str, str]) -> None:
    url, sha = base
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/api/manifest") as r:
            assert r.status == 200
            doc = await r.json()
            etag = r.headers["ETag"]
        assert doc["assets"][sha]["url"] == f"/assets/{sha}"
        assert doc["assets"][sha]["size"] == len(OGG)
        async with http.get(f"{url}/api/manifest", headers={"If-None-Match": etag}) as r:
            assert r.status == 304
