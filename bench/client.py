"""One process of the crowd: many asyncio WebSocket clients that walk the world like people.

Each client says hello, then walks: it picks a waypoint on its floor (kiosks, counters,
tables, stairs, spawns, zone centres from ``GET /api/world``), walks there sending an
input only when its intent changes (and a small course correction while walking), pauses,
and picks another. It acknowledges the newest snapshot about every 100 ms. With an
``input_rate`` (``bench.crowd --input-rate 10``) it sends an input that often whatever the intent
does, as a browser that sends its stick or keys on every frame would; those inputs carry the acks.

The load generator must cost much less than the server it measures (on a machine of two cores
they share, a busy load generator starves the server and the figures are the machine's), so a
crowd client is cheap per message:

- its WebSocket is :class:`WireSocket`, a minimal client on :class:`asyncio.Protocol` (the
  HTTP upgrade, masked client frames, the server's frames parsed in place from each read): a
  message is one method call, with no queue, future or task; an input that leaves at a random
  phase is a loop timer, not a task; :mod:`bench.crowd` runs the processes on uvloop;
- a snapshot is read only to its header (:func:`snapshot_head`: tick, base, last_seq, for the
  ack and the latency figure) and its section lengths (the records figure); the client tracks
  only its own avatar (:class:`OwnTrack`), found by binary search in the sections, and only
  when its walker asks for the position at its 10 Hz step: the other frames are kept by
  reference and worked out only if a later one needs them as its base;
- a few verifying clients per process (``verify``) decode, check and apply every snapshot in
  full (:class:`~server.protocol.snapshot.SnapshotState`), as a browser does, and compare their
  own avatar with the tracked one, so that the shortcut is checked against the real codec.

It measures what a person's browser would see: input-to-snapshot latency, frames and bytes
down, records per snapshot. The bench never asserts anything; :mod:`bench.crowd` aggregates and
reports. The watch-only briefing viewers (:class:`Viewers`) and :mod:`bench.voice`'s clients
stay on aiohttp's client.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import math
import os
import random
import struct
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import msgpack

from server.protocol.codes import PROTOCOL_VERSION, CloseCode, MsgType
from server.protocol.messages import Hello, ProtocolError, Snapshot, Welcome, decode
from server.protocol.snapshot import SnapshotState

__all__ = [
    "Waypoints",
    "find_record",
    "OwnTrack",
    "Walker",
    "Stats",
    "ws_frame_bytes",
    "run_clients",
    "close_at",
    "cpu_in_window",
    "Viewers",
    "ACTION_PLAN",
    "start_briefing",
    "post_action",
    "note_spread",
    "pct",
]

HISTORY = 64  # snapshot states kept, as the protocol asks of a client
ACK_EVERY = 0.1  # seconds between acknowledgements
INPUT_PHASE = 0.05  # inputs go out at a random moment within this window (one 20 Hz tick)
CONTROL_EVERY = 0.1  # seconds between decisions of a walker
WALK_SPEED = (0.4, 0.55)  # intent magnitude: × max_speed (3 m/s) ≈ 1.2-1.65 m/s, a walk
ARRIVED = 0.7  # metres from the waypoint that count as there
STUCK_AFTER = 2.5  # seconds without 0.3 m of progress: give up that waypoint
PAUSE = (1.0, 5.0)  # seconds standing at a waypoint
TURN_RESEND = math.radians(20)  # resend the intent when the heading is off by this much
STEER_EVERY = (0.8, 2.5)  # seconds between a person's small changes of heading while walking
STEER_SPREAD = math.radians(12)  # how far off the straight line such a change goes

_SNAPSHOT = int(MsgType.SNAPSHOT)
_WELCOME = int(MsgType.WELCOME)
_INPUT = int(MsgType.INPUT)
_ACK = int(MsgType.ACK)
_packb = msgpack.Packer(use_bin_type=True).pack  # Input(...).encode()'s bytes, without the object
_FULL = struct.Struct("<HBBii")
_MOVE = struct.Struct("<Hbb")
_TURN_MOVE = struct.Struct("<HbbB")
_TURN = struct.Struct("<HB")


def ws_frame_bytes(payload: int) -> int:
    """Bytes on the wire of an unmasked server-to-client binary frame of ``payload`` bytes."""
    if payload < 126:
        return payload + 2
    if payload < 65536:
        return payload + 4
    return payload + 10


class Waypoints:
    """Places people walk to, by floor index, taken from the world's client JSON."""

    def __init__(self, world: dict[str, Any]) -> None:
        by_floor: dict[int, list[tuple[float, float]]] = {}

        def add(floor: Any, x: Any, z: Any) -> None:
            if isinstance(floor, int) and isinstance(x, int | float) and isinstance(z, int | float):
                by_floor.setdefault(floor, []).append((float(x), float(z)))

        for key in ("kiosks", "counters", "tables", "spawns", "decor"):
            for obj in world.get(key) or []:
                if key == "decor" and obj.get("solid"):
                    continue  # walking into a pillar is not what people do
                add(obj.get("floor"), obj.get("x"), obj.get("z"))
        for zone in world.get("zones") or []:
            pts = zone.get("polygon") or []
            if pts:
                add(
                    zone.get("floor"),
                    sum(p[0] for p in pts) / len(pts),
                    sum(p[1] for p in pts) / len(pts),
                )
        for stair in world.get("stairs") or []:
            add(stair.get("lower"), *stair.get("start", (None, None)))
            add(stair.get("upper"), *stair.get("end", (None, None)))
        self.by_floor = by_floor

    def pick(self, floor: int, rng: random.Random) -> tuple[float, float] | None:
        """A random waypoint on ``floor``, or None if the world has none there."""
        pts = self.by_floor.get(floor)
        return rng.choice(pts) if pts else None


