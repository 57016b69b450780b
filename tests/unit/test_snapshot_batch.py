"""The all-viewers encoder gives every viewer exactly the bytes of the per-viewer codec."""

from __future__ import annotations

import numpy as np
import pytest

from server.protocol.batch import encode_batch, sort_views
from server.protocol.snapshot import encode_sections

CAPACITY = 300
CAP = 16
HISTORY = 8


def _row(ids: np.ndarray) -> np.ndarray:
    row = np.full(CAP, -1, dtype=np.int64)
    row[: len(ids)] = ids
    return row


@pytest.mark.parametrize("seed", range(20))
def test_batch_matches_per_viewer_codec(seed: int) -> None:
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
    got = encode_batch(cur, base, q_now, history, np.array(base_index))
    for v in range(n):
        assert got.sections(v) == tuple(expected[v][:5]), v
        assert got.entered_ids(v).tolist() == expected[v][5].tolist(), v
    # the broadcast loop takes every viewer's sections at once: the same bytes
    assert got.all_sections() == [got.sections(v) for v in range(n)]
    assert got.all_entered() == [got.entered_ids(v).tolist() for v in range(n)]
