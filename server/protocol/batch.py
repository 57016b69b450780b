"""Snapshot sections for every viewer of an instance at once.

The per-viewer codec (:func:`server.protocol.snapshot.encode_sections`) costs a dozen small numpy
calls per viewer; at a thousand viewers and 20 Hz that alone would eat the tick. This module does the
same classification for all viewers in one pass over ``(viewers, cap)`` arrays, then cuts one bytes
buffer per section into per-viewer slices. Its output is byte-for-byte the per-viewer codec's
(``tests/unit/test_snapshot_batch.py`` checks it on random crowds).

Pure: numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from server.protocol.snapshot import FULL_DTYPE, MOVE_DTYPE, TURN_DTYPE, TURN_MOVE_DTYPE

__all__ = ["PAD", "BatchSections", "encode_batch", "sort_views"]

PAD = 0xFFFF  # an empty place in a view row; avatar ids are below it

FULL = FULL_DTYPE
MOVE = MOVE_DTYPE
TURN_MOVE = TURN_MOVE_DTYPE
TURN = TURN_DTYPE


def sort_views(visible: np.ndarray) -> np.ndarray:
    """Rows of avatar ids (padded with -1, any order) → uint16 rows sorted ascending, PAD last."""
    v = np.where(visible < 0, PAD, visible).astype(np.uint16)
    v.sort(axis=1)
    return v


@dataclass(slots=True)
class BatchSections:
    """Each section's records for all viewers back to back; viewer ``i`` owns ``[off[i], off[i+1])``."""

    full: bytes
    full_off: np.ndarray
    move: bytes
    move_off: np.ndarray
    turn_move: bytes
    turn_move_off: np.ndarray
    turn: bytes
    turn_off: np.ndarray
    left: bytes
    left_off: np.ndarray
    entered: np.ndarray
    entered_off: np.ndarray

    def sections(self, i: int) -> tuple[bytes, bytes, bytes, bytes, bytes]:
        """Viewer ``i``'s (full, move, turn_move, turn, left) byte strings."""
        fo, mo, to, uo, lo = (
            self.full_off,
            self.move_off,
            self.turn_move_off,
            self.turn_off,
            self.left_off,
        )
        return (
            self.full[fo[i] * 12 : fo[i + 1] * 12],
            self.move[mo[i] * 4 : mo[i + 1] * 4],
            self.turn_move[to[i] * 5 : to[i + 1] * 5],
            self.turn[uo[i] * 3 : uo[i + 1] * 3],
            self.left[lo[i] * 2 : lo[i + 1] * 2],
        )

    def entered_ids(self, i: int) -> np.ndarray:
        return self.entered[self.entered_off[i] : self.entered_off[i + 1]]

    def all_sections(self) -> list[tuple[bytes, bytes, bytes, bytes, bytes]]:
        """Every viewer's :meth:`sections`, at once: the offsets become Python ints in one
        conversion each, instead of ten numpy scalars per viewer."""
        cols = []
        for data, off, size in (
            (self.full, self.full_off, 12),
            (self.move, self.move_off, 4),
            (self.turn_move, self.turn_move_off, 5),
            (self.turn, self.turn_off, 3),
            (self.left, self.left_off, 2),
        ):
            o = (off * size).tolist()
            cols.append([data[a:b] for a, b in zip(o, o[1:], strict=False)])
        return list(zip(*cols, strict=True))

    def all_entered(self) -> list[list[int]]:
        """Every viewer's :meth:`entered_ids` as a list of ints."""
        e = self.entered.tolist()
        o = self.entered_off.tolist()
        return [e[a:b] for a, b in zip(o, o[1:], strict=False)]


_TURN_COLS = np.array([0, 1, 4])  # id, yaw of a turn_move record
# sections in the order of the masks ``encode_batch`` stacks: full, move, turn_move, turn, left,
# entered
_FULL, _MOVE, _TURN_MOVE, _TURN, _LEFT, _ENTERED = range(6)


