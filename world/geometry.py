"""Plane geometry on ``(x, z)`` points: polygons, segments, and their tests.

Pure numpy. Points are ``(x, z)`` pairs; a polygon is an ``(n, 2)`` array (or a sequence of
pairs) whose last edge joins the last point back to the first. Segments in bulk are ``(m, 4)``
arrays of ``x1, z1, x2, z2``. The loader uses these to validate worlds, the crowd to collide.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "EPS",
    "Point",
    "as_points",
    "polygon_area",
    "polygon_edges",
    "points_in_polygon",
    "point_in_polygon",
    "point_on_boundary",
    "segments_intersect",
    "segments_cross",
    "polygon_problem",
    "is_simple_polygon",
    "distance_to_segments",
]

EPS = 1e-9
"""Tolerance of the orientation tests, in square metres."""

Point = tuple[float, float]


def as_points(points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """The points as a float64 ``(n, 2)`` array."""
    arr = np.asarray(points, dtype=np.float64)
    return arr.reshape(-1, 2)


def polygon_area(points: Sequence[Sequence[float]] | np.ndarray) -> float:
    """Signed area (shoelace); positive when the points turn from +x towards +z."""
    p = as_points(points)
    x, z = p[:, 0], p[:, 1]
    return 0.5 * float(np.dot(x, np.roll(z, -1)) - np.dot(np.roll(x, -1), z))


def polygon_edges(points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """The closed polygon's edges as an ``(n, 4)`` segment array."""
    p = as_points(points)
    return np.hstack([p, np.roll(p, -1, axis=0)])


def points_in_polygon(
    x: np.ndarray | float, z: np.ndarray | float, points: Sequence[Sequence[float]] | np.ndarray
) -> np.ndarray:
    """Even-odd test of many points against one polygon, vectorised over the points.

    Points exactly on an edge may fall either way; use :func:`point_on_boundary` when it matters.
    """
    px = np.asarray(x, dtype=np.float64)[..., None]
    pz = np.asarray(z, dtype=np.float64)[..., None]
    p = as_points(points)
    ax, az = p[:, 0], p[:, 1]
    bx, bz = np.roll(ax, -1), np.roll(az, -1)
    straddles = (az > pz) != (bz > pz)
    with np.errstate(divide="ignore", invalid="ignore"):
        cross_x = ax + (pz - az) * (bx - ax) / (bz - az)
    hits = straddles & (px < cross_x)
    return np.asarray(np.count_nonzero(hits, axis=-1) % 2 == 1)


def point_in_polygon(x: float, z: float, points: Sequence[Sequence[float]] | np.ndarray) -> bool:
    """Whether one point is inside the polygon (even-odd)."""
    return bool(points_in_polygon(x, z, points))


def distance_to_segments(x: float, z: float, segs: np.ndarray) -> np.ndarray:
    """Distance from one point to each segment of an ``(m, 4)`` array."""
    if len(segs) == 0:
        return np.zeros(0)
    a = segs[:, 0:2]
    d = segs[:, 2:4] - a
    p = np.array([x, z], dtype=np.float64)
    dd = np.einsum("ij,ij->i", d, d)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(dd > 0, np.einsum("ij,ij->i", p - a, d) / dd, 0.0)
    t = np.clip(t, 0.0, 1.0)
    closest = a + d * t[:, None]
    return np.asarray(np.hypot(closest[:, 0] - x, closest[:, 1] - z))


def point_on_boundary(
    x: float, z: float, points: Sequence[Sequence[float]] | np.ndarray, tol: float = 1e-6
) -> bool:
    """Whether the point lies on an edge of the polygon (within ``tol`` metres)."""
    return bool(np.any(distance_to_segments(x, z, polygon_edges(points)) <= tol))


def _orient(ax: float, az: float, bx: float, bz: float, cx: float, cz: float) -> float:
    return (bx - ax) * (cz - az) - (bz - az) * (cx - ax)


