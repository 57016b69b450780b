"""The real-time loop as clients see it: a real server on a free port, real WebSocket clients."""

from __future__ import annotations

import asyncio
import contextlib
import math

from websockets.exceptions import WebSocketException

from server.instance import HISTORY, Instance
from server.keys import HALL, HOOKS
from server.protocol.codes import CloseCode
from server.protocol.messages import Chat, ChatMsg, Error, Ping, Pong
from tests.integration.client import WAIT, Client, raw_msgpack
from tests.integration.conftest import RunningServer, StartServer
from tests.tools import until


def _dist(a: tuple[int, float, float] | None, b: tuple[int, float, float] | None) -> float:
    assert a is not None and b is not None
    return math.hypot(a[1] - b[1], a[2] - b[2])


def _stopped(c: Client) -> bool:
    """The server has applied ``c``'s last input (a stop), as its newest snapshot says."""
    return c.last_snapshot is not None and c.last_snapshot.last_seq >= c.seq


async def test_two_clients_see_each_other_move(server: RunningServer) -> None:
    async with (
        Client(server.ws, "さくら", keep_views=True) as a,
        Client(server.ws, "Ken", keep_views=True) as b,
    ):
        await a.until(lambda: b.avatar_id in a.view)
        await b.until(lambda: a.avatar_id in b.view)
        assert a.names[b.avatar_id] == "Ken"
        assert b.names[a.avatar_id] == "さくら"
        start = b.position(a.avatar_id)
        await a.move(1.0, 0.0)
        await b.until(lambda: _dist(b.position(a.avatar_id), start) > 1.0)
        await a.move(0.0, 0.0)
        # once a stops, what b sees of a is what a is told about itself, to the centimetre
        await a.until(lambda: _stopped(a) and b.position(a.avatar_id) == a.position())
        # and so it was at every tick both were sent, walking included
        both = [t for t in a.views_at if t in b.views_at and a.avatar_id in b.views_at[t]]
        assert len(both) >= 5
        for t in both:
            assert b.views_at[t][a.avatar_id] == a.views_at[t][a.avatar_id], t


async def test_protocol_version_it_does_not_speak_is_refused(server: RunningServer) -> None:
    from websockets.asyncio.client import connect

    async with connect(server.ws) as ws:
        await ws.send(raw_msgpack(1, 99, "old client", None, {}))
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.recv(), 40 * WAIT)
        assert ws.close_code == CloseCode.UNSUPPORTED_VERSION
        assert "speaks protocol 1" in (ws.close_reason or "")


async def test_bad_frames_close_only_that_client(server: RunningServer) -> None:
    """Not MessagePack, over 64 KiB, an unknown type, a flood: each closes its sender only."""
    cases = [
        (b"\xc1\xc1 not msgpack", CloseCode.BAD_FRAME),
        (b"\x00" * (64 * 1024 + 1), CloseCode.FRAME_TOO_BIG),
        (raw_msgpack(31, "x"), CloseCode.UNKNOWN_TYPE),
    ]
    async with Client(server.ws, "bystander") as bystander:
        for payload, code in cases:
            async with Client(server.ws, "mallory") as bad:
                await bad.send_raw(payload)
                got, reason = await bad.closed()
                assert got == code, (payload[:10], got, reason)
                assert reason  # a reason a person can read
        async with Client(server.ws, "flooder") as flooder:
            for _ in range(400):
                await flooder.send(Ping(client_time=1.0))
            got, reason = await flooder.closed()
            assert got == CloseCode.FLOOD, (got, reason)
        # the bystander is still connected and still receiving snapshots
        before = bystander.snapshots
        await bystander.until(lambda: bystander.snapshots > before + 5)
        assert bystander.close_code is None
        await bystander.send(Ping(client_time=123.0))
        await bystander.until(lambda: bystander.messages(Pong))
        assert bystander.messages(Pong)[0].client_time == 123.0


