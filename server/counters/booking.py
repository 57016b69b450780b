"""Reservations: service hours, the slots of a day, codes and the booking book. Pure: the time
is always passed in (aware datetimes in the city's zone).

A code is 10 characters of Crockford's base32 (50 random bits, shown ``XXXXX-XXXXX``); it is
never stored, only its HMAC-SHA256 under a key of the process (:func:`code_hash`), so a leaked
record does not let anyone in. A booking keeps its slot, a display name and that hash, nothing
else. Wrong codes are limited per client address (:class:`Attempts`): guessing is refused and
counted, and with 2^50 codes it would not pay anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import deque
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from world.model import Hours

from .machine import Refused

__all__ = [
    "ALPHABET",
    "Attempts",
    "Booking",
    "Book",
    "code_hash",
    "is_open",
    "new_code",
    "normal_code",
    "slot_key",
    "slots",
]

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
#: the states a reservation can be in (the ticket states of ``server.counters.machine``)
STATES = frozenset({"booked", "in_booth", "done", "no_show"})
CODE_LEN = 10
NAME_MAX = 24


def is_open(hours: Hours, now: datetime) -> bool:
    """Whether ``now`` (aware, in the city's zone) is within ``hours``."""
    o, c = hours.minutes
    m = now.hour * 60 + now.minute
    return now.weekday() in hours.weekdays and o <= m < c


def slot_key(start: datetime) -> str:
    """A slot as the API names it: ``YYYY-MM-DDTHH:MM``."""
    return start.strftime("%Y-%m-%dT%H:%M")


def slots(hours: Hours, day: date, minutes: int, tz: tzinfo | None) -> list[datetime]:
    """The slot starts of ``day``: every ``minutes`` from opening while a whole slot fits."""
    if day.weekday() not in hours.weekdays:
        return []
    o, c = hours.minutes
    base = datetime(day.year, day.month, day.day, tzinfo=tz)
    return [base + timedelta(minutes=m) for m in range(o, c - minutes + 1, minutes)]


def new_code() -> str:
    """A fresh code, ``XXXXX-XXXXX``."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LEN))
    return f"{raw[:5]}-{raw[5:]}"


def normal_code(text: str) -> str | None:
    """A code as typed (any case, spaces, dashes, O for 0, I/L for 1) in its canonical form, or
    None when it cannot be one."""
    t = text.upper().replace("-", "").replace(" ", "")
    t = t.replace("O", "0").replace("I", "1").replace("L", "1")
    if len(t) != CODE_LEN or any(ch not in ALPHABET for ch in t):
        return None
    return f"{t[:5]}-{t[5:]}"


def code_hash(key: bytes, code: str) -> str:
    """What is stored of a code: HMAC-SHA256 under ``key``, hex."""
    return hmac.new(key, code.encode(), hashlib.sha256).hexdigest()


@dataclass(slots=True)
class Booking:
    """One reservation: a counter's slot, a display name and the hash of its code."""

    counter: str
    slot: str  # slot_key
    start: datetime
    minutes: int
    name: str
    code_hash: str
    state: str = "booked"  # the ticket state it has reached (server.counters.machine)

    def due(self, now: datetime) -> bool:
        """Whether ``now`` is within the slot (entering is allowed from 5 minutes before)."""
        return (
            self.start - timedelta(minutes=5) <= now < self.start + timedelta(minutes=self.minutes)
        )

    def over(self, now: datetime) -> bool:
        return now >= self.start + timedelta(minutes=self.minutes)


class Book:
    """Every booking of this process, one per counter and slot."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.by_slot: dict[tuple[str, str], Booking] = {}
        self.by_hash: dict[str, Booking] = {}

    def book(
        self, counter: str, start: datetime, minutes: int, name: str, now: datetime
    ) -> tuple[Booking, str]:
        """Book ``counter`` at ``start`` for ``name``; the booking and its code (shown once).

        Raises:
            Refused: a bad name, a slot gone by, or a slot already booked.
        """
        name = " ".join(name.split())
        if not 1 <= len(name) <= NAME_MAX or not name.isprintable():
            raise Refused("bad_name", f"a display name of 1-{NAME_MAX} characters (no other data)")
        if start + timedelta(minutes=minutes) <= now:
            raise Refused("slot_past", "this slot is over; choose a later one")
        k = (counter, slot_key(start))
        if k in self.by_slot:
            raise Refused("slot_taken", "this slot is booked; choose another")
        code = new_code()
        b = Booking(counter, k[1], start, minutes, name, code_hash(self.key, code))
        self.by_slot[k] = b
        self.by_hash[b.code_hash] = b
        return b, code

    def add(self, b: Booking) -> None:
        """A booking read back from the Store (made before a restart, or by another process)."""
        self.by_slot.setdefault((b.counter, b.slot), b)
        self.by_hash.setdefault(b.code_hash, b)

    def restore(self, rec: dict[str, object], tz: tzinfo | None) -> bool:
        """One record of a day's bookings stream, as :mod:`server.counters.records` writes them:
        a booking (``c, s, m, n, h``) or, after it, a state its reservation reached (``c, s,
        st``). False for a record that does not read (skipped)."""
        try:
            counter, slot = str(rec["c"]), str(rec["s"])
            if "st" in rec:
                state = str(rec["st"])
                b = self.by_slot.get((counter, slot))
                if b is None or state not in STATES:
                    return False
                b.state = state
                return True
            start = datetime.strptime(slot, "%Y-%m-%dT%H:%M").replace(tzinfo=tz)
            minutes = rec["m"]
            if type(minutes) is not int:
                return False
            self.add(Booking(counter, slot, start, minutes, str(rec["n"]), str(rec["h"])))
            return True
        except (KeyError, ValueError):
            return False

    def taken(self, counter: str, day: str) -> set[str]:
        return {s for (c, s) in self.by_slot if c == counter and s.startswith(day)}

    def find(self, code: str) -> Booking | None:
        """The booking of a code as typed, or None."""
        norm = normal_code(code)
        return None if norm is None else self.by_hash.get(code_hash(self.key, norm))

    def of_day(self, day: str) -> list[Booking]:
        return sorted(
            (b for b in self.by_slot.values() if b.slot.startswith(day)), key=lambda b: b.slot
        )

    def expire(self, today: str) -> list[Booking]:
        """Forget the bookings of the days before ``today``; those forgotten."""
        old = [b for b in self.by_slot.values() if b.slot[:10] < today]
        for b in old:
            self.by_slot.pop((b.counter, b.slot), None)
            self.by_hash.pop(b.code_hash, None)
        return old


class Attempts:
    """At most ``limit`` wrong tries per key (a client address) in ``window`` seconds."""

    def __init__(self, limit: int = 5, window: float = 600.0) -> None:
        self.limit = limit
        self.window = window
        self.tries: dict[str, deque[float]] = {}

    def blocked(self, key: str, now: float) -> bool:
        q = self.tries.get(key)
        if q is None:
            return False
        while q and now - q[0] > self.window:
            q.popleft()
        if not q:
            del self.tries[key]
            return False
        return len(q) >= self.limit

    def wrong(self, key: str, now: float) -> None:
        self.tries.setdefault(key, deque()).append(now)
        if len(self.tries) > 10_000:  # bounded: forget the oldest address
            self.tries.pop(next(iter(self.tries)))
