"""The avatars of one instance as structure-of-arrays numpy state, and their movement.

Server-authoritative: clients send an intent (a direction with a length ≤ 1); :meth:`Crowd.step`
turns intents into motion for every active avatar at once, with a speed clamp, collision against
the walls of the avatar's floor (``world/collision.py``) and stairs between floors. Slots are the
avatar ids the server hands out; inactive slots keep their last values and are ignored.
"""

from __future__ import annotations

import math

import numpy as np

from world.collision import SKIN, FloorSegments, build_segments, crossings, sweep
from world.geometry import points_in_polygon
from world.model import World

__all__ = [
    "Crowd",
    "MAX_SPEED",
    "MAX_SUBSTEP",
    "MAX_DT",
    "SPAWN_SPREAD",
    "PERSONAL_SPACE",
    "SEPARATION_SPEED",
]

MAX_SPEED = 3.0  # m/s at full intent; the web client predicts with the same number

MAX_SUBSTEP = 0.25
"""Longest move (m) in one collision substep."""
MAX_DT = 1.0
"""Longest time (s) one ``step`` simulates; a stalled tick does not fling anyone across the hall."""
SPAWN_SPREAD = 1.5
"""Radius (m) of the disc around a spawn point where arrivals are spread."""
PERSONAL_SPACE = 0.7
"""Distance (m) between two avatars' centres below which they ease apart (bodies are 0.56 m wide)."""
SEPARATION_SPEED = 1.5
"""Fastest (m/s) that easing apart moves an avatar: soft, slower than a walk into someone."""
_CELL_KEY = 1 << 20  # cells per axis in separation's hash key (0.7 m cells: ~700 km, plenty)
# separation's cell and the neighbours ahead of it in key order (dx, dz) = (0, 0), (0, 1),
# (1, -1), (1, 0), (1, 1): each pair of adjacent cells is met once, from its first cell
_SEP_AHEAD = np.array([0, 1, _CELL_KEY - 1, _CELL_KEY, _CELL_KEY + 1], dtype=np.int64)
_LAND = 0.05  # how far past a stair's end an avatar is put when it changes floor
_CLEAR_CELL = 0.5  # m: the clear raster's cell (coarser for a world over 512 m across)
# A substep's move, lengthened by the sweep's SKIN, stays within this of its start on each axis,
# with room for the float32 rounding of the stored position (micrometres on a city hall's floor)
_CLEAR_REACH = MAX_SUBSTEP + SKIN + 0.01
# The raster's lookup costs about a dozen numpy calls: it pays from this many walkers on (at 50
# it costs more than the per-avatar work it saves; callgrind, bench.tick --instance)
_CLEAR_MIN = 100
_GOLDEN = math.pi * (3.0 - math.sqrt(5.0))


