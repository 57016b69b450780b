"""Where the briefing's narration is spoken from: the speaking presenter's spot on the stage,
the spot the page draws them on (clients/web/briefing/feature.js), while the briefing runs."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from server.briefing.narration import NarrationSpot
from server.briefing.service import LiveBriefing
from server.briefing.timeline import Action
from world import load_world

ROOT = Path(__file__).resolve().parents[2]


def _doc(speakers: list[str], cast: list[str]) -> dict[str, Any]:
    seg = {"name": "n", "role": "r", "duration": 10.0, "pause_after": 0.0, "audio": "0" * 64,
           "audio_opus": None, "visemes": "1" * 64, "captions": [],
           "slide": {"title": "t", "bullets": [], "image": None, "alt": ""}}  # fmt: skip
    return {
        "id": "b",
        "title": "説明会",
        "date": "2024-01-02",
        "cast": [{"avatar": a} for a in cast],
        "segments": [
            {**seg, "index": i, "start": 10.0 * i, "speaker": s} for i, s in enumerate(speakers)
        ],
    }


def test_the_narration_comes_from_the_speaking_presenters_spot_while_the_briefing_runs() -> None:
    hall = load_world(ROOT / "worlds" / "machida-city-hall")
    spots = hall.stages[0].speakers
    b = LiveBriefing(_doc(["chair", "clerk", "chair", "guest"], ["chair", "clerk"]))
    where = NarrationSpot(SimpleNamespace(briefings={"b": b}), hall)  # type: ignore[arg-type]
    t0 = 1_000_000.0
    assert where.spot(t0) is None  # scheduled: nothing plays
    b.act(Action.START, t0)
    on = lambda s: (hall.stages[0].floor, s.x, s.z)  # noqa: E731
    assert where.spot(t0 + 5_000) == on(spots[0])  # the chair, first in the cast
    assert where.spot(t0 + 15_000) == on(spots[1])  # the clerk
    assert where.spot(t0 + 25_000) == on(spots[0])
    assert where.spot(t0 + 35_000) == on(spots[0])  # not in the cast: the first spot
    b.act(Action.PAUSE, t0 + 15_000)
    assert where.spot(t0 + 60_000) == on(spots[1])  # paused: ready for the resume
    b.act(Action.END, t0 + 60_000)
    assert where.spot(t0 + 60_000) is None


def test_a_hall_without_a_stage_has_no_narration_to_place() -> None:
    hall = load_world(ROOT / "worlds" / "machida-city-hall")
    b = LiveBriefing(_doc(["chair"], ["chair"]))
    b.act(Action.START, 0.0)
    bare = SimpleNamespace(stages=())
    assert NarrationSpot(SimpleNamespace(briefings={"b": b}), bare).spot(1.0) is None  # type: ignore[arg-type]
    assert NarrationSpot(SimpleNamespace(briefings={"b": b}), hall).spot(1.0) is not None  # type: ignore[arg-type]
