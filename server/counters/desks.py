"""The counters' live state: who is on duty, the queues, the calls, the consultations and their
booths. Pure: a holder (a resident or a staff member) is any hashable the shell chooses (its
sessions), the time is passed in (monotonic seconds), and every ticket moves only through the
table of :mod:`server.counters.machine`.

What the city learns is handed to ``record(counter, field, amount)`` as it happens: ``tickets``,
``served``, ``no_shows``, ``left``, ``dropped``, ``wait_s`` (taken → accepted), ``service_s``
(accepted → ended). The shell adds the hour and writes them to the Store.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from world.model import Counter

from .booking import Booking
from .machine import FINAL, Event, Refused, step
from .machine import Ticket as State
from .wait import ServiceTimes

__all__ = [
    "CALL_SECONDS",
    "GONE_SECONDS",
    "TICKET_LIMIT",
    "TICKET_WINDOW",
    "Ticket",
    "Consultation",
    "Desk",
    "Desks",
]

#: a called resident has this long to accept
CALL_SECONDS = 120.0
#: a resident without a connection this long drops out of the queue
GONE_SECONDS = 180.0
#: at most this many tickets per resident in TICKET_WINDOW seconds (take, leave, take, ...)
TICKET_LIMIT = 5
TICKET_WINDOW = 600.0

Record = Callable[[str, str, float], None]


@dataclass(eq=False, slots=True)
class Ticket:
    """One resident's place at one counter (a walk-in, or a reservation entered)."""

    counter: str
    number: int
    holder: Hashable
    name: str
    state: State
    taken: float
    deadline: float | None = None  # a call's: accept before this
    zone: str = ""  # the booth a call keeps for it
    staff: Hashable | None = None  # who called it
    booking: Booking | None = None

    def to(self, event: Event) -> None:
        self.state = step(self.state, event)
        if self.booking is not None:
            self.booking.state = self.state.value


@dataclass(eq=False, slots=True)
class Consultation:
    """A resident and a staff member in a booth."""

    counter: str
    zone: str
    staff: Hashable
    resident: Hashable
    ticket: Ticket
    started: float
    screen: dict[str, Any] | None = None
    link: dict[str, Any] | None = None


@dataclass(eq=False, slots=True)
class Desk:
    """One counter: its world entry, the staff on duty (in order), its queue and its times."""

    spec: Counter
    staff: list[Hashable] = field(default_factory=list)
    queue: list[Ticket] = field(default_factory=list)  # waiting and called, in order
    times: ServiceTimes = field(default_factory=ServiceTimes)
    numbers: int = 0


