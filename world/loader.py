"""Load and validate a world file (``docs/world-format.md``).

:func:`load_world` returns a :class:`~world.model.World` or raises :class:`WorldError` carrying
every problem found; :func:`check_world` returns the problems. Reading happens in two passes: the
first checks each entry's keys and types and builds what it can, the second checks references and
geometry between entries, so one run reports all problems, not only the first.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

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
    DISTANCE_MODELS,
    KIOSK_KINDS,
    AudioProfile,
    Booth,
    Counter,
    Decor,
    Floor,
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

__all__ = ["load_world", "check_world", "world_file", "World", "WorldError", "WorldProblem"]

FORMAT = 1
SPAWN_CLEARANCE = 0.5
KIOSK_CLEARANCE = 0.1
_LANDING = 0.5
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_MISSING: Any = object()

# key -> (kind, required); kinds are checked by _Reader.value
_TOP = {
    "format": ("int", True),
    "id": ("id", True),
    "name": ("text", True),
    "address": ("text", False),
    "audio": ("table", False),
    "floors": ("tables", True),
    "walls": ("tables", False),
    "stairs": ("tables", False),
    "zones": ("tables", False),
    "spawns": ("tables", True),
    "kiosks": ("tables", False),
    "counters": ("tables", False),
    "stages": ("tables", False),
    "tables": ("tables", False),
    "booths": ("tables", False),
    "decor": ("tables", False),
}
_SECTIONS: dict[str, dict[str, tuple[str, bool]]] = {
    "floors": {
        "id": ("id", True),
        "name": ("text", True),
        "elevation": ("number", True),
        "outline": ("points", True),
    },
    "walls": {
        "id": ("id", True),
        "floor": ("str", True),
        "points": ("points", True),
        "thickness": ("positive", False),
        "height": ("positive", False),
    },
    "stairs": {
        "id": ("id", True),
        "lower": ("str", True),
        "upper": ("str", True),
        "start": ("point", True),
        "end": ("point", True),
        "width": ("positive", True),
    },
    "zones": {
        "id": ("id", True),
        "floor": ("str", True),
        "name": ("text", True),
        "polygon": ("points", True),
        "audio": ("str", True),
        "profile": ("table", False),
        "auditorium": ("str", False),
    },
    "spawns": {
        "id": ("id", True),
        "floor": ("str", True),
        "x": ("number", True),
        "z": ("number", True),
        "yaw": ("number", True),
    },
    "kiosks": {
        "id": ("id", True),
        "floor": ("str", True),
        "x": ("number", True),
        "z": ("number", True),
        "yaw": ("number", True),
        "radius": ("positive", True),
        "kind": ("str", True),
        "procedure": ("str", True),
        "label": ("text", True),
    },
    "counters": {
        "id": ("id", True),
        "floor": ("str", True),
        "x": ("number", True),
        "z": ("number", True),
        "yaw": ("number", False),
        "width": ("positive", False),
        "label": ("text", True),
        "section": ("str", True),
    },
    "stages": {
        "id": ("id", True),
        "floor": ("str", True),
        "zone": ("str", True),
        "auditorium": ("str", True),
        "screen": ("table", True),
        "speakers": ("tables", True),
    },
    "tables": {
        "id": ("id", True),
        "floor": ("str", True),
        "x": ("number", True),
        "z": ("number", True),
        "radius": ("positive", True),
        "zone": ("str", True),
        "seats": ("count", True),
    },
    "booths": {
        "id": ("id", True),
        "floor": ("str", True),
        "zone": ("str", True),
        "label": ("text", True),
    },
    "decor": {
        "id": ("id", True),
        "floor": ("str", True),
        "kind": ("str", True),
        "x": ("number", True),
        "z": ("number", True),
        "yaw": ("number", False),
        "size": ("size", True),
        "solid": ("bool", False),
        "label": ("text", False),
    },
}
_PROFILE = {
    "model": ("str", True),
    "ref_distance": ("positive", True),
    "max_distance": ("positive", True),
    "rolloff": ("nonneg", True),
}
_SCREEN = {
    "x": ("number", True),
    "z": ("number", True),
    "y": ("number", True),
    "width": ("positive", True),
    "height": ("positive", True),
    "yaw": ("number", True),
}
_SPOT = {"x": ("number", True), "z": ("number", True), "yaw": ("number", True)}
_EXPECT = {
    "int": "an integer",
    "id": "an id (a-z, 0-9, '-', at most 64 characters)",
    "text": 'a text { ja = "...", en = "..." }',
    "table": "a table",
    "tables": "an array of tables",
    "str": "a non-empty string",
    "number": "a number",
    "positive": "a number > 0",
    "nonneg": "a number >= 0",
    "count": "an integer >= 1",
    "bool": "true or false",
    "point": "a point [x, z]",
    "points": "an array of points [x, z]",
    "size": "[width, depth, height], numbers > 0",
}


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


def _describe(v: Any) -> str:
    if v is _MISSING:
        return "nothing"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        s = json.dumps(v, ensure_ascii=False)
        return s if len(s) <= 60 else s[:57] + '..."'
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, dict):
        return "a table"
    if isinstance(v, list):
        return f"an array of {len(v)}"
    return f"a {type(v).__name__}"


def _fmt(x: float) -> str:
    return f"{x:g}"


class _Reader:
    """Collects problems for one file while its entries are read."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[WorldProblem] = []

    def add(self, place: str, expected: str, got: str) -> None:
        self.problems.append(WorldProblem(self.file, place, expected, got))

    def value(self, kind: str, v: Any, place: str) -> Any:
        """``v`` converted for ``kind``, or ``_MISSING`` after recording a problem."""
        ok: Any = _MISSING
        if kind == "int":
            ok = v if isinstance(v, int) and not isinstance(v, bool) else _MISSING
        elif kind == "id":
            ok = v if isinstance(v, str) and _ID.match(v) else _MISSING
        elif kind == "str":
            ok = v if isinstance(v, str) and v.strip() else _MISSING
        elif kind == "bool":
            ok = v if isinstance(v, bool) else _MISSING
        elif kind == "table":
            ok = v if isinstance(v, dict) else _MISSING
        elif kind == "tables":
            ok = v if isinstance(v, list) and all(isinstance(t, dict) for t in v) else _MISSING
        elif kind in ("number", "positive", "nonneg"):
            if _is_number(v):
                f = float(v)
                if (
                    kind == "number"
                    or (kind == "positive" and f > 0)
                    or (kind == "nonneg" and f >= 0)
                ):
                    ok = f
        elif kind == "count":
            ok = v if isinstance(v, int) and not isinstance(v, bool) and v >= 1 else _MISSING
        elif kind == "text":
            return self.text(v, place)
        elif kind == "point":
            ok = _point(v)
        elif kind == "points":
            return self.points(v, place)
        elif kind == "size" and (
            isinstance(v, list) and len(v) == 3 and all(_is_number(c) and c > 0 for c in v)
        ):
            ok = (float(v[0]), float(v[1]), float(v[2]))
        if ok is _MISSING:
            self.add(place, _EXPECT[kind], _describe(v))
        return ok

    def text(self, v: Any, place: str) -> Any:
        if not isinstance(v, dict):
            self.add(place, _EXPECT["text"], _describe(v))
            return _MISSING
        good = True
        for lang in ("ja", "en"):
            s = v.get(lang, _MISSING)
            if not (isinstance(s, str) and s.strip()):
                self.add(f"{place}.{lang}", "a non-empty string", _describe(s))
                good = False
        for key in v:
            if key not in ("ja", "en"):
                self.add(f"{place}.{key}", "only the keys ja, en", f"key {_describe(key)}")
        return Text(v["ja"], v["en"]) if good else _MISSING

    def points(self, v: Any, place: str) -> Any:
        if not isinstance(v, list):
            self.add(place, _EXPECT["points"], _describe(v))
            return _MISSING
        out = []
        for i, item in enumerate(v):
            pt = _point(item)
            if pt is _MISSING:
                self.add(f"{place}[{i}]", "a point [x, z] of two finite numbers", _describe(item))
            out.append(pt)
        return _MISSING if any(pt is _MISSING for pt in out) else tuple(out)

    def fields(
        self, tbl: dict[str, Any], spec: dict[str, tuple[str, bool]], place: str
    ) -> dict[str, Any] | None:
        """The checked values of ``tbl`` by ``spec``; ``None`` when a required one is bad."""
        out: dict[str, Any] = {}
        good = True
        for key, (kind, required) in spec.items():
            raw = tbl.get(key, _MISSING)
            if raw is _MISSING:
                if required:
                    self.add(f"{place}.{key}" if place else key, _EXPECT[kind], "nothing")
                    good = False
                out[key] = None
                continue
            val = self.value(kind, raw, f"{place}.{key}" if place else key)
            if val is _MISSING:
                good = not required and good
                if required:
                    good = False
                val = None
            out[key] = val
        for key in tbl:
            if key not in spec:
                self.add(
                    f"{place}.{key}" if place else key,
                    "one of the keys " + ", ".join(spec),
                    f"unknown key {_describe(key)}",
                )
        return out if good else None


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _point(v: Any) -> Any:
    if isinstance(v, list) and len(v) == 2 and all(_is_number(c) for c in v):
        return (float(v[0]), float(v[1]))
    return _MISSING


