"""Interest management: which avatars each viewer gets, over a uniform grid.

Each viewer sees the avatars on its floor within ``radius``, nearest first, at most ``cap`` of
them (itself first); the rest of its floor is counted in ``beyond`` so that a far crowd is
summarised rather than dropped silently.

One compiled kernel (numba) answers a query. It counting-sorts the active avatars into the cells
of a uniform grid per floor (sized from their density: about four avatars a cell, at least
``cell`` metres), then walks, for each viewer, the cells around its own in square rings. Every
avatar within reach goes into a small buffer as one int64 key, the float32 bits of its d² above
its slot; the buffer is cut to the ``cap`` smallest keys (quickselect) when it fills and after
each ring, and the cut's largest key bounds what may enter next, so that cells (and whole rings)
that cannot hold anyone nearer are skipped. The ``cap`` kept are then sorted. The key is
``(float32 d², slot)`` with d² = (x - vx)² + (z - vz)² in float32, as the numpy code before it
computed it: ties break by slot, and neither the grid nor the order in which cells are met shows
in the answer.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from world.crowd import Crowd

__all__ = ["Interest", "enter_leave"]

_MIN_CELLS = 4096  # cells the grid may always have; beyond that, _CELLS_PER_AVATAR per avatar
_CELLS_PER_AVATAR = 16
_PER_CELL = 4.0  # avatars per cell aimed at
_BUF = 2  # candidates kept per viewer, in caps, before they are cut to the cap nearest


class Interest:
    """Who sees whom: a radius (m), a cap on the avatars per viewer, and the finest grid cell (m)."""

    def __init__(self, radius: float = 30.0, cap: int = 64, cell: float = 0.5) -> None:
        if radius <= 0 or cap < 1 or cell <= 0:
            raise ValueError(f"need radius > 0, cap >= 1, cell > 0; got {radius}, {cap}, {cell}")
        self.radius = float(radius)
        self.cap = int(cap)
        self.cell = float(cell)

    def query(self, crowd: Crowd, viewers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The view of each viewer slot.

        Returns:
            ``(visible, beyond)``: ``visible`` int32 ``(len(viewers), cap)``, the slots on the
            viewer's floor within ``radius``, nearest first (the viewer itself first), ties by
            slot, padded with -1; ``beyond`` int32 ``(len(viewers),)``, the active avatars on
            the viewer's floor that are not in its row. An inactive viewer gets an empty row.

        Raises:
            IndexError: a viewer is not a slot of ``crowd``.
        """
        viewers = np.asarray(viewers, dtype=np.int64).reshape(-1)
        visible = np.full((len(viewers), self.cap), -1, dtype=np.int32)
        beyond = np.zeros(len(viewers), dtype=np.int32)
        if len(viewers):
            _query(
                crowd.active,
                np.ascontiguousarray(crowd.pos, dtype=np.float32),
                crowd.floor.astype(np.int64, copy=False),
                viewers,
                self.radius,
                self.cell,
                visible,
                beyond,
            )
        return visible, beyond


@numba.njit(cache=True, nogil=True)
def _select(a: np.ndarray, n: int, k: int) -> None:
    """Reorder ``a[:n]`` (distinct values) so that ``a[k]`` is its k-th smallest, the smaller
    ones before it (quickselect)."""
    lo, hi = 0, n - 1
    while hi > lo:
        mid = (lo + hi) >> 1
        x, y, z = a[lo], a[mid], a[hi]
        if x < y:
            med = mid if y < z else (hi if x < z else lo)
        else:
            med = lo if x < z else (hi if y < z else mid)
        a[med], a[hi] = a[hi], a[med]
        pivot = a[hi]
        store = lo
        for i in range(lo, hi):
            if a[i] < pivot:
                a[i], a[store] = a[store], a[i]
                store += 1
        a[store], a[hi] = a[hi], a[store]
        if store == k:
            return
        if store < k:
            lo = store + 1
        else:
            hi = store - 1


