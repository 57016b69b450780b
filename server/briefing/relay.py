"""One audience across processes: questions, attendance and one set of minutes for the cluster.

:mod:`server.briefing.sync` carries the staff actions (the timeline); this module carries the
rest of what makes the cluster's viewers one audience, on the bus channel ``briefing.audience``:

- **Questions.** A question taken on one process is published (``ask``) and added to the queue of
  every other one, so the staff console (``/staff/briefings/{id}/questions``) lists the whole
  cluster's questions on whichever process it asks. Ids are minted in a lane of the asking
  process (``questions.LANE``; the lane is ``INCR {prefix}question-lane`` at start), so an id names
  the same question everywhere and a console behind a round-robin balancer moves the right one.
  A staff move (show, answered) publishes the states it changed (``qstate``); every process
  applies them and tells its viewers.
- **Attendance.** Every second, each process publishes what changed in its attendance of each
  running briefing (``att``): the digests of the people it saw since the last time (never their
  tokens) and how many watch now. Every process keeps the others' union and their latest counts,
  so the viewer counts in a briefing's state are the cluster's, and the peaks are the cluster's
  highest sum.
- **Minutes, once.** When a run ends, each process publishes its final attendance (``final``).
  One process writes the minutes: the one that took the run's last staff action (for a staff
  end, the one that handled it), or, if it is gone, the live process with the smallest id. It
  waits for the final attendance of every live process (at most :data:`GATHER_S`), writes them and
  publishes their text (``minutes``); the others keep that copy, so ``/staff/briefings/{id}/minutes``
  answers on every process with the same minutes.
- **Catch-up.** When the bus is (back) up, each process tells its questions and attendance so far
  (``state``) and asks for the others' (``sync``).

Nothing here awaits Redis on a viewer's or staff member's path: messages go through the bus's
outbox; the lane is taken once at start, bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgpack
from aiohttp import web

from server.briefing.questions import LANE, Question, QuestionState
from server.briefing.timeline import State

if TYPE_CHECKING:
    from server.briefing.service import BriefingService, LiveBriefing
    from server.cluster import Cluster
    from server.cluster.bus import Bus, Outbox

__all__ = ["AudienceRelay", "CHANNEL", "GATHER_S", "PUBLISH_EVERY", "relay_ctx"]

log = logging.getLogger("emachi.briefing.relay")

CHANNEL = "briefing.audience"
#: seconds between two attendance messages of a process
PUBLISH_EVERY = 1.0
#: at most this long the writer of the minutes waits for every live process's final attendance
GATHER_S = 2.0
_RUNNING = (State.LIVE, State.PAUSED)
_MAX_LANE = 1 << 20  # lane * LANE stays below 2**53: a JSON number the console keeps exact


@dataclass(slots=True)
class _Sent:
    """What this process told of one run (to send only what changed)."""

    b: LiveBriefing
    hall: set[str] = field(default_factory=set)
    online: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Run:
    """What this process knows of the others for one run of a briefing."""

    b: LiveBriefing
    lead: str | None = None  # the process that took the run's last staff action
    finals: set[str] = field(default_factory=set)  # processes whose final attendance came
    gathering: asyncio.TimerHandle | None = None
    gather_until: float = 0.0


class AudienceRelay:
    """Questions, attendance and minutes of the briefings, shared with the other processes."""

    def __init__(
        self, service: BriefingService, bus: Bus, outbox: Outbox, cluster: Cluster
    ) -> None:
        self.service = service
        self.bus = bus
        self.outbox = outbox
        self.cluster = cluster
        self.me = bus.process_id
        self._sent: dict[str, _Sent] = {}
        self._runs: dict[str, _Run] = {}
        self._task: asyncio.Task[None] | None = None
        self.minutes_written = 0
        self.set_lane(secrets.randbelow(_MAX_LANE - 1) + 1)  # until start takes one from Redis

    # -- mounting ---------------------------------------------------------------------------------

    def attach(self) -> None:
        """Hook into the service and the bus (once, before the bus starts). The lead listener
        goes first, so that its message precedes the action's on the bus."""
        self.service.on_action.insert(0, self.on_local_action)
        self.service.on_question.append(self.asked)
        self.service.on_question_move.append(self.moved)
        self.service.finisher = self.on_finish
        self.bus.subscribe(CHANNEL, self.on_message)
        self.cluster.on_connect(self.on_connect)

    def set_lane(self, lane: int) -> None:
        self.service.question_lane = lane
        for b in self.service.briefings.values():
            b.questions.lane = lane

    async def start(self, take_lane: Any = None) -> None:
        """Take a lane for question ids (``take_lane()``: an awaitable INCR, bounded by its
        caller; a random one stays when it fails), then publish attendance every second."""
        if take_lane is not None:
            try:
                n = int(await take_lane())
            except Exception as exc:  # Redis away at start: the random lane stays
                log.warning("question lane: kept a random one", extra={"error": str(exc)})
            else:
                self.set_lane(n % (_MAX_LANE - 1) + 1)
        self._task = asyncio.get_running_loop().create_task(self._every(), name="briefing relay")

    async def stop(self) -> None:
        from server.tasks import stop_task

        await stop_task(self._task)
        self._task = None
        for run in self._runs.values():
            if run.gathering is not None:
                run.gathering.cancel()

    async def _every(self) -> None:
        while True:
            await asyncio.sleep(PUBLISH_EVERY)
            try:
                self.publish_attendance()
            except Exception:
                log.exception("briefing relay: attendance not published")

    # -- out --------------------------------------------------------------------------------------

    def _send(self, msg: dict[str, Any]) -> None:
        self.outbox.put(CHANNEL, msgpack.packb(msg, use_bin_type=True))

    def on_local_action(self, bid: str, action: str, now: float, args: dict[str, Any]) -> None:
        """A staff action here: this process leads the run (it writes the minutes)."""
        b = self.service.briefings.get(bid)
        if b is None or action == "reset":
            return
        self._run(b).lead = self.me
        self._send({"k": "lead", "id": bid, "p": self.me})

    def asked(self, b: LiveBriefing, q: Question) -> None:
        """A question taken here (the QUESTION handler): to every other queue."""
        self._send({"k": "ask", "id": b.id, "q": [q.id, q.text, q.at, q.state.value]})

    def moved(self, b: LiveBriefing, before: dict[int, str]) -> None:
        """Staff moved a question here; ``before``: every state before the move."""
        changed = [
            [q.id, q.state.value] for q in b.questions.items if before.get(q.id) != q.state.value
        ]
        if changed:
            self._send({"k": "qstate", "id": b.id, "states": changed})

    def publish_attendance(self, only: LiveBriefing | None = None, *, final: bool = False) -> None:
        """Tell what changed in this process's attendance of each running briefing (or of
        ``only``, with ``final`` when its run ended)."""
        targets = [only] if only is not None else list(self.service.briefings.values())
        for b in targets:
            if not final and b.timeline.state not in _RUNNING:
                continue
            sent = self._sent.get(b.id)
            if sent is None or sent.b is not b:
                sent = self._sent[b.id] = _Sent(b)
            hall, online = b.hall_seen - sent.hall, b.online_seen - sent.online
            counts = {} if final else b.local_counts()
            if not (hall or online or final or counts != sent.counts):
                continue
            self._send(
                {
                    "k": "att",
                    "id": b.id,
                    "run": b.timeline.started_at,
                    "p": self.me,
                    "hall": sorted(hall),
                    "online": sorted(online),
                    "now": counts,
                    "peak": [b.hall_peak, b.online_peak],
                    "final": final,
                }
            )
            sent.hall |= hall
            sent.online |= online
            sent.counts = counts
            self._note_peak(b)

    def on_connect(self) -> None:
        """The bus is (back) up: tell what we have, ask for the others'."""
        self._tell_state()
        self._send({"k": "sync", "p": self.me})

    def _tell_state(self) -> None:
        for b in self.service.briefings.values():
            qs = [[q.id, q.text, q.at, q.state.value] for q in b.questions.items]
            if not qs and b.timeline.state not in _RUNNING:
                continue
            self._send(
                {
                    "k": "state",
                    "id": b.id,
                    "run": b.timeline.started_at,
                    "p": self.me,
                    "questions": qs,
                    "hall": sorted(b.hall_seen),
                    "online": sorted(b.online_seen),
                }
            )

    # -- the end of a run -------------------------------------------------------------------------

    def on_finish(self, b: LiveBriefing) -> None:
        """The run ended here (the service's finisher): tell our final attendance; the writer
        gathers everyone's and writes the minutes."""
        self.publish_attendance(b, final=True)
        run = self._run(b)
        if self.writer(run) != self.me:
            return
        loop = asyncio.get_running_loop()
        run.gather_until = loop.time() + GATHER_S
        self._gather(b)

    def writer(self, run: _Run) -> str:
        live = [p.process_id for p in self.cluster.view.processes] or [self.me]
        if run.lead is not None and (run.lead == self.me or run.lead in live):
            return run.lead
        return min(live)

    def _gather(self, b: LiveBriefing) -> None:
        run = self._run(b)
        run.gathering = None
        if b.minutes is not None or self.service.briefings.get(b.id) is not b:
            return
        others = {p.process_id for p in self.cluster.view.processes} - {self.me}
        loop = asyncio.get_running_loop()
        if others - run.finals and loop.time() < run.gather_until:
            run.gathering = loop.call_later(0.05, self._gather, b)
            return
        self.service.write_minutes(b)
        self.minutes_written += 1
        if b.minutes is not None:
            md, page = b.minutes
            self._send(
                {
                    "k": "minutes",
                    "id": b.id,
                    "run": b.timeline.started_at,
                    "name": md.stem,
                    "md": md.read_text(encoding="utf-8"),
                    "html": page.read_text(encoding="utf-8"),
                }
            )
            log.info("briefing minutes written for the cluster", extra={"briefing": b.id})

    # -- in ---------------------------------------------------------------------------------------

    def _run(self, b: LiveBriefing) -> _Run:
        run = self._runs.get(b.id)
        if run is None or run.b is not b:
            run = self._runs[b.id] = _Run(b)
        return run

    def on_message(self, data: bytes) -> None:
        try:
            msg = msgpack.unpackb(data, raw=False)
            kind = msg["k"]
            if kind == "sync":
                self._tell_state()
                return
            b = self.service.get(msg["id"])
            if b is None:
                return
            getattr(self, f"_on_{kind}")(b, msg)
        except Exception:
            log.warning("briefing relay: ignored a message", exc_info=True)

    def _on_lead(self, b: LiveBriefing, msg: dict[str, Any]) -> None:
        self._run(b).lead = str(msg["p"])

    def _on_ask(self, b: LiveBriefing, msg: dict[str, Any]) -> None:
        qid, text, at, state = msg["q"]
        self._add(
            b, Question(int(qid), b.questions.clean(str(text)), float(at), QuestionState(state))
        )

    def _add(self, b: LiveBriefing, q: Question) -> bool:
        if q.id // LANE == b.questions.lane or not b.questions.add(q):
            return False  # ours, or known already
        if q.state is not QuestionState.QUEUED:
            self.service.broadcast_questions(b)
        self.service.save(b)
        return True

    def _on_qstate(self, b: LiveBriefing, msg: dict[str, Any]) -> None:
        for qid, state in msg["states"]:
            try:
                b.questions.get(int(qid)).state = QuestionState(state)
            except Exception:
                continue  # a question that has not reached us: its state comes with it
        self.service.broadcast_questions(b)
        self.service.broadcast(b)
        self.service.save(b)

    def _on_att(self, b: LiveBriefing, msg: dict[str, Any]) -> None:
        if msg["run"] != b.timeline.started_at:
            return  # another run (the ended one before a reset, or one we have not started)
        p = str(msg["p"])
        b.remote_seen["hall"].update(map(str, msg["hall"]))
        b.remote_seen["online"].update(map(str, msg["online"]))
        if msg["final"]:
            b.remote_now.pop(p, None)
            self._run(b).finals.add(p)
        else:
            b.remote_now[p] = {"hall": int(msg["now"]["hall"]), "online": int(msg["now"]["online"])}
        hp, op = msg["peak"]
        b.cluster_peak["hall"] = max(b.cluster_peak["hall"], int(hp))
        b.cluster_peak["online"] = max(b.cluster_peak["online"], int(op))
        self._note_peak(b)

    def _note_peak(self, b: LiveBriefing) -> None:
        """The cluster's viewers at once: ours now and each other process's latest."""
        if b.timeline.state not in _RUNNING:
            return
        now = b.counts()
        for key in ("hall", "online"):
            b.cluster_peak[key] = max(b.cluster_peak[key], now[key])

    def _on_state(self, b: LiveBriefing, msg: dict[str, Any]) -> None:
        for qid, text, at, state in msg["questions"]:
            try:
                q = Question(
                    int(qid), b.questions.clean(str(text)), float(at), QuestionState(state)
                )
            except Exception:
                continue
            self._add(b, q)
        if msg["run"] == b.timeline.started_at and b.timeline.state in _RUNNING:
            b.remote_seen["hall"].update(map(str, msg["hall"]))
            b.remote_seen["online"].update(map(str, msg["online"]))

    def _on_minutes(self, b: LiveBriefing, msg: dict[str, Any]) -> None:
        """The writer's minutes: keep a copy, so this process answers with the same ones."""
        if b.minutes is not None or msg["run"] != b.timeline.started_at:
            return
        name = str(msg["name"])
        if "/" in name or "\\" in name or name.startswith("."):
            return
        folder = Path(self.service.data_dir) / "minutes"
        folder.mkdir(parents=True, exist_ok=True)
        md, page = folder / f"{name}.md", folder / f"{name}.html"
        for path, text in ((md, str(msg["md"])), (page, str(msg["html"]))):
            tmp = path.with_suffix(path.suffix + f".{self.me.replace(':', '-')}.tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
        b.minutes = (md, page)
        run = self._run(b)
        if run.gathering is not None:
            run.gathering.cancel()
            run.gathering = None


def relay_ctx(relay: AudienceRelay) -> Callable[[web.Application], AsyncIterator[None]]:
    """The relay's ``cleanup_ctx``: a lane for question ids from Redis (one bounded ``INCR``),
    then the attendance beat; stopped with the app."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        cluster = relay.cluster

        async def take_lane() -> int:
            from server.cluster.bus import close_quietly, redis_client

            assert cluster.url is not None
            client = redis_client(cluster.url, 1.0)
            try:
                async with asyncio.timeout(2.0):
                    return int(await client.incr(f"{cluster.prefix}question-lane"))
            finally:
                await close_quietly(client, 1.0)

        await relay.start(take_lane if cluster.url is not None else None)
        yield
        await relay.stop()

    return ctx
