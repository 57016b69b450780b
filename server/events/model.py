"""Events as values: the dataclass, and the JSON a staff member sends turned into one (or a
clear error naming the field). Pure.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace
from typing import Any

from server.events.agenda import Item, ItemKind

__all__ = ["Event", "BadField", "parse_event", "patch_event", "iso", "parse_time", "EDITABLE"]

TITLE_MAX = 120
MAX_ITEMS = 40
MAX_DAYS = 7
EDITABLE = ("title", "start", "end", "hall", "capacity", "tables", "agenda")


class BadField(ValueError):  # noqa: N818 - said as what it is
    """A field of a request body that is not what it should be."""

    def __init__(self, where: str, expected: str) -> None:
        self.where = where
        self.expected = expected
        super().__init__(f"{where}: expected {expected}")


@dataclass(frozen=True, slots=True)
class Event:
    """An event: titles, times (epoch seconds), hall zone, capacity, tables, agenda."""

    id: str
    title_ja: str
    title_en: str
    start: float
    end: float
    hall: str
    capacity: int
    tables: tuple[str, ...]
    agenda: tuple[Item, ...] = ()
    cancelled: bool = False
    version: int = 1
    created: float = 0.0
    updated: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": {"ja": self.title_ja, "en": self.title_en},
            "start": iso(self.start),
            "end": iso(self.end),
            "hall": self.hall,
            "capacity": self.capacity,
            "tables": list(self.tables),
            "agenda": [_item_json(i) for i in self.agenda],
            "cancelled": self.cancelled,
            "version": self.version,
            "created": iso(self.created),
            "updated": iso(self.updated),
        }

    def to_record(self) -> dict[str, Any]:
        """What the store keeps (times as numbers)."""
        d = self.to_json()
        d.update(start=self.start, end=self.end, created=self.created, updated=self.updated)
        return d

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> Event:
        return cls(
            id=d["id"],
            title_ja=d["title"]["ja"],
            title_en=d["title"]["en"],
            start=float(d["start"]),
            end=float(d["end"]),
            hall=d["hall"],
            capacity=int(d["capacity"]),
            tables=tuple(d["tables"]),
            agenda=tuple(_parse_item(i, "agenda") for i in d["agenda"]),
            cancelled=bool(d["cancelled"]),
            version=int(d["version"]),
            created=float(d["created"]),
            updated=float(d["updated"]),
        )


def _item_json(i: Item) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": i.kind.value, "minutes": i.seconds / 60.0}
    if i.kind is ItemKind.ROUND:
        out["shuffle"] = i.shuffle
    if i.title_ja or i.title_en:
        out["title"] = {"ja": i.title_ja, "en": i.title_en}
    return out


def iso(t: float) -> str:
    """Epoch seconds as ISO 8601 in Japan time (the city's)."""
    return dt.datetime.fromtimestamp(t, dt.timezone(dt.timedelta(hours=9))).isoformat()


def parse_time(v: Any, where: str) -> float:
    """An ISO 8601 date-time with its offset (``2027-04-01T10:00:00+09:00``) to epoch seconds."""
    if not isinstance(v, str) or len(v) > 40:
        raise BadField(
            where, "an ISO 8601 date-time with an offset, e.g. 2027-04-01T10:00:00+09:00"
        )
    try:
        t = dt.datetime.fromisoformat(v)
        if t.tzinfo is None or t.utcoffset() is None:
            raise ValueError
        ts = t.timestamp()
    except (ValueError, OverflowError, OSError):
        raise BadField(
            where, "an ISO 8601 date-time with an offset, e.g. 2027-04-01T10:00:00+09:00"
        ) from None
    if not 0 < ts < 32503680000:  # 1970 .. 3000
        raise BadField(where, "a date-time between 1970 and 3000")
    return ts


def _text(v: Any, where: str) -> str:
    if not isinstance(v, str) or not 1 <= len(v.strip()) <= TITLE_MAX:
        raise BadField(where, f"a text of 1-{TITLE_MAX} characters")
    if not v.isprintable():
        raise BadField(where, "a text without control characters")
    return v.strip()


def _title(v: Any, where: str) -> tuple[str, str]:
    if not isinstance(v, dict) or set(v) != {"ja", "en"}:
        raise BadField(where, 'an object {"ja": ..., "en": ...}')
    return _text(v["ja"], f"{where}.ja"), _text(v["en"], f"{where}.en")


def _parse_item(v: Any, where: str) -> Item:
    if not isinstance(v, dict) or not {"kind", "minutes"} <= set(v) <= {
        "kind",
        "minutes",
        "shuffle",
        "title",
    }:
        raise BadField(where, 'an item {"kind", "minutes", "shuffle"?, "title"?}')
    try:
        kind = ItemKind(v["kind"])
    except (ValueError, TypeError):
        raise BadField(f"{where}.kind", " or ".join(k.value for k in ItemKind)) from None
    m = v["minutes"]
    if type(m) not in (int, float) or not math.isfinite(m) or not 0.05 <= m <= 600:
        raise BadField(f"{where}.minutes", "a number of minutes in 0.05..600")
    shuffle = v.get("shuffle", False)
    if type(shuffle) is not bool or (shuffle and kind is not ItemKind.ROUND):
        raise BadField(f"{where}.shuffle", "true or false (true only for a round)")
    ja = en = ""
    if "title" in v:
        ja, en = _title(v["title"], f"{where}.title")
    return Item(kind, float(m) * 60.0, shuffle, ja, en)


def _check(
    d: dict[str, Any], halls: dict[str, tuple[str, ...]], max_capacity: int
) -> tuple[tuple[str, str], float, float, str, int, tuple[str, ...], tuple[Item, ...]]:
    title = _title(d.get("title"), "title")
    start = parse_time(d.get("start"), "start")
    end = parse_time(d.get("end"), "end")
    if not start < end <= start + MAX_DAYS * 86400:
        raise BadField("end", f"a time after start, at most {MAX_DAYS} days later")
    hall = d.get("hall")
    if hall not in halls:
        raise BadField("hall", " or ".join(repr(h) for h in halls) or "a hall of the world")
    cap = d.get("capacity")
    if type(cap) is not int or not 1 <= cap <= max_capacity:
        raise BadField("capacity", f"a whole number in 1..{max_capacity}")
    tables = d.get("tables")
    if tables is None:
        tables = list(halls[hall])
    if (
        not isinstance(tables, list)
        or any(t not in halls[hall] for t in tables)
        or len(set(tables)) != len(tables)
    ):
        raise BadField("tables", f"a list of distinct tables of the hall: {', '.join(halls[hall])}")
    agenda = d.get("agenda", [])
    if not isinstance(agenda, list) or len(agenda) > MAX_ITEMS:
        raise BadField("agenda", f"a list of at most {MAX_ITEMS} items")
    items = tuple(_parse_item(v, f"agenda[{i}]") for i, v in enumerate(agenda))
    if any(i.kind is ItemKind.ROUND for i in items) and not tables:
        raise BadField("tables", "at least one table when the agenda has a round")
    return title, start, end, hall, cap, tuple(tables), items


def parse_event(
    body: Any,
    event_id: str,
    now: float,
    halls: dict[str, tuple[str, ...]],
    max_capacity: int,
    default_hall: str,
) -> Event:
    """A new event from a request body.

    Args:
        halls: hall zone id -> its table ids. default_hall: when the body names none.

    Raises:
        BadField: the first field that is wrong.
    """
    if not isinstance(body, dict):
        raise BadField("body", "a JSON object")
    unknown = set(body) - set(EDITABLE)
    if unknown:
        raise BadField(sorted(unknown)[0], f"one of the fields {', '.join(EDITABLE)}")
    d = {"hall": default_hall, **body}
    (ja, en), start, end, hall, cap, tables, items = _check(d, halls, max_capacity)
    return Event(event_id, ja, en, start, end, hall, cap, tables, items, False, 1, now, now)


def patch_event(
    old: Event, body: Any, now: float, halls: dict[str, tuple[str, ...]], max_capacity: int
) -> Event:
    """``old`` with the fields of ``body`` changed (each as :func:`parse_event` takes it).

    Raises:
        BadField: the first field that is wrong.
    """
    if not isinstance(body, dict):
        raise BadField("body", "a JSON object")
    unknown = set(body) - set(EDITABLE)
    if unknown:
        raise BadField(sorted(unknown)[0], f"one of the fields {', '.join(EDITABLE)}")
    base = old.to_json()
    base.pop("id")
    d = {k: base[k] for k in EDITABLE}
    d.update(body)
    if "hall" in body and "tables" not in body:
        d["tables"] = None
    (ja, en), start, end, hall, cap, tables, items = _check(d, halls, max_capacity)
    return replace(
        old,
        title_ja=ja,
        title_en=en,
        start=start,
        end=end,
        hall=hall,
        capacity=cap,
        tables=tables,
        agenda=items,
        version=old.version + 1,
        updated=now,
    )
