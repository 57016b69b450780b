"""Briefings and committee sessions: scripts, TTS rendering, the live timeline, questions, minutes.

``setup(app)`` mounts the feature on the server (docs/architecture.md, "Server extension
points"):

- messages: ``BRIEFING_JOIN`` (a viewer asks for a briefing; a watch-only hello that names one
  should be followed by it), ``QUESTION`` (≤ 300 characters, 3 a minute per viewer);
- staff API for the roles that run briefings (``server.staff_roles``), each action attributed to
  the account and written to the staff log (``server.audit``): ``GET /staff/briefings``, ``GET /staff/briefings/{id}``,
  ``POST /staff/briefings/{id}/{start|pause|resume|seek|rate|end}`` (seek: ``{"segment": i}``,
  rate: ``{"rate": r}``), ``POST /staff/briefings/{id}/reset`` (an ended one, for a new run),
  ``POST /staff/briefings/{id}/schedule`` (``{"at": ms | ISO time | null}``: the announced start),
  ``GET /staff/briefings/{id}/questions``,
  ``POST /staff/briefings/{id}/questions/{qid}/{show|answered}``, ``GET /staff/briefings/{id}/minutes``;
- the minutes as files: ``GET /staff/minutes/`` (every run's, with links) and
  ``GET /staff/minutes/{file}`` (:mod:`server.briefing.minutes_http`);
- staff page: ``GET /staff/briefings/{id}/console`` (buttons for all of the above; opened once
  with ``?token=...``, which sets the staff session cookie: ``server.staff``);
- public: ``GET /api/briefings`` (what can be watched), ``GET /api/briefings/{id}`` (its segments),
  ``GET /briefing/{id}`` (the watch-only page);
- lifecycle hooks (``server/hooks.py``), so that the hall is never polled: join and leave keep
  the avatars and watch-only viewers to tell (a session that leaves is forgotten), create, tick
  and dispose keep who stands in a stage or auditorium zone (:mod:`server.briefing.audience`,
  every ``AUDIENCE_SECONDS``) and recount the attendance then;
- a timer per live briefing that ends it when it has played to the end, which writes its minutes;
- ``app[NARRATION]``: where the narration is spoken from now (:mod:`server.briefing.narration`),
  from which the voice feature gives each listener its gain (a stage source, docs/voice.md);
- the live state kept between runs (:mod:`server.briefing.persist`): saved after every staff
  action and question and at the stop, taken back at the start, so a restart resumes a live
  briefing where it was or ends it as interrupted (with minutes);
- across processes, :class:`server.briefing.sync.BriefingSync` on the cluster's bus
  (``app[BUS]``, ``app[BUS_OUTBOX]``, ``app[CLUSTER].on_connect``) when the cluster is mounted,
  and in cluster mode :class:`server.briefing.relay.AudienceRelay` (questions, attendance and one
  set of minutes for the whole cluster).

Formats are in ``docs/briefings.md``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from aiohttp import web

from server.audit import audit
from server.briefing import minutes_http
from server.briefing.audience import Audience, audience_zones
from server.briefing.narration import NarrationSpot
from server.briefing.questions import QuestionError
from server.briefing.relay import AudienceRelay, relay_ctx
from server.briefing.service import BriefingService, LiveBriefing
from server.briefing.sync import BriefingSync
from server.briefing.timeline import Action, TimelineError
from server.config import CLIENT_DIR
from server.errors import RequestError
from server.keys import (
    BRIEFINGS,
    BUS,
    BUS_OUTBOX,
    CLUSTER,
    CONFIG,
    DISPATCH,
    HOOKS,
    NARRATION,
    WORLD,
)
from server.protocol.codes import MsgType
from server.protocol.messages import Notice
from server.staff import staff_actor
from server.staff_roles import roles_for

if TYPE_CHECKING:
    from server.instance import Instance
    from server.protocol.messages import BriefingJoin, Question
    from server.session import Session

__all__ = ["setup", "BRIEFINGS"]

log = logging.getLogger("emachi.briefing")

#: who may run briefings (``server.staff_roles``); every staff action goes into the staff log
STAFF = roles_for("briefings")

#: how often (s) each instance recomputes who stands in the audience zones and the counts
AUDIENCE_SECONDS = 0.25
PAGE = "briefing/watch.html"


def setup(app: web.Application) -> None:
    """Mount briefings on the application (routes, message handlers, hooks, the cluster relay)."""
    config = app[CONFIG]
    zones = audience_zones(app[WORLD])
    audience = Audience(zones, every=round(AUDIENCE_SECONDS * config.tick_rate))
    service = BriefingService(config.data_dir, audience, time_zone=config.tz)
    app[BRIEFINGS] = service
    app[NARRATION] = NarrationSpot(service, app[WORLD])

    def on_tick(inst: Instance) -> None:
        if audience.on_tick(inst):
            service.refresh()  # counts, seen and peaks: also who asked, or whose socket dropped

    hooks = app[HOOKS]
    hooks.on_join(service.joined)
    hooks.on_leave(service.left)
    hooks.on_create(audience.on_create)
    hooks.on_tick(on_tick)
    hooks.on_dispose(audience.on_dispose)

    async def on_join(session: Session, msg: BriefingJoin) -> None:
        b = _live(service, msg.briefing_id)
        if session.mode == "watch" and session.opts.get("briefing") not in (None, msg.briefing_id):
            raise RequestError("briefing_other", "this connection watches another briefing")
        service.join(b, session)

    async def on_question(session: Session, msg: Question) -> None:
        b = _live(service, msg.briefing_id)
        try:
            q = service.ask(b, session, msg.text)
        except QuestionError as e:
            raise RequestError(e.code, e.reason) from None
        session.send(Notice(kind="question_received", data={"briefing": b.id, "id": q.id}).encode())

    dispatch = app[DISPATCH]
    dispatch.register(MsgType.BRIEFING_JOIN, on_join)
    dispatch.register(MsgType.QUESTION, on_question)

    r = app.router
    r.add_get("/api/briefings", list_public)
    r.add_get("/api/briefings/{id}", public_state)
    r.add_get("/briefing/{id}", watch_page)
    r.add_get("/staff/briefings", staff_list)
    r.add_get("/staff/briefings/{id}", staff_state)
    r.add_post("/staff/briefings/{id}/{action:start|pause|resume|seek|rate|end}", staff_action)
    r.add_post("/staff/briefings/{id}/reset", staff_reset)
    r.add_post("/staff/briefings/{id}/schedule", staff_schedule)
    r.add_get("/staff/briefings/{id}/questions", staff_questions)
    r.add_post("/staff/briefings/{id}/questions/{qid:\\d+}/{action:show|answered}", staff_question)
    r.add_get("/staff/briefings/{id}/minutes", staff_minutes)
    r.add_get("/staff/briefings/{id}/console", staff_console)
    minutes_http.mount(app)  # GET /staff/minutes/ and /staff/minutes/{file}
    if BUS in app:
        sync = BriefingSync(service, app[BUS], app[BUS_OUTBOX])
        sync.attach()
        app[CLUSTER].on_connect(sync.on_connect)
        if app[CLUSTER].clustered:  # questions, attendance and minutes of the whole cluster
            relay = AudienceRelay(service, app[BUS], app[BUS_OUTBOX], app[CLUSTER])
            relay.attach()
            app.cleanup_ctx.append(relay_ctx(relay))
    app.cleanup_ctx.append(_timers)


def _live(service: BriefingService, briefing_id: str) -> LiveBriefing:
    b = service.get(briefing_id)
    if b is None:
        raise RequestError("briefing_unknown", f"no briefing {briefing_id!r}")
    return b


async def _timers(app: web.Application) -> AsyncIterator[None]:
    """At start, take back the live state the last run saved (a live briefing goes on where it
    was, its end timer armed); at the stop (the SIGTERM drain, after the clients were closed),
    save every briefing as it is and stop the end timers."""
    service = app[BRIEFINGS]
    service.restore()
    yield
    service.drain()
    service.close()


# -- HTTP ---------------------------------------------------------------------------------------


def _briefing(request: web.Request) -> LiveBriefing:
    b = request.app[BRIEFINGS].get(request.match_info["id"])
    if b is None:
        raise web.HTTPNotFound(text=f"no briefing {request.match_info['id']!r}")
    return b


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, ensure_ascii=False))


def _summary(b: LiveBriefing) -> dict[str, Any]:
    tl = b.timeline
    return {
        "id": b.id,
        "title": b.doc["title"],
        "date": b.doc["date"],
        "state": tl.state.value,
        "segments": len(tl.lengths),
        "duration": round(tl.total, 3),
        "page": f"/briefing/{b.id}",
    }


async def list_public(request: web.Request) -> web.Response:
    service = request.app[BRIEFINGS]
    service.reload()
    return _json({"briefings": [_summary(b) for b in service.briefings.values()]})


async def public_state(request: web.Request) -> web.Response:
    """What a viewer's first BRIEFING carries (segments, slides, captions), over HTTP."""
    from server.briefing.service import now_ms

    b = _briefing(request)
    state = b.state_json(now_ms(), full=True)
    state.pop("segments_url", None)
    return _json({**state, "segments": b.segments_json})


