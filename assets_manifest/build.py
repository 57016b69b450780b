"""Build and check asset manifests: ``emachi assets build`` and ``emachi assets check``.

A world's assets live in ``worlds/<world>/assets/`` under readable names, with ``sources.toml``
beside them saying where each came from and under which licence::

    [[asset]]
    match = "thumbnails/*.svg"      # a glob relative to assets/; the first matching rule wins
    licence = "CC0-1.0"
    source = "drawn for emachi"
    lod = "all"                     # optional: "all" (default), "phone" or "pc"

:func:`build_manifest` hashes every file and writes ``manifest.json`` (committed);
:func:`check` verifies every file against its hash and that every asset a world refers to exists.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import mimetypes
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .store import (
    LODS,
    MANIFEST_NAME,
    AssetEntry,
    ManifestError,
    _atomic_write,
    is_sha256,
    manifest_bytes,
    read_manifest,
)

__all__ = [
    "SOURCES_NAME",
    "BuildError",
    "build_manifest",
    "check",
    "check_store",
    "media_type_of",
    "world_asset_refs",
]

SOURCES_NAME = "sources.toml"
_MEDIA_TYPES = {
    ".glb": "model/gltf-binary",
    ".gltf": "model/gltf+json",
    ".ktx2": "image/ktx2",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".opus": "audio/ogg",
    ".ogg": "audio/ogg",
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".json": "application/json",
    ".vtt": "text/vtt",
}
_SKIP = {MANIFEST_NAME, SOURCES_NAME, ".lock"}
# keys of a world file whose string values name an asset (a file under assets/ or a sha256);
# not "audio" or "model": in the world format those are a zone's audio mode and a profile's
# distance model
ASSET_KEYS = frozenset(
    {"asset", "assets", "texture", "thumbnail", "image", "slide", "slides", "icon"}
)


class BuildError(ValueError):
    """The assets of a world cannot be described; one line per problem, each with its place."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class _Rule:
    match: str
    licence: str
    source: str
    lod: str


def media_type_of(name: str) -> str:
    """The media type served for a file name (by extension); octet-stream when unknown."""
    ext = Path(name).suffix.lower()
    return _MEDIA_TYPES.get(ext) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def _read_rules(path: Path) -> tuple[list[_Rule], list[str]]:
    if not path.exists():
        return [], [f"{path}: missing (each asset needs a licence and a source)"]
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        return [], [f"{path}: not readable TOML: {e}"]
    rules: list[_Rule] = []
    problems: list[str] = []
    raw_rules = doc.get("asset", [])
    if not isinstance(raw_rules, list):
        return [], [f"{path}: asset: expected an array of tables [[asset]]"]
    for i, raw in enumerate(raw_rules):
        where = f"{path}: asset[{i}]"
        if not isinstance(raw, dict):
            problems.append(f"{where}: expected a table")
            continue
        bad = False
        for key in ("match", "licence", "source"):
            if not isinstance(raw.get(key), str) or not raw[key]:
                problems.append(f"{where}.{key}: expected a non-empty string")
                bad = True
        lod = raw.get("lod", "all")
        if lod not in LODS:
            problems.append(f"{where}.lod: expected one of {', '.join(LODS)}, got {lod!r}")
            bad = True
        if not bad:
            rules.append(_Rule(raw["match"], raw["licence"], raw["source"], lod))
    return rules, problems


def _asset_files(root: Path) -> Iterator[Path]:
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if p.is_file() and rel.name not in _SKIP and not any(s.startswith(".") for s in rel.parts):
            yield p


def build_manifest(assets_dir: Path) -> list[AssetEntry]:
    """Hash every file under ``assets_dir`` and write its ``manifest.json``.

    Returns the entries written. Raises :class:`BuildError` listing each file without a rule in
    ``sources.toml`` and each bad rule; the manifest is then left as it was.
    """
    assets_dir = Path(assets_dir)
    rules, problems = _read_rules(assets_dir / SOURCES_NAME)
    entries: dict[str, AssetEntry] = {}
    files: dict[str, str] = {}
    for p in _asset_files(assets_dir):
        rel = p.relative_to(assets_dir).as_posix()
        rule = next((r for r in rules if fnmatch.fnmatchcase(rel, r.match)), None)
        if rule is None:
            problems.append(f"{assets_dir / SOURCES_NAME}: no [[asset]] rule matches {rel}")
            continue
        data = p.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        if sha in files:
            # identical bytes under two names: keep one entry, the first name
            continue
        entries[sha] = AssetEntry(
            sha, len(data), media_type_of(rel), rule.licence, rule.source, rule.lod
        )
        files[sha] = rel
    if problems:
        raise BuildError(problems)
    _atomic_write(assets_dir / MANIFEST_NAME, manifest_bytes(entries, files))
    return [entries[k] for k in sorted(entries)]


