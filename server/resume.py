"""Resume that survives a restart: the drain's "reconnect with your resume token" holds.

At the SIGTERM drain every avatar's seat (resume token, instance id, avatar id, floor, position,
yaw, name, colour, mode, and what is left of its resume window) is written to the records store
(``server.store``): the SQLite file in the data dir for one process, Redis with a time to live
equal to the resume window in a cluster. At the next start of the process the seats are read back
and :meth:`server.hall.Hall.restore` puts every avatar back, detached, so that a hello carrying
its token within the window gets the same avatar id in the same instance at the same place.

The seats of one process are one value, under ``resume/local`` for the SQLite store (the data dir
is the process's own) and ``resume/HOST:PORT`` in Redis (the address the process serves, which
stays the same across its restart; a clustered process serving on a port it was not told, as an
in-process test server, keeps none). It is taken (deleted) once restored.

Positions are kept only for the resume window and only to give the avatar back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web

from server.keys import CONFIG, HALL, OUTBOX, STORE, WORLD
from server.session import SessionState
from server.store import StoreAway

__all__ = ["setup", "Seat", "SPACE", "seats_of", "owner_key"]

log = logging.getLogger("emachi.resume")

SPACE = "resume"
#: how long the drain waits for the seats to be committed, and the start for them to be read
TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class Seat:
    """What is needed to give an avatar back after a restart."""

    token: str
    instance: str
    avatar_id: int
    floor: str
    x: float
    z: float
    yaw: float
    name: str
    color: int
    mode: str
    left: float  # seconds of the resume window left

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Seat:
        """A seat from its saved form.

        Raises:
            KeyError, TypeError, ValueError: not a seat.
        """
        return cls(
            token=str(d["token"]),
            instance=str(d["instance"]),
            avatar_id=int(d["avatar_id"]),
            floor=str(d["floor"]),
            x=float(d["x"]),
            z=float(d["z"]),
            yaw=float(d["yaw"]),
            name=str(d["name"]),
            color=int(d["color"]),
            mode=str(d["mode"]),
            left=float(d["left"]),
        )


def owner_key(app: web.Application) -> str | None:
    """Whose seats: ``local`` (the records are this process's alone), ``HOST:PORT`` when they
    are shared (a cluster, or a PostgreSQL other processes may use too), or None when shared and
    the port is not known (another process could take the seats)."""
    config = app[CONFIG]
    if not config.redis_url and not config.database_url:
        return "local"
    return f"{config.host}:{config.port}" if config.port else None


def seats_of(app: web.Application) -> list[Seat]:
    """The seat of every avatar of the hall still within its resume window."""
    hall = app[HALL]
    window = app[CONFIG].resume_window
    now = time.monotonic()
    seats = []
    for s in hall.avatars():
        inst = s.instance
        if inst is None or s.avatar_id < 0 or not s.resume_token:
            continue
        if s.state is SessionState.DETACHED:
            left = window - (now - s.detached_at)
        elif s.state is SessionState.ACTIVE:
            left = window  # its socket is closing with the drain
        else:
            continue
        if left <= 0:
            continue
        floor, x, z = inst.position(s.avatar_id)
        seats.append(
            Seat(
                s.resume_token,
                inst.id,
                s.avatar_id,
                floor,
                round(x, 3),
                round(z, 3),
                round(float(inst.crowd.yaw[s.avatar_id]), 4),
                s.name,
                s.color,
                s.mode,
                round(left, 3),
            )
        )
    return seats


def setup(app: web.Application) -> None:
    """Save the seats when the application stops and give them back when it starts."""
    app.cleanup_ctx.append(_resume_ctx)


async def _resume_ctx(app: web.Application) -> AsyncIterator[None]:
    await _load(app)
    yield
    # Cleanup contexts stop in reverse order: this runs after the drain and the hall's stop (its
    # avatars are all still there, detached) and before the records store closes.
    await _save(app)


async def _load(app: web.Application) -> None:
    key = owner_key(app)
    if key is None:
        return
    try:
        async with asyncio.timeout(TIMEOUT):
            saved = await app[STORE].get(SPACE, key)
    except (StoreAway, TimeoutError) as exc:
        log.warning("resume seats not read: the records store is away", extra={"why": str(exc)})
        return
    if not isinstance(saved, dict):
        return
    app[OUTBOX].delete(SPACE, key)  # taken: a second start does not give them back twice
    if saved.get("world") != app[WORLD].id:
        log.info("resume seats of another world dropped", extra={"world": saved.get("world")})
        return
    try:
        gone = max(0.0, time.time() - float(saved.get("saved_at", 0.0)))
    except (TypeError, ValueError):
        return
    seats = []
    for d in saved.get("seats", []):
        try:
            seat = Seat.from_json(d)
        except (KeyError, TypeError, ValueError):
            continue
        left = seat.left - gone
        if left > 0:
            seats.append(Seat(**{**asdict(seat), "left": left}))
    back = app[HALL].restore(seats)
    log.info(
        "resumable after restart",
        extra={"avatars": len(back), "saved": len(saved.get("seats", []))},
    )


async def _save(app: web.Application) -> None:
    seats = seats_of(app)
    key = owner_key(app)
    if not seats or key is None:
        return
    window = max(s.left for s in seats)
    value = {"world": app[WORLD].id, "saved_at": time.time(), "seats": [asdict(s) for s in seats]}
    outbox = app[OUTBOX]
    seq = outbox.put(SPACE, key, value, ttl=window)
    try:
        async with asyncio.timeout(TIMEOUT):
            await outbox.committed(seq)
    except TimeoutError:
        log.error(
            "resume seats not saved: the records store is away", extra={"avatars": len(seats)}
        )
        return
    log.info("resume seats saved", extra={"avatars": len(seats)})