def find_record(section: bytes, size: int, avatar_id: int) -> int:
    """Byte offset of ``avatar_id``'s record in a section sorted by id, or -1."""
    lo, hi = 0, len(section) // size
    while lo < hi:
        mid = (lo + hi) >> 1
        off = mid * size
        v = section[off] | (section[off + 1] << 8)
        if v < avatar_id:
            lo = mid + 1
        elif v > avatar_id:
            hi = mid
        else:
            return off
    return -1


Record = tuple[int, int, int, int]  # floor, yaw byte, x cm, z cm
_PENDING: Any = object()  # a noted snapshot whose own record is not worked out yet


class OwnTrack:
    """The client's own avatar through the snapshots, without rebuilding the whole view.

    Keeps its own record at each of the last :data:`HISTORY` ticks, as a full client keeps
    whole states, so that any acknowledged base resolves. Two ways in: :meth:`apply` works the
    record out at once from the sections; :meth:`note` only keeps the frame (a reference, no
    copy, no decoding) and :meth:`record` works a tick's record out when it is asked for,
    going back through the bases it needs, each worked out once. A crowd client asks at its
    walker's 10 Hz step, so most frames are never decoded past their header.
    """

    __slots__ = ("avatar_id", "_ticks", "_recs", "_frames", "unknown_base")

    def __init__(self, avatar_id: int) -> None:
        self.avatar_id = avatar_id
        self._ticks = [-1] * HISTORY
        self._recs: list[Record | None] = [None] * HISTORY
        self._frames: list[tuple[int, bytes, int] | None] = [None] * HISTORY
        self.unknown_base = 0  # snapshots whose base this client did not have

    def apply(
        self,
        tick: int,
        base_tick: int,
        full: bytes,
        move: bytes,
        turn_move: bytes,
        turn: bytes,
        left: bytes,
    ) -> Record | None:
        """Own record at ``tick`` (None when not in view); remembered for later bases."""
        prev: Record | None = None
        if base_tick:
            slot = base_tick % HISTORY
            if self._ticks[slot] != base_tick:
                self.unknown_base += 1
            else:
                prev = self.record(base_tick)
        rec = _own_full(full, self.avatar_id)
        if rec is None and prev is not None:
            rec = _own_delta(prev, move, turn_move, turn, left, self.avatar_id)
        slot = tick % HISTORY
        self._ticks[slot] = tick
        self._recs[slot] = rec
        self._frames[slot] = None
        return rec

    def note(self, tick: int, base_tick: int, frame: bytes, sections_at: int) -> None:
        """Keep snapshot ``frame`` (its sections start at byte ``sections_at``, see
        :func:`snapshot_head`) for :meth:`record`; only its base is checked now."""
        if base_tick and self._ticks[base_tick % HISTORY] != base_tick:
            self.unknown_base += 1
        slot = tick % HISTORY
        self._ticks[slot] = tick
        self._recs[slot] = _PENDING
        self._frames[slot] = (base_tick, frame, sections_at)

    def record(self, tick: int) -> Record | None:
        """Own record at a tick given to :meth:`apply` or :meth:`note` (None when not in view,
        or when the tick is no longer kept)."""
        me = self.avatar_id
        ticks, recs, frames = self._ticks, self._recs, self._frames
        todo: list[tuple[int, tuple[bytes, bytes, bytes, bytes, bytes]]] = []
        prev: Record | None = None
        t = tick
        while True:
            slot = t % HISTORY
            if ticks[slot] != t:
                break  # a base this client did not have (counted when it was noted)
            rec = recs[slot]
            if rec is not _PENDING:
                prev = rec
                break
            kept = frames[slot]
            assert kept is not None
            base_tick, frame, at = kept
            sections = snapshot_sections(frame, at)
            frames[slot] = None
            rec = _own_full(sections[0], me)
            if rec is not None:
                recs[slot] = prev = rec
                break
            todo.append((slot, sections))
            if not base_tick:
                break  # a snapshot against nothing, and not in it: not in view
            t = base_tick
        for slot, (_, move, turn_move, turn, left) in reversed(todo):
            if prev is not None:
                prev = _own_delta(prev, move, turn_move, turn, left, me)
            recs[slot] = prev
        return prev


def _own_full(full: bytes, me: int) -> Record | None:
    off = find_record(full, 12, me)
    if off < 0:
        return None
    _, fl, yw, x, z = _FULL.unpack_from(full, off)
    return (fl, yw, x, z)