def check_store(root: Path, *, expect_all_listed: bool = False) -> list[str]:
    """Verify every file of a store against its manifest: present, right size, right hash.

    With ``expect_all_listed`` (a world's assets) a file the manifest does not list is a problem too.
    Returns one line per problem, each starting with the file it is about.
    """
    root = Path(root)
    try:
        entries, files = read_manifest(root / MANIFEST_NAME)
    except ManifestError as e:
        return [str(e)]
    problems: list[str] = []
    listed: set[Path] = set()
    for sha, entry in sorted(entries.items()):
        path = root / files.get(sha, sha)
        listed.add(path)
        if not path.is_file():
            problems.append(f"{path}: missing (manifest entry {sha})")
            continue
        data = path.read_bytes()
        if len(data) != entry.size:
            problems.append(f"{path}: size {len(data)}, manifest says {entry.size}")
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha:
            problems.append(f"{path}: sha256 {actual}, manifest says {sha}")
    if expect_all_listed and root.is_dir():
        for p in _asset_files(root):
            if p not in listed:
                problems.append(f"{p}: not in {root / MANIFEST_NAME} (run emachi assets build)")
    return problems


def world_asset_refs(doc: object, place: str = "") -> Iterator[tuple[str, str]]:
    """Yield ``(place, reference)`` for every string a world document gives under an asset key.

    A reference is a file name relative to the world's ``assets/`` or a SHA-256; the place is a
    dotted path like ``kiosks[3].thumbnail``.
    """
    if isinstance(doc, dict):
        for k, v in doc.items():
            sub = f"{place}.{k}" if place else str(k)
            if k in ASSET_KEYS:
                if isinstance(v, str) and v:
                    yield sub, v
                elif isinstance(v, list):
                    for i, item in enumerate(v):
                        if isinstance(item, str) and item:
                            yield f"{sub}[{i}]", item
                        else:
                            yield from world_asset_refs(item, f"{sub}[{i}]")
                else:
                    yield from world_asset_refs(v, sub)
            else:
                yield from world_asset_refs(v, sub)
    elif isinstance(doc, list):
        for i, item in enumerate(doc):
            yield from world_asset_refs(item, f"{place}[{i}]")


def _world_files(world_dir: Path) -> list[Path]:
    return sorted(p for p in world_dir.glob("*.toml") if p.name != SOURCES_NAME)


def check(worlds: Iterable[Path], stores: Iterable[Path] = ()) -> list[str]:
    """Check each world directory's assets and references, and each extra store (``var/assets``).

    Returns one line per problem with its place; an empty list means all is well.
    """
    problems: list[str] = []
    extra = [Path(s) for s in stores]
    known: set[str] = set()
    for s in extra:
        if s.exists():
            problems += check_store(s)
            with contextlib.suppress(ManifestError):
                known |= set(read_manifest(s / MANIFEST_NAME)[0])
    for world_dir in worlds:
        world_dir = Path(world_dir)
        assets_dir = world_dir / "assets"
        names: set[str] = set()
        hashes: set[str] = set(known)
        if assets_dir.exists():
            problems += check_store(assets_dir, expect_all_listed=True)
            try:
                entries, files = read_manifest(assets_dir / MANIFEST_NAME)
                hashes |= set(entries)
                names |= set(files.values())
            except ManifestError:
                pass
        for wf in _world_files(world_dir):
            try:
                doc = tomllib.loads(wf.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
                problems.append(f"{wf}: not readable TOML: {e}")
                continue
            for place, ref in world_asset_refs(doc):
                ref_name = ref.removeprefix("assets/")
                if is_sha256(ref):
                    if ref not in hashes:
                        problems.append(f"{wf}: {place}: asset {ref} is in no manifest")
                elif ref_name not in names:
                    if (assets_dir / ref_name).is_file():
                        problems.append(
                            f"{wf}: {place}: {ref} is not in {assets_dir / MANIFEST_NAME} "
                            "(run emachi assets build)"
                        )
                    else:
                        problems.append(
                            f"{wf}: {place}: asset file {assets_dir / ref_name} does not exist"
                        )
    return problems
