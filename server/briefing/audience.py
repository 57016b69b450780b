"""Who stands where a stage is seen and heard: the briefing audience of each instance.

Computed on the instances' tick hook (``server/hooks.py``), every ``every`` ticks, from the
crowd's numpy state: per stage or auditorium zone, one bounding-box cut over every avatar of the
instance and one vectorised even-odd test (:func:`world.geometry.points_in_polygon`) of the few
left. Between two computations the answer is at most ``every`` ticks old; a staff action
recomputes it at once (:meth:`Audience.update_all`), so who is counted at a start or an end is who
is there then. Instances are known from the create and dispose hooks: the hall is never walked.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from world.geometry import as_points, points_in_polygon

if TYPE_CHECKING:
    from server.instance import Instance
    from server.session import Session
    from world.model import World, Zone

__all__ = ["Audience", "audience_zones", "in_zones"]


def audience_zones(world: World) -> list[Zone]:
    """The stage and auditorium zones of every stage of ``world``."""
    out: list[Zone] = []
    for st in world.stages:
        for z in (world.zone(st.zone), world.zone(st.auditorium)):
            if z is not None and z not in out:
                out.append(z)
    return out


def in_zones(
    zones: Sequence[Zone], floor: np.ndarray, pos: np.ndarray, active: np.ndarray
) -> np.ndarray:
    """Bool ``(n,)``: whether each active point (``Crowd.floor``, ``.pos``, ``.active``) stands
    in any of ``zones``."""
    inside = np.zeros(len(floor), dtype=bool)
    x, z = pos[:, 0], pos[:, 1]
    for zone in zones:
        p = as_points(zone.polygon)
        near = active & ~inside & (floor == zone.floor)
        near &= (x >= p[:, 0].min()) & (x <= p[:, 0].max())
        near &= (z >= p[:, 1].min()) & (z <= p[:, 1].max())
        cand = np.flatnonzero(near)
        if cand.size:
            inside[cand[points_in_polygon(x[cand], z[cand], p)]] = True
    return inside


class Audience:
    """The sessions standing in an audience zone, per instance of this process."""

    __slots__ = ("zones", "every", "_present")

    def __init__(self, zones: Sequence[Zone], every: int) -> None:
        self.zones = tuple(zones)
        self.every = max(1, every)
        self._present: dict[Instance, frozenset[Session]] = {}

    # -- hooks ------------------------------------------------------------------------------------

    def on_create(self, inst: Instance) -> None:
        self._present[inst] = frozenset()

    def on_dispose(self, inst: Instance) -> None:
        self._present.pop(inst, None)

    def on_tick(self, inst: Instance) -> bool:
        """Recompute ``inst``'s audience every ``every`` ticks; True when it did."""
        if inst.tick % self.every:
            return False
        self.update(inst)
        return True

    # -- computing --------------------------------------------------------------------------------

    def update(self, inst: Instance) -> None:
        """Who of ``inst`` stands in an audience zone now: one vectorised pass over its crowd."""
        c = inst.crowd
        slots = np.flatnonzero(in_zones(self.zones, c.floor, c.pos, c.active)).tolist()
        sessions = inst.sessions
        self._present[inst] = frozenset(sessions[i] for i in slots if i in sessions)

    def update_all(self) -> None:
        for inst in list(self._present):
            self.update(inst)

    # -- asking -----------------------------------------------------------------------------------

    def contains(self, session: Session) -> bool:
        inst = session.instance
        return inst is not None and session in self._present.get(inst, ())

    def sessions(self) -> Iterator[Session]:
        for present in self._present.values():
            yield from present
