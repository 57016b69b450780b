"""Snapshot sections and frames for every viewer of an instance at once.

The per-viewer codec (:func:`server.protocol.snapshot.encode_sections`) costs a dozen small numpy
calls per viewer; at a thousand viewers and 20 Hz that alone would eat the tick, and so would a
``msgpack.packb`` per viewer. This module does the work for all viewers of a tick in numba kernels:

- :func:`sort_views` / :func:`prepare_views`: each viewer's view row sorted (numpy) and, for the
  server, kept in the view history, with the acknowledged base row it is encoded against;
- ``_classify``: one merge walk per viewer over its view and its base, which classes every avatar
  in view (unchanged, full, move, turn_move, turn, entered) and every base avatar that left;
- :func:`encode_frames`: the classes, then every viewer's whole WebSocket frame (RFC 6455 header,
  then the msgpack array that ``Snapshot.encode`` makes) into one ``bytes`` buffer in send order,
  so that the send loop only slices and writes;
- :func:`encode_batch`: the same sections as separate byte strings per viewer (tests, benches).

Byte-for-byte the per-viewer codec and ``msgpack`` (``tests/unit/test_snapshot_batch.py`` checks
both on random crowds). Pure: numpy, numba and msgpack; the avatars' ``[id, name, colour]`` info
entries (Python strings) are packed by :class:`InfoTable` when they change and copied in by id.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgpack
import numba
import numpy as np

__all__ = [
    "PAD",
    "BatchSections",
    "Frames",
    "InfoTable",
    "encode_batch",
    "encode_frames",
    "prepare_views",
    "sort_views",
]

PAD = 0xFFFF  # an empty place in a view row; avatar ids are below it

# the class of a place of a view row (``code``), and the columns of ``counts``
_NONE, _FULL, _MOVE, _TURN_MOVE, _TURN, _ENTERED = range(6)
# columns of ``counts``: full (entered included), move, turn_move, turn, left, entered
_LEFT, _COUNT_ENTERED = 4, 5
_RECORD = (12, 4, 5, 3, 2)  # bytes of a full, move, turn_move, turn, left record

_jit = numba.njit(cache=True, nogil=True)


def sort_views(visible: np.ndarray) -> np.ndarray:
    """Rows of avatar ids (padded with -1, any order) → uint16 rows sorted ascending, PAD last.

    numpy, not a kernel: its vectorised sort of 16-bit rows is ten times numba's."""
    v = visible.astype(np.uint16)  # -1 wraps to 0xFFFF, PAD
    v.sort(axis=1)
    return v


