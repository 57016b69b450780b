"""Spatial voice: the server decides who hears whom; the WebSocket carries the Opus frames.

``setup(app)`` mounts the feature (docs/voice.md has the wire and the rules):

- ``VOICE`` from a client: one Opus packet of 20 ms with a sequence number, a talking flag and a
  megaphone flag. Over 400 bytes, over 60 a second, from someone a host muted, or from a quiet
  zone: dropped and counted; over 120 a second closes that connection with FLOOD. Never decoded,
  stored or logged.
- ``VOICE_FRAME`` to a listener: every 20 ms at most one, with the frames of the speakers it
  is subscribed to (``server.voice.relay``).
- ``AUDIO_SUBS`` to a listener: whom it hears now and at which gain, when that changes
  (recomputed at 10 Hz from the instance's state in a tick hook, ``world.audibility``); and,
  while a briefing runs, the gain of its narration (``stage``), a stage source each page plays
  from its asset: the presenter's spot (``app[NARRATION]``) heard as a live voice from there.
- Megaphone: honoured for sessions with the role ``staff`` or ``host``. For now a session gets
  ``staff`` when its hello's ``opts.staff`` is this server's staff token (set here in a hello
  hook); the events issue brings real roles, which set ``Session.role`` the same way.
- Watch-only viewers (``mode: watch``) hear the stage voices at the PA gain, of the first
  instance where someone talks on a stage (they take no capacity).
- ``POST /staff/voice/mute`` ``{"instance": ID, "avatar": N, "muted": true|false}`` behind the
  staff token: a host mutes someone (their frames are dropped).
- Counters at ``/metrics`` as ``emachi_voice_*``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from aiohttp import web

from server.keys import CONFIG, DISPATCH, HALL, HOOKS, METRICS, NARRATION, VOICE, WORLD
from server.protocol.codes import MsgType
from server.staff import require_staff
from server.tasks import stop_task
from server.voice.relay import FLUSH_SECONDS, UPDATE_HZ, Counters, Room
from world.audibility import ZoneTable

if TYPE_CHECKING:
    from server.instance import Instance
    from server.protocol.messages import Hello, Voice
    from server.session import Session

__all__ = ["setup", "VoiceService"]

log = logging.getLogger("emachi.voice")


class VoiceService:
    """The rooms (one per instance), the stage room watchers hear, and the counters."""

    def __init__(
        self,
        table: ZoneTable,
        tick_rate: int,
        watchers: Any,
        narration: Callable[[float], tuple[int, float, float] | None] | None = None,
    ) -> None:
        self.table = table
        self.rooms: dict[Instance, Room] = {}
        self.counters = Counters()
        self.every = max(1, round(tick_rate / UPDATE_HZ))
        self._watchers = watchers
        self.stage_room: Room | None = None
        self.stage_talks = False
        #: ``narration(now_ms)``: where the briefing's narration is spoken from, or None
        self._narration = narration
        self._keys: dict[tuple[int, float, float], int] = {}

    def narration_source(self) -> tuple[int, float, float] | None:
        """The narration as a source: ``(zone key, x, z)``, or None when none plays."""
        spot = self._narration(time.time() * 1000.0) if self._narration is not None else None
        if spot is None:
            return None
        key = self._keys.get(spot)
        if key is None:
            if len(self._keys) > 64:  # a stage has a few spots; never let this grow
                self._keys.clear()
            fl, x, z = spot
            pos = np.array([[x, z]], np.float32)
            key = self._keys[spot] = int(self.table.locate(np.array([fl]), pos)[0])
        return (key, spot[1], spot[2])

    def room(self, inst: Instance) -> Room:
        room = self.rooms.get(inst)
        if room is None:
            room = self.rooms[inst] = Room(inst, self.table, self.counters)
        return room

    def on_tick(self, inst: Instance) -> None:
        """Every ``every`` ticks (10 Hz): recompute this instance's subscriptions.

        Watchers listen to one room, the stage room; they move to another room when someone talks
        on a stage there and nobody did on the stage room's at its last update.
        """
        if inst.tick % self.every:
            return
        room = self.room(inst)
        watchers = [s for s in self._watchers() if s.mode == "watch"]
        listens = self.stage_room is None or self.stage_room is room
        talks = room.update(time.monotonic(), watchers if listens else [], self.narration_source())
        if listens:
            self.stage_room, self.stage_talks = room, talks
        elif talks and not self.stage_talks and self.stage_room is not None:
            self.stage_room.drop_remote(watchers)
            self.stage_room, self.stage_talks = room, True  # they join at its next update

    def on_dispose(self, inst: Instance) -> None:
        room = self.rooms.pop(inst, None)
        if room is not None and room is self.stage_room:
            self.stage_room = None

    def on_slot(self, session: Session) -> None:
        inst = session.instance
        if inst is not None and session.avatar_id >= 0:
            self.room(inst).reset(session.avatar_id)

    def on_leave(self, session: Session) -> None:
        self.on_slot(session)
        for room in self.rooms.values():
            room.forget(session)

    def on_resume(self, session: Session) -> None:
        """A new socket knows no subscriptions: tell it everything at the next update."""
        self.on_slot(session)
        for room in self.rooms.values():
            room.remote_told.pop(session, None)
            room.drained_at.pop(session, None)

    def pending(self) -> bool:
        """Whether any room holds frames not yet forwarded."""
        return any(room.pending for room in self.rooms.values())

    def flush(self) -> None:
        now = time.monotonic()
        for room in list(self.rooms.values()):
            room.flush(now)

    def mute(self, inst: Instance, avatar_id: int, muted: bool = True) -> bool:
        """Mute (or unmute) an avatar of ``inst``; False when there is no such avatar."""
        if avatar_id not in inst.sessions:
            return False
        room = self.room(inst)
        room.muted[avatar_id] = muted
        if muted:
            room.talking_until[avatar_id] = 0.0
            room.pending.pop(avatar_id, None)
        return True


def setup(app: web.Application) -> None:
    """Mount voice on the application (handler, hooks, the 20 ms flush loop, the mute route)."""
    config = app[CONFIG]
    hall = app[HALL]
    narration = app[NARRATION].spot if NARRATION in app else None  # briefings mount first
    service = VoiceService(
        ZoneTable.from_world(app[WORLD]), config.tick_rate, lambda: list(hall.watchers), narration
    )
    app[VOICE] = service
    metrics = app[METRICS]
    metrics.sources.append(service.counters.gauges)  # read when /metrics is scraped
    wake = asyncio.Event()  # set by each frame received; the flusher waits on it when idle
    hooks = app[HOOKS]

    @hooks.on_hello
    def staff_role(session: Session, hello: Hello) -> None:
        given = session.opts.pop("staff", None)  # the token is not kept with the session
        token = config.staff_token
        if isinstance(given, str) and token and hmac.compare_digest(given.encode(), token.encode()):
            session.role = "staff"

    hooks.on_join(service.on_slot)
    hooks.on_resume(service.on_resume)
    hooks.on_leave(service.on_leave)
    hooks.on_tick(service.on_tick)
    hooks.on_dispose(service.on_dispose)

    # synchronous: applied where aiohttp parses the frame, like INPUT (server/app.py's _inline),
    # with no task wake-up or coroutine per frame; a flood's PeerError closes this connection
    def on_voice(session: Session, msg: Voice) -> None:
        inst = session.instance
        if inst is None or session.avatar_id < 0:
            service.counters.dropped_no_avatar += 1  # a watch-only viewer has no mouth here
            return
        service.room(inst).receive(
            session, msg.seq, msg.talking, msg.megaphone, msg.data, time.monotonic()
        )
        wake.set()  # the flusher sleeps while nobody talks

    app[DISPATCH].register_sync(MsgType.VOICE, on_voice, own_rate=True)

    async def staff_mute(request: web.Request) -> web.Response:
        require_staff(request)
        try:
            body = await request.json()
            inst_id, avatar, muted = body["instance"], body["avatar"], body.get("muted", True)
            if not isinstance(inst_id, str) or type(avatar) is not int or type(muted) is not bool:
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise web.HTTPBadRequest(
                text='expected JSON {"instance": ID, "avatar": N, "muted": true|false}'
            ) from None
        inst = next((i for i in hall.instances if i.id == inst_id), None)
        if inst is None or not service.mute(inst, avatar, muted):
            raise web.HTTPNotFound(text=f"no avatar {avatar} in instance {inst_id!r}")
        return web.json_response({"instance": inst_id, "avatar": avatar, "muted": muted})

    app.router.add_post("/staff/voice/mute", staff_mute)

    async def flusher(app: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            loop_ = asyncio.get_running_loop()
            next_at = loop_.time()
            while True:
                if not service.pending():
                    # nothing to forward: sleep until a frame arrives instead of waking 50 times
                    # a second for nothing (most halls are silent most of the time)
                    wake.clear()
                    await wake.wait()
                    next_at = max(next_at, loop_.time())
                next_at += FLUSH_SECONDS
                await asyncio.sleep(max(0.0, next_at - loop_.time()))
                if loop_.time() - next_at > FLUSH_SECONDS:
                    next_at = loop_.time()  # the loop stalled: go on from now, do not burst
                try:
                    service.flush()
                except Exception:
                    log.exception("voice flush failed")

        task = asyncio.get_running_loop().create_task(loop(), name="voice flush")
        yield
        await stop_task(task)

    app.cleanup_ctx.append(flusher)