async def test_client_501_lands_in_instance_2(start_server: StartServer) -> None:
    # capacity is what is tested, not the tick: a slow tick keeps 500 test clients cheap
    # 501 clients from one address: the per-address limit is off here (tests/integration/test_bounds.py)
    srv = await start_server(tick_rate=2, snapshot_rate=2, max_per_address=0)
    assert srv.config.capacity == 500
    clients = [Client(srv.ws, f"p{i}") for i in range(500)]
    try:
        for k in range(0, 500, 50):
            await asyncio.gather(*(c.connect() for c in clients[k : k + 50]))
        instances = {c.welcome.instance for c in clients if c.welcome}
        assert len(instances) == 1
        last = Client(srv.ws, "p500")
        clients.append(last)
        await last.connect()
        assert last.welcome is not None
        assert last.welcome.instance not in instances
        assert last.welcome.instance.endswith("#2")
    finally:
        await asyncio.gather(*(c.close() for c in clients))


async def test_resume_after_cut_connection_gets_same_avatar(server: RunningServer) -> None:
    async with Client(server.ws, "watcher") as watcher, Client(server.ws, "ゆうた") as a:
        await watcher.until(lambda: a.avatar_id in watcher.view)
        token, avatar = a.resume, a.avatar_id
        assert a.ws is not None
        session = server.app[HALL].instances[0].sessions[avatar]
        a.ws.transport.abort()  # the network drops: no close handshake
        await until(lambda: not session.connected)  # the server noticed: the avatar waits
        async with Client(server.ws, "ゆうた", resume=token) as again:
            assert again.avatar_id == avatar
            assert again.welcome is not None and a.welcome is not None
            assert again.welcome.instance == a.welcome.instance
            await again.until(lambda: again.last_snapshot and avatar in again.view)
            assert again.last_snapshot is not None
            back = again.last_snapshot.tick
            await watcher.until(lambda: watcher.last_snapshot.tick > back)
            # no duplicate: the watcher sees exactly one ゆうた
            named = [i for i in watcher.view if watcher.names.get(i) == "ゆうた"]
            assert named == [avatar]


async def test_chat_reaches_the_instance_and_is_rate_limited(server: RunningServer) -> None:
    async with Client(server.ws, "a") as a, Client(server.ws, "b") as b:
        await a.send(Chat(scope=0, text="こんにちは"))
        await b.until(lambda: b.messages(ChatMsg))
        msg = b.messages(ChatMsg)[0]
        assert (msg.name, msg.text, msg.from_id) == ("a", "こんにちは", a.avatar_id)
        for i in range(10):
            await a.send(Chat(scope=0, text=f"spam {i}"))
        await a.until(lambda: a.messages(Error))
        assert a.messages(Error)[0].code == "chat_rate"
        assert a.close_code is None


async def test_full_snapshot_then_deltas_are_small(start_server: StartServer) -> None:
    srv = await start_server()
    async with Client(srv.ws, "a") as a, Client(srv.ws, "b") as b:
        await a.move(0.0, 1.0)
        await b.until(lambda: b.snapshots > 40)
        snap = b.last_snapshot
        assert snap is not None and snap.base_tick > 0  # deltas against what b acknowledged
        # a walks straight: one 4-byte move record, nothing else
        assert len(snap.move) + len(snap.turn_move) in (4, 5, 0)
        assert snap.full == b""


def _crosses(a: tuple[float, float], b: tuple[float, float], segs: object) -> bool:
    """Does the straight move a → b properly cross any wall segment? (An independent check.)"""
    import numpy as np

    s = np.asarray(segs, dtype=np.float64)
    if len(s) == 0 or a == b:
        return False
    p, q = np.array(a), np.array(b)

    def orient(p1: np.ndarray, p2: np.ndarray, p3: np.ndarray) -> np.ndarray:
        return (p2[..., 0] - p1[..., 0]) * (p3[..., 1] - p1[..., 1]) - (p2[..., 1] - p1[..., 1]) * (
            p3[..., 0] - p1[..., 0]
        )

    s1, s2 = s[:, :2], s[:, 2:]
    o1 = orient(p, q, s1)
    o2 = orient(p, q, s2)
    o3 = orient(s1, s2, p)
    o4 = orient(s1, s2, q)
    return bool(np.any((o1 * o2 < 0) & (o3 * o4 < 0)))