def encode_batch(
    cur: np.ndarray,
    base: np.ndarray,
    q_now: np.ndarray,
    history: np.ndarray,
    base_index: np.ndarray,
) -> BatchSections:
    """Classify every viewer's view against its acknowledged base and pack the records.

    Args:
        cur: (n, cap) uint16 sorted view rows of this tick (from :func:`sort_views`).
        base: (n, cap) uint16 sorted view rows of each viewer's base snapshot; a row of PAD for a
            viewer with no base (it gets a full snapshot).
        q_now: (capacity, 4) int32 quantised state (floor, yaw byte, x cm, z cm) of this tick.
        history: (H, capacity, 4) int32 quantised states by ring index.
        base_index: (n,) ring index of each viewer's base tick (any valid index where it has none).

    Returns:
        The sections of every viewer, sorted by id within each, as the per-viewer codec makes them.

    The fixed cost of a tick is the number of numpy calls, not their size (a hall of 50 has 3,200
    places in its view table), so the classes are computed straight into one stacked table of
    masks (one sum and one cumsum give every section's offsets), and each section is cut from
    the table by one boolean selection in row-major order, which is viewer by viewer and by id
    within a viewer, as the records must go.
    """
    n, cap = cur.shape
    capacity = q_now.shape[0]
    valid = cur != PAD
    has_base = base != PAD
    width = capacity + 1  # PAD goes to the spare column `capacity`, never on a real avatar's bit
    rows = np.arange(0, n * width, width, dtype=np.intp)[:, None]
    ids = cur.astype(np.intp)
    np.minimum(ids, capacity, out=ids)  # PAD (above every id) to the spare column
    at_cur = (ids + rows).ravel()
    at_base = base.astype(np.intp)
    np.minimum(at_base, capacity, out=at_base)
    at_base += rows
    at_base = at_base.ravel()
    masks = np.empty((6, n, cap), dtype=bool)

    # which of this tick's ids were in the base view, and which base ids are gone: a scatter into
    # a (viewers × capacity) bitmap and a gather back, linear where sorting would not be
    mark = np.zeros(n * width, dtype=bool)
    mark[at_base] = has_base.ravel()
    in_base = mark[at_cur].reshape(n, cap)  # the spare column stays False: only valid ids
    mark[at_base] = False
    mark[at_cur] = valid.ravel()
    np.greater(has_base, mark[at_base].reshape(n, cap), out=masks[_LEFT])

    # gather whole 16-byte rows through a void view: several times faster than 2-D fancy indexing;
    # the spare column's places (PAD) clip to some real row, and are never selected
    row16 = np.dtype((np.void, 16))
    qc16 = np.take(np.ascontiguousarray(q_now).view(row16).ravel(), ids, mode="clip").ravel()
    qc = qc16.view(np.int32).reshape(n, cap, 4)
    hist_rows = np.ascontiguousarray(history).view(row16).ravel()
    ids += base_index.astype(np.intp)[:, None] * capacity
    qb = np.take(hist_rows, ids, mode="clip")
    # one strided copy to component-major (floor, yaw, x, z each a contiguous (n, cap) table): the
    # comparisons below would each cost a strided pass over (n, cap, 4) otherwise
    d = (qc - qb.view(np.int32).reshape(n, cap, 4)).transpose(2, 0, 1).copy()
    dx, dz = d[2], d[3]
    # an int8 holds -128..127: shifted by 128, anything else is above 255 as a uint32
    out = (d[2:] + 128).view(np.uint32) > 255
    far = np.logical_or(out[0], out[1], out=out[0])
    far |= d[0] != 0
    entered = np.greater(valid, in_base, out=masks[_ENTERED])
    full = np.logical_and(in_base, far, out=masks[_FULL])
    full |= entered
    near = np.greater(in_base, far, out=far)
    moved = np.bitwise_or(dx, dz) != 0
    moved &= near
    turned = d[1] != 0
    turned &= near
    np.greater(moved, turned, out=masks[_MOVE])
    np.logical_and(moved, turned, out=masks[_TURN_MOVE])
    np.greater(turned, moved, out=masks[_TURN])
    offs = np.zeros((6, n + 1), dtype=np.int64)
    counts = np.add.reduce(masks.view(np.uint8), axis=2, dtype=np.uint8 if cap < 256 else np.int64)
    np.add.accumulate(counts, axis=1, dtype=np.int64, out=offs[:, 1:])
    flat = masks.reshape(6, n * cap)

    # each section's places by take() over whole records (a void view): a boolean selection of
    # the rows of a 2-D array copies item by item, several times slower
    sel = np.flatnonzero(flat[_FULL])
    q = qc16.take(sel).view(np.int32).reshape(-1, 4)
    rec = np.empty(len(q), FULL)
    rec["id"] = cur.ravel().take(sel)
    rec["floor"] = q[:, 0]
    rec["yaw"] = q[:, 1]
    rec["x"] = q[:, 2]
    rec["z"] = q[:, 3]

    # move, turn_move and turn records are cuts of one turn_move record per place of the table
    tm = np.empty((n, cap), TURN_MOVE)
    tm["id"] = cur
    tm["dx"] = dx  # wraps where the place is not a move: such places are never selected
    tm["dz"] = dz
    tm["yaw"] = qc[..., 1]
    tmv = tm.reshape(n * cap).view(np.dtype((np.void, 5)))

    def cut(section: int) -> np.ndarray:
        return tmv.take(np.flatnonzero(flat[section])).view(np.uint8).reshape(-1, 5)

    return BatchSections(
        rec.tobytes(),
        offs[_FULL],
        cut(_MOVE)[:, :4].tobytes(),
        offs[_MOVE],
        cut(_TURN_MOVE).tobytes(),
        offs[_TURN_MOVE],
        cut(_TURN).take(_TURN_COLS, axis=1).tobytes(),
        offs[_TURN],
        base.ravel()[flat[_LEFT]].astype("<u2").tobytes(),
        offs[_LEFT],
        cur.ravel()[flat[_ENTERED]].astype(np.int64),
        offs[_ENTERED],
    )
