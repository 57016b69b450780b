"""An instance of a world: a crowd of avatars, its tick loop, and the snapshots it sends.

Hooks follow Colyseus' Room: ``on_create``, ``on_join``, ``on_leave``, ``on_dispose``; the
simulation itself is the pure ``Crowd.step(dt)`` of ``world/``. Each tick:

1. inputs received since the last tick become the processed ones (``last_seq``);
2. ``Crowd.step`` moves everyone (speed clamp, walls, stairs);
3. the quantised state goes into a ring of the last ``HISTORY`` ticks;
4. interest management gives every viewer its nearest avatars;
5. each viewer gets one frame: a delta against the snapshot it acknowledged, written without waiting.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
import time
from typing import TYPE_CHECKING

import numpy as np

from server.protocol.codes import CloseCode
from server.protocol.messages import Snapshot
from server.protocol.snapshot import encode_sections, quantize
from world.crowd import Crowd
from world.interest import Interest

if TYPE_CHECKING:
    from server.config import Config
    from server.metrics import Metrics
    from server.session import Session
    from world.loader import World

__all__ = ["Instance", "InstanceState", "HISTORY"]

log = logging.getLogger("emachi.instance")

HISTORY = 64  # ticks of quantised state kept for delta bases (3.2 s at 20 Hz)
ID_COOLDOWN = 10.0  # seconds before a freed avatar id is given to someone else

EMPTY_IDS = np.zeros(0, dtype=np.uint16)
EMPTY_Q = np.zeros((0, 4), dtype=np.int32)


class InstanceState(enum.Enum):
    OPEN = "open"
    FULL = "full"
    DISPOSED = "disposed"


class Instance:
    """One copy of a world with room for ``capacity`` avatars."""

    def __init__(self, instance_id: str, world: World, config: Config, metrics: Metrics) -> None:
        self.id = instance_id
        self.world = world
        self.config = config
        self.metrics = metrics
        self.capacity = config.capacity
        self.crowd = Crowd(world, config.capacity)
        self.interest = Interest(radius=config.aoi_radius, cap=config.aoi_cap)
        self.state = InstanceState.OPEN
        self.tick = 0
        self.history = np.zeros((HISTORY, config.capacity, 4), dtype=np.int32)
        self.sessions: dict[int, Session] = {}
        self.pending_seq = np.zeros(config.capacity, dtype=np.int64)
        self.last_seq = np.zeros(config.capacity, dtype=np.int64)
        self.names: list[str] = [""] * config.capacity
        self.colors: list[int] = [0] * config.capacity
        self._free: collections.deque[int] = collections.deque(range(config.capacity))
        self._cooling: collections.deque[tuple[float, int]] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self.on_create()

    # -- hooks ---------------------------------------------------------------------------------

    def on_create(self) -> None:
        log.info("instance created", extra={"instance": self.id})

    def on_join(self, session: Session) -> None:
        """Give the session an avatar id and put its avatar at a spawn point."""
        self._release_cooled()
        slot = self._free.popleft()
        session.avatar_id = slot
        session.instance = self
        self.sessions[slot] = session
        self.names[slot] = session.name
        self.colors[slot] = session.color
        self.pending_seq[slot] = 0
        self.last_seq[slot] = 0
        self.crowd.spawn(slot)
        if len(self.sessions) >= self.capacity:
            self.state = InstanceState.FULL

    def on_leave(self, session: Session) -> None:
        """Remove the avatar; its id is reused only after ``ID_COOLDOWN``."""
        slot = session.avatar_id
        if self.sessions.get(slot) is not session:
            return
        del self.sessions[slot]
        self.crowd.remove(slot)
        self.names[slot] = ""
        self._cooling.append((time.monotonic() + ID_COOLDOWN, slot))
        if self.state is InstanceState.FULL:
            self.state = InstanceState.OPEN

    def on_dispose(self) -> None:
        self.state = InstanceState.DISPOSED
        log.info("instance disposed", extra={"instance": self.id})

    # -- queries -------------------------------------------------------------------------------

    @property
    def population(self) -> int:
        return len(self.sessions)

    def has_room(self) -> bool:
        self._release_cooled()
        return self.state is InstanceState.OPEN and bool(self._free)

    def position(self, avatar_id: int) -> tuple[str, float, float]:
        """(floor id, x, z) of an avatar, for features like kiosks."""
        c = self.crowd
        floor = self.world.floors[int(c.floor[avatar_id])].id
        return floor, float(c.pos[avatar_id, 0]), float(c.pos[avatar_id, 1])

    def _release_cooled(self) -> None:
        now = time.monotonic()
        while self._cooling and self._cooling[0][0] <= now:
            self._free.append(self._cooling.popleft()[1])

    # -- inputs --------------------------------------------------------------------------------

    def set_input(self, slot: int, seq: int, mx: float, mz: float, yaw: float) -> None:
        if seq <= self.pending_seq[slot]:
            return  # stale or replayed input
        self.pending_seq[slot] = seq
        self.crowd.set_intent(slot, mx, mz, yaw)

    # -- the loop ------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"tick {self.id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self.on_dispose()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        period = 1.0 / self.config.tick_rate
        every = max(1, round(self.config.tick_rate / self.config.snapshot_rate))
        next_at = loop.time()
        while True:
            next_at += period
            t0 = time.perf_counter()
            try:
                self.step(period, send=(self.tick % every == 0))
            except Exception:
                log.exception("tick failed", extra={"instance": self.id})
            self.metrics.observe_tick(time.perf_counter() - t0)
            delay = next_at - loop.time()
            if delay < -period:
                # fell behind by more than a tick: start again from now rather than burst
                next_at = loop.time()
                delay = 0.0
            await asyncio.sleep(max(0.0, delay))

    def step(self, dt: float, *, send: bool = True) -> None:
        """Advance one tick and, when ``send``, write every viewer its snapshot."""
        self.tick += 1
        np.copyto(self.last_seq, self.pending_seq)
        c = self.crowd
        c.step(dt)
        q = quantize(c.pos, c.floor, c.yaw)
        self.history[self.tick % HISTORY] = q
        if send:
            self._broadcast(q)

    def _broadcast(self, q: np.ndarray) -> None:
        viewers = [s for s in self.sessions.values() if s.connected]
        if not viewers:
            return
        slots = np.fromiter((s.avatar_id for s in viewers), dtype=np.int64, count=len(viewers))
        visible, beyond = self.interest.query(self.crowd, slots)
        tick = self.tick
        now = time.monotonic()
        server_time = time.time() * 1000.0
        slow_limit = self.config.slow_limit
        sent = 0
        nbytes = 0
        for i, s in enumerate(viewers):
            row = visible[i]
            ids = np.sort(row[row >= 0]).astype(np.uint16)
            base = s.acked_tick
            ids_base = s.sent_views.get(base) if base else None
            if ids_base is None or tick - base >= HISTORY:
                base = 0
                ids_base = EMPTY_IDS
                q_base = EMPTY_Q
            else:
                q_base = self.history[base % HISTORY][ids_base]
            full, move, turn_move, turn, left, entered = encode_sections(
                ids, q[ids], ids_base, q_base
            )
            info = [[int(a), self.names[a], self.colors[a]] for a in entered.tolist()]
            frame = Snapshot(
                tick=tick,
                base_tick=base,
                last_seq=int(self.last_seq[s.avatar_id]),
                server_time=server_time,
                full=full,
                move=move,
                turn_move=turn_move,
                turn=turn,
                left=left,
                info=info,
                crowd=int(beyond[i]),
            ).encode()
            if s.push(frame, now):
                s.sent_views[tick] = ids
                if len(s.sent_views) > HISTORY:
                    for t in [t for t in s.sent_views if tick - t >= HISTORY]:
                        del s.sent_views[t]
                sent += 1
                nbytes += len(frame)
            elif s.behind_since is not None and now - s.behind_since > slow_limit:
                self.metrics.closed(CloseCode.TOO_SLOW)
                s.close(CloseCode.TOO_SLOW)
                s.abort_later()
        self.metrics.sent(sent, nbytes)