class Desks:
    """Every counter's state and the one ticket and one consultation each holder may have."""

    def __init__(
        self,
        counters: Iterable[Counter],
        record: Record | None = None,
        booked: Callable[[Booking], None] | None = None,
    ) -> None:
        self.desks = {c.id: Desk(c) for c in counters}
        self.record: Record = record or (lambda counter, what, n: None)
        #: told of every state a reservation reaches here (the shell keeps it in the Store)
        self.booked: Callable[[Booking], None] = booked or (lambda b: None)
        self.tickets: dict[Hashable, Ticket] = {}  # a resident's live ticket
        self.consults: dict[Hashable, Consultation] = {}  # by resident and by staff
        self.duty: dict[Hashable, str] = {}  # staff → counter
        self.names: dict[Hashable, str] = {}
        self.taken: dict[Hashable, deque[float]] = {}

    # -- what is shown ------------------------------------------------------------------------

    def desk(self, counter: str) -> Desk:
        d = self.desks.get(counter)
        if d is None:
            raise Refused("counter_unknown", f"there is no counter {counter[:64]!r} in this hall")
        return d

    def status(self, counter: str, in_hours: bool) -> str:
        """``closed`` (no one on duty, or outside hours), ``busy`` (every staff member of it in a
        consultation or waiting for the one they called) or ``open``."""
        d = self.desk(counter)
        if not in_hours or not d.staff:
            return "closed"
        if all(self._engaged(s) for s in d.staff):
            return "busy"
        return "open"

    def position(self, t: Ticket) -> int:
        """1 for the next ticket to be called; 0 for one called or past the queue."""
        if t.state is not State.WAITING:
            return 0
        q = [x for x in self.desks[t.counter].queue if x.state is State.WAITING]
        return q.index(t) + 1

    def wait_s(self, t: Ticket) -> int | None:
        d = self.desks[t.counter]
        pos = self.position(t)
        return d.times.estimate(pos, len(d.staff)) if pos else 0

    def waiting(self, counter: str) -> int:
        return sum(1 for t in self.desk(counter).queue if t.state is State.WAITING)

    def counter_wait(self, counter: str) -> int | None:
        """The wait a resident taking a ticket now would be told."""
        d = self.desk(counter)
        return d.times.estimate(self.waiting(counter) + 1, len(d.staff))

    def booths_in_use(self) -> set[str]:
        used = {c.zone for c in self.consults.values()}
        for d in self.desks.values():
            used.update(t.zone for t in d.queue if t.state is State.CALLED)
        return used

    # -- residents ----------------------------------------------------------------------------

    def take(self, holder: Hashable, name: str, counter: str, now: float, in_hours: bool) -> Ticket:
        """A ticket at ``counter`` for ``holder``.

        Raises:
            Refused: ``counter_unknown``, ``counter_closed``, ``staff_no_ticket``,
                ``ticket_exists``, ``ticket_rate`` (a flood of take and leave).
        """
        d = self.desk(counter)
        if holder in self.duty:
            raise Refused("staff_no_ticket", "staff on duty do not take tickets")
        if self.status(counter, in_hours) == "closed":
            why = "no one is on duty" if in_hours else f"it serves {d.spec.hours.text()}"
            raise Refused("counter_closed", f"this counter is closed now: {why}")
        mine = self.tickets.get(holder)
        if mine is not None:
            raise Refused(
                "ticket_exists", f"you already have ticket {mine.number} at {mine.counter}"
            )
        times = self.taken.setdefault(holder, deque())
        while times and now - times[0] > TICKET_WINDOW:
            times.popleft()
        if len(times) >= TICKET_LIMIT:
            raise Refused(
                "ticket_rate",
                f"at most {TICKET_LIMIT} tickets in {TICKET_WINDOW / 60:g} minutes; wait a little",
            )
        times.append(now)
        d.numbers += 1
        t = Ticket(counter, d.numbers, holder, name, State.WAITING, now)
        d.queue.append(t)
        self.tickets[holder] = t
        self.record(counter, "tickets", 1)
        return t

    def leave(self, holder: Hashable) -> Ticket:
        """``holder`` leaves the queue.

        Raises:
            Refused: no ticket (``no_ticket``), or one past the queue (the table's refusal).
        """
        t = self._ticket(holder)
        t.to(Event.LEAVE)
        self._retire(t)
        self.record(t.counter, "left", 1)
        return t

    def accept(self, holder: Hashable, now: float) -> Consultation:
        """``holder`` accepts their call: the consultation starts in the booth kept for it.

        Raises:
            Refused: no ticket, or ``not_called`` (no call to accept).
        """
        t = self.tickets.get(holder)
        if t is None:
            raise Refused("not_called", "there is no call to accept: take a ticket first")
        t.to(Event.ACCEPT)
        assert t.staff is not None
        self._retire(t, keep=True)
        self.record(t.counter, "wait_s", now - t.taken)
        return self._begin(t, t.staff, t.zone, now)

    def enter(self, holder: Hashable, name: str, booking: Booking, now: float) -> Consultation:
        """``holder`` entered the code of ``booking`` during its slot: straight to the booth,
        with a staff member of its counter who is free.

        Raises:
            Refused: ``code_used``, ``ticket_exists``, ``staff_busy``, ``no_booth``.
        """
        d = self.desk(booking.counter)
        if holder in self.tickets or holder in self.consults:
            raise Refused("ticket_exists", "leave your ticket or consultation first")
        t = Ticket(booking.counter, 0, holder, name, State(booking.state), now, booking=booking)
        if t.state is not State.BOOKED:
            step(t.state, Event.ENTER)  # raises the table's refusal (code_used)
        staff = next((s for s in d.staff if not self._engaged(s)), None)
        if staff is None:
            raise Refused("staff_busy", "no one at this counter is free yet: try again shortly")
        zone = self._free_booth(d)
        if zone is None:
            raise Refused("no_booth", "every consultation booth is taken: try again shortly")
        t.to(Event.ENTER)
        self.booked(booking)
        self.record(t.counter, "tickets", 1)
        return self._begin(t, staff, zone, now)

    # -- staff ----------------------------------------------------------------------------------

    def on_duty(self, staff: Hashable, name: str, counter: str, now: float) -> Desk:
        """``staff`` takes ``counter`` (leaving any other first)."""
        d = self.desk(counter)
        if staff in self.tickets:
            raise Refused("ticket_exists", "leave your ticket before going on duty")
        if self.duty.get(staff) != counter:
            self.off_duty(staff, now)
            self.duty[staff] = counter
            d.staff.append(staff)
        self.names[staff] = name
        return d

    def off_duty(self, staff: Hashable, now: float) -> list[Ticket]:
        """``staff`` leaves their counter; a consultation of theirs ends, a call of theirs goes
        back to the front of the queue. The tickets that changed."""
        changed: list[Ticket] = []
        counter = self.duty.pop(staff, None)
        if counter is None:
            return changed
        c = self.consults.get(staff)
        if c is not None:
            changed.append(self.end(staff, now).ticket)
        d = self.desks[counter]
        d.staff.remove(staff)
        for t in d.queue:
            if t.state is State.CALLED and t.staff is staff:
                t.to(Event.RELEASE)
                t.staff, t.zone, t.deadline = None, "", None
                changed.append(t)
        self.names.pop(staff, None)
        return changed

    def call(self, staff: Hashable, now: float) -> Ticket:
        """``staff`` calls the first waiting ticket of their counter; a booth is kept for it.

        Raises:
            Refused: ``not_on_duty``, ``staff_busy`` (in a consultation or a call pending),
                ``queue_empty``, ``no_booth``.
        """
        counter = self.duty.get(staff)
        if counter is None:
            raise Refused("not_on_duty", "take a counter (duty) before calling")
        if self._engaged(staff):
            raise Refused("staff_busy", "end your consultation (or wait for your call) first")
        d = self.desks[counter]
        t = next((x for x in d.queue if x.state is State.WAITING), None)
        if t is None:
            raise Refused("queue_empty", "nobody is waiting at this counter")
        zone = self._free_booth(d)
        if zone is None:
            raise Refused("no_booth", "every consultation booth is taken: end one first")
        t.to(Event.CALL)
        t.staff, t.zone, t.deadline = staff, zone, now + CALL_SECONDS
        return t

    def consultation(self, holder: Hashable) -> Consultation:
        c = self.consults.get(holder)
        if c is None:
            raise Refused("not_in_booth", "there is no consultation: call a ticket first")
        return c

    def end(self, staff: Hashable, now: float) -> Consultation:
        """``staff`` ends their consultation; its booth is free.

        Raises:
            Refused: ``not_in_booth``.
        """
        c = self.consultation(staff)
        if c.staff is not staff:
            raise Refused("not_staff", "only the staff member ends a consultation")
        return self._finish(c, Event.END, now)

    # -- time -----------------------------------------------------------------------------------

    def sweep(self, now: float, gone_for: Callable[[Hashable], float]) -> list[Ticket]:
        """Calls past their deadline become no-shows; residents gone (``gone_for(holder)``
        seconds without a connection) past GONE_SECONDS drop out. The tickets that changed."""
        changed = []
        for d in self.desks.values():
            for t in list(d.queue):
                if t.state is State.CALLED and t.deadline is not None and now >= t.deadline:
                    t.to(Event.TIMEOUT)
                    self._retire(t)
                    self.record(t.counter, "no_shows", 1)
                    changed.append(t)
                elif gone_for(t.holder) > GONE_SECONDS:
                    self.drop(t.holder, now)
                    changed.append(t)
        for c in {id(c): c for c in self.consults.values()}.values():
            if gone_for(c.resident) > GONE_SECONDS:
                self.drop(c.resident, now)
                changed.append(c.ticket)
        return changed

    def drop(self, holder: Hashable, now: float) -> Ticket | None:
        """``holder`` is gone for good: their ticket drops out, their consultation ends, and a
        staff member goes off duty."""
        if holder in self.duty:
            self.off_duty(holder, now)
            return None
        c = self.consults.get(holder)
        if c is not None:
            return self._finish(c, Event.GONE, now).ticket
        t = self.tickets.get(holder)
        if t is None:
            return None
        t.to(Event.GONE)
        self._retire(t)
        self.record(t.counter, "dropped", 1)
        return t

    def rebind(self, old: Hashable, new: Hashable) -> Ticket | None:
        """The ticket of ``old`` is ``new``'s now (a resident back on a new connection)."""
        t = self.tickets.pop(old, None)
        if t is None:
            return None
        t.holder = new
        self.tickets[new] = t
        self.taken[new] = self.taken.pop(old, deque())
        return t

    def forget(self, holder: Hashable) -> None:
        self.taken.pop(holder, None)

    # -- inside ---------------------------------------------------------------------------------

    def _ticket(self, holder: Hashable) -> Ticket:
        t = self.tickets.get(holder)
        if t is None:
            raise Refused("no_ticket", "you have no ticket")
        return t

    def _engaged(self, staff: Hashable) -> bool:
        if staff in self.consults:
            return True
        counter = self.duty.get(staff)
        return counter is not None and any(
            t.state is State.CALLED and t.staff is staff for t in self.desks[counter].queue
        )

    def _free_booth(self, d: Desk) -> str | None:
        used = self.booths_in_use()
        return next((z for z in d.spec.booths if z not in used), None)

    def _retire(self, t: Ticket, keep: bool = False) -> None:
        """Take ``t`` out of its queue (and, unless ``keep``, forget it as the holder's)."""
        q = self.desks[t.counter].queue
        if t in q:
            q.remove(t)
        if not keep and self.tickets.get(t.holder) is t:
            del self.tickets[t.holder]

    def _begin(self, t: Ticket, staff: Hashable, zone: str, now: float) -> Consultation:
        c = Consultation(t.counter, zone, staff, t.holder, t, now)
        self.tickets[t.holder] = t
        self.consults[t.holder] = c
        self.consults[staff] = c
        return c

    def _finish(self, c: Consultation, event: Event, now: float) -> Consultation:
        c.ticket.to(event)
        assert c.ticket.state in FINAL
        if c.ticket.booking is not None:
            self.booked(c.ticket.booking)
        self.consults.pop(c.staff, None)
        self.consults.pop(c.resident, None)
        if self.tickets.get(c.resident) is c.ticket:
            del self.tickets[c.resident]
        took = now - c.started
        self.desks[c.counter].times.record(took)
        self.record(c.counter, "served", 1)
        self.record(c.counter, "service_s", took)
        return c
