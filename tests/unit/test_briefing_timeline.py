"""The briefing timeline: its state table, and where it is at a given server time."""

from __future__ import annotations

import itertools

import pytest

from server.briefing.timeline import TRANSITIONS, Action, State, Timeline, TimelineError

LENGTHS = [10.0, 5.0, 20.0]  # seconds of audio + pause per segment

# the whole table, read top to bottom: (state, action) -> new state; anything else is refused
EXPECTED = {
    (State.SCHEDULED, Action.START): State.LIVE,
    (State.SCHEDULED, Action.SEEK): State.SCHEDULED,
    (State.SCHEDULED, Action.RATE): State.SCHEDULED,
    (State.SCHEDULED, Action.END): State.ENDED,
    (State.LIVE, Action.PAUSE): State.PAUSED,
    (State.LIVE, Action.SEEK): State.LIVE,
    (State.LIVE, Action.RATE): State.LIVE,
    (State.LIVE, Action.END): State.ENDED,
    (State.PAUSED, Action.RESUME): State.LIVE,
    (State.PAUSED, Action.SEEK): State.PAUSED,
    (State.PAUSED, Action.RATE): State.PAUSED,
    (State.PAUSED, Action.END): State.ENDED,
}


def test_the_table_is_exactly_the_documented_one() -> None:
    assert TRANSITIONS == EXPECTED


@pytest.mark.parametrize(("state", "action"), list(itertools.product(State, Action)))
def test_every_state_and_action(state: State, action: Action) -> None:
    tl = Timeline(list(LENGTHS), state=state)
    kw = (
        {"segment": 1} if action is Action.SEEK else {"rate": 1.25} if action is Action.RATE else {}
    )
    if (state, action) in EXPECTED:
        assert tl.apply(action, 1000.0, **kw) is EXPECTED[(state, action)]
        assert tl.state is EXPECTED[(state, action)]
    else:
        with pytest.raises(TimelineError, match=f"cannot {action.value}"):
            tl.apply(action, 1000.0, **kw)
        assert tl.state is state


def test_position_runs_while_live_and_stops_while_paused() -> None:
    tl = Timeline(list(LENGTHS))
    assert tl.position(0.0) == 0.0
    tl.apply(Action.START, 1_000.0)
    assert tl.position(4_000.0) == pytest.approx(3.0)
    assert tl.segment_at(tl.position(4_000.0)) == 0
    tl.apply(Action.PAUSE, 12_000.0)
    assert tl.position(60_000.0) == pytest.approx(11.0)
    assert tl.segment_at(11.0) == 1
    tl.apply(Action.RESUME, 100_000.0)
    assert tl.position(102_000.0) == pytest.approx(13.0)
    assert tl.played == pytest.approx(11.0 + 0.0)


def test_seek_goes_to_the_start_of_a_segment_in_any_running_state() -> None:
    tl = Timeline(list(LENGTHS))
    tl.apply(Action.START, 0.0)
    tl.apply(Action.SEEK, 2_000.0, segment=2)
    assert tl.position(2_000.0) == 15.0
    assert tl.position(3_000.0) == 16.0
    tl.apply(Action.PAUSE, 3_000.0)
    tl.apply(Action.SEEK, 9_000.0, segment=0)
    assert tl.position(50_000.0) == 0.0


@pytest.mark.parametrize("segment", [-1, 3, None])
def test_seek_to_a_segment_that_does_not_exist_is_refused(segment: int | None) -> None:
    tl = Timeline(list(LENGTHS))
    with pytest.raises(TimelineError, match="segment: expected 0 to 2"):
        tl.apply(Action.SEEK, 0.0, segment=segment)


def test_rate_changes_how_fast_the_position_moves_from_now_on() -> None:
    tl = Timeline(list(LENGTHS))
    tl.apply(Action.START, 0.0)
    tl.apply(Action.RATE, 2_000.0, rate=1.5)
    assert tl.position(4_000.0) == pytest.approx(5.0)
    with pytest.raises(TimelineError, match="rate: expected"):
        tl.apply(Action.RATE, 4_000.0, rate=3.0)


def test_a_live_briefing_is_finished_at_its_end_and_never_runs_past_it() -> None:
    tl = Timeline(list(LENGTHS))
    tl.apply(Action.START, 0.0)
    assert not tl.finished(34_000.0)
    assert tl.finished(35_000.0)
    assert tl.position(99_000.0) == 35.0


def test_the_wire_form_lets_a_client_compute_the_same_position() -> None:
    tl = Timeline(list(LENGTHS))
    tl.apply(Action.START, 1_000.0)
    tl.apply(Action.SEEK, 5_000.0, segment=1)
    d = tl.to_json(7_000.0)
    assert d["state"] == "live" and d["segment"] == 1
    client = d["offset"] + (7_000.0 - d["anchor"]) / 1000.0 * d["rate"]
    assert client == pytest.approx(tl.position(7_000.0))
    assert (7_000.0 - d["origin"]) / 1000.0 * d["rate"] == pytest.approx(tl.position(7_000.0))
