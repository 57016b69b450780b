"""The compiled (numba) kernels of movement: the swept move of ``world/collision.py`` and the
crowd's step of ``world/crowd.py``, one call per tick for the whole crowd.

They compute what the structure-of-arrays numpy code did (the same formulas with the floating
point operations in the same order, hence the same bits), one avatar at a time instead of a few
dozen numpy calls over all of them: at tens of avatars those calls' fixed cost was the whole step.

Every kernel and every constant they read lives in this one file: numba's cache (``cache=True``)
is checked against the file of the function it loads only, and bakes the globals in, so a
kernel calling one from another file would keep running the old code after that file changed.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = [
    "CELL_KEY",
    "GOLDEN",
    "LAND",
    "MAX_SUBSTEP",
    "PORTAL",
    "SKIN",
    "WALL",
    "boxes",
    "crossings_all",
    "fill_grid",
    "first_contact",
    "separation",
    "set_intents",
    "step",
    "sweep_all",
    "sweep_point",
]

WALL = 0
PORTAL = 1
SKIN = 0.05
"""How far (m) an avatar is kept from a wall's centre line."""
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


# -- the swept move (world.collision) -----------------------------------------------------------


@numba.njit(cache=True, nogil=True, error_model="numpy")
def fill_grid(
    first: np.ndarray,
    nx: int,
    nz: int,
    x_lo: np.ndarray,
    x_hi: np.ndarray,
    z_lo: np.ndarray,
    z_hi: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The cells' lists (CSR) of :func:`world.collision.build_grid`: segment ``g`` of floor
    ``f`` goes into the inner cells ``x_lo[g]..x_hi[g] × z_lo[g]..z_hi[g]`` and into every
    border cell of ``f``."""
    cells = (len(first) - 1) * nx * nz
    start = np.zeros(cells + 1, np.int64)
    _grid_pass(first, nx, nz, x_lo, x_hi, z_lo, z_hi, start[1:], start[:0], False)
    start = np.cumsum(start)
    items = np.empty(start[-1], np.int32)
    _grid_pass(first, nx, nz, x_lo, x_hi, z_lo, z_hi, start[:-1].copy(), items, True)
    return start, items


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _grid_pass(
    first: np.ndarray,
    nx: int,
    nz: int,
    x_lo: np.ndarray,
    x_hi: np.ndarray,
    z_lo: np.ndarray,
    z_hi: np.ndarray,
    at: np.ndarray,
    items: np.ndarray,
    fill: bool,
) -> None:
    """One pass over the (segment, cell) pairs of :func:`fill_grid`: counts them into ``at``,
    or (``fill``) writes each segment at ``items[at[cell]]`` and moves that on."""
    for f in range(len(first) - 1):
        for g in range(first[f], first[f + 1]):
            for ix in range(nx):
                border_x = ix == 0 or ix == nx - 1
                inner_x = x_lo[g] <= ix <= x_hi[g]
                if not (border_x or inner_x):
                    continue
                for iz in range(nz):
                    inner = inner_x and z_lo[g] <= iz <= z_hi[g]
                    if not (border_x or inner or iz == 0 or iz == nz - 1):
                        continue
                    c = (f * nx + ix) * nz + iz
                    if fill:
                        items[at[c]] = g
                    at[c] += 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def boxes(segs: np.ndarray) -> np.ndarray:
    """The segments' bounding boxes, ``(m, 4)`` as ``lo_x, hi_x, lo_z, hi_z``."""
    out = np.empty((len(segs), 4))
    for k in range(len(segs)):
        out[k, 0] = min(segs[k, 0], segs[k, 2])
        out[k, 1] = max(segs[k, 0], segs[k, 2])
        out[k, 2] = min(segs[k, 1], segs[k, 3])
        out[k, 3] = max(segs[k, 1], segs[k, 3])
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def first_contact(
    px: float,
    pz: float,
    dx: float,
    dz: float,
    segs: np.ndarray,
    box: np.ndarray,
    cand: np.ndarray,
    c0: int,
    c1: int,
    reach: float,
) -> tuple[float, int]:
    """First contact of the move ``p → p + d``, lengthened by ``reach``, with the segments
    ``cand[c0:c1]`` (ascending indices into ``segs``): ``(t, j)`` as
    :func:`world.collision.crossings` gives for one move (of equal ``t``, the later segment)."""
    dlen = math.sqrt(dx * dx + dz * dz)
    scale = 1.0 + reach / dlen if dlen > 0 else 1.0
    qx, qz = px + dx * scale, pz + dz * scale
    lo_x, hi_x = min(px, qx) - 1e-9, max(px, qx) + 1e-9
    lo_z, hi_z = min(pz, qz) - 1e-9, max(pz, qz) + 1e-9
    sdx, sdz = dx * scale, dz * scale
    dd = sdx * sdx + sdz * sdz
    tmin, jmin = math.inf, -1
    for c in range(c0, c1):
        j = cand[c]
        if not (
            box[j, 1] >= lo_x and box[j, 0] <= hi_x and box[j, 3] >= lo_z and box[j, 2] <= hi_z
        ):
            continue
        ax, az = segs[j, 0], segs[j, 1]
        ex, ez = segs[j, 2] - ax, segs[j, 3] - az
        wx, wz = ax - px, az - pz
        denom = sdx * ez - sdz * ex
        wxd = wx * sdz - wz * sdx  # w × d: zero when the segment's start is on the move's line
        if abs(denom) > 1e-12:
            t = (wx * ez - wz * ex) / denom
            u = wxd / denom
            if not (0.0 <= t <= 1.0 and 0.0 <= u <= 1.0):
                continue
        elif abs(wxd) <= 1e-9 * math.sqrt(dd):
            # collinear: the move runs along the segment's line, and meets its nearer end
            ta = (wx * sdx + wz * sdz) / dd
            tb = ((wx + ex) * sdx + (wz + ez) * sdz) / dd
            if not (max(ta, tb) >= 0.0 and min(ta, tb) <= 1.0):
                continue
            t = max(min(ta, tb), 0.0)
        else:
            continue
        t *= scale
        if t <= tmin:
            tmin, jmin = t, j
    return tmin, jmin


@numba.njit(cache=True, nogil=True, error_model="numpy")
def sweep_point(
    px: float,
    pz: float,
    dx: float,
    dz: float,
    segs: np.ndarray,
    box: np.ndarray,
    kind: np.ndarray,
    sign: np.ndarray,
    cand: np.ndarray,
    c0: int,
    c1: int,
    iterations: int,
) -> tuple[float, float, int, float, float]:
    """:func:`world.collision.sweep` of one point against the segments ``cand[c0:c1]``:
    ``(x, z, portal, portal_x, portal_z)``, the portal's index into ``segs`` or -1."""
    if dx * dx + dz * dz <= 1e-18:
        return px, pz, -1, 0.0, 0.0
    for _ in range(iterations):
        t, j = first_contact(px, pz, dx, dz, segs, box, cand, c0, c1, SKIN)
        if j < 0:
            return px + dx, pz + dz, -1, 0.0, 0.0
        sx, sz = segs[j, 0], segs[j, 1]
        ex, ez = segs[j, 2] - sx, segs[j, 3] - sz
        ln = math.hypot(ex, ez)
        nx, nz = -ez / ln, ex / ln
        # a portal crossed the leading way is no obstacle: cross it, or walk up to it (a top
        # end runs from the ramp's left corner to its right one: its normal is the stair's axis)
        if kind[j] == PORTAL and (dx * nx + dz * nz) * sign[j] > 0:
            if t <= 1.0:
                return px, pz, j, px + dx * t, pz + dz * t
            return px + dx, pz + dz, -1, 0.0, 0.0
        # blocked: stop SKIN short of the segment, slide along it with the rest of the move
        s0 = (px - sx) * nx + (pz - sz) * nz
        dn = dx * nx + dz * nz
        dlen = math.sqrt(dx * dx + dz * dz)
        crossing = abs(dn) > 1e-12
        f = (abs(s0) - SKIN) / abs(dn) if crossing else t - SKIN / max(dlen, 1e-300)
        f = min(max(f, 0.0), 1.0)
        f = min(f, max(t - 1e-9, 0.0))
        rx, rz = dx * (1.0 - f), dz * (1.0 - f)
        px, pz = px + dx * f, pz + dz * f
        if not crossing:  # head-on into a wall's end: stop there
            break
        rn = rx * nx + rz * nz
        dx, dz = rx - rn * nx, rz - rn * nz
        if dx * dx + dz * dz <= 1e-12:
            break
    return px, pz, -1, 0.0, 0.0


@numba.njit(cache=True, nogil=True, error_model="numpy")
def crossings_all(
    p: np.ndarray, d: np.ndarray, segs: np.ndarray, reach: float
) -> tuple[np.ndarray, np.ndarray]:
    n = len(p)
    tmin = np.full(n, np.inf)
    jmin = np.full(n, -1, np.int64)
    box = boxes(segs)
    cand = np.arange(len(segs)).astype(np.int32)
    for i in range(n):
        tmin[i], jmin[i] = first_contact(
            p[i, 0], p[i, 1], d[i, 0], d[i, 1], segs, box, cand, 0, len(segs), reach
        )
    return tmin, jmin


@numba.njit(cache=True, nogil=True, error_model="numpy")
def sweep_all(
    p: np.ndarray,
    d: np.ndarray,
    segs: np.ndarray,
    kind: np.ndarray,
    sign: np.ndarray,
    iterations: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(p)
    out = np.empty((n, 2))
    portal = np.full(n, -1, np.int64)
    point = np.zeros((n, 2))
    box = boxes(segs)
    cand = np.arange(len(segs)).astype(np.int32)
    for i in range(n):
        x, z, j, jx, jz = sweep_point(
            p[i, 0], p[i, 1], d[i, 0], d[i, 1], segs, box, kind, sign, cand, 0, len(segs),
            iterations,
        )  # fmt: skip
        out[i, 0], out[i, 1], portal[i] = x, z, j
        if j >= 0:
            point[i, 0], point[i, 1] = jx, jz
    return out, portal, point


# -- the crowd's step (world.crowd) -------------------------------------------------------------


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
    """Compile (or load from the cache) every kernel for the dtypes its callers pass, so that
    no tick of a live server waits for it: two avatars on one spot walk into a wall and across
    a stair's top end."""
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
    kind = np.array([0, 1], np.int8)
    crossings_all(np.zeros((1, 2)), np.ones((1, 2)), segs, 0.0)
    sweep_all(np.zeros((1, 2)), np.ones((1, 2)), segs, kind, np.array([0, 1], np.int8), 3)
    one = np.zeros(2, np.int64)
    fill_grid(np.array([0, 2], np.int64), 3, 3, one, one, one, one)


_warm()
