"""The staff log's hash chain without a server: a clean log verifies, and each way of rewriting it
(edit, delete, reorder, drop a whole run, drop the newest) is caught at the right record."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from server.audit import Lane, Verifier, check_data, lane_ops, record_hash, seal, verify
from server.store import Batch, MemoryStore

Row = tuple[str, dict[str, Any]]  # (stored id, record), in the Store's order


def build() -> tuple[list[Row], dict[str, Any]]:
    """Two runs of a server (lanes a, then b linked to a's head) and a CLI lane c between them:
    a1 a2 a3 c1 b1 b2 b3. Returns the rows and the lanes' head values."""
    rows: list[Row] = []
    heads: dict[str, Any] = {}

    def lane(name: str, link: str, actions: list[str]) -> str:
        ln = Lane(name, last=link)
        for action in actions:
            r = ln.next("yuki", action, "brief-1", {"n": len(rows)})
            rows.append((f"{name}:{r['n']}", r))
            heads[name] = {"lane": name, "n": r["n"], "hash": r["hash"]}
        assert ln.last is not None
        return ln.last

    a = lane("a", "", ["briefing.start", "briefing.pause", "briefing.resume"])
    c = lane("c", a, ["account.add"])
    lane("b", c, ["briefing.seek", "briefing.rate", "briefing.end"])
    return rows, heads


def check(rows: list[Row], heads: dict[str, Any]) -> Verifier:
    later = {(r["lane"], r["n"]) for _, r in rows if isinstance(r, dict) and "lane" in r}
    v = Verifier(later=later)
    for pos, (rid, d) in enumerate(rows, 1):
        v.feed(pos, rid, d)
    v.finish(heads)
    return v


def edit(rows: list[Row], heads: dict[str, Any]) -> None:
    rows[1][1]["actor"] = "mallory"  # record 2 says someone else paused


def edit_and_rehash(rows: list[Row], heads: dict[str, Any]) -> None:
    r = rows[1][1]
    r["actor"] = "mallory"
    r["hash"] = record_hash(r)  # a careful forger: record 2 looks whole, record 3 links to the old


def edit_data(rows: list[Row], heads: dict[str, Any]) -> None:
    rows[4][1]["data"]["n"] = 99


def delete_middle(rows: list[Row], heads: dict[str, Any]) -> None:
    del rows[1]  # a2 gone: a3 now at position 2


def delete_first(rows: list[Row], heads: dict[str, Any]) -> None:
    del rows[0]


def delete_last(rows: list[Row], heads: dict[str, Any]) -> None:
    del rows[-1]  # the newest: only the lane's head value knows it was written


def delete_a_whole_run(rows: list[Row], heads: dict[str, Any]) -> None:
    del rows[0:3]  # lane a: c1 links to a3's hash, which is gone
    del heads["a"]


def swap_rows(rows: list[Row], heads: dict[str, Any]) -> None:
    rows[1], rows[2] = rows[2], rows[1]  # a3 before a2, ids and all


def swap_contents(rows: list[Row], heads: dict[str, Any]) -> None:
    (i1, d1), (i2, d2) = rows[1], rows[2]
    rows[1], rows[2] = (i1, d2), (i2, d1)  # the rows stay, their records change places


def move_a_run_earlier(rows: list[Row], heads: dict[str, Any]) -> None:
    b = rows[4:]
    del rows[4:]
    rows[0:0] = b  # lane b before the records it links to


Tamper = Callable[[list[Row], dict[str, Any]], None]

CASES: list[tuple[str, Tamper, int, str]] = [
    # name,               tamper,             position named, why (starts with)
    ("edited", edit, 2, "changed: its content does not match its hash"),
    ("edited, rehashed", edit_and_rehash, 2, "changed: the next record of its lane (a#3)"),
    ("data edited", edit_data, 5, "changed: its content does not match its hash"),
    ("deleted", delete_middle, 2, "removed: a#2-#2 are missing"),
    ("first deleted", delete_first, 1, "removed: the records before it in lane a"),
    ("newest deleted", delete_last, 7, "removed: lane b ends at #2, its head says #3"),
    ("a run deleted", delete_a_whole_run, 1, "removed or changed: the record it follows"),
    ("reordered rows", swap_rows, 2, "reordered: a#2 should come before it"),
    ("reordered contents", swap_contents, 2, "reordered: it was stored as a:2"),
    ("a run moved earlier", move_a_run_earlier, 1, "removed or changed: the record it follows"),
]


def test_a_clean_log_verifies() -> None:
    rows, heads = build()
    v = check(rows, heads)
    assert v.problem is None and v.count == 7
    assert v.head == rows[-1][1]["hash"]


@pytest.mark.parametrize(("name", "tamper", "position", "why"), CASES, ids=[c[0] for c in CASES])
def test_a_rewritten_log_names_the_first_record_broken(
    name: str, tamper: Tamper, position: int, why: str
) -> None:
    rows, heads = build()
    rows, heads = copy.deepcopy(rows), copy.deepcopy(heads)
    tamper(rows, heads)
    v = check(rows, heads)
    assert v.problem is not None, f"{name}: not caught"
    assert (v.problem.position, v.problem.why[: len(why)]) == (position, why), str(v.problem)


def test_two_processes_that_began_on_an_empty_log_verify() -> None:
    """A cluster's first start: both lanes link to "" and interleave."""
    a, b = Lane("a", last=""), Lane("b", last="")
    rows: list[Row] = []
    for ln in (a, b, a, b, b, a):
        r = ln.next("token", "briefing.start", "x", {})
        rows.append((f"{ln.id}:{r['n']}", r))
    assert check(rows, {}).problem is None
    # but a lane that says "the log was empty" after records of a linked lane is not believed
    c = Lane("c", last=rows[-1][1]["hash"])
    r = c.next("token", "x", "", {})
    late = Lane("d", last="").next("token", "y", "", {})
    v = check([*rows, ("c:1", r), ("d:1", late)], {})
    assert v.problem is not None and v.problem.position == 8


@pytest.mark.parametrize(
    "data",
    [
        {"text": "こんにちは"},
        {"voice": 1},
        {"Chat": "x"},
        {"note": "x" * 201},
        {"list": [{"a": 1}]},
    ],
)
def test_the_log_refuses_speech_and_long_or_nested_data(data: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="audit"):
        check_data(data)
    with pytest.raises(ValueError):
        seal("a", 1, "", "yuki", "x", "", data)


async def test_verify_reads_the_store_and_checks_an_expected_head() -> None:
    store = MemoryStore()
    ln = Lane("a", last="")
    for i in range(3):
        await store.apply(Batch(f"b{i}", lane_ops(ln.next("yuki", "briefing.start", "", {}))))
    v, missing = await verify(store, expect=[ln.last or "", "f" * 64])
    assert v.problem is None and v.count == 3 and missing == ["f" * 64]
