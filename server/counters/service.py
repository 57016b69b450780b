"""The counters service: sessions, avatars and time around the pure desks.

Synchronous, never awaiting a peer (the handlers and hooks of ``server.counters`` call it). One
:class:`~server.counters.desks.Desks` per instance: a counter's staff serve the residents of the
instance they stand in. A holder in the desks is a :class:`~server.session.Session`; a resident
whose session left (the resume window passed) keeps a waiting ticket under the old session until
GONE_SECONDS after the connection went, and gets it back when a new hello names the old resume
token (:meth:`CounterService.adopt`).

Every change marks the service dirty; :meth:`flush` (about 4 times a second) sends each session
its ``COUNTER_STATE`` when it differs from what it was sent last.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from server.protocol.messages import Notice
from server.session import SessionState
from world.model import Counter, World

from . import seats, view
from .booking import Attempts, Book, Booking, is_open
from .desks import Consultation, Desks, Ticket
from .machine import FINAL, Refused
from .refs import Refs
from .wire import CounterState

if TYPE_CHECKING:
    from server.instance import Instance
    from server.session import Session

__all__ = ["CounterService", "REFUSALS_COUNTED"]

#: refusals counted at /metrics as ``emachi_counters_refused_total{reason}`` (the issue's list
#: and the others a peer can cause; every refusal is counted under its code)
REFUSALS_COUNTED = ("ticket_rate", "ticket_exists", "not_called", "code_unknown", "code_rate")


class CounterService:
    """The counters of one process.

    Args:
        world: the world (its counters and zones).
        clock: the wall time in the city's zone (tests pass their own).
        always_open: ignore the service hours (a test server).
        record: ``fn(counter, field, amount)`` for what the city learns (the Store, by hour).
        booked: ``fn(booking)`` when a reservation reaches a new state (kept in the Store, so a
            code used stays used across a restart).
    """

    def __init__(
        self,
        world: World,
        clock: Callable[[], datetime],
        *,
        always_open: bool = False,
        book: Book,
        record: Callable[[str, str, float], None] | None = None,
        booked: Callable[[Booking], None] | None = None,
    ) -> None:
        self.world = world
        self.clock = clock
        self.always_open = always_open
        self.book = book
        self.record = record or (lambda c, f, n: None)
        self.booked = booked or (lambda b: None)
        self.specs: dict[str, Counter] = {c.id: c for c in world.counters}
        self.desks: dict[Instance, Desks] = {}
        self.refs = Refs()
        self.attempts = Attempts()
        self.refused: Tally[str] = Tally()
        self.sent: dict[Session, dict[str, Any]] = {}
        self.dirty = True
        #: resume token of a session that left → that session (its ticket waits for it)
        self.orphans: dict[str, Session] = {}
        #: a hello's resume token and when, kept until the session is placed (``adopt``); a
        #: hello that resumed leaves its entry behind, forgotten by the sweep after a minute
        self.prior: dict[Session, tuple[str, float]] = {}
        self._open_now: dict[str, bool] = {}

    # -- lookups --------------------------------------------------------------------------------

    def in_hours(self, counter: str) -> bool:
        if self.always_open:
            return True
        return is_open(self.specs[counter].hours, self.clock())

    def of(self, inst: Instance) -> Desks:
        d = self.desks.get(inst)
        if d is None:
            d = self.desks[inst] = Desks(self.world.counters, self.record, self.booked)
        return d

    def desks_of(self, session: Session) -> Desks:
        if session.instance is None or session.avatar_id < 0:
            raise Refused("counter_no_avatar", "the counters serve people in the hall")
        return self.of(session.instance)

    def refuse(self, exc: Refused) -> Refused:
        self.refused[exc.code] += 1
        return exc

    @staticmethod
    def name(holder: object) -> str:
        return str(getattr(holder, "name", holder))

    # -- residents ------------------------------------------------------------------------------

    def ticket(self, session: Session, counter: str) -> Ticket:
        d = self.desks_of(session)
        if counter not in self.specs:
            raise Refused("counter_unknown", f"there is no counter {counter[:64]!r}")
        t = d.take(session, session.name, counter, time.monotonic(), self.in_hours(counter))
        self.dirty = True
        return t

    def leave(self, session: Session) -> None:
        self.desks_of(session).leave(session)
        self.dirty = True

    def accept(self, session: Session) -> Consultation:
        c = self.desks_of(session).accept(session, time.monotonic())
        self._seat(c)
        self.dirty = True
        return c

    def enter(self, session: Session, code: str, address: str) -> Consultation:
        d = self.desks_of(session)
        mono = time.monotonic()
        if self.attempts.blocked(address, mono):
            raise Refused(
                "code_rate", "too many wrong codes from this address: try again in 10 minutes"
            )
        b = self.book.find(code)
        if b is None:
            self.attempts.wrong(address, mono)
            raise Refused("code_unknown", "no reservation has this code")
        now = self.clock()
        if b.over(now):
            raise Refused("slot_over", f"this reservation's slot {b.slot} is over")
        if not b.due(now):
            raise Refused("slot_not_yet", f"this reservation is for {b.slot}: come back then")
        c = d.enter(session, session.name, b, mono)
        self._seat(c)
        self.dirty = True
        return c

    # -- staff ----------------------------------------------------------------------------------

    def duty(self, session: Session, counter: str) -> None:
        d = self.desks_of(session)
        d.on_duty(session, session.name, counter, time.monotonic())
        spec = self.specs[counter]
        seats.place(session, spec, behind=True)
        self.dirty = True

    def off_duty(self, session: Session) -> None:
        d = self.desks_of(session)
        ended = [c for c in [d.consults.get(session)] if c is not None]
        changed = d.off_duty(session, time.monotonic())
        for c in ended:
            self._unseat(c)
        self._told(changed)
        self.dirty = True

    def call(self, session: Session) -> Ticket:
        t = self.desks_of(session).call(session, time.monotonic())
        resident: Any = t.holder
        if getattr(resident, "state", None) is SessionState.ACTIVE:
            resident.send(
                Notice(
                    kind="counter_call",
                    data={"counter": t.counter, "number": t.number, "booth": t.zone},
                ).encode()
            )
        self.dirty = True
        return t

    def end(self, session: Session) -> Consultation:
        c = self.desks_of(session).end(session, time.monotonic())
        self._unseat(c)
        self._told([c.ticket])
        self.dirty = True
        return c

    def consultation(self, session: Session) -> Consultation:
        c = self.desks_of(session).consultation(session)
        if c.staff is not session:
            raise Refused("not_staff", "only the staff member in the booth can do this")
        return c

    # -- the session's life ---------------------------------------------------------------------

    def joined(self, session: Session) -> None:
        if session.instance is not None:
            self.of(session.instance)
        self.adopt(session)
        self.dirty = True

    def adopt(self, session: Session) -> None:
        """A new session whose hello named the resume token of one that left with a ticket:
        the ticket is its again (same instance only: a queue belongs to its instance)."""
        token = self.prior.pop(session, ("", 0.0))[0]
        old = self.orphans.pop(token, None) if token else None
        if old is None or old.instance is None:
            return
        d = self.desks.get(old.instance)
        if d is None:
            return
        if session.instance is not old.instance:
            t = d.drop(old, time.monotonic())
            self._told([t] if t else [])
            return
        d.rebind(old, session)

    def left(self, session: Session) -> None:
        """A session left for good: a staff member goes off duty, a consultation ends; a waiting
        ticket waits for its resident until GONE_SECONDS after the connection went."""
        self.sent.pop(session, None)
        self.prior.pop(session, None)
        inst = session.instance
        d = self.desks.get(inst) if inst is not None else None
        if d is None:
            return
        now = time.monotonic()
        c = d.consults.get(session)
        if session in d.duty or c is not None:
            t = d.drop(session, now)
            if c is not None:
                self._unseat(c)
            self._told([t] if t else [])
        elif session in d.tickets:
            self.orphans[session.resume_token] = session
        d.forget(session)
        self.dirty = True

    def created(self, inst: Instance) -> None:
        self.of(inst)
        self.dirty = True

    def disposed(self, inst: Instance) -> None:
        self.desks.pop(inst, None)

    @staticmethod
    def gone_for(holder: object, now: float) -> float:
        state = getattr(holder, "state", None)
        if state in (SessionState.DETACHED, SessionState.CLOSED):
            return now - float(getattr(holder, "detached_at", now))
        return 0.0

    def sweep(self) -> None:
        """Once a second: calls past their deadline, residents gone, hours that opened or closed,
        bookings whose slot went by; orphans forgotten once dropped."""
        now = time.monotonic()
        for d in list(self.desks.values()):
            changed = d.sweep(now, lambda h: self.gone_for(h, now))
            if changed:
                self._told(changed)
                self.dirty = True
        for s, (_, since) in list(self.prior.items()):
            if now - since > 60.0:
                del self.prior[s]
        for token, s in list(self.orphans.items()):
            if not any(s in d.tickets for d in self.desks.values()):
                del self.orphans[token]
        opened = {cid: self.in_hours(cid) for cid in self.specs}
        if opened != self._open_now:
            self._open_now = opened
            self.dirty = True
        wall = self.clock()
        for b in self.book.by_slot.values():
            if b.state == "booked" and b.over(wall):
                b.state = "no_show"
                self.booked(b)
                self.record(b.counter, "no_shows", 1)
                self.dirty = True

    # -- sending --------------------------------------------------------------------------------

    def flush(self) -> int:
        """Send each session of every instance its state if it changed; the number sent."""
        if not self.dirty:
            return 0
        self.dirty = False
        sent = 0
        now = time.monotonic()
        day = self.clock().date().isoformat()
        for inst, d in list(self.desks.items()):
            public = view.counters_view(d, self.in_hours, self.name)
            # what everyone with no ticket, booth or desk sees: one payload, encoded once
            plain = {"counters": public, "ticket": None, "booth": None, "desk": None}
            plain_frame: bytes | None = None
            for s in list(inst.sessions.values()):
                if s.state is not SessionState.ACTIVE:
                    continue
                state = self.state_of(d, s, public, day, now)
                if self.sent.get(s) != state:
                    self.sent[s] = state
                    if state == plain:
                        if plain_frame is None:
                            plain_frame = CounterState(state=plain).encode()
                        s.send(plain_frame)
                    else:
                        s.send(CounterState(state=state).encode())
                    sent += 1
        return sent

    def state_of(
        self, d: Desks, s: Session, public: list[dict[str, Any]], day: str, now: float
    ) -> dict[str, Any]:
        t = d.tickets.get(s)
        c = d.consults.get(s)
        return {
            "counters": public,
            "ticket": view.ticket_view(d, t, now) if t is not None and c is None else None,
            "booth": view.booth_view(c, s, self.name) if c is not None else None,
            "desk": view.desk_view(d, s, self.book, day, now, self.name)
            if s.role == "staff"
            else None,
        }

    def resend(self, session: Session) -> None:
        """A resumed socket knows nothing: send its state at the next flush."""
        self.sent.pop(session, None)
        self.dirty = True

    def _told(self, tickets: list[Ticket]) -> None:
        """Tell each resident whose ticket ended how (``NOTICE counter_ticket``)."""
        for t in tickets:
            h: Any = t.holder
            if t.state in FINAL and getattr(h, "state", None) is SessionState.ACTIVE:
                h.send(Notice(kind="counter_ticket", data=view.ended_view(t)).encode())

    # -- avatars --------------------------------------------------------------------------------

    def _seat(self, c: Consultation) -> None:
        seats.seat(self.world, c.zone, c.resident, c.staff)

    def _unseat(self, c: Consultation) -> None:
        """The resident back before the counter, the staff member (still on duty) behind it."""
        spec = self.specs[c.counter]
        seats.place(c.resident, spec, behind=False)
        if self.of_staff(c.staff) is not None:
            seats.place(c.staff, spec, behind=True)

    def of_staff(self, staff: object) -> str | None:
        inst = getattr(staff, "instance", None)
        d = self.desks.get(inst) if inst is not None else None
        return d.duty.get(staff) if d is not None else None
