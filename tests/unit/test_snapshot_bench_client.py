"""The bench client's own logic, against the real codec: own-avatar tracking, walking, sums.

The bench follows only its own avatar through snapshot deltas; if that went wrong its
walkers would stand still and its figures would be wrong without anyone noticing.
"""

from __future__ import annotations

import asyncio
import math
import random

import numpy as np
import pytest
import uvloop
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from bench.client import (
    HandshakeError,
    OwnTrack,
    Walker,
    Waypoints,
    WireSocket,
    _packb,
    client_frame,
    find_record,
    snapshot_head,
    snapshot_records,
    snapshot_sections,
    ws_frame_bytes,
)
from bench.crowd import parse_metrics, summarise
from bench.kernel_viewers import parse_frames
from server.protocol.codes import MsgType
from server.protocol.messages import Ack, Input, Snapshot
from server.protocol.snapshot import HISTORY_TICKS, SnapshotState, encode_sections, quantize

WORLD = {
    "floors": [{"index": 0}, {"index": 1}],
    "kiosks": [{"floor": 0, "x": 10.0, "z": 5.0}],
    "counters": [{"floor": 0, "x": 2, "z": 3}],
    "tables": [{"floor": 1, "x": 51.0, "z": 7.0}],
    "spawns": [{"floor": 0, "x": 30.0, "z": 46.0}],
    "decor": [{"floor": 0, "x": 24.0, "z": 34.0, "solid": True}, {"floor": 1, "x": 1, "z": 1}],
    "zones": [{"floor": 1, "polygon": [[0, 0], [4, 0], [4, 2], [0, 2]]}],
    "stairs": [{"lower": 0, "upper": 1, "start": [14.0, 28.0], "end": [14.0, 40.0]}],
}


def test_waypoints_by_floor_skip_solid_decor() -> None:
    wp = Waypoints(WORLD)
    assert sorted(wp.by_floor[0]) == [(2.0, 3.0), (10.0, 5.0), (14.0, 28.0), (30.0, 46.0)]
    assert sorted(wp.by_floor[1]) == [(1.0, 1.0), (2.0, 1.0), (14.0, 40.0), (51.0, 7.0)]
    assert wp.pick(5, random.Random(0)) is None


def test_find_record_in_sorted_sections() -> None:
    section = b"".join(i.to_bytes(2, "little") + b"\x01\x02" for i in (3, 9, 300, 65535))
    assert [find_record(section, 4, i) for i in (3, 9, 300, 65535)] == [0, 4, 8, 12]
    assert [find_record(section, 4, i) for i in (0, 4, 301)] == [-1, -1, -1]
    assert find_record(b"", 12, 1) == -1


def test_own_track_follows_the_full_state_over_a_random_walk() -> None:
    rng = np.random.default_rng(5)
    pool = 40
    ids_all = np.arange(100, 100 + pool, dtype=np.uint16)
    pos = rng.uniform(0, 30, (pool, 2))
    yaw = rng.uniform(-math.pi, math.pi, pool)
    floor = np.zeros(pool, np.int64)
    trackers = {int(i): OwnTrack(int(i)) for i in ids_all[:8]}
    client = SnapshotState()
    sent: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for tick in range(1, 400):
        pos += rng.normal(0, 0.2, (pool, 2)) * (rng.random((pool, 1)) < 0.7)
        yaw += rng.normal(0, 0.3, pool) * (rng.random(pool) < 0.3)
        stairs = rng.random(pool) < 0.01
        floor[stairs] ^= 1
        present = rng.random(pool) < 0.9  # someone steps out of view now and then
        ids, q = ids_all[present], quantize(pos, floor, yaw)[present]
        base = tick - int(rng.integers(1, 6)) if tick > 6 and rng.random() < 0.9 else 0
        ids_b, q_b = sent[base] if base else (ids[:0], q[:0])
        full, move, tm, turn, left, entered = encode_sections(ids, q, ids_b, q_b)
        state = client.apply(Snapshot(tick, base, 0, 0.0, full, move, tm, turn, left, [], 0))
        sent[tick] = (ids, q)
        for aid, track in trackers.items():
            assert track.apply(tick, base, full, move, tm, turn, left) == state.get(aid)
    assert all(t.unknown_base == 0 for t in trackers.values())
    assert HISTORY_TICKS == 64


