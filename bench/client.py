"""One process of the crowd: many asyncio WebSocket clients that walk the world like people.

Each client says hello, then walks: it picks a waypoint on its floor (kiosks, counters,
tables, stairs, spawns, zone centres from ``GET /api/world``), walks there sending an
input only when its intent changes (and a small course correction while walking), pauses,
and picks another. It acknowledges the newest snapshot about every 100 ms. With an
``input_rate`` (``bench.crowd --input-rate 10``) it sends an input that often whatever the intent
does, as a browser that sends its stick or keys on every frame would; those inputs carry the acks.

A client tracks only its own avatar (:class:`OwnTrack`), found in each snapshot's sections
by binary search, so that a thousand clients fit in a process or two; it measures what a
person's browser would see: input-to-snapshot latency, frames and bytes down, records per
snapshot. The bench never asserts anything; :mod:`bench.crowd` aggregates and reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import random
import struct
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import msgpack

from server.protocol.codes import PROTOCOL_VERSION, CloseCode, MsgType
from server.protocol.messages import Ack, Hello, Input, ProtocolError, Snapshot, Welcome, decode
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


class OwnTrack:
    """The client's own avatar through the snapshots, without rebuilding the whole view.

    Keeps its own record at each of the last :data:`HISTORY` ticks, as a full client keeps
    whole states, so that any acknowledged base resolves.
    """

    __slots__ = ("avatar_id", "_ticks", "_recs", "unknown_base")

    def __init__(self, avatar_id: int) -> None:
        self.avatar_id = avatar_id
        self._ticks = [-1] * HISTORY
        self._recs: list[Record | None] = [None] * HISTORY
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
        me = self.avatar_id
        prev: Record | None = None
        if base_tick:
            slot = base_tick % HISTORY
            if self._ticks[slot] != base_tick:
                self.unknown_base += 1
            else:
                prev = self._recs[slot]
        rec: Record | None = prev
        off = find_record(full, 12, me)
        if off >= 0:
            _, fl, yw, x, z = _FULL.unpack_from(full, off)
            rec = (fl, yw, x, z)
        elif prev is not None:
            off = find_record(move, 4, me)
            if off >= 0:
                _, dx, dz = _MOVE.unpack_from(move, off)
                rec = (prev[0], prev[1], prev[2] + dx, prev[3] + dz)
            else:
                off = find_record(turn_move, 5, me)
                if off >= 0:
                    _, dx, dz, yw = _TURN_MOVE.unpack_from(turn_move, off)
                    rec = (prev[0], yw, prev[2] + dx, prev[3] + dz)
                else:
                    off = find_record(turn, 3, me)
                    if off >= 0:
                        rec = (prev[0], _TURN.unpack_from(turn, off)[1], prev[2], prev[3])
                    elif find_record(left, 2, me) >= 0:
                        rec = None
        slot = tick % HISTORY
        self._ticks[slot] = tick
        self._recs[slot] = rec
        return rec


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
    failed: int = 0
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


async def _send_later(
    ws: aiohttp.ClientWebSocketResponse,
    delay: float,
    frame: bytes,
    seq: int,
    pending: deque[tuple[int, float]],
    now: Callable[[], float],
) -> None:
    await asyncio.sleep(delay)
    if not ws.closed:
        await ws.send_bytes(frame)
        pending.append((seq, now()))


async def _one_client(
    http: aiohttp.ClientSession,
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
    input_every = 1.0 / input_rate if input_rate > 0 else math.inf
    # A verifying client decodes and checks every frame and rebuilds its whole view, as a
    # browser does: the server's stream must hold up, not only the bench's shortcut.
    view = SnapshotState() if verify else None
    t0, t1 = window
    loop = asyncio.get_running_loop()
    now = loop.time
    try:
        ws = await http.ws_connect(url, autoping=True, compress=0, max_msg_size=1 << 20)
    except (aiohttp.ClientError, OSError):
        stats.failed += 1
        return
    stats.connected += 1
    joined = left = None
    # Close at the end from another task: a receive timeout would abort the socket (1006).
    stopper = asyncio.create_task(close_at(ws, stop_at))
    try:
        await ws.send_bytes(Hello(PROTOCOL_VERSION, f"bench{index}", None, {}).encode())
        welcome: Welcome | None = None
        walker = Walker(waypoints, rng)
        own: OwnTrack | None = None
        seq = 0
        newest = 0
        last_ack = last_control = last_input = 0.0
        pending: deque[tuple[int, float]] = deque()
        sends: set[asyncio.Task[None]] = set()
        unpackb = msgpack.unpackb
        while True:
            msg = await ws.receive()
            if msg.type != aiohttp.WSMsgType.BINARY:
                break  # closed, closing or an error: the loop ends, close code below
            data: bytes = msg.data
            t = now()
            inside = t0 <= t < t1
            if inside:
                if joined is None:
                    joined = t
                stats.frames += 1
                stats.bytes_down += ws_frame_bytes(len(data))
            items = unpackb(data)
            if items[0] == _SNAPSHOT and welcome is not None and own is not None:
                tick, base_tick, last_seq = items[1], items[2], items[3]
                full, move, turn_move, turn, gone = items[5:10]
                rec = own.apply(tick, base_tick, full, move, turn_move, turn, gone)
                if view is not None:
                    try:
                        snap = decode(data)
                        assert isinstance(snap, Snapshot)
                        seen = view.apply(snap).get(own.avatar_id)
                        if seen != rec:
                            raise ProtocolError(
                                CloseCode.BAD_FRAME,
                                f"snapshot {tick}: own avatar {seen} in the view, {rec} tracked",
                            )
                        stats.verified += 1
                    except ProtocolError as exc:
                        stats.invalid += 1
                        stats.invalid_reasons.setdefault(exc.reason, tick)
                        view = None  # the chain of states is broken from here on
                newest = tick
                while pending and pending[0][0] <= last_seq:
                    _, sent_at = pending.popleft()
                    if inside:
                        stats.latencies.append(t - sent_at)
                if inside:
                    stats.snapshots += 1
                    stats.snapshot_bytes += ws_frame_bytes(len(data))
                    stats.records += (
                        len(full) // 12
                        + len(move) // 4
                        + len(turn_move) // 5
                        + len(turn) // 3
                        + len(gone) // 2
                    )
                    stats.full_snapshots += base_tick == 0
                intent = None
                if rec is not None and t - last_control >= CONTROL_EVERY:
                    last_control = t
                    intent = walker.control(rec[0], rec[2] / 100.0, rec[3] / 100.0, t)
                if ws.closed:
                    break
                if intent is None and t - last_input >= input_every - 0.02:
                    intent = walker.intent  # the steady stream: the same intent again
                if intent is not None:
                    last_input = t
                    seq += 1
                    # a person presses keys at any moment, not just after a snapshot arrived:
                    # send at a random phase within the tick (sending at once would make every
                    # input wait a whole tick, since snapshots leave right after a tick)
                    frame = Input(seq, newest, *intent).encode()
                    sends.add(asyncio.create_task(
                        _send_later(ws, rng.uniform(0.0, INPUT_PHASE), frame, seq, pending, now)
                    ))  # fmt: skip
                    sends = {task for task in sends if not task.done()}
                    last_ack = t
                    stats.inputs += inside
                elif t - last_ack >= ACK_EVERY - 0.02:  # every other snapshot at 20 Hz
                    await ws.send_bytes(Ack(newest).encode())
                    last_ack = t
                    stats.acks += inside
            elif items[0] == _WELCOME:
                w = decode(data)
                assert isinstance(w, Welcome)
                welcome = w
                own = OwnTrack(w.avatar_id)
                stats.welcomed += 1
        left = now()
        if own is not None:
            stats.unknown_base += own.unknown_base
    finally:
        stopper.cancel()
        if not ws.closed:
            await ws.close()
        if ws.close_code is not None and ws.close_code != 1000:
            key = str(ws.close_code)
            stats.closes[key] = stats.closes.get(key, 0) + 1
        if joined is not None:
            stats.client_seconds += min(left or now(), t1) - joined


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
    loop = asyncio.get_running_loop()
    start = loop.time() + (measure_from - time.time())
    window = (start, start + measure_for)
    stop_at = window[1] + 0.5
    waypoints = Waypoints(world)
    stats = Stats(clients=count)
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http:
        tasks = []
        for k in range(count):
            delay = ramp * k / max(1, count)
            client = functools.partial(
                _one_client,
                http,
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
        await asyncio.wait(tasks, timeout=stop_at - loop.time() + 10.0)
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

    A late loop means the load generator itself delays what its clients see; the lag
    tells a reader how much of a latency figure is the bench's own.
    """
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, window[0] - loop.time()))
    c0 = time.process_time()
    while (t := loop.time()) < window[1]:
        await asyncio.sleep(0.05)
        stats.loop_lag.append(max(0.0, loop.time() - t - 0.05))
    stats.cpu_seconds = time.process_time() - c0


async def _delayed(
    delay: float, client: Callable[[], Coroutine[Any, Any, None]], stats: Stats
) -> None:
    await asyncio.sleep(delay)
    try:
        await client()
    except (aiohttp.ClientError, ConnectionError) as exc:
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
