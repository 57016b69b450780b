"""An event's timed agenda as one state machine: an enum of phases, one transition table, pure.

The agenda is a list of items (welcome talk, table rounds, Q&A, closing), each with a duration.
Each kind says what the space does while it runs (:data:`SPACE`): whether the tables are open
and whether the stage is live. The run moves on by itself when an item's time is up
(:func:`tick`), or when a host says so (:func:`step`); every change returns the effects for the
shell to carry out (move people, open tables, tell everyone). No asyncio, no clock of its own:
time comes in as ``now`` (seconds since the epoch).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

__all__ = [
    "ItemKind",
    "Space",
    "SPACE",
    "Phase",
    "Command",
    "TRANSITIONS",
    "Item",
    "Run",
    "ItemStarted",
    "Ended",
    "Effect",
    "AgendaError",
    "step",
    "tick",
    "remaining",
    "current",
]


class ItemKind(enum.StrEnum):
    WELCOME = "welcome"  # a welcome talk on the stage
    ROUND = "round"  # small talk at the tables (optionally after a shuffle)
    QA = "qa"  # questions and answers, on the stage
    CLOSING = "closing"  # closing words, on the stage


@dataclass(frozen=True, slots=True)
class Space:
    """What the space does during an item."""

    tables_open: bool
    stage_live: bool


SPACE: dict[ItemKind, Space] = {
    ItemKind.WELCOME: Space(tables_open=False, stage_live=True),
    ItemKind.ROUND: Space(tables_open=True, stage_live=False),
    ItemKind.QA: Space(tables_open=False, stage_live=True),
    ItemKind.CLOSING: Space(tables_open=False, stage_live=True),
}
#: before the first item and after the last: people mingle in the hall, nothing is live
IDLE = Space(tables_open=False, stage_live=False)


class Phase(enum.StrEnum):
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    ENDED = "ended"
    CANCELLED = "cancelled"


class Command(enum.StrEnum):
    START = "start"  # a host, or the start time
    NEXT = "next"  # a host skips to the next item
    TIME_UP = "time_up"  # the item's time is over (tick)
    PAUSE = "pause"
    RESUME = "resume"
    END = "end"
    CANCEL = "cancel"


#: (phase, command) -> the phase after it; a pair not here is refused. NEXT and TIME_UP on the
#: last item end the run (see :func:`step`).
TRANSITIONS: dict[tuple[Phase, Command], Phase] = {
    (Phase.SCHEDULED, Command.START): Phase.RUNNING,
    (Phase.SCHEDULED, Command.CANCEL): Phase.CANCELLED,
    (Phase.RUNNING, Command.NEXT): Phase.RUNNING,
    (Phase.RUNNING, Command.TIME_UP): Phase.RUNNING,
    (Phase.RUNNING, Command.PAUSE): Phase.PAUSED,
    (Phase.RUNNING, Command.END): Phase.ENDED,
    (Phase.RUNNING, Command.CANCEL): Phase.CANCELLED,
    (Phase.PAUSED, Command.RESUME): Phase.RUNNING,
    (Phase.PAUSED, Command.NEXT): Phase.RUNNING,
    (Phase.PAUSED, Command.END): Phase.ENDED,
    (Phase.PAUSED, Command.CANCEL): Phase.CANCELLED,
}


@dataclass(frozen=True, slots=True)
class Item:
    """One agenda item: its kind, how long it lasts, and (rounds) whether tables are shuffled."""

    kind: ItemKind
    seconds: float
    shuffle: bool = False
    title_ja: str = ""
    title_en: str = ""

    @property
    def space(self) -> Space:
        return SPACE[self.kind]


@dataclass(frozen=True, slots=True)
class Run:
    """Where the agenda is: its phase, the item running (-1: none yet), when that item started,
    and (paused) how many of its seconds were left."""

    phase: Phase = Phase.SCHEDULED
    index: int = -1
    started_at: float = 0.0
    left: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "phase": self.phase.value,
            "index": self.index,
            "started_at": self.started_at,
            "left": self.left,
        }

    @classmethod
    def from_json(cls, d: dict[str, object]) -> Run:
        return cls(
            Phase(str(d["phase"])),
            int(d["index"]),  # type: ignore[call-overload]
            float(d["started_at"]),  # type: ignore[arg-type]
            float(d["left"]),  # type: ignore[arg-type]
        )


@dataclass(frozen=True, slots=True)
class ItemStarted:
    index: int
    item: Item


@dataclass(frozen=True, slots=True)
class Ended:
    phase: Phase  # ENDED or CANCELLED


Effect = ItemStarted | Ended


class AgendaError(Exception):
    """A command that the agenda's phase does not take (e.g. pause before it started)."""


def _enter(index: int, at: float, items: tuple[Item, ...]) -> tuple[Run, list[Effect]]:
    if index >= len(items):
        return Run(Phase.ENDED, len(items), at, 0.0), [Ended(Phase.ENDED)]
    return Run(Phase.RUNNING, index, at, 0.0), [ItemStarted(index, items[index])]


def step(
    run: Run, command: Command, now: float, items: tuple[Item, ...]
) -> tuple[Run, list[Effect]]:
    """Apply ``command`` at ``now``.

    Raises:
        AgendaError: the pair (phase, command) is not in :data:`TRANSITIONS`.
    """
    after = TRANSITIONS.get((run.phase, command))
    if after is None:
        raise AgendaError(f"cannot {command.value} an agenda that is {run.phase.value}")
    if after in (Phase.ENDED, Phase.CANCELLED):
        return Run(after, run.index, now, 0.0), [Ended(after)]
    if command is Command.START:
        return _enter(0, now, items)
    if command is Command.PAUSE:
        return replace(run, phase=Phase.PAUSED, left=remaining(run, now, items) or 0.0), []
    if command is Command.RESUME:
        if run.index < 0 or run.index >= len(items):
            return replace(run, phase=Phase.RUNNING, started_at=now), []
        elapsed = items[run.index].seconds - run.left
        return Run(Phase.RUNNING, run.index, now - elapsed, 0.0), []
    if command is Command.TIME_UP:
        # the next item starts when this one was due to end, so the schedule keeps its times
        end = run.started_at + (items[run.index].seconds if 0 <= run.index < len(items) else 0.0)
        return _enter(run.index + 1, end, items)
    return _enter(run.index + 1, now, items)  # NEXT


def tick(
    run: Run, now: float, items: tuple[Item, ...], start_at: float
) -> tuple[Run, list[Effect]]:
    """What time alone does: the start time starts the agenda, an item whose time is up gives way
    to the next (several, after a long pause of the process)."""
    effects: list[Effect] = []
    if run.phase is Phase.SCHEDULED and now >= start_at:
        run, effects = step(run, Command.START, now, items)
    while run.phase is Phase.RUNNING and 0 <= run.index < len(items):
        left = remaining(run, now, items)
        if left is None or left > 0:
            break
        run, more = step(run, Command.TIME_UP, now, items)
        effects += more
    return run, effects


def remaining(run: Run, now: float, items: tuple[Item, ...]) -> float | None:
    """Seconds left of the item running (or paused), None when no item is."""
    if not 0 <= run.index < len(items) or run.phase not in (Phase.RUNNING, Phase.PAUSED):
        return None
    if run.phase is Phase.PAUSED:
        return run.left
    return max(0.0, run.started_at + items[run.index].seconds - now)


def current(run: Run, items: tuple[Item, ...]) -> Space:
    """What the space does now."""
    if run.phase in (Phase.RUNNING, Phase.PAUSED) and 0 <= run.index < len(items):
        return items[run.index].space
    return IDLE