def _own_delta(
    prev: Record, move: bytes, turn_move: bytes, turn: bytes, left: bytes, me: int
) -> Record | None:
    """``prev`` changed by the delta sections (unchanged when the avatar is in none of them)."""
    off = find_record(move, 4, me)
    if off >= 0:
        _, dx, dz = _MOVE.unpack_from(move, off)
        return (prev[0], prev[1], prev[2] + dx, prev[3] + dz)
    off = find_record(turn_move, 5, me)
    if off >= 0:
        _, dx, dz, yw = _TURN_MOVE.unpack_from(turn_move, off)
        return (prev[0], yw, prev[2] + dx, prev[3] + dz)
    off = find_record(turn, 3, me)
    if off >= 0:
        return (prev[0], _TURN.unpack_from(turn, off)[1], prev[2], prev[3])
    if find_record(left, 2, me) >= 0:
        return None
    return prev


class Walker:
    """What a person does: walk to a waypoint, stand a while, pick another.

    :meth:`control` is called about every 100 ms with the avatar's position and returns
    the new intent ``(mx, mz, yaw)`` when it changed, else None.
    """

    __slots__ = (
        "rng",
        "waypoints",
        "target",
        "speed",
        "intent",
        "pause_until",
        "progress_at",
        "progress_dist",
        "steer_at",
    )

    def __init__(self, waypoints: Waypoints, rng: random.Random) -> None:
        self.rng = rng
        self.waypoints = waypoints
        self.target: tuple[float, float] | None = None
        self.speed = rng.uniform(*WALK_SPEED)
        self.intent = (0.0, 0.0, 0.0)
        self.pause_until = 0.0
        self.progress_at = 0.0
        self.progress_dist = math.inf
        self.steer_at = 0.0

    def _stop(self, now: float) -> tuple[float, float, float] | None:
        self.target = None
        self.pause_until = now + self.rng.uniform(*PAUSE)
        if self.intent[0] == 0.0 and self.intent[1] == 0.0:
            return None
        self.intent = (0.0, 0.0, self.intent[2])
        return self.intent

    def control(
        self, floor: int, x: float, z: float, now: float
    ) -> tuple[float, float, float] | None:
        if self.target is None:
            if now < self.pause_until:
                return None
            self.target = self.waypoints.pick(floor, self.rng)
            if self.target is None:  # nowhere to go on this floor: wander
                a = self.rng.uniform(-math.pi, math.pi)
                self.target = (x + 8 * math.sin(a), z + 8 * math.cos(a))
            self.progress_at, self.progress_dist = now, math.inf
        tx, tz = self.target
        dx, dz = tx - x, tz - z
        dist = math.hypot(dx, dz)
        if dist < ARRIVED:
            return self._stop(now)
        if dist < self.progress_dist - 0.3:
            self.progress_at, self.progress_dist = now, dist
        elif now - self.progress_at > STUCK_AFTER:  # a wall in the way: try elsewhere
            return self._stop(now)
        yaw = math.atan2(dx, dz)
        mx, mz, old_yaw = self.intent
        walking = mx != 0.0 or mz != 0.0
        off = abs((yaw - old_yaw + math.pi) % (2 * math.pi) - math.pi)
        if walking and off < TURN_RESEND and now < self.steer_at:
            return None
        # People do not walk dead straight: a small change of heading now and then.
        self.steer_at = now + self.rng.uniform(*STEER_EVERY)
        if dist > 2.0:
            yaw += self.rng.gauss(0.0, STEER_SPREAD)
        s = self.speed
        self.intent = (s * math.sin(yaw), s * math.cos(yaw), yaw)
        return self.intent


@dataclass(slots=True)
class Stats:
    """What one process's clients saw inside the measuring window."""

    clients: int = 0
    connected: int = 0
    welcomed: int = 0
    failed: int = 0  # clients that never got their WebSocket
    failed_by: dict[str, int] = field(default_factory=dict)  # why: exception → clients
    frames: int = 0
    bytes_down: int = 0
    snapshots: int = 0
    snapshot_bytes: int = 0  # incl. WebSocket header
    records: int = 0
    full_snapshots: int = 0
    inputs: int = 0
    acks: int = 0
    unknown_base: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, input sent → snapshot
    closes: dict[str, int] = field(default_factory=dict)  # close code → clients
    errors: dict[str, int] = field(default_factory=dict)  # exception → clients
    client_seconds: float = 0.0  # sum over clients of time connected inside the window
    cpu_seconds: float = 0.0  # this process's CPU time inside the window
    loop_lag: list[float] = field(default_factory=list)  # s a 50 ms timer fired late
    verified: int = 0  # snapshots decoded, checked and applied in full
    invalid: int = 0  # snapshots that failed that (a verifying client stops at the first)
    invalid_reasons: dict[str, int] = field(default_factory=dict)  # reason → first tick

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


# -- a snapshot read only as far as needed ------------------------------------------------------
# A SNAPSHOT frame is the MessagePack array [33, tick, base_tick, last_seq, server_time, full,
# move, turn_move, turn, left, info, crowd] (server/instance.py packs it with msgpack's Packer):
# the header's integers and the five binary sections are read in place, nothing else is decoded.

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