@_jit
def _prepare_views(
    cur: np.ndarray,
    views: np.ndarray,
    view_tick: np.ndarray,
    slots: np.ndarray,
    acked: np.ndarray,
    tick: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # each viewer's row is kept at this tick's ring place; its base is the row kept for the tick
    # it acknowledged, if that is recent and still the one sent then (else all PAD)
    n, cap = cur.shape
    hist = views.shape[0]
    width = min(cap, views.shape[2])
    ring = tick % hist
    base = np.full((n, cap), PAD, np.uint16)
    base_tick = np.zeros(n, np.int64)
    base_ring = np.empty(n, np.int64)
    for i in range(n):
        s = slots[i]
        views[ring, s, :width] = cur[i, :width]
        view_tick[ring, s] = tick
        a = acked[i]
        br = a % hist
        base_ring[i] = br
        if a > 0 and tick - a < hist and view_tick[br, s] == a:
            base[i, :width] = views[br, s, :width]
            base_tick[i] = a
    return base, base_tick, base_ring


def prepare_views(
    visible: np.ndarray,
    views: np.ndarray,
    view_tick: np.ndarray,
    slots: np.ndarray,
    acked: np.ndarray,
    tick: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sort this tick's views, keep them in the history, and find each viewer's base.

    Args:
        visible: (n, cap) avatar ids in view (-1 empty, any order).
        views: (H, capacity, cap) uint16 history of the rows sent, by ring index (``tick % H``);
            this tick's rows are written into it.
        view_tick: (H, capacity) int64 tick each kept row was sent at; this tick's is set.
        slots: (n,) the viewers' avatar ids.
        acked: (n,) each viewer's acknowledged tick (0: none).
        tick: this tick.

    Returns:
        ``(cur, base, base_tick, base_ring)``: the sorted rows (uint16, PAD last), each viewer's
        base row (all PAD where no base is usable: recent, and still the row sent at that tick),
        the base tick (0: none) and its ring index.
    """
    cur = sort_views(visible)
    base, base_tick, base_ring = _prepare_views(
        cur,
        views,
        view_tick,
        slots.astype(np.int64, copy=False),
        acked.astype(np.int64, copy=False),
        tick,
    )
    return cur, base, base_tick, base_ring


@_jit
def _classify(
    cur: np.ndarray,
    base: np.ndarray,
    q_now: np.ndarray,
    history: np.ndarray,
    base_index: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # a merge walk of each viewer's sorted view against its sorted base: an id not in the base
    # entered (full); one in it is full if it changed floor or moved beyond an int8 of cm on an
    # axis, else move / turn_move / turn by what changed, or nothing; a base id not in the view
    # left. counts: full (entered included), move, turn_move, turn, left, entered
    n, cap = cur.shape
    bcap = base.shape[1]
    code = np.zeros((n, cap), np.uint8)
    left = np.zeros((n, bcap), np.uint8)
    counts = np.zeros((n, 6), np.int64)
    for i in range(n):
        hb = history[base_index[i]]
        j = 0
        for k in range(cap):
            c = cur[i, k]
            if c == PAD:
                break
            while j < bcap and base[i, j] < c:
                left[i, j] = 1
                counts[i, _LEFT] += 1
                j += 1
            if j < bcap and base[i, j] == c:
                j += 1
                df = np.int64(q_now[c, 0]) - hb[c, 0]
                dy = np.int64(q_now[c, 1]) - hb[c, 1]
                dx = np.int64(q_now[c, 2]) - hb[c, 2]
                dz = np.int64(q_now[c, 3]) - hb[c, 3]
                if df != 0 or dx < -128 or dx > 127 or dz < -128 or dz > 127:
                    cls = _FULL
                elif dx != 0 or dz != 0:
                    cls = _TURN_MOVE if dy != 0 else _MOVE
                elif dy != 0:
                    cls = _TURN
                else:
                    cls = _NONE
                if cls != _NONE:
                    code[i, k] = cls
                    counts[i, cls - 1] += 1
            else:
                code[i, k] = _ENTERED
                counts[i, 0] += 1
                counts[i, _COUNT_ENTERED] += 1
        while j < bcap and base[i, j] != PAD:
            left[i, j] = 1
            counts[i, _LEFT] += 1
            j += 1
    return code, left, counts


@_jit
def _put_u16(out: np.ndarray, p: int, v: int) -> int:
    out[p] = v & 0xFF
    out[p + 1] = (v >> 8) & 0xFF
    return p + 2


@_jit
def _put_i32(out: np.ndarray, p: int, v: int) -> int:
    for b in range(4):
        out[p + b] = (v >> (8 * b)) & 0xFF
    return p + 4


@_jit
def _write_records(
    out: np.ndarray,
    pos: np.ndarray,
    cur: np.ndarray,
    base: np.ndarray,
    code: np.ndarray,
    left: np.ndarray,
    q_now: np.ndarray,
    hb: np.ndarray,
) -> None:
    # one viewer's records, each section from its own start pos[section] in `out` (advanced):
    # full  id u16, floor u8, yaw u8, x i32, z i32 | move id, dx i8, dz i8
    # turn_move  id, dx, dz, yaw u8 | turn  id, yaw | left  id (little-endian, by id)
    for k in range(cur.shape[0]):
        c = cur[k]
        if c == PAD:
            break
        cls = code[k]
        if cls == _NONE:
            continue
        if cls == _FULL or cls == _ENTERED:  # noqa: SIM109 (numba: no tuple `in`)
            p = _put_u16(out, pos[0], c)
            out[p] = q_now[c, 0] & 0xFF
            out[p + 1] = q_now[c, 1] & 0xFF
            p = _put_i32(out, p + 2, q_now[c, 2])
            pos[0] = _put_i32(out, p, q_now[c, 3])
            continue
        s = cls - 1
        p = _put_u16(out, pos[s], c)
        if cls != _TURN:
            out[p] = (q_now[c, 2] - hb[c, 2]) & 0xFF
            out[p + 1] = (q_now[c, 3] - hb[c, 3]) & 0xFF
            p += 2
        if cls != _MOVE:
            out[p] = q_now[c, 1] & 0xFF
            p += 1
        pos[s] = p
    for k in range(base.shape[0]):
        if left[k]:
            pos[4] = _put_u16(out, pos[4], base[k])


@_jit
def _sections(
    cur: np.ndarray,
    base: np.ndarray,
    code: np.ndarray,
    left: np.ndarray,
    counts: np.ndarray,
    q_now: np.ndarray,
    history: np.ndarray,
    base_index: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    # every section's records of every viewer in one buffer: section by section, viewer by
    # viewer within one; off[s, i] is where viewer i's records of section s start
    n = cur.shape[0]
    sizes = np.array(_RECORD, np.int64)
    off = np.zeros((5, n + 1), np.int64)
    at = 0
    for s in range(5):
        off[s, 0] = at
        for i in range(n):
            at += counts[i, s] * sizes[s]
            off[s, i + 1] = at
    out = np.empty(at, np.uint8)
    pos = np.empty(5, np.int64)
    for i in range(n):
        for s in range(5):
            pos[s] = off[s, i]
        _write_records(out, pos, cur[i], base[i], code[i], left[i], q_now, history[base_index[i]])
    entered_off = np.zeros(n + 1, np.int64)
    for i in range(n):
        entered_off[i + 1] = entered_off[i] + counts[i, _COUNT_ENTERED]
    entered = np.empty(entered_off[n], np.int64)
    e = 0
    for i in range(n):
        for k in range(cur.shape[1]):
            if code[i, k] == _ENTERED:
                entered[e] = cur[i, k]
                e += 1
    return out, off, entered, entered_off


@dataclass(slots=True)
class BatchSections:
    """Every viewer's sections: section ``s`` of viewer ``i`` is ``data[off[s, i]:off[s, i+1]]``
    (s: full, move, turn_move, turn, left); entered ids at ``entered[entered_off[i]:...[i+1]]``."""

    data: bytes
    off: np.ndarray
    entered: np.ndarray
    entered_off: np.ndarray

    def sections(self, i: int) -> tuple[bytes, bytes, bytes, bytes, bytes]:
        """Viewer ``i``'s (full, move, turn_move, turn, left) byte strings."""
        o, d = self.off, self.data
        f, m, t, u, lft = (d[o[s, i] : o[s, i + 1]] for s in range(5))
        return f, m, t, u, lft

    def entered_ids(self, i: int) -> np.ndarray:
        return self.entered[self.entered_off[i] : self.entered_off[i + 1]]


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
    """
    q_now, history, base_index = _typed(q_now, history, base_index)
    code, left, counts = _classify(cur, base, q_now, history, base_index)
    data, off, entered, entered_off = _sections(
        cur, base, code, left, counts, q_now, history, base_index
    )
    return BatchSections(data.tobytes(), off, entered, entered_off)


def _typed(
    q_now: np.ndarray, history: np.ndarray, base_index: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.ascontiguousarray(q_now, dtype=np.int32),
        np.ascontiguousarray(history, dtype=np.int32),
        base_index.astype(np.int64, copy=False),
    )


@_jit
def _int_size(v: int) -> int:
    # msgpack's smallest encoding of an int, as msgpack-python's packer chooses it
    if v < -32:
        if v < -(1 << 15):
            return 5 if v >= -(1 << 31) else 9
        return 2 if v >= -128 else 3
    if v < 128:
        return 1
    if v < (1 << 16):
        return 2 if v < 256 else 3
    return 5 if v < (1 << 32) else 9


@_jit
def _put_be(out: np.ndarray, p: int, v: int, nbytes: int) -> int:
    for b in range(nbytes):
        out[p + b] = (v >> (8 * (nbytes - 1 - b))) & 0xFF
    return p + nbytes


@_jit
def _put_int(out: np.ndarray, p: int, v: int) -> int:
    size = _int_size(v)
    if size == 1:
        out[p] = v & 0xFF
        return p + 1
    if v < 0:
        tag = 0xD0 if size == 2 else 0xD1 if size == 3 else 0xD2 if size == 5 else 0xD3
    else:
        tag = 0xCC if size == 2 else 0xCD if size == 3 else 0xCE if size == 5 else 0xCF
    out[p] = tag
    return _put_be(out, p + 1, v, size - 1)


@_jit
def _len_size(n: int) -> int:
    # the bytes of a msgpack bin header (bin 8/16/32) for n bytes
    return 2 if n < 256 else 3 if n < 65536 else 5


@_jit
def _put_bin_header(out: np.ndarray, p: int, n: int) -> int:
    if n < 256:
        out[p] = 0xC4
        out[p + 1] = n
        return p + 2
    if n < 65536:
        out[p] = 0xC5
        return _put_be(out, p + 1, n, 2)
    out[p] = 0xC6
    return _put_be(out, p + 1, n, 4)


@_jit
def _put_array_header(out: np.ndarray, p: int, n: int) -> int:
    if n < 16:
        out[p] = 0x90 | n
        return p + 1
    if n < 65536:
        out[p] = 0xDC
        return _put_be(out, p + 1, n, 2)
    out[p] = 0xDD
    return _put_be(out, p + 1, n, 4)


@_jit
def _frames(
    cur: np.ndarray,
    base: np.ndarray,
    base_index: np.ndarray,
    q_now: np.ndarray,
    history: np.ndarray,
    head: np.ndarray,
    stamp: np.ndarray,
    base_tick: np.ndarray,
    last_seq: np.ndarray,
    crowd: np.ndarray,
    info: np.ndarray,
    info_at: np.ndarray,
    first: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # viewer i's frame: WebSocket header (0x82, 7/16/64-bit length), then the msgpack array
    # head (fixarray 12, SNAPSHOT, tick) | base_tick | last_seq | stamp (float 64) | five bins
    # (full, move, turn_move, turn, left) | array of the entered avatars' info entries | crowd;
    # laid out in send order: viewers first, first + 1, ..., n - 1, 0, ..., first - 1
    code, left, counts = _classify(cur, base, q_now, history, base_index)
    n, cap = cur.shape
    sizes = np.array(_RECORD, np.int64)
    payload = np.empty(n, np.int64)
    end = np.empty(n, np.int64)
    at = 0
    for j in range(n):
        i = (first + j) % n
        size = head.shape[0] + stamp.shape[0]
        size += _int_size(base_tick[i]) + _int_size(last_seq[i]) + _int_size(crowd[i])
        for s in range(5):
            b = counts[i, s] * sizes[s]
            size += _len_size(b) + b
        ne = counts[i, _COUNT_ENTERED]
        size += 1 if ne < 16 else 3 if ne < 65536 else 5  # fixarray, array 16/32
        if ne:
            for k in range(cap):
                if code[i, k] == _ENTERED:
                    c = cur[i, k]
                    size += info_at[c + 1] - info_at[c]
        payload[i] = size
        at += size + (2 if size < 126 else 4 if size < 65536 else 10)
        end[j] = at
    out = np.empty(at, np.uint8)
    pos = np.empty(5, np.int64)
    p = 0
    for j in range(n):
        i = (first + j) % n
        size = payload[i]
        out[p] = 0x82
        if size < 126:
            out[p + 1] = size
            p += 2
        elif size < 65536:
            out[p + 1] = 126
            p = _put_be(out, p + 2, size, 2)
        else:
            out[p + 1] = 127
            p = _put_be(out, p + 2, size, 8)
        out[p : p + head.shape[0]] = head
        p += head.shape[0]
        p = _put_int(out, p, base_tick[i])
        p = _put_int(out, p, last_seq[i])
        out[p : p + stamp.shape[0]] = stamp
        p += stamp.shape[0]
        for s in range(5):
            b = counts[i, s] * sizes[s]
            p = _put_bin_header(out, p, b)
            pos[s] = p
            p += b
        _write_records(out, pos, cur[i], base[i], code[i], left[i], q_now, history[base_index[i]])
        p = _put_array_header(out, p, counts[i, _COUNT_ENTERED])
        if counts[i, _COUNT_ENTERED]:
            for k in range(cap):
                if code[i, k] == _ENTERED:
                    c = cur[i, k]
                    a, b = info_at[c], info_at[c + 1]
                    out[p : p + b - a] = info[a:b]
                    p += b - a
        p = _put_int(out, p, crowd[i])
    return out, end, payload


class InfoTable:
    """Each avatar's msgpack ``[id, name, colour]``, the entry a snapshot's ``info`` holds for an
    avatar new to the view: packed when an avatar's name or colour changes, not every tick."""

    __slots__ = ("_names", "_colors", "_entries", "blob", "at")

    def __init__(self, capacity: int) -> None:
        self._names: list[str | None] = [None] * capacity
        self._colors: list[int | None] = [None] * capacity
        self._entries = [b""] * capacity
        #: avatar a's entry is ``blob[at[a]:at[a + 1]]``
        self.blob = np.frombuffer(b"", np.uint8)
        self.at = np.zeros(capacity + 1, np.int64)

    def update(self, names: list[str], colors: list[int]) -> None:
        """Take the avatars' names and colours (by id); repacks only what changed."""
        if names == self._names and colors == self._colors:  # mostly the same objects: cheap
            return
        entries = self._entries
        for a, (name, color, old_name, old_color) in enumerate(
            zip(names, colors, self._names, self._colors, strict=True)
        ):
            if name != old_name or color != old_color:
                entries[a] = _packb([a, name, color])
        self._names, self._colors = list(names), list(colors)
        # read-only (from bytes) as a frame's head and stamp: one compiled signature
        self.blob = np.frombuffer(b"".join(entries), np.uint8)
        np.cumsum([len(e) for e in entries], out=self.at[1:])


_packb = msgpack.Packer(use_bin_type=True).pack


@dataclass(slots=True)
class Frames:
    """Every viewer's frame in one buffer, in send order: the ``j``-th frame written (viewer
    ``(first + j) % n``) is ``data[end[j - 1]:end[j]]`` (from 0 for ``j = 0``); ``size[i]`` is the
    length of viewer ``i``'s msgpack payload, the end of its frame after the WebSocket header."""

    data: bytes
    end: np.ndarray
    size: np.ndarray


def encode_frames(
    cur: np.ndarray,
    base: np.ndarray,
    base_index: np.ndarray,
    q_now: np.ndarray,
    history: np.ndarray,
    head: bytes,
    stamp: bytes,
    base_tick: np.ndarray,
    last_seq: np.ndarray,
    crowd: np.ndarray,
    info: InfoTable,
    first: int = 0,
) -> Frames:
    """Every viewer's whole snapshot frame (WebSocket header and msgpack payload), in one kernel.

    Args:
        cur, base, base_index, q_now, history: as for :func:`encode_batch`.
        head: the msgpack bytes of the array's start: fixarray 12, SNAPSHOT, tick.
        stamp: the msgpack bytes of the server time (a float 64).
        base_tick, last_seq, crowd: (n,) per viewer, ints.
        info: the avatars' info entries, up to date.
        first: the viewer written first (the buffer is in send order from it).

    Returns:
        The frames; each payload is ``packb([SNAPSHOT, tick, base_tick, last_seq, server_time,
        full, move, turn_move, turn, left, info, crowd])`` byte for byte.
    """
    q_now, history, base_index = _typed(q_now, history, base_index)
    data, end, size = _frames(
        cur,
        base,
        base_index,
        q_now,
        history,
        np.frombuffer(head, np.uint8),
        np.frombuffer(stamp, np.uint8),
        base_tick.astype(np.int64, copy=False),
        last_seq.astype(np.int64, copy=False),
        crowd.astype(np.int64, copy=False),
        info.blob,
        info.at,
        first,
    )
    return Frames(data.tobytes(), end, size)


def _warm() -> None:
    """Compile (or load from the cache) every kernel at import with tiny inputs of the real
    dtypes, so that no tick of a live server pays for it (tests/unit/test_snapshot_batch.py
    checks that the calls of the server's dtypes add no signature)."""
    visible = np.array([[1, -1], [0, 1]], np.int32)
    views = np.full((4, 2, 2), PAD, np.uint16)
    view_tick = np.full((4, 2), -1, np.int64)
    slots = np.array([0, 1], np.int64)
    cur, base, base_tick, base_ring = prepare_views(
        visible, views, view_tick, slots, np.zeros(2, np.int64), 1
    )
    q = np.zeros((2, 4), np.int32)
    history = np.zeros((4, 2, 4), np.int32)
    encode_batch(sort_views(visible), base, q, history, base_ring)
    info = InfoTable(2)
    info.update(["", "a"], [0, 1])
    encode_frames(
        cur,
        base,
        base_ring,
        q,
        history,
        b"\x9c\x21\x01",
        b"\xcb" + bytes(8),
        base_tick,
        base_tick,
        base_tick,
        info,
        1,
    )


_warm()
