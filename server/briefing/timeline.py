"""The timeline of a live briefing: a pure state machine over server time.

States and actions are enums; :data:`TRANSITIONS` is the whole table, read top to bottom. Time
is passed in (server milliseconds), never read here, so the engine is tested without a clock.
While live, the position (seconds into the briefing) is ``offset + (now - anchor) * rate``;
while scheduled or paused it stays at ``offset``. Every client computes the same formula from
the same three numbers, which is what keeps viewers in step.
"""

from __future__ import annotations

import bisect
import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = ["State", "Action", "TRANSITIONS", "TimelineError", "Timeline", "RATE_RANGE"]

RATE_RANGE = (0.5, 1.5)


class State(enum.Enum):
    SCHEDULED = "scheduled"
    LIVE = "live"
    PAUSED = "paused"
    ENDED = "ended"


class Action(enum.Enum):
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    SEEK = "seek"
    RATE = "rate"
    END = "end"


TRANSITIONS: dict[tuple[State, Action], State] = {
    (State.SCHEDULED, Action.START): State.LIVE,
    (State.SCHEDULED, Action.SEEK): State.SCHEDULED,  # choose where to begin
    (State.SCHEDULED, Action.RATE): State.SCHEDULED,
    (State.SCHEDULED, Action.END): State.ENDED,  # cancelled
    (State.LIVE, Action.PAUSE): State.PAUSED,
    (State.LIVE, Action.SEEK): State.LIVE,
    (State.LIVE, Action.RATE): State.LIVE,
    (State.LIVE, Action.END): State.ENDED,
    (State.PAUSED, Action.RESUME): State.LIVE,
    (State.PAUSED, Action.SEEK): State.PAUSED,
    (State.PAUSED, Action.RATE): State.PAUSED,
    (State.PAUSED, Action.END): State.ENDED,
}


class TimelineError(ValueError):
    """An action that the current state does not allow, or a bad argument."""


@dataclass(slots=True)
class Timeline:
    """Where a briefing is. ``lengths`` are each segment's audio plus its pause, in seconds."""

    lengths: list[float]
    state: State = State.SCHEDULED
    offset: float = 0.0  # position (s) at ``anchor``
    anchor: float = 0.0  # server time (ms)
    rate: float = 1.0
    started_at: float | None = None  # server ms of the first start
    ended_at: float | None = None
    played: float = 0.0  # seconds of wall time spent live
    _starts: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        t = 0.0
        self._starts = []
        for n in self.lengths:
            self._starts.append(t)
            t += n

    @property
    def total(self) -> float:
        return sum(self.lengths)

    def start_of(self, index: int) -> float:
        return self._starts[index]

    def position(self, now: float) -> float:
        """Seconds into the briefing at server time ``now`` (ms), within ``[0, total]``."""
        if self.state is State.LIVE:
            pos = self.offset + (now - self.anchor) / 1000.0 * self.rate
        else:
            pos = self.offset
        return max(0.0, min(self.total, pos))

    def segment_at(self, pos: float) -> int:
        if not self._starts:
            return 0
        return max(0, bisect.bisect_right(self._starts, pos) - 1)

    def finished(self, now: float) -> bool:
        """Live and past the last segment's pause: the server ends it."""
        return self.state is State.LIVE and self.position(now) >= self.total

    def apply(
        self, action: Action, now: float, *, segment: int | None = None, rate: float | None = None
    ) -> State:
        """Apply a staff action at server time ``now`` (ms); returns the new state.

        Raises:
            TimelineError: the action is not allowed in this state, or its argument is bad.
        """
        new = TRANSITIONS.get((self.state, action))
        if new is None:
            raise TimelineError(f"cannot {action.value} a briefing that is {self.state.value}")
        pos = self.position(now)
        if action is Action.SEEK:
            if segment is None or not 0 <= segment < len(self.lengths):
                raise TimelineError(
                    f"segment: expected 0 to {len(self.lengths) - 1}, got {segment!r}"
                )
            pos = self._starts[segment]
        if action is Action.RATE and (rate is None or not RATE_RANGE[0] <= rate <= RATE_RANGE[1]):
            raise TimelineError(f"rate: expected {RATE_RANGE[0]} to {RATE_RANGE[1]}, got {rate!r}")
        if self.state is State.LIVE:
            self.played += (now - self.anchor) / 1000.0
        if action is Action.RATE and rate is not None:
            self.rate = float(rate)
        if action is Action.START:
            self.started_at = now
        if new is State.ENDED:
            self.ended_at = now
        self.offset = pos
        self.anchor = now
        self.state = new
        return new

    def to_json(self, now: float) -> dict[str, Any]:
        pos = self.position(now)
        return {
            "state": self.state.value,
            "segment": self.segment_at(pos),
            "offset": round(self.offset, 4),
            "anchor": self.anchor,
            "rate": self.rate,
            "position": round(pos, 4),
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "total": round(self.total, 3),
            # server ms at which position 0 was (or would have been) passed, for a live briefing
            "origin": self.anchor - self.offset * 1000.0 / self.rate,
        }
