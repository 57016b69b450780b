"""Reading a world file's entries: the keys each kind of object has, their types, and the
one-line problems that name the place of a bad value (``docs/world-format.md``).

:class:`Reader` (a :class:`world.checker.Checker` in TOML's words) collects
:class:`~world.problems.WorldProblem` values while the loader (``world/loader.py``) reads a parsed
TOML document; ``MISSING`` marks a value that was absent or bad (the problem is already recorded).
"""

from __future__ import annotations

import re
from typing import Any

from world import checker
from world.checker import MISSING, Checker, is_number
from world.model import Text

__all__ = [
    "FORMAT",
    "ID_PATTERN",
    "MISSING",
    "TOP",
    "SECTIONS",
    "PROFILE",
    "SCREEN",
    "SPOT",
    "HOURS",
    "Reader",
    "describe",
    "fmt",
    "sub",
    "top_value_ok",
]

FORMAT = 1
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")

# key -> (kind, required); kinds are checked by Reader.value
TOP = {
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
SECTIONS: dict[str, dict[str, tuple[str, bool]]] = {
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
        "procedures": ("ids", False),
        "hours": ("table", False),
        "booths": ("ids", False),
        "slot_minutes": ("count", False),
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
PROFILE = {
    "model": ("str", True),
    "ref_distance": ("positive", True),
    "max_distance": ("positive", True),
    "rolloff": ("nonneg", True),
}
SCREEN = {
    "x": ("number", True),
    "z": ("number", True),
    "y": ("number", True),
    "width": ("positive", True),
    "height": ("positive", True),
    "yaw": ("number", True),
}
SPOT = {"x": ("number", True), "z": ("number", True), "yaw": ("number", True)}
HOURS = {"days": ("str", True), "open": ("str", True), "close": ("str", True)}
EXPECT = {
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
    "ids": "an array of ids (a-z, 0-9, '-')",
    "point": "a point [x, z]",
    "points": "an array of points [x, z]",
    "size": "[width, depth, height], numbers > 0",
}


def describe(v: Any) -> str:
    """A value as a world problem shows it (:func:`world.checker.describe` in TOML's words)."""
    return checker.describe(v, checker.TOML)


def fmt(x: float) -> str:
    return f"{x:g}"


class Reader(Checker):
    """Collects problems for one world file while its entries are read."""

    def __init__(self, file: str, lines: dict[str, int] | None = None) -> None:
        super().__init__(file, lines or {}, checker.TOML)

    def value(self, kind: str, v: Any, place: str) -> Any:
        """``v`` converted for ``kind``, or ``MISSING`` after recording a problem."""
        ok: Any = MISSING
        if kind == "int":
            ok = v if isinstance(v, int) and not isinstance(v, bool) else MISSING
        elif kind == "id":
            ok = v if isinstance(v, str) and ID_PATTERN.match(v) else MISSING
        elif kind == "str":
            ok = v if isinstance(v, str) and v.strip() else MISSING
        elif kind == "bool":
            ok = v if isinstance(v, bool) else MISSING
        elif kind == "table":
            ok = v if isinstance(v, dict) else MISSING
        elif kind == "tables":
            ok = v if isinstance(v, list) and all(isinstance(t, dict) for t in v) else MISSING
        elif kind in ("number", "positive", "nonneg"):
            if is_number(v):
                f = float(v)
                if (
                    kind == "number"
                    or (kind == "positive" and f > 0)
                    or (kind == "nonneg" and f >= 0)
                ):
                    ok = f
        elif kind == "count":
            ok = v if isinstance(v, int) and not isinstance(v, bool) and v >= 1 else MISSING
        elif kind == "text":
            pair = self.text_value(v, place)
            return MISSING if pair is None else Text(*pair)
        elif kind == "ids":
            if isinstance(v, list) and all(isinstance(i, str) and ID_PATTERN.match(i) for i in v):
                ok = tuple(v)
        elif kind == "point":
            ok = point(v)
        elif kind == "points":
            return self.points(v, place)
        elif kind == "size" and (
            isinstance(v, list) and len(v) == 3 and all(is_number(c) and c > 0 for c in v)
        ):
            ok = (float(v[0]), float(v[1]), float(v[2]))
        if ok is MISSING:
            self.bad(place, EXPECT[kind], v)
        return ok

    def points(self, v: Any, place: str) -> Any:
        if not isinstance(v, list):
            self.bad(place, EXPECT["points"], v)
            return MISSING
        out = []
        for i, item in enumerate(v):
            pt = point(item)
            if pt is MISSING:
                self.bad(f"{place}[{i}]", "a point [x, z] of two finite numbers", item)
            out.append(pt)
        return MISSING if any(pt is MISSING for pt in out) else tuple(out)

    def fields(
        self, tbl: dict[str, Any], spec: dict[str, tuple[str, bool]], place: str
    ) -> dict[str, Any] | None:
        """The checked values of ``tbl`` by ``spec``; ``None`` when a required one is bad."""
        out: dict[str, Any] = {}
        good = True
        for key, (kind, required) in spec.items():
            raw = tbl.get(key, MISSING)
            if raw is MISSING:
                if required:
                    self.add(f"{place}.{key}" if place else key, EXPECT[kind], "nothing")
                    good = False
                out[key] = None
                continue
            val = self.value(kind, raw, f"{place}.{key}" if place else key)
            if val is MISSING:
                good = not required and good
                if required:
                    good = False
                val = None
            out[key] = val
        self.unknown(tbl, place, spec)
        return out if good else None


def point(v: Any) -> Any:
    if isinstance(v, list) and len(v) == 2 and all(is_number(c) for c in v):
        return (float(v[0]), float(v[1]))
    return MISSING


def top_value_ok(key: str, data: dict[str, Any]) -> bool:
    """Whether a top-level value has the type its key needs (used after a failed check)."""
    kind = TOP[key][0]
    v = data.get(key)
    if kind == "tables":
        return isinstance(v, list) and all(isinstance(t, dict) for t in v)
    if kind == "table":
        return isinstance(v, dict)
    if kind == "text":
        return isinstance(v, dict) and all(isinstance(v.get(k), str) for k in ("ja", "en"))
    if kind == "id":
        return isinstance(v, str) and bool(ID_PATTERN.match(v))
    return isinstance(v, int) and not isinstance(v, bool)


def sub(r: Reader, v: Any, spec: dict[str, tuple[str, bool]], place: str) -> dict[str, Any] | None:
    if not isinstance(v, dict):
        r.bad(place, "a table", v)
        return None
    return r.fields(v, spec, place)
