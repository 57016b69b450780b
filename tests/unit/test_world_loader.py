"""The world loader and validator: every problem reported with its file, place and expectation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from world import WorldError, check_world, load_world
from world.model import World

MINI = """\
format = 1
id = "mini"
name = { ja = "ミニ庁舎", en = "Mini hall" }

[[floors]]
id = "g"
name = { ja = "1階", en = "Ground" }
elevation = 0.0
outline = [[0, 0], [20, 0], [20, 20], [0, 20]]

[[floors]]
id = "u"
name = { ja = "2階", en = "Upper" }
elevation = 4.0
outline = [[0, 0], [20, 0], [20, 20], [0, 20]]

[[walls]]
id = "wall-a"
floor = "g"
points = [[10, 0], [10, 8]]

[[stairs]]
id = "stair-a"
lower = "g"
upper = "u"
start = [15, 4]
end = [15, 12]
width = 2.0

[[zones]]
id = "zone-hall"
floor = "g"
name = { ja = "ホール", en = "Hall" }
polygon = [[0, 10], [10, 10], [10, 20], [0, 20]]
audio = "open"

[[zones]]
id = "zone-stage"
floor = "u"
name = { ja = "ステージ", en = "Stage" }
polygon = [[0, 0], [10, 0], [10, 3], [0, 3]]
audio = "stage"
auditorium = "zone-seats"

[[zones]]
id = "zone-seats"
floor = "u"
name = { ja = "客席", en = "Seats" }
polygon = [[0, 3], [10, 3], [10, 12], [0, 12]]
audio = "auditorium"
profile = { model = "linear", ref_distance = 1.0, max_distance = 10.0, rolloff = 1.0 }

[[spawns]]
id = "spawn-a"
floor = "g"
x = 5.0
z = 15.0
yaw = 0.0

[[kiosks]]
id = "kiosk-juminhyo"
floor = "g"
x = 5.0
z = 5.0
yaw = 0.0
radius = 2.0
kind = "kiosk"
procedure = "juminhyo"
label = { ja = "住民票", en = "Residence certificate" }

[[stages]]
id = "stage-a"
floor = "u"
zone = "zone-stage"
auditorium = "zone-seats"
screen = { x = 5.0, z = 0.3, y = 2.5, width = 4.0, height = 2.5, yaw = 0.0 }
speakers = [{ x = 5.0, z = 1.5, yaw = 0.0 }]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "world.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_mini_world_is_valid(tmp_path: Path) -> None:
    path = write(tmp_path, MINI)
    assert check_world(path) == []
    world = load_world(tmp_path)  # the folder works as well as the file
    assert world.id == "mini"
    assert [f.id for f in world.floors] == ["g", "u"]
    assert world.floors[1].index == 1
    assert world.kiosk("kiosk-juminhyo") is not None
    assert world.kiosk("nope") is None
    assert world.zone_at(1, 5.0, 1.0).id == "zone-stage"  # type: ignore[union-attr]
    assert world.zone_at(0, 15.0, 15.0) is None


