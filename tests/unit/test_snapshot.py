"""Snapshot delta codec: expected bytes of each section, quantisation, and a random walk.

The property test plays a server and a client: whatever base the client acknowledged,
the client's rebuilt view equals the quantised truth.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from server.protocol.codes import CloseCode
from server.protocol.messages import ProtocolError, Snapshot, decode
from server.protocol.snapshot import (
    FLOOR,
    HISTORY_TICKS,
    YAW,
    SnapshotState,
    encode_sections,
    quantize,
)


def view(rows: dict[int, tuple[int, int, int, int]]) -> tuple[np.ndarray, np.ndarray]:
    ids = np.array(sorted(rows), np.uint16)
    q = np.array([rows[i] for i in sorted(rows)], np.int32).reshape(-1, 4)
    return ids, q


BASE = {
    1: (0, 0, 100, 200),
    2: (0, 10, 0, 0),
    3: (1, 0, 0, 0),
    5: (0, 0, 0, 0),
    6: (0, 0, -50, -50),
    7: (0, 3, 7, 7),
    8: (0, 0, 0, 0),
}
NOW = {
    1: (0, 0, 101, 199),  # moved 1 cm east, 1 cm north
    2: (0, 20, 2, 3),  # turned and moved
    3: (2, 0, 0, 0),  # changed floor: full
    4: (0, 255, -1, 300),  # new in view: full, entered
    # 5 left the view
    6: (0, 128, -50, -50),  # turned on the spot
    7: (0, 3, 7, 7),  # unchanged: not sent
    8: (0, 0, 200, -128),  # moved 2 m east in one step (beyond int8): full
}
EXPECTED = (
    # full: id u16, floor u8, yaw u8, x i32, z i32
    b"\x03\x00\x02\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
    b"\x04\x00\x00\xff" + b"\xff\xff\xff\xff" + b"\x2c\x01\x00\x00"
    b"\x08\x00\x00\x00" + b"\xc8\x00\x00\x00" + b"\x80\xff\xff\xff",
    # move: id u16, dx i8, dz i8
    b"\x01\x00\x01\xff",
    # turn_move: id u16, dx i8, dz i8, yaw u8
    b"\x02\x00\x02\x03\x14",
    # turn: id u16, yaw u8
    b"\x06\x00\x80",
    # left: id u16
    b"\x05\x00",
)


def test_sections_bytes() -> None:
    *sections, entered = encode_sections(*view(NOW), *view(BASE))
    assert tuple(sections) == EXPECTED
    assert entered.tolist() == [4]


def test_without_a_base_everything_is_full_and_entered() -> None:
    full, move, turn_move, turn, left, entered = encode_sections(
        *view({9: (3, 1, -2, 2)}), *view({})
    )
    assert full == b"\x09\x00\x03\x01\xfe\xff\xff\xff\x02\x00\x00\x00"
    assert (move, turn_move, turn, left) == (b"", b"", b"", b"")
    assert entered.tolist() == [9]


def test_an_empty_view_lists_everyone_as_left() -> None:
    sections = encode_sections(*view({}), *view({1: (0, 0, 0, 0), 300: (0, 0, 0, 0)}))
    assert sections[:5] == (b"", b"", b"", b"", b"\x01\x00\x2c\x01")
    assert len(sections[5]) == 0


def test_an_unchanged_view_sends_nothing() -> None:
    sections = encode_sections(*view(BASE), *view(BASE))
    assert sections[:5] == (b"",) * 5
    assert len(sections[5]) == 0


@pytest.mark.parametrize(
    ("dx", "section"), [(127, "move"), (-128, "move"), (128, "full"), (-129, "full")]
)
def test_int8_delta_bounds(dx: int, section: str) -> None:
    full, move, *_ = encode_sections(*view({1: (0, 0, dx, 0)}), *view({1: (0, 0, 0, 0)}))
    assert (len(full), len(move)) == ((12, 0) if section == "full" else (0, 4))


@pytest.mark.parametrize(
    ("yaw", "byte"),
    [
        (0.0, 0),
        (math.pi / 2, 64),
        (math.pi, 128),
        (-math.pi / 2, 192),
        (2 * math.pi - 1e-9, 0),
        (5 * math.pi, 128),
        (2 * math.pi / 256 * 0.49, 0),
        (2 * math.pi / 256 * 0.51, 1),
    ],
)
def test_yaw_byte(yaw: float, byte: int) -> None:
    q = quantize(np.zeros((1, 2)), np.zeros(1, np.int64), np.array([yaw]))
    assert q[0, YAW] == byte


def test_quantisation_round_trip_within_a_centimetre_and_a_yaw_byte() -> None:
    rng = np.random.default_rng(7)
    n = 5000
    pos = rng.uniform(-500.0, 500.0, (n, 2))
    yaw = rng.uniform(-4 * math.pi, 4 * math.pi, n)
    floor = rng.integers(0, 4, n)
    q = quantize(pos, floor, yaw)
    assert q.dtype == np.int32 and q.shape == (n, 4)
    assert (q[:, FLOOR] == floor).all()
    assert np.abs(q[:, 2:] / 100.0 - pos).max() <= 0.01
    step = 2 * math.pi / 256
    err = np.angle(np.exp(1j * (q[:, YAW] * step - yaw)))
    assert np.abs(err).max() <= step
    assert ((q[:, YAW] >= 0) & (q[:, YAW] <= 255)).all()


def send(tick: int, base: int, sections: tuple) -> Snapshot:
    """What the client receives: the sections in a Snapshot, through the wire."""
    full, move, turn_move, turn, left, entered = sections
    snap = Snapshot(
        tick,
        base,
        0,
        float(tick),
        full,
        move,
        turn_move,
        turn,
        left,
        [[int(i), f"a{i}", 0] for i in entered],
        0,
    )
    back = decode(snap.encode())
    assert isinstance(back, Snapshot)
    return back


def test_delta_against_an_acknowledged_base() -> None:
    client = SnapshotState()
    ids, q = view(BASE)
    assert client.apply(send(10, 0, encode_sections(ids, q, ids[:0], q[:0]))) == BASE
    # Tick 11 is lost or not acknowledged; tick 12 is a delta against 10.
    assert client.apply(send(12, 10, encode_sections(*view(NOW), *view(BASE)))) == NOW
    assert client.state(10) == BASE


def test_an_unknown_base_is_refused() -> None:
    client = SnapshotState()
    with pytest.raises(ProtocolError) as info:
        client.apply(send(5, 3, encode_sections(*view(NOW), *view(BASE))))
    assert info.value.code is CloseCode.BAD_FRAME
    assert "snapshot.base_tick" in info.value.reason


def test_states_older_than_the_history_are_dropped() -> None:
    client = SnapshotState()
    ids, q = view(BASE)
    client.apply(send(1, 0, encode_sections(ids, q, ids[:0], q[:0])))
    for tick in range(2, HISTORY_TICKS + 2):
        client.apply(send(tick, tick - 1, encode_sections(ids, q, ids, q)))
    assert client.state(2) == BASE
    with pytest.raises(ProtocolError):
        client.apply(send(HISTORY_TICKS + 2, 1, encode_sections(ids, q, ids, q)))


def random_walk(seed: int, ticks: int, pool: int):
    """Yield the quantised views of a crowd that walks, turns, teleports, comes and goes."""
    rng = np.random.default_rng(seed)
    pos = rng.uniform(-20, 20, (pool, 2))
    yaw = rng.uniform(-math.pi, math.pi, pool)
    floor = rng.integers(0, 3, pool)
    present = rng.random(pool) < 0.5
    ids_all = np.sort(rng.choice(65536, pool, replace=False)).astype(np.uint16)
    for _ in range(ticks):
        step = rng.normal(0, 0.3, (pool, 2))
        step[rng.random(pool) < 0.4] = 0.0  # some stand still
        pos += step
        jump = rng.random(pool) < 0.02
        pos[jump] += rng.uniform(-10, 10, (int(jump.sum()), 2))
        turn = rng.random(pool) < 0.3
        yaw[turn] += rng.normal(0, 0.5, int(turn.sum()))
        stairs = rng.random(pool) < 0.01
        floor[stairs] = (floor[stairs] + 1) % 3
        flip = rng.random(pool) < 0.05
        present ^= flip
        q = quantize(pos, floor, yaw)
        yield ids_all[present], q[present]


@pytest.mark.parametrize("seed", range(6))
def test_random_walk_rebuilds_the_truth_from_any_acknowledged_base(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    sent: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    client = SnapshotState()
    acked: list[int] = []
    used = np.zeros(5, np.int64)
    for tick, (ids, q) in enumerate(random_walk(seed, 300, 80), start=1):
        usable = [t for t in acked if t > tick - HISTORY_TICKS]
        base = int(rng.choice(usable)) if usable and rng.random() < 0.95 else 0
        ids_b, q_b = sent[base] if base else (ids[:0], q[:0])
        sections = encode_sections(ids, q, ids_b, q_b)
        used += [len(s) > 0 for s in sections[:5]]
        got = client.apply(send(tick, base, sections))
        truth = {int(i): tuple(int(v) for v in row) for i, row in zip(ids, q, strict=True)}
        assert got == truth
        sent[tick] = (ids, q)
        if rng.random() < 0.7:  # some snapshots are never acknowledged
            acked.append(tick)
    assert (used > 0).all()  # every section was exercised
