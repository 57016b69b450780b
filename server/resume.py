"""Resume that survives a restart, and in a cluster a process that dies.

One process: at the SIGTERM drain every avatar's seat (resume token, instance id, avatar id,
floor, position, yaw, name, colour, mode, role, and what is left of its resume window) is written
to the records store (the SQLite file in the data dir) under ``resume/local``. At the next start
the seats are read back (and deleted) and :meth:`server.hall.Hall.restore` puts every avatar
back, detached, so that a hello carrying its token within the window gets the same avatar id in
the same instance at the same place.

A cluster (``--redis``): every avatar's seat is in Redis all the time, written by the cluster's
lease beat (every half second) in one script call per process, fenced by the instance's lease
(:func:`cluster_seats`, ``server/cluster/leases.py``), with a time to live of the resume window,
and a new avatar's at once when it joins (:func:`_seat_now`);
a resume token maps to its instance there too. When a process stops or dies, the process that
takes its instances over gives the avatars back from those seats (:func:`_taken_over`), and a
client resumes on whichever process now owns its instance. Nothing is written at the drain but
one last beat.

Positions are kept only for the resume window and only to give the avatar back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Collection
from dataclasses import asdict, dataclass, fields
from typing import Any

from aiohttp import web

from server.keys import CLUSTER, CONFIG, HALL, HOOKS, OUTBOX, STORE, WORLD
from server.session import Session, SessionState
from server.store import StoreAway

__all__ = ["setup", "Seat", "SPACE", "seats_of", "seat_of", "cluster_seats", "owner_key"]

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
    role: str = ""  # "staff" or "host" when a hello hook said so

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
            role=str(d.get("role", "")),
        )


def owner_key(app: web.Application) -> str | None:
    """Whose seats the drain saves: ``local`` (the records are this process's alone), ``HOST:PORT``
    when the records are shared without a cluster (a PostgreSQL other processes may use too), None
    in a cluster, where every avatar's seat is in Redis all along (:func:`cluster_seats`), or when
    shared and the port is not known (another process could take the seats)."""
    config = app[CONFIG]
    if config.redis_url:
        return None
    if not config.database_url:
        return "local"
    return f"{config.host}:{config.port}" if config.port else None


def seat_of(s: Session, now: float, window: float) -> Seat | None:
    """The seat of one avatar still within its resume window, or None."""
    inst = s.instance
    if inst is None or s.avatar_id < 0 or not s.resume_token:
        return None
    if s.state is SessionState.DETACHED:
        left = window - (now - s.detached_at)
    elif s.state is SessionState.ACTIVE:
        left = window  # connected (or its socket is closing with the drain)
    else:
        return None
    if left <= 0:
        return None
    floor, x, z = inst.position(s.avatar_id)
    return Seat(
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
        s.role,
    )


def seats_of(app: web.Application) -> list[Seat]:
    """The seat of every avatar of the hall still within its resume window."""
    window = app[CONFIG].resume_window
    now = time.monotonic()
    return [seat for s in app[HALL].avatars() if (seat := seat_of(s, now, window)) is not None]


_SEAT_FIELDS = tuple(f.name for f in fields(Seat))


def seat_json(seat: Seat, at: float) -> str:
    """A seat as the cluster keeps it in Redis (its fields, in order, and ``at``, the wall time):
    what ``asdict`` gave, without its deep copy of every field (every avatar, every beat)."""
    d = {name: getattr(seat, name) for name in _SEAT_FIELDS}
    d["at"] = at
    return json.dumps(d, ensure_ascii=False, separators=(",", ":"))


def cluster_seats(app: web.Application, owned: Collection[str]) -> dict[str, dict[str, str]]:
    """Instance → resume token → seat JSON (with ``at``, the wall time), for the instances of
    ``owned``: what the cluster writes to Redis on each lease beat (about once a second)."""
    window = app[CONFIG].resume_window
    now, wall = time.monotonic(), round(time.time(), 3)
    out: dict[str, dict[str, str]] = {}
    for inst in app[HALL].instances:
        if inst.id not in owned:
            continue
        seats = out[inst.id] = {}
        for s in inst.sessions.values():
            seat = seat_of(s, now, window)
            if seat is not None:
                seats[seat.token] = seat_json(seat, wall)
    return out


def _seat_now(app: web.Application, session: Session) -> None:
    """A new avatar's seat goes to Redis at once, not with the next beat: a process killed a
    moment after the join leaves it resumable too. (An avatar given back after a takeover, still
    detached, is in the seats already.)"""
    leases = app[CLUSTER].leases
    inst = session.instance
    if leases is None or inst is None or session.state is not SessionState.ACTIVE:
        return
    seat = seat_of(session, time.monotonic(), app[CONFIG].resume_window)
    if seat is not None:
        leases.seat(inst.id, seat.token, seat_json(seat, round(time.time(), 3)))


def _taken_over(app: web.Application, lease: Any, saved: dict[str, dict[str, Any]]) -> None:
    """Another process owned ``lease.instance`` and is gone: give its avatars back here,
    detached, each waiting for its client's resume (same avatar id, same place)."""
    hall = app[HALL]
    inst = hall.open_instance(lease.instance, lease_until=lease.valid_until)
    if inst is None:
        log.warning("instance taken over but not opened", extra={"instance": lease.instance})
        return
    wall = time.time()
    seats = []
    for d in saved.values():
        try:
            seat = Seat.from_json(d)
            left = seat.left - max(0.0, wall - float(d.get("at", wall)))
        except (KeyError, TypeError, ValueError):
            continue
        if left > 0 and seat.instance == lease.instance:
            seats.append(Seat(**{**asdict(seat), "left": left}))
    back = hall.restore(seats)
    log.info(
        "resumable here after a takeover",
        extra={"instance": lease.instance, "avatars": len(back), "saved": len(saved)},
    )


def setup(app: web.Application) -> None:
    """Save the seats when the application stops and give them back when it starts; in a
    cluster, hand the cluster the seats to keep in Redis and take back those of a process that
    is gone (server/cluster/leases.py)."""
    cluster = app.get(CLUSTER)
    if cluster is not None and cluster.clustered:
        cluster.seat_source = lambda owned: cluster_seats(app, owned)
        cluster.seats_ttl = app[CONFIG].resume_window
        cluster.on_takeover.append(lambda lease, saved: _taken_over(app, lease, saved))
        app[HOOKS].on_join(lambda session: _seat_now(app, session))
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
