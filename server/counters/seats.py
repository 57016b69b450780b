"""Where the counters put avatars: staff behind their counter, residents before it, the two of
a consultation facing each other in its booth (``docs/counters.md``, "Wire").

A holder is moved through its instance (``Instance.move_avatar``); one without an avatar or
whose session is closed is left alone. Synchronous: the move is applied at once and seen in the
next snapshot.
"""

from __future__ import annotations

import logging
import math

from server.session import SessionState
from world.model import Counter, World

__all__ = ["BEHIND", "BEFORE", "seat", "place"]

log = logging.getLogger("emachi.counters")

#: a counter faces along its yaw: staff stand this far behind it, residents this far before it
BEHIND = 0.8
BEFORE = 2.5
#: resident and staff stand this far either side of the booth's centre
APART = 1.0


def seat(world: World, zone_id: str, resident: object, staff: object) -> None:
    """``resident`` and ``staff`` face each other in the booth zone ``zone_id``."""
    zone = world.zone(zone_id)
    if zone is None:
        return
    xs = [p[0] for p in zone.polygon]
    zs = [p[1] for p in zone.polygon]
    cx, cz = sum(xs) / len(xs), sum(zs) / len(zs)
    spots = ((resident, cx - APART, math.pi / 2), (staff, cx + APART, -math.pi / 2))
    for who, x, yaw in spots:
        if not zone.contains(x, cz):
            x = cx
        _move(who, zone.floor, x, cz, yaw)


def place(who: object, spec: Counter, *, behind: bool) -> None:
    """``who`` behind the counter ``spec`` (staff, facing as it does) or before it (facing it)."""
    dist = -BEHIND if behind else BEFORE
    x = spec.x + math.sin(spec.yaw) * dist
    z = spec.z + math.cos(spec.yaw) * dist
    yaw = spec.yaw if behind else spec.yaw + math.pi
    _move(who, spec.floor, x, z, yaw)


def _move(who: object, floor: int, x: float, z: float, yaw: float) -> None:
    inst = getattr(who, "instance", None)
    slot = getattr(who, "avatar_id", -1)
    if inst is None or slot < 0 or getattr(who, "state", None) is SessionState.CLOSED:
        return
    try:
        inst.move_avatar(slot, floor, x, z, yaw)
    except ValueError:
        log.warning("counter placement failed", extra={"floor": floor})
