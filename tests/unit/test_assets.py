"""The asset store, manifest builder and checker, on real files in a temporary folder."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest

from assets_manifest.build import BuildError, build_manifest, check
from assets_manifest.cli import build_main, check_main
from assets_manifest.store import AssetEntry, AssetStore, ManifestError, read_manifest

SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>'


def _world(tmp: Path, refs: str = 'thumbnail = "thumbnails/line.svg"') -> Path:
    w = tmp / "worlds" / "hall"
    (w / "assets" / "thumbnails").mkdir(parents=True)
    (w / "assets" / "thumbnails" / "line.svg").write_bytes(SVG)
    (w / "assets" / "sources.toml").write_text(
        '[[asset]]\nmatch = "thumbnails/*.svg"\nlicence = "CC0-1.0"\nsource = "drawn for emachi"\n'
    )
    (w / "world.toml").write_text(f'id = "hall"\n[[kiosks]]\nid = "k1"\n{refs}\n')
    return w


def test_put_names_the_file_by_its_hash_and_remembers_it(tmp_path: Path) -> None:
    store = AssetStore(tmp_path)
    e = store.put(b"hello", media_type="audio/ogg", licence="CC0-1.0", source="tts", lod="phone")
    sha = hashlib.sha256(b"hello").hexdigest()
    assert e == AssetEntry(sha, 5, "audio/ogg", "CC0-1.0", "tts", "phone")
    assert store.path(sha) == tmp_path / sha
    assert (tmp_path / sha).read_bytes() == b"hello"
    # a second store on the same folder (another process) sees it through the manifest
    assert AssetStore(tmp_path).get(sha) == e
    assert AssetStore(tmp_path).get("0" * 64) is None


def test_put_is_idempotent(tmp_path: Path) -> None:
    store = AssetStore(tmp_path)
    a = store.put(b"x", media_type="audio/ogg", licence="CC0-1.0", source="tts")
    b = store.put(b"x", media_type="audio/ogg", licence="CC0-1.0", source="tts")
    assert a == b
    assert store.entries() == [a]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == sorted(
        [a.sha256, "manifest.json"]
    )


def test_two_stores_on_one_folder_do_not_lose_each_others_entries(tmp_path: Path) -> None:
    one, two = AssetStore(tmp_path), AssetStore(tmp_path)

    def fill(store: AssetStore, tag: str) -> None:
        for i in range(20):
            store.put(f"{tag}{i}".encode(), media_type="audio/ogg", licence="CC0-1.0", source="t")

    threads = [threading.Thread(target=fill, args=(s, t)) for s, t in ((one, "a"), (two, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(AssetStore(tmp_path).entries()) == 40


def test_put_rejects_an_unknown_lod(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="lod"):
        AssetStore(tmp_path).put(b"x", media_type="a/b", licence="l", source="s", lod="tablet")


def test_a_bad_manifest_names_the_file_and_the_key(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(
        json.dumps(
            {"version": 1, "assets": {"ab" * 32: {"size": 1, "media_type": "x", "licence": "l"}}}
        )
    )
    with pytest.raises(ManifestError) as err:
        read_manifest(tmp_path / "manifest.json")
    assert str(tmp_path / "manifest.json") in str(err.value)
    assert "missing source" in str(err.value)


def test_build_then_check_is_clean(tmp_path: Path) -> None:
    w = _world(tmp_path)
    [entry] = build_manifest(w / "assets")
    assert entry.media_type == "image/svg+xml"
    assert entry.licence == "CC0-1.0"
    store = AssetStore(w / "assets")
    assert store.path(entry.sha256).read_bytes() == SVG
    assert check([w]) == []


def test_check_finds_a_changed_file(tmp_path: Path) -> None:
    w = _world(tmp_path)
    build_manifest(w / "assets")
    (w / "assets" / "thumbnails" / "line.svg").write_bytes(SVG + b" ")
    problems = check([w])
    assert any("line.svg" in p and "size" in p for p in problems), problems
    assert any("line.svg" in p and "sha256" in p for p in problems), problems


def test_check_finds_a_missing_reference_and_says_where(tmp_path: Path) -> None:
    w = _world(tmp_path, refs='thumbnail = "thumbnails/gone.svg"')
    build_manifest(w / "assets")
    [problem] = check([w])
    assert "world.toml" in problem and "kiosks[0].thumbnail" in problem and "gone.svg" in problem


def test_check_finds_an_unlisted_file(tmp_path: Path) -> None:
    w = _world(tmp_path)
    build_manifest(w / "assets")
    (w / "assets" / "thumbnails" / "new.svg").write_bytes(b"<svg/>")
    assert any("new.svg" in p and "emachi assets build" in p for p in check([w]))


def test_build_refuses_a_file_without_licence(tmp_path: Path) -> None:
    w = _world(tmp_path)
    (w / "assets" / "model.glb").write_bytes(b"glTF")
    with pytest.raises(BuildError) as err:
        build_manifest(w / "assets")
    assert "model.glb" in str(err.value)
    assert not (w / "assets" / "manifest.json").exists()


def test_cli_build_and_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = _world(tmp_path)
    root = str(w.parent)
    assert build_main(["--worlds-dir", root]) == 0
    assert check_main(["--worlds-dir", root, "--store", str(tmp_path / "var")]) == 0
    assert "assets ok" in capsys.readouterr().out
    (w / "assets" / "thumbnails" / "line.svg").write_bytes(b"changed")
    assert check_main(["--worlds-dir", root, "--store", str(tmp_path / "var")]) == 1
    assert "line.svg" in capsys.readouterr().out
