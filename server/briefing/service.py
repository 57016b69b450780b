"""Live briefings of one process: their timelines, viewers, questions and attendance.

This is the shell around the pure :class:`~server.briefing.timeline.Timeline`: it holds the
rendered timeline documents, decides who is told what, and writes the minutes at the end.
Every change is encoded once into a frame and the same bytes are written to every viewer with
the session's synchronous ``send`` (never an ``await`` per viewer), so one slow viewer can not
delay the others.

Who is told: every avatar in the hall (any instance of this process: the stage screen is part
of the hall) and every watch-only viewer of this briefing. A viewer's first BRIEFING carries the
segments (audio and viseme URLs, durations, captions, slides); later ones only the timeline
numbers, which is what a staff action changes.

The service never walks the hall: the feature's lifecycle hooks (``server/hooks.py``) tell it who
joined and who left (:meth:`BriefingService.joined`, :meth:`BriefingService.left`), and an
:class:`Audience` (``server/briefing/audience.py``) says who stands in a stage or auditorium zone,
recomputed on the instances' tick. A live briefing ends by itself on a timer set for the moment it
plays to the end, re-set by every action.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

import msgpack

from server.briefing.minutes import Attendance, Minutes, write_minutes
from server.briefing.persist import LiveStateFile
from server.briefing.questions import Question, QuestionQueue, QuestionState, RateLimit
from server.briefing.render import load_timeline
from server.briefing.timeline import Action, State, Timeline
from server.config import DEFAULT_TIME_ZONE
from server.protocol.messages import Briefing as BriefingMsg
from server.protocol.messages import Questions as QuestionsMsg

if TYPE_CHECKING:
    from server.session import Session

__all__ = [
    "LiveBriefing",
    "BriefingService",
    "AudienceView",
    "NO_AUDIENCE",
    "now_ms",
    "SEGMENTS_INLINE_MAX",
    "RESUME_WITHIN_S",
]

SEGMENTS_INLINE_MAX = 48 * 1024
#: a live briefing whose server was away longer than this is not resumed but ended as
#: interrupted: after ten minutes the audience has gone, and narration to an empty hall helps no one
RESUME_WITHIN_S = 600.0

log = logging.getLogger("emachi.briefing")


def now_ms() -> float:
    """Server time as sent in WELCOME and PONG: Unix milliseconds."""
    return time.time() * 1000.0


def who(session: Session) -> str:
    """A viewer as counted in the attendance: a digest of its resume token (so the same person
    is counted once, also across a restart that resumes it), never the token itself, which is
    what lets a client take its avatar back and so is never written anywhere."""
    return _digest(session.resume_token or f"session-{id(session)}")


@functools.lru_cache(maxsize=1 << 16)
def _digest(key: str) -> str:
    # every refresh of the counts (4 a second per instance) digests every viewer again: a
    # SHA-256 each, some thousands a second for a briefing's audience, on the event loop
    return hashlib.sha256(key.encode()).hexdigest()[:20]


class AudienceView(Protocol):
    """Who stands where a stage is seen and heard (``server.briefing.audience.Audience``)."""

    def contains(self, session: Session) -> bool: ...

    def sessions(self) -> Iterable[Session]: ...

    def update_all(self) -> None:
        """Recompute now (a staff action counts who is there at that moment)."""
        ...


class _NoAudience:
    """A hall without stages: nobody stands in an audience zone."""

    def contains(self, session: Session) -> bool:
        return False

    def sessions(self) -> Iterable[Session]:
        return ()

    def update_all(self) -> None:
        pass


NO_AUDIENCE: AudienceView = _NoAudience()


class LiveBriefing:
    """One rendered briefing as it is played."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.id: str = doc["id"]
        self.timeline = Timeline([s["duration"] + s["pause_after"] for s in doc["segments"]])
        self.questions = QuestionQueue()
        # sessions told the segments; a session that leaves is forgotten (forget, the leave hook)
        self.viewers: set[Session] = set()
        self.watchers: set[Session] = set()  # the watch-only ones among the viewers
        self.hall_seen: set[str] = set()  # distinct people, by :func:`who` (not their tokens)
        self.online_seen: set[str] = set()
        # the sessions whose digest is in hall_seen / online_seen already (a refresh of the
        # counts, 4 a second per instance, digests and adds only the ones it has not counted)
        self._counted: tuple[set[Session], set[Session]] = (set(), set())
        self.hall_peak = 0
        self.online_peak = 0
        self.spoken: set[int] = set()  # segments reached, even for an instant
        #: spans of the timeline (s) that were played, merged: what the minutes call "as spoken"
        self.played: list[list[float]] = []
        self._counts = {"hall": 0, "online": 0}
        #: the other processes' attendance of this run (cluster mode, ``server/briefing/relay.py``):
        #: distinct people they saw, by digest; each one's viewers now; the cluster's peaks
        self.remote_seen: dict[str, set[str]] = {"hall": set(), "online": set()}
        self.remote_now: dict[str, dict[str, int]] = {}
        self.cluster_peak = {"hall": 0, "online": 0}
        self.joined: set[Session] = set()  # avatars that asked for it (BRIEFING_JOIN)
        #: who stands where the stage is seen (set by the service)
        self.audience: AudienceView = NO_AUDIENCE
        self._last_pos = 0.0
        self.minutes: tuple[Path, Path] | None = None
        #: server ms the briefing is announced to start at (staff set it), shown before it starts
        self.scheduled_at: float | None = None
        #: restarts this run went through: ``{at, down_s, position}`` (the time down was paused)
        self.restarts: list[dict[str, Any]] = []
        #: why this run ended without being played or ended by staff (``{reason, at}``), or None
        self.interrupted: dict[str, Any] | None = None
        #: the last thing staff should be told about a restart (``{kind, ...}``), for the console
        self.notice: dict[str, Any] | None = None
        self.segments_json = [
            {
                "index": s["index"],
                "speaker": s["speaker"],
                "name": s["name"],
                "role": s["role"],
                "start": s["start"],
                "duration": s["duration"],
                "pause_after": s["pause_after"],
                "audio": f"/assets/{s['audio']}",
                "audio_opus": f"/assets/{s['audio_opus']}" if s.get("audio_opus") else None,
                "visemes": f"/assets/{s['visemes']}",
                "captions": s["captions"],
                "slide": s["slide"],
            }
            for s in doc["segments"]
        ]
        # a frame is at most 64 KiB; a long script's segments (captions, slides) go by HTTP
        self.segments_inline = len(msgpack.packb(self.segments_json)) <= SEGMENTS_INLINE_MAX

    # -- progress ---------------------------------------------------------------------------------

    def note_progress(self, now: float) -> None:
        """Remember which segments were played (for the minutes) up to ``now``."""
        tl = self.timeline
        if tl.state is not State.LIVE:
            return
        pos = tl.position(now)
        a, b = tl.segment_at(self._last_pos), tl.segment_at(pos)
        if pos >= tl.total and tl.lengths:
            b = len(tl.lengths) - 1
        self.spoken.update(range(a, b + 1))
        self._add_played(self._last_pos, pos)
        self._last_pos = pos

    def _add_played(self, a: float, b: float) -> None:
        """Note that positions ``a``..``b`` (s) were played, merging with what was before."""
        if b <= a:
            return
        spans = sorted([*self.played, [a, b]])
        merged: list[list[float]] = []
        for x, y in spans:
            if merged and x <= merged[-1][1] + 1e-6:
                merged[-1][1] = max(merged[-1][1], y)
            else:
                merged.append([x, y])
        self.played = merged

    def played_within(self, a: float, b: float) -> float:
        """Seconds of positions ``a``..``b`` that were played."""
        return sum(max(0.0, min(b, y) - max(a, x)) for x, y in self.played)

    def act(self, action: Action, now: float, **kw: Any) -> State:
        self.notice = None  # staff act: what a restart did has been seen
        self.note_progress(now)
        self.refresh_counts()  # attendance up to this moment
        state = self.timeline.apply(action, now, **kw)
        self._last_pos = self.timeline.position(now)
        if state is State.LIVE:
            self.note_progress(now)
        self.refresh_counts()
        return state

    # -- attendance -------------------------------------------------------------------------------
    #
    # Online: a watch-only viewer of this briefing. In the hall: an avatar that said it watches
    # (BRIEFING_JOIN: the hall client sends it in the auditorium or when the person opens the
    # briefing) or that stands in a stage or auditorium zone. Counted while live or paused.

    def counts(self) -> dict[str, int]:
        """Viewers connected now (as of the last :meth:`refresh_counts`), with those of the
        other processes of a cluster as they last told."""
        out = dict(self._counts)
        for now in self.remote_now.values():
            out["hall"] += now.get("hall", 0)
            out["online"] += now.get("online", 0)
        return out

    def local_counts(self) -> dict[str, int]:
        """Viewers connected to this process now (as of the last :meth:`refresh_counts`)."""
        return dict(self._counts)

    def attending(self, s: Session) -> bool:
        return s.mode == "watch" or s in self.joined or self.audience.contains(s)

    def refresh_counts(self) -> None:
        """Recount who is watching, note attendance and peaks (the instances' tick hook, every
        staff action, a watch-only viewer's arrival and departure call it).

        Its cost is the people attending (the audience zones, those who asked, the watch-only
        viewers), not everyone in the hall.
        """
        running = self.timeline.state in (State.LIVE, State.PAUSED)
        viewers = self.viewers
        present = self.joined.union(self.audience.sessions())
        hall = [s for s in present if s in viewers and s.connected]
        online = [s for s in self.watchers if s.connected]
        self._counts = {"hall": len(hall), "online": len(online)}
        if running:
            for seen, counted, now in (
                (self.hall_seen, self._counted[0], hall),
                (self.online_seen, self._counted[1], online),
            ):
                fresh = [s for s in now if s not in counted]
                if fresh:
                    counted.update(fresh)
                    seen.update(who(s) for s in fresh)
            self.hall_peak = max(self.hall_peak, len(hall))
            self.online_peak = max(self.online_peak, len(online))

    def forget(self, session: Session) -> None:
        """``session`` left for good (the leave hook): no longer told nor counted."""
        self.viewers.discard(session)
        self.joined.discard(session)
        for counted in self._counted:
            counted.discard(session)
        if session in self.watchers:
            self.watchers.discard(session)
            self.refresh_counts()

    def add_viewer(self, session: Session, *, joined: bool = False) -> bool:
        """Tell ``session`` about this briefing from now on; True when it is new (it needs the
        full state). ``joined``: the session asked for it (BRIEFING_JOIN)."""
        new = session not in self.viewers
        was = not new and session.connected and self.attending(session)
        self.viewers.add(session)
        if session.mode == "watch":
            self.watchers.add(session)
        elif joined:
            self.joined.add(session)
        if not was and session.connected and self.attending(session):
            key = "online" if session.mode == "watch" else "hall"
            self._counts[key] += 1
            if self.timeline.state in (State.LIVE, State.PAUSED):
                seen = self.online_seen if key == "online" else self.hall_seen
                seen.add(who(session))
                self.hall_peak = max(self.hall_peak, self._counts["hall"])
                self.online_peak = max(self.online_peak, self._counts["online"])
        return new

    # -- what viewers are told --------------------------------------------------------------------

    def state_json(self, now: float, full: bool) -> dict[str, Any]:
        d = {
            "id": self.id,
            "title": self.doc["title"],
            "date": self.doc["date"],
            "server_time": now,
            **self.timeline.to_json(now),
            "viewers": self.counts(),
            "question": next(
                (q.to_json() for q in self.questions.items if q.state.value == "shown"), None
            ),
            "scheduled_at": self.scheduled_at,
            "interrupted": self.interrupted,
            "notice": self.notice,
        }
        if full:
            d["cast"] = self.doc["cast"]
            if self.segments_inline:
                d["segments"] = self.segments_json
            else:  # too big for one frame: the client fetches them
                d["segments_url"] = f"/api/briefings/{self.id}"
        return d

    def minutes_doc(self) -> Minutes:
        tl = self.timeline
        segs = self.doc["segments"]
        spoken = []
        for i in sorted(self.spoken):
            said = self.said(i)
            if said is None:
                continue  # reached, but skipped before a sentence of it was heard
            text, whole = said
            spoken.append(
                {
                    "index": i,
                    "role": segs[i]["role"],
                    "name": segs[i]["name"],
                    "narration": text,
                    "slide": segs[i]["slide"],
                    "partly": not whole,
                }
            )
        return Minutes(
            id=self.id,
            title=self.doc["title"],
            date=self.doc["date"],
            started_at=tl.started_at,
            ended_at=tl.ended_at,
            duration=tl.played,
            spoken=spoken,
            questions=[q.to_json() for q in self.questions.taken()],
            attendance=Attendance(
                hall=len(self.hall_seen | self.remote_seen["hall"]),
                online=len(self.online_seen | self.remote_seen["online"]),
                hall_peak=max(self.hall_peak, self.cluster_peak["hall"]),
                online_peak=max(self.online_peak, self.cluster_peak["online"]),
            ),
            interrupted=None if self.interrupted is None else str(self.interrupted["reason"]),
            restarts=[dict(r) for r in self.restarts],
        )

    def said(self, i: int) -> tuple[str, bool] | None:
        """What of segment ``i``'s narration was played: the sentences (captions) of which at
        least half was played, and whether that is all of them; None when none was. A segment a
        staff member skipped past after a second is not in the minutes' narration."""
        seg = self.doc["segments"][i]
        start = self.timeline.start_of(i)
        caps = seg.get("captions") or []
        if not caps:  # no captions: the segment's narration, if half of its speech was played
            d = float(seg["duration"])
            return (
                (seg["narration"], True)
                if d <= 0 or self.played_within(start, start + d) >= d / 2
                else None
            )
        heard = [
            str(text)
            for a, b, text in caps
            if self.played_within(start + float(a), start + float(b)) >= (float(b) - float(a)) / 2
        ]
        if not heard:
            return None
        return "".join(heard) if len(heard) < len(caps) else seg["narration"], len(heard) == len(
            caps
        )

    # -- kept between two runs of the server (server/briefing/persist.py) ------------------------

    def snapshot(self, now: float, *, drained: bool = False) -> dict[str, Any]:
        """Everything a restarted server needs to go on with this run: the timeline, what was
        spoken, the questions, the attendance so far (digests and peaks, no tokens)."""
        tl = self.timeline
        return {
            "id": self.id,
            "asset": self.doc.get("asset"),
            "saved_at": now,
            "drained": drained,
            "position": tl.position(now),
            "timeline": {
                "state": tl.state.value,
                "offset": tl.offset,
                "anchor": tl.anchor,
                "rate": tl.rate,
                "started_at": tl.started_at,
                "ended_at": tl.ended_at,
                "played": tl.played,
            },
            "spoken": sorted(self.spoken),
            "played": [list(x) for x in self.played],
            "last_pos": self._last_pos,
            "questions": [{**q.to_json(), "at": q.at} for q in self.questions.items],
            "attendance": {
                "hall_seen": sorted(self.hall_seen),
                "online_seen": sorted(self.online_seen),
                "hall_peak": self.hall_peak,
                "online_peak": self.online_peak,
            },
            "scheduled_at": self.scheduled_at,
            "restarts": self.restarts,
            "interrupted": self.interrupted,
            "minutes": [str(p) for p in self.minutes] if self.minutes else None,
        }

    def load(self, snap: dict[str, Any]) -> None:
        """Take a :meth:`snapshot` back as it was saved (the caller decides what happens to a run
        that was live).

        Raises:
            KeyError, TypeError, ValueError: the snapshot is not one this version wrote.
        """
        t = snap["timeline"]
        tl = self.timeline
        tl.state = State(t["state"])
        tl.offset = float(t["offset"])
        tl.anchor = float(t["anchor"])
        tl.rate = float(t["rate"])
        tl.started_at = None if t["started_at"] is None else float(t["started_at"])
        tl.ended_at = None if t["ended_at"] is None else float(t["ended_at"])
        tl.played = float(t["played"])
        n = len(tl.lengths)
        self.spoken = {int(i) for i in snap["spoken"] if 0 <= int(i) < n}
        if "played" in snap:
            self.played = [[float(a), float(b)] for a, b in snap["played"]]
        else:  # a snapshot from before the spans were kept: whole segments, as it was then
            self.played = []
            for i in sorted(self.spoken):
                self._add_played(tl.start_of(i), tl.start_of(i) + tl.lengths[i])
        self._last_pos = float(snap["last_pos"])
        self.questions.items = [
            Question(
                id=int(q.get("id", i)),
                text=str(q["text"]),
                at=float(q["at"]),
                state=QuestionState(q["state"]),
            )
            for i, q in enumerate(snap["questions"], 1)
        ]
        a = snap["attendance"]
        self.hall_seen = {str(x) for x in a["hall_seen"]}
        self.online_seen = {str(x) for x in a["online_seen"]}
        self._counted = (set(), set())
        self.hall_peak = int(a["hall_peak"])
        self.online_peak = int(a["online_peak"])
        at = snap.get("scheduled_at")
        self.scheduled_at = None if at is None else float(at)
        self.restarts = [dict(r) for r in snap.get("restarts") or []]
        self.interrupted = snap.get("interrupted")
        m = snap.get("minutes")
        if m and all(Path(p).is_file() for p in m):
            self.minutes = (Path(m[0]), Path(m[1]))

    def sentence_start(self, pos: float) -> float:
        """The start of the caption (sentence) being spoken at ``pos``, or ``pos`` in a pause:
        a run resumed after a restart repeats the sentence that was cut, whole."""
        tl = self.timeline
        i = tl.segment_at(pos)
        start = tl.start_of(i) if tl.lengths else 0.0
        for c0, c1, _text in self.doc["segments"][i]["captions"]:
            if start + c0 <= pos < start + c1:
                return start + float(c0)
        return pos