# (case, text to replace in MINI, replacement, fragments the report must contain)
BROKEN = [
    (
        "kiosk outside every floor",
        "x = 5.0\nz = 5.0\nyaw = 0.0\nradius",
        "x = 50.0\nz = 5.0\nyaw = 0.0\nradius",
        ["kiosks[0]: expected a position on floor g (inside its outline), got x = 50, z = 5"],
    ),
    (
        "zone that crosses itself",
        "polygon = [[0, 10], [10, 10], [10, 20], [0, 20]]",
        "polygon = [[0, 10], [10, 20], [10, 10], [0, 20]]",
        [
            "zones[0].polygon: expected a simple polygon of at least 3 points, got edges 0 and 2 intersect"
        ],
    ),
    (
        "zone of two points",
        "polygon = [[0, 10], [10, 10], [10, 20], [0, 20]]",
        "polygon = [[0, 10], [10, 10]]",
        ["zones[0].polygon: expected a simple polygon of at least 3 points, got 2 points"],
    ),
    (
        "unknown audio mode",
        'audio = "open"',
        'audio = "loud"',
        ['zones[0].audio: expected one of open, isolated, stage, auditorium, quiet, got "loud"'],
    ),
    (
        "stage zone with no auditorium",
        'audio = "stage"\nauditorium = "zone-seats"',
        'audio = "stage"',
        [
            "zones[1].auditorium: expected the id of the auditorium zone this stage reaches, got nothing"
        ],
    ),
    (
        "stage object with no auditorium",
        'zone = "zone-stage"\nauditorium = "zone-seats"\n',
        'zone = "zone-stage"\n',
        ["stages[0].auditorium: expected a non-empty string, got nothing"],
    ),
    (
        "stage naming an open zone as its auditorium",
        'zone = "zone-stage"\nauditorium = "zone-seats"\n',
        'zone = "zone-stage"\nauditorium = "zone-hall"\n',
        [
            'stages[0].auditorium: expected the id of a zone with audio auditorium on floor u, got "zone-hall" (open on g)'
        ],
    ),
    (
        "duplicate id",
        'id = "kiosk-juminhyo"',
        'id = "wall-a"',
        ['kiosks[0].id: expected an id used once in the world (also walls[0].id), got "wall-a"'],
    ),
    (
        "unknown floor",
        'floor = "g"\nx = 5.0\nz = 5.0',
        'floor = "b1"\nx = 5.0\nz = 5.0',
        ['kiosks[0].floor: expected the id of a floor (g, u), got "b1"'],
    ),
    (
        "wrong type",
        "radius = 2.0",
        'radius = "two"',
        ['kiosks[0].radius: expected a number > 0, got "two"'],
    ),
    (
        "missing field",
        'kind = "kiosk"\n',
        "",
        ["kiosks[0].kind: expected a non-empty string, got nothing"],
    ),
    (
        "unknown key",
        'kind = "kiosk"\n',
        'kind = "kiosk"\ncolour = "red"\n',
        [
            'kiosks[0].colour: expected one of the keys id, floor, x, z, yaw, radius, kind, procedure, label, got unknown key "colour"'
        ],
    ),
    (
        "unknown kiosk kind",
        'kind = "kiosk"',
        'kind = "vending"',
        ['kiosks[0].kind: expected one of kiosk, thumbnail, helper, got "vending"'],
    ),
    (
        "bad distance model",
        'profile = { model = "linear"',
        'profile = { model = "cubic"',
        ['zones[2].profile.model: expected one of inverse, linear, exponential, got "cubic"'],
    ),
    (
        "max distance below ref distance",
        "ref_distance = 1.0, max_distance = 10.0",
        "ref_distance = 1.0, max_distance = 0.5",
        ["zones[2].profile.max_distance: expected a number > ref_distance (1), got 0.5"],
    ),
    (
        "stair going down",
        'lower = "g"\nupper = "u"',
        'lower = "u"\nupper = "g"',
        ["stairs[0].upper: expected a floor above u (elevation > 4), got g at 0"],
    ),
    (
        "stair off its floor",
        "start = [15, 4]\nend = [15, 12]",
        "start = [19.5, 4]\nend = [19.5, 12]",
        ["stairs[0]: expected a ramp whose corners are on floor g, got corner"],
    ),
    (
        "a wall across the stairs",
        "points = [[10, 0], [10, 8]]",
        "points = [[10, 6], [18, 6]]",
        ["stairs[0]: expected a ramp clear of walls on floor g, got a wall across it"],
    ),
    (
        "spawn against a wall",
        "x = 5.0\nz = 15.0",
        "x = 5.0\nz = 19.8",
        [
            "spawns[0]: expected a position at least 0.5 m from every wall, got x = 5, z = 19.8, 0.20 m from one"
        ],
    ),
    (
        "kiosk on the stairs",
        "x = 5.0\nz = 5.0\nyaw = 0.0\nradius",
        "x = 15.0\nz = 8.0\nyaw = 0.0\nradius",
        ["kiosks[0]: expected a position off the stairs, got x = 15, z = 8 on stair-a"],
    ),
    (
        "point that is not a pair",
        "points = [[10, 0], [10, 8]]",
        "points = [[10, 0], [10]]",
        ["walls[0].points[1]: expected a point [x, z] of two finite numbers, got an array of 1"],
    ),
    (
        "wrong format version",
        "format = 1",
        "format = 2",
        ["format: expected format 1, got 2"],
    ),
    (
        "a broken floor does not hide the problems after it",
        "elevation = 0.0",
        'elevation = "ground"',
        ['floors[0].elevation: expected a number, got "ground"'],
    ),
    (
        "a number too large to be metres",
        "x = 5.0\nz = 5.0\nyaw = 0.0\nradius",
        "x = 1e300\nz = 5.0\nyaw = 0.0\nradius",
        ["kiosks[0].x: expected a number, got 1e+300"],
    ),
    (
        "speaker off the stage",
        "speakers = [{ x = 5.0, z = 1.5, yaw = 0.0 }]",
        "speakers = [{ x = 5.0, z = 8.0, yaw = 0.0 }]",
        [
            "stages[0].speakers[0]: expected a spot inside the stage zone zone-stage, got x = 5, z = 8"
        ],
    ),
]