def _uint(data: bytes, pos: int) -> tuple[int, int]:
    """A MessagePack unsigned integer at ``pos``: (value, position after it)."""
    b = data[pos]
    if b < 0x80:
        return b, pos + 1
    if b == 0xCC:
        return data[pos + 1], pos + 2
    if b == 0xCD:
        return _U16.unpack_from(data, pos + 1)[0], pos + 3
    if b == 0xCE:
        return _U32.unpack_from(data, pos + 1)[0], pos + 5
    if b == 0xCF:
        return _U64.unpack_from(data, pos + 1)[0], pos + 9
    raise ValueError(f"snapshot: expected an unsigned integer at byte {pos}, found 0x{b:02x}")


def _bin(data: bytes, pos: int) -> tuple[int, int]:
    """A MessagePack bin at ``pos``: (start of its bytes, position after it)."""
    b = data[pos]
    if b == 0xC4:
        return pos + 2, pos + 2 + data[pos + 1]
    if b == 0xC5:
        return pos + 3, pos + 3 + _U16.unpack_from(data, pos + 1)[0]
    if b == 0xC6:
        return pos + 5, pos + 5 + _U32.unpack_from(data, pos + 1)[0]
    raise ValueError(f"snapshot: expected binary at byte {pos}, found 0x{b:02x}")


def snapshot_head(data: bytes) -> tuple[int, int, int, int] | None:
    """``(tick, base_tick, last_seq, sections_at)`` of a SNAPSHOT frame, None for any other
    message; ``sections_at`` is where its binary sections start (:func:`snapshot_sections`).

    Raises:
        ValueError: a SNAPSHOT whose header is not MessagePack as the server packs it.
    """
    if len(data) < 2 or data[0] != 0x9C or data[1] != _SNAPSHOT:
        return None
    tick, pos = _uint(data, 2)
    base_tick, pos = _uint(data, pos)
    last_seq, pos = _uint(data, pos)
    b = data[pos]  # server_time: a float 64 (or 32)
    if b == 0xCB:
        return tick, base_tick, last_seq, pos + 9
    if b == 0xCA:
        return tick, base_tick, last_seq, pos + 5
    raise ValueError(f"snapshot: expected a float at byte {pos}, found 0x{b:02x}")


def snapshot_sections(data: bytes, at: int) -> tuple[bytes, bytes, bytes, bytes, bytes]:
    """The ``full``, ``move``, ``turn_move``, ``turn`` and ``left`` sections of a SNAPSHOT frame
    whose sections start at ``at``."""
    a, e1 = _bin(data, at)
    b, e2 = _bin(data, e1)
    c, e3 = _bin(data, e2)
    d, e4 = _bin(data, e3)
    e, e5 = _bin(data, e4)
    return data[a:e1], data[b:e2], data[c:e3], data[d:e4], data[e:e5]


def snapshot_records(data: bytes, at: int) -> int:
    """How many avatar records the sections of a SNAPSHOT frame hold (as :func:`snapshot_sections`
    would give them, without copying them)."""
    a, e = _bin(data, at)
    n = (e - a) // 12
    a, e = _bin(data, e)
    n += (e - a) >> 2
    a, e = _bin(data, e)
    n += (e - a) // 5
    a, e = _bin(data, e)
    n += (e - a) // 3
    a, e = _bin(data, e)
    return n + ((e - a) >> 1)


# -- a minimal client WebSocket -----------------------------------------------------------------

_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_OP_CONT, _OP_TEXT, _OP_BINARY, _OP_CLOSE, _OP_PING, _OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
# the crowd's clock: asyncio's loop.time(); uvloop's loop.time() counts whole milliseconds, too
# coarse for a latency of a few tens of them
_clock = time.monotonic
CLOSE_TIMEOUT = 10.0  # seconds to wait for the server's Close after ours (aiohttp's default)
_getrandbits = random.getrandbits  # masks need not be secret here, only fresh


