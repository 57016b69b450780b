"""The wait a resident is told: their position times the median of the counter's recent service
times, shared among the staff on duty (``docs/counters.md``). Pure."""

from __future__ import annotations

import math
import statistics
from collections import deque

__all__ = ["ServiceTimes", "RECENT", "DEFAULT_SERVICE_S"]

#: how many recent consultations the estimate reads
RECENT = 20
#: the service time assumed before any consultation of the counter was seen (8 minutes)
DEFAULT_SERVICE_S = 480.0


class ServiceTimes:
    """The last :data:`RECENT` service times of one counter, in seconds."""

    __slots__ = ("times",)

    def __init__(self, recent: int = RECENT) -> None:
        self.times: deque[float] = deque(maxlen=recent)

    def record(self, seconds: float) -> None:
        """One consultation took ``seconds`` (negative or non-finite values are ignored)."""
        if math.isfinite(seconds) and seconds >= 0:
            self.times.append(seconds)

    def typical(self) -> float:
        """The median of the recent service times, or :data:`DEFAULT_SERVICE_S`."""
        return statistics.median(self.times) if self.times else DEFAULT_SERVICE_S

    def estimate(self, position: int, staff: int) -> int | None:
        """Seconds until a ticket at ``position`` (1: next) is served, or None with no staff on
        duty (no estimate can be honest then)."""
        if staff <= 0:
            return None
        return round(max(position, 0) * self.typical() / staff)