@numba.njit(cache=True, nogil=True)
def _query(
    active: np.ndarray,  # bool (capacity,)
    pos: np.ndarray,  # float32 (capacity, 2)
    floor: np.ndarray,  # int64 (capacity,)
    viewers: np.ndarray,  # int64 (viewers,)
    radius: float,
    cell: float,
    visible: np.ndarray,  # int32 (viewers, cap), filled with -1: the answer
    beyond: np.ndarray,  # int32 (viewers,), zeros: the answer
) -> None:
    """Fill ``visible`` and ``beyond`` (see :meth:`Interest.query`)."""
    n = active.shape[0]
    cap = visible.shape[1]
    for j in range(viewers.shape[0]):
        if viewers[j] < 0 or viewers[j] >= n:
            raise IndexError("a viewer is not a slot of the crowd")
    # the active avatars and their bounding box
    na = 0
    for i in range(n):
        if active[i]:
            na += 1
    if na == 0:
        return
    act = np.empty(na, np.int64)
    k = 0
    for i in range(n):
        if active[i]:
            act[k] = i
            k += 1
    fmin = fmax = int(floor[act[0]])
    xmin = xmax = float(pos[act[0], 0])
    zmin = zmax = float(pos[act[0], 1])
    for a in act:
        fmin = min(fmin, int(floor[a]))
        fmax = max(fmax, int(floor[a]))
        xmin = min(xmin, float(pos[a, 0]))
        xmax = max(xmax, float(pos[a, 0]))
        zmin = min(zmin, float(pos[a, 1]))
        zmax = max(zmax, float(pos[a, 1]))
    nf = fmax - fmin + 1
    # the grid: cells that would hold about _PER_CELL avatars each if they spread evenly over
    # their box (at most a quarter of the radius, at least `cell`), doubled while there would be
    # more than a few cells per avatar (avatars far apart)
    limit_cells = max(_MIN_CELLS, _CELLS_PER_AVATAR * na)
    area = (xmax - xmin + cell) * (zmax - zmin + cell) * nf
    c = max(cell, min(math.sqrt(area / na * _PER_CELL), radius / 4))
    while True:
        cx0 = math.floor(xmin / c)
        cz0 = math.floor(zmin / c)
        w = math.floor(xmax / c) - cx0 + 1
        h = math.floor(zmax / c) - cz0 + 1
        if nf * w * h <= limit_cells or nf * w * h <= nf:
            break
        c *= 2.0
    ncell = nf * w * h
    # counting sort of the avatars by cell; their coordinates and slots copied in that order
    cell_of = np.empty(na, np.int64)
    start = np.zeros(ncell + 1, np.int64)
    per_floor = np.zeros(nf, np.int64)
    for k in range(na):
        i = act[k]
        gx = math.floor(float(pos[i, 0]) / c) - cx0
        gz = math.floor(float(pos[i, 1]) / c) - cz0
        g = ((floor[i] - fmin) * w + gx) * h + gz
        cell_of[k] = g
        start[g + 1] += 1
        per_floor[floor[i] - fmin] += 1
    for g in range(ncell):
        start[g + 1] += start[g]
    fill = start[:-1].copy()
    sx = np.empty(na, np.float32)
    sz = np.empty(na, np.float32)
    ss = np.empty(na, np.int64)
    for k in range(na):
        g = cell_of[k]
        at = fill[g]
        fill[g] += 1
        i = act[k]
        sx[at] = pos[i, 0]
        sz[at] = pos[i, 1]
        ss[at] = i
    r2 = np.float32(radius * radius)
    # cells are skipped by a bound in float64 with room for float32 rounding of d²
    slack = 1.0 + 1e-5
    reach = radius * slack + 1e-6
    # a candidate's key: the float32 bits of its d² (they order like the values, d² >= 0) over
    # its slot, one int64 compare; up to 2 cap candidates are kept, cut to the cap nearest
    # (quickselect) whenever the buffer fills, which also tightens the bound for what may enter
    keys = np.empty(_BUF * cap, np.int64)
    most = 0
    for g in range(ncell):
        most = max(most, start[g + 1] - start[g])
    d2s = np.empty(most, np.float32)
    d2i = d2s.view(np.int32)
    bits_f = np.empty(1, np.float32)
    bits_i = bits_f.view(np.int32)
    bits_f[0] = r2
    all_in = (np.int64(bits_i[0]) << 32) | 0xFFFFFFFF
    for j in range(viewers.shape[0]):
        v = viewers[j]
        if not active[v]:
            continue
        vx = pos[v, 0]
        vz = pos[v, 1]
        fbase = (floor[v] - fmin) * w
        gvx = math.floor(float(vx) / c) - cx0
        gvz = math.floor(float(vz) / c) - cz0
        x0 = max(0, math.floor((float(vx) - reach) / c) - cx0)
        x1 = min(w - 1, math.floor((float(vx) + reach) / c) - cx0)
        z0 = max(0, math.floor((float(vz) - reach) / c) - cz0)
        z1 = min(h - 1, math.floor((float(vz) + reach) / c) - cz0)
        rings = max(gvx - x0, x1 - gvx, gvz - z0, z1 - gvz)
        m = 0  # candidates in keys
        lim = r2  # the farthest d² that may still enter
        lim_key = all_in  # and the largest key
        for ring in range(rings + 1):
            if m > cap:
                _select(keys, m, cap - 1)
                m = cap
                lim_key = keys[cap - 1]
                bits_i[0] = np.int32(lim_key >> 32)
                lim = bits_f[0]
            edge = (ring - 1) * c  # every cell of this ring is at least this far
            if ring > 1 and edge * edge > float(lim) * slack + 1e-9:
                break
            for gx in range(max(x0, gvx - ring), min(x1, gvx + ring) + 1):
                side = gx == gvx - ring or gx == gvx + ring
                step = 1 if side else 2 * ring
                gz = gvz - ring
                while gz <= gvz + ring:
                    if gz < z0 or gz > z1:
                        gz += step
                        continue
                    bx = max(0.0, (gx + cx0) * c - float(vx), float(vx) - (gx + cx0 + 1) * c)
                    bz = max(0.0, (gz + cz0) * c - float(vz), float(vz) - (gz + cz0 + 1) * c)
                    if bx * bx + bz * bz > float(lim) * slack + 1e-9:
                        gz += step
                        continue
                    g = (fbase + gx) * h + gz
                    t0 = start[g]
                    nt = start[g + 1] - t0
                    for t in range(nt):
                        dx = sx[t0 + t] - vx
                        dz = sz[t0 + t] - vz
                        d2s[t] = dx * dx + dz * dz
                    for t in range(nt):
                        if d2s[t] > lim:
                            continue
                        key = (np.int64(d2i[t]) << 32) | ss[t0 + t]
                        if key > lim_key:
                            continue
                        keys[m] = key
                        m += 1
                        if m == _BUF * cap:
                            _select(keys, m, cap - 1)
                            m = cap
                            lim_key = keys[cap - 1]
                            bits_i[0] = np.int32(lim_key >> 32)
                            lim = bits_f[0]
                    gz += step
        if m > cap:
            _select(keys, m, cap - 1)
            m = cap
        # insertion sort: cap is small, and the cut has left the keys partly in order
        for e in range(1, m):
            ke = keys[e]
            b = e - 1
            while b >= 0 and keys[b] > ke:
                keys[b + 1] = keys[b]
                b -= 1
            keys[b + 1] = ke
        # the viewer itself first, also when someone stands exactly where it stands (its key is
        # its slot: d² = 0); not in its own row at all when more than cap stand on its spot with
        # lower slots
        at = m - 1
        for e in range(m):
            if keys[e] == v:
                at = e
                break
        for e in range(at, 0, -1):
            keys[e] = keys[e - 1]
        keys[0] = v
        for e in range(m):
            visible[j, e] = keys[e] & 0xFFFFFFFF
        beyond[j] = per_floor[floor[v] - fmin] - m


def _warm() -> None:
    """Compile (or load from the cache) the kernel for the dtypes ``query`` passes."""
    _query(
        np.ones(2, np.bool_),
        np.zeros((2, 2), np.float32),
        np.zeros(2, np.int64),
        np.arange(2, dtype=np.int64),
        1.0,
        1.0,
        np.full((2, 1), -1, np.int32),
        np.zeros(2, np.int32),
    )


_warm()


def enter_leave(prev: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Between two sorted id arrays, the ids that ``entered`` (in ``cur`` only) and ``left``."""
    prev = np.asarray(prev)
    cur = np.asarray(cur)
    return np.setdiff1d(cur, prev, assume_unique=True), np.setdiff1d(prev, cur, assume_unique=True)
