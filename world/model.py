"""The world as values: frozen dataclasses for floors, walls, stairs, zones and the objects on them.

Built by :func:`world.loader.load_world` from a world file (``docs/world-format.md``). Every object
keeps its floor both as an index into ``World.floors`` (``floor``, what numpy state and the wire
use) and as the floor's id (``floor_id``, what people and other files use).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np

from world.geometry import Point, points_in_polygon

__all__ = [
    "AUDIO_MODES",
    "DISTANCE_MODELS",
    "KIOSK_KINDS",
    "Text",
    "AudioProfile",
    "Floor",
    "Wall",
    "Stair",
    "Zone",
    "Spawn",
    "Kiosk",
    "Counter",
    "Hours",
    "WEEKDAYS",
    "Screen",
    "SpeakerSpot",
    "Stage",
    "Table",
    "Booth",
    "Decor",
    "World",
]

AUDIO_MODES = ("open", "isolated", "stage", "auditorium", "quiet")
DISTANCE_MODELS = ("inverse", "linear", "exponential")
KIOSK_KINDS = ("kiosk", "thumbnail", "helper")
#: the day names of a counter's ``hours.days`` (``"mon-fri"``, ``"mon,wed,fri"``), Monday first
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _client(value: Any) -> Any:
    """A field value as JSON-able data: nested objects by their ``to_client``, tuples as lists."""
    if isinstance(value, ToClient):
        return value.to_client()
    if isinstance(value, tuple):
        return [_client(v) for v in value]
    return value


class ToClient:
    """``to_client()`` for the world's value classes: every field in order, nested values as
    JSON-able data, fields that are None left out, and not the fields in ``CLIENT_SKIP`` (the
    back-references by id, which the browser gets as indices)."""

    __slots__ = ()
    CLIENT_SKIP: ClassVar[frozenset[str]] = frozenset({"floor_id"})

    def to_client(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.name not in self.CLIENT_SKIP and value is not None:
                out[f.name] = _client(value)
        return out


@dataclass(frozen=True, slots=True)
class Text(ToClient):
    """A label in Japanese and English."""

    ja: str
    en: str


@dataclass(frozen=True, slots=True)
class AudioProfile(ToClient):
    """Distance attenuation with the meaning of the Web Audio ``PannerNode`` parameters."""

    model: str = "inverse"
    ref_distance: float = 2.0
    max_distance: float = 25.0
    rolloff: float = 1.0

    def gain(self, distance: np.ndarray | float) -> np.ndarray:
        """Gain at ``distance`` metres, the Web Audio formula of ``model`` (vectorised).

        As in Web Audio, only ``linear`` reaches 0 at ``max_distance``; servers treat anything
        beyond ``max_distance`` as out of earshot.
        """
        d = np.asarray(distance)
        if d.dtype not in (np.float32, np.float64):
            d = d.astype(np.float64)  # float32 stays float32: the audibility update is all float32
        ref, mx, r = self.ref_distance, self.max_distance, self.rolloff
        if self.model == "linear":
            dc = np.clip(d, ref, mx)
            return np.asarray(1.0 - r * (dc - ref) / (mx - ref))
        if self.model == "exponential":
            return np.asarray(np.power(np.maximum(d, ref) / ref, -r))
        return np.asarray(ref / (ref + r * (np.maximum(d, ref) - ref)))


@dataclass(frozen=True, slots=True)
class Floor(ToClient):
    """A storey: its walkable outline (whose edges are walls) at an elevation."""

    id: str
    index: int
    name: Text
    elevation: float
    outline: tuple[Point, ...]


@dataclass(frozen=True, slots=True)
class Wall(ToClient):
    """A polyline wall on a floor; collision uses its centre line."""

    id: str
    floor: int
    floor_id: str
    points: tuple[Point, ...]
    thickness: float = 0.2
    height: float = 3.0


@dataclass(frozen=True, slots=True)
class Stair(ToClient):
    """A rectangular ramp from ``start`` (bottom, lower floor) to ``end`` (top, upper floor)."""

    id: str
    lower: int
    upper: int
    lower_id: str
    upper_id: str
    start: Point
    end: Point
    width: float

    CLIENT_SKIP: ClassVar[frozenset[str]] = frozenset({"lower_id", "upper_id"})

    @property
    def length(self) -> float:
        return math.hypot(self.end[0] - self.start[0], self.end[1] - self.start[1])

    @property
    def axis(self) -> Point:
        """Unit vector from start to end."""
        n = self.length
        return ((self.end[0] - self.start[0]) / n, (self.end[1] - self.start[1]) / n)

    def corners(self) -> tuple[Point, Point, Point, Point]:
        """Bottom-left, top-left, top-right, bottom-right (left = to the left of the axis)."""
        ax, az = self.axis
        hx, hz = -az * self.width / 2, ax * self.width / 2
        (sx, sz), (ex, ez) = self.start, self.end
        return ((sx + hx, sz + hz), (ex + hx, ez + hz), (ex - hx, ez - hz), (sx - hx, sz - hz))


@dataclass(frozen=True, slots=True)
class Zone(ToClient):
    """A polygon on a floor with an audio mode; ``auditorium`` is set on stage zones."""

    id: str
    index: int
    floor: int
    floor_id: str
    name: Text
    polygon: tuple[Point, ...]
    audio: str
    profile: AudioProfile
    auditorium: str | None = None
    area: float = 0.0

    CLIENT_SKIP: ClassVar[frozenset[str]] = frozenset({"index", "floor_id", "area"})

    def contains(self, x: float, z: float) -> bool:
        return bool(points_in_polygon(x, z, self.polygon))


@dataclass(frozen=True, slots=True)
class Spawn(ToClient):
    """Where arriving avatars appear."""

    id: str
    floor: int
    floor_id: str
    x: float
    z: float
    yaw: float


@dataclass(frozen=True, slots=True)
class Kiosk(ToClient):
    """A kiosk, helper or wall thumbnail bound to a catalog entry (``procedure``)."""

    id: str
    floor: int
    floor_id: str
    x: float
    z: float
    yaw: float
    radius: float
    kind: str
    procedure: str
    label: Text


@dataclass(frozen=True, slots=True)
class Hours(ToClient):
    """When a counter serves, in the city's time zone: ``days`` as written (``"mon-fri"``), the
    opening and closing times ``"HH:MM"``."""

    days: str
    open: str
    close: str

    @property
    def weekdays(self) -> frozenset[int]:
        """The days as ``date.weekday()`` numbers (Monday 0); the loader checked the text."""
        out: set[int] = set()
        for part in self.days.split(","):
            a, _, b = part.strip().partition("-")
            lo = WEEKDAYS.index(a)
            hi = WEEKDAYS.index(b) if b else lo
            out.update(range(lo, hi + 1))
        return frozenset(out)

    @property
    def minutes(self) -> tuple[int, int]:
        """Opening and closing as minutes after midnight."""
        o, c = (int(t[:2]) * 60 + int(t[3:]) for t in (self.open, self.close))
        return o, c

    def text(self) -> str:
        return f"{self.open}-{self.close}"


#: a counter's hours when its entry gives none (the city hall's: weekdays 8:30 to 17:00)
DEFAULT_HOURS = Hours("mon-fri", "08:30", "17:00")


@dataclass(frozen=True, slots=True)
class Counter(ToClient):
    """A service counter of a city section: where it stands, the procedures it handles, its
    service hours, the consultation booths (isolated zones) it may use and its reservation slot
    length (issue 13, ``docs/counters.md``)."""

    id: str
    floor: int
    floor_id: str
    x: float
    z: float
    yaw: float
    width: float
    label: Text
    section: str
    procedures: tuple[str, ...] = ()
    hours: Hours = DEFAULT_HOURS
    booths: tuple[str, ...] = ()
    slot_minutes: int = 20


@dataclass(frozen=True, slots=True)
class Screen(ToClient):
    """A slide screen: centre ``(x, z)``, centre height ``y`` above the floor, facing ``yaw``."""

    x: float
    z: float
    y: float
    width: float
    height: float
    yaw: float


@dataclass(frozen=True, slots=True)
class SpeakerSpot(ToClient):
    """Where a briefing avatar stands on a stage."""

    x: float
    z: float
    yaw: float


@dataclass(frozen=True, slots=True)
class Stage(ToClient):
    """A stage zone linked to its auditorium zone, with a screen and speaker spots."""

    id: str
    floor: int
    floor_id: str
    zone: str
    auditorium: str
    screen: Screen
    speakers: tuple[SpeakerSpot, ...]


@dataclass(frozen=True, slots=True)
class Table(ToClient):
    """A round table whose isolated zone is its breakout for small talk."""

    id: str
    floor: int
    floor_id: str
    x: float
    z: float
    radius: float
    zone: str
    seats: int


@dataclass(frozen=True, slots=True)
class Booth(ToClient):
    """A consultation booth: an isolated zone (the room) with a label."""

    id: str
    floor: int
    floor_id: str
    zone: str
    label: Text


@dataclass(frozen=True, slots=True)
class Decor(ToClient):
    """Furniture and signs; a solid decor's footprint is four walls."""

    id: str
    floor: int
    floor_id: str
    kind: str
    x: float
    z: float
    yaw: float
    size: tuple[float, float, float]
    solid: bool = False
    label: Text | None = None

    def footprint(self) -> tuple[Point, Point, Point, Point]:
        """The ``width × depth`` rectangle turned by ``yaw`` (width across the facing)."""
        w, d = self.size[0] / 2, self.size[1] / 2
        fx, fz = math.sin(self.yaw), math.cos(self.yaw)  # facing
        rx, rz = fz, -fx  # across
        return tuple(  # type: ignore[return-value]
            (self.x + rx * a + fx * b, self.z + rz * a + fz * b)
            for a, b in ((-w, -d), (w, -d), (w, d), (-w, d))
        )