class HandshakeError(ConnectionError):
    """The server did not upgrade the connection to a WebSocket (an HTTP answer other than 101)."""


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client-to-server frame (FIN set), the mask fresh for each frame (RFC 6455 §5.3)."""
    n = len(payload)
    mask = _getrandbits(32).to_bytes(4, "little")
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n)) + mask
    elif n < 65536:
        head = bytes((0x80 | opcode, 0xFE)) + n.to_bytes(2, "big") + mask
    else:
        head = bytes((0x80 | opcode, 0xFF)) + n.to_bytes(8, "big") + mask
    if not n:
        return head
    keystream = int.from_bytes((mask * ((n >> 2) + 1))[:n], "little")
    return head + (int.from_bytes(payload, "little") ^ keystream).to_bytes(n, "little")


class WireSocket(asyncio.Protocol):
    """A client WebSocket on :class:`asyncio.Protocol`, as small as the crowd needs.

    It sends the HTTP upgrade, checks the 101 answer, then parses the server's frames in place
    from what each read brings (one clock reading per read, ``time.monotonic()`` whatever the
    loop: the moment the frames arrived) and calls :meth:`on_message` with each complete data
    message, as bytes. No queue, no future or task per message. Pings are answered at once; a
    Close is answered and ends the connection. :meth:`send` writes a masked binary frame
    straight to the transport.

    ``close_code`` follows aiohttp's client: the code of the server's Close (also when the
    server answers ours), 1006 when the connection ended without one or our Close was not
    answered within :data:`CLOSE_TIMEOUT`. :attr:`opened` resolves when the upgrade succeeded
    (or fails with the reason); :attr:`done` when the connection is gone.
    """

    def __init__(self, host: str, path: str) -> None:
        loop = asyncio.get_running_loop()
        self.loop = loop
        self.host, self.path = host, path
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = loop.create_future()
        self.done: asyncio.Future[None] = loop.create_future()
        self.close_code: int | None = None
        self.closed = False  # a Close was sent or received, or the connection is gone
        self.ended_at: float | None = None  # when it became closed (time.monotonic())
        self.error: Exception | None = None  # what a message handler raised, if it did
        self._key = base64.b64encode(os.urandom(16))
        self._buf = b""
        self._upgraded = False
        self._frag: list[bytes] | None = None
        self._close_timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        transport.write(
            b"GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
            % (self.path.encode(), self.host.encode(), self._key)
        )

    def data_received(self, data: bytes) -> None:
        t = _clock()
        if self._buf:
            data = self._buf + data
            self._buf = b""
        if not self._upgraded:
            data = self._handshake(data)
            if not data:
                return
        pos, size = 0, len(data)
        while size - pos >= 2:
            b0 = data[pos]
            n = data[pos + 1] & 0x7F  # a server's frames are not masked
            if n < 126:
                at = pos + 2
            elif n == 126:
                if size - pos < 4:
                    break
                n, at = (data[pos + 2] << 8) | data[pos + 3], pos + 4
            else:
                if size - pos < 10:
                    break
                n, at = _U64.unpack_from(data, pos + 2)[0], pos + 10
            end = at + n
            if end > size:
                break
            pos = end
            op = b0 & 0x0F
            try:
                if b0 & 0x80 and op in (_OP_BINARY, _OP_TEXT) and self._frag is None:
                    if not self.closed:
                        self.on_message(data[at:end], t)
                else:
                    self._control(op, bool(b0 & 0x80), data[at:end], t)
            except Exception as exc:  # a bug in a handler: noted, and this connection ends
                self.error = exc
                self.abort()
                return
            if self.transport is None:
                return
        if pos < size:
            self._buf = data[pos:]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self._close_timer is not None:
            self._close_timer.cancel()
        if self.close_code is None:
            self.close_code = 1006
        self._end()
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the upgrade"))
        if not self.done.done():
            self.done.set_result(None)

    # -- what a client does ------------------------------------------------------------------------

    def on_message(self, data: bytes, t: float) -> None:
        """A complete binary (or text) message from the server that arrived at ``t``."""

    def send(self, payload: bytes) -> None:
        """Send a binary message (dropped once the connection is closing)."""
        if not self.closed and self.transport is not None:
            self.transport.write(client_frame(_OP_BINARY, payload))

    def close(self, code: int = 1000) -> None:
        """Send a Close; the server's Close (or :data:`CLOSE_TIMEOUT`) ends the connection."""
        if self.closed or self.transport is None:
            return
        self.transport.write(client_frame(_OP_CLOSE, code.to_bytes(2, "big")))
        self._end()
        self._close_timer = self.loop.call_later(CLOSE_TIMEOUT, self.abort)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- inside ----------------------------------------------------------------------------------

    def _end(self) -> None:
        if not self.closed:
            self.closed = True
            self.ended_at = _clock()

    def _handshake(self, data: bytes) -> bytes:
        """Check the server's answer to the upgrade; what follows it (frames) is returned."""
        end = data.find(b"\r\n\r\n")
        if end < 0:
            if len(data) > 16384:
                self._fail(HandshakeError("no end to the HTTP answer"))
            else:
                self._buf = data
            return b""
        head = data[:end].decode("latin-1").split("\r\n")
        fields = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        accept = base64.b64encode(hashlib.sha1(self._key + _WS_GUID).digest()).decode()  # noqa: S324
        if not head[0].startswith("HTTP/1.1 101") or fields.get("sec-websocket-accept") != accept:
            self._fail(HandshakeError(f"not upgraded: {head[0]}"))
            return b""
        self._upgraded = True
        self.opened.set_result(None)
        return data[end + 4 :]

    def _fail(self, exc: Exception) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc)
        self.abort()

    def _control(self, op: int, fin: bool, payload: bytes, t: float) -> None:
        if op == _OP_PING:
            if not self.closed and self.transport is not None:
                self.transport.write(client_frame(_OP_PONG, payload))
        elif op == _OP_CLOSE:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            self.close_code = code
            if not self.closed and self.transport is not None:
                self.transport.write(client_frame(_OP_CLOSE, payload[:2]))
            self._end()
            if self.transport is not None:
                self.transport.close()
                self.transport = None  # nothing more is read
        elif op in (_OP_BINARY, _OP_TEXT):
            if not fin:  # the first fragment of a message
                self._frag = [payload]
        elif op == _OP_CONT and self._frag is not None:
            self._frag.append(payload)
            if fin:
                data, self._frag = b"".join(self._frag), None
                if not self.closed:
                    self.on_message(data, t)


# -- a walking client ---------------------------------------------------------------------------