def _on_segment(ax: float, az: float, bx: float, bz: float, cx: float, cz: float) -> bool:
    return (
        min(ax, bx) - 1e-12 <= cx <= max(ax, bx) + 1e-12
        and min(az, bz) - 1e-12 <= cz <= max(az, bz) + 1e-12
    )


def segments_intersect(p1: Point, p2: Point, q1: Point, q2: Point) -> bool:
    """Whether the closed segments ``p1p2`` and ``q1q2`` share any point (touching counts)."""
    d1 = _orient(*q1, *q2, *p1)
    d2 = _orient(*q1, *q2, *p2)
    d3 = _orient(*p1, *p2, *q1)
    d4 = _orient(*p1, *p2, *q2)
    if ((d1 > EPS and d2 < -EPS) or (d1 < -EPS and d2 > EPS)) and (
        (d3 > EPS and d4 < -EPS) or (d3 < -EPS and d4 > EPS)
    ):
        return True
    return (
        (abs(d1) <= EPS and _on_segment(*q1, *q2, *p1))
        or (abs(d2) <= EPS and _on_segment(*q1, *q2, *p2))
        or (abs(d3) <= EPS and _on_segment(*p1, *p2, *q1))
        or (abs(d4) <= EPS and _on_segment(*p1, *p2, *q2))
    )


def segments_cross(p1: Point, p2: Point, q1: Point, q2: Point) -> bool:
    """Whether the segments cross properly: each passes strictly from one side of the other.

    Touching at an end, or lying along each other, is not crossing (adjacent zones share edges).
    """
    d1 = _orient(*q1, *q2, *p1)
    d2 = _orient(*q1, *q2, *p2)
    d3 = _orient(*p1, *p2, *q1)
    d4 = _orient(*p1, *p2, *q2)
    return ((d1 > EPS and d2 < -EPS) or (d1 < -EPS and d2 > EPS)) and (
        (d3 > EPS and d4 < -EPS) or (d3 < -EPS and d4 > EPS)
    )


def polygon_problem(points: Sequence[Sequence[float]] | np.ndarray) -> str | None:
    """Why the polygon is not simple, or ``None`` when it is.

    Simple: at least 3 points, no repeated vertex, non-zero area, and no two edges meeting except
    neighbours at their shared vertex.
    """
    p = as_points(points)
    n = len(p)
    if n < 3:
        return f"{n} point{'s' if n != 1 else ''}"
    for i in range(n):
        for j in range(i + 1, n):
            if abs(p[i, 0] - p[j, 0]) <= 1e-9 and abs(p[i, 1] - p[j, 1]) <= 1e-9:
                return f"point {j} repeats point {i}"
    pts = [(float(a), float(b)) for a, b in p]
    for i in range(n):
        a1, a2 = pts[i], pts[(i + 1) % n]
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                # neighbours share a vertex; they may only meet there (no fold back)
                shared = a2 if j == i + 1 else a1
                other_a = a1 if j == i + 1 else a2
                b1, b2 = pts[j], pts[(j + 1) % n]
                other_b = b2 if j == i + 1 else b1
                if abs(_orient(*shared, *other_a, *other_b)) <= EPS:
                    va = (other_a[0] - shared[0], other_a[1] - shared[1])
                    vb = (other_b[0] - shared[0], other_b[1] - shared[1])
                    if va[0] * vb[0] + va[1] * vb[1] > 0:
                        return f"edges {i} and {j} overlap"
                continue
            if segments_intersect(a1, a2, pts[j], pts[(j + 1) % n]):
                return f"edges {i} and {j} intersect"
    if abs(polygon_area(p)) <= 1e-9:
        return "zero area"
    return None


def is_simple_polygon(points: Sequence[Sequence[float]] | np.ndarray) -> bool:
    """Whether the polygon is simple (see :func:`polygon_problem`)."""
    return polygon_problem(points) is None