def _on_floor(x: float, z: float, floor: Floor) -> bool:
    return point_in_polygon(x, z, floor.outline) or point_on_boundary(x, z, floor.outline)


def _read(path: Path) -> tuple[World | None, list[WorldProblem]]:
    r = _Reader(str(path))
    try:
        data_bytes = path.read_bytes()
    except FileNotFoundError:
        r.add("file", "a world file (world.toml or its folder)", "no such file")
        return None, r.problems
    except OSError as exc:
        r.add("file", "a readable file", exc.strerror or type(exc).__name__)
        return None, r.problems
    try:
        text = data_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data_bytes[: exc.start].count(b"\n") + 1
        r.add(f"line {line}", "UTF-8 text", f"byte 0x{data_bytes[exc.start]:02x}")
        return None, r.problems
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _TOML_AT.search(msg)
        place = f"line {m.group(1)}, column {m.group(2)}" if m else "end of file"
        detail = _TOML_AT.sub("", msg).replace("(at end of document)", "").strip()
        r.add(place, "valid TOML", detail or "a syntax error")
        return None, r.problems
    world = _build(data, r, hashlib.sha256(data_bytes).hexdigest())
    return (world if not r.problems else None), r.problems


def _build(data: dict[str, Any], r: _Reader, content_hash: str) -> World | None:
    top = r.fields(data, _TOP, "")
    top = top or {k: (data.get(k) if r_ok(k, data) else None) for k in _TOP}
    if top.get("format") not in (None, FORMAT):
        r.add("format", f"format {FORMAT}", _describe(top["format"]))
    default = AudioProfile()
    audio = top.get("audio")
    if isinstance(audio, dict):
        for key in audio:
            if key != "profile":
                r.add(f"audio.{key}", "only the key profile", f"unknown key {_describe(key)}")
        if "profile" in audio:
            default = _profile(r, audio["profile"], "audio.profile") or default

    ids: dict[str, str] = {}

    def entries(section: str) -> list[tuple[int, str, dict[str, Any]]]:
        out = []
        tables = top.get(section) if isinstance(top.get(section), list) else []
        for i, tbl in enumerate(tables or []):
            place = f"{section}[{i}]"
            vals = r.fields(tbl, _SECTIONS[section], place)
            oid = tbl.get("id")
            if isinstance(oid, str) and _ID.match(oid):
                if oid in ids:
                    r.add(
                        f"{place}.id",
                        f"an id used once in the world (also {ids[oid]}.id)",
                        _describe(oid),
                    )
                else:
                    ids[oid] = place
            if vals is not None:
                out.append((i, place, vals))
        return out

    # floors first: everything else refers to them
    floors: list[Floor] = []
    floor_by_id: dict[str, Floor] = {}
    raw_floors = top.get("floors") if isinstance(top.get("floors"), list) else []
    if isinstance(data.get("floors"), list) and not data["floors"]:
        r.add("floors", "at least one floor", "an empty array")
    for i, place, v in entries("floors"):
        why = polygon_problem(v["outline"])
        if why is not None:
            r.add(f"{place}.outline", "a simple polygon of at least 3 points", why)
        new_floor = Floor(v["id"], i, v["name"], v["elevation"], v["outline"])
        floors.append(new_floor)
        floor_by_id[new_floor.id] = new_floor
    complete_floors = len(floors) == len(raw_floors or [])
    floor_names = ", ".join(floor_by_id) or "none"

    def floor_of(place: str, key: str, fid: str) -> Floor | None:
        fl = floor_by_id.get(fid)
        if fl is None and complete_floors:
            r.add(f"{place}.{key}", f"the id of a floor ({floor_names})", _describe(fid))
        return fl

    walls: list[Wall] = []
    for _, place, v in entries("walls"):
        fl = floor_of(place, "floor", v["floor"])
        if fl is None:
            continue
        if len(v["points"]) < 2:
            r.add(f"{place}.points", "at least 2 points", f"{len(v['points'])}")
            continue
        for j, (x, z) in enumerate(v["points"]):
            if not _on_floor(x, z, fl):
                r.add(
                    f"{place}.points[{j}]", f"a point on floor {fl.id}", f"[{_fmt(x)}, {_fmt(z)}]"
                )
        walls.append(
            Wall(v["id"], fl.index, fl.id, v["points"], v["thickness"] or 0.2, v["height"] or 3.0)
        )

    stairs: list[Stair] = []
    for _, place, v in entries("stairs"):
        lo = floor_of(place, "lower", v["lower"])
        hi = floor_of(place, "upper", v["upper"])
        if lo is None or hi is None:
            continue
        if hi.elevation <= lo.elevation:
            r.add(
                f"{place}.upper",
                f"a floor above {lo.id} (elevation > {_fmt(lo.elevation)})",
                f"{hi.id} at {_fmt(hi.elevation)}",
            )
            continue
        if math.dist(v["start"], v["end"]) < 0.1:
            r.add(f"{place}.end", "a point at least 0.1 m from start", _describe_pt(v["end"]))
            continue
        st = Stair(v["id"], lo.index, hi.index, lo.id, hi.id, v["start"], v["end"], v["width"])
        bad = [c for c in st.corners() if not _on_floor(*c, lo)]
        if bad:
            r.add(
                place,
                f"a ramp whose corners are on floor {lo.id}",
                "corner " + _describe_pt(bad[0]) + " outside it",
            )
            continue
        stairs.append(st)

    zones: list[Zone] = []
    zone_places: dict[str, str] = {}
    for _, place, v in entries("zones"):
        fl = floor_of(place, "floor", v["floor"])
        good = fl is not None
        if v["audio"] not in AUDIO_MODES:
            r.add(f"{place}.audio", "one of " + ", ".join(AUDIO_MODES), _describe(v["audio"]))
            good = False
        why = polygon_problem(v["polygon"])
        if why is not None:
            r.add(f"{place}.polygon", "a simple polygon of at least 3 points", why)
            good = False
        elif fl is not None:
            for j, (x, z) in enumerate(v["polygon"]):
                if not _on_floor(x, z, fl):
                    r.add(
                        f"{place}.polygon[{j}]",
                        f"a point on floor {fl.id}",
                        f"[{_fmt(x)}, {_fmt(z)}]",
                    )
                    good = False
        profile = default
        if v["profile"] is not None:
            prof = _profile(r, v["profile"], f"{place}.profile")
            good = good and prof is not None
            profile = prof or default
        if v["audio"] == "stage" and v["auditorium"] is None:
            r.add(
                f"{place}.auditorium", "the id of the auditorium zone this stage reaches", "nothing"
            )
        if v["audio"] != "stage" and v["auditorium"] is not None and v["audio"] in AUDIO_MODES:
            r.add(
                f"{place}.auditorium",
                "no auditorium on a zone that is not a stage",
                _describe(v["auditorium"]),
            )
        if not good or fl is None:
            continue
        zones.append(
            Zone(
                v["id"],
                len(zones),
                fl.index,
                fl.id,
                v["name"],
                v["polygon"],
                v["audio"],
                profile,
                v["auditorium"],
                abs(polygon_area(v["polygon"])),
            )
        )
        zone_places[v["id"]] = place
    zone_by_id = {zn.id: zn for zn in zones}
    for stage_zone in zones:
        if stage_zone.audio == "stage" and stage_zone.auditorium is not None:
            linked = zone_by_id.get(stage_zone.auditorium)
            if linked is None or linked.audio != "auditorium" or linked.floor != stage_zone.floor:
                r.add(
                    f"{zone_places[stage_zone.id]}.auditorium",
                    f"the id of an auditorium zone on floor {stage_zone.floor_id}",
                    _describe(stage_zone.auditorium),
                )
    for a_i, a in enumerate(zones):
        for b in zones[a_i + 1 :]:
            if a.floor == b.floor and _edges_cross(a.polygon, b.polygon):
                r.add(
                    f"{zone_places[b.id]}.polygon",
                    f"a zone nested in or apart from {a.id} (edges may not cross)",
                    "crossing edges",
                )

    decor: list[Decor] = []
    for _, place, v in entries("decor"):
        fl = floor_of(place, "floor", v["floor"])
        if fl is None:
            continue
        if not _on_floor(v["x"], v["z"], fl):
            r.add(place, f"a position on floor {fl.id}", _describe_xz(v["x"], v["z"]))
            continue
        decor.append(
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

    # geometry of what is valid so far, for clearance checks
    partial = World(
        path=r.file,
        id="-",
        name=Text("-", "-"),
        content_hash=content_hash,
        default_profile=default,
        floors=tuple(floors),
        walls=tuple(walls),
        stairs=tuple(stairs),
        decor=tuple(decor),
    )
    segments = build_segments(partial) if floors else []
    for k, st in enumerate(stairs):
        _check_landing(r, f"stairs[{_index_of(data, 'stairs', st.id)}]", st, floors, segments, k)

    def placed(place: str, fl: Floor, x: float, z: float, clearance: float) -> bool:
        if not point_in_polygon(x, z, fl.outline):
            r.add(place, f"a position on floor {fl.id} (inside its outline)", _describe_xz(x, z))
            return False
        if clearance <= 0:
            return True
        walls_f = segments[fl.index].walls
        dist = float(distance_to_segments(x, z, walls_f).min()) if len(walls_f) else math.inf
        if dist < clearance:
            r.add(
                place,
                f"a position at least {_fmt(clearance)} m from every wall",
                f"{_describe_xz(x, z)}, {dist:.2f} m from one",
            )
            return False
        for st in stairs:
            if fl.index in (st.lower, st.upper) and point_in_polygon(x, z, st.corners()):
                r.add(place, "a position off the stairs", f"{_describe_xz(x, z)} on {st.id}")
                return False
        for item in decor:
            if item.solid and item.floor == fl.index and point_in_polygon(x, z, item.footprint()):
                r.add(place, "a position outside solid decor", f"{_describe_xz(x, z)} in {item.id}")
                return False
        return True

    spawns: list[Spawn] = []
    for _, place, v in entries("spawns"):
        fl = floor_of(place, "floor", v["floor"])
        if fl is not None and placed(place, fl, v["x"], v["z"], SPAWN_CLEARANCE):
            spawns.append(Spawn(v["id"], fl.index, fl.id, v["x"], v["z"], v["yaw"]))
    if isinstance(data.get("spawns"), list) and not data["spawns"]:
        r.add("spawns", "at least one spawn", "an empty array")

    kiosks: list[Kiosk] = []
    procedures: dict[str, str] = {}
    for _, place, v in entries("kiosks"):
        fl = floor_of(place, "floor", v["floor"])
        if v["kind"] not in KIOSK_KINDS:
            r.add(f"{place}.kind", "one of " + ", ".join(KIOSK_KINDS), _describe(v["kind"]))
            continue
        if v["procedure"] in procedures:
            r.add(
                f"{place}.procedure",
                f"a procedure no other kiosk has (also {procedures[v['procedure']]})",
                _describe(v["procedure"]),
            )
        procedures.setdefault(v["procedure"], place)
        if fl is not None and placed(place, fl, v["x"], v["z"], KIOSK_CLEARANCE):
            kiosks.append(
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

    counters: list[Counter] = []
    for _, place, v in entries("counters"):
        fl = floor_of(place, "floor", v["floor"])
        if fl is not None and placed(place, fl, v["x"], v["z"], 0.0):
            counters.append(
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
                )
            )

    def zone_ref(place: str, key: str, zid: str, fl: Floor, mode: str) -> Zone | None:
        zn = zone_by_id.get(zid)
        if zn is None or zn.audio != mode or zn.floor != fl.index:
            found = _describe(zid) + (f" ({zn.audio} on {zn.floor_id})" if zn else "")
            r.add(f"{place}.{key}", f"the id of a zone with audio {mode} on floor {fl.id}", found)
            return None
        return zn

    stages: list[Stage] = []
    for _, place, v in entries("stages"):
        fl = floor_of(place, "floor", v["floor"])
        if fl is None:
            continue
        zn = zone_ref(place, "zone", v["zone"], fl, "stage")
        aud = zone_ref(place, "auditorium", v["auditorium"], fl, "auditorium")
        if zn is not None and aud is not None and zn.auditorium != aud.id:
            r.add(
                f"{place}.auditorium",
                f"the auditorium its zone {zn.id} names",
                f"{_describe(aud.id)} (the zone names {_describe(zn.auditorium)})",
            )
        screen = _sub(r, v["screen"], _SCREEN, f"{place}.screen")
        spots = []
        if not v["speakers"]:
            r.add(f"{place}.speakers", "at least one speaker spot", "an empty array")
        for j, tbl in enumerate(v["speakers"]):
            sv = _sub(r, tbl, _SPOT, f"{place}.speakers[{j}]")
            if sv is None:
                continue
            if zn is not None and not zn.contains(sv["x"], sv["z"]):
                r.add(
                    f"{place}.speakers[{j}]",
                    f"a spot inside the stage zone {zn.id}",
                    _describe_xz(sv["x"], sv["z"]),
                )
            spots.append(SpeakerSpot(sv["x"], sv["z"], sv["yaw"]))
        if screen is not None and not _on_floor(screen["x"], screen["z"], fl):
            r.add(
                f"{place}.screen",
                f"a screen on floor {fl.id}",
                _describe_xz(screen["x"], screen["z"]),
            )
        if zn is None or aud is None or screen is None or not spots:
            continue
        stages.append(
            Stage(v["id"], fl.index, fl.id, zn.id, aud.id, Screen(**screen), tuple(spots))
        )

    tables: list[Table] = []
    for _, place, v in entries("tables"):
        fl = floor_of(place, "floor", v["floor"])
        if fl is None or not placed(place, fl, v["x"], v["z"], 0.0):
            continue
        zn = zone_ref(place, "zone", v["zone"], fl, "isolated")
        if zn is None:
            continue
        if not zn.contains(v["x"], v["z"]):
            r.add(place, f"a table inside its zone {zn.id}", _describe_xz(v["x"], v["z"]))
            continue
        tables.append(
            Table(v["id"], fl.index, fl.id, v["x"], v["z"], v["radius"], zn.id, v["seats"])
        )

    booths: list[Booth] = []
    for _, place, v in entries("booths"):
        fl = floor_of(place, "floor", v["floor"])
        if fl is None:
            continue
        zn = zone_ref(place, "zone", v["zone"], fl, "isolated")
        if zn is not None:
            booths.append(Booth(v["id"], fl.index, fl.id, zn.id, v["label"]))

    if r.problems or top.get("id") is None or top.get("name") is None:
        return None
    return World(
        path=r.file,
        id=top["id"],
        name=top["name"],
        content_hash=content_hash,
        default_profile=default,
        floors=tuple(floors),
        walls=tuple(walls),
        stairs=tuple(stairs),
        zones=tuple(zones),
        spawns=tuple(spawns),
        kiosks=tuple(kiosks),
        counters=tuple(counters),
        stages=tuple(stages),
        tables=tuple(tables),
        booths=tuple(booths),
        decor=tuple(decor),
        address=top.get("address"),
    )


def r_ok(key: str, data: dict[str, Any]) -> bool:
    """Whether a top-level value has the type its key needs (used after a failed check)."""
    kind = _TOP[key][0]
    v = data.get(key)
    if kind == "tables":
        return isinstance(v, list) and all(isinstance(t, dict) for t in v)
    if kind == "table":
        return isinstance(v, dict)
    if kind == "text":
        return isinstance(v, dict) and all(isinstance(v.get(k), str) for k in ("ja", "en"))
    if kind == "id":
        return isinstance(v, str) and bool(_ID.match(v))
    return isinstance(v, int) and not isinstance(v, bool)


def _profile(r: _Reader, v: Any, place: str) -> AudioProfile | None:
    vals = _sub(r, v, _PROFILE, place)
    if vals is None:
        return None
    good = True
    if vals["model"] not in DISTANCE_MODELS:
        r.add(f"{place}.model", "one of " + ", ".join(DISTANCE_MODELS), _describe(vals["model"]))
        good = False
    if vals["max_distance"] <= vals["ref_distance"]:
        r.add(
            f"{place}.max_distance",
            f"a number > ref_distance ({_fmt(vals['ref_distance'])})",
            _fmt(vals["max_distance"]),
        )
        good = False
    if vals["model"] == "linear" and vals["rolloff"] > 1:
        r.add(f"{place}.rolloff", "a number in [0, 1] for the linear model", _fmt(vals["rolloff"]))
        good = False
    return AudioProfile(**vals) if good else None


def _sub(
    r: _Reader, v: Any, spec: dict[str, tuple[str, bool]], place: str
) -> dict[str, Any] | None:
    if not isinstance(v, dict):
        r.add(place, "a table", _describe(v))
        return None
    return r.fields(v, spec, place)


def _describe_pt(p: tuple[float, float]) -> str:
    return f"[{_fmt(p[0])}, {_fmt(p[1])}]"


def _describe_xz(x: float, z: float) -> str:
    return f"x = {_fmt(x)}, z = {_fmt(z)}"


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
    r: _Reader, place: str, st: Stair, floors: list[Floor], segments: list[Any], k: int
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
