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
import itertools
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgpack
import numpy as np

from server.protocol.batch import PAD, InfoTable, encode_frames, prepare_views
from server.protocol.codes import MsgType
from server.protocol.snapshot import quantize
from server.tasks import stop_task
from world.crowd import Crowd
from world.interest import Interest

if TYPE_CHECKING:
    from server.config import Config
    from server.hooks import Hooks
    from server.metrics import Metrics
    from server.session import Session
    from world.loader import World

__all__ = ["Instance", "InstanceState", "HISTORY"]

log = logging.getLogger("emachi.instance")

HISTORY = 64  # ticks of quantised state kept for delta bases (3.2 s at 20 Hz)
# A freed avatar id waits HISTORY ticks (3.2 s at 20 Hz) before it goes to someone else: by then
# no viewer's usable delta base can still hold the avatar that left, so every viewer has been told
# of the leave and the newcomer arrives as an "entered" avatar with its own name. A slot still
# cooling counts as room: when no other is free, the one that has cooled longest is taken at once
# and the bases sent before its leave are dropped (those viewers get one full snapshot).
ID_COOLDOWN_TICKS = HISTORY


def _scalars(a: np.ndarray) -> Any:
    """A memoryview of ``a`` (C-contiguous) that reads and writes one element at a time as a
    Python int or float, at about half the cost of indexing the array."""
    assert a.flags.c_contiguous
    return a.data


class InstanceState(enum.Enum):
    OPEN = "open"
    FULL = "full"
    DISPOSED = "disposed"


