"""The queue and the consultation as one table: every (state, event) pair, allowed or refused."""

from __future__ import annotations

import pytest

from server.counters.machine import FINAL, TABLE, Event, Refused, Ticket, can, step

T, E = Ticket, Event

#: the whole machine as the contract (docs/counters.md) states it; every other pair is refused
EXPECTED = [
    (T.WAITING, E.CALL, T.CALLED),
    (T.WAITING, E.LEAVE, T.LEFT),
    (T.WAITING, E.GONE, T.DROPPED),
    (T.CALLED, E.ACCEPT, T.IN_BOOTH),
    (T.CALLED, E.LEAVE, T.LEFT),
    (T.CALLED, E.GONE, T.DROPPED),
    (T.CALLED, E.TIMEOUT, T.NO_SHOW),
    (T.CALLED, E.RELEASE, T.WAITING),
    (T.BOOKED, E.ENTER, T.IN_BOOTH),
    (T.BOOKED, E.TIMEOUT, T.NO_SHOW),
    (T.IN_BOOTH, E.END, T.DONE),
    (T.IN_BOOTH, E.GONE, T.DONE),
]

#: a few refusals as a person reads them: (state, event, code)
REFUSED = [
    (T.WAITING, E.ACCEPT, "not_called"),  # a booth join without a call
    (T.BOOKED, E.ACCEPT, "not_called"),
    (T.DONE, E.ENTER, "code_used"),  # a reservation code used twice
    (T.IN_BOOTH, E.CALL, "not_waiting"),
    (T.WAITING, E.END, "not_in_booth"),
    (T.LEFT, E.LEAVE, "not_in_queue"),
    (T.DONE, E.TIMEOUT, "not_pending"),
]


@pytest.mark.parametrize(("state", "event", "after"), EXPECTED)
def test_allowed_transitions(state: Ticket, event: Event, after: Ticket) -> None:
    assert can(state, event)
    assert step(state, event) is after


def test_the_table_is_exactly_the_contract() -> None:
    assert {(s, e): a for s, e, a in EXPECTED} == TABLE


@pytest.mark.parametrize(("state", "event", "code"), REFUSED)
def test_refused_transitions_say_why(state: Ticket, event: Event, code: str) -> None:
    with pytest.raises(Refused) as caught:
        step(state, event)
    assert caught.value.code == code
    assert state.value in caught.value.reason


@pytest.mark.parametrize("state", sorted(FINAL, key=lambda s: s.value))
def test_a_final_state_is_never_left(state: Ticket) -> None:
    for event in Event:
        assert not can(state, event)
        with pytest.raises(Refused):
            step(state, event)