def test_own_track_counts_an_unknown_base() -> None:
    track = OwnTrack(1)
    assert track.apply(10, 7, b"", b"", b"", b"", b"") is None
    assert track.unknown_base == 1


def test_a_walker_reaches_waypoints_and_pauses_on_an_open_floor() -> None:
    """Simulate the server's kinematics (3 m/s × intent, 20 Hz) without walls."""
    wp = Waypoints(WORLD)
    walker = Walker(wp, random.Random(2))
    x, z, t = 30.0, 46.0, 0.0
    intent = (0.0, 0.0, 0.0)
    arrivals = inputs = 0
    for _ in range(20 * 120):
        t += 0.05
        x += intent[0] * 3.0 * 0.05
        z += intent[1] * 3.0 * 0.05
        new = walker.control(0, x, z, t)
        if new is not None:
            inputs += 1
            if new[:2] == (0.0, 0.0) and intent[:2] != (0.0, 0.0):
                arrivals += 1
                assert min(math.hypot(x - px, z - pz) for px, pz in wp.by_floor[0]) < 1.0
            intent = new
            assert math.hypot(new[0], new[1]) <= 1.0
    # legs of 20-45 m at about 1.4 m/s with pauses: a handful of arrivals in two minutes
    assert arrivals >= 3
    assert inputs < 20 * 120 / 10  # inputs on changes only, far below the 20 per second cap


def test_a_blocked_walker_gives_up_and_tries_elsewhere() -> None:
    walker = Walker(Waypoints(WORLD), random.Random(3))
    t = 0.0
    first = walker.control(0, 0.0, 0.0, t)
    assert first is not None
    target = walker.target
    while t < 4.0 and walker.target == target:
        t += 0.1
        walker.control(0, 0.0, 0.0, t)  # a wall: the avatar does not move
    assert walker.target != target


def test_frame_header_sizes() -> None:
    assert [ws_frame_bytes(n) for n in (0, 125, 126, 65535, 65536)] == [2, 127, 130, 65539, 65546]


def test_parse_metrics_and_summarise() -> None:
    text = (
        "# HELP emachi_tick_seconds x\n# TYPE emachi_tick_seconds summary\n"
        'emachi_tick_seconds{quantile="0.5"} 0.004\n'
        'emachi_tick_seconds{quantile="0.99"} 0.02\nemachi_tick_seconds_max 0.03\n'
    )
    m = parse_metrics(text)
    assert m['emachi_tick_seconds{quantile="0.99"}'] == 0.02
    assert m["emachi_tick_seconds_max"] == 0.03
    part = {
        "clients": 2,
        "connected": 2,
        "welcomed": 2,
        "failed": 0,
        "frames": 400,
        "bytes_down": 100_000,
        "snapshots": 400,
        "snapshot_bytes": 80_000,
        "records": 20_000,
        "full_snapshots": 2,
        "inputs": 10,
        "acks": 190,
        "unknown_base": 0,
        "latencies": [0.01, 0.03],
        "closes": {"4006": 1},
        "errors": {},
        "client_seconds": 20.0,
        "cpu_seconds": 1.0,
    }
    s = summarise([part, part], 10.0)
    assert s["clients"] == 4
    assert s["bytes_per_avatar_update"] == 4.0
    assert s["frames_per_client_per_s"] == 20.0
    assert s["kbit_per_client_per_s"] == 40.0
    assert s["closes"] == {"4006": 2}
    assert s["latency_ms"]["samples"] == 4