class _Crowd(WireSocket):
    """One walking client of the crowd: its whole life is :meth:`on_message`, called per message.

    Per SNAPSHOT: the header (tick, base, last_seq) for the ack and the latency figure; its own
    record only at the walker's 10 Hz step (:meth:`OwnTrack.record`); a verifying client
    decodes, checks and applies every snapshot in full and compares its own record, as before.
    """

    def __init__(
        self,
        host: str,
        path: str,
        walker: Walker,
        rng: random.Random,
        window: tuple[float, float],
        stats: Stats,
        verify: bool,
        input_every: float,
    ) -> None:
        super().__init__(host, path)
        self.walker, self.rng, self.stats = walker, rng, stats
        self.t0, self.t1 = window
        # A verifying client decodes and checks every frame and rebuilds its whole view, as a
        # browser does: the server's stream must hold up, not only the bench's shortcut.
        self.view = SnapshotState() if verify else None
        self.verify = verify
        self.input_every = input_every
        self.own: OwnTrack | None = None
        self.joined: float | None = None
        self.seq = self.newest = 0
        self.last_ack = self.last_control = self.last_input = 0.0
        self.pending: deque[tuple[int, float]] = deque()

    def on_message(self, data: bytes, t: float) -> None:
        stats = self.stats
        inside = self.t0 <= t < self.t1
        if inside:
            if self.joined is None:
                self.joined = t
            stats.frames += 1
            stats.bytes_down += ws_frame_bytes(len(data))
        try:
            head = snapshot_head(data)
        except ValueError as exc:
            key = type(exc).__name__
            stats.errors[key] = stats.errors.get(key, 0) + 1
            self.close(1002)
            return
        own = self.own
        if head is None:
            if len(data) > 1 and 0x90 <= data[0] <= 0x9F and data[1] == _WELCOME:
                w = decode(data)
                assert isinstance(w, Welcome)
                self.own = OwnTrack(w.avatar_id)
                stats.welcomed += 1
            return
        if own is None:
            return
        tick, base_tick, last_seq, at = head
        own.note(tick, base_tick, data, at)
        if self.view is not None:
            self._verify(data, tick, own)
        self.newest = tick
        pending = self.pending
        while pending and pending[0][0] <= last_seq:
            _, sent_at = pending.popleft()
            if inside:
                stats.latencies.append(t - sent_at)
        if inside:
            size = ws_frame_bytes(len(data))
            stats.snapshots += 1
            stats.snapshot_bytes += size
            stats.records += snapshot_records(data, at)
            stats.full_snapshots += base_tick == 0
        intent = None
        if t - self.last_control >= CONTROL_EVERY:
            rec = own.record(tick)
            if rec is not None:
                self.last_control = t
                intent = self.walker.control(rec[0], rec[2] / 100.0, rec[3] / 100.0, t)
        if intent is None and t - self.last_input >= self.input_every - 0.02:
            intent = self.walker.intent  # the steady stream: the same intent again
        if intent is not None:
            self.last_input = self.last_ack = t
            self.seq += 1
            # a person presses keys at any moment, not just after a snapshot arrived: send at
            # a random phase within the tick (sending at once would make every input wait a
            # whole tick, since snapshots leave right after a tick)
            frame = _packb([_INPUT, self.seq, tick, intent[0], intent[1], intent[2]])
            self.loop.call_later(
                self.rng.uniform(0.0, INPUT_PHASE), self._send_input, frame, self.seq
            )
            stats.inputs += inside
        elif t - self.last_ack >= ACK_EVERY - 0.02:  # every other snapshot at 20 Hz
            self.send(_packb([_ACK, tick]))
            self.last_ack = t
            stats.acks += inside

    def _send_input(self, frame: bytes, seq: int) -> None:
        if not self.closed and self.transport is not None:
            self.send(frame)
            self.pending.append((seq, _clock()))

    def _verify(self, data: bytes, tick: int, own: OwnTrack) -> None:
        assert self.view is not None
        rec = own.record(tick)
        try:
            snap = decode(data)
            assert isinstance(snap, Snapshot)
            seen = self.view.apply(snap).get(own.avatar_id)
            if seen != rec:
                raise ProtocolError(
                    CloseCode.BAD_FRAME,
                    f"snapshot {tick}: own avatar {seen} in the view, {rec} tracked",
                )
            self.stats.verified += 1
        except ProtocolError as exc:
            self.stats.invalid += 1
            self.stats.invalid_reasons.setdefault(exc.reason, tick)
            self.view = None  # the chain of states is broken from here on


