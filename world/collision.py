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


def crossings(
    p: np.ndarray, d: np.ndarray, segs: np.ndarray, reach: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """First contact of each move ``p[i] → p[i] + d[i]`` with any of ``segs``.

    The move is lengthened by ``reach`` metres, so that a move ending closer than ``reach`` to a
    wall counts. A move along a segment's own line meets it at the segment's nearer end.

    Returns ``(t, j)``: the fraction of ``d`` at the first contact (up to ``1 + reach / |d|``;
    ``inf`` when none) and the segment's index (-1 when none).
    """
    n = len(p)
    tmin = np.full(n, np.inf)
    jmin = np.full(n, -1, dtype=np.int64)
    if n == 0 or len(segs) == 0:
        return tmin, jmin
    dlen = np.sqrt(np.einsum("ij,ij->i", d, d))
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(dlen > 0, 1.0 + reach / dlen, 1.0)
    q = p + d * scale[:, None]
    # broad phase: bounding boxes of the moves against those of the segments
    lo_x, hi_x = np.minimum(p[:, 0], q[:, 0]) - 1e-9, np.maximum(p[:, 0], q[:, 0]) + 1e-9
    lo_z, hi_z = np.minimum(p[:, 1], q[:, 1]) - 1e-9, np.maximum(p[:, 1], q[:, 1]) + 1e-9
    s_lo_x, s_hi_x = np.minimum(segs[:, 0], segs[:, 2]), np.maximum(segs[:, 0], segs[:, 2])
    s_lo_z, s_hi_z = np.minimum(segs[:, 1], segs[:, 3]), np.maximum(segs[:, 1], segs[:, 3])
    near = (
        (s_hi_x[None, :] >= lo_x[:, None])
        & (s_lo_x[None, :] <= hi_x[:, None])
        & (s_hi_z[None, :] >= lo_z[:, None])
        & (s_lo_z[None, :] <= hi_z[:, None])
    )
    ii, jj = np.nonzero(near)
    if len(ii) == 0:
        return tmin, jmin
    # narrow phase, pair by pair
    sc = scale[ii]
    dx, dz = d[ii, 0] * sc, d[ii, 1] * sc
    ax, az = segs[jj, 0], segs[jj, 1]
    ex, ez = segs[jj, 2] - ax, segs[jj, 3] - az
    wx, wz = ax - p[ii, 0], az - p[ii, 1]
    denom = dx * ez - dz * ex
    wxd = wx * dz - wz * dx  # w × d: zero when the segment's start is on the move's line
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (wx * ez - wz * ex) / denom
        u = wxd / denom
        hit = (np.abs(denom) > 1e-12) & (t >= 0.0) & (t <= 1.0) & (u >= 0.0) & (u <= 1.0)
        # collinear: the move runs along the segment's line
        dd = dx * dx + dz * dz
        ta = (wx * dx + wz * dz) / dd
        tb = ((wx + ex) * dx + (wz + ez) * dz) / dd
    along = (np.abs(denom) <= 1e-12) & (np.abs(wxd) <= 1e-9 * np.sqrt(dd))
    if np.any(along):
        lo, hi = np.minimum(ta, tb), np.maximum(ta, tb)
        meets = along & (hi >= 0.0) & (lo <= 1.0)
        t = np.where(meets, np.maximum(lo, 0.0), t)
        hit = hit | meets
    if not np.any(hit):
        return tmin, jmin
    ii, jj, t = ii[hit], jj[hit], t[hit] * sc[hit]
    np.minimum.at(tmin, ii, t)
    first = t == tmin[ii]
    jmin[ii[first]] = jj[first]
    return tmin, jmin


def sweep(
    p: np.ndarray, d: np.ndarray, fs: FloorSegments, *, iterations: int = 3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Move points ``p`` by ``d`` on one floor, stopping ``SKIN`` short of walls and sliding.

    Returns ``(new_p, portal, portal_point)``: the new positions (float64), the index into
    ``fs`` of the portal each point went through (-1 for none; such a point stays at its start
    and ``portal_point`` is where it crossed), for the caller to move it to the portal's floor.
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
        t, j = crossings(pl, dl, segs, SKIN)
        jj = np.maximum(j, 0)
        seg = segs[jj]
        ex, ez = seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1]
        ln = np.hypot(ex, ez)
        nx, nz = -ez / ln, ex / ln
        # a portal crossed the leading way is no obstacle: cross it, or walk up to it
        leading = (j >= 0) & (fs.kind[jj] == PORTAL)
        if np.any(leading):
            axis = _portal_axis(seg)
            ahead = (dl[:, 0] * axis[:, 0] + dl[:, 1] * axis[:, 1]) * fs.sign[jj]
            leading &= ahead > 0
        through = leading & (t <= 1.0)
        free = (j < 0) | (leading & ~through)
        p[live[free]] = pl[free] + dl[free]
        d[live[free]] = 0.0
        if np.any(through):
            it = live[through]
            portal[it] = j[through]
            portal_point[it] = pl[through] + dl[through] * t[through, None]
            d[it] = 0.0
        block = ~(free | through)
        if not np.any(block):
            break
        ib, pb, db, tb = live[block], pl[block], dl[block], t[block]
        sb = seg[block]
        nxb, nzb = nx[block], nz[block]
        s0 = (pb[:, 0] - sb[:, 0]) * nxb + (pb[:, 1] - sb[:, 1]) * nzb
        dn = db[:, 0] * nxb + db[:, 1] * nzb
        dlen = np.sqrt(np.einsum("ij,ij->i", db, db))
        crossing = np.abs(dn) > 1e-12
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.where(
                crossing, (np.abs(s0) - SKIN) / np.abs(dn), tb - SKIN / np.maximum(dlen, 1e-300)
            )
        f = np.clip(f, 0.0, 1.0)
        f = np.minimum(f, np.maximum(tb - 1e-9, 0.0))
        p[ib] = pb + db * f[:, None]
        rest = db * (1.0 - f)[:, None]
        rn = rest[:, 0] * nxb + rest[:, 1] * nzb
        slide = rest - np.stack([rn * nxb, rn * nzb], axis=1)
        slide[~crossing] = 0.0  # head-on into a wall's end: stop there
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