# -- the crowd's cheap path: snapshots read in place, own record on demand, a minimal socket ---


@pytest.mark.parametrize("tick", [5, 200, 70_000, 2**32 - 1])
def test_snapshot_head_and_sections_read_the_frame_as_the_codec_wrote_it(tick: int) -> None:
    full = bytes(range(24))
    move, turn_move, turn, left = b"\x01\x00\x02\x03", b"", b"\x05\x00\x07" * 90, b"\x09\x00"
    base = tick - 3 if tick > 3 else 0
    for frame in (
        Snapshot(
            tick, base, 130, 12.5, full, move, turn_move, turn, left, [[1, "a", 2]], 4
        ).encode(),
        # the server's frames are these bytes (tests/unit/test_snapshot_batch.py pins it)
        Snapshot(tick, base, 2**20, 1.0, full, move, turn_move, turn, left, [], 0).encode(),
    ):
        head = snapshot_head(frame)
        assert head is not None
        got_tick, got_base, last_seq, at = head
        assert (got_tick, got_base) == (tick, base)
        assert last_seq in (130, 2**20)
        assert snapshot_sections(frame, at) == (full, move, turn_move, turn, left)
        assert snapshot_records(frame, at) == 2 + 1 + 0 + 90 + 1
    assert snapshot_head(Ack(3).encode()) is None
    assert snapshot_head(b"") is None


def test_inputs_and_acks_are_the_bytes_the_messages_encode() -> None:
    assert (
        _packb([MsgType.INPUT.value, 7, 99, 0.5, -0.25, 1.0])
        == Input(7, 99, 0.5, -0.25, 1.0).encode()
    )
    assert _packb([MsgType.ACK.value, 2**31]) == Ack(2**31).encode()


def test_own_track_worked_out_on_demand_matches_the_full_state() -> None:
    """Frames only noted, the own record asked for now and then (as a walker at 10 Hz asks):
    each answer is the full client's, bases worked out through the chain as needed."""
    rng = np.random.default_rng(9)
    pool = 30
    ids_all = np.arange(7, 7 + pool, dtype=np.uint16)
    pos = rng.uniform(0, 30, (pool, 2))
    yaw = rng.uniform(-math.pi, math.pi, pool)
    floor = np.zeros(pool, np.int64)
    lazy = {int(i): OwnTrack(int(i)) for i in ids_all[:6]}
    eager = {int(i): OwnTrack(int(i)) for i in ids_all[:6]}
    client = SnapshotState()
    sent: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    asked = 0
    for tick in range(1, 500):
        pos += rng.normal(0, 0.3, (pool, 2)) * (rng.random((pool, 1)) < 0.7)
        yaw += rng.normal(0, 0.3, pool) * (rng.random(pool) < 0.3)
        floor[rng.random(pool) < 0.01] ^= 1
        present = rng.random(pool) < 0.9
        ids, q = ids_all[present], quantize(pos, floor, yaw)[present]
        base = tick - int(rng.integers(1, 8)) if tick > 8 and rng.random() < 0.95 else 0
        ids_b, q_b = sent[base] if base else (ids[:0], q[:0])
        full, move, tm, turn, left, _ = encode_sections(ids, q, ids_b, q_b)
        snap = Snapshot(tick, base, 0, 0.0, full, move, tm, turn, left, [], 0)
        state = client.apply(snap)
        frame = snap.encode()
        head = snapshot_head(frame)
        assert head is not None
        sent[tick] = (ids, q)
        for aid, track in lazy.items():
            track.note(tick, base, frame, head[3])
            assert eager[aid].apply(tick, base, full, move, tm, turn, left) == state.get(aid)
            if rng.random() < 0.3:
                asked += 1
                assert track.record(tick) == state.get(aid)
    assert asked > 500
    assert [t.unknown_base for t in lazy.values()] == [t.unknown_base for t in eager.values()]


