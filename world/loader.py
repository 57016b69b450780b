"""Load and validate a world file (``docs/world-format.md``).

:func:`load_world` returns a :class:`~world.model.World` or raises :class:`WorldError` carrying
every problem found; :func:`check_world` returns the problems. Reading happens in two passes: the
first checks each entry's keys and types and builds what it can, the second checks references and
geometry between entries, so one run reports all problems, not only the first.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from world.checker import Unreadable, parse_toml, read_source
from world.collision import build_segments, crossings
from world.geometry import (
    distance_to_segments,
    point_in_polygon,
    point_on_boundary,
    polygon_area,
    polygon_edges,
    polygon_problem,
    segments_cross,
)
from world.model import (
    AUDIO_MODES,
    DEFAULT_HOURS,
    DISTANCE_MODELS,
    KIOSK_KINDS,
    WEEKDAYS,
    AudioProfile,
    Booth,
    Counter,
    Decor,
    Floor,
    Hours,
    Kiosk,
    Screen,
    Spawn,
    SpeakerSpot,
    Stage,
    Stair,
    Table,
    Text,
    Wall,
    World,
    Zone,
)
from world.problems import WorldError, WorldProblem
from world.schema import (
    FORMAT,
    HOURS,
    ID_PATTERN,
    PROFILE,
    SCREEN,
    SECTIONS,
    SPOT,
    TOP,
    Reader,
    describe,
    fmt,
    sub,
    top_value_ok,
)

__all__ = ["load_world", "check_world", "world_file", "World", "WorldError", "WorldProblem"]

SPAWN_CLEARANCE = 0.5
KIOSK_CLEARANCE = 0.1
_LANDING = 0.5


def world_file(path: str | Path) -> Path:
    """The world file for ``path``: the path itself, or ``world.toml`` inside a folder."""
    p = Path(path)
    return p / "world.toml" if p.is_dir() else p


def check_world(path: str | Path) -> list[WorldProblem]:
    """Every problem of the world at ``path`` (a ``world.toml`` or its folder); empty if valid."""
    return _read(world_file(path))[1]


def load_world(path: str | Path) -> World:
    """Load and validate the world at ``path`` (a ``world.toml`` or its folder).

    Raises:
        WorldError: the file is missing, does not parse or does not validate; ``problems``
            lists every problem, each a one-line ``FILE:PLACE: expected ..., got ...``.
    """
    world, problems = _read(world_file(path))
    if problems or world is None:
        raise WorldError(problems)
    return world


def _on_floor(x: float, z: float, floor: Floor) -> bool:
    return point_in_polygon(x, z, floor.outline) or point_on_boundary(x, z, floor.outline)


def _read(path: Path) -> tuple[World | None, list[WorldProblem]]:
    try:
        data_bytes, text = read_source(path, "a world file (world.toml or its folder)")
        data, lines = parse_toml(text, str(path))
    except Unreadable as exc:
        return None, [exc.problem]
    r = Reader(str(path), lines)
    world = _build(data, r, hashlib.sha256(data_bytes).hexdigest())
    return (world if not r.problems else None), r.problems


def _build(data: dict[str, Any], r: Reader, content_hash: str) -> World | None:
    """Read every section in dependency order; the world, or ``None`` when a problem was found."""
    b = _Builder(data, r, content_hash)
    b.read_top()
    b.read_floors()
    b.read_walls()
    b.read_stairs()
    b.read_zones()
    b.read_decor()
    b.check_landings()
    b.read_spawns()
    b.read_kiosks()
    b.read_counters()
    b.read_stages()
    b.read_tables()
    b.read_booths()
    return b.world()


class _Builder:
    """What one read of a world file shares between its sections: the reader, the ids seen and
    the objects built so far (later sections refer to floors and zones, and keep clear of walls,
    stairs and solid decor)."""

    __slots__ = (
        "data",
        "r",
        "content_hash",
        "top",
        "default",
        "ids",
        "floors",
        "floor_by_id",
        "complete_floors",
        "outlines_ok",
        "walls",
        "stairs",
        "zones",
        "zone_by_id",
        "decor",
        "segments",
        "spawns",
        "kiosks",
        "counters",
        "stages",
        "tables",
        "booths",
    )

    def __init__(self, data: dict[str, Any], r: Reader, content_hash: str) -> None:
        self.data = data
        self.r = r
        self.content_hash = content_hash
        self.top: dict[str, Any] = {}
        self.default = AudioProfile()
        self.ids: dict[str, str] = {}
        self.floors: list[Floor] = []
        self.floor_by_id: dict[str, Floor] = {}
        self.complete_floors = False
        self.outlines_ok = True
        self.walls: list[Wall] = []
        self.stairs: list[Stair] = []
        self.zones: list[Zone] = []
        self.zone_by_id: dict[str, Zone] = {}
        self.decor: list[Decor] = []
        self.segments: list[Any] | None = None
        self.spawns: list[Spawn] = []
        self.kiosks: list[Kiosk] = []
        self.counters: list[Counter] = []
        self.stages: list[Stage] = []
        self.tables: list[Table] = []
        self.booths: list[Booth] = []

    # shared look-ups ---------------------------------------------------------------------------

    def entries(self, section: str) -> list[tuple[int, str, dict[str, Any]]]:
        """The checked entries of ``section`` (index, place, values); each id is noted once."""
        out = []
        tables = self.top.get(section) if isinstance(self.top.get(section), list) else []
        for i, tbl in enumerate(tables or []):
            place = f"{section}[{i}]"
            vals = self.r.fields(tbl, SECTIONS[section], place)
            oid = tbl.get("id")
            if isinstance(oid, str) and ID_PATTERN.match(oid):
                if oid in self.ids:
                    self.r.add(
                        f"{place}.id",
                        f"an id used once in the world (also {self.ids[oid]}.id)",
                        describe(oid),
                    )
                else:
                    self.ids[oid] = place
            if vals is not None:
                out.append((i, place, vals))
        return out

    def floor_of(self, place: str, key: str, fid: str) -> Floor | None:
        fl = self.floor_by_id.get(fid)
        if fl is None and self.complete_floors:
            names = ", ".join(self.floor_by_id) or "none"
            self.r.add(f"{place}.{key}", f"the id of a floor ({names})", describe(fid))
        return fl

    def zone_ref(self, place: str, key: str, zid: str, fl: Floor, mode: str) -> Zone | None:
        zn = self.zone_by_id.get(zid)
        if zn is None or zn.audio != mode or zn.floor != fl.index:
            found = describe(zid) + (f" ({zn.audio} on {zn.floor_id})" if zn else "")
            self.r.add(
                f"{place}.{key}", f"the id of a zone with audio {mode} on floor {fl.id}", found
            )
            return None
        return zn

    def placed(self, place: str, fl: Floor, x: float, z: float, clearance: float) -> bool:
        """Whether ``(x, z)`` is on ``fl``, ``clearance`` from its walls, off stairs and decor."""
        r = self.r
        if not point_in_polygon(x, z, fl.outline):
            r.add(place, f"a position on floor {fl.id} (inside its outline)", _describe_xz(x, z))
            return False
        if clearance <= 0 or self.segments is None:
            return True
        walls_f = self.segments[fl.index].walls
        dist = float(distance_to_segments(x, z, walls_f).min()) if len(walls_f) else math.inf
        if dist < clearance:
            r.add(
                place,
                f"a position at least {fmt(clearance)} m from every wall",
                f"{_describe_xz(x, z)}, {dist:.2f} m from one",
            )
            return False
        for st in self.stairs:
            if fl.index in (st.lower, st.upper) and point_in_polygon(x, z, st.corners()):
                r.add(place, "a position off the stairs", f"{_describe_xz(x, z)} on {st.id}")
                return False
        for item in self.decor:
            if item.solid and item.floor == fl.index and point_in_polygon(x, z, item.footprint()):
                r.add(place, "a position outside solid decor", f"{_describe_xz(x, z)} in {item.id}")
                return False
        return True

    # sections, in the order they depend on each other ------------------------------------------

    def read_top(self) -> None:
        r, data = self.r, self.data
        top = r.fields(data, TOP, "")
        self.top = top or {k: (data.get(k) if top_value_ok(k, data) else None) for k in TOP}
        if self.top.get("format") not in (None, FORMAT):
            r.add("format", f"format {FORMAT}", describe(self.top["format"]))
        audio = self.top.get("audio")
        if isinstance(audio, dict):
            for key in audio:
                if key != "profile":
                    r.add(f"audio.{key}", "only the key profile", f"unknown key {describe(key)}")
            if "profile" in audio:
                self.default = _profile(r, audio["profile"], "audio.profile") or self.default

    def read_floors(self) -> None:
        """Floors come first: everything else refers to them."""
        raw = self.top.get("floors") if isinstance(self.top.get("floors"), list) else []
        if isinstance(self.data.get("floors"), list) and not self.data["floors"]:
            self.r.add("floors", "at least one floor", "an empty array")
        for i, place, v in self.entries("floors"):
            why = polygon_problem(v["outline"])
            if why is not None:
                self.r.add(f"{place}.outline", "a simple polygon of at least 3 points", why)
                self.outlines_ok = False
            fl = Floor(v["id"], i, v["name"], v["elevation"], v["outline"])
            self.floors.append(fl)
            self.floor_by_id[fl.id] = fl
        self.complete_floors = len(self.floors) == len(raw or [])

    def read_walls(self) -> None:
        for _, place, v in self.entries("walls"):
            fl = self.floor_of(place, "floor", v["floor"])
            if fl is None:
                continue
            if len(v["points"]) < 2:
                self.r.add(f"{place}.points", "at least 2 points", f"{len(v['points'])}")
                continue
            for j, (x, z) in enumerate(v["points"]):
                if not _on_floor(x, z, fl):
                    self.r.add(
                        f"{place}.points[{j}]", f"a point on floor {fl.id}", _describe_pt((x, z))
                    )
            self.walls.append(
                Wall(
                    v["id"], fl.index, fl.id, v["points"], v["thickness"] or 0.2, v["height"] or 3.0
                )
            )

    def read_stairs(self) -> None:
        for _, place, v in self.entries("stairs"):
            st = self._stair(place, v)
            if st is not None:
                self.stairs.append(st)

    def _stair(self, place: str, v: dict[str, Any]) -> Stair | None:
        lo = self.floor_of(place, "lower", v["lower"])
        hi = self.floor_of(place, "upper", v["upper"])
        if lo is None or hi is None:
            return None
        if hi.elevation <= lo.elevation:
            self.r.add(
                f"{place}.upper",
                f"a floor above {lo.id} (elevation > {fmt(lo.elevation)})",
                f"{hi.id} at {fmt(hi.elevation)}",
            )
            return None
        if math.dist(v["start"], v["end"]) < 0.1:
            self.r.add(f"{place}.end", "a point at least 0.1 m from start", _describe_pt(v["end"]))
            return None
        st = Stair(v["id"], lo.index, hi.index, lo.id, hi.id, v["start"], v["end"], v["width"])
        bad = [c for c in st.corners() if not _on_floor(*c, lo)]
        if bad:
            self.r.add(
                place,
                f"a ramp whose corners are on floor {lo.id}",
                "corner " + _describe_pt(bad[0]) + " outside it",
            )
            return None
        return st

    def read_zones(self) -> None:
        places: dict[str, str] = {}
        for _, place, v in self.entries("zones"):
            zn = self._zone(place, v)
            if zn is not None:
                self.zones.append(zn)
                places[zn.id] = place
        self.zone_by_id = {zn.id: zn for zn in self.zones}
        self._check_zone_links(places)

    def _zone(self, place: str, v: dict[str, Any]) -> Zone | None:
        r = self.r
        fl = self.floor_of(place, "floor", v["floor"])
        good = fl is not None
        if v["audio"] not in AUDIO_MODES:
            r.add(f"{place}.audio", "one of " + ", ".join(AUDIO_MODES), describe(v["audio"]))
            good = False
        why = polygon_problem(v["polygon"])
        if why is not None:
            r.add(f"{place}.polygon", "a simple polygon of at least 3 points", why)
            good = False
        elif fl is not None:
            for j, (x, z) in enumerate(v["polygon"]):
                if not _on_floor(x, z, fl):
                    r.add(
                        f"{place}.polygon[{j}]", f"a point on floor {fl.id}", _describe_pt((x, z))
                    )
                    good = False
        profile = self.default
        if v["profile"] is not None:
            prof = _profile(r, v["profile"], f"{place}.profile")
            good = good and prof is not None
            profile = prof or self.default
        if v["audio"] == "stage" and v["auditorium"] is None:
            r.add(
                f"{place}.auditorium", "the id of the auditorium zone this stage reaches", "nothing"
            )
        if v["audio"] != "stage" and v["auditorium"] is not None and v["audio"] in AUDIO_MODES:
            r.add(
                f"{place}.auditorium",
                "no auditorium on a zone that is not a stage",
                describe(v["auditorium"]),
            )
        if not good or fl is None:
            return None
        return Zone(
            v["id"],
            len(self.zones),
            fl.index,
            fl.id,
            v["name"],
            v["polygon"],
            v["audio"],
            profile,
            v["auditorium"],
            abs(polygon_area(v["polygon"])),
        )

    def _check_zone_links(self, places: dict[str, str]) -> None:
        """Each stage names an auditorium on its floor; no two zones' edges cross."""
        for zn in self.zones:
            if zn.audio == "stage" and zn.auditorium is not None:
                linked = self.zone_by_id.get(zn.auditorium)
                if linked is None or linked.audio != "auditorium" or linked.floor != zn.floor:
                    self.r.add(
                        f"{places[zn.id]}.auditorium",
                        f"the id of an auditorium zone on floor {zn.floor_id}",
                        describe(zn.auditorium),
                    )
        for a_i, a in enumerate(self.zones):
            for b in self.zones[a_i + 1 :]:
                if a.floor == b.floor and _edges_cross(a.polygon, b.polygon):
                    self.r.add(
                        f"{places[b.id]}.polygon",
                        f"a zone nested in or apart from {a.id} (edges may not cross)",
                        "crossing edges",
                    )

    def read_decor(self) -> None:
        for _, place, v in self.entries("decor"):
            fl = self.floor_of(place, "floor", v["floor"])
            if fl is None:
                continue
            if not _on_floor(v["x"], v["z"], fl):
                self.r.add(place, f"a position on floor {fl.id}", _describe_xz(v["x"], v["z"]))
                continue
            self.decor.append(
                Decor(
                    v["id"],
                    fl.index,
                    fl.id,
                    v["kind"],
                    v["x"],
                    v["z"],
                    v["yaw"] or 0.0,
                    v["size"],
                    bool(v["solid"]),
                    v["label"],
                )
            )

    def check_landings(self) -> None:
        """Build the wall segments for clearance checks, then check each stair's landings.

        They need every floor's outline; without them those checks wait for a fix.
        """
        if not (self.floors and self.complete_floors and self.outlines_ok):
            return
        partial = World(
            path=self.r.file,
            id="-",
            name=Text("-", "-"),
            content_hash=self.content_hash,
            default_profile=self.default,
            floors=tuple(self.floors),
            walls=tuple(self.walls),
            stairs=tuple(self.stairs),
            decor=tuple(self.decor),
        )
        self.segments = build_segments(partial)
        for st in self.stairs:
            place = f"stairs[{_index_of(self.data, 'stairs', st.id)}]"
            _check_landing(self.r, place, st, self.floors, self.segments)

    def read_spawns(self) -> None:
        for _, place, v in self.entries("spawns"):
            fl = self.floor_of(place, "floor", v["floor"])
            if fl is not None and self.placed(place, fl, v["x"], v["z"], SPAWN_CLEARANCE):
                self.spawns.append(Spawn(v["id"], fl.index, fl.id, v["x"], v["z"], v["yaw"]))
        if isinstance(self.data.get("spawns"), list) and not self.data["spawns"]:
            self.r.add("spawns", "at least one spawn", "an empty array")

    def read_kiosks(self) -> None:
        procedures: dict[str, str] = {}
        for _, place, v in self.entries("kiosks"):
            fl = self.floor_of(place, "floor", v["floor"])
            if v["kind"] not in KIOSK_KINDS:
                self.r.add(f"{place}.kind", "one of " + ", ".join(KIOSK_KINDS), describe(v["kind"]))
                continue
            if v["procedure"] in procedures:
                self.r.add(
                    f"{place}.procedure",
                    f"a procedure no other kiosk has (also {procedures[v['procedure']]})",
                    describe(v["procedure"]),
                )
            procedures.setdefault(v["procedure"], place)
            if fl is None or not self.placed(place, fl, v["x"], v["z"], KIOSK_CLEARANCE):
                continue
            self.kiosks.append(
                Kiosk(
                    v["id"],
                    fl.index,
                    fl.id,
                    v["x"],
                    v["z"],
                    v["yaw"],
                    v["radius"],
                    v["kind"],
                    v["procedure"],
                    v["label"],
                )
            )

    def read_counters(self) -> None:
        for _, place, v in self.entries("counters"):
            fl = self.floor_of(place, "floor", v["floor"])
            if fl is None or not self.placed(place, fl, v["x"], v["z"], 0.0):
                continue
            hours = self._hours(place, v["hours"]) if v["hours"] is not None else DEFAULT_HOURS
            booths = self._counter_booths(place, v["booths"], fl)
            if hours is None or booths is None:
                continue
            self.counters.append(
                Counter(
                    v["id"],
                    fl.index,
                    fl.id,
                    v["x"],
                    v["z"],
                    v["yaw"] or 0.0,
                    v["width"] or 3.0,
                    v["label"],
                    v["section"],
                    procedures=v["procedures"] or (),
                    hours=hours,
                    booths=booths,
                    slot_minutes=v["slot_minutes"] or 20,
                )
            )

    def _hours(self, place: str, raw: Any) -> Hours | None:
        """``hours = { days = "mon-fri", open = "08:30", close = "17:00" }``, checked."""
        vals = sub(self.r, raw, HOURS, f"{place}.hours")
        if vals is None:
            return None
        good = True
        if not _days_ok(vals["days"]):
            self.r.add(
                f"{place}.hours.days",
                f'days like "mon-fri" or "mon,wed,fri" (of {", ".join(WEEKDAYS)})',
                describe(vals["days"]),
            )
            good = False
        for key in ("open", "close"):
            if not _HHMM.match(vals[key]):
                self.r.add(
                    f"{place}.hours.{key}", 'a time "HH:MM" (00:00-23:59)', describe(vals[key])
                )
                good = False
        if good and vals["open"] >= vals["close"]:
            self.r.add(
                f"{place}.hours.close",
                f"a time after the opening {vals['open']}",
                describe(vals["close"]),
            )
            good = False
        return Hours(vals["days"], vals["open"], vals["close"]) if good else None

    def _counter_booths(self, place: str, raw: Any, fl: Floor) -> tuple[str, ...] | None:
        """The booth zones a counter names (isolated zones on its floor); by default every
        isolated zone of its floor whose id starts with ``zone-booth-``."""
        if raw is None:
            return tuple(
                z.id
                for z in self.zones
                if z.floor == fl.index and z.audio == "isolated" and z.id.startswith("zone-booth-")
            )
        out = []
        for j, zid in enumerate(raw):
            if self.zone_ref(place, f"booths[{j}]", zid, fl, "isolated") is None:
                return None
            out.append(zid)
        return tuple(out)

    def read_stages(self) -> None:
        for _, place, v in self.entries("stages"):
            fl = self.floor_of(place, "floor", v["floor"])
            if fl is None:
                continue
            zn = self.zone_ref(place, "zone", v["zone"], fl, "stage")
            aud = self.zone_ref(place, "auditorium", v["auditorium"], fl, "auditorium")
            if zn is not None and aud is not None and zn.auditorium != aud.id:
                self.r.add(
                    f"{place}.auditorium",
                    f"the auditorium its zone {zn.id} names",
                    f"{describe(aud.id)} (the zone names {describe(zn.auditorium)})",
                )
            screen = sub(self.r, v["screen"], SCREEN, f"{place}.screen")
            spots = self._speakers(place, v["speakers"], zn)
            if screen is not None and not _on_floor(screen["x"], screen["z"], fl):
                self.r.add(
                    f"{place}.screen",
                    f"a screen on floor {fl.id}",
                    _describe_xz(screen["x"], screen["z"]),
                )
            if zn is None or aud is None or screen is None or not spots:
                continue
            self.stages.append(
                Stage(v["id"], fl.index, fl.id, zn.id, aud.id, Screen(**screen), tuple(spots))
            )

    def _speakers(self, place: str, raw: list[Any], zn: Zone | None) -> list[SpeakerSpot]:
        spots = []
        if not raw:
            self.r.add(f"{place}.speakers", "at least one speaker spot", "an empty array")
        for j, tbl in enumerate(raw):
            sv = sub(self.r, tbl, SPOT, f"{place}.speakers[{j}]")
            if sv is None:
                continue
            if zn is not None and not zn.contains(sv["x"], sv["z"]):
                self.r.add(
                    f"{place}.speakers[{j}]",
                    f"a spot inside the stage zone {zn.id}",
                    _describe_xz(sv["x"], sv["z"]),
                )
            spots.append(SpeakerSpot(sv["x"], sv["z"], sv["yaw"]))
        return spots

    def read_tables(self) -> None:
        for _, place, v in self.entries("tables"):
            fl = self.floor_of(place, "floor", v["floor"])
            if fl is None or not self.placed(place, fl, v["x"], v["z"], 0.0):
                continue
            zn = self.zone_ref(place, "zone", v["zone"], fl, "isolated")
            if zn is None:
                continue
            if not zn.contains(v["x"], v["z"]):
                self.r.add(place, f"a table inside its zone {zn.id}", _describe_xz(v["x"], v["z"]))
                continue
            self.tables.append(
                Table(v["id"], fl.index, fl.id, v["x"], v["z"], v["radius"], zn.id, v["seats"])
            )

    def read_booths(self) -> None:
        for _, place, v in self.entries("booths"):
            fl = self.floor_of(place, "floor", v["floor"])
            if fl is None:
                continue
            zn = self.zone_ref(place, "zone", v["zone"], fl, "isolated")
            if zn is not None:
                self.booths.append(Booth(v["id"], fl.index, fl.id, zn.id, v["label"]))

    def world(self) -> World | None:
        """The world read, or ``None`` when any problem was found."""
        top = self.top
        if self.r.problems or top.get("id") is None or top.get("name") is None:
            return None
        return World(
            path=self.r.file,
            id=top["id"],
            name=top["name"],
            content_hash=self.content_hash,
            default_profile=self.default,
            floors=tuple(self.floors),
            walls=tuple(self.walls),
            stairs=tuple(self.stairs),
            zones=tuple(self.zones),
            spawns=tuple(self.spawns),
            kiosks=tuple(self.kiosks),
            counters=tuple(self.counters),
            stages=tuple(self.stages),
            tables=tuple(self.tables),
            booths=tuple(self.booths),
            decor=tuple(self.decor),
            address=top.get("address"),
        )


_HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


def _days_ok(days: str) -> bool:
    for part in days.split(","):
        a, dash, b = part.strip().partition("-")
        if a not in WEEKDAYS or (
            dash and (b not in WEEKDAYS or WEEKDAYS.index(b) < WEEKDAYS.index(a))
        ):
            return False
    return True


def _profile(r: Reader, v: Any, place: str) -> AudioProfile | None:
    vals = sub(r, v, PROFILE, place)
    if vals is None:
        return None
    good = True
    if vals["model"] not in DISTANCE_MODELS:
        r.add(f"{place}.model", "one of " + ", ".join(DISTANCE_MODELS), describe(vals["model"]))
        good = False
    if vals["max_distance"] <= vals["ref_distance"]:
        r.add(
            f"{place}.max_distance",
            f"a number > ref_distance ({fmt(vals['ref_distance'])})",
            fmt(vals["max_distance"]),
        )
        good = False
    if vals["model"] == "linear" and vals["rolloff"] > 1:
        r.add(f"{place}.rolloff", "a number in [0, 1] for the linear model", fmt(vals["rolloff"]))
        good = False
    return AudioProfile(**vals) if good else None


def _describe_pt(p: tuple[float, float]) -> str:
    return f"[{fmt(p[0])}, {fmt(p[1])}]"