async def staff_console(request: web.Request) -> web.StreamResponse:
    """The staff console page; it calls the staff API with the token it was opened with."""
    staff_actor(request, STAFF)
    _briefing(request)
    page = CLIENT_DIR / "briefing" / "staff.html"
    if not page.is_file():
        return web.Response(text="emachi: the staff console is not installed", status=503)
    return web.FileResponse(page, headers={"Cache-Control": "no-store"})


async def watch_page(request: web.Request) -> web.StreamResponse:
    _briefing(request)
    page = CLIENT_DIR / PAGE
    if not page.is_file():
        return web.Response(text="emachi: the briefing page is not installed", status=503)
    return web.FileResponse(page, headers={"Cache-Control": "no-cache"})


async def staff_list(request: web.Request) -> web.Response:
    staff_actor(request, STAFF)
    service = request.app[BRIEFINGS]
    service.reload()
    return _json({"briefings": [_summary(b) for b in service.briefings.values()]})


async def staff_state(request: web.Request) -> web.Response:
    from server.briefing.service import now_ms

    staff_actor(request, STAFF)
    b = _briefing(request)
    return _json({**b.state_json(now_ms(), full=False), "time_zone": request.app[CONFIG].time_zone})


async def staff_action(request: web.Request) -> web.Response:
    actor = staff_actor(request, STAFF)
    b = _briefing(request)
    action = Action(request.match_info["action"])
    kw: dict[str, Any] = {}
    if action in (Action.SEEK, Action.RATE):
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        key = "segment" if action is Action.SEEK else "rate"
        value = body.get(key) if isinstance(body, dict) else None
        if action is Action.SEEK and (not isinstance(value, int) or isinstance(value, bool)):
            return _json(
                {"error": "bad_request", "reason": 'body: expected {"segment": index}'}, 400
            )
        if action is Action.RATE and (
            not isinstance(value, int | float) or isinstance(value, bool)
        ):
            return _json({"error": "bad_request", "reason": 'body: expected {"rate": number}'}, 400)
        kw[key] = value
    try:
        state = await request.app[BRIEFINGS].act_published(b, action, **kw)
    except TimelineError as e:
        return _json({"error": "conflict", "reason": str(e)}, 409)
    audit(request.app, actor.name, f"briefing.{action.value}", b.id, **kw)
    return _json(state)


