"""Micro-benchmark of the protocol codec: what the server pays per client per tick.

    python -m bench.codec [--repeat R]

Times, on a crowd that walks the way :mod:`bench.crowd` walks (most avatars move a few cm
a tick, some turn, a couple enter and leave the view):

- ``encode_sections`` for one client with 64 avatars in view (µs per call);
- ``encode_batch`` (what the server runs) for 1000 such viewers at once (µs per viewer);
- ``quantize`` of 1000 avatars; ``decode`` of an input frame and of a snapshot frame;
  ``SnapshotState.apply`` of a 64-avatar delta (the client side).

Writes ``bench/results/codec.json`` with the machine. Measures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.crowd import RESULTS, machine
from server.protocol.batch import encode_batch, sort_views
from server.protocol.messages import Input, Snapshot, decode
from server.protocol.snapshot import SnapshotState, encode_sections, quantize

__all__ = ["main"]


def _time(fn: Callable[[], object], repeat: int) -> float:
    """Best of five runs of ``repeat`` calls, µs per call (the least disturbed by neighbours)."""
    best = math.inf
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - t0) / repeat)
    return best * 1e6


View = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _views(rng: np.random.Generator, n: int = 64, pool: int = 400) -> View:
    """A 64-avatar view now and 2 ticks ago: walkers moved, some turned, 2 in, 2 out."""
    ids = np.sort(rng.choice(pool, n + 2, replace=False)).astype(np.uint16)
    pos = rng.uniform(0, 80, (n + 2, 2))
    yaw = rng.uniform(-math.pi, math.pi, n + 2)
    floor = np.zeros(n + 2, np.int64)
    q_base = quantize(pos, floor, yaw)
    walking = rng.random(n + 2) < 0.8
    pos[walking] += rng.normal(0, 0.1, (int(walking.sum()), 2))
    turning = rng.random(n + 2) < 0.2
    yaw[turning] += 0.3
    q_now = quantize(pos, floor, yaw)
    now_rows = np.r_[0:n][2:]  # 2 left
    base_rows = np.r_[0:n][:-2]
    enter = np.array([n, n + 1])  # 2 entered
    rows_now = np.sort(np.r_[now_rows, enter])
    return ids[rows_now], q_now[rows_now], ids[base_rows], q_base[base_rows]


def _batch(rng: np.random.Generator, viewers: int = 1000, cap: int = 64) -> Callable[[], object]:
    """A tick of the server's batch encoder: 1000 walkers, each viewing 64 of them, against the
    views they acknowledged 2 ticks ago (a few entered and left since)."""
    pos = rng.uniform(0, 80, (viewers, 2))
    yaw = rng.uniform(-math.pi, math.pi, viewers)
    floor = np.zeros(viewers, np.int64)
    history = np.zeros((4, viewers, 4), np.int32)
    history[1] = quantize(pos, floor, yaw)
    pos[rng.random(viewers) < 0.8] += rng.normal(0, 0.1, (1, 2))
    yaw[rng.random(viewers) < 0.2] += 0.3
    history[3] = quantize(pos, floor, yaw)
    seen = np.stack([rng.choice(viewers, cap, replace=False) for _ in range(viewers)])
    cur = sort_views(seen)
    before = seen.copy()
    before[:, :2] = rng.choice(viewers, (viewers, 2))  # two of the base have left the view
    base = sort_views(np.where(before == np.roll(before, 1, axis=1), -1, before))
    base_index = np.full(viewers, 1)
    return lambda: encode_batch(cur, base, history[3], history, base_index)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.codec", description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=RESULTS / "codec.json")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(1)
    r = args.repeat
    v = _views(rng)
    batch = _batch(rng)
    sections = encode_sections(*v)
    snap = Snapshot(
        3, 1, 7, 1.7e12, *sections[:5], [[int(i), f"bench{i}", 0x336699] for i in sections[5]], 12
    )
    snap_frame = snap.encode()
    input_frame = Input(12, 40, 0.3, 0.4, 0.9).encode()
    state = SnapshotState()
    base = Snapshot(1, 0, 0, 0.0, *encode_sections(v[2], v[3], v[2][:0], v[3][:0])[:5])

    def apply_once() -> None:
        state._states.clear()
        state.newest = 0
        state.apply(base)
        state.apply(snap)

    def apply_base_only() -> None:
        state._states.clear()
        state.newest = 0
        state.apply(base)

    apply_base = _time(apply_base_only, r)
    pos, fl, yw = rng.uniform(0, 80, (1000, 2)), np.zeros(1000, np.int64), rng.uniform(-3, 3, 1000)
    figures: dict[str, Any] = {
        "encode_sections_64_us": _time(lambda: encode_sections(*v), r),
        "encode_batch_1000x64_us_per_viewer": _time(batch, 3) / 1000,
        "quantize_1000_us": _time(lambda: quantize(pos, fl, yw), r),
        "decode_input_us": _time(lambda: decode(input_frame), r),
        "decode_snapshot_64_us": _time(lambda: decode(snap_frame), r),
        "snapshot_state_apply_64_us": _time(apply_once, r) - apply_base,
        "snapshot_frame_bytes": len(snap_frame),
        "snapshot_records": sum(
            len(s) // k for s, k in zip(sections[:5], (12, 4, 5, 3, 2), strict=True)
        ),
    }
    result = {"bench": "codec", "machine": machine(), "figures": figures}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for k, val in figures.items():
        print(f"  {k:48s} {val:10.2f}" if isinstance(val, float) else f"  {k:48s} {val:10d}")
    print(f"  written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
