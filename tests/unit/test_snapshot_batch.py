"""The all-viewers encoder gives every viewer exactly the bytes of the per-viewer codec, and its
frames exactly the bytes of msgpack and the WebSocket header."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from server.protocol.batch import (
    PAD,
    InfoTable,
    encode_batch,
    encode_frames,
    prepare_views,
    sort_views,
)
from server.protocol.codes import MsgType
from server.protocol.snapshot import encode_sections
from server.session import ws_binary_header

CAPACITY = 300
CAP = 16
HISTORY = 8


def _row(ids: np.ndarray) -> np.ndarray:
    row = np.full(CAP, -1, dtype=np.int64)
    row[: len(ids)] = ids
    return row


def _crowd(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list]:
    rng = np.random.default_rng(seed)
    history = np.zeros((HISTORY, CAPACITY, 4), dtype=np.int32)
    history[..., 0] = rng.integers(0, 2, (HISTORY, CAPACITY))
    history[..., 1] = rng.integers(0, 256, (HISTORY, CAPACITY))
    walk = rng.integers(-150, 150, (HISTORY, CAPACITY, 2)).cumsum(axis=0)
    history[..., 2:] = walk
    # most avatars keep floor and yaw between ticks, as people do
    keep = rng.random((HISTORY, CAPACITY)) < 0.7
    for t in range(1, HISTORY):
        history[t, keep[t], 0] = history[t - 1, keep[t], 0]
        history[t, keep[t], 1] = history[t - 1, keep[t], 1]
    still = rng.random(CAPACITY) < 0.3
    history[:, still] = history[0, still]
    now = HISTORY - 1
    q_now = history[now]

    n = 25
    cur_rows, base_rows, base_index, expected = [], [], [], []
    for v in range(n):
        ids_now = np.sort(rng.choice(CAPACITY, rng.integers(0, CAP + 1), replace=False)).astype(
            np.uint16
        )
        has_base = v % 5 != 0
        if has_base:
            keep_ids = ids_now[rng.random(len(ids_now)) < 0.8]
            extra = rng.choice(CAPACITY, rng.integers(0, 4), replace=False)
            ids_base = np.unique(np.concatenate([keep_ids, extra]))[:CAP].astype(np.uint16)
            bi = int(rng.integers(0, now))
        else:
            ids_base = np.zeros(0, np.uint16)
            bi = 0
        cur_rows.append(_row(ids_now))
        base_rows.append(_row(ids_base))
        base_index.append(bi)
        expected.append(encode_sections(ids_now, q_now[ids_now], ids_base, history[bi][ids_base]))

    cur = sort_views(np.array(cur_rows))
    base = sort_views(np.array(base_rows))
    return cur, base, history, np.array(base_index), expected


@pytest.mark.parametrize("seed", range(20))
def test_batch_matches_per_viewer_codec(seed: int) -> None:
    cur, base, history, base_index, expected = _crowd(seed)
    got = encode_batch(cur, base, history[-1], history, base_index)
    for v in range(len(cur)):
        assert got.sections(v) == tuple(expected[v][:5]), v
        assert got.entered_ids(v).tolist() == expected[v][5].tolist(), v


def _frame(payload: bytes) -> bytes:
    return ws_binary_header(len(payload)) + payload


_pack = msgpack.Packer(use_bin_type=True).pack
# ints of every msgpack width, both signs: the kernel chooses as msgpack-python's packer does
_INTS = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**40, -1, -32, -33, -128]
_INTS += [-129, -32768, -32769, -(2**31), -(2**31) - 1, -(2**40)]


@pytest.mark.parametrize("seed", range(10))
def test_frames_are_the_msgpack_of_the_sections(seed: int) -> None:
    cur, base, history, base_index, expected = _crowd(seed)
    rng = np.random.default_rng(seed)
    n = len(cur)
    q_now = history[-1]
    base_tick = rng.choice(_INTS, n)
    last_seq = rng.choice(_INTS, n)
    crowd = rng.choice(_INTS, n)
    names = [f"名前{a}" * (a % 7) for a in range(CAPACITY)]
    colors = [int(c) for c in rng.integers(0, 2**24, CAPACITY)]
    tick, server_time = int(rng.choice(_INTS[:10])), float(rng.uniform(0, 2e12))
    info = InfoTable(CAPACITY)
    info.update(names, colors)
    first = int(rng.integers(0, n))
    got = encode_frames(
        cur,
        base,
        base_index,
        q_now,
        history,
        b"\x9c" + _pack(int(MsgType.SNAPSHOT)) + _pack(tick),
        _pack(server_time),
        base_tick,
        last_seq,
        crowd,
        info,
        first,
    )
    ends = [0, *got.end.tolist()]
    frames = {(first + j) % n: got.data[ends[j] : ends[j + 1]] for j in range(n)}
    for v in range(n):
        payload = _pack(
            [
                int(MsgType.SNAPSHOT),
                tick,
                int(base_tick[v]),
                int(last_seq[v]),
                server_time,
                *expected[v][:5],
                [[a, names[a], colors[a]] for a in expected[v][5].tolist()],
                int(crowd[v]),
            ]
        )
        assert frames[v] == _frame(payload), v
        assert got.size[v] == len(payload)


def test_big_frames_take_the_long_headers() -> None:
    """A view of 6,000 (a bin 32 section, a 64-bit WebSocket length) and 20 entered (array 16)."""
    capacity = 7000
    history = np.zeros((2, capacity, 4), np.int32)
    history[1, :, 2] = np.arange(capacity)
    cur = sort_views(np.arange(6000, dtype=np.int32)[None, :])
    small = sort_views(np.arange(20, dtype=np.int32)[None, :])
    cur = np.concatenate([cur, np.pad(small, ((0, 0), (0, 5980)), constant_values=PAD)])
    base = np.full_like(cur, PAD)
    info = InfoTable(capacity)
    info.update(["x"] * capacity, [1] * capacity)
    zeros = np.zeros(2, np.int64)
    got = encode_frames(
        cur, base, zeros, history[1], history, b"\x9c!\x05", _pack(1.5), zeros, zeros, zeros, info
    )
    ends = [0, *got.end.tolist()]
    ids = [cur[0, :6000], cur[1, :20]]
    for v in range(2):
        full = encode_sections(ids[v], history[1][ids[v]], ids[v][:0], history[0][:0])[0]
        info_v = [[int(a), "x", 1] for a in ids[v]]
        payload = _pack([33, 5, 0, 0, 1.5, full, b"", b"", b"", b"", info_v, 0])
        assert got.data[ends[v] : ends[v + 1]] == _frame(payload)


def test_prepare_views_keeps_the_rows_and_finds_usable_bases() -> None:
    hist, capacity, cap = 4, 5, 3
    views = np.full((hist, capacity, cap), PAD, np.uint16)
    view_tick = np.full((hist, capacity), -1, np.int64)
    slots = np.array([3, 1, 4])
    visible = np.array([[2, -1, 0], [4, 3, -1], [-1, -1, -1]], np.int32)
    prepare_views(visible, views, view_tick, slots, np.zeros(3, np.int64), 5)
    views_before = views.copy()
    # 3 acks tick 5 (kept), 1 acks tick 2 (too old... kept row is of another tick), 4 none
    view_tick[2 % hist, 1] = 7
    cur, base, base_tick, base_ring = prepare_views(
        visible[::-1].copy(), views, view_tick, slots, np.array([5, 2, 0]), 6
    )
    assert cur.tolist() == [[PAD] * 3, [3, 4, PAD], [0, 2, PAD]]
    assert views[6 % hist, slots].tolist() == cur.tolist()
    assert view_tick[6 % hist, slots].tolist() == [6, 6, 6]
    assert base.tolist() == [views_before[5 % hist, 3].tolist(), [PAD] * 3, [PAD] * 3]
    assert base_tick.tolist() == [5, 0, 0]
    assert base_ring.tolist() == [1, 2, 0]


def test_info_table_repacks_what_changed() -> None:
    info = InfoTable(3)
    names, colors = ["a", "", "c"], [1, 0, 3]
    info.update(names, colors)
    entries = [_pack([a, names[a], colors[a]]) for a in range(3)]
    assert info.blob.tobytes() == b"".join(entries)
    names[1], colors[2] = "ß" * 40, 2**24 - 1
    info.update(names, colors)
    for a in range(3):
        assert info.blob[info.at[a] : info.at[a + 1]].tobytes() == _pack([a, names[a], colors[a]])
