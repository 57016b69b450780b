"""The bench client's own logic, against the real codec: own-avatar tracking, walking, sums.

The bench follows only its own avatar through snapshot deltas; if that went wrong its
walkers would stand still and its figures would be wrong without anyone noticing.
"""

from __future__ import annotations

import math
import random

import numpy as np

from bench.client import OwnTrack, Walker, Waypoints, find_record, ws_frame_bytes
from bench.crowd import parse_metrics, summarise
from server.protocol.messages import Snapshot
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