@pytest.mark.parametrize(("case", "old", "new", "fragments"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_world_is_reported_with_its_place(
    tmp_path: Path, case: str, old: str, new: str, fragments: list[str]
) -> None:
    assert old in MINI, case
    path = write(tmp_path, MINI.replace(old, new, 1))
    problems = check_world(path)
    lines = [str(p) for p in problems]
    report = "\n".join(lines)
    for fragment in fragments:
        assert fragment in report
    for line in lines:
        assert line.startswith(f"{path}:")
        assert "\n" not in line
    with pytest.raises(WorldError) as caught:
        load_world(path)
    assert [str(p) for p in caught.value.problems] == lines


def test_a_toml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, MINI.replace('id = "wall-a"', 'id = "wall-a\nfloor = = "g"', 1))
    problems = check_world(path)
    assert len(problems) == 1
    line = str(problems[0])
    # the string opened on line 18 is not closed before the end of that line
    assert line.startswith(f"{path}:18: (document): expected valid TOML, got ")
    assert line.endswith("(column 13)")


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        (
            "radius = 2.0",
            'radius = "two"',
            ':66: kiosks[0].radius: expected a number > 0, got "two"',
        ),
        ('kind = "kiosk"\n', "", ":60: kiosks[0].kind: expected a non-empty string, got nothing"),
        (
            "x = 5.0\nz = 5.0\nyaw = 0.0\nradius",
            "x = 50.0\nz = 5.0\nyaw = 0.0\nradius",
            ":60: kiosks[0]: expected a position on floor g",
        ),
        ('model = "linear"', 'model = "cubic"', ":51: zones[2].profile.model: expected one of"),
        (
            "{ x = 5.0, z = 1.5, yaw = 0.0 }]",
            "{ x = 5.0, z = 1.5, yaw = 0.0 },\n  { x = 5.0, z = 8.0, yaw = 0.0 }]",
            ":78: stages[0].speakers[1]: expected a spot inside the stage zone",
        ),
    ],
)
def test_each_problem_names_the_line_of_its_place(
    tmp_path: Path, old: str, new: str, says: str
) -> None:
    path = write(tmp_path, MINI.replace(old, new, 1))
    report = "\n".join(str(p) for p in check_world(path))
    assert f"{path}{says}" in report, report


def test_every_problem_is_reported_not_only_the_first(tmp_path: Path) -> None:
    text = (
        MINI.replace('audio = "open"', 'audio = "loud"', 1)
        .replace("radius = 2.0", "radius = -1", 1)
        .replace('id = "kiosk-juminhyo"', 'id = "wall-a"', 1)
        .replace('floor = "g"\nx = 5.0\nz = 15.0', 'floor = "b1"\nx = 5.0\nz = 15.0', 1)
    )
    report = "\n".join(str(p) for p in check_world(write(tmp_path, text)))
    assert "zones[0].audio:" in report
    assert "kiosks[0].radius: expected a number > 0, got -1" in report
    assert "kiosks[0].id: expected an id used once" in report
    assert 'spawns[0].floor: expected the id of a floor (g, u), got "b1"' in report


def test_a_missing_file_is_one_problem(tmp_path: Path) -> None:
    problems = check_world(tmp_path / "nowhere")
    assert [str(p) for p in problems] == [
        f"{tmp_path / 'nowhere'}:1: (file): expected a world file (world.toml or its folder), got no such file"
    ]


def test_content_hash_is_the_sha256_of_the_file(tmp_path: Path) -> None:
    import hashlib

    path = write(tmp_path, MINI)
    world = load_world(path)
    assert world.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    path.write_text(MINI + "\n# a comment changes the hash\n", encoding="utf-8")
    assert load_world(path).content_hash != world.content_hash


def test_the_client_form_is_json_with_everything_to_draw(tmp_path: Path) -> None:
    world = load_world(write(tmp_path, MINI))
    client = json.loads(json.dumps(world.to_client()))
    for key in (
        "id",
        "name",
        "content_hash",
        "floors",
        "walls",
        "stairs",
        "zones",
        "kiosks",
        "counters",
        "stages",
        "tables",
        "spawns",
        "booths",
        "decor",
    ):
        assert key in client
    assert client["stages"][0]["screen"]["width"] == 4.0
    assert client["zones"][1]["auditorium"] == "zone-seats"
    assert client["floors"][1] == {
        "id": "u",
        "index": 1,
        "name": {"ja": "2階", "en": "Upper"},
        "elevation": 4.0,
        "outline": [[0.0, 0.0], [20.0, 0.0], [20.0, 20.0], [0.0, 20.0]],
    }


def test_world_is_a_frozen_value(tmp_path: Path) -> None:
    world = load_world(write(tmp_path, MINI))
    assert isinstance(world, World)
    with pytest.raises(AttributeError):
        world.id = "other"  # type: ignore[misc]
