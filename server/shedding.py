"""Shedding snapshots when a process runs out of CPU, so that its instances keep ticking.

A process that has more work than a core can do falls behind in every way at once: ticks come
late (everything walks in slow motion), inputs wait behind the tick, and every snapshot is older
than it should be. The costliest part of a large instance's tick is writing its snapshots (interest,
encoding, packing and the socket writes: about two thirds at 2,000 avatars), and it is the part
that can give: a viewer sent a snapshot every second tick still sees everyone in the right place
at the right time (its client interpolates between snapshots and tells the time from their ticks),
a little less smoothly. So when the process's CPU over the last second passes ``high`` (a
fraction of one core), or an instance could not keep its tick rate (the core is taken by
someone else: the process's own CPU then looks low while everything it does comes late), the
instance that spends most on snapshots sends each viewer one every ``2`` ticks, then ``4`` (a
step for every ``STRIKES`` such seconds in a row); the ticks themselves (inputs, movement,
hooks, voice) stay at the full rate. It goes back one step after ``CALM`` seconds in a row
without either, and only when the process would stay below ``high - MARGIN`` with that
instance's snapshots at the higher rate again (estimated from what its snapshots cost now), so
it does not swing back and forth.

:func:`decide` is the pure rule; :class:`Governor` applies it once a second to a hall's instances.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("emachi.shedding")

#: each viewer's snapshot every this many ticks at most (4: 5 a second at a 20 Hz tick)
MOST = 4
#: how far below ``high`` the process must be expected to stay before a step back
MARGIN = 0.1
#: seconds in a row under the budget and on time before a step back
CALM = 3
#: seconds in a row over the budget (or behind) before a step down: one slow second (a burst
#: of connections, a collection, a neighbour's spike) is not a trend
STRIKES = 2
#: an instance that ran fewer than this share of its ticks in a second is behind: a lag a person
#: notices (everything in slow motion), not the jitter of a shared core, since shedding halves
#: what a viewer sees a second. (bench.crowd, 1,000 avatars on a slow moment of the 2-core VM:
#: 12.6 ticks a second and input -> snapshot p99 384 ms without shedding, 17.3 and 285 ms with)
ON_TIME = 0.8


@dataclass(slots=True)
class Load:
    """What :func:`decide` knows of one instance."""

    shed: int  #: its viewers get a snapshot every ``shed`` ticks (1, 2 or 4)
    #: fraction of a core its snapshot writing takes now (at ``shed``)
    broadcast: float
    #: it ran fewer than ``ON_TIME`` of its ticks over the last second
    behind: bool = False


def decide(
    cpu: float,
    loads: Sequence[Load],
    high: float,
    calm: int = CALM,
    strikes: int = STRIKES,
) -> tuple[int, int] | None:
    """The one change to make given the process's ``cpu`` (fraction of a core over the last
    second), ``calm`` (seconds in a row it has been under ``high`` with no instance behind, this
    one included) and ``strikes`` (seconds in a row it has not): ``(index into loads, new
    shed)``, or None to leave everything as it is.

    Over ``high``, or an instance behind, for ``STRIKES`` seconds: the instance whose snapshots
    cost most (and can still shed) halves its rate. After ``CALM`` calm seconds: the shedding
    instance whose step back costs least takes it, if the process would then stay under
    ``high - MARGIN``.
    """
    if high <= 0 or not loads:
        return None
    if cpu > high or any(ld.behind for ld in loads):
        if strikes < STRIKES:
            return None
        can = [i for i, ld in enumerate(loads) if ld.shed < MOST and ld.broadcast > 0]
        if not can:
            return None
        i = max(can, key=lambda k: loads[k].broadcast)
        return i, loads[i].shed * 2

    shedding = [i for i, ld in enumerate(loads) if ld.shed > 1]
    if not shedding or calm < CALM:
        return None
    # a step back sends its snapshots twice as often: it adds what they cost now
    i = min(shedding, key=lambda k: loads[k].broadcast)
    if cpu + loads[i].broadcast < high - MARGIN:
        return i, loads[i].shed // 2
    return None


class Shedder(Protocol):
    """What the governor reads and sets on an instance (:class:`server.instance.Instance`)."""

    id: str
    #: its viewers get a snapshot every ``shed`` ticks
    shed: int
    #: its snapshot writing per tick (seconds, a moving average)
    broadcast_seconds: float
    #: ticks run so far
    tick: int


class Governor:
    """Once a second: the process's CPU, then :func:`decide` over ``instances()`` (the hall's
    tick rate turns their ``broadcast_seconds`` per tick into a fraction of a core)."""

    def __init__(
        self,
        instances: Callable[[], Sequence[Shedder]],
        tick_rate: int,
        high: float,
        every: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        cpu_clock: Callable[[], float] = time.process_time,
    ) -> None:
        self.instances, self.tick_rate, self.high, self.every = instances, tick_rate, high, every
        self.clock, self.cpu_clock = clock, cpu_clock
        self.cpu = 0.0  #: the process's CPU over the last window, fraction of one core
        self.calm = 0  #: windows in a row under the budget with no instance behind
        self.strikes = 0  #: windows in a row over it (or with an instance behind)
        self._ticks: dict[str, int] = {}  # instance id -> its tick at the last window

    async def run(self) -> None:
        wall, cpu = self.clock(), self.cpu_clock()
        while True:
            await asyncio.sleep(self.every)
            wall1, cpu1 = self.clock(), self.cpu_clock()
            if wall1 <= wall:
                continue
            self.cpu = (cpu1 - cpu) / (wall1 - wall)
            self.apply(wall1 - wall)
            wall, cpu = wall1, cpu1

    def apply(self, window: float) -> None:
        """One decision over the ``window`` seconds since the last."""
        insts = list(self.instances())
        due = self.tick_rate * window * ON_TIME
        ticks, self._ticks = self._ticks, {i.id: i.tick for i in insts}
        loads = [
            Load(
                i.shed,
                i.broadcast_seconds * self.tick_rate,
                # an instance opened within the window has no figure yet
                i.id in ticks and i.tick - ticks[i.id] < due,
            )
            for i in insts
        ]
        over = self.cpu > self.high or any(ld.behind for ld in loads)
        self.calm = 0 if over else self.calm + 1
        self.strikes = self.strikes + 1 if over else 0
        change = decide(self.cpu, loads, self.high, self.calm, self.strikes)
        if change is None:
            return
        k, shed = change
        inst = insts[k]
        before, inst.shed = inst.shed, shed
        self.calm = self.strikes = 0
        level = logging.WARNING if shed > before else logging.INFO
        log.log(
            level,
            "snapshot rate %s",
            "shed" if shed > before else "restored",
            extra={
                "instance": inst.id,
                "snapshot_every_ticks": shed,
                "process_cpu": round(self.cpu, 2),
                "behind": loads[k].behind,
            },
        )
