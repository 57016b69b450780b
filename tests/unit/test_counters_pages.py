"""The staff pass, the COUNTER_STATE views and the staff pages' text (pure)."""

from __future__ import annotations

from server.counters.booking import Book
from server.counters.desks import Desks
from server.counters.pages import by_counter_hour, stats_csv, stats_page
from server.counters.passes import PASS_SECONDS, make_pass, read_pass
from server.counters.records import FunnelRow, StatRow
from server.counters.view import counters_view, desk_view, ticket_view
from world.model import Counter, Text

PASSES = [
    # (made with, read with, read at, expected name)
    ("tok", "tok", 100.0, "suzuki"),
    ("tok", "tok", 100.0 + PASS_SECONDS, "suzuki"),
    ("tok", "tok", 101.0 + PASS_SECONDS, None),  # expired
    ("tok", "other", 100.0, None),  # another server's token
]


def test_staff_pass() -> None:
    for made, read, at, expected in PASSES:
        assert read_pass(read, make_pass(made, "suzuki", 100.0), at) == expected
    good = make_pass("tok", "suzuki", 100.0)
    for bad in (None, 7, "", "a~b", good[:-1] + ("0" if good[-1] != "0" else "1"), "x" * 300):
        assert read_pass("tok", bad, 100.0) is None


def _desks() -> Desks:
    c = Counter("a", 0, "1f", 0.0, 0.0, 0.0, 3.0, Text("窓口", "Desk"), "課", booths=("zb",))
    return Desks([c])


def test_views_as_the_contract_says() -> None:
    d = _desks()
    assert counters_view(d, lambda c: True, str) == [
        {"id": "a", "status": "closed", "reason": "no_staff", "staff": [], "staff_ids": [],
         "waiting": 0, "wait_s": None, "hours": "08:30-17:00"}
    ]  # fmt: skip
    assert counters_view(d, lambda c: False, str)[0]["reason"] == "hours"
    d.on_duty("s", "職員", "a", 0.0)
    staffed = counters_view(d, lambda c: True, str)[0]
    assert staffed["status"] == "open" and staffed["reason"] is None and staffed["staff"] == ["s"]
    assert staffed["staff_ids"] == []  # a staff member with no avatar placed has no id to show
    t = d.take("r", "住民", "a", 0.0, True)
    assert ticket_view(d, t, 0.0) == {
        "counter": "a", "number": 1, "state": "waiting", "position": 1, "ahead": 0, "wait_s": 480
    }  # fmt: skip
    d.call("s", 10.0)
    v = ticket_view(d, t, 10.0)
    assert v["state"] == "called" and v["booth"] == "zb" and v["call_deadline_ms"] > 0
    desk = desk_view(d, "s", Book(b"k"), "2025-06-02", 40.0, str)
    assert desk["queue"] == [{"number": 1, "name": "住民", "state": "called", "waited_s": 40}]
    assert desk_view(d, "nobody", Book(b"k"), "2025-06-02", 0.0, str)["counter"] is None


def test_figures_page_chart_and_csv() -> None:
    rows = [
        StatRow("2025-06-02T10", "a", "tickets", 3),
        StatRow("2025-06-02T10", "a", "served", 2),
        StatRow("2025-06-02T10", "a", "no_shows", 1),
        StatRow("2025-06-02T11", "a", "tickets", 1),
    ]
    funnel = [FunnelRow("2025-06-02", "juminhyo", 10, 4, 1)]
    table = by_counter_hour(rows)
    assert table[("a", "2025-06-02T10")]["served"] == 2
    html = stats_page(rows, funnel, "2025-06-01", None)
    assert "<svg" in html and "完了 completed" in html and "juminhyo" in html
    assert "個人の情報は保存していません" in html and "No personal data" in html
    csv = stats_csv(rows, funnel).splitlines()
    assert csv[0].startswith("kind,counter_or_procedure,hour_or_day,tickets,served")
    assert "counter,a,2025-06-02T10,3,2,1,0,0,0,0,,," in csv
    assert csv[-1] == "funnel,juminhyo,2025-06-02,,,,,,,,10,4,1"
