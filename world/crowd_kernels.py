"""The compiled kernels of :meth:`world.crowd.Crowd.step`: one call per tick moves the crowd.

They compute what the structure-of-arrays numpy code did (same formulas, same order of the
floating point operations, hence the same bits), one avatar at a time instead of a few dozen
numpy calls over all of them: at tens of avatars those calls' fixed cost was the whole step.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from world.collision import first_contact, sweep_point

__all__ = ["CELL_KEY", "GOLDEN", "LAND", "MAX_SUBSTEP", "separation", "set_intents", "step"]

MAX_SUBSTEP = 0.25
"""Longest move (m) in one collision substep."""
LAND = 0.05
"""How far past a stair's end an avatar is put when it changes floor."""
GOLDEN = math.pi * (3.0 - math.sqrt(5.0))
CELL_KEY = 1 << 20
"""Cells per axis in separation's hash key (0.7 m cells: ~700 km, plenty)."""
# separation's cell and the neighbours ahead of it in key order (dx, dz) = (0, 0), (0, 1),
# (1, -1), (1, 0), (1, 1): each pair of adjacent cells is met once, from its first cell
_AHEAD = (0, 1, CELL_KEY - 1, CELL_KEY, CELL_KEY + 1)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def separation(
    pos: np.ndarray, floor: np.ndarray, idx: np.ndarray, dt: float, r: float, speed: float
) -> np.ndarray:
    """How far (``(len(idx), 2)`` metres) each avatar of ``idx`` eases away in ``dt`` seconds
    from the others of its floor closer than ``r``: each pair pushes both apart by half its
    overlap, summed per avatar, capped at ``speed × dt``; coincident avatars part in a direction
    drawn from their two ids (:meth:`world.crowd.Crowd.separation`).

    Positions are hashed into cells of ``r`` (floor included), sorted by key; each occupied
    cell meets itself and four of its neighbours, the pairs taken in the order the numpy code
    took them (offset by offset, cell by cell), so that the sums are the same.
    """
    n = len(idx)
    out = np.zeros((n, 2))
    if n < 2 or r <= 0:
        return out
    px = np.empty(n)
    pz = np.empty(n)
    key = np.empty(n, np.int64)
    half = CELL_KEY // 2
    for a in range(n):
        s = idx[a]
        px[a] = np.float64(pos[s, 0])
        pz[a] = np.float64(pos[s, 1])
        cx = np.int64(math.floor(px[a] / r)) + half
        cz = np.int64(math.floor(pz[a] / r)) + half
        key[a] = (np.int64(floor[s]) * CELL_KEY + cx) * CELL_KEY + cz
    order = _stable_argsort(key)
    # the occupied cells: their keys, first place in ``order`` and number of avatars; the
    # positions in that order, so that a cell's avatars sit side by side
    ukeys = np.empty(n, np.int64)
    starts = np.empty(n, np.int64)
    counts = np.zeros(n, np.int64)
    sx = np.empty(n)
    sz = np.empty(n)
    u = -1
    for k in range(n):
        kk = key[order[k]]
        sx[k] = px[order[k]]
        sz[k] = pz[order[k]]
        if u < 0 or ukeys[u] != kk:
            u += 1
            ukeys[u] = kk
            starts[u] = k
        counts[u] += 1
    cells = u + 1
    # pushes summed apart for the first and second avatar of each pair (in sorted places), as
    # two bincounts did
    plus = np.zeros((n, 2))
    minus = np.zeros((n, 2))
    rr = r * r
    for o in range(5):
        ahead = _AHEAD[o]
        b = 0
        for a in range(cells):
            want = ukeys[a] + ahead
            while b < cells and ukeys[b] < want:
                b += 1
            if b == cells:
                break
            if ukeys[b] != want:
                continue
            for i in range(starts[a], starts[a] + counts[a]):
                for j in range(i + 1 if o == 0 else starts[b], starts[b] + counts[b]):
                    dx = sx[i] - sx[j]
                    dz = sz[i] - sz[j]
                    d2 = dx * dx + dz * dz
                    if not d2 < rr:
                        continue
                    dist = math.sqrt(d2)
                    if dist < 1e-6:
                        ia, ib = np.float64(idx[order[i]]), np.float64(idx[order[j]])
                        angle = GOLDEN * min(ia, ib) + max(ia, ib)
                        sign = 1.0 if ia < ib else -1.0
                        dx = math.sin(angle) * sign
                        dz = math.cos(angle) * sign
                        dist = 1.0
                    scale = (r - dist) / 2 / max(dist, 1e-6)
                    push_x, push_z = dx * scale, dz * scale
                    plus[i, 0] += push_x
                    plus[i, 1] += push_z
                    minus[j, 0] += push_x
                    minus[j, 1] += push_z
    cap = speed * dt
    for k in range(n):
        ox = plus[k, 0] - minus[k, 0]
        oz = plus[k, 1] - minus[k, 1]
        length = math.sqrt(ox * ox + oz * oz)
        if length > cap:
            ox *= cap / length
            oz *= cap / length
        out[order[k], 0] = ox
        out[order[k], 1] = oz
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _stable_argsort(key: np.ndarray) -> np.ndarray:
    """``np.argsort(key, kind="stable")``: a quicksort, then each run of equal keys put in
    ascending order (runs are a cell's few avatars)."""
    order = np.argsort(key)
    n = len(order)
    k = 0
    while k < n:
        e = k + 1
        while e < n and key[order[e]] == key[order[k]]:
            e += 1
        for i in range(k + 1, e):
            v = order[i]
            j = i
            while j > k and order[j - 1] > v:
                order[j] = order[j - 1]
                j -= 1
            order[j] = v
        k = e
    return order