async def staff_reset(request: web.Request) -> web.Response:
    """Schedule an ended briefing again for a new run (its minutes stay)."""
    from server.briefing.service import now_ms

    actor = staff_actor(request, STAFF)
    try:
        fresh = request.app[BRIEFINGS].reset(_briefing(request))
    except TimelineError as e:
        return _json({"error": "conflict", "reason": str(e)}, 409)
    audit(request.app, actor.name, "briefing.reset", fresh.id)
    return _json(fresh.state_json(now_ms(), full=False))


async def staff_questions(request: web.Request) -> web.Response:
    staff_actor(request, STAFF)
    b = _briefing(request)
    return _json({"briefing": b.id, "questions": b.questions.all()})


async def staff_question(request: web.Request) -> web.Response:
    actor = staff_actor(request, STAFF)
    b = _briefing(request)
    service = request.app[BRIEFINGS]
    try:
        q = service.move_question(b, int(request.match_info["qid"]), request.match_info["action"])
    except QuestionError as e:
        status = 404 if e.code == "question_unknown" else 409
        return _json({"error": e.code, "reason": e.reason}, status)
    # the question's number only: what was asked stays out of the staff log
    action = f"briefing.question.{request.match_info['action']}"
    audit(request.app, actor.name, action, b.id, question=q.id)
    return _json(q.to_json())


def _server_ms(value: object) -> float | None:
    """``{"at": ...}`` of the schedule route: server ms, an ISO 8601 time with its offset, or
    null; ValueError with what was expected otherwise."""
    import datetime as dt

    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    if isinstance(value, str):
        try:
            t = dt.datetime.fromisoformat(value)
        except ValueError:
            t = None
        if t is not None and t.tzinfo is not None:
            return t.timestamp() * 1000.0
    raise ValueError(
        'body: expected {"at": server ms, an ISO 8601 time with its offset '
        f'("2024-01-02T14:00+09:00"), or null}}, got {value!r}'
    )


async def staff_schedule(request: web.Request) -> web.Response:
    """Announce when a briefing that has not started will start (shown on the watch page)."""
    from server.briefing.service import now_ms

    actor = staff_actor(request, STAFF)
    b = _briefing(request)
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    try:
        if not isinstance(body, dict) or "at" not in body:
            raise ValueError('body: expected {"at": server ms | ISO 8601 time | null}')
        at = _server_ms(body["at"])
    except ValueError as e:
        return _json({"error": "bad_request", "reason": str(e)}, 400)
    try:
        request.app[BRIEFINGS].schedule(b, at)
    except TimelineError as e:
        return _json({"error": "conflict", "reason": str(e)}, 409)
    audit(request.app, actor.name, "briefing.schedule", b.id, at=at)
    return _json(b.state_json(now_ms(), full=False))


async def staff_minutes(request: web.Request) -> web.Response:
    staff_actor(request, STAFF)
    b = _briefing(request)
    if b.minutes is None:
        return _json(
            {"error": "not_ended", "reason": "minutes are written when the briefing ends"}, 409
        )
    md, page = b.minutes
    if request.query.get("format") == "html":
        return web.Response(text=page.read_text(encoding="utf-8"), content_type="text/html")
    return web.Response(text=md.read_text(encoding="utf-8"), content_type="text/markdown")
