"""The shipped Machida city hall: valid, complete, and every object a resident needs is reachable."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import numpy as np
import pytest

from world import check_world, load_world
from world.collision import PORTAL, build_segments, crossings
from world.geometry import points_in_polygon
from world.model import World

ROOT = Path(__file__).resolve().parents[2]
HALL = ROOT / "worlds" / "machida-city-hall"

PROCEDURES = [
    "inkan-certificate",
    "juminhyo",
    "tax-certificate",
    "diaper-bags",
    "moving",
    "koseki",
    "tax-refund",
    "property-tax-ledger",
    "care-insurance",
    "boundary-map",
]
HELPERS = ["moving-checklist", "bulky-garbage"]
THUMBNAILS = ["city-website", "line-official", "graffer"]


@pytest.fixture(scope="module")
def hall() -> World:
    return load_world(HALL)


def test_the_shipped_world_validates_clean() -> None:
    assert [str(p) for p in check_world(HALL)] == []
    assert [str(p) for p in check_world(HALL / "world.toml")] == []


def test_it_has_the_kiosks_the_catalog_expects(hall: World) -> None:
    kinds = {k.id: (k.kind, k.procedure) for k in hall.kiosks}
    for p in PROCEDURES:
        assert kinds[f"kiosk-{p}"] == ("kiosk", p)
    for p in HELPERS:
        assert kinds[f"kiosk-{p}"] == ("helper", p)
    for p in THUMBNAILS:
        assert kinds[f"thumb-{p}"] == ("thumbnail", p)


def test_it_has_the_rooms_of_a_city_hall(hall: World) -> None:
    assert len(hall.floors) >= 2
    assert len(hall.stairs) >= 2
    stage = hall.stage("committee-stage")
    assert stage is not None and stage.screen.width > 0 and stage.speakers
    assert hall.zone(stage.auditorium).audio == "auditorium"  # type: ignore[union-attr]
    modes = {z.audio for z in hall.zones}
    assert modes == {"open", "isolated", "stage", "auditorium", "quiet"}
    assert len(hall.tables) >= 4 and len(hall.booths) >= 2
    assert "市民課" in {c.section for c in hall.counters}
    lobby = hall.zone("zone-lobby")
    assert lobby is not None and lobby.area >= 60 * 40  # room for 1,000 avatars


Grid = tuple[np.ndarray, np.ndarray]


def _reachable(
    world: World, start: tuple[int, float, float], step: float = 0.5
) -> tuple[dict[int, np.ndarray], list[Grid]]:
    """Flood fill over a grid of points per floor, moving only where no wall is crossed.

    Returns the reached grid cells per floor and each floor's grid coordinates.
    """
    segments = build_segments(world)
    grids: list[Grid] = []
    for floor in world.floors:
        xs = np.array([p[0] for p in floor.outline])
        zs = np.array([p[1] for p in floor.outline])
        gx = np.arange(xs.min() + step / 2, xs.max(), step)
        gz = np.arange(zs.min() + step / 2, zs.max(), step)
        grids.append((gx, gz))
    seen = {
        f.index: np.zeros((len(grids[f.index][0]), len(grids[f.index][1])), bool)
        for f in world.floors
    }
    # precompute every edge of every floor at once
    edges: dict[int, dict[tuple[int, int], np.ndarray]] = {}
    for f in range(len(world.floors)):
        gx, gz = grids[f]
        ii, jj = np.meshgrid(np.arange(len(gx)), np.arange(len(gz)), indexing="ij")
        p = np.stack([gx[ii.ravel()], gz[jj.ravel()]], axis=1)
        edges[f] = {}
        for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            d = np.tile([di * step, dj * step], (len(p), 1))
            _, j = crossings(p, d, segments[f].segs)
            edges[f][(di, dj)] = j.reshape(len(gx), len(gz))
    f0, x0, z0 = start
    gx, gz = grids[f0]
    i0, j0 = int(np.argmin(abs(gx - x0))), int(np.argmin(abs(gz - z0)))
    todo = deque([(f0, i0, j0)])
    seen[f0][i0, j0] = True
    while todo:
        f, i, j = todo.popleft()
        for (di, dj), hits in edges[f].items():
            ni, nj, nf = i + di, j + dj, f
            h = int(hits[i, j])
            if h >= 0:
                fs = segments[f]
                if fs.kind[h] != PORTAL:
                    continue
                nf = int(fs.target[h])  # a stair's end: the same point on the other floor
            gx2, gz2 = grids[nf]
            if not (0 <= ni < len(gx2) and 0 <= nj < len(gz2)) or seen[nf][ni, nj]:
                continue
            seen[nf][ni, nj] = True
            todo.append((nf, ni, nj))
    return {f: np.argwhere(s) for f, s in seen.items()}, grids


def test_every_kiosk_counter_table_and_stage_spot_is_reachable_from_the_entrance(
    hall: World,
) -> None:
    spawn = hall.spawns[0]
    reach, grids = _reachable(hall, (spawn.floor, spawn.x, spawn.z))

    def near(floor: int, x: float, z: float, within: float) -> bool:
        gx, gz = grids[floor]
        cells = reach[floor]
        px, pz = gx[cells[:, 0]], gz[cells[:, 1]]
        return bool(np.any(np.hypot(px - x, pz - z) <= within))

    targets = [(k.id, k.floor, k.x, k.z, k.radius) for k in hall.kiosks]
    targets += [(c.id, c.floor, c.x, c.z, 1.5) for c in hall.counters]
    targets += [(t.id, t.floor, t.x, t.z, t.radius + 1.0) for t in hall.tables]
    targets += [(s.id, s.floor, sp.x, sp.z, 1.0) for s in hall.stages for sp in s.speakers]
    targets += [(b.id, b.floor, *_centre(hall, b.zone), 3.0) for b in hall.booths]
    unreachable = [t[0] for t in targets if not near(t[1], t[2], t[3], t[4])]
    assert unreachable == []
    # and the upper floor is reached at all, through the stairs
    assert len(reach[1]) > 1000


def _centre(world: World, zone_id: str) -> tuple[float, float]:
    zone = world.zone(zone_id)
    assert zone is not None
    pts = np.array(zone.polygon)
    x, z = pts.mean(axis=0)
    assert points_in_polygon(x, z, zone.polygon)
    return float(x), float(z)


def test_zone_lookup_in_bulk_agrees_with_one_by_one(hall: World) -> None:
    rng = np.random.default_rng(2)
    floor = rng.integers(0, len(hall.floors), 500)
    pos = rng.uniform([0, 0], [80, 50], (500, 2))
    bulk = hall.zone_indices(floor, pos)
    for i in range(500):
        zone = hall.zone_at(int(floor[i]), float(pos[i, 0]), float(pos[i, 1]))
        assert bulk[i] == (-1 if zone is None else zone.index)
    # nested zones: a table's zone wins over the recruiting hall around it
    table = hall.tables[0]
    assert hall.zone_at(table.floor, table.x + 1.5, table.z).id == table.zone  # type: ignore[union-attr]


def test_audio_profiles_follow_the_web_audio_formulas(hall: World) -> None:
    lobby = hall.zone("zone-lobby")
    assert lobby is not None
    p = lobby.profile  # inverse, ref 2, rolloff 1
    assert p.gain(np.array([0.5, 2.0, 4.0, 12.0])).tolist() == pytest.approx(
        [1.0, 1.0, 0.5, 2 / 12]
    )
    from world.model import AudioProfile

    linear = AudioProfile("linear", 1.0, 11.0, 1.0)
    assert linear.gain(np.array([1.0, 6.0, 20.0])).tolist() == pytest.approx([1.0, 0.5, 0.0])
    expo = AudioProfile("exponential", 1.0, 10.0, 2.0)
    assert expo.gain(np.array([2.0])).tolist() == pytest.approx([0.25])