@numba.njit(cache=True, nogil=True, error_model="numpy")
def step(
    active: np.ndarray,
    pos: np.ndarray,
    floor: np.ndarray,
    intent: np.ndarray,
    dt: float,
    max_speed: float,
    personal_space: float,
    separation_speed: float,
    segs: np.ndarray,
    box: np.ndarray,
    kind: np.ndarray,
    stair: np.ndarray,
    target: np.ndarray,
    sign: np.ndarray,
    g_origin_x: float,
    g_origin_z: float,
    g_inv: float,
    g_nx: int,
    g_nz: int,
    g_start: np.ndarray,
    g_items: np.ndarray,
    st_start: np.ndarray,
    st_axis: np.ndarray,
    st_len: np.ndarray,
    st_half: np.ndarray,
    st_upper: np.ndarray,
) -> None:
    """:meth:`world.crowd.Crowd.step` for ``0 < dt <= MAX_DT``, in place on ``pos`` and ``floor``.

    Each active avatar's move is ``max_speed × dt × intent`` plus :func:`separation`, no longer
    than ``max_speed × dt``; every mover takes the same number of substeps (enough for the
    longest move to make substeps of at most ``MAX_SUBSTEP``). A substep sweeps against the
    segments the grid lists for the cell it starts in (``world.collision.SegmentGrid``: all the
    sweep could meet), keeps the float32 result only if that straight move crosses none of them,
    and a portal crossed puts the avatar past the stair's end on the other floor.
    """
    m = 0
    for s in range(len(active)):
        if active[s]:
            m += 1
    if m == 0:
        return
    idx = np.empty(m, np.int64)
    m = 0
    for s in range(len(active)):
        if active[s]:
            idx[m] = s
            m += 1
    limit = max_speed * dt
    vel = separation(pos, floor, idx, dt, personal_space, separation_speed)
    longest2 = 0.0
    movers = 0
    for a in range(m):
        s = idx[a]
        vx = np.float64(intent[s, 0]) * limit + vel[a, 0]
        vz = np.float64(intent[s, 1]) * limit + vel[a, 1]
        length = math.sqrt(vx * vx + vz * vz)
        if length > limit:
            vx *= limit / length
            vz *= limit / length
        vel[a, 0] = vx
        vel[a, 1] = vz
        v2 = vx * vx + vz * vz
        if v2 > 1e-12:
            idx[movers] = s
            vel[movers, 0] = vx
            vel[movers, 1] = vz
            movers += 1
            longest2 = max(longest2, v2)
    if movers == 0:
        return
    substeps = max(1, math.ceil(math.sqrt(longest2) / MAX_SUBSTEP))
    plane = g_nx * g_nz
    for a in range(movers):
        s = idx[a]
        dx = vel[a, 0] / substeps
        dz = vel[a, 1] / substeps
        for _ in range(substeps):
            old_x, old_z = pos[s, 0], pos[s, 1]
            ox, oz = np.float64(old_x), np.float64(old_z)
            ix = min(max(math.floor((ox - g_origin_x) * g_inv), 0), g_nx - 1)
            iz = min(max(math.floor((oz - g_origin_z) * g_inv), 0), g_nz - 1)
            c = np.int64(floor[s]) * plane + ix * g_nz + iz
            c0, c1 = g_start[c], g_start[c + 1]
            x, z, portal, at_x, at_z = sweep_point(
                ox, oz, dx, dz, segs, box, kind, sign, g_items, c0, c1, 3
            )
            new_x, new_z = np.float32(x), np.float32(z)
            # the guarantee: the stored move crosses no wall, whatever rounding did
            if c1 > c0:
                _, hit = first_contact(
                    ox,
                    oz,
                    np.float64(new_x - old_x),
                    np.float64(new_z - old_z),
                    segs,
                    box,
                    g_items,
                    c0,
                    c1,
                    0.0,
                )
                if hit >= 0:
                    new_x, new_z = old_x, old_z
            pos[s, 0] = new_x
            pos[s, 1] = new_z
            if portal >= 0:
                _change_floor(
                    pos, floor, s, stair[portal], target[portal], at_x, at_z,
                    st_start, st_axis, st_len, st_half, st_upper,
                )  # fmt: skip


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _change_floor(
    pos: np.ndarray,
    floor: np.ndarray,
    s: int,
    k: int,
    target: int,
    at_x: float,
    at_z: float,
    st_start: np.ndarray,
    st_axis: np.ndarray,
    st_len: np.ndarray,
    st_half: np.ndarray,
    st_upper: np.ndarray,
) -> None:
    """Put avatar ``s``, who crossed the top end of stair ``k`` at ``at``, on floor ``target``:
    ``LAND`` past the end on the side of that floor, across the stair where it crossed (kept
    ``LAND`` inside its sides)."""
    ax, az = st_axis[k, 0], st_axis[k, 1]
    sx, sz = st_start[k, 0], st_start[k, 1]
    rx, rz = at_x - sx, at_z - sz
    lat = rx * -az + rz * ax
    lat = min(max(lat, -st_half[k] + LAND), st_half[k] - LAND)
    along = st_len[k] + LAND if target == st_upper[k] else st_len[k] - LAND
    pos[s, 0] = np.float32(sx + ax * along + -az * lat)
    pos[s, 1] = np.float32(sz + az * along + ax * lat)
    floor[s] = target


