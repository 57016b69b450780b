"""The wait estimate: position × median of the recent service times / staff on duty."""

from __future__ import annotations

import pytest

from server.counters.wait import DEFAULT_SERVICE_S, RECENT, ServiceTimes

CASES = [
    # (recorded service seconds, position, staff, expected wait)
    ([], 1, 1, DEFAULT_SERVICE_S),  # nothing seen yet: 8 minutes each
    ([], 3, 2, 3 * DEFAULT_SERVICE_S / 2),
    ([300], 2, 1, 600),
    ([100, 200, 900], 1, 1, 200),  # the median: one long case does not skew it
    ([100, 200, 300, 400], 2, 1, 500),  # median of an even count: the mean of the middle two
    ([240, 240, 240], 4, 3, 320),
    ([240], 0, 1, 0),
    ([240], 5, 0, None),  # nobody on duty: no honest estimate
]


@pytest.mark.parametrize(("times", "position", "staff", "expected"), CASES)
def test_estimate(times: list[float], position: int, staff: int, expected: float | None) -> None:
    s = ServiceTimes()
    for t in times:
        s.record(t)
    assert s.estimate(position, staff) == (None if expected is None else round(expected))


def test_only_the_recent_service_times_count() -> None:
    s = ServiceTimes()
    for _ in range(RECENT):
        s.record(3600)  # a slow morning
    for _ in range(RECENT):
        s.record(60)  # then quick ones: the old ones are forgotten
    assert s.estimate(1, 1) == 60


def test_bad_times_are_ignored() -> None:
    s = ServiceTimes()
    for bad in (-5.0, float("nan"), float("inf")):
        s.record(bad)
    assert s.typical() == DEFAULT_SERVICE_S
