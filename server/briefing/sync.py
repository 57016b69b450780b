"""Briefings across processes: a staff action on one process reaches the audience on all of them.

The briefing service calls its ``on_action`` hook after each local staff action with the action,
its server time and its arguments. This module publishes that on the bus channel ``briefing``,
together with the timeline it produced; every other process applies the same action at the same
server time (``remote=True``), so the schedule (origin, offset, rate) every viewer gets is the same
on every process. The timeline is a pure function of the actions and their times.

A staff reset (an ended briefing scheduled again for a new run) is relayed as ``reset``.

A process that missed a message (Redis was away, it started late) would apply the next action to
an older timeline; when the result differs from the timeline the sender had, the receiver takes
the sender's timeline as it is and tells its viewers. A process that joins the bus (or finds Redis
back) tells the others its timelines and asks for theirs (``sync``); each answers with the
timelines a staff action has touched, and the newest one (by the server time of its last action)
wins.

The briefing feature mounts it on what the cluster offers (``app[BUS]``, ``app[BUS_OUTBOX]``, and
``app[CLUSTER].on_connect`` for the catch-up); ``server/cluster/`` knows nothing of briefings.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import msgpack

from server.briefing.service import now_ms
from server.briefing.timeline import Action, State, TimelineError

if TYPE_CHECKING:
    from server.briefing.service import BriefingService, LiveBriefing
    from server.cluster.bus import Bus, Outbox

__all__ = ["BriefingSync", "CHANNEL", "timeline_of"]

log = logging.getLogger("emachi.briefing.sync")

CHANNEL = "briefing"
_FIELDS = ("state", "offset", "anchor", "rate", "started_at", "ended_at", "played")


def timeline_of(b: LiveBriefing) -> dict[str, Any]:
    """The numbers that make a briefing's timeline (what a receiver compares and adopts)."""
    tl = b.timeline
    return {
        "state": tl.state.value,
        "offset": tl.offset,
        "anchor": tl.anchor,
        "rate": tl.rate,
        "started_at": tl.started_at,
        "ended_at": tl.ended_at,
        "played": tl.played,
    }


class BriefingSync:
    """Publishes local staff actions and applies the other processes' ones."""

    def __init__(self, service: BriefingService, bus: Bus, outbox: Outbox) -> None:
        self.service = service
        self.bus = bus
        self.outbox = outbox
        self.applied = 0
        self.adopted = 0

    def attach(self) -> None:
        """Hook into the service and the bus (call once, before the bus starts); the caller
        also hands :meth:`on_connect` to the cluster's connect listeners."""
        self.service.on_action.append(self.on_local_action)
        self.service.before_fanout.append(self.outbox.handed)
        self.bus.subscribe(CHANNEL, self.on_message)

    # -- out --------------------------------------------------------------------------------------

    def on_local_action(self, bid: str, action: str, now: float, args: dict[str, Any]) -> None:
        b = self.service.briefings.get(bid)
        if b is None:
            return
        if action == "reset":
            self._send({"kind": "reset", "id": bid, "now": now})
            return
        # the hook runs before the action's own broadcast: the timeline is already applied
        self._send(
            {
                "kind": "action",
                "id": bid,
                "action": action,
                "now": now,
                "args": args,
                "timeline": timeline_of(b),
            }
        )

    def on_connect(self) -> None:
        """The bus is (back) up (the cluster's connect listener): tell the others our briefings
        and ask for theirs. Both, because whichever process reconnects last must reach the one
        that reconnected first."""
        self._answer_sync()
        self._send({"kind": "sync"})

    def _send(self, msg: dict[str, Any]) -> None:
        self.outbox.put(CHANNEL, msgpack.packb(msg, use_bin_type=True))

    # -- in ---------------------------------------------------------------------------------------

    def on_message(self, data: bytes) -> None:
        try:
            msg = msgpack.unpackb(data, raw=False)
            kind = msg["kind"]
        except Exception:
            log.warning("briefing sync: ignored a message that does not decode")
            return
        if kind == "sync":
            self._answer_sync()
        elif kind == "action":
            self._apply(msg)
        elif kind == "state":
            self._adopt_if_newer(msg)
        elif kind == "reset":
            self._reset(msg)

    def _answer_sync(self) -> None:
        for b in self.service.briefings.values():
            if b.timeline.anchor > 0:  # a staff action was taken (a fresh timeline has none)
                self._send({"kind": "state", "id": b.id, "timeline": timeline_of(b)})

    def _apply(self, msg: dict[str, Any]) -> None:
        b = self.service.get(msg["id"])
        if b is None:
            log.info("briefing sync: not rendered on this process", extra={"briefing": msg["id"]})
            return
        remote = msg["timeline"]
        b = self._new_run_if_needed(b, remote)
        try:
            self.service.act(b, Action(msg["action"]), now=msg["now"], remote=True, **msg["args"])
            self.applied += 1
        except (TimelineError, ValueError, TypeError) as exc:
            log.info(
                "briefing sync: action does not apply here, taking the sender's timeline",
                extra={"briefing": b.id, "error": str(exc)},
            )
        if timeline_of(b) != remote:
            self._adopt(b, remote)

    def _reset(self, msg: dict[str, Any]) -> None:
        """Another process scheduled an ended briefing again: so does this one (its viewers see
        it scheduled, not ended). One that missed the end ends it first, at the same time."""
        b = self.service.get(msg["id"])
        if b is None:
            return
        if b.timeline.state is State.SCHEDULED:
            return  # already a new run here
        if b.timeline.state is not State.ENDED:
            self.service.act(b, Action.END, now=msg["now"], remote=True)
        self.service.reset(b)

    def _adopt_if_newer(self, msg: dict[str, Any]) -> None:
        b = self.service.get(msg["id"])
        if b is None:
            return
        remote = msg["timeline"]
        if remote["anchor"] <= b.timeline.anchor:
            return  # ours is as new or newer
        if remote["state"] == State.ENDED.value and b.timeline.state is State.ENDED:
            return  # each process ends a briefing played to the end by itself
        b = self._new_run_if_needed(b, remote)
        if timeline_of(b) != remote:
            self._adopt(b, remote)

    def _new_run_if_needed(self, b: LiveBriefing, remote: dict[str, Any]) -> LiveBriefing:
        """An ended briefing here that is running again elsewhere was reset there: reset it here
        too (a new run, new attendance; the minutes of the ended run stay)."""
        if b.timeline.state is State.ENDED and remote["state"] != State.ENDED.value:
            return self.service.reset(b)
        return b

    def _adopt(self, b: LiveBriefing, remote: dict[str, Any]) -> None:
        tl = b.timeline
        was = tl.state
        now = now_ms()
        b.note_progress(now)  # what this process played under the timeline it had
        for name in _FIELDS:
            value = remote[name]
            setattr(tl, name, State(value) if name == "state" else value)
        b._last_pos = tl.position(now)  # a remote seek: what lies between was not played here
        self.adopted += 1
        self.service.arm(b)
        self.service.broadcast(b, now)
        if tl.state is State.ENDED and was in (State.LIVE, State.PAUSED):
            # this process played part of it: its minutes; one that only heard of it writes none
            self.service.finish(b)