def _describe_xz(x: float, z: float) -> str:
    return f"x = {fmt(x)}, z = {fmt(z)}"


def _index_of(data: dict[str, Any], section: str, oid: str) -> int:
    for i, tbl in enumerate(data.get(section) or []):
        if isinstance(tbl, dict) and tbl.get("id") == oid:
            return i
    return -1


def _edges_cross(a: tuple[tuple[float, float], ...], b: tuple[tuple[float, float], ...]) -> bool:
    ea, eb = polygon_edges(a), polygon_edges(b)
    for s in ea:
        for t in eb:
            if segments_cross((s[0], s[1]), (s[2], s[3]), (t[0], t[1]), (t[2], t[3])):
                return True
    return False


def _check_landing(
    r: Reader, place: str, st: Stair, floors: list[Floor], segments: list[Any]
) -> None:
    """The top end must lead onto the upper floor and the bottom end come from the lower one."""
    ax, az = st.axis
    px, pz = -az, ax
    half = st.width / 2 - 0.05
    checks: list[tuple[Floor, float, float, str]] = []
    upper, lower = floors[st.upper], floors[st.lower]
    for s in (-half, 0.0, half):
        ex, ez = st.end[0] + px * s, st.end[1] + pz * s
        checks.append(
            (
                upper,
                ex + ax * _LANDING,
                ez + az * _LANDING,
                f"the landing past the top end on floor {upper.id}",
            )
        )
        sx, sz = st.start[0] + px * s, st.start[1] + pz * s
        checks.append(
            (
                lower,
                sx - ax * _LANDING,
                sz - az * _LANDING,
                f"the approach before the bottom end on floor {lower.id}",
            )
        )
    for fl, x, z, what in checks:
        if not point_in_polygon(x, z, fl.outline):
            r.add(place, what, f"{_describe_xz(x, z)} off the floor")
            return
    # no wall across the ramp, from the approach to the top end, on the lower floor
    starts = np.array(
        [
            [st.start[0] + px * s - ax * _LANDING, st.start[1] + pz * s - az * _LANDING]
            for s in (-half, 0.0, half)
        ]
    )
    length = st.length + _LANDING - 0.01
    _, j = crossings(starts, np.tile([ax * length, az * length], (3, 1)), segments[st.lower].walls)
    if np.any(j >= 0):
        r.add(place, f"a ramp clear of walls on floor {lower.id}", "a wall across it")
        return
    # no wall of the upper floor across the landing strip
    starts = np.array(
        [
            [st.end[0] + px * s + ax * 0.01, st.end[1] + pz * s + az * 0.01]
            for s in (-half, 0.0, half)
        ]
    )
    moves = np.tile([ax * _LANDING, az * _LANDING], (3, 1))
    _, j = crossings(starts, moves, segments[st.upper].walls)
    if np.any(j >= 0):
        r.add(
            place,
            f"a landing past the top end clear of walls on floor {upper.id}",
            "a wall across it",
        )
