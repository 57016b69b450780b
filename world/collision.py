"""Collision segments per floor, and the vectorised swept-point move against them.

Each floor's blocking segments are its outline edges, its walls, the footprints of solid decor and
the sides of its stairs. A stair's top end is a *portal* on both of its floors: crossing it towards
the other floor moves the avatar there, crossing it the other way is blocked like a wall. Walls
lying along a top end are opened over the stair's width (``docs/world-format.md``, "Stairs").

The move is exact for a point: a move from ``p`` to ``p + d`` is cut at its first crossing of any
segment, backed off so that the avatar stays ``SKIN`` metres (perpendicular) on its side, and the
rest of the move slides along the wall. A later check rejects any stored move that still crosses a
segment, so no sequence of moves passes through a wall, whatever the floating point does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from world.geometry import polygon_edges
from world.model import World

__all__ = ["WALL", "PORTAL", "SKIN", "FloorSegments", "build_segments", "sweep", "crossings"]

WALL = 0
PORTAL = 1
SKIN = 0.05
"""How far (m) an avatar is kept from a wall's centre line."""

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


def crossings(p: np.ndarray, d: np.ndarray, segs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First crossing of each move ``p[i] → p[i] + d[i]`` with any of ``segs``.

    Returns ``(t, j)``: the fraction of the move at the first crossing (``inf`` when none) and the
    segment's index (-1 when none). Moves parallel to a segment never cross it.
    """
    n = len(p)
    if n == 0 or len(segs) == 0:
        return np.full(n, np.inf), np.full(n, -1, dtype=np.int64)
    ax, az = segs[:, 0], segs[:, 1]
    ex, ez = segs[:, 2] - ax, segs[:, 3] - az
    dx, dz = d[:, 0:1], d[:, 1:2]
    wx, wz = ax - p[:, 0:1], az - p[:, 1:2]
    denom = dx * ez - dz * ex
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (wx * ez - wz * ex) / denom
        u = (wx * dz - wz * dx) / denom
    hit = (np.abs(denom) > 1e-15) & (t >= 0.0) & (t <= 1.0) & (u >= 0.0) & (u <= 1.0)
    t = np.where(hit, t, np.inf)
    j = np.argmin(t, axis=1)
    tmin = t[np.arange(n), j]
    j = np.where(np.isfinite(tmin), j, -1)
    return tmin, j


def sweep(
    p: np.ndarray, d: np.ndarray, fs: FloorSegments, *, iterations: int = 3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Move points ``p`` by ``d`` on one floor, stopping at walls and sliding along them.

    Returns ``(new_p, portal, portal_point)``: the new positions (float64), the index into
    ``fs`` of the portal each point went through (-1 for none; such a point stops at the portal,
    at ``portal_point``), for the caller to move it to the portal's floor.
    """
    p = np.array(p, dtype=np.float64)
    d = np.array(d, dtype=np.float64)
    n = len(p)
    portal = np.full(n, -1, dtype=np.int64)
    portal_point = np.zeros((n, 2), dtype=np.float64)
    live = np.flatnonzero(np.einsum("ij,ij->i", d, d) > 1e-18)
    segs = fs.segs
    for _ in range(iterations):
        if len(live) == 0:
            break
        pl, dl = p[live], d[live]
        t, j = crossings(pl, dl, segs)
        free = j < 0
        p[live[free]] = pl[free] + dl[free]
        d[live[free]] = 0.0
        hit = ~free
        if not np.any(hit):
            break
        idx = live[hit]
        jh = j[hit]
        th = t[hit]
        ph, dh = pl[hit], dl[hit]
        seg = segs[jh]
        ex, ez = seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1]
        ln = np.hypot(ex, ez)
        nx, nz = -ez / ln, ex / ln
        # portals crossed the leading way
        is_portal = fs.kind[jh] == PORTAL
        if np.any(is_portal):
            st = fs.sign[jh]
            k_axis = _portal_axis(seg)
            moving = (dh[:, 0] * k_axis[:, 0] + dh[:, 1] * k_axis[:, 1]) * st
            through = is_portal & (moving > 0)
            if np.any(through):
                portal[idx[through]] = jh[through]
                portal_point[idx[through]] = ph[through] + dh[through] * th[through, None]
                p[idx[through]] = ph[through]
                d[idx[through]] = 0.0
        else:
            through = np.zeros(len(idx), dtype=bool)
        block = ~through
        if not np.any(block):
            live = np.zeros(0, dtype=np.int64)
            continue
        ib, pb, db, tb = idx[block], ph[block], dh[block], th[block]
        nxb, nzb = nx[block], nz[block]
        s0 = (pb[:, 0] - seg[block, 0]) * nxb + (pb[:, 1] - seg[block, 1]) * nzb
        dn = db[:, 0] * nxb + db[:, 1] * nzb
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.where(np.abs(dn) > 1e-15, (np.abs(s0) - SKIN) / np.abs(dn), 0.0)
        f = np.clip(f, 0.0, np.maximum(tb - 1e-9, 0.0))
        p[ib] = pb + db * f[:, None]
        rest = db * (1.0 - f)[:, None]
        rn = rest[:, 0] * nxb + rest[:, 1] * nzb
        slide = rest - np.stack([rn * nxb, rn * nzb], axis=1)
        d[ib] = slide
        live = ib[np.einsum("ij,ij->i", slide, slide) > 1e-12]
    return p, portal, portal_point


def _portal_axis(seg: np.ndarray) -> np.ndarray:
    """The unit normal of portal segments, oriented along their stair's axis.

    A top end runs from the ramp's left corner to its right corner (``Stair.corners``), so its
    direction ``(ex, ez)`` turned to ``(-ez, ex)`` is the stair's axis.
    """
    ex, ez = seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1]
    ln = np.hypot(ex, ez)
    return np.stack([-ez / ln, ex / ln], axis=1)