@dataclass(frozen=True, slots=True)
class World:
    """A loaded, valid world. Build it with :func:`world.loader.load_world`."""

    path: str
    id: str
    name: Text
    content_hash: str
    default_profile: AudioProfile
    floors: tuple[Floor, ...]
    walls: tuple[Wall, ...] = ()
    stairs: tuple[Stair, ...] = ()
    zones: tuple[Zone, ...] = ()
    spawns: tuple[Spawn, ...] = ()
    kiosks: tuple[Kiosk, ...] = ()
    counters: tuple[Counter, ...] = ()
    stages: tuple[Stage, ...] = ()
    tables: tuple[Table, ...] = ()
    booths: tuple[Booth, ...] = ()
    decor: tuple[Decor, ...] = ()
    address: Text | None = None
    _by_id: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not self._by_id:
            for group in (
                self.floors,
                self.walls,
                self.stairs,
                self.zones,
                self.spawns,
                self.kiosks,
                self.counters,
                self.stages,
                self.tables,
                self.booths,
                self.decor,
            ):
                for obj in group:
                    self._by_id[obj.id] = obj

    # -- look-ups ------------------------------------------------------------------------------

    def get(self, object_id: str) -> Any | None:
        """Any object by its id, or ``None``."""
        return self._by_id.get(object_id)

    def floor_index(self, floor_id: str) -> int:
        """The index of the floor with this id. Raises ``KeyError`` for an unknown id."""
        obj = self._by_id.get(floor_id)
        if not isinstance(obj, Floor):
            raise KeyError(floor_id)
        return obj.index

    def kiosk(self, kiosk_id: str) -> Kiosk | None:
        """The kiosk (or helper, or thumbnail) with this id, or ``None``."""
        obj = self._by_id.get(kiosk_id)
        return obj if isinstance(obj, Kiosk) else None

    def zone(self, zone_id: str) -> Zone | None:
        obj = self._by_id.get(zone_id)
        return obj if isinstance(obj, Zone) else None

    def stage(self, stage_id: str) -> Stage | None:
        obj = self._by_id.get(stage_id)
        return obj if isinstance(obj, Stage) else None

    def zone_at(self, floor_index: int, x: float, z: float) -> Zone | None:
        """The smallest zone of the floor containing ``(x, z)``, or ``None`` (open floor)."""
        best: Zone | None = None
        for zone in self.zones:
            if (
                zone.floor == floor_index
                and (best is None or zone.area < best.area)
                and zone.contains(x, z)
            ):
                best = zone
        return best

    def zone_indices(self, floor: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """``zone_at`` for many points at once: index into ``zones`` per point, -1 for none.

        Args:
            floor: int array ``(n,)`` of floor indices.
            pos: float array ``(n, 2)`` of ``x, z``.
        """
        floor = np.asarray(floor)
        pos = np.asarray(pos, dtype=np.float64)
        out = np.full(len(floor), -1, dtype=np.int16)
        # largest first, so that smaller (nested) zones overwrite
        for zone in sorted(self.zones, key=lambda zn: -zn.area):
            sel = np.flatnonzero(floor == zone.floor)
            if len(sel) == 0:
                continue
            inside = points_in_polygon(pos[sel, 0], pos[sel, 1], zone.polygon)
            out[sel[inside]] = zone.index
        return out

    # -- the browser's copy ----------------------------------------------------------------------

    def to_client(self) -> dict[str, Any]:
        """Everything a browser needs to draw and hear the hall, as JSON-able values."""
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name.to_client(),
            "content_hash": self.content_hash,
            "default_profile": self.default_profile.to_client(),
        }
        if self.address is not None:
            out["address"] = self.address.to_client()
        for key in (
            "floors",
            "walls",
            "stairs",
            "zones",
            "spawns",
            "kiosks",
            "counters",
            "stages",
            "tables",
            "booths",
            "decor",
        ):
            out[key] = [obj.to_client() for obj in getattr(self, key)]
        return out