async def test_no_input_takes_an_avatar_through_a_wall(server: RunningServer) -> None:
    """Push at the nearest walls from every angle, fast and jittery: never through one."""
    import random

    import numpy as np

    from server.keys import WORLD
    from world.collision import build_segments

    world = server.app[WORLD]
    walls = [fs.walls for fs in build_segments(world)]
    rng = random.Random(7)
    async with Client(server.ws, "壁テスト") as a:
        await a.until(lambda: a.position() is not None)
        # (tick, floor, x, z): only positions of consecutive ticks are compared, since two samples
        # further apart (a loaded machine) may join by a straight line what went round a corner
        track: list[tuple[int, int, float, float]] = []
        loop = asyncio.get_running_loop()
        end = loop.time() + 160 * WAIT
        while loop.time() < end:
            pos = a.position()
            assert pos is not None
            track.append((a.received[-1][0], *pos))
            floor, x, z = pos
            segs = walls[floor]
            # aim at the nearest point of the nearest wall, with a random twist
            mid = (segs[:, :2] + segs[:, 2:]) / 2
            k = int(np.argmin(((mid - (x, z)) ** 2).sum(axis=1)))
            ang = math.atan2(mid[k, 0] - x, mid[k, 1] - z) + rng.uniform(-1.2, 1.2)
            await a.move(math.sin(ang) * 5.0, math.cos(ang) * 5.0)  # over-long intent: clipped
            await asyncio.sleep(WAIT * rng.choice((0.2, 1, 3)))
        await a.move(0.0, 0.0)
    moved = sum(
        math.hypot(b[2] - c[2], b[3] - c[3]) for b, c in zip(track, track[1:], strict=False)
    )
    assert moved > 5.0, "the avatar should have walked and pushed at walls"
    pairs = [
        (prev, cur)
        for prev, cur in zip(track, track[1:], strict=False)
        if cur[0] - prev[0] == 1 and prev[1] == cur[1]
    ]
    assert len(pairs) > 20, "too few consecutive ticks seen to check"
    for prev, cur in pairs:
        assert not _crosses(prev[2:], cur[2:], walls[cur[1]]), (prev, cur)