class BriefingService:
    """All briefings this process can play, loaded from ``DATA_DIR/briefings/*.json``."""

    def __init__(
        self,
        data_dir: Path,
        audience: AudienceView = NO_AUDIENCE,
        saved: LiveStateFile | None = None,
        time_zone: ZoneInfo | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        #: the city's zone: the minutes give their times in it (UTC beside)
        self.time_zone = time_zone if time_zone is not None else ZoneInfo(DEFAULT_TIME_ZONE)
        self.audience = audience
        #: where each briefing's live state is kept for the next run (:meth:`save`, :meth:`restore`)
        self.saved = (
            saved if saved is not None else LiveStateFile(self.data_dir / "briefings" / "live")
        )
        #: avatars of this process and watch-only viewers by the briefing their hello named
        #: (kept by the join and leave hooks)
        self.hall: set[Session] = set()
        self.watching: dict[str, set[Session]] = {}
        self.briefings: dict[str, LiveBriefing] = {}
        self.rates: dict[Session, RateLimit] = {}
        self._end_timers: dict[str, asyncio.TimerHandle] = {}
        self.frames_sent = 0
        #: ``fn(briefing_id, action, server_ms, args)`` after each local staff action (cluster bus);
        #: ``action`` is a timeline :class:`Action` value, or ``"reset"`` for a new run
        self.on_action: list[Callable[[str, str, float, dict[str, Any]], None]] = []
        #: awaited by :meth:`act_published` between the listeners and the local fan-out (the
        #: cluster bus: its outbox takes the action to Redis first); each must return at once
        self.before_fanout: list[Callable[[], Awaitable[None]]] = []
        #: cluster mode: ``fn(b)`` when a run ends, instead of writing its minutes here at once;
        #: the relay gathers the cluster's attendance and has one process write them
        #: (:meth:`write_minutes`); None: this process writes them (a single process)
        self.finisher: Callable[[LiveBriefing], None] | None = None
        #: the lane of the question ids this process mints (``questions.LANE``), set by the relay
        self.question_lane = 0
        #: ``fn(b, question)`` after a viewer's question is taken here (the cluster relay)
        self.on_question: list[Callable[[LiveBriefing, Question], None]] = []
        #: ``fn(b, states_before)`` after staff moved a question here (the cluster relay)
        self.on_question_move: list[Callable[[LiveBriefing, dict[int, str]], None]] = []
        self._stamps: dict[Path, tuple[int, int]] = {}
        self.reload()

    def reload(self) -> None:
        """Pick up timelines rendered since start (``emachi briefing render``).

        Only files that changed are read, so a peer asking for ids that do not exist costs a
        directory listing, not a read of every timeline.
        """
        folder = self.data_dir / "briefings"
        try:
            paths = sorted(folder.glob("*.json"))
            stamps = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in paths}
        except OSError:
            return
        changed = [p for p in paths if self._stamps.get(p) != stamps[p]]
        self._stamps = stamps
        for path in changed:
            try:
                doc = load_timeline(path)
            except (OSError, ValueError, KeyError) as e:
                log.warning(
                    "skipping briefing timeline", extra={"path": str(path), "error": str(e)}
                )
                continue
            live = self.briefings.get(doc["id"])
            if live is None or (
                live.timeline.state in (State.SCHEDULED, State.ENDED)
                and live.doc.get("asset") != doc.get("asset")
            ):
                self.briefings[doc["id"]] = self._new(doc)

    def _new(self, doc: dict[str, Any]) -> LiveBriefing:
        b = LiveBriefing(doc)
        b.audience = self.audience
        b.questions.lane = self.question_lane
        return b

    def get(self, briefing_id: str) -> LiveBriefing | None:
        b = self.briefings.get(briefing_id)
        if b is None:
            self.reload()
            b = self.briefings.get(briefing_id)
        return b

    # -- sessions (the lifecycle hooks) -------------------------------------------------------

    def joined(self, session: Session) -> None:
        """A session was placed (the join hook): an avatar is told every briefing from now on, a
        watch-only viewer the one its hello named."""
        if session.mode != "watch":
            self.hall.add(session)
            return
        bid = session.opts.get("briefing")
        if isinstance(bid, str):
            self.watching.setdefault(bid, set()).add(session)

    def left(self, session: Session) -> None:
        """A session left for good (the leave hook): forgotten everywhere."""
        self.hall.discard(session)
        bid = session.opts.get("briefing")
        if isinstance(bid, str) and bid in self.watching:
            self.watching[bid].discard(session)
            if not self.watching[bid]:
                del self.watching[bid]
        self.rates.pop(session, None)
        for b in self.briefings.values():
            b.forget(session)

    def refresh(self) -> None:
        """Recount the viewers of every briefing not ended (the instances' tick hook)."""
        for b in self.briefings.values():
            if b.timeline.state is not State.ENDED:
                b.refresh_counts()

    # -- fan-out ----------------------------------------------------------------------------------

    def _newcomers(self, b: LiveBriefing) -> list[Session]:
        """Avatars in the hall and watch-only viewers whose hello named ``b`` that it has not
        told yet (they need the segments)."""
        viewers = b.viewers
        out = [s for s in self.hall if s not in viewers and s.connected]
        out += [s for s in self.watching.get(b.id, ()) if s not in viewers and s.connected]
        return out

    def recipients(self, b: LiveBriefing) -> list[Session]:
        """Everyone who is told about ``b``: its viewers and the newcomers (made viewers)."""
        for s in self._newcomers(b):
            b.add_viewer(s)
        return list(b.viewers)

    def broadcast(self, b: LiveBriefing, now: float | None = None) -> int:
        """Tell every viewer the new timeline: one encode, the same bytes to all."""
        now = now_ms() if now is None else now
        new = set(self._newcomers(b))
        for s in new:
            b.add_viewer(s)
        frame = BriefingMsg(state=b.state_json(now, full=False)).encode()
        full = BriefingMsg(state=b.state_json(now, full=True)).encode() if new else frame
        sent = 0
        for s in b.viewers:  # synchronous writes: no viewer waits for another
            if s.send(full if s in new else frame):
                sent += 1
        self.frames_sent += sent
        return sent

    def join(self, b: LiveBriefing, session: Session, now: float | None = None) -> None:
        """A viewer asked for a briefing (BRIEFING_JOIN)."""
        now = now_ms() if now is None else now
        b.add_viewer(session, joined=True)
        session.send(BriefingMsg(state=b.state_json(now, full=True)).encode())
        public = b.questions.public()
        if public:
            session.send(QuestionsMsg(briefing_id=b.id, questions=public).encode())

    def broadcast_questions(self, b: LiveBriefing) -> None:
        frame = QuestionsMsg(briefing_id=b.id, questions=b.questions.public()).encode()
        for s in self.recipients(b):
            s.send(frame)

    # -- staff ------------------------------------------------------------------------------------

    def act(
        self,
        b: LiveBriefing,
        action: Action,
        *,
        now: float | None = None,
        remote: bool = False,
        **kw: Any,
    ) -> dict[str, Any]:
        """Apply a staff action and tell every viewer of this process.

        ``remote`` marks an action another process applied first (through the cluster bus, at
        its server time ``now``): the timeline is a pure function of the actions and their
        times, so every process computes the same schedule. Local actions are handed to
        :attr:`on_action` listeners (the bus publishes them).
        """
        now, state = self._apply(b, action, now, remote, kw)
        return self._tell(b, now, state)

    async def act_published(self, b: LiveBriefing, action: Action, **kw: Any) -> dict[str, Any]:
        """:meth:`act` for a staff request: the action is applied and handed to the
        :attr:`on_action` listeners, then :attr:`before_fanout` lets the bus hand it to Redis
        (never waiting for Redis), and only then is this process's audience written to. The
        other processes' audience then hears it while this one writes its own (before, their
        fan-out began only after this process's whole fan-out and the request's answer)."""
        now, state = self._apply(b, action, None, False, kw)
        for hook in self.before_fanout:
            await hook()
        return self._tell(b, now, state)

    def _apply(
        self, b: LiveBriefing, action: Action, now: float | None, remote: bool, kw: dict[str, Any]
    ) -> tuple[float, State]:
        now = now_ms() if now is None else now
        self.audience.update_all()  # who stands in the audience at this very moment
        state = b.act(action, now, **kw)
        self.arm(b)
        if not remote:
            for listener in self.on_action:
                listener(b.id, action.value, now, dict(kw))
        return now, state

    def _tell(self, b: LiveBriefing, now: float, state: State) -> dict[str, Any]:
        t0 = time.perf_counter()
        sent = self.broadcast(b, now)
        fanout_ms = (time.perf_counter() - t0) * 1000.0
        if state is State.ENDED:
            self.finish(b)
        self.save(b, now)
        # what the staff member's action cost: viewers written to, and the time to encode and
        # write to all of them (the bench reads it; the lag seen by viewers adds the network)
        return {**b.state_json(now, full=False), "sent": sent, "fanout_ms": round(fanout_ms, 3)}

    def reset(self, b: LiveBriefing) -> LiveBriefing:
        """A new run of an ended briefing (after a rehearsal): scheduled again, no questions, new
        attendance; the ended run's minutes stay written. Everyone watching is told."""
        if b.timeline.state is not State.ENDED:
            from server.briefing.timeline import TimelineError

            raise TimelineError(f"cannot reset a briefing that is {b.timeline.state.value}")
        fresh = self._new(b.doc)
        self.briefings[b.id] = fresh
        self.arm(fresh)
        fresh.viewers.update(b.viewers)  # they already have the segments
        fresh.watchers.update(b.watchers)
        fresh.refresh_counts()
        fresh.scheduled_at = None  # the ended run's start time is not the next run's
        self.broadcast(fresh)
        self.save(fresh)
        for listener in self.on_action:
            listener(b.id, "reset", now_ms(), {})
        return fresh

    def finish(self, b: LiveBriefing) -> None:
        """Write the minutes of an ended briefing (once); in a cluster, hand it to the
        :attr:`finisher`, which has one process write them for the whole cluster."""
        if b.minutes is None and self.finisher is not None:
            self.finisher(b)
            return
        self.write_minutes(b)

    def write_minutes(self, b: LiveBriefing) -> None:
        """Write ``b``'s minutes now, unless they are written already."""
        if b.minutes is None:
            b.minutes = write_minutes(b.minutes_doc(), self.data_dir, self.time_zone)
            log.info(
                "briefing minutes written", extra={"briefing": b.id, "path": str(b.minutes[0])}
            )

    # -- the end of a live briefing ---------------------------------------------------------------

    def arm(self, b: LiveBriefing) -> None:
        """Set (or clear) the timer that ends ``b`` when it has played to the end; call it after
        every change of its timeline (an action, a reset, a timeline adopted from the cluster)."""
        old = self._end_timers.pop(b.id, None)
        if old is not None:
            old.cancel()
        tl = b.timeline
        if tl.state is not State.LIVE:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not serving (a script, a unit test): nothing ends by itself
        left = max(0.0, (tl.total - tl.position(now_ms())) / tl.rate)
        self._end_timers[b.id] = loop.call_later(left + 0.001, self._end_if_played, b.id)

    def _end_if_played(self, briefing_id: str) -> None:
        self._end_timers.pop(briefing_id, None)
        b = self.briefings.get(briefing_id)
        if b is None:
            return
        now = now_ms()
        if b.timeline.finished(now):
            # every process ends it at the same position by itself: not an action to publish
            try:
                self.act(b, Action.END, now=now, remote=True)
            except Exception:
                log.exception("ending a briefing failed", extra={"briefing": briefing_id})
        else:
            self.arm(b)  # the wall clock lags the loop's: try again

    def close(self) -> None:
        """Stop the end timers (the application stops)."""
        for handle in self._end_timers.values():
            handle.cancel()
        self._end_timers.clear()

    def ask(self, b: LiveBriefing, session: Session, text: str) -> Question:
        from server.briefing.questions import QuestionError

        if b.timeline.state is State.ENDED:
            raise QuestionError("briefing_ended", "this briefing has ended")
        text = b.questions.clean(text)
        self.rates.setdefault(session, RateLimit()).take(time.monotonic())
        q = b.questions.ask(text, now_ms())
        self.save(b)
        for listener in self.on_question:
            listener(b, q)
        return q

    def move_question(self, b: LiveBriefing, qid: int, action: str) -> Question:
        """Staff: ``show`` or mark ``answered`` question ``qid``; every viewer is told.

        Raises:
            QuestionError: no such question, or not in a state that allows it.
        """
        before = {x.id: x.state.value for x in b.questions.items}
        q = b.questions.move(qid, action)
        self.broadcast_questions(b)
        self.broadcast(b)
        self.save(b)
        for listener in self.on_question_move:
            listener(b, before)
        return q

    def schedule(self, b: LiveBriefing, at: float | None) -> None:
        """Announce when ``b`` will start (server ms, or None for no time); every viewer is told."""
        if b.timeline.state is not State.SCHEDULED:
            from server.briefing.timeline import TimelineError

            raise TimelineError(f"cannot schedule a briefing that is {b.timeline.state.value}")
        b.scheduled_at = at
        self.broadcast(b)
        self.save(b)

    # -- between two runs of the server -----------------------------------------------------------

    def save(self, b: LiveBriefing, now: float | None = None, *, drained: bool = False) -> None:
        """Keep ``b``'s live state for the next run (after every staff action and question)."""
        now = now_ms() if now is None else now
        b.note_progress(now)
        self.saved.save(b.id, b.snapshot(now, drained=drained))

    def drain(self, now: float | None = None) -> None:
        """The server stops (SIGTERM): save every briefing as it is at this moment, marked as
        drained, so the next run knows exactly where a live one was cut."""
        now = now_ms() if now is None else now
        for b in self.briefings.values():
            b.refresh_counts()
            self.save(b, now, drained=True)

    def restore(self, now: float | None = None) -> None:
        """Take back what the last run saved (call it once, when the server starts serving).

        A briefing that was live when the server was drained goes on live from the start of the
        sentence that was cut, the time the server was away counting as a pause: a viewer who
        reconnects hears the rest of the narration, nothing skipped (with wall time, a restart
        of 10 s would drop a sentence or two that nobody heard). It cannot go on, and is ended
        as interrupted with its minutes written, when the server stopped without a drain (a
        crash: where it was cut is unknown), was away more than :data:`RESUME_WITHIN_S`, or the
        briefing was rendered again meanwhile. A paused one stays paused. Staff are told in the
        console (``notice`` in the state).
        """
        now = now_ms() if now is None else now
        for bid, snap in self.saved.load_all().items():
            b = self.briefings.get(bid)
            if b is None:
                continue  # its timeline is gone: keep the file, a later render may bring it back
            try:
                self._restore(b, snap, now)
            except (KeyError, TypeError, ValueError, IndexError) as e:
                log.warning("briefing state not restored", extra={"briefing": bid, "error": str(e)})

    def _restore(self, b: LiveBriefing, snap: dict[str, Any], now: float) -> None:
        saved_at = float(snap["saved_at"])
        down_s = max(0.0, (now - saved_at) / 1000.0)
        was = State(snap["timeline"]["state"])
        running = was in (State.LIVE, State.PAUSED)
        if snap.get("asset") != b.doc.get("asset"):
            if running:  # the old run is ended with the timeline it was playing
                old = self._old_doc(snap.get("asset"))
                if old is not None:
                    gone = self._new(old)
                    gone.load(snap)
                    self._interrupt(gone, saved_at, "rendered_again")
            b.notice = (
                {"kind": "interrupted", "reason": "rendered_again", "at": now} if running else None
            )
            self.save(b, now)
            return
        b.load(snap)
        tl = b.timeline
        if was is State.LIVE:
            if not snap.get("drained"):
                self._interrupt(b, saved_at, "crashed")
            elif down_s > RESUME_WITHIN_S:
                self._interrupt(b, saved_at, "down_too_long")
            else:
                pos = float(snap["position"])
                tl.played += max(0.0, (saved_at - tl.anchor) / 1000.0)
                tl.offset = b.sentence_start(pos)
                tl.anchor = now
                b._last_pos = tl.offset
                b.restarts.append(
                    {"at": now, "down_s": round(down_s, 3), "position": round(pos, 3)}
                )
                b.notice = {
                    "kind": "resumed",
                    "at": now,
                    "down_s": round(down_s, 3),
                    "position": round(tl.offset, 3),
                }
                log.info(
                    "briefing resumed after a restart", extra={"briefing": b.id, "down_s": down_s}
                )
        elif was is State.PAUSED:
            b.restarts.append({"at": now, "down_s": round(down_s, 3), "position": tl.offset})
            b.notice = {
                "kind": "kept_paused",
                "at": now,
                "down_s": round(down_s, 3),
                "position": tl.offset,
            }
        self.arm(b)
        self.save(b, now)

    def _interrupt(self, b: LiveBriefing, at: float, reason: str) -> None:
        """End a run that cannot go on at server time ``at`` (when it was last known), write its
        minutes (marked interrupted) and tell staff why."""
        b.note_progress(at)
        b.timeline.apply(Action.END, at)
        b.interrupted = {"reason": reason, "at": at}
        b.notice = {"kind": "interrupted", "reason": reason, "at": now_ms()}
        self.finish(b)
        log.warning("briefing interrupted by a restart", extra={"briefing": b.id, "reason": reason})

    def _old_doc(self, asset: object) -> dict[str, Any] | None:
        """The timeline a run was playing, from the asset store (every render is kept there)."""
        if not isinstance(asset, str) or len(asset) != 64 or not asset.isalnum():
            return None
        try:
            doc = json.loads((self.data_dir / "assets" / asset).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(doc, dict) or "segments" not in doc:
            return None
        doc["asset"] = asset
        return doc
