"""Collision segments per floor, and the swept-point move against them.

Each floor's blocking segments are its outline edges, its walls, the footprints of solid decor and
the sides of its stairs. A stair's top end is a *portal* on both of its floors: crossing it towards
the other floor moves the avatar there, crossing it the other way is blocked like a wall. Walls
lying along a top end are opened over the stair's width (``docs/world-format.md``, "Stairs").

The move is exact for a point: a move from ``p`` to ``p + d`` is cut at its first crossing of any
segment, backed off so that the avatar stays ``SKIN`` metres (perpendicular) on its side, and the
rest of the move slides along the wall. A later check rejects any stored move that still crosses a
segment, so no sequence of moves passes through a wall, whatever the floating point does.

The move is compiled (``world/move_kernels.py``, numba): one point at a time, over the segments a
:class:`SegmentGrid` cell lists (the crowd's step) or over all of them (:func:`sweep`,
:func:`crossings`). ``WALL``, ``PORTAL`` and ``SKIN`` are defined there, next to the kernels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from world.geometry import polygon_edges
from world.model import World
from world.move_kernels import PORTAL, SKIN, WALL, fill_grid
from world.move_kernels import crossings_all as _crossings
from world.move_kernels import sweep_all as _sweep

__all__ = [
    "WALL",
    "PORTAL",
    "SKIN",
    "FloorSegments",
    "SegmentGrid",
    "build_grid",
    "build_segments",
    "crossings",
    "sweep",
]


_EXTEND = 1e-3  # walls are lengthened by this at both ends so that joints have no pinholes
_COLLINEAR = 1e-6


@dataclass(slots=True)
class FloorSegments:
    """The segments of one floor: ``segs`` ``(m, 4)`` as ``x1, z1, x2, z2``.

    ``kind`` is WALL or PORTAL; for a portal, ``stair`` is the stair's index and ``target`` the
    floor it leads to, and ``sign`` is +1 when crossing it along the stair's axis (start → end)
    leads there, -1 when crossing against the axis does.
    """

    segs: np.ndarray
    kind: np.ndarray
    stair: np.ndarray
    target: np.ndarray
    sign: np.ndarray

    @property
    def walls(self) -> np.ndarray:
        """Only the blocking segments."""
        return self.segs[self.kind == WALL]


def _cut(
    seg: tuple[float, float, float, float], hole: tuple[float, float, float, float]
) -> list[tuple[float, float, float, float]]:
    """``seg`` minus the part of it covered by the collinear segment ``hole``."""
    ax, az, bx, bz = seg
    ex, ez = bx - ax, bz - az
    ll = ex * ex + ez * ez
    if ll <= 0:
        return [seg]
    n = np.sqrt(ll)
    px, pz, qx, qz = hole
    dp = abs((px - ax) * ez - (pz - az) * ex) / n
    dq = abs((qx - ax) * ez - (qz - az) * ex) / n
    if dp > _COLLINEAR or dq > _COLLINEAR:
        return [seg]
    tp = ((px - ax) * ex + (pz - az) * ez) / ll
    tq = ((qx - ax) * ex + (qz - az) * ez) / ll
    lo, hi = min(tp, tq), max(tp, tq)
    if hi <= 0 or lo >= 1:
        return [seg]
    out = []
    if lo > 1e-9:
        out.append((ax, az, ax + ex * lo, az + ez * lo))
    if hi < 1 - 1e-9:
        out.append((ax + ex * hi, az + ez * hi, bx, bz))
    return out


def _extend(seg: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    ax, az, bx, bz = seg
    ex, ez = bx - ax, bz - az
    n = float(np.hypot(ex, ez))
    if n <= 0:
        return seg
    ux, uz = ex / n * _EXTEND, ez / n * _EXTEND
    return (ax - ux, az - uz, bx + ux, bz + uz)


def build_segments(world: World) -> list[FloorSegments]:
    """The collision segments of every floor of ``world``, indexed like ``world.floors``."""
    walls: list[list[tuple[float, float, float, float]]] = [[] for _ in world.floors]
    for floor in world.floors:
        walls[floor.index].extend(tuple(map(float, e)) for e in polygon_edges(floor.outline))  # type: ignore[misc]
    for wall in world.walls:
        pts = wall.points
        walls[wall.floor].extend(
            (pts[i][0], pts[i][1], pts[i + 1][0], pts[i + 1][1]) for i in range(len(pts) - 1)
        )
    for item in world.decor:
        if item.solid:
            fp = item.footprint()
            walls[item.floor].extend(
                (fp[i][0], fp[i][1], fp[(i + 1) % 4][0], fp[(i + 1) % 4][1]) for i in range(4)
            )
    # open the top ends
    for stair in world.stairs:
        c = stair.corners()
        top = (c[1][0], c[1][1], c[2][0], c[2][1])
        for f in (stair.lower, stair.upper):
            walls[f] = [piece for seg in walls[f] for piece in _cut(seg, top)]
    out: list[FloorSegments] = []
    for f in range(len(world.floors)):
        segs = [_extend(s) for s in walls[f] if s[0] != s[2] or s[1] != s[3]]
        kind = [WALL] * len(segs)
        stair_i = [-1] * len(segs)
        target = [-1] * len(segs)
        sign = [0] * len(segs)
        for k, stair in enumerate(world.stairs):
            bl, tl, tr, br = stair.corners()
            sides = [(bl[0], bl[1], tl[0], tl[1]), (br[0], br[1], tr[0], tr[1])]
            top = (tl[0], tl[1], tr[0], tr[1])
            if f == stair.lower:
                extra = sides
                portal_target, portal_sign = stair.upper, 1
            elif f == stair.upper:
                extra = [*sides, (bl[0], bl[1], br[0], br[1])]  # railing round the stairwell
                portal_target, portal_sign = stair.lower, -1
            else:
                continue
            for s in extra:
                segs.append(_extend(s))
                kind.append(WALL)
                stair_i.append(-1)
                target.append(-1)
                sign.append(0)
            segs.append(top)
            kind.append(PORTAL)
            stair_i.append(k)
            target.append(portal_target)
            sign.append(portal_sign)
        out.append(
            FloorSegments(
                segs=np.asarray(segs, dtype=np.float64).reshape(-1, 4),
                kind=np.asarray(kind, dtype=np.int8),
                stair=np.asarray(stair_i, dtype=np.int16),
                target=np.asarray(target, dtype=np.int16),
                sign=np.asarray(sign, dtype=np.int8),
            )
        )
    return out


@dataclass(slots=True)
class SegmentGrid:
    """A broad phase over the segments of every floor: which of them a short move can touch.

    The plane is cut into ``nx × nz`` square cells of ``1 / inv`` metres from ``origin`` (the
    same cells on every floor). Cell ``c`` of floor ``f`` (``c = f · nx · nz + ix · nz + iz``)
    lists in ``items[start[c]:start[c + 1]]`` the indices (into the concatenation of the floors'
    segments, ascending) of every segment whose bounding box comes within ``reach`` of the cell
    on both axes: every segment a move starting in the cell and staying within ``reach`` of its
    start could meet. The border cells, where every point off the grid lands, list all of the
    floor's segments. Most cells of a city hall list none.
    """

    origin: tuple[float, float]
    inv: float
    nx: int
    nz: int
    start: np.ndarray  # int64 (floors · nx · nz + 1,)
    items: np.ndarray  # int32


def build_grid(segments: list[FloorSegments], reach: float, cell: float) -> SegmentGrid:
    """The :class:`SegmentGrid` of ``segments`` (as :func:`build_segments` gives them) for moves
    that stay within ``reach`` metres of their start, with cells of at least ``cell`` metres
    (coarser for a world over 512 cells across). ``cell=inf`` gives one cell per floor that
    lists every segment: no broad phase at all."""
    counts = [len(fs.segs) for fs in segments]
    allsegs = np.concatenate([fs.segs for fs in segments]) if sum(counts) else np.zeros((0, 4))
    first = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    if not math.isfinite(cell) or len(allsegs) == 0:
        start = first.copy()
        items = np.arange(len(allsegs), dtype=np.int32)
        return SegmentGrid((0.0, 0.0), 0.0, 1, 1, start, items)
    lo = np.minimum(allsegs[:, :2], allsegs[:, 2:]).min(axis=0)
    hi = np.maximum(allsegs[:, :2], allsegs[:, 2:]).max(axis=0)
    cell = max(cell, float((hi - lo).max()) / 512)
    origin = lo - cell  # one border cell below
    nx, nz = (np.ceil((hi - origin) / cell).astype(np.int64) + 2).tolist()
    s_lo = np.minimum(allsegs[:, :2], allsegs[:, 2:])
    s_hi = np.maximum(allsegs[:, :2], allsegs[:, 2:])
    # the cells [x0, x0 + cell] with x0 - reach <= s_hi and x0 + cell + reach >= s_lo, per axis
    ranges = []
    for axis, n in ((0, nx), (1, nz)):
        x0 = origin[axis] + cell * np.arange(n)
        a = np.searchsorted(x0, s_lo[:, axis] - reach - cell, "left")
        b = np.searchsorted(x0, s_hi[:, axis] + reach, "right") - 1
        ranges += [a, b]
    start, items = fill_grid(first, nx, nz, *(np.asarray(r, np.int64) for r in ranges))
    return SegmentGrid((float(origin[0]), float(origin[1])), 1.0 / cell, nx, nz, start, items)


def _moves(p: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.ascontiguousarray(p, dtype=np.float64).reshape(-1, 2)
    d = np.ascontiguousarray(d, dtype=np.float64).reshape(-1, 2)
    return p, d


def crossings(
    p: np.ndarray, d: np.ndarray, segs: np.ndarray, reach: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """First contact of each move ``p[i] → p[i] + d[i]`` with any of ``segs``.

    The move is lengthened by ``reach`` metres, so that a move ending closer than ``reach`` to a
    wall counts. A move along a segment's own line meets it at the segment's nearer end.

    Returns ``(t, j)``: the fraction of ``d`` at the first contact (up to ``1 + reach / |d|``;
    ``inf`` when none) and the segment's index (-1 when none).
    """
    p, d = _moves(p, d)
    segs = np.ascontiguousarray(segs, dtype=np.float64).reshape(-1, 4)
    return _crossings(p, d, segs, float(reach))


def sweep(
    p: np.ndarray, d: np.ndarray, fs: FloorSegments, *, iterations: int = 3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Move points ``p`` by ``d`` on one floor, stopping ``SKIN`` short of walls and sliding.

    Returns ``(new_p, portal, portal_point)``: the new positions (float64), the index into
    ``fs`` of the portal each point went through (-1 for none; such a point stays at its start
    and ``portal_point`` is where it crossed), for the caller to move it to the portal's floor.
    """
    p, d = _moves(p, d)
    return _sweep(p, d, fs.segs, fs.kind, fs.sign, int(iterations))