async def _one_client(
    url: str,
    index: int,
    waypoints: Waypoints,
    window: tuple[float, float],
    stop_at: float,
    stats: Stats,
    seed: int,
    verify: bool = False,
    input_rate: float = 0.0,
) -> None:
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    client = _Crowd(
        parts.netloc,
        parts.path or "/",
        Walker(waypoints, rng),
        rng,
        window,
        stats,
        verify,
        1.0 / input_rate if input_rate > 0 else math.inf,
    )
    try:
        # as long as aiohttp's client would wait: until the run ends (a server busy with a big
        # crowd may take seconds to answer an upgrade)
        async with asyncio.timeout(max(30.0, stop_at - _clock())):
            await loop.create_connection(lambda: client, host, port)
            await client.opened
    except (OSError, TimeoutError) as exc:
        client.opened.cancel()  # nobody waits for it any more
        client.abort()
        stats.failed += 1
        key = type(exc).__name__
        stats.failed_by[key] = stats.failed_by.get(key, 0) + 1
        return
    stats.connected += 1
    stopper = loop.call_later(max(0.0, stop_at - _clock()), client.close)
    try:
        client.send(Hello(PROTOCOL_VERSION, f"bench{index}", None, {}).encode())
        await client.done
    finally:
        stopper.cancel()
        client.abort()
        if client.own is not None:
            stats.unknown_base += client.own.unknown_base
        if client.error is not None:
            key = type(client.error).__name__
            stats.errors[key] = stats.errors.get(key, 0) + 1
        code = client.close_code
        if code is not None and code != 1000:
            key = str(code)
            stats.closes[key] = stats.closes.get(key, 0) + 1
        if client.joined is not None:
            left = client.ended_at if client.ended_at is not None else _clock()
            stats.client_seconds += min(left, window[1]) - client.joined


async def run_clients(
    url: str,
    world: dict[str, Any],
    count: int,
    first_index: int,
    ramp: float,
    measure_from: float,
    measure_for: float,
    seed: int,
    verify: int = 0,
    input_rate: float = 0.0,
) -> Stats:
    """Run ``count`` walking clients; measure from ``measure_from`` (wall clock) for ``measure_for`` s.

    Clients connect spread over ``ramp`` seconds, keep walking until the window ends, then
    close. Returns what they saw inside the window.
    """
    # the clients' clock (_clock), which is asyncio's loop.time() too (uvloop's counts whole ms)
    start = _clock() + (measure_from - time.time())
    window = (start, start + measure_for)
    stop_at = window[1] + 0.5
    waypoints = Waypoints(world)
    stats = Stats(clients=count)
    tasks = []
    for k in range(count):
        delay = ramp * k / max(1, count)
        client = functools.partial(
            _one_client,
            url,
            first_index + k,
            waypoints,
            window,
            stop_at,
            stats,
            seed * 100_003 + first_index + k,
            k < verify,
            input_rate,
        )
        tasks.append(asyncio.create_task(_delayed(delay, client, stats)))
    tasks.append(asyncio.create_task(cpu_in_window(window, stats)))
    await asyncio.wait(tasks, timeout=stop_at - _clock() + 10.0)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return stats


async def close_at(ws: aiohttp.ClientWebSocketResponse, when: float) -> None:
    await asyncio.sleep(max(0.0, when - asyncio.get_running_loop().time()))
    await ws.close()


async def cpu_in_window(window: tuple[float, float], stats: Any) -> None:
    """CPU time of this process and lateness of its event loop inside the window, into
    ``stats.cpu_seconds`` and ``stats.loop_lag`` (the crowd's :class:`Stats`, the voice relay's).
    ``window`` is in ``time.monotonic()`` (asyncio's ``loop.time()``).

    A late loop means the load generator itself delays what its clients see; the lag
    tells a reader how much of a latency figure is the bench's own.
    """
    await asyncio.sleep(max(0.0, window[0] - _clock()))
    c0 = time.process_time()
    while (t := _clock()) < window[1]:
        await asyncio.sleep(0.05)
        stats.loop_lag.append(max(0.0, _clock() - t - 0.05))
    stats.cpu_seconds = time.process_time() - c0


async def _delayed(
    delay: float, client: Callable[[], Coroutine[Any, Any, None]], stats: Stats
) -> None:
    await asyncio.sleep(delay)
    try:
        await client()
    except (aiohttp.ClientError, OSError) as exc:
        key = type(exc).__name__
        stats.errors[key] = stats.errors.get(key, 0) + 1


# -- watch-only viewers of a briefing (bench.briefing_fanout, bench.cluster) ---------------------

_HELLO, _BRIEFING_JOIN, _BRIEFING = (
    int(MsgType.HELLO),
    int(MsgType.BRIEFING_JOIN),
    int(MsgType.BRIEFING),
)
#: the staff actions timed in turn: each one changes the schedule, so each sends a BRIEFING
ACTION_PLAN: tuple[tuple[str, dict[str, Any] | None], ...] = (
    ("pause", None),
    ("resume", None),
    ("seek", {"segment": 1}),
    ("seek", {"segment": 0}),
)


async def start_briefing(
    http: aiohttp.ClientSession, base: str, briefing: str, headers: dict[str, str]
) -> None:
    """Start ``briefing`` through the staff API at ``base``, then give its first state half a
    second to reach the viewers before any action is timed."""
    async with http.post(f"{base}/staff/briefings/{briefing}/start", headers=headers) as r:
        if r.status != 200:
            raise RuntimeError(f"start: {r.status} {await r.text()}")
    await asyncio.sleep(0.5)


async def post_action(
    http: aiohttp.ClientSession,
    base: str,
    briefing: str,
    k: int,
    headers: dict[str, str],
    out: dict[str, Any],
    statuses: set[int],
) -> None:
    """POST the ``k``-th staff action of :data:`ACTION_PLAN`; its status goes into ``statuses``
    and the server's own encode + write time (``fanout_ms``) into ``out["server"]``."""
    action, body = ACTION_PLAN[k % len(ACTION_PLAN)]
    async with http.post(
        f"{base}/staff/briefings/{briefing}/{action}", json=body, headers=headers
    ) as r:
        statuses.add(r.status)
        if r.status == 200:
            with contextlib.suppress(ValueError, KeyError, aiohttp.ClientError):
                out["server"].append(float((await r.json())["fanout_ms"]))