@numba.njit(cache=True, nogil=True, error_model="numpy")
def set_intents(
    intent: np.ndarray,
    yaw: np.ndarray,
    slots: np.ndarray,
    mx: np.ndarray,
    mz: np.ndarray,
    turn: np.ndarray,
) -> None:
    """:meth:`world.crowd.Crowd.set_intents`: per slot, the move clipped to length 1 (NaN/inf
    as 0), and the yaw folded into ``[-π, π)`` unless it is not finite."""
    for k in range(len(slots)):
        s = slots[k]
        x = mx[k] if math.isfinite(mx[k]) else 0.0
        z = mz[k] if math.isfinite(mz[k]) else 0.0
        n = math.hypot(x, z)
        if n > 1.0:
            x /= n
            z /= n
        intent[s, 0] = x
        intent[s, 1] = z
        if math.isfinite(turn[k]):
            yaw[s] = (turn[k] + math.pi) % (2 * math.pi) - math.pi


def _warm() -> None:
    """Compile (or load from the cache) the kernels for the dtypes :class:`world.crowd.Crowd`
    passes: two avatars on one spot walk into a wall and across a stair's top end."""
    active = np.ones(2, np.bool_)
    pos = np.zeros((2, 2), np.float32)
    floor = np.zeros(2, np.int16)
    intent = np.ones((2, 2), np.float32)
    segs = np.array([[0.0, 0.1, 1.0, 0.1], [0.1, -1.0, 0.1, 1.0]])
    st2 = np.zeros((1, 2))
    st1 = np.ones(1)
    step(
        active, pos, floor, intent, 0.1, 3.0, 0.7, 1.5,
        segs, np.zeros((2, 4)), np.array([0, 1], np.int8), np.array([-1, 0], np.int16),
        np.array([-1, 0], np.int16), np.array([0, 1], np.int8),
        0.0, 0.0, 1.0, 1, 1, np.array([0, 2], np.int64), np.arange(2, dtype=np.int32),
        st2, st2, st1, st1, np.zeros(1, np.int16),
    )  # fmt: skip
    separation(pos, floor, np.arange(2, dtype=np.int64), 0.05, 0.7, 1.5)
    set_intents(intent, np.zeros(2, np.float32), np.arange(2, dtype=np.intp), *np.ones((3, 2)))


_warm()
