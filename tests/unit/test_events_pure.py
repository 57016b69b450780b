"""The pure parts of events: invite tokens and admission as a table, the agenda's state machine,
and the role x action permission table (server/events/)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from server.events import agenda as ag
from server.events.invites import EARLY_SECONDS, Claims, Invite, admit, sign, verify
from server.events.permissions import ACTIONS, allowed
from server.protocol.codes import CloseCode

SECRET = b"a secret for tests"
NOW = 1_800_000_000.0
START, END = NOW - 60, NOW + 3600
INV = Invite("inv-0000000001", "ev-0000000001", "guest", "2027年度 内定者 A", NOW + 600)
CLAIMS = Claims(INV.event, INV.id, INV.role, INV.expires)


def test_sign_verify_round_trip_and_tampering() -> None:
    token = sign(SECRET, CLAIMS)
    assert verify(SECRET, token) == CLAIMS
    assert verify(b"another server", token) is None
    head, payload, sig = token.split(".")
    forged = sign(SECRET, replace(CLAIMS, role="host")).split(".")[1]
    assert verify(SECRET, f"{head}.{forged}.{sig}") is None  # the role cannot be raised
    assert verify(SECRET, f"{head}.{payload}") is None
    assert verify(SECRET, "garbage") is None
    assert len(token) <= 256  # fits opts.invite


GOOD = dict(
    wanted_event=INV.event,
    event_start=START,
    event_end=END,
    event_cancelled=False,
    now=NOW,
    used=False,
    locked=False,
    guests=0,
    capacity=10,
)

CASES = [
    ("valid", CLAIMS, INV, {}, None),
    ("valid without naming the event", CLAIMS, INV, {"wanted_event": None}, None),
    ("bad signature", None, INV, {}, CloseCode.INVITE_INVALID),
    ("unknown invite", CLAIMS, None, {}, CloseCode.INVITE_INVALID),
    ("another event", CLAIMS, INV, {"wanted_event": "ev-9999999999"}, CloseCode.INVITE_OTHER_EVENT),
    ("revoked", CLAIMS, replace(INV, revoked=NOW - 1), {}, CloseCode.INVITE_REVOKED),
    ("expired", CLAIMS, INV, {"now": INV.expires}, CloseCode.INVITE_EXPIRED),
    ("expired record", CLAIMS, replace(INV, expires=NOW - 1), {}, CloseCode.INVITE_EXPIRED),
    ("cancelled", CLAIMS, INV, {"event_cancelled": True}, CloseCode.EVENT_OVER),
    ("over", CLAIMS, replace(INV, expires=END + 99), {"now": END}, CloseCode.EVENT_OVER),
    ("no such event", CLAIMS, INV, {"event_start": None, "event_end": None}, CloseCode.EVENT_OVER),
    (
        "too early",
        CLAIMS,
        INV,
        {"event_start": NOW + EARLY_SECONDS + 1},
        CloseCode.EVENT_NOT_STARTED,
    ),
    ("early is fine", CLAIMS, INV, {"event_start": NOW + EARLY_SECONDS - 1}, None),
    (
        "host early",
        replace(CLAIMS, role="host"),
        replace(INV, role="host"),
        {"event_start": NOW + 7200},
        None,
    ),
    (
        "single use, used",
        CLAIMS,
        replace(INV, single_use=True),
        {"used": True},
        CloseCode.INVITE_USED,
    ),
    ("multi use, used", CLAIMS, INV, {"used": True}, None),
    ("locked", CLAIMS, INV, {"locked": True}, CloseCode.EVENT_LOCKED),
    (
        "locked, host",
        replace(CLAIMS, role="host"),
        replace(INV, role="host"),
        {"locked": True},
        None,
    ),
    ("full", CLAIMS, INV, {"guests": 10}, CloseCode.EVENT_FULL),
    (
        "full, staff",
        replace(CLAIMS, role="staff"),
        replace(INV, role="staff"),
        {"guests": 10},
        None,
    ),
]


@pytest.mark.parametrize(
    ("case", "claims", "invite", "changes", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_admission_table(
    case: str,
    claims: Claims | None,
    invite: Invite | None,
    changes: dict,
    expected: CloseCode | None,
) -> None:
    assert admit(claims, invite, **{**GOOD, **changes}) == expected


# -- the agenda -----------------------------------------------------------------------------------

ITEMS = (
    ag.Item(ag.ItemKind.WELCOME, 300),
    ag.Item(ag.ItemKind.ROUND, 600, shuffle=True),
    ag.Item(ag.ItemKind.QA, 300),
    ag.Item(ag.ItemKind.CLOSING, 120),
)


def test_time_drives_the_agenda_through_every_item() -> None:
    run = ag.Run()
    run, eff = ag.tick(run, NOW - 1, ITEMS, start_at=NOW)
    assert run.phase is ag.Phase.SCHEDULED and eff == []
    run, eff = ag.tick(run, NOW, ITEMS, start_at=NOW)
    assert (run.phase, run.index, eff) == (ag.Phase.RUNNING, 0, [ag.ItemStarted(0, ITEMS[0])])
    assert ag.current(run, ITEMS) == ag.Space(tables_open=False, stage_live=True)
    assert ag.remaining(run, NOW + 100, ITEMS) == 200
    run, eff = ag.tick(run, NOW + 300, ITEMS, start_at=NOW)
    assert run.index == 1 and eff == [ag.ItemStarted(1, ITEMS[1])]
    assert ag.current(run, ITEMS) == ag.Space(tables_open=True, stage_live=False)
    # the process stalled past two items: both give way, the schedule keeps its times
    run, eff = ag.tick(run, NOW + 300 + 600 + 300 + 5, ITEMS, start_at=NOW)
    assert [e.index for e in eff if isinstance(e, ag.ItemStarted)] == [2, 3]
    assert run.started_at == NOW + 1200 and ag.remaining(run, NOW + 1205, ITEMS) == 115
    run, eff = ag.tick(run, NOW + 1320, ITEMS, start_at=NOW)
    assert run.phase is ag.Phase.ENDED and eff == [ag.Ended(ag.Phase.ENDED)]
    assert ag.current(run, ITEMS) == ag.IDLE


def test_pause_keeps_the_time_left_and_next_skips() -> None:
    run, _ = ag.step(ag.Run(), ag.Command.START, NOW, ITEMS)
    run, _ = ag.step(run, ag.Command.PAUSE, NOW + 100, ITEMS)
    assert run.phase is ag.Phase.PAUSED and ag.remaining(run, NOW + 999, ITEMS) == 200
    run, eff = ag.tick(run, NOW + 999, ITEMS, start_at=NOW)
    assert eff == [] and run.index == 0  # time does not run while paused
    run, _ = ag.step(run, ag.Command.RESUME, NOW + 1000, ITEMS)
    assert ag.remaining(run, NOW + 1000, ITEMS) == 200
    run, eff = ag.step(run, ag.Command.NEXT, NOW + 1001, ITEMS)
    assert run.index == 1 and eff[0].item.shuffle


TABLE = [(p, c, ag.TRANSITIONS.get((p, c))) for p in ag.Phase for c in ag.Command]


@pytest.mark.parametrize(
    ("phase", "command", "after"), TABLE, ids=[f"{p}-{c}" for p, c, _ in TABLE]
)
def test_every_pair_is_taken_or_refused_as_the_table_says(
    phase: ag.Phase, command: ag.Command, after: ag.Phase | None
) -> None:
    run = ag.Run(phase, 1 if phase in (ag.Phase.RUNNING, ag.Phase.PAUSED) else -1, NOW, 10.0)
    if after is None:
        with pytest.raises(ag.AgendaError):
            ag.step(run, command, NOW, ITEMS)
    else:
        assert ag.step(run, command, NOW, ITEMS)[0].phase is after


def test_next_on_the_last_item_ends_the_run() -> None:
    run = ag.Run(ag.Phase.RUNNING, 3, NOW, 0.0)
    assert ag.step(run, ag.Command.NEXT, NOW, ITEMS)[0].phase is ag.Phase.ENDED


# -- who may do what ------------------------------------------------------------------------------

PERMITTED = {
    "host": set(ACTIONS),
    "staff": {
        "announce",
        "mute",
        "mute_table",
        "move",
        "remove",
        "hand_done",
        "raise_hand",
        "lower_hand",
        "leave",
    },
    "guest": {"raise_hand", "lower_hand", "leave"},
    "resident": set(),
}


@pytest.mark.parametrize("role", sorted(PERMITTED))
@pytest.mark.parametrize("action", sorted(ACTIONS) + ["launch_rockets"])
def test_role_action_table(role: str, action: str) -> None:
    assert allowed(role, action) == (action in PERMITTED[role])
