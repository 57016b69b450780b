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
from world.schema import (
    FORMAT,
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
_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


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
    r = Reader(str(path))
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


def _build(data: dict[str, Any], r: Reader, content_hash: str) -> World | None:
    top = r.fields(data, TOP, "")
    top = top or {k: (data.get(k) if top_value_ok(k, data) else None) for k in TOP}
    if top.get("format") not in (None, FORMAT):
        r.add("format", f"format {FORMAT}", describe(top["format"]))
    default = AudioProfile()
    audio = top.get("audio")
    if isinstance(audio, dict):
        for key in audio:
            if key != "profile":
                r.add(f"audio.{key}", "only the key profile", f"unknown key {describe(key)}")
        if "profile" in audio:
            default = _profile(r, audio["profile"], "audio.profile") or default

    ids: dict[str, str] = {}

    def entries(section: str) -> list[tuple[int, str, dict[str, Any]]]:
        out = []
        tables = top.get(section) if isinstance(top.get(section), list) else []
        for i, tbl in enumerate(tables or []):
            place = f"{section}[{i}]"
            vals = r.fields(tbl, SECTIONS[section], place)
            oid = tbl.get("id")
            if isinstance(oid, str) and ID_PATTERN.match(oid):
                if oid in ids:
                    r.add(
                        f"{place}.id",
                        f"an id used once in the world (also {ids[oid]}.id)",
                        describe(oid),
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
    outlines_ok = True
    for i, place, v in entries("floors"):
        why = polygon_problem(v["outline"])
        if why is not None:
            r.add(f"{place}.outline", "a simple polygon of at least 3 points", why)
            outlines_ok = False
        new_floor = Floor(v["id"], i, v["name"], v["elevation"], v["outline"])
        floors.append(new_floor)
        floor_by_id[new_floor.id] = new_floor
    complete_floors = len(floors) == len(raw_floors or [])
    floor_names = ", ".join(floor_by_id) or "none"

    def floor_of(place: str, key: str, fid: str) -> Floor | None:
        fl = floor_by_id.get(fid)
        if fl is None and complete_floors:
            r.add(f"{place}.{key}", f"the id of a floor ({floor_names})", describe(fid))
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
                r.add(f"{place}.points[{j}]", f"a point on floor {fl.id}", f"[{fmt(x)}, {fmt(z)}]")
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
                f"a floor above {lo.id} (elevation > {fmt(lo.elevation)})",
                f"{hi.id} at {fmt(hi.elevation)}",
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
                        f"{place}.polygon[{j}]",
                        f"a point on floor {fl.id}",
                        f"[{fmt(x)}, {fmt(z)}]",
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
                describe(v["auditorium"]),
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
                    describe(stage_zone.auditorium),
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
    # wall clearances need every floor's outline; without them those checks wait for a fix
    segments = build_segments(partial) if floors and complete_floors and outlines_ok else None
    if segments is not None:
        for st in stairs:
            _check_landing(r, f"stairs[{_index_of(data, 'stairs', st.id)}]", st, floors, segments)

    def placed(place: str, fl: Floor, x: float, z: float, clearance: float) -> bool:
        if not point_in_polygon(x, z, fl.outline):
            r.add(place, f"a position on floor {fl.id} (inside its outline)", _describe_xz(x, z))
            return False
        if clearance <= 0 or segments is None:
            return True
        walls_f = segments[fl.index].walls
        dist = float(distance_to_segments(x, z, walls_f).min()) if len(walls_f) else math.inf
        if dist < clearance:
            r.add(
                place,
                f"a position at least {fmt(clearance)} m from every wall",
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
            r.add(f"{place}.kind", "one of " + ", ".join(KIOSK_KINDS), describe(v["kind"]))
            continue
        if v["procedure"] in procedures:
            r.add(
                f"{place}.procedure",
                f"a procedure no other kiosk has (also {procedures[v['procedure']]})",
                describe(v["procedure"]),
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
            found = describe(zid) + (f" ({zn.audio} on {zn.floor_id})" if zn else "")
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
                f"{describe(aud.id)} (the zone names {describe(zn.auditorium)})",
            )
        screen = sub(r, v["screen"], SCREEN, f"{place}.screen")
        spots = []
        if not v["speakers"]:
            r.add(f"{place}.speakers", "at least one speaker spot", "an empty array")
        for j, tbl in enumerate(v["speakers"]):
            sv = sub(r, tbl, SPOT, f"{place}.speakers[{j}]")
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
