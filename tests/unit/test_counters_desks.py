"""The desks: order kept, calls, booths, no-shows, residents gone, staff off duty, floods."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from server.counters.booking import Book, Booking
from server.counters.desks import CALL_SECONDS, GONE_SECONDS, TICKET_LIMIT, Desks
from server.counters.machine import Refused
from server.counters.machine import Ticket as State
from world.model import Counter, Hours, Text

TZ = ZoneInfo("Asia/Tokyo")


def counter(cid: str, booths: tuple[str, ...]) -> Counter:
    return Counter(
        cid, 0, "1f", 0.0, 0.0, 0.0, 3.0, Text("窓口", "Desk"), "課", booths=booths,
        hours=Hours("mon-fri", "08:30", "17:00"),
    )  # fmt: skip


@pytest.fixture
def desks() -> tuple[Desks, list[tuple[str, str, float]]]:
    rec: list[tuple[str, str, float]] = []
    d = Desks(
        [counter("a", ("zone-booth-1",)), counter("b", ("zone-booth-1", "zone-booth-2"))],
        lambda c, what, n: rec.append((c, what, n)),
    )
    return d, rec


def refused(code: str, fn: object, *args: object) -> None:
    with pytest.raises(Refused) as caught:
        fn(*args)  # type: ignore[operator]
    assert caught.value.code == code, caught.value.reason


def test_closed_until_staff_are_on_duty_and_in_hours(desks: tuple[Desks, list]) -> None:
    d, _ = desks
    assert d.status("a", in_hours=True) == "closed"
    refused("counter_closed", d.take, "r1", "R1", "a", 0.0, True)
    d.on_duty("s", "職員", "a", 0.0)
    assert d.status("a", in_hours=True) == "open"
    assert d.status("a", in_hours=False) == "closed"
    refused("counter_closed", d.take, "r1", "R1", "a", 0.0, False)
    refused("counter_unknown", d.take, "r1", "R1", "zzz", 0.0, True)


def test_order_positions_and_waits(desks: tuple[Desks, list]) -> None:
    d, rec = desks
    d.on_duty("s", "職員", "a", 0.0)
    tickets = [d.take(f"r{i}", f"R{i}", "a", float(i), True) for i in range(3)]
    assert [t.number for t in tickets] == [1, 2, 3]
    assert [d.position(t) for t in tickets] == [1, 2, 3]
    assert [d.wait_s(t) for t in tickets] == [480, 960, 1440]
    d.leave("r1")
    assert [d.position(t) for t in (tickets[0], tickets[2])] == [1, 2]
    called = d.call("s", 10.0)
    assert called is tickets[0] and called.state is State.CALLED
    assert called.zone == "zone-booth-1" and called.deadline == 10.0 + CALL_SECONDS
    assert d.position(tickets[2]) == 1
    assert d.status("a", True) == "busy"  # its only staff member waits for the one called
    refused("staff_busy", d.call, "s", 11.0)
    c = d.accept("r0", 20.0)
    assert (c.zone, c.staff, c.resident) == ("zone-booth-1", "s", "r0")
    refused("ticket_exists", d.take, "r0", "R0", "a", 21.0, True)
    d.end("s", 320.0)
    assert d.wait_s(tickets[2]) == 300  # the first service time is now the median
    assert ("a", "served", 1) in rec and ("a", "service_s", 300.0) in rec
    assert ("a", "wait_s", 20.0) in rec and ("a", "left", 1) in rec
    assert "r0" not in d.tickets and "r0" not in d.consults


def test_a_booth_join_without_a_call_is_refused(desks: tuple[Desks, list]) -> None:
    d, _ = desks
    d.on_duty("s", "職員", "a", 0.0)
    refused("not_called", d.accept, "nobody", 0.0)
    d.take("r", "R", "a", 0.0, True)
    refused("not_called", d.accept, "r", 1.0)
    refused("not_in_booth", d.end, "s", 1.0)
    refused("not_on_duty", d.call, "r", 1.0)


def test_a_call_not_accepted_in_time_is_a_no_show(desks: tuple[Desks, list]) -> None:
    d, rec = desks
    d.on_duty("s", "職員", "a", 0.0)
    t1 = d.take("r1", "R1", "a", 0.0, True)
    d.take("r2", "R2", "a", 0.0, True)
    d.call("s", 0.0)
    assert d.sweep(CALL_SECONDS - 1, lambda h: 0.0) == []
    assert d.sweep(CALL_SECONDS, lambda h: 0.0) == [t1]
    assert t1.state is State.NO_SHOW and ("a", "no_shows", 1) in rec
    assert d.call("s", CALL_SECONDS).holder == "r2"  # the booth and the staff are free again


def test_a_resident_gone_too_long_drops_out(desks: tuple[Desks, list]) -> None:
    d, rec = desks
    d.on_duty("s", "職員", "a", 0.0)
    t = d.take("r", "R", "a", 0.0, True)
    gone = {"r": GONE_SECONDS}
    assert d.sweep(1.0, lambda h: gone.get(h, 0.0)) == []  # exactly the limit: still in
    gone["r"] = GONE_SECONDS + 1
    assert d.sweep(2.0, lambda h: gone.get(h, 0.0)) == [t]
    assert t.state is State.DROPPED and ("a", "dropped", 1) in rec


def test_staff_off_duty_sends_their_call_back_to_the_front(desks: tuple[Desks, list]) -> None:
    d, _ = desks
    d.on_duty("s1", "一", "a", 0.0)
    d.on_duty("s2", "二", "a", 0.0)
    t1 = d.take("r1", "R1", "a", 0.0, True)
    d.take("r2", "R2", "a", 0.0, True)
    d.call("s1", 1.0)
    d.off_duty("s1", 2.0)
    assert t1.state is State.WAITING and d.position(t1) == 1 and t1.zone == ""
    assert d.call("s2", 3.0) is t1


def test_booths_are_shared_and_never_double_booked(desks: tuple[Desks, list]) -> None:
    d, _ = desks
    d.on_duty("sa", "A", "a", 0.0)
    d.on_duty("sb", "B", "b", 0.0)
    d.on_duty("sb2", "B2", "b", 0.0)
    d.take("r1", "R1", "b", 0.0, True)
    d.take("r2", "R2", "a", 0.0, True)
    d.take("r3", "R3", "b", 0.0, True)
    assert d.call("sb", 0.0).zone == "zone-booth-1"
    refused("no_booth", d.call, "sa", 0.0)  # counter a has only booth 1
    assert d.call("sb2", 0.0).zone == "zone-booth-2"


def test_a_ticket_flood_is_refused(desks: tuple[Desks, list]) -> None:
    d, _ = desks
    d.on_duty("s", "職員", "a", 0.0)
    for i in range(TICKET_LIMIT):
        d.take("r", "R", "a", float(i), True)
        d.leave("r")
    refused("ticket_rate", d.take, "r", "R", "a", 10.0, True)
    d.take("r", "R", "a", 700.0, True)  # the window has moved on


def test_a_reservation_enters_once_with_a_free_staff_member(desks: tuple[Desks, list]) -> None:
    d, _ = desks
    start = datetime(2025, 6, 2, 10, 0, tzinfo=TZ)
    book = Book(b"k")
    b, code = book.book("a", start, 20, "山田", start - timedelta(days=1))
    assert book.find(code) is b and book.find(code.lower().replace("-", "")) is b
    assert book.find("AAAAA-AAAAA") is None
    refused("staff_busy", d.enter, "r", "山田", b, 0.0)
    d.on_duty("s", "職員", "a", 0.0)
    c = d.enter("r", "山田", b, 0.0)
    assert (c.zone, c.staff) == ("zone-booth-1", "s") and b.state == "in_booth"
    d.end("s", 60.0)
    assert b.state == "done"
    refused("code_used", d.enter, "r2", "x", b, 70.0)


def _booking(state: str) -> Booking:
    start = datetime(2025, 6, 2, 10, 0, tzinfo=TZ)
    return Booking("a", "2025-06-02T10:00", start, 20, "n", "h", state)


def test_slots_and_hours() -> None:
    from server.counters.booking import is_open, slots

    h = Hours("mon-fri", "08:30", "17:00")
    monday = datetime(2025, 6, 2, tzinfo=TZ).date()
    got = slots(h, monday, 20, TZ)
    assert got[0].strftime("%H:%M") == "08:30" and got[-1].strftime("%H:%M") == "16:30"
    assert len(got) == 25
    assert slots(h, monday + timedelta(days=5), 20, TZ) == []  # Saturday
    assert is_open(h, datetime(2025, 6, 2, 8, 30, tzinfo=TZ))
    assert not is_open(h, datetime(2025, 6, 2, 17, 0, tzinfo=TZ))
    assert not is_open(h, datetime(2025, 6, 7, 10, 0, tzinfo=TZ))
    b = _booking("booked")
    assert b.due(datetime(2025, 6, 2, 9, 56, tzinfo=TZ))
    assert not b.due(datetime(2025, 6, 2, 10, 20, tzinfo=TZ))


def test_codes_are_stored_hashed_and_wrong_codes_are_limited() -> None:
    from server.counters.booking import Attempts

    start = datetime(2025, 6, 2, 10, 0, tzinfo=TZ)
    book = Book(b"k")
    b, code = book.book("a", start, 20, " 山田  花子 ", start)
    assert b.name == "山田 花子" and code not in repr(b) and code.replace("-", "") not in repr(b)
    refused("slot_taken", book.book, "a", start, 20, "x", start)
    refused("slot_past", book.book, "a", start - timedelta(hours=1), 20, "x", start)
    refused("bad_name", book.book, "a", start + timedelta(hours=1), 20, "", start)
    att = Attempts(limit=3, window=60.0)
    for i in range(3):
        assert not att.blocked("1.2.3.4", float(i))
        att.wrong("1.2.3.4", float(i))
    assert att.blocked("1.2.3.4", 3.0) and not att.blocked("5.6.7.8", 3.0)
    assert not att.blocked("1.2.3.4", 100.0)


def test_each_state_a_reservation_reaches_is_told_and_read_back() -> None:
    told: list[str] = []
    d = Desks([counter("a", ("zone-booth-1",))], booked=lambda b: told.append(b.state))
    start = datetime(2025, 6, 2, 10, 0, tzinfo=TZ)
    book = Book(b"k")
    b, code = book.book("a", start, 20, "山田", start - timedelta(days=1))
    d.on_duty("s", "職員", "a", 0.0)
    d.enter("r", "山田", b, 0.0)
    d.end("s", 60.0)
    assert told == ["in_booth", "done"]
    # what the Store gives back after a restart: the booking, then the states it reached
    again = Book(b"k")
    stream: list[dict[str, object]] = [
        {"c": "a", "s": b.slot, "m": 20, "n": "山田", "h": b.code_hash},
        {"c": "a", "s": b.slot, "st": "in_booth"},
        {"c": "a", "s": b.slot, "st": "done"},
    ]
    assert all(again.restore(rec, TZ) for rec in stream)
    back = again.find(code)
    assert back is not None and back.state == "done" and back.start == start
    refused("code_used", Desks([counter("a", ("zone-booth-1",))]).enter, "r", "x", back, 0.0)
    # records that do not read are skipped, never raised
    for junk in ({}, {"c": "a"}, {"c": "a", "s": "tomorrow", "m": 20, "n": "x", "h": "y"},
                 {"c": "a", "s": b.slot, "m": "20", "n": "x", "h": "y"},
                 {"c": "a", "s": "2025-06-02T11:00", "st": "done"},
                 {"c": "a", "s": b.slot, "st": "flying"}):  # fmt: skip
        assert not again.restore(junk, TZ), junk
