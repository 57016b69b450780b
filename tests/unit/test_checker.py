"""The one checker behind the world file, the kiosk data and the briefing scripts: each reports a
place as ``FILE:LINE: PLACE: expected ..., got ...`` with the same words."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from server.briefing.script import ScriptError, parse_script
from server.kiosk.catalog import load_catalog
from server.kiosk.datafile import DataError
from world import check_world
from world.checker import toml_lines, yaml_lines

ROOT = Path(__file__).resolve().parents[2]
WORLD = ROOT / "worlds" / "machida-city-hall"
SHAPE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): (?P<place>\S+): expected .+$")

TRICKY_TOML = '''\
a = """x
\\""" y"""
s = "a\\"b" # comment ]
lit = \'\'\'it's
two\'\'\'
[t."q.k"]
z = [1,
 # a comment
 2]
[[arr]]
[arr.sub]
k = 1
[[arr]]
[[arr.x]]
y = { p = [{ q = 1 },
  { q = 2 }] }
'''


def test_toml_lines_follow_tables_arrays_strings_and_comments() -> None:
    tomllib.loads(TRICKY_TOML)  # the scan only ever sees valid TOML
    lines = toml_lines(TRICKY_TOML)
    assert lines["s"] == 3
    assert lines["lit"] == 4
    assert lines["t.q.k.z[1]"] == 9
    assert lines["arr[0].sub.k"] == 12
    assert lines["arr[1]"] == 13
    assert lines["arr[1].x[0].y.p[1]"] == 16
    assert lines["arr[1].x[0].y.p[1].q"] == 16


def test_yaml_lines_name_the_key_of_each_value() -> None:
    lines = yaml_lines(yaml.compose("a:\n  b:\n    - 1\n    - c: 2\n", Loader=yaml.SafeLoader))
    assert lines == {"": 1, "a": 1, "a.b": 2, "a.b[0]": 3, "a.b[1]": 4, "a.b[1].c": 4}


def _world_problem(tmp_path: Path) -> str:
    text = (WORLD / "world.toml").read_text(encoding="utf-8")
    (tmp_path / "world.toml").write_text(text.replace("\nsection = ", "\nsectio = ", 1))
    return next(str(p) for p in check_world(tmp_path) if ".section:" in str(p))


def _catalog_problem(tmp_path: Path) -> str:
    d = yaml.safe_load((WORLD / "catalog" / "catalog.yaml").read_text(encoding="utf-8"))
    del d["items"][0]["id"]
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(d, allow_unicode=True))
    (tmp_path / "allowlist.txt").write_text((WORLD / "catalog" / "allowlist.txt").read_text())
    with pytest.raises(DataError) as e:
        load_catalog(tmp_path / "catalog.yaml")
    return next(p for p in e.value.problems if "items[0].id:" in p)


def _script_problem(tmp_path: Path) -> str:
    text = "format: emachi-briefing/1\ntitle: t\ndate: 2024-01-01\ncast:\n  - avatar: a\n"
    text += "    voice: ja-openjtalk\n    name: A\nsegments: []\n"
    with pytest.raises(ScriptError) as e:
        parse_script(text, str(tmp_path / "x.yaml"))
    return next(p for p in e.value.problems if "cast[0].role:" in p)


def test_a_missing_string_is_reported_the_same_way_in_every_kind_of_file(tmp_path: Path) -> None:
    found = [
        _world_problem(tmp_path),
        _catalog_problem(tmp_path),
        _script_problem(tmp_path),
    ]
    for line in found:
        m = SHAPE.match(line)
        assert m is not None, line
        assert int(m["line"]) > 1, line  # the line of the entry that lacks the key
        assert line.endswith(": expected a non-empty string, got nothing"), line
