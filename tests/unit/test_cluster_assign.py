"""Who takes over the instances of a process that is gone (server/cluster/leases.py ``assign``):
every survivor computes the same answer, the orphans spread, the loser never gets its own back."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from server.cluster.leases import Holder, assign, rank

W = "machida-city-hall"


def inst(n: int) -> str:
    return f"{W}#{n}"


def held(**by: list[int]) -> dict[str, Holder]:
    return {inst(n): Holder(pid, 1) for pid, ns in by.items() for n in ns}


# (orphans, live, holders of the others, expected instances taken over by each survivor)
TABLE = [
    # the two instances of a dead process, two survivors with one each: one each
    ([1, 4], ["b", "c"], held(b=[2], c=[3]), {"b": 1, "c": 1}),
    # the emptier survivor first, until they are level, then in turn
    ([1, 2, 3], ["b", "c"], held(c=[4, 5, 6]), {"b": 3}),
    ([1, 2, 3], ["b", "c"], held(c=[4]), {"b": 2, "c": 1}),
    # one survivor: all of them
    ([1, 2], ["b"], held(b=[3]), {"b": 2}),
    # three survivors, three orphans: one each whatever they held before, if level
    ([1, 2, 3], ["b", "c", "d"], held(b=[4], c=[5], d=[6]), {"b": 1, "c": 1, "d": 1}),
]


@pytest.mark.parametrize(("orphans", "live", "holders", "want"), TABLE)
def test_orphans_spread_over_the_survivors(
    orphans: list[int], live: list[str], holders: dict[str, Holder], want: dict[str, int]
) -> None:
    got = assign({inst(n) for n in orphans}, live, holders)
    assert sorted(got) == sorted(inst(n) for n in orphans)
    assert dict(Counter(got.values())) == want


def test_every_survivor_computes_the_same_answer_whatever_the_order() -> None:
    orphans = [inst(n) for n in (1, 4, 7, 9)]
    live = ["p1", "p2", "p3"]
    holders = held(p1=[2], p2=[3, 5], p3=[6])
    first = assign(orphans, live, holders)
    rng = random.Random(7)
    for _ in range(20):
        o, lv = orphans[:], live[:]
        rng.shuffle(o)
        rng.shuffle(lv)
        h = dict(rng.sample(list(holders.items()), len(holders)))
        assert assign(o, lv, h) == first


def test_the_process_that_lost_an_instance_never_gets_it_back() -> None:
    # "a" still looks live to this reader (its record has not expired yet), and is emptiest
    holders = {**held(b=[2, 3], c=[4, 5]), inst(1): Holder("a", 3)}
    assert assign({inst(1)}, ["a", "b", "c"], holders)[inst(1)] in ("b", "c")
    # the same once its holder entry is gone, told by ``previous``
    got = assign({inst(1)}, ["a", "b", "c"], held(b=[2, 3], c=[4, 5]), {inst(1): "a"})
    assert got[inst(1)] in ("b", "c")
    # nobody else: the orphan waits (no answer) rather than going back to it
    assert assign({inst(1)}, ["a"], {}, {inst(1): "a"}) == {}


def test_ties_are_not_all_won_by_the_same_process() -> None:
    # equal survivors: which one wins depends on the instance (rendezvous hashing)
    winners = Counter(assign({inst(n)}, ["b", "c", "d"], {})[inst(n)] for n in range(1, 31))
    assert set(winners) == {"b", "c", "d"}, winners
    assert rank(inst(1), "b") == rank(inst(1), "b") != rank(inst(1), "c")
