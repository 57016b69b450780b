"""The order in which an instance writes its viewers' frames changes every tick."""

from __future__ import annotations

from server.instance import _send_order


def test_every_viewer_is_written_once_per_tick_and_nobody_is_always_last() -> None:
    n = 1000
    last_tenth: dict[int, int] = {}
    for tick in range(1, 201):
        order = list(_send_order(n, tick))
        assert sorted(order) == list(range(n))
        for i in order[-n // 10 :]:
            last_tenth[i] = last_tenth.get(i, 0) + 1
    # over 200 ticks each viewer is in the last tenth about 20 times, never (nearly) always
    assert max(last_tenth.values()) <= 40
    assert len(last_tenth) == n


def test_one_viewer_and_none() -> None:
    assert list(_send_order(1, 7)) == [0]
    assert list(_send_order(0, 7)) == []
