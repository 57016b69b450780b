"""``emachi world check`` covers every data file ``emachi serve`` loads from a world folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from server.app import create_app
from server.cli import main
from server.config import ROOT, Config
from server.errors import LoadError

HALL = ROOT / "worlds" / "machida-city-hall"


def copy_hall(tmp_path: Path) -> Path:
    world = tmp_path / "world"
    shutil.copytree(HALL, world, ignore=shutil.ignore_patterns("assets"))
    return world


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_the_shipped_hall_passes_with_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["world", "check", str(HALL)]) == 0
    out = capsys.readouterr().out
    assert "catalog items" in out and "garbage items" in out and out.strip().endswith(": ok")


@pytest.mark.parametrize("name", ["catalog.yaml", "garbage.yaml", "moving.yaml"])
def test_a_truncated_data_file_fails_the_check_as_it_fails_serve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    world = copy_hall(tmp_path)
    bad = world / "catalog" / name
    truncate(bad)
    assert main(["world", "check", str(world)]) == 1
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert lines and all(line.startswith(f"{bad}:") for line in lines), out.out
    # FILE:LINE: PLACE: expected …
    assert "expected" in lines[0] and lines[0][len(f"{bad}:") :].split(":", 1)[0].isdigit()
    assert "1 problem(s)" in out.err
    # serve refuses the same folder with the same line
    with pytest.raises(LoadError) as exc:
        create_app(Config(world=world, data_dir=tmp_path / "data", staff_token="t"))
    assert exc.value.problems == lines


def test_world_and_catalog_problems_are_all_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = copy_hall(tmp_path)
    toml = world / "world.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8").replace('audio = "quiet"', 'audio = "loud"', 1),
        encoding="utf-8",
    )
    truncate(world / "catalog" / "moving.yaml")
    (world / "assets").mkdir()
    (world / "assets" / "manifest.json").write_text('{"version": 1, "assets": ', encoding="utf-8")
    assert main(["world", "check", str(world)]) == 1
    out = capsys.readouterr().out
    assert f"{toml}:" in out and "loud" in out
    assert f"{world / 'catalog' / 'moving.yaml'}:" in out
    assert "manifest.json: not readable JSON" in out
