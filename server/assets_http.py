"""Serve content-addressed assets: ``GET /assets/{sha256}`` and ``GET /api/manifest``.

The lead's app sets ``app[ASSET_STORES]`` to the stores to serve, first match wins (typically the
world's ``worlds/<world>/assets`` and the runtime ``var/assets``), then calls :func:`setup`.
An asset's URL never changes meaning, so it is served with ``Cache-Control: immutable`` and its hash
as the ETag; a single byte range is honoured (by ``web.FileResponse``, which sends the file with
``sendfile``) so that ``<audio>`` can seek in narration.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from aiohttp import hdrs, web
from aiohttp.helpers import ETag

from assets_manifest.store import AssetEntry, AssetStore, is_sha256
from server.keys import ASSET_STORES

__all__ = ["manifest_document", "setup"]

_IMMUTABLE = "public, max-age=31536000, immutable"
_COMPRESSIBLE = ("text/", "image/svg+xml", "application/json", "model/gltf+json")


def _stores(request: web.Request) -> list[AssetStore]:
    return request.app.get(ASSET_STORES, [])


def _find(stores: list[AssetStore], sha: str) -> tuple[AssetStore, AssetEntry] | None:
    for store in stores:
        entry = store.get(sha)
        if entry is not None and store.path(sha).is_file():
            return store, entry
    return None


def _etag_matches(request: web.Request, sha: str) -> bool:
    inm = request.if_none_match
    return inm is not None and any(e.value in (sha, "*") for e in inm)


class _AssetFile(web.FileResponse):
    """A file sent with sendfile and Range by aiohttp, keeping the asset's hash as its ETag.

    ``FileResponse`` would set an ETag of its own from the file's mtime and size; an asset's
    identity is its hash, which never changes, so every assignment to ``etag`` writes the hash.
    """

    def __init__(self, path: Path, sha: str, headers: dict[str, str]) -> None:
        super().__init__(path, headers=headers)
        self._sha = sha

    @property
    def etag(self) -> ETag | None:
        return ETag(value=self._sha)

    @etag.setter
    def etag(self, value: object) -> None:
        self._headers[hdrs.ETAG] = f'"{self._sha}"'


async def get_asset(request: web.Request) -> web.StreamResponse:
    """One asset by hash: 200 (or 206 for a range), 304 when the client has it, 404 otherwise.

    The bytes go out with ``sendfile`` from the store's file (``web.FileResponse``), never read
    whole into memory; text-like types are compressed when the whole file is asked for.
    """
    sha = request.match_info["sha256"].lower()
    if not is_sha256(sha):
        raise web.HTTPNotFound(text="asset names are 64 hex digits (SHA-256)\n")
    found = _find(_stores(request), sha)
    if found is None:
        raise web.HTTPNotFound(text=f"no asset {sha}\n")
    store, entry = found
    headers = {"Cache-Control": _IMMUTABLE, "ETag": f'"{sha}"', "Accept-Ranges": "bytes"}
    if _etag_matches(request, sha):
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = entry.media_type
    resp = _AssetFile(store.path(sha), sha, headers)
    if entry.media_type.startswith(_COMPRESSIBLE) and hdrs.RANGE not in request.headers:
        resp.enable_compression()
    return resp


def manifest_document(stores: list[AssetStore]) -> dict[str, object]:
    """The manifest the client reads: every asset of every store (first store wins on a clash).

    ``{"version": 1, "assets": {sha: {size, media_type, licence, source, lod, url, file?}}}``;
    ``file`` is the readable name a world file uses to refer to the asset.
    """
    assets: dict[str, dict[str, object]] = {}
    for store in stores:
        for e in store.entries():
            if e.sha256 in assets:
                continue
            d: dict[str, object] = {
                "size": e.size,
                "media_type": e.media_type,
                "licence": e.licence,
                "source": e.source,
                "lod": e.lod,
                "url": f"/assets/{e.sha256}",
            }
            name = store.file_name(e.sha256)
            if name:
                d["file"] = name
            assets[e.sha256] = d
    return {"version": 1, "assets": assets}


async def get_manifest(request: web.Request) -> web.Response:
    """The merged manifest as JSON, revalidated by ETag (it changes when briefings are rendered)."""
    body = json.dumps(manifest_document(_stores(request)), sort_keys=True).encode()
    etag = hashlib.sha256(body).hexdigest()[:32]
    headers = {"Cache-Control": "no-cache", "ETag": f'"{etag}"'}
    inm = request.if_none_match
    if inm is not None and any(e.value == etag for e in inm):
        return web.Response(status=304, headers=headers)
    resp = web.Response(body=body, content_type="application/json", headers=headers)
    resp.enable_compression()
    return resp


def setup(app: web.Application) -> None:
    """Add the asset routes; ``app[ASSET_STORES]`` may be set before or after (default: none)."""
    app.router.add_get("/assets/{sha256}", get_asset)
    app.router.add_get("/api/manifest", get_manifest)