def test_own_track_on_demand_with_a_base_it_never_had() -> None:
    track = OwnTrack(1)
    rec = (
        b"\x01\x00\x00\x05"
        + (100).to_bytes(4, "little", signed=True)
        + (200).to_bytes(4, "little", signed=True)
    )
    f1 = Snapshot(10, 0, 0, 0.0, rec).encode()
    f2 = Snapshot(12, 10, 0, 0.0, b"", b"\x01\x00\x03\xfd").encode()  # moved +3, -3 cm
    f3 = Snapshot(14, 11, 0, 0.0, b"", b"\x01\x00\x01\x01").encode()  # against an unknown base
    for tick, base, frame in ((10, 0, f1), (12, 10, f2), (14, 11, f3)):
        head = snapshot_head(frame)
        assert head is not None
        track.note(tick, base, frame, head[3])
    assert track.unknown_base == 1
    assert track.record(14) is None
    assert track.record(12) == (0, 5, 103, 197)
    assert track.record(10) == (0, 5, 100, 200)
    assert track.record(11) is None  # never seen


def test_client_frames_are_masked_and_parse_back() -> None:
    for payload in (b"", b"abc", bytes(range(256)) * 3, bytes(70_000)):
        wire = client_frame(0x2, payload)
        assert wire[1] & 0x80  # masked
        buf = bytearray(wire)
        assert parse_frames(buf) == [(0x2, True, payload)] and not buf


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_wire_socket_against_aiohttp(loop: str) -> None:
    """Upgrade, messages of every length class split across reads, a Ping answered with a Pong,
    the client's binary frames as the server reads them, and close codes both ways; on both
    loops (bench.crowd's workers run on uvloop)."""
    factory = uvloop.new_event_loop if loop == "uvloop" else None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(_wire_socket_against_aiohttp())


async def _wire_socket_against_aiohttp() -> None:
    got: list[bytes] = []
    pongs: list[bytes] = []
    sizes = [3, 125, 126, 5000, 65535, 65536, 200_000]

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False, max_msg_size=1 << 20)
        await ws.prepare(request)
        await ws.ping(b"hi")
        for n in sizes:
            await ws.send_bytes(bytes([n % 251]) * n)
        async for msg in ws:
            if msg.type is WSMsgType.PONG:
                pongs.append(msg.data)
            elif msg.type is WSMsgType.BINARY:
                got.append(msg.data)
                if msg.data == b"bye":
                    await ws.close(code=4006, message=b"too slow")
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        loop = asyncio.get_running_loop()

        class Client(WireSocket):
            def __init__(self) -> None:
                super().__init__(f"127.0.0.1:{server.port}", "/ws")
                self.messages: list[bytes] = []

            def on_message(self, data: bytes, t: float) -> None:
                self.messages.append(data)
                if len(self.messages) == len(sizes):
                    self.send(b"x" * 300)
                    self.send(b"bye")

        c = Client()
        await loop.create_connection(lambda: c, "127.0.0.1", server.port)
        await asyncio.wait_for(c.opened, 5)
        await asyncio.wait_for(c.done, 5)
        assert [len(m) for m in c.messages] == sizes
        assert all(m == bytes([n % 251]) * n for m, n in zip(c.messages, sizes, strict=True))
        assert got == [b"x" * 300, b"bye"] and pongs == [b"hi"]
        assert c.close_code == 4006

        c2 = WireSocket(f"127.0.0.1:{server.port}", "/ws")
        await loop.create_connection(lambda: c2, "127.0.0.1", server.port)
        await asyncio.wait_for(c2.opened, 5)
        c2.close()
        await asyncio.wait_for(c2.done, 5)
        assert c2.close_code == 1000

        c3 = WireSocket(f"127.0.0.1:{server.port}", "/nowhere")
        await loop.create_connection(lambda: c3, "127.0.0.1", server.port)
        with pytest.raises(HandshakeError):
            await asyncio.wait_for(c3.opened, 5)
    finally:
        await server.close()
