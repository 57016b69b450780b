"""Audience questions: a queue per briefing that staff moderate, with per-viewer rate limits.

Questions are anonymous on purpose: the queue keeps the text and when it came, not who asked,
so neither the screen nor the minutes carry personal data. Viewers see only what staff put on
the screen (``shown``) or marked ``answered``; the whole queue is for staff.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MAX_QUESTION",
    "QuestionState",
    "Question",
    "QuestionQueue",
    "QuestionError",
    "RateLimit",
]

MAX_QUESTION = 300
MAX_QUEUE = 1000
PUBLIC_ANSWERED = 20
#: question ids of a process are ``lane * LANE + n`` (n = 1, 2, ...): a single process has lane 0
#: (ids 1, 2, 3); each process of a cluster has a lane of its own, so an id minted on one process
#: names the same question on every other one (``server/briefing/relay.py``)
LANE = 1 << 32


class QuestionError(ValueError):
    """A question that cannot be taken; ``code`` goes to the peer's ERROR."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class QuestionState(enum.Enum):
    QUEUED = "queued"
    SHOWN = "shown"
    ANSWERED = "answered"


_MOVES = {
    (QuestionState.QUEUED, "show"): QuestionState.SHOWN,
    (QuestionState.ANSWERED, "show"): QuestionState.SHOWN,
    (QuestionState.QUEUED, "answered"): QuestionState.ANSWERED,
    (QuestionState.SHOWN, "answered"): QuestionState.ANSWERED,
}


@dataclass(slots=True)
class Question:
    id: int
    text: str
    at: float  # server ms
    state: QuestionState = QuestionState.QUEUED

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "at": self.at, "state": self.state.value}


@dataclass(slots=True)
class RateLimit:
    """At most ``count`` questions per ``window`` seconds from one viewer."""

    count: int = 3
    window: float = 60.0
    times: list[float] = field(default_factory=list)

    def take(self, now_s: float) -> None:
        self.times = [t for t in self.times if now_s - t < self.window]
        if len(self.times) >= self.count:
            raise QuestionError(
                "question_rate", f"at most {self.count} questions every {self.window:.0f} s"
            )
        self.times.append(now_s)


class QuestionQueue:
    """The questions of one briefing, in arrival order."""

    def __init__(self, lane: int = 0) -> None:
        self.items: list[Question] = []
        self.lane = lane

    @staticmethod
    def clean(text: str) -> str:
        """The question as it will be kept (spaces folded), or QuestionError."""
        text = " ".join(text.split())
        if not text:
            raise QuestionError("question_empty", "the question is empty")
        if len(text) > MAX_QUESTION:
            raise QuestionError("question_long", f"at most {MAX_QUESTION} characters")
        return text

    def ask(self, text: str, now_ms: float) -> Question:
        text = self.clean(text)
        if len(self.items) >= MAX_QUEUE:
            raise QuestionError("question_full", "the question queue is full")
        mine = sum(1 for q in self.items if q.id // LANE == self.lane)
        q = Question(id=self.lane * LANE + mine + 1, text=text, at=now_ms)
        self.items.append(q)
        return q

    def add(self, q: Question) -> bool:
        """A question another process took (the cluster relay): kept in arrival order; False
        when it is known already or the queue is full."""
        if any(x.id == q.id for x in self.items) or len(self.items) >= MAX_QUEUE:
            return False
        i = len(self.items)
        while i > 0 and (self.items[i - 1].at, self.items[i - 1].id) > (q.at, q.id):
            i -= 1
        self.items.insert(i, q)
        return True

    def move(self, qid: int, action: str) -> Question:
        """Staff: ``show`` a question on the screen (the one shown before goes back to the
        queue unless answered) or mark it ``answered``."""
        q = self.get(qid)
        new = _MOVES.get((q.state, action))
        if new is None:
            raise QuestionError(
                "question_state", f"cannot {action} a question that is {q.state.value}"
            )
        if new is QuestionState.SHOWN:
            for other in self.items:
                if other.state is QuestionState.SHOWN:
                    other.state = QuestionState.QUEUED
        q.state = new
        return q

    def get(self, qid: int) -> Question:
        for q in self.items:
            if q.id == qid:
                return q
        raise QuestionError("question_unknown", f"no question {qid}")

    def public(self) -> list[dict[str, Any]]:
        """What viewers see: the question on the screen and the latest answered ones (at most
        :data:`PUBLIC_ANSWERED`, so the message stays far below the 64 KiB frame limit)."""
        shown = [q for q in self.items if q.state is QuestionState.SHOWN]
        answered = [q for q in self.items if q.state is QuestionState.ANSWERED]
        return [q.to_json() for q in shown + answered[-PUBLIC_ANSWERED:]]

    def all(self) -> list[dict[str, Any]]:
        return [q.to_json() for q in self.items]

    def taken(self) -> list[Question]:
        """Questions that were put on the screen or answered: they go into the minutes."""
        return [q for q in self.items if q.state is not QuestionState.QUEUED]