def note_spread(out: dict[str, Any], prefix: str, lags_ms: list[float]) -> None:
    """Append the first, median and last of ``lags_ms`` to ``out[prefix + "first"]`` and so on
    (nothing when no viewer received anything)."""
    got = sorted(lags_ms)
    if got:
        out[prefix + "first"].append(got[0])
        out[prefix + "median"].append(got[len(got) // 2])
        out[prefix + "last"].append(got[-1])


def pct(xs: list[float], p: float) -> float | None:
    """The ``p``-th percentile of ``xs`` (nearest rank), rounded to 0.01; None when empty."""
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))], 2)


class Viewers:
    """N watch-only WebSocket viewers of briefing ``briefing``; while :attr:`armed`, each notes
    (perf_counter) when its next BRIEFING frame arrives, in :attr:`received`."""

    def __init__(self, url: str, briefing: str) -> None:
        self.url = url
        self.briefing = briefing
        self.http: aiohttp.ClientSession | None = None
        self.sockets: list[aiohttp.ClientWebSocketResponse] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.received: list[float] = []
        self.armed = False
        self.failed = 0

    async def connect(self, n: int, *, timeout: float = 600.0, at_once: int = 64) -> None:
        """Connect viewers up to ``n`` (``at_once`` at a time: below the listen backlog, no SYN
        retries). A viewer that is refused or not answered within ``timeout`` overall is counted
        in :attr:`failed`, not waited for."""
        if self.http is None:
            self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        sem = asyncio.Semaphore(at_once)
        end = time.monotonic() + timeout

        async def one(i: int) -> None:
            async with sem:
                left = end - time.monotonic()
                if left <= 0:
                    self.failed += 1
                    return
                try:
                    async with asyncio.timeout(min(left, 30.0)):
                        ws = await self._hello(i)
                except (aiohttp.ClientError, OSError, TimeoutError, RuntimeError):
                    self.failed += 1
                    return
                self.sockets.append(ws)

        start = len(self.sockets)
        await asyncio.gather(*(one(i) for i in range(start, n)))
        self.received = [0.0] * len(self.sockets)
        self.tasks += [
            asyncio.create_task(self._read(i, ws))
            for i, ws in enumerate(self.sockets)
            if i >= len(self.tasks)
        ]

    async def _hello(self, i: int) -> aiohttp.ClientWebSocketResponse:
        assert self.http is not None
        ws = await self.http.ws_connect(self.url, max_msg_size=2**20, autoping=True)
        opts = {"mode": "watch", "briefing": self.briefing}
        await ws.send_bytes(msgpack.packb([_HELLO, PROTOCOL_VERSION, f"v{i}", None, opts]))
        await ws.send_bytes(msgpack.packb([_BRIEFING_JOIN, self.briefing]))
        got = 0  # WELCOME, then the full BRIEFING
        while got < 2:
            msg = await ws.receive()
            if msg.type == aiohttp.WSMsgType.BINARY:
                got += 1
            elif msg.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.ERROR,
            ):
                raise RuntimeError(f"viewer {i} closed: {ws.close_code}")
        return ws

    async def _read(self, i: int, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if (
                msg.type == aiohttp.WSMsgType.BINARY
                and self.armed
                and not self.received[i]
                and msgpack.unpackb(msg.data)[0] == _BRIEFING
            ):
                self.received[i] = time.perf_counter()

    async def time_actions(
        self, base: str, token: str, actions: int, *, wait: float = 10.0, pause: float = 0.2
    ) -> dict[str, Any]:
        """Start the briefing at ``base`` (the staff API, bearer ``token``), then POST
        ``actions`` staff actions (:data:`ACTION_PLAN` in turn); for each, the lag from just
        before the POST to the first, the median and the last viewer receiving its BRIEFING (at
        most ``wait`` seconds: a viewer that has nothing by then is counted missed). Returns the
        lists (ms), the missed count, the HTTP statuses and the server's own ``fanout_ms``."""
        headers = {"Authorization": f"Bearer {token}"}
        out: dict[str, Any] = {"first": [], "median": [], "last": [], "server": []}
        out["missed"], statuses = 0, set()
        bid = self.briefing
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            await start_briefing(http, base, bid, headers)
            for k in range(actions):
                self.received = [0.0] * len(self.sockets)
                self.armed = True
                t0 = time.perf_counter()
                await post_action(http, base, bid, k, headers, out, statuses)
                deadline = time.perf_counter() + wait
                while not all(self.received) and time.perf_counter() < deadline:
                    await asyncio.sleep(0.002)
                self.armed = False
                got = [(t - t0) * 1000.0 for t in self.received if t]
                out["missed"] += len(self.sockets) - len(got)
                note_spread(out, "", got)
                await asyncio.sleep(pause)
        out["statuses"] = sorted(statuses)
        return out

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        for ws in self.sockets:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 1.0)
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.http is not None:
            await self.http.close()
