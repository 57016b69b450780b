"""Invite-only events with hosts and a timed agenda, and moderation in the public hall.

``setup(app)`` (listed in ``server.features``) mounts:

- the hello hooks: a banned device is refused (BANNED); a hello with ``opts.invite`` is checked
  (``server.events.invites``) and placed in its event's private instance, or refused with the
  close code that says why (expired, revoked, another event, used, full, not started, over,
  locked); the join is recorded and committed before its WELCOME;
- ``HOST`` messages (host tools, raise hand, leave) and ``MODERATE`` (block, unblock, report);
- the agenda loop (4 a second): the agenda moves on with time, tables open and close, the
  stage goes live, everyone in an event gets ``EVENT`` with the timer; and the attendance purge
  (hourly) past ``Config.attendance_retention_days``;
- the staff API under ``/staff/events`` (OpenAPI at ``/staff/events/openapi.json``), the console
  at ``/staff/events/console``, and ``/staff/moderation/...``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from aiohttp import web

from server.errors import RequestError
from server.events.http import add_routes
from server.events.moderation import Moderation
from server.events.service import EventService
from server.events.wire import Host
from server.keys import DISPATCH, EVENTS, HALL, HOOKS, OUTBOX
from server.protocol.codes import MsgType
from server.protocol.messages import Notice
from server.tasks import stop_task

if TYPE_CHECKING:
    from server.session import Session

__all__ = ["setup", "EventService", "TICK_SECONDS", "PURGE_SECONDS"]

log = logging.getLogger("emachi.events")

TICK_SECONDS = 0.25
PURGE_SECONDS = 3600.0
LOAD_TRIES = 20


def setup(app: web.Application) -> None:
    """Mount events and moderation on ``app``."""
    service = EventService(app)
    app[EVENTS] = service
    moderation = Moderation(app, service)
    hooks = app[HOOKS]
    hooks.on_hello(moderation.on_hello)
    hooks.on_hello(service.on_hello)
    hooks.on_join(service.on_join)
    hooks.on_resume(service.on_resume)
    hooks.on_leave(service.on_leave)
    hooks.on_leave(moderation.on_leave)

    async def on_host(session: Session, msg: Host) -> None:
        m = service.members.get(session)
        if m is None:
            raise RequestError("not_in_event", "event actions are for people in an event")
        if msg.action == "leave":
            # the leave is committed before it is answered
            app[HALL].leave(session)
            await app[OUTBOX].committed(service.left_seq(session))
            session.send(Notice(kind="event_left", data={"event": m.event}).encode())
            session.close(1000, "left the event")
            return
        live = service.live_of(m.event)
        out = service.act(live, m.role, f"invite:{m.invite}", msg.action, msg.args, m)
        session.send(Notice(kind="event_done", data=out).encode())
        service.publish(live)

    app[DISPATCH].register(MsgType.HOST, on_host)
    app[DISPATCH].register(MsgType.MODERATE, moderation.on_moderate)
    add_routes(app, service, moderation)

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        service.load_secret()
        for attempt in range(LOAD_TRIES):
            try:
                await service.load()
                await moderation.load()
                break
            except Exception as exc:  # the store away at start: try again, then go on without
                log.warning("events not loaded yet", extra={"why": f"{type(exc).__name__}: {exc}"})
                await asyncio.sleep(min(2.0, 0.1 * 2**attempt))
        task = asyncio.get_running_loop().create_task(_loop(service), name="events agenda")
        yield
        await stop_task(task)

    app.cleanup_ctx.append(ctx)


async def _loop(service: EventService) -> None:
    since_purge = PURGE_SECONDS
    while True:
        try:
            service.tick()
            since_purge += TICK_SECONDS
            if since_purge >= PURGE_SECONDS:
                since_purge = 0.0
                service.purge()
        except Exception:
            log.exception("events tick failed")
        await asyncio.sleep(TICK_SECONDS)
