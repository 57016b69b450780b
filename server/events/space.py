"""Where people stand at an event: the recruiting hall, its tables' seats, the stage's spots and
its auditorium, computed once from the world. Pure (numpy through ``world.geometry``).

A hall is a zone of the world that holds tables (the Machida world's recruiting hall holds six).
The stage is the world's stage on the hall's floor; while it is live the guests are gathered in
its auditorium, facing it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from world.geometry import points_in_polygon
from world.model import Stage, Table, World, Zone

__all__ = ["Spot", "HallLayout", "halls", "shuffle_tables"]

Spot = tuple[float, float, float]  # x, z, yaw
SEAT_GAP = 0.9  # metres from a table's edge to a seat
GRID = 1.5  # metres between two gathering spots


@dataclass(frozen=True, slots=True)
class HallLayout:
    """A hall's places: its floor index, its tables (with seats), the stage, and spots."""

    zone: Zone
    floor: int
    tables: dict[str, Table]
    seats: dict[str, tuple[Spot, ...]]
    stage: Stage | None
    stage_spots: tuple[Spot, ...]
    gather: tuple[Spot, ...]  # in the stage's auditorium, nearest the stage first
    lounge: tuple[Spot, ...]  # in the hall, away from the tables
    table_zones: dict[str, Zone]

    def table_of(self, floor: int, x: float, z: float) -> str:
        """The table whose zone holds ``(x, z)`` on ``floor``, or ""."""
        if floor != self.floor:
            return ""
        for tid, zone in self.table_zones.items():
            if zone.contains(x, z):
                return tid
        return ""


def _face(x: float, z: float, tx: float, tz: float) -> float:
    return math.atan2(tx - x, tz - z)


def _seats(t: Table) -> tuple[Spot, ...]:
    out: list[Spot] = []
    for ring in range(2):  # a second ring when more people than seats sit at a table
        r = t.radius + SEAT_GAP + ring * 1.0
        n = max(1, t.seats) * (ring + 1)
        for k in range(n):
            a = 2 * math.pi * (k + 0.5 * ring) / n
            x, z = t.x + r * math.sin(a), t.z + r * math.cos(a)
            out.append((x, z, _face(x, z, t.x, t.z)))
    return tuple(out)


def _grid(
    polygon: Sequence[tuple[float, float]], avoid: Sequence[Sequence[tuple[float, float]]]
) -> list[tuple[float, float]]:
    xs = [p[0] for p in polygon]
    zs = [p[1] for p in polygon]
    pts: list[tuple[float, float]] = []
    x = min(xs) + 1.0
    while x <= max(xs) - 1.0:
        z = min(zs) + 1.0
        while z <= max(zs) - 1.0:
            if bool(points_in_polygon(x, z, polygon)) and not any(
                bool(points_in_polygon(x, z, a)) for a in avoid
            ):
                pts.append((x, z))
            z += GRID
        x += GRID
    return pts


def _centre(polygon: Sequence[tuple[float, float]]) -> tuple[float, float]:
    return sum(p[0] for p in polygon) / len(polygon), sum(p[1] for p in polygon) / len(polygon)


def halls(world: World) -> dict[str, HallLayout]:
    """Every hall of ``world`` (a zone, not isolated, holding at least one table), by zone id."""
    out: dict[str, HallLayout] = {}
    for zone in world.zones:
        if zone.audio == "isolated":  # a table's or a booth's own zone, not a hall
            continue
        tables = {
            t.id: t
            for t in world.tables
            if t.floor == zone.floor and bool(points_in_polygon(t.x, t.z, zone.polygon))
        }
        if not tables:
            continue
        table_zones = {tid: world.zone(t.zone) for tid, t in tables.items()}
        tz = {tid: zn for tid, zn in table_zones.items() if zn is not None}
        stage = next((s for s in world.stages if s.floor == zone.floor), None)
        stage_spots: tuple[Spot, ...] = ()
        gather: list[Spot] = []
        if stage is not None:
            sz = world.zone(stage.zone)
            aud = world.zone(stage.auditorium)
            stage_spots = tuple((s.x, s.z, s.yaw) for s in stage.speakers)
            if sz is not None and aud is not None:
                cx, cz = _centre(sz.polygon)
                pts = _grid(aud.polygon, [sz.polygon])
                pts.sort(key=lambda p: (p[0] - cx) ** 2 + (p[1] - cz) ** 2)
                gather = [(x, z, _face(x, z, stage.screen.x, stage.screen.z)) for x, z in pts]
        lounge_pts = _grid(zone.polygon, [zn.polygon for zn in tz.values()])
        hx, hz = _centre(zone.polygon)
        lounge_pts.sort(key=lambda p: (p[0] - hx) ** 2 + (p[1] - hz) ** 2)
        layout = HallLayout(
            zone=zone,
            floor=zone.floor,
            tables=tables,
            seats={tid: _seats(t) for tid, t in tables.items()},
            stage=stage,
            stage_spots=stage_spots,
            gather=tuple(gather) or tuple((x, z, 0.0) for x, z in lounge_pts),
            lounge=tuple((x, z, 0.0) for x, z in lounge_pts),
            table_zones=tz,
        )
        out[zone.id] = layout
    return out


def shuffle_tables(people: Sequence[str], tables: Sequence[str], seed: str) -> dict[str, str]:
    """Deal ``people`` out over ``tables`` in a random order (reproducible from ``seed``), as evenly
    as they go: table sizes differ by one at most."""
    if not tables:
        return {}
    order = list(people)
    random.Random(seed).shuffle(order)
    return {p: tables[i % len(tables)] for i, p in enumerate(order)}