async def test_sigterm_drains_clients_then_exits(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """SIGTERM: clients get a draining notice and close code 4008, then the process exits 0."""
    import signal
    import socket
    import sys

    from server.protocol.messages import Notice

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path),
        "--staff-token",
        "t",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 400 * WAIT)
        assert b"serving" in line, line
        c = Client(f"ws://127.0.0.1:{port}/ws", "残る人")

        async def connected() -> bool:
            try:
                await c.connect()
            except (OSError, WebSocketException):  # not accepting yet (refused, closed at start-up)
                return False
            return True

        await until(connected)
        await c.until(lambda: c.snapshots > 2)
        proc.send_signal(signal.SIGTERM)
        code, reason = await c.closed(timeout=100 * WAIT)
        assert code == CloseCode.DRAINING
        assert "reconnect" in reason
        assert any(n.kind == "draining" for n in c.messages(Notice))
        assert await asyncio.wait_for(proc.wait(), 200 * WAIT) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def _masked_binary_frame(payload: bytes) -> bytes:
    import os
    import struct

    mask = os.urandom(4)
    n = len(payload)
    head = bytes((0x82, 0x80 | n)) if n < 126 else struct.pack("!BBH", 0x82, 0x80 | 126, n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def test_a_reader_that_stops_is_cut_off_and_nobody_else_waits(
    start_server: StartServer,
) -> None:
    """A client that never reads again is closed as too slow; a neighbour never misses a beat."""
    import base64
    import os
    import socket

    from server.keys import METRICS
    from server.protocol.messages import Hello

    srv = await start_server(send_buffer_limit=2048, socket_send_buffer=4096, slow_limit=1.0)
    crowd = [Client(srv.ws, f"bot{i}") for i in range(30)]
    for c in crowd:
        await c.connect()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", srv.port))
    key = base64.b64encode(os.urandom(16)).decode()
    await loop.sock_sendall(
        sock,
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode(),
    )
    head = await loop.sock_recv(sock, 1024)
    assert head.startswith(b"HTTP/1.1 101"), head
    await loop.sock_sendall(
        sock, _masked_binary_frame(Hello(version=1, name="slow", resume=None, opts={}).encode())
    )
    # ...and never read again. Meanwhile a neighbour counts its snapshots.
    neighbour = crowd[0]
    metrics = srv.app[METRICS]
    try:
        start = neighbour.snapshots
        t0 = loop.time()
        await neighbour.until(
            lambda: metrics.closes.get(int(CloseCode.TOO_SLOW), 0) >= 1, timeout=400 * WAIT
        )
        elapsed = loop.time() - t0
        got = neighbour.snapshots - start
        # 20 snapshots a second while the slow one was being given up on; allow scheduling slack
        assert got >= 0.75 * 20 * elapsed, (got, elapsed)
        assert neighbour.close_code is None
    finally:
        sock.close()
        await asyncio.gather(*(c.close() for c in crowd))


async def test_a_lower_snapshot_rate_spreads_viewers_over_the_ticks_and_sends_deltas(
    start_server: StartServer,
) -> None:
    """At 10 snapshots a second on a 20 Hz tick, each viewer gets every other tick's state, and
    viewers alternate ticks; every snapshot after the first is a delta against one the viewer
    acknowledged, and each decodes to the server's own state at its tick, walking or not."""
    srv = await start_server(tick_rate=20, snapshot_rate=10)
    truth: dict[int, dict[int, tuple[int, ...]]] = {}  # tick -> avatar -> what the server encoded

    def keep(inst: Instance) -> None:
        q = inst.history[inst.tick % HISTORY]
        truth[inst.tick] = {slot: tuple(int(v) for v in q[slot]) for slot in inst.sessions}

    srv.app[HOOKS].on_tick(keep)
    async with (
        Client(srv.ws, "a", keep_views=True) as a,
        Client(srv.ws, "b", keep_views=True) as b,
    ):
        await b.until(lambda: a.avatar_id in b.view)
        start = b.position(a.avatar_id)
        await a.move(1.0, 0.0)
        walked = a.snapshots, b.snapshots
        await a.until(lambda: a.snapshots > walked[0] + 12 and b.snapshots > walked[1] + 12)
        await a.move(0.0, 0.0)
        await a.until(lambda: _stopped(a) and b.position(a.avatar_id) == a.position())
        assert _dist(b.position(a.avatar_id), start) > 0.5
        assert a.avatar_id != b.avatar_id
        for c in (a, b):
            ticks = [t for t, _ in c.received]
            steps = {t2 - t1 for t1, t2 in zip(ticks, ticks[1:], strict=False)}
            assert steps and steps <= {2, 4}, (
                c.name,
                ticks,
            )  # every other tick (one skipped at most)
            # deltas at this rate: each against a tick this viewer acknowledged
            assert c.received[0][1] == 0, "the first snapshot is a full one"
            acked = set(c.acked)
            for tick, base in c.received[1:]:
                assert 0 < base < tick and base in acked, (c.name, tick, base, sorted(acked))
            # and what the viewer decoded is what the server had, at every tick it was sent
            for tick, view in c.views_at.items():
                assert view, tick
                assert view == {i: truth[tick][i] for i in view}, (c.name, tick)
        # the two ids differ by one, so they are due on alternate ticks
        assert {t % 2 for t, _ in a.received} != {t % 2 for t, _ in b.received}
