"""A content-addressed asset store: bytes keyed by SHA-256, described by a manifest.

Two kinds of store share this class:

- the runtime store (``var/assets/``): files are named by their hash, ``root/<sha256>``; the
  briefing renderer puts synthesized audio there with :meth:`AssetStore.put`;
- a world's source assets (``worlds/<world>/assets/``): files keep readable names
  (``thumbnails/line.png``) and the committed ``manifest.json`` maps each hash to its file
  (:mod:`assets_manifest.build` writes it).

``manifest.json`` is ``{"version": 1, "assets": {sha256: {size, media_type, licence, source, lod,
file?}}}``; ``file`` (a path relative to the root) is absent when the file is ``root/<sha256>``.
Writes go to a temporary file and are renamed into place, so a reader never sees half a file, and
they hold a lock file so that two processes sharing ``var/assets`` do not lose each other's entries.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["LODS", "MANIFEST_NAME", "MANIFEST_VERSION", "AssetEntry", "AssetStore", "ManifestError"]

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
LODS = ("all", "phone", "pc")
_HEX = frozenset("0123456789abcdef")


class ManifestError(ValueError):
    """A manifest file that cannot be read; the message names the file and the place in it."""


@dataclass(frozen=True, slots=True)
class AssetEntry:
    """What the manifest knows of one asset. ``lod`` is ``"all"``, ``"phone"`` or ``"pc"``."""

    sha256: str
    size: int
    media_type: str
    licence: str
    source: str
    lod: str = "all"


def is_sha256(text: object) -> bool:
    """True for a lowercase 64-digit hex string (the only form of asset key we accept)."""
    return isinstance(text, str) and len(text) == 64 and set(text) <= _HEX


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_manifest(path: Path) -> tuple[dict[str, AssetEntry], dict[str, str]]:
    """Read a manifest file into (entries by hash, file names by hash).

    A missing file is an empty manifest. Raises :class:`ManifestError` naming the file and the key.
    """
    if not path.exists():
        return {}, {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ManifestError(f"{path}: not readable JSON: {e}") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("assets"), dict):
        raise ManifestError(f'{path}: expected an object with "assets": {{sha256: entry}}')
    if doc.get("version") != MANIFEST_VERSION:
        raise ManifestError(
            f"{path}: version: expected {MANIFEST_VERSION}, got {doc.get('version')!r}"
        )
    entries: dict[str, AssetEntry] = {}
    files: dict[str, str] = {}
    for sha, raw in doc["assets"].items():
        where = f"{path}: assets.{sha}"
        if not is_sha256(sha):
            raise ManifestError(f"{where}: key is not a lowercase hex SHA-256")
        if not isinstance(raw, dict):
            raise ManifestError(f"{where}: expected an object")
        try:
            size = raw["size"]
            fields = {k: raw[k] for k in ("media_type", "licence", "source")}
        except KeyError as e:
            raise ManifestError(f"{where}: missing {e.args[0]}") from None
        lod = raw.get("lod", "all")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ManifestError(f"{where}.size: expected a non-negative integer, got {size!r}")
        for k, v in fields.items():
            if not isinstance(v, str) or not v:
                raise ManifestError(f"{where}.{k}: expected a non-empty string, got {v!r}")
        if lod not in LODS:
            raise ManifestError(f"{where}.lod: expected one of {', '.join(LODS)}, got {lod!r}")
        entries[sha] = AssetEntry(sha256=sha, size=size, lod=lod, **fields)
        if "file" in raw:
            name = raw["file"]
            if (
                not isinstance(name, str)
                or not name
                or name.startswith("/")
                or ".." in Path(name).parts
            ):
                raise ManifestError(
                    f"{where}.file: expected a relative path inside the store, got {name!r}"
                )
            files[sha] = name
    return entries, files


def manifest_bytes(entries: dict[str, AssetEntry], files: dict[str, str]) -> bytes:
    """The manifest as stable JSON (sorted keys, one entry per hash) for committing and diffing."""
    assets: dict[str, dict[str, object]] = {}
    for sha in sorted(entries):
        d = asdict(entries[sha])
        del d["sha256"]
        if sha in files:
            d["file"] = files[sha]
        assets[sha] = d
    doc = {"version": MANIFEST_VERSION, "assets": assets}
    return (json.dumps(doc, indent=1, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")


class AssetStore:
    """Assets under one root directory, with the manifest at ``root/manifest.json``.

    Safe to share between threads of one process (a lock) and between processes (a lock file);
    the manifest is re-read before every write, so concurrent writers merge rather than overwrite.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()
        self._entries: dict[str, AssetEntry] = {}
        self._files: dict[str, str] = {}
        self._mtime: int | None = None
        self._reload()

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST_NAME

    def _reload(self) -> None:
        """Re-read the manifest if it changed on disk (another process may have written it)."""
        try:
            mtime = self.manifest_path.stat().st_mtime_ns
        except FileNotFoundError:
            mtime = None
        if mtime != self._mtime or mtime is None:
            self._entries, self._files = read_manifest(self.manifest_path)
            self._mtime = mtime

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        with self._lock:
            self.root.mkdir(parents=True, exist_ok=True)
            with open(self.root / ".lock", "a+b") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    self._reload()
                    yield
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)

    def put(
        self, data: bytes, *, media_type: str, licence: str, source: str, lod: str = "all"
    ) -> AssetEntry:
        """Store ``data`` at ``root/<sha256>`` and record it; putting the same bytes again is a no-op.

        Returns the entry (the one already recorded when the bytes were known).
        Raises ValueError for an unknown ``lod`` or an empty description.
        """
        if lod not in LODS:
            raise ValueError(f"lod: expected one of {', '.join(LODS)}, got {lod!r}")
        for k, v in (("media_type", media_type), ("licence", licence), ("source", source)):
            if not v:
                raise ValueError(f"{k}: expected a non-empty string")
        sha = hashlib.sha256(data).hexdigest()
        with self._exclusive():
            known = self._entries.get(sha)
            target = self.path(sha)
            if known is not None and target.exists() and target.stat().st_size == known.size:
                return known
            if not (target.exists() and target.stat().st_size == len(data)):
                _atomic_write(target, data)
            entry = AssetEntry(sha, len(data), media_type, licence, source, lod)
            self._entries[sha] = entry
            _atomic_write(self.manifest_path, manifest_bytes(self._entries, self._files))
            self._mtime = self.manifest_path.stat().st_mtime_ns
            return entry

    def get(self, sha256: str) -> AssetEntry | None:
        """The entry for a hash, or None when the manifest does not know it."""
        with self._lock:
            self._reload()
            return self._entries.get(sha256)

    def path(self, sha256: str) -> Path:
        """Where the file of a hash lives (it may not exist: see :meth:`get`)."""
        if not is_sha256(sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        name = self._files.get(sha256)
        return self.root / name if name else self.root / sha256

    def entries(self) -> list[AssetEntry]:
        """Every entry, sorted by hash."""
        with self._lock:
            self._reload()
            return [self._entries[k] for k in sorted(self._entries)]

    def file_name(self, sha256: str) -> str | None:
        """The readable file name of a hash in a world's assets, or None for ``root/<sha256>``."""
        return self._files.get(sha256)
