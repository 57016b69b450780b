"""What a session is shown of the counters: the ``COUNTER_STATE`` map (``docs/counters.md``).
Pure: built from the desks, the bookings and the time passed in."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any

from .booking import Book
from .desks import Consultation, Desks, Ticket
from .machine import Ticket as State

__all__ = ["counters_view", "ticket_view", "booth_view", "desk_view", "ended_view"]


def counters_view(
    desks: Desks, in_hours: Callable[[str], bool], name: Callable[[Hashable], str]
) -> list[dict[str, Any]]:
    """Every counter's status, staff names and avatar ids, queue length and wait (everyone in the
    instance). ``reason`` says why a counter is closed: ``hours`` (outside its service hours) or
    ``no_staff`` (inside them, nobody on duty); null when it is not closed."""
    out = []
    for cid, d in desks.desks.items():
        hours_now = in_hours(cid)
        status = desks.status(cid, hours_now)
        out.append(
            {
                "id": cid,
                "status": status,
                "reason": None if status != "closed" else "hours" if not hours_now else "no_staff",
                "staff": [name(s) for s in d.staff],
                "staff_ids": [i for i in (_avatar_id(s) for s in d.staff) if i is not None],
                "waiting": desks.waiting(cid),
                "wait_s": desks.counter_wait(cid) if d.staff else None,
                "hours": d.spec.hours.text(),
            }
        )
    return out


def _avatar_id(staff: Hashable) -> int | None:
    """The avatar id of a staff member's session (the id the page draws them under), if placed."""
    i = getattr(staff, "avatar_id", None)
    return i if isinstance(i, int) and i >= 0 else None


def ticket_view(desks: Desks, t: Ticket, now: float) -> dict[str, Any]:
    """A resident's own ticket."""
    pos = desks.position(t)
    out: dict[str, Any] = {
        "counter": t.counter,
        "number": t.number,
        "state": t.state.value,
        "position": pos,
        "ahead": max(pos - 1, 0),
        "wait_s": desks.wait_s(t),
    }
    if t.state is State.CALLED and t.deadline is not None:
        # the wall-clock ms the call lapses (the client counts down against server_time)
        out["call_deadline_ms"] = round((time.time() + (t.deadline - now)) * 1000.0)
        out["booth"] = t.zone
    return out


def ended_view(t: Ticket) -> dict[str, Any]:
    """A ticket that just ended (``NOTICE counter_ticket``): how, so the page can say it."""
    return {"counter": t.counter, "number": t.number, "state": t.state.value}


def booth_view(c: Consultation, me: Hashable, name: Callable[[Hashable], str]) -> dict[str, Any]:
    """The consultation ``me`` is in."""
    other = c.resident if me is c.staff else c.staff
    return {
        "zone": c.zone,
        "counter": c.counter,
        "with": name(other),
        "screen": c.screen,
        "link": c.link,
    }


def desk_view(
    desks: Desks,
    staff: Hashable,
    book: Book,
    day: str,
    now: float,
    name: Callable[[Hashable], str],
) -> dict[str, Any]:
    """A staff member's desk: the queue of their counter, its bookings today, their booth."""
    counter = desks.duty.get(staff)
    if counter is None:
        return {"counter": None, "queue": [], "bookings": [], "booth": None}
    d = desks.desks[counter]
    c = desks.consults.get(staff)
    return {
        "counter": counter,
        "queue": [
            {
                "number": t.number,
                "name": t.name,
                "state": t.state.value,
                "waited_s": round(now - t.taken),
            }
            for t in d.queue
        ],
        "bookings": [
            {"slot": b.slot, "name": b.name, "state": b.state}
            for b in book.of_day(day)
            if b.counter == counter
        ],
        "booth": booth_view(c, staff, name) if c is not None else None,
    }