class Instance:
    """One copy of a world with room for ``capacity`` avatars."""

    def __init__(
        self,
        instance_id: str,
        world: World,
        config: Config,
        metrics: Metrics,
        hooks: Hooks,
        *,
        private: bool = False,
    ) -> None:
        self.id = instance_id
        #: an event's instance: only the sessions a hello hook sends here (never a public join)
        self.private = private
        #: blocked[a, b]: a does not see (nor hear) b; allocated at the first block
        self.blocked: np.ndarray | None = None
        self.hooks = hooks
        self.world = world
        self.config = config
        self.metrics = metrics
        self.capacity = config.capacity
        self.crowd = Crowd(world, config.capacity)
        self.interest = Interest(radius=config.aoi_radius, cap=config.aoi_cap)
        self.state = InstanceState.OPEN
        self.tick = 0
        self.history = np.zeros((HISTORY, config.capacity, 4), dtype=np.int32)
        # the view each avatar was sent at each recent tick, for delta bases
        self.views = np.full((HISTORY, config.capacity, config.aoi_cap), PAD, dtype=np.uint16)
        self.view_tick = np.full((HISTORY, config.capacity), -1, dtype=np.int64)
        # each viewer's interest set, refreshed every `interest_every` ticks (staggered by slot)
        self.visible = np.full((config.capacity, config.aoi_cap), -1, dtype=np.int32)
        self.beyond = np.zeros(config.capacity, dtype=np.int32)
        self.visible_fresh = np.zeros(config.capacity, dtype=bool)
        self.sessions: dict[int, Session] = {}
        # The inputs received since the last tick, written one message at a time through
        # memoryviews (a few tens of ns each, no Python object per input) and taken in one go by
        # ``step``: the newest seq and intent of each avatar, and which avatars sent one.
        self.pending_seq = np.zeros(config.capacity, dtype=np.int64)
        self._intent_in = np.zeros((3, config.capacity), dtype=np.float64)  # mx, mz, yaw
        self._fresh: set[int] = set()  # slots with an input not yet applied
        self._seq: list[int] = [0] * config.capacity  # pending_seq as Python ints
        self.last_seq = np.zeros(config.capacity, dtype=np.int64)
        # input -> snapshot latency: arrival (monotonic s) of the oldest input not yet stepped,
        # then of the oldest stepped one not yet written in a snapshot; 0.0 = none
        self.input_at = np.zeros(config.capacity, dtype=np.float64)
        self.carried_at = np.zeros(config.capacity, dtype=np.float64)
        # views for the per-message writes and reads (indexing one costs half a numpy scalar's)
        self._pending_mv = _scalars(self.pending_seq)
        self._mx_mv, self._mz_mv, self._yaw_mv = (_scalars(a) for a in self._intent_in)
        self._input_at_mv = _scalars(self.input_at)
        self._view_tick_mv = _scalars(self.view_tick)  # view_tick is written in place only
        self.names: list[str] = [""] * config.capacity
        self.colors: list[int] = [0] * config.capacity
        self.info = InfoTable(config.capacity)  # names and colours packed for snapshots
        self._free: collections.deque[int] = collections.deque(range(config.capacity))
        # (tick of the leave, slot), oldest first
        self._cooling: collections.deque[tuple[int, int]] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        # In a cluster: the monotonic time until which this process holds the instance's lease
        # (server/cluster/leases.py). Past it the tick stops and ``on_lapse`` is called once.
        self.lease_until = math.inf
        self.on_lapse: Callable[[Instance], None] | None = None
        # since when nobody (not even a session awaiting its resume) has been here; None if occupied
        self.empty_since: float | None = time.monotonic()
        self._ticked_empty = False  # a whole tick has run since it became empty
        # snapshots every `shed` ticks while the process is over its CPU budget
        # (server/shedding.py); what writing them costs a tick, a moving average (seconds)
        self.shed = 1
        self.broadcast_seconds = 0.0
        self.on_create()

    # -- hooks ---------------------------------------------------------------------------------

    def on_create(self) -> None:
        log.info("instance created", extra={"instance": self.id})
        self.hooks.run(self.hooks.create, self)

    def on_join(self, session: Session) -> None:
        """Give the session an avatar id and put its avatar at a spawn point."""
        slot = self._take_slot()
        session.avatar_id = slot
        session.instance = self
        self.sessions[slot] = session
        self.names[slot] = session.name
        self.colors[slot] = session.color
        self.pending_seq[slot] = 0
        self._seq[slot] = 0
        self._fresh.discard(slot)
        self.last_seq[slot] = 0
        self.input_at[slot] = self.carried_at[slot] = 0.0
        self.crowd.spawn(slot)
        self.visible_fresh[slot] = False
        self.empty_since = None
        if len(self.sessions) >= self.capacity:
            self.state = InstanceState.FULL

    def on_resume(self, session: Session) -> None:
        """A detached session got a new socket: its input numbering starts again.

        A reloaded page counts its inputs from 1; the seq of the previous connection must not
        make them look stale (a client that keeps counting is not hurt: any seq > 0 is taken).
        """
        slot = session.avatar_id
        self.pending_seq[slot] = 0
        self._seq[slot] = 0  # the old connection's last intent still holds; its seq does not
        self.last_seq[slot] = 0

    def place(
        self, session: Session, slot: int, floor: int, x: float, z: float, yaw: float
    ) -> None:
        """Give the session the avatar id ``slot`` at a given point (a resume after a restart).

        Raises:
            ValueError: ``slot`` is not free, or the point is not on ``floor``.
        """
        if not 0 <= slot < self.capacity or slot in self.sessions or slot not in self._free:
            raise ValueError(f"avatar id {slot} is not free in {self.id}")
        self.crowd.place(slot, floor, x, z, yaw)
        self._free.remove(slot)
        session.avatar_id = slot
        session.instance = self
        self.sessions[slot] = session
        self.names[slot] = session.name
        self.colors[slot] = session.color
        self.pending_seq[slot] = 0
        self._seq[slot] = 0
        self._fresh.discard(slot)
        self.last_seq[slot] = 0
        self.input_at[slot] = 0.0
        self.visible_fresh[slot] = False
        self.empty_since = None
        if len(self.sessions) >= self.capacity:
            self.state = InstanceState.FULL

    def on_leave(self, session: Session) -> None:
        """Remove the avatar; its id is reused after ``ID_COOLDOWN_TICKS`` (or sooner if needed)."""
        slot = session.avatar_id
        if self.sessions.get(slot) is not session:
            return
        del self.sessions[slot]
        self._fresh.discard(slot)
        self.input_at[slot] = 0.0
        self.crowd.remove(slot)
        if self.blocked is not None:
            self.blocked[slot, :] = False
            self.blocked[:, slot] = False
        self.names[slot] = ""
        self._cooling.append((self.tick, slot))
        if not self.sessions:
            self.empty_since = time.monotonic()
        if self.state is InstanceState.FULL:
            self.state = InstanceState.OPEN

    def on_dispose(self) -> None:
        self.state = InstanceState.DISPOSED
        log.info("instance disposed", extra={"instance": self.id})
        self.hooks.run(self.hooks.dispose, self)

    # -- queries -------------------------------------------------------------------------------

    @property
    def population(self) -> int:
        return len(self.sessions)

    def has_room(self) -> bool:
        """Open with a free slot; a slot still cooling counts (see ``ID_COOLDOWN_TICKS``)."""
        return self.state is InstanceState.OPEN and bool(self._free or self._cooling)

    def position(self, avatar_id: int) -> tuple[str, float, float]:
        """(floor id, x, z) of an avatar, for features like kiosks."""
        c = self.crowd
        floor = self.world.floors[int(c.floor[avatar_id])].id
        return floor, float(c.pos[avatar_id, 0]), float(c.pos[avatar_id, 1])

    def _release_cooled(self) -> None:
        cooled = self.tick - ID_COOLDOWN_TICKS
        while self._cooling and self._cooling[0][0] <= cooled:
            self._free.append(self._cooling.popleft()[1])

    def _take_slot(self) -> int:
        """A free slot; else the one cooling longest, with the delta bases that may hold it dropped."""
        self._release_cooled()
        if self._free:
            return self._free.popleft()
        left_at, slot = self._cooling.popleft()
        vt = self.view_tick
        vt[(vt >= 0) & (vt <= left_at)] = -1
        return slot

    def move_avatar(self, avatar_id: int, floor: int, x: float, z: float, yaw: float) -> None:
        """Put an avatar of this instance at a point (a host's move, an agenda's shuffle); every
        viewer's next snapshot shows it there.

        Raises:
            ValueError: no such avatar here, or the point is not on the floor.
        """
        if avatar_id not in self.sessions:
            raise ValueError(f"no avatar {avatar_id} in {self.id}")
        self._apply_inputs()  # an input received before the move does not outlive it
        self.crowd.place(avatar_id, floor, x, z, yaw)
        self.visible_fresh[avatar_id] = False

    def block(self, a: int, b: int, blocked: bool = True) -> None:
        """``a`` and ``b`` stop (or start again) seeing and hearing each other."""
        if self.blocked is None:
            if not blocked:
                return
            self.blocked = np.zeros((self.capacity, self.capacity), dtype=bool)
        self.blocked[a, b] = self.blocked[b, a] = blocked

    # -- inputs --------------------------------------------------------------------------------

    def ack(self, session: Session, tick: int) -> None:
        """Take a client's acknowledgement of snapshot ``tick`` as its new delta base.

        Only a tick this instance sent to that avatar, whose view it still keeps, is taken; any
        other (never sent, in the future, older than the history) is ignored, so one bogus ACK
        cannot leave the client's base out of reach and force full snapshots from then on.
        Ignored rather than refused: an honest client may ack a frame that has just left the
        history after a stall, and a liar gains nothing from being ignored.
        """
        if (
            tick > session.acked_tick
            and self._view_tick_mv[tick % HISTORY, session.avatar_id] == tick
        ):
            session.acked_tick = tick

    def take_input(
        self,
        session: Session,
        seq: int,
        ack: int,
        mx: float,
        mz: float,
        yaw: float,
        now: float,
    ) -> None:
        """An INPUT of ``session`` that arrived at ``now`` (monotonic): its ack (as :meth:`ack`,
        0 = none) and its intent, held until the next tick (the newest of each avatar counts; a
        stale or replayed seq is ignored). ``mx``, ``mz``, ``yaw`` as decoded: finite, ``|m| <=
        1``. The one call per input of the receive path, so it does both."""
        slot = session.avatar_id
        if ack > session.acked_tick and self._view_tick_mv[ack % HISTORY, slot] == ack:
            session.acked_tick = ack
        if seq <= self._seq[slot]:
            return
        self._seq[slot] = seq
        self._pending_mv[slot] = seq
        self._mx_mv[slot] = mx
        self._mz_mv[slot] = mz
        self._yaw_mv[slot] = yaw
        fresh = self._fresh
        if slot not in fresh:
            fresh.add(slot)
            if self._input_at_mv[slot] == 0.0:
                self._input_at_mv[slot] = now

    def set_input(self, slot: int, seq: int, mx: float, mz: float, yaw: float) -> None:
        """Hold an input of the avatar ``slot`` until the next tick, arriving now (as
        :meth:`take_input` without an ack)."""
        if seq <= self._seq[slot]:
            return  # stale or replayed input
        self._seq[slot] = seq
        self._pending_mv[slot] = seq
        self._mx_mv[slot] = mx
        self._mz_mv[slot] = mz
        self._yaw_mv[slot] = yaw
        if slot not in self._fresh:
            self._fresh.add(slot)
            if self._input_at_mv[slot] == 0.0:
                self._input_at_mv[slot] = time.monotonic()

    def _apply_inputs(self) -> None:
        """The inputs held since the last tick become the avatars' intents (``Crowd.set_intents``
        for all of them in one go; their seqs are in ``pending_seq`` already)."""
        fresh = self._fresh
        if not fresh:
            return
        slots = np.fromiter(fresh, dtype=np.intp, count=len(fresh))
        fresh.clear()
        mx, mz, yaw = self._intent_in[:, slots]
        self.crowd.set_intents(slots, mx, mz, yaw)

    # -- the loop ------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"tick {self.id}")

    async def stop(self) -> None:
        await stop_task(self._task)
        self.on_dispose()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        period = 1.0 / self.config.tick_rate
        next_at = loop.time()
        while True:
            if time.monotonic() > self.lease_until:
                # no longer ours (paused past the lease, or taken over): not one more tick
                log.warning("instance lease lapsed; not ticking", extra={"instance": self.id})
                if self.on_lapse is not None:
                    self.on_lapse(self)
                return
            next_at += period
            if not self.sessions and self._ticked_empty:
                # nobody here, nobody to resume: time goes on (freed ids cool) and nothing is
                # stepped, told or written; a tick after the last one left has been run whole
                self.tick += 1
                next_at = max(next_at, loop.time() - period)  # after a stall, no burst
                await asyncio.sleep(max(0.0, next_at - loop.time()))
                continue
            self._ticked_empty = not self.sessions
            t0 = time.perf_counter()
            t1 = t0
            try:
                self.step(period)
                if self.hooks.tick:
                    self.hooks.run(self.hooks.tick, self)
                t1 = time.perf_counter()
                self.broadcast()
            except Exception:
                log.exception("tick failed", extra={"instance": self.id})
            t2 = time.perf_counter()
            self.broadcast_seconds += (t2 - t1 - self.broadcast_seconds) * 0.05
            self.metrics.observe_tick(t2 - t0)
            delay = next_at - loop.time()
            if delay < -period:
                # fell behind by more than a tick: start again from now rather than burst
                next_at = loop.time()
                delay = 0.0
            await asyncio.sleep(max(0.0, delay))

    def step(self, dt: float) -> None:
        """Advance one tick: the inputs received so far count as processed, everyone moves, and
        the quantised state joins the history that snapshots are encoded against."""
        self.tick += 1
        self._apply_inputs()
        np.copyto(self.last_seq, self.pending_seq)
        np.copyto(self.carried_at, self.input_at, where=self.carried_at == 0.0)
        self.input_at.fill(0.0)
        c = self.crowd
        c.step(dt)
        self.history[self.tick % HISTORY] = quantize(c.pos, c.floor, c.yaw)

    def _interest(self, slots: np.ndarray, tick: int) -> tuple[np.ndarray, np.ndarray]:
        """The viewers' interest sets: a staggered share recomputed, the rest from the cache.

        Positions in snapshots are always this tick's; only who is in view may be up to
        ``interest_every - 1`` ticks old. Avatars that left since are dropped from cached rows.
        """
        every = max(1, self.config.interest_every)
        redo = ~self.visible_fresh[slots] | ((slots + tick) % every == 0)
        if redo.any():
            todo = slots[redo]
            v, b = self.interest.query(self.crowd, todo)
            self.visible[todo] = v
            self.beyond[todo] = b
            self.visible_fresh[todo] = True
        visible = self.visible[slots]
        if not redo.all():
            gone = (visible >= 0) & ~self.crowd.active[np.maximum(visible, 0)]
            visible[gone] = -1
        return visible, self.beyond[slots]

    def broadcast(self) -> None:
        """Write this tick's snapshot to the viewers due one.

        At a snapshot rate below the tick rate, each viewer is due every ``tick_rate /
        snapshot_rate`` ticks, staggered by avatar id, so every tick carries an even share of the
        writes instead of every other tick carrying them all. While the process is over its CPU
        budget, ``shed`` (server/shedding.py) stretches that further.
        """
        tick = self.tick
        q = self.history[tick % HISTORY]
        every = max(1, round(self.config.tick_rate / self.config.snapshot_rate)) * self.shed
        viewers: list[Session] = []
        transports: list[asyncio.Transport] = []
        for s in self.sessions.values():
            if every == 1 or (s.avatar_id + tick) % every == 0:
                t = s.writable()
                if t is not None:
                    viewers.append(s)
                    transports.append(t)
        if not viewers:
            return
        n = len(viewers)
        slots = np.fromiter((s.avatar_id for s in viewers), dtype=np.intp, count=n)
        acked = np.fromiter((s.acked_tick for s in viewers), dtype=np.int64, count=n)
        visible, beyond = self._interest(slots, tick)
        if self.blocked is not None:  # per-viewer mask: a blocked avatar is not in the view
            hide = self.blocked[slots[:, None], np.maximum(visible, 0)] & (visible >= 0)
            visible = np.where(hide, -1, visible)
        cur, base, base_tick, base_ring = prepare_views(
            visible, self.views, self.view_tick, slots, acked, tick
        )
        self.info.update(self.names, self.colors)
        # this tick's send order (see _send_order): the frames are laid out in it
        k = _send_start(n, tick)
        packb = _packb
        frames = encode_frames(
            cur,
            base,
            base_ring,
            q,
            self.history,
            _HEAD + packb(tick),
            packb(time.time() * 1000.0),
            base_tick,
            self.last_seq[slots],
            beyond,
            self.info,
            k,
        )
        now = time.monotonic()
        data = frames.data
        ring = tick % HISTORY
        missed: list[int] = []  # avatar ids of the viewers whose frame was not sent
        a = 0
        for s, t, b in zip(
            viewers[k:] + viewers[:k],
            transports[k:] + transports[:k],
            frames.end.tolist(),
            strict=True,
        ):
            if t.get_write_buffer_size() <= s.send_limit:
                # Session.push_to's common case, inline: within the budget, header included
                s.behind_since = None
                t.write(data[a:b])
            elif not s.push_to(t, _payload(data[a:b]), now):
                # not sent: the client cannot acknowledge it, so forget the view we kept (a peer
                # too far behind is closed with TOO_SLOW by its session's output budget)
                self.view_tick[ring, s.avatar_id] = -1
                missed.append(s.avatar_id)
            a = b
        sent = n - len(missed)
        if missed:
            keep = ~np.isin(slots, missed)
            nbytes = int(frames.size[keep].sum())
            written = slots[keep]
        else:
            nbytes = int(frames.size.sum())
            written = slots
        self.metrics.sent(sent, nbytes, n - sent)
        if len(written):
            at = self.carried_at[written]
            self.metrics.observe_input_latency(now - at[at > 0.0])
            self.carried_at[written] = 0.0


_GOLDEN = 0.6180339887498949


def _send_order(n: int, tick: int) -> itertools.chain[int]:
    """The viewers' indices in this tick's send order: rotated by a golden-ratio step each tick,
    so that no viewer is always written last (at 1,000 viewers the last tenth would otherwise
    always get its frame about 12 ms after the first)."""
    k = _send_start(n, tick)
    return itertools.chain(range(k, n), range(k))


def _send_start(n: int, tick: int) -> int:
    """The index of the viewer written first at ``tick`` (see :func:`_send_order`)."""
    return int((tick * _GOLDEN) % 1.0 * n)


_packb = msgpack.Packer(use_bin_type=True).pack
_SNAPSHOT = int(MsgType.SNAPSHOT)
_HEAD = b"\x9c" + _packb(_SNAPSHOT)  # a snapshot's msgpack array: 12 items, its type first


def _payload(frame: bytes) -> bytes:
    """A frame of ours without its WebSocket header (7, 16 or 64-bit length)."""
    n = frame[1]
    return frame[2 if n < 126 else 4 if n == 126 else 10 :]
