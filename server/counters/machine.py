"""The queue and the consultation as one state machine: a ticket's states and the one table of
(state, event) → state (``docs/counters.md``, "States").

A walk-in ticket starts ``waiting``; a reservation starts ``booked``. Both end in the booth with
``done``, or out of it with ``left``, ``dropped`` or ``no_show``. Any pair not in :data:`TABLE` is
refused with the event's code and a reason a person can read (:class:`Refused`). Pure: no time,
no sockets; the desks (``server.counters.desks``) feed it events.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["Ticket", "Event", "TABLE", "FINAL", "Refused", "step", "can"]


class Ticket(enum.Enum):
    """Where a ticket (or a reservation) is."""

    BOOKED = "booked"  # a reservation, before its resident entered the code
    WAITING = "waiting"  # in the queue
    CALLED = "called"  # staff called it; the resident has CALL_SECONDS to accept
    IN_BOOTH = "in_booth"  # resident and staff in a consultation booth
    DONE = "done"  # the consultation ended
    LEFT = "left"  # the resident left the queue
    DROPPED = "dropped"  # the resident was gone (no connection) past GONE_SECONDS
    NO_SHOW = "no_show"  # a call not accepted in time; a reservation whose slot went by


class Event(enum.Enum):
    """What can happen to a ticket."""

    CALL = "call"  # staff call the next ticket
    ACCEPT = "accept"  # the resident accepts the call
    ENTER = "enter"  # the resident entered a reservation code during its slot
    LEAVE = "leave"  # the resident leaves the queue
    GONE = "gone"  # the resident has had no connection for GONE_SECONDS
    TIMEOUT = "timeout"  # a call's CALL_SECONDS, or a reservation's slot, went by
    END = "end"  # staff end the consultation
    RELEASE = "release"  # the staff member who called went off duty: back to the queue's front


T, E = Ticket, Event

#: the whole machine, read top to bottom
TABLE: Final[dict[tuple[Ticket, Event], Ticket]] = {
    (T.WAITING, E.CALL): T.CALLED,
    (T.WAITING, E.LEAVE): T.LEFT,
    (T.WAITING, E.GONE): T.DROPPED,
    (T.CALLED, E.ACCEPT): T.IN_BOOTH,
    (T.CALLED, E.LEAVE): T.LEFT,
    (T.CALLED, E.GONE): T.DROPPED,
    (T.CALLED, E.TIMEOUT): T.NO_SHOW,
    (T.CALLED, E.RELEASE): T.WAITING,
    (T.BOOKED, E.ENTER): T.IN_BOOTH,
    (T.BOOKED, E.TIMEOUT): T.NO_SHOW,
    (T.IN_BOOTH, E.END): T.DONE,
    (T.IN_BOOTH, E.GONE): T.DONE,  # a consultation whose resident vanished is over
}

#: states a ticket never leaves
FINAL: Final = frozenset({T.DONE, T.LEFT, T.DROPPED, T.NO_SHOW})

#: what a refused event says: its ERROR code, and why, by event
_REFUSALS: Final[dict[Event, tuple[str, str]]] = {
    E.CALL: ("not_waiting", "only a waiting ticket can be called"),
    E.ACCEPT: ("not_called", "there is no call to accept: wait until the counter calls you"),
    E.ENTER: ("code_used", "this reservation is not waiting for its resident any more"),
    E.LEAVE: ("not_in_queue", "only a waiting or called ticket can leave the queue"),
    E.GONE: ("not_in_queue", "this ticket is not in the queue"),
    E.TIMEOUT: ("not_pending", "only a call or a reservation can time out"),
    E.END: ("not_in_booth", "there is no consultation to end"),
    E.RELEASE: ("not_called", "only a called ticket goes back to the queue"),
}


class Refused(Exception):  # noqa: N818 - a refusal, said as such
    """An event the table does not allow (or a request the desks refuse): ``code`` and ``reason``
    go to the peer as ERROR."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


def can(state: Ticket, event: Event) -> bool:
    """Whether ``event`` may happen to a ticket in ``state``."""
    return (state, event) in TABLE


def step(state: Ticket, event: Event) -> Ticket:
    """The state after ``event``.

    Raises:
        Refused: the table has no such transition; the code and reason say why.
    """
    nxt = TABLE.get((state, event))
    if nxt is None:
        code, why = _REFUSALS[event]
        raise Refused(code, f"{why} (the ticket is {state.value})")
    return nxt
