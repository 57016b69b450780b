"""The pure model of a world: files, geometry, movement and interest management.

numpy, numba (the kernels that run every tick, compiled and cached on first import) and the
standard library only: no asyncio, no sockets. ``server/`` drives it.

- :mod:`world.loader` — ``load_world``, ``check_world``, ``WorldError``, ``WorldProblem``
- :mod:`world.model` — the frozen dataclasses (``World``, ``Floor``, ``Zone``, ``Kiosk``, …)
- :mod:`world.geometry` — polygons and segments
- :mod:`world.collision` — wall segments per floor and the swept move
- :mod:`world.crowd` — ``Crowd``: avatars as structure-of-arrays, ``step(dt)``
- :mod:`world.move_kernels` — the step's numba kernels (separation, easing, swept moves, floors)
- :mod:`world.interest` — ``Interest``: who sees whom (one numba kernel over a grid), ``enter_leave``
- :mod:`world.audibility` — who hears whom: zone rules, gains, the K kept with hysteresis
- :mod:`world.audibility_kernels` — its numba kernels (a pair's gain, each listener's K best)
"""

from __future__ import annotations

from world.loader import check_world, load_world
from world.model import World
from world.problems import WorldError, WorldProblem

__all__ = ["World", "WorldError", "WorldProblem", "check_world", "load_world"]
