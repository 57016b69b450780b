"""Interest management: which avatars each viewer gets, over a uniform grid.

Each viewer sees the avatars on its floor within ``radius``, nearest first, at most ``cap`` of
them (itself first); the rest of its floor is counted in ``beyond`` so that a far crowd is
summarised rather than dropped silently.

One compiled kernel (numba) answers a query: it counting-sorts the active avatars into the cells
of a uniform grid per floor (``cell`` metres, coarser when the avatars spread over more cells
than a few per avatar), then for each viewer walks the cells around its own in square rings,
keeping the ``cap`` nearest in a bounded heap, and skips every cell (and stops at the ring) that
cannot hold anyone nearer than the heap's farthest. "Nearer" is the key ``(float32 d², slot)``,
with d² = (x - vx)² + (z - vz)² in float32, so ties break by slot and the answer does not depend
on the grid's cell or on the order in which cells are met.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from world.crowd import Crowd

__all__ = ["Interest", "enter_leave"]

_MIN_CELLS = 4096  # cells the grid may always have; beyond that, at most _CELLS_PER_AVATAR each
_CELLS_PER_AVATAR = 8


class Interest:
    """Who sees whom: a radius (m), a cap on the avatars per viewer, and the grid's cell (m)."""

    def __init__(self, radius: float = 30.0, cap: int = 64, cell: float = 2.5) -> None:
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
def _before(d1: float, s1: int, d2: float, s2: int) -> bool:
    """Whether key ``(d1, s1)`` orders before ``(d2, s2)``."""
    return bool(d1 < d2 or (d1 == d2 and s1 < s2))


@numba.njit(cache=True, nogil=True)
def _sift_down(hd: np.ndarray, hs: np.ndarray, i: int, m: int) -> None:
    """Restore the max-heap ``hd``/``hs[:m]`` below ``i``."""
    while True:
        c = 2 * i + 1
        if c >= m:
            return
        if c + 1 < m and _before(hd[c], hs[c], hd[c + 1], hs[c + 1]):
            c += 1
        if not _before(hd[i], hs[i], hd[c], hs[c]):
            return
        hd[i], hd[c] = hd[c], hd[i]
        hs[i], hs[c] = hs[c], hs[i]
        i = c


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
    # the grid: cells of `c` m over the box, doubled while there would be too many
    limit_cells = max(_MIN_CELLS, _CELLS_PER_AVATAR * na)
    c = cell
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
    hd = np.empty(cap, np.float32)
    hs = np.empty(cap, np.int64)
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
        m = 0  # the heap's size
        lim = r2  # the farthest d² that can still enter
        for ring in range(rings + 1):
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
                    for t in range(start[g], start[g + 1]):
                        dx = sx[t] - vx
                        dz = sz[t] - vz
                        d2 = dx * dx + dz * dz
                        if d2 > lim:
                            continue
                        s = ss[t]
                        if m < cap:
                            # push, sifting up
                            i = m
                            m += 1
                            while i > 0:
                                p = (i - 1) // 2
                                if not _before(hd[p], hs[p], d2, s):
                                    break
                                hd[i] = hd[p]
                                hs[i] = hs[p]
                                i = p
                            hd[i] = d2
                            hs[i] = s
                            if m == cap:
                                lim = hd[0]
                        elif _before(d2, s, hd[0], hs[0]):
                            hd[0] = d2
                            hs[0] = s
                            _sift_down(hd, hs, 0, m)
                            lim = hd[0]
                    gz += step
        # heap sort: the nearest first
        for e in range(m - 1, 0, -1):
            hd[0], hd[e] = hd[e], hd[0]
            hs[0], hs[e] = hs[e], hs[0]
            _sift_down(hd, hs, 0, e)
        # the viewer itself first, also when someone stands exactly where it stands; not in its
        # own row at all when more than cap stand on its spot with lower slots
        at = m - 1
        for e in range(m):
            if hs[e] == v:
                at = e
                break
        for e in range(at, 0, -1):
            hs[e] = hs[e - 1]
        hs[0] = v
        for e in range(m):
            visible[j, e] = hs[e]
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
