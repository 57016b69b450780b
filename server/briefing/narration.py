"""Where the briefing's synthesized narration is spoken from: a stage source like a live voice.

Each page plays the narration from its asset (the server relays nothing), from the speaking
presenter's spot on the hall's stage. How loud it is for a listener is the server's decision, by
the same rules as a live voice (``world.audibility.source_gains``, in the voice feature's 10 Hz
update, which asks this module where the source is). The spot is the one the page draws the
presenter on (``clients/web/briefing/feature.js``): the stage's speaker spot of the segment's
speaker in cast order, else its first spot, else its screen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from server.briefing.timeline import State

if TYPE_CHECKING:
    from server.briefing.service import BriefingService
    from world.model import World

__all__ = ["NarrationSpot"]

#: a briefing in these states has a narration to place: playing, or paused (so that the gain is
#: already right at the moment it resumes)
_RUNNING = (State.LIVE, State.PAUSED)


class NarrationSpot:
    """``spot(now_ms)``: ``(floor, x, z)`` of the narration now, or None when no briefing runs.

    The briefings of a hall all play on its first stage (the page shows them there); of several
    running at once, the first the service lists is placed.
    """

    def __init__(self, service: BriefingService, world: World) -> None:
        self.service = service
        self.stage = world.stages[0] if world.stages else None

    def spot(self, now_ms: float) -> tuple[int, float, float] | None:
        stage = self.stage
        if stage is None:
            return None
        for b in self.service.briefings.values():
            tl = b.timeline
            if tl.state not in _RUNNING or not tl.lengths:
                continue
            segment = b.doc["segments"][tl.segment_at(tl.position(now_ms))]
            cast = [m["avatar"] for m in b.doc["cast"]]
            i = cast.index(segment["speaker"]) if segment["speaker"] in cast else 0
            spots = stage.speakers
            at = spots[i] if i < len(spots) else spots[0] if spots else stage.screen
            return (stage.floor, float(at.x), float(at.z))
        return None
