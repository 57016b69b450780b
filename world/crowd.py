"""The avatars of one instance as structure-of-arrays numpy state, and their movement.

Server-authoritative: clients send an intent (a direction with a length ≤ 1); :meth:`Crowd.step`
turns intents into motion for every active avatar at once, with a speed clamp, collision against
the walls of the avatar's floor (``world/collision.py``) and stairs between floors. Slots are the
avatar ids the server hands out; inactive slots keep their last values and are ignored.

A tick's movement is one call of a compiled kernel (``world/move_kernels.py``), which walks the
avatars one by one: at the tens of avatars of most instances, a few dozen numpy calls' fixed cost
was the whole step.
"""

from __future__ import annotations

import math

import numpy as np

from world import move_kernels as kernels
from world.collision import (
    SKIN,
    FloorSegments,
    SegmentGrid,
    build_grid,
    build_segments,
    sweep,
)
from world.geometry import points_in_polygon
from world.model import World
from world.move_kernels import GOLDEN as _GOLDEN
from world.move_kernels import MAX_SUBSTEP

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

MAX_DT = 1.0
"""Longest time (s) one ``step`` simulates; a stalled tick does not fling anyone across the hall."""
SPAWN_SPREAD = 1.5
"""Radius (m) of the disc around a spawn point where arrivals are spread."""
PERSONAL_SPACE = 0.7
"""Distance (m) between two avatars' centres below which they ease apart (bodies are 0.56 m wide)."""
SEPARATION_SPEED = 1.5
"""Fastest (m/s) that easing apart moves an avatar: soft, slower than a walk into someone."""
_GRID_CELL = 0.5  # m: the collision grid's cell (coarser for a world over 256 m across)
# A substep's move, lengthened by the sweep's SKIN, stays within this of its start on each axis,
# with room for the float32 rounding of the stored position (micrometres on a city hall's floor)
_GRID_REACH = MAX_SUBSTEP + SKIN + 0.01


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
        # every floor's segments end to end, for the step kernel (the grid indexes into them)
        fss = self._segments
        self._segs = np.ascontiguousarray(np.concatenate([fs.segs for fs in fss]), np.float64)
        self._box = kernels.boxes(self._segs)
        self._kind = np.concatenate([fs.kind for fs in fss]).astype(np.int8)
        self._stair = np.concatenate([fs.stair for fs in fss]).astype(np.int16)
        self._target = np.concatenate([fs.target for fs in fss]).astype(np.int16)
        self._sign = np.concatenate([fs.sign for fs in fss]).astype(np.int8)
        self._grid: SegmentGrid = build_grid(fss, _GRID_REACH, _GRID_CELL)

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
        kernels.set_intents(
            self.intent,
            self.yaw,
            np.ascontiguousarray(slots, dtype=np.intp),
            np.ascontiguousarray(mx, dtype=np.float64),
            np.ascontiguousarray(mz, dtype=np.float64),
            np.ascontiguousarray(yaw, dtype=np.float64),
        )

    # -- simulation ----------------------------------------------------------------------------

    def step(self, dt: float) -> None:
        """Advance every active avatar by ``dt`` seconds (clamped to ``MAX_DT``).

        Speed is ``max_speed × |intent|``; moves are cut into substeps of at most ``MAX_SUBSTEP``
        metres; each substep collides against the walls of the avatar's floor, slides along them
        and takes stairs (off the top end to the upper floor, back across it to the ramp).
        Avatars closer than ``personal_space`` also ease apart (:meth:`separation`), no faster
        than the speed limit allows. One compiled call (``world/move_kernels.py``).
        """
        if not math.isfinite(dt) or dt <= 0:
            return
        g = self._grid
        kernels.step(
            self.active,
            self.pos,
            self.floor,
            self.intent,
            min(float(dt), MAX_DT),
            self.max_speed,
            self.personal_space,
            self.separation_speed,
            self._segs,
            self._box,
            self._kind,
            self._stair,
            self._target,
            self._sign,
            g.origin[0],
            g.origin[1],
            g.inv,
            g.nx,
            g.nz,
            g.start,
            g.items,
            self._st_start,
            self._st_axis,
            self._st_len,
            self._st_half,
            self._st_upper,
        )

    def separation(self, idx: np.ndarray, dt: float) -> np.ndarray:
        """How far (``(len(idx), 2)`` metres) each avatar of ``idx`` eases away from the others
        closer than ``personal_space`` on its floor in ``dt`` seconds.

        Soft: each pair resolves half its overlap per call from each side, and no avatar moves
        faster than ``separation_speed``, so a crowd spreads out over a few ticks instead of
        jumping, and someone walking into a person pushes them along rather than passing
        through. The move goes through the same wall collision as walking. Exactly coincident
        avatars part in a direction drawn from their two ids. :meth:`step` adds it to the walk.
        """
        return kernels.separation(
            self.pos,
            self.floor,
            np.ascontiguousarray(idx, dtype=np.int64),
            float(dt),
            self.personal_space,
            self.separation_speed,
        )

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
