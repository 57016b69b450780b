"""The line of visitors waiting for a place when every instance of the hall is full.

Instead of closing a visitor's socket with WORLD_FULL, the hall keeps it open and puts the visitor
in a first-come, first-served line: each one is told its position and an estimate of the wait
(NOTICE ``queue``, data ``{"position", "ahead", "eta_s"}``; ``eta_s`` is None until departures
have been seen), again whenever either changes, and is let in, with the ordinary WELCOME, as soon
as a place frees. A place freed is reserved for the head of the line until it takes it, so a
newcomer arriving at that moment cannot jump the line. A visitor who closes the page leaves the
line at once.

The estimate is the position divided by the rate at which avatars have left the hall lately
(the last ``DEPARTURES_WINDOW`` seconds): rough, but it moves the way a person expects.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["WaitingLine", "Waiter", "LINE_MAX", "DEPARTURES_WINDOW"]

LINE_MAX = 1000
"""Visitors the line holds; one more is refused with WORLD_FULL as before."""
DEPARTURES_WINDOW = 600.0
"""Seconds of departures the wait estimate is drawn from."""
_MIN_SPAN = 30.0  # seconds: a burst of departures does not promise a wait of nothing


@dataclass(slots=True, eq=False)
class Waiter:
    """One visitor in the line: ``tell(position, ahead, eta_s)`` sends it the news."""

    tell: Callable[[int, int, float | None], None]
    ready: asyncio.Future[None]
    told: tuple[int, int | None] | None = field(default=None)


class WaitingLine:
    """First come, first served; ``free()`` says how many places the hall has now."""

    def __init__(self, free: Callable[[], int]) -> None:
        self.free = free
        self.line: deque[Waiter] = deque()
        self.reserved = 0  # places offered to waiters that have not taken them yet
        self.departures: deque[float] = deque()

    def __len__(self) -> int:
        return len(self.line)

    def must_wait(self) -> bool:
        """Whether a newcomer must queue: someone is waiting already or no place is unclaimed."""
        return bool(self.line) or self.free() <= self.reserved

    def eta(self, position: int, now: float | None = None) -> float | None:
        """Seconds until ``position`` (1 = next) is likely in, or None with no departure seen."""
        now = time.monotonic() if now is None else now
        while self.departures and now - self.departures[0] > DEPARTURES_WINDOW:
            self.departures.popleft()
        if not self.departures:
            return None
        rate = len(self.departures) / max(_MIN_SPAN, now - self.departures[0])
        return position / rate

    def departed(self, now: float | None = None) -> None:
        """An avatar left the hall: note it for the estimate and offer its place."""
        self.departures.append(time.monotonic() if now is None else now)
        self.offer()

    async def wait(
        self, tell: Callable[[int, int, float | None], None], gone: asyncio.Future[Any]
    ) -> bool:
        """Queue until a place is offered (True: take it now, synchronously) or ``gone`` is done.

        Raises:
            OverflowError: the line holds ``LINE_MAX`` visitors already.
        """
        if len(self.line) >= LINE_MAX:
            raise OverflowError("the waiting line is full")
        w = Waiter(tell, asyncio.get_running_loop().create_future())
        self.line.append(w)
        self.tell_all()
        try:
            await asyncio.wait({w.ready, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if w in self.line:
                self.line.remove(w)
                self.tell_all()
            if w.ready.done():
                self.reserved -= 1
        if gone.done():
            self.offer()  # the place offered (if any) goes to the next one
            return False
        return True

    def offer(self) -> None:
        """Wake as many waiters, from the head, as there are unclaimed places."""
        while self.line and self.free() > self.reserved:
            w = self.line.popleft()
            self.reserved += 1
            w.ready.set_result(None)
        self.tell_all()

    def tell_all(self) -> None:
        """Send each waiter its position and estimate when either changed (minutes, rounded)."""
        now = time.monotonic()
        for i, w in enumerate(self.line):
            eta = self.eta(i + 1, now)
            key = (i + 1, None if eta is None else round(eta / 60))
            if key != w.told:
                w.told = key
                w.tell(i + 1, i, None if eta is None else round(eta, 1))
