"""A counter's world fields (procedures, hours, booths, slot_minutes): read, and refused with the
file, the place and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_world_loader import MINI, write
from world import WorldError, check_world, load_world

BOOTHS = """
[[zones]]
id = "zone-booth-1"
floor = "g"
name = { ja = "ブース", en = "Booth" }
polygon = [[12, 14], [18, 14], [18, 18], [12, 18]]
audio = "isolated"
"""

COUNTER = """
[[counters]]
id = "counter-a"
floor = "g"
x = 5.0
z = 12.0
label = { ja = "市民課", en = "Citizens" }
section = "市民課"
"""

FIELDS = (
    'procedures = ["juminhyo"]\nhours = { days = "mon-fri", open = "08:30", close = "17:00" }\n'
)


def test_defaults_and_given_values(tmp_path: Path) -> None:
    path = write(tmp_path, MINI + BOOTHS + COUNTER)
    c = load_world(path).counters[0]
    assert (c.procedures, c.booths, c.slot_minutes) == ((), ("zone-booth-1",), 20)
    assert (c.hours.open, c.hours.close, sorted(c.hours.weekdays)) == (
        "08:30",
        "17:00",
        [0, 1, 2, 3, 4],
    )
    path = write(
        tmp_path,
        MINI + BOOTHS + COUNTER + FIELDS + 'booths = ["zone-booth-1"]\nslot_minutes = 30\n',
    )
    c = load_world(path).counters[0]
    assert (c.procedures, c.slot_minutes) == (("juminhyo",), 30)


BROKEN = [
    ('procedures = "juminhyo"', "counters[0].procedures: expected an array of ids"),
    ('hours = "weekdays"', "counters[0].hours: expected a table"),
    ('hours = { days = "mon-fri", open = "8:30", close = "17:00" }', 'counters[0].hours.open: expected a time "HH:MM"'),
    ('hours = { days = "weekdays", open = "08:30", close = "17:00" }', "counters[0].hours.days: expected days like"),
    ('hours = { days = "fri-mon", open = "08:30", close = "17:00" }', "counters[0].hours.days: expected days like"),
    ('hours = { days = "mon", open = "17:00", close = "08:30" }', "counters[0].hours.close: expected a time after the opening 17:00"),
    ('hours = { days = "mon", open = "08:30" }', "counters[0].hours.close: expected a non-empty string"),
    ('booths = ["zone-hall"]', "counters[0].booths[0]: expected the id of a zone with audio isolated on floor g"),
    ('booths = ["zone-nowhere"]', "counters[0].booths[0]: expected the id of a zone with audio isolated"),
    ("slot_minutes = 0", "counters[0].slot_minutes: expected an integer >= 1"),
]  # fmt: skip


@pytest.mark.parametrize(("line", "fragment"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_bad_counter_field_names_its_place(tmp_path: Path, line: str, fragment: str) -> None:
    path = write(tmp_path, MINI + BOOTHS + COUNTER + line + "\n")
    report = "\n".join(str(p) for p in check_world(path))
    assert fragment in report and report.startswith(f"{path}:")
    with pytest.raises(WorldError):
        load_world(path)


def test_the_machida_counters_have_procedures_hours_and_booths() -> None:
    from server.config import ROOT
    from server.kiosk.catalog import load_catalog

    world = load_world(ROOT / "worlds" / "machida-city-hall")
    catalog = load_catalog(ROOT / "worlds" / "machida-city-hall" / "catalog" / "catalog.yaml")
    assert len(world.counters) == 6
    for c in world.counters:
        assert c.procedures and all(p in catalog.items for p in c.procedures), c.id
        assert c.booths and c.hours.text() == "08:30-17:00" and c.slot_minutes == 20