class Crowd:
    """Positions, floors, yaws and intents of up to ``capacity`` avatars in ``world``.

    Attributes:
        capacity: number of slots.
        active: bool ``(capacity,)``, whether a slot holds an avatar.
        pos: float32 ``(capacity, 2)``, ``x, z`` in metres.
        floor: int16 ``(capacity,)``, index into ``world.floors`` (the lower floor on a stair).
        yaw: float32 ``(capacity,)``, radians, ``atan2(dx, dz)``.
        intent: float32 ``(capacity, 2)``, movement intent in world axes, length ≤ 1.
    """

    def __init__(
        self,
        world: World,
        capacity: int,
        *,
        max_speed: float = MAX_SPEED,
        personal_space: float = PERSONAL_SPACE,
        separation_speed: float = SEPARATION_SPEED,
    ) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        if not world.spawns:
            raise ValueError(f"world {world.id} has no spawn point")
        self.world = world
        self.capacity = capacity
        self.max_speed = float(max_speed)
        self.personal_space = float(personal_space)
        self.separation_speed = float(separation_speed)
        self.active = np.zeros(capacity, dtype=bool)
        self.pos = np.zeros((capacity, 2), dtype=np.float32)
        self.floor = np.zeros(capacity, dtype=np.int16)
        self.yaw = np.zeros(capacity, dtype=np.float32)
        self.intent = np.zeros((capacity, 2), dtype=np.float32)
        self._segments: list[FloorSegments] = build_segments(world)
        self._elevation = np.array([f.elevation for f in world.floors], dtype=np.float64)
        self._next_spawn = 0
        self._arrivals = [0] * len(world.spawns)
        st = world.stairs
        self._st_lower = np.array([s.lower for s in st], dtype=np.int16)
        self._st_upper = np.array([s.upper for s in st], dtype=np.int16)
        self._st_start = np.array([s.start for s in st], dtype=np.float64).reshape(-1, 2)
        self._st_axis = np.array([s.axis for s in st], dtype=np.float64).reshape(-1, 2)
        self._st_len = np.array([s.length for s in st], dtype=np.float64)
        self._st_half = np.array([s.width / 2 for s in st], dtype=np.float64)
        self._build_clear()

    def _build_clear(self) -> None:
        """The clear raster: per floor, the cells from which no substep can touch a segment.

        A cell is clear when no segment's bounding box comes within ``_CLEAR_REACH`` of it on
        either axis. The sweep's broad phase then finds no pair for a move that starts there,
        nor does the check of the stored move, so its result is exactly ``p + d``: the substep
        takes it without calling them (most walkers, most ticks). The raster has a border of
        cells that are never clear, where every point off it lands.
        """
        segs = [fs.segs for fs in self._segments if len(fs.segs)]
        # a substep's move is then always over 1e-9 m, which the sweep moves (it leaves shorter
        # ones in place): avatars walk a few m/s, this is for a test's absurd max_speed
        if not segs or self.max_speed * MAX_DT >= 100.0:
            self._clear = None
            return
        allsegs = np.concatenate(segs)
        lo = np.minimum(allsegs[:, :2], allsegs[:, 2:]).min(axis=0)
        hi = np.maximum(allsegs[:, :2], allsegs[:, 2:]).max(axis=0)
        cell = max(_CLEAR_CELL, float((hi - lo).max()) / 1024)
        origin = lo - cell  # one border cell below
        nx, nz = (np.ceil((hi - origin) / cell).astype(np.int64) + 2).tolist()
        clear = np.zeros((len(self._segments), nx, nz), dtype=bool)
        r = _CLEAR_REACH
        x0 = origin[0] + cell * np.arange(nx)
        z0 = origin[1] + cell * np.arange(nz)
        for f, fs in enumerate(self._segments):
            s = fs.segs
            s_lo = np.minimum(s[:, :2], s[:, 2:])
            s_hi = np.maximum(s[:, :2], s[:, 2:])
            # (cells, segments): the segment's box overlaps the cell grown by r on that axis
            ox = (s_hi[None, :, 0] >= x0[:, None] - r) & (
                s_lo[None, :, 0] <= x0[:, None] + cell + r
            )
            oz = (s_hi[None, :, 1] >= z0[:, None] - r) & (
                s_lo[None, :, 1] <= z0[:, None] + cell + r
            )
            blocked = ox.astype(np.float32) @ oz.T.astype(np.float32) > 0
            clear[f] = ~blocked
        clear[:, [0, -1], :] = False
        clear[:, :, [0, -1]] = False
        self._clear = clear.ravel()
        self._clear_origin = origin
        self._clear_inv = 1.0 / cell
        self._clear_dims = np.array([nz, 1], dtype=np.intp)
        self._clear_plane = nx * nz
        self._clear_max = np.array([nx - 1, nz - 1], dtype=np.intp)

    # -- avatars in and out ------------------------------------------------------------------

    def spawn(self, slot: int, spawn_index: int | None = None) -> None:
        """Activate ``slot`` at a spawn point (round robin unless ``spawn_index`` is given).

        Deterministic jitter keeps arrivals apart: the n-th arrival at a spawn point stands at
        the n-th point of a golden-angle spiral (256 points within ``SPAWN_SPREAD`` metres),
        moved there with collision so that it never lands beyond a wall.
        """
        spawns = self.world.spawns
        if spawn_index is None:
            spawn_index = self._next_spawn % len(spawns)
            self._next_spawn += 1
        spawn_index %= len(spawns)
        sp = spawns[spawn_index]
        k = self._arrivals[spawn_index] % 256
        self._arrivals[spawn_index] += 1
        r = SPAWN_SPREAD * math.sqrt((k + 0.5) / 256)
        a = k * _GOLDEN
        jitter = np.array([[r * math.sin(a), r * math.cos(a)]])
        start = np.array([[sp.x, sp.z]], dtype=np.float64)
        moved, portal, _ = sweep(start, jitter, self._segments[sp.floor])
        end = moved[0] if portal[0] < 0 else start[0]
        self._set(slot, sp.floor, float(end[0]), float(end[1]), sp.yaw)

    def place(self, slot: int, floor: int, x: float, z: float, yaw: float) -> None:
        """Activate ``slot`` at a given point (staff "move", tests).

        Raises:
            ValueError: the floor does not exist or the point is not on it.
        """
        if not 0 <= floor < len(self.world.floors):
            raise ValueError(f"no floor with index {floor}")
        if not (math.isfinite(x) and math.isfinite(z)) or not points_in_polygon(
            x, z, self.world.floors[floor].outline
        ):
            raise ValueError(f"({x}, {z}) is not on floor {self.world.floors[floor].id}")
        self._set(slot, floor, x, z, yaw if math.isfinite(yaw) else 0.0)

    def remove(self, slot: int) -> None:
        """Deactivate ``slot``."""
        self.active[slot] = False
        self.intent[slot] = 0.0

    def _set(self, slot: int, floor: int, x: float, z: float, yaw: float) -> None:
        self.active[slot] = True
        self.floor[slot] = floor
        self.pos[slot] = (x, z)
        self.yaw[slot] = _wrap(yaw)
        self.intent[slot] = 0.0

    # -- input ---------------------------------------------------------------------------------

    def set_intent(self, slot: int, mx: float, mz: float, yaw: float) -> None:
        """Hold a movement intent until the next one; ``|m|`` is clipped to 1, NaN/inf become 0."""
        mx = mx if math.isfinite(mx) else 0.0
        mz = mz if math.isfinite(mz) else 0.0
        n = math.hypot(mx, mz)
        if n > 1.0:
            mx, mz = mx / n, mz / n
        self.intent[slot] = (mx, mz)
        if math.isfinite(yaw):
            self.yaw[slot] = _wrap(yaw)

    def set_intents(
        self, slots: np.ndarray, mx: np.ndarray, mz: np.ndarray, yaw: np.ndarray
    ) -> None:
        """:meth:`set_intent` for many distinct slots at once (the inputs of one tick)."""
        mx = np.where(np.isfinite(mx), mx, 0.0)
        mz = np.where(np.isfinite(mz), mz, 0.0)
        n = np.hypot(mx, mz)
        over = n > 1.0
        if over.any():
            np.divide(mx, n, out=mx, where=over)
            np.divide(mz, n, out=mz, where=over)
        self.intent[slots, 0] = mx
        self.intent[slots, 1] = mz
        turn = np.isfinite(yaw)
        self.yaw[slots[turn]] = (yaw[turn] + math.pi) % (2 * math.pi) - math.pi

    # -- simulation ----------------------------------------------------------------------------

    def step(self, dt: float) -> None:
        """Advance every active avatar by ``dt`` seconds (clamped to ``MAX_DT``).

        Speed is ``max_speed × |intent|``; moves are cut into substeps of at most ``MAX_SUBSTEP``
        metres; each substep collides against the walls of the avatar's floor, slides along them
        and takes stairs (off the top end to the upper floor, back across it to the ramp).
        Avatars closer than ``personal_space`` also ease apart (:meth:`separation`).
        """
        if not math.isfinite(dt) or dt <= 0:
            return
        dt = min(dt, MAX_DT)
        idx = np.flatnonzero(self.active)
        if len(idx) == 0:
            return
        vel = self.intent[idx].astype(np.float64) * (self.max_speed * dt)
        vel = self._eased(idx, vel, dt)
        moving = np.einsum("ij,ij->i", vel, vel) > 1e-12
        idx, vel = idx[moving], vel[moving]
        if len(idx) == 0:
            return
        longest = float(np.sqrt(np.einsum("ij,ij->i", vel, vel)).max())
        substeps = max(1, math.ceil(longest / MAX_SUBSTEP))
        d = vel / substeps
        for _ in range(substeps):
            self._substep(idx, d)

    def _eased(self, idx: np.ndarray, vel: np.ndarray, dt: float) -> np.ndarray:
        """Moves ``vel`` of ``idx`` with :meth:`separation` added, no longer than the speed limit
        allows (easing apart never makes anyone faster than a run)."""
        vel = vel + self.separation(idx, dt)
        limit = self.max_speed * dt
        length = np.sqrt(np.einsum("ij,ij->i", vel, vel))
        over = length > limit
        vel[over] *= (limit / length[over])[:, None]
        return vel

    def separation(self, idx: np.ndarray, dt: float) -> np.ndarray:
        """How far (``(len(idx), 2)`` metres) each avatar of ``idx`` eases away from the others
        closer than ``personal_space`` on its floor in ``dt`` seconds.

        Soft: each pair resolves half its overlap per call from each side, and no avatar moves
        faster than ``separation_speed``, so a crowd spreads out over a few ticks instead of
        jumping, and someone walking into a person pushes them along rather than passing
        through. The move goes through the same wall collision as walking. Exactly coincident
        avatars part in a direction drawn from their two ids.

        Every pair is looked at once, and both of its avatars get their (opposite) push from it.
        Positions are hashed into cells of ``personal_space`` (floor included); each occupied
        cell is paired with itself and with four of its eight neighbours (the other four pair
        with it from their side), block by block: a fixed two dozen numpy calls, no Python loop
        over avatars or cells.
        """
        n = len(idx)
        out = np.zeros((n, 2), dtype=np.float64)
        r = self.personal_space
        if n < 2 or r <= 0:
            return out
        p = self.pos[idx].astype(np.float64)
        cell = np.floor(p / r).astype(np.int64) + _CELL_KEY // 2
        key = (self.floor[idx].astype(np.int64) * _CELL_KEY + cell[:, 0]) * _CELL_KEY + cell[:, 1]
        order = np.argsort(key, kind="stable")
        ukeys, starts, counts = np.unique(key[order], return_index=True, return_counts=True)
        # blocks (cell a, cell b): a with itself, and with its neighbours ahead of it
        nk = ukeys[None, :] + _SEP_AHEAD[:, None]
        at = np.minimum(np.searchsorted(ukeys, nk), len(ukeys) - 1)
        hit = ukeys[at] == nk
        hit[0] = True
        a = np.broadcast_to(np.arange(len(ukeys)), hit.shape)[hit]
        b = at[hit]
        ca, cb = counts[a], counts[b]
        size = ca * cb
        total = int(size.sum())
        blk = np.repeat(np.arange(len(a)), size)
        k = np.arange(total) - np.repeat(np.cumsum(size) - size, size)
        ka, kb = np.divmod(k, cb[blk])
        i = order[starts[a][blk] + ka]
        j = order[starts[b][blk] + kb]
        # within one cell, each pair once (i before j in the cell's order)
        keep = (a != b)[blk] | (ka < kb)
        i, j = i[keep], j[keep]
        # x and z apart: 1-D gathers and selections, several times cheaper than rows of (n, 2)
        px, pz = p[:, 0].copy(), p[:, 1].copy()
        dx = px[i] - px[j]
        dz = pz[i] - pz[j]
        d2 = dx * dx + dz * dz
        close = d2 < r * r
        if not close.any():
            return out
        i, j, dx, dz, d2 = i[close], j[close], dx[close], dz[close], d2[close]
        dist = np.sqrt(d2)
        same = dist < 1e-6
        if same.any():
            ia, ib = idx[i[same]].astype(np.float64), idx[j[same]].astype(np.float64)
            angle = _GOLDEN * np.minimum(ia, ib) + np.maximum(ia, ib)
            sign = np.where(ia < ib, 1.0, -1.0)
            dx[same] = np.sin(angle) * sign
            dz[same] = np.cos(angle) * sign
            dist[same] = 1.0
        scale = (r - dist) / 2 / np.maximum(dist, 1e-6)
        for col, dc in ((0, dx), (1, dz)):
            push = dc * scale
            out[:, col] = np.bincount(i, push, n) - np.bincount(j, push, n)
        cap = self.separation_speed * dt
        length = np.sqrt(np.einsum("ij,ij->i", out, out))
        over = length > cap
        out[over] *= (cap / length[over])[:, None]
        return out

    def _substep(self, idx: np.ndarray, d: np.ndarray) -> None:
        floors = self.floor[idx]
        if self._clear is not None and len(idx) >= _CLEAR_MIN:
            # moves from a clear cell touch nothing: p + d, exactly what sweep would give
            old32 = self.pos[idx]
            cells = ((old32 - self._clear_origin) * self._clear_inv).astype(np.intp)
            np.clip(cells, 0, self._clear_max, out=cells)
            clear = self._clear[cells @ self._clear_dims + floors * self._clear_plane]
            if clear.any():
                self.pos[idx[clear]] = (old32[clear].astype(np.float64) + d[clear]).astype(
                    np.float32
                )
                if clear.all():
                    return
                rest = ~clear
                idx, d, floors = idx[rest], d[rest], floors[rest]
        for f in np.unique(floors):
            sel = floors == f
            ids = idx[sel]
            fs = self._segments[int(f)]
            old32 = self.pos[ids]
            new, portal, at = sweep(old32.astype(np.float64), d[sel], fs)
            new32 = new.astype(np.float32)
            # the guarantee: the stored move crosses no wall, whatever rounding did
            _, j = crossings(old32.astype(np.float64), (new32 - old32).astype(np.float64), fs.segs)
            bad = j >= 0
            new32[bad] = old32[bad]
            self.pos[ids] = new32
            went = np.flatnonzero(portal >= 0)
            if len(went):
                self._change_floor(ids[went], fs, portal[went], at[went])

    def _change_floor(
        self, ids: np.ndarray, fs: FloorSegments, portal: np.ndarray, at: np.ndarray
    ) -> None:
        k = fs.stair[portal].astype(np.int64)
        target = fs.target[portal]
        axis = self._st_axis[k]
        start = self._st_start[k]
        rel = at - start
        lat = rel[:, 0] * -axis[:, 1] + rel[:, 1] * axis[:, 0]
        lat = np.clip(lat, -self._st_half[k] + _LAND, self._st_half[k] - _LAND)
        up = target == self._st_upper[k]
        along = np.where(up, self._st_len[k] + _LAND, self._st_len[k] - _LAND)
        land = start + axis * along[:, None] + np.stack([-axis[:, 1], axis[:, 0]], 1) * lat[:, None]
        self.pos[ids] = land.astype(np.float32)
        self.floor[ids] = target

    def heights(self) -> np.ndarray:
        """``y`` of every slot: its floor's elevation, or the ramp's height on a stair."""
        y = self._elevation[self.floor.astype(np.int64)]
        if len(self._st_len) == 0:
            return y
        pos = self.pos.astype(np.float64)
        for k in range(len(self._st_len)):
            t, on = self._on_ramp(k, pos)
            lo, hi = self._elevation[self._st_lower[k]], self._elevation[self._st_upper[k]]
            y = np.where(on, lo + (hi - lo) * np.clip(t, 0.0, 1.0), y)
        return y

    def _on_ramp(self, k: int, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For stair ``k``: each slot's position ``t`` along its ramp (0 bottom, 1 top) and
        whether it stands on the ramp (on its lower floor, within its length and width)."""
        rel = pos - self._st_start[k]
        ax, az = self._st_axis[k]
        t = (rel[:, 0] * ax + rel[:, 1] * az) / self._st_len[k]
        lat = -rel[:, 0] * az + rel[:, 1] * ax
        on = (
            (self.floor == self._st_lower[k])
            & (t >= 0)
            & (t <= 1)
            & (np.abs(lat) <= self._st_half[k])
        )
        return t, on

    def on_stair(self) -> np.ndarray:
        """Index into ``world.stairs`` of the stair each slot stands on, -1 for none."""
        out = np.full(self.capacity, -1, dtype=np.int16)
        pos = self.pos.astype(np.float64)
        for k in range(len(self._st_len)):
            out[self._on_ramp(k, pos)[1]] = k
        return out


def _wrap(yaw: float) -> float:
    """Yaw folded into ``[-π, π)``."""
    return (yaw + math.pi) % (2 * math.pi) - math.pi
