"""The instances of one world in this process, and the sessions waiting to be resumed.

A joining avatar goes to the emptiest open instance with room (a slot whose avatar has just left
counts as room); only when every instance is full is a new one opened, up to ``max_instances``.
An instance other than the first that has stood empty for ``dispose_grace`` seconds (nobody in it,
nobody awaiting a resume) is disposed: its tick task stops and it leaves the list. A session whose socket drops stays for ``resume_window`` seconds with
its avatar in place; a hello carrying its resume token gets the same avatar back, and the old socket
(if somehow still open) is closed with REPLACED, so there is never a duplicate. A page that closes
its socket cleanly (the tab closed: code 1000 or 1001) keeps its avatar only ``LEAVE_GRACE``
seconds, enough for a reload to resume it, so that its place frees promptly.

When every place is taken, a newcomer waits in a line (``server/waiting_line.py``) with its
socket open, told its position and an estimate, and is let in as soon as a place frees.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import secrets
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from aiohttp import WSMsgType

from server.errors import PeerError
from server.instance import Instance
from server.protocol.codes import CloseCode
from server.protocol.messages import Notice
from server.session import Session, SessionState
from server.shedding import Governor
from server.tasks import stop_task
from server.waiting_line import WaitingLine

if TYPE_CHECKING:
    from server.config import Config
    from server.hooks import Hooks
    from server.metrics import Metrics
    from server.resume import Seat
    from world.loader import World

__all__ = ["Hall"]

log = logging.getLogger("emachi.hall")

DISPOSE_GRACE = 30.0  # seconds an extra instance may stand empty before it is disposed
LEAVE_GRACE = 2.0  # seconds a cleanly closed page keeps its avatar (a reload resumes within it)
CLEAN_CLOSES = frozenset({1000, 1001})  # a page that closed or navigated away, not a lost network

PALETTE = (
    0xE76F51,
    0x2A9D8F,
    0xE9C46A,
    0x457B9D,
    0xF4A261,
    0x8AB17D,
    0xB5838D,
    0x6D597A,
    0x3D85C6,
    0xD62828,
    0x43AA8B,
    0xF28482,
    0x577590,
    0xF9C74F,
    0x90BE6D,
    0x9D4EDD,
)


class Hall:
    """All instances of the world served by this process."""

    def __init__(self, world: World, config: Config, metrics: Metrics, hooks: Hooks) -> None:
        self.world = world
        self.hooks = hooks
        self.config = config
        self.metrics = metrics
        self.instances: list[Instance] = []
        self.by_token: dict[str, Session] = {}
        self.watchers: set[Session] = set()
        self._next_instance = 1
        self._reaper: asyncio.Task[None] | None = None
        self._governing: asyncio.Task[None] | None = None
        self.governor = Governor(lambda: self.instances, config.tick_rate, config.shed_above)
        self._joined = 0
        self.dispose_grace = DISPOSE_GRACE
        self.reap_every = 1.0  # seconds between passes over detached sessions and empty instances
        self.waiting = WaitingLine(self.free_places)
        # One process opens instances as it likes; in a cluster an instance is opened only under a
        # lease (server/cluster/placement.py routes each hello to an instance first), so the
        # cluster turns this off and a hello with nowhere to go is WORLD_FULL.
        self.open_freely = True
        self._stopping: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        # Everything built so far (the world, its arrays, the app, the imported modules) lives as
        # long as the process: move it out of the collector's sight, so that a full collection
        # walks only what came later instead of pausing the tick for tens of milliseconds.
        gc.collect()
        gc.freeze()
        loop = asyncio.get_running_loop()
        self._reaper = loop.create_task(self._reap(), name="resume reaper")
        self._governing = loop.create_task(self.governor.run(), name="snapshot shedding")

    async def stop(self) -> None:
        await stop_task(self._reaper)
        await stop_task(self._governing)
        for inst in self.instances:
            await inst.stop()

    @property
    def population(self) -> int:
        return sum(i.population for i in self.instances)

    def avatars(self) -> list[Session]:
        """The sessions with an avatar, in every instance (connected or awaiting a resume)."""
        return [s for i in self.instances for s in i.sessions.values()]

    def sessions(self) -> list[Session]:
        """Every session: the avatars and the watch-only viewers."""
        return [*self.avatars(), *self.watchers]

    def _instance_with_room(self) -> Instance:
        best: Instance | None = None
        for inst in self.instances:
            if inst.private:
                continue
            if inst.has_room() and (best is None or inst.population < best.population):
                best = inst
        if best is not None:
            return best
        if len(self.instances) >= self.config.max_instances or not self.open_freely:
            raise PeerError(CloseCode.WORLD_FULL)
        inst = Instance(
            f"{self.world.id}#{self._next_instance}",
            self.world,
            self.config,
            self.metrics,
            self.hooks,
        )
        self._next_instance += 1
        self.instances.append(inst)
        inst.start()
        return inst

    def join(self, session: Session, into: Instance | None = None) -> Session:
        """Place a new session, or hand back the detached one its resume token names.

        ``into``: the instance the cluster routed this hello to (if it still has room);
        otherwise the emptiest with room.

        The join or resume hooks are the caller's to run, once the peer has its WELCOME (a hook
        may send, and nothing may come before WELCOME): :meth:`joined`.
        """
        token = session.resume_token
        old = self.by_token.get(token) if token else None
        if old is not None and old.state in (SessionState.ACTIVE, SessionState.DETACHED):
            if old.state is SessionState.ACTIVE:
                # the old socket has not noticed it is dead yet: the newer connection wins
                old.close(CloseCode.REPLACED)
                old.to(SessionState.DETACHED)
            old.to(SessionState.ACTIVE)
            if old.instance is not None:
                old.instance.on_resume(old)
            return old
        session.resume_token = secrets.token_urlsafe(18)
        self._joined += 1
        session.color = PALETTE[self._joined % len(PALETTE)]
        if session.mode == "watch":
            self.watchers.add(session)
        elif session.place_in:
            self.private_instance(session.place_in).on_join(session)
        elif into is not None and into in self.instances and into.has_room():
            into.on_join(session)
        else:
            self._instance_with_room().on_join(session)
        self.by_token[session.resume_token] = session
        session.to(SessionState.ACTIVE)
        return session

    def private_instance(self, instance_id: str) -> Instance:
        """The private instance ``instance_id`` (an event's), opened if need be.

        A private instance never takes a public join (:meth:`_instance_with_room` skips it); a
        session goes there when a hello hook names it in ``session.place_in``.

        Raises:
            PeerError: WORLD_FULL when it is not open and ``max_instances`` are.
        """
        for inst in self.instances:
            if inst.id == instance_id:
                if not inst.has_room():
                    raise PeerError(CloseCode.WORLD_FULL)
                return inst
        if len(self.instances) >= self.config.max_instances:
            raise PeerError(CloseCode.WORLD_FULL)
        inst = Instance(
            instance_id, self.world, self.config, self.metrics, self.hooks, private=True
        )
        self.instances.append(inst)
        inst.start()
        return inst

    def joined(self, session: Session, resumed: bool) -> None:
        """Run the join (or resume) hooks for a session :meth:`join` placed and WELCOME told."""
        self.hooks.run(self.hooks.resume if resumed else self.hooks.join, session)

    def detach(self, session: Session, close_code: int | None = None) -> None:
        """The socket is gone; keep the avatar for the resume window (watchers just leave).

        A clean close from the page (``CLEAN_CLOSES``: the tab was closed) keeps it only
        ``LEAVE_GRACE`` seconds.
        """
        if session.state is not SessionState.ACTIVE:
            return
        if session.mode == "watch":
            self.leave(session)
            return
        session.to(SessionState.DETACHED)
        now = time.monotonic()
        if close_code in CLEAN_CLOSES:
            now -= max(0.0, self.config.resume_window - LEAVE_GRACE)
        session.detached_at = now
        session.intent_stop()

    def leave(self, session: Session) -> None:
        if session.state is SessionState.CLOSED:
            return
        session.to(SessionState.CLOSED)
        self.by_token.pop(session.resume_token, None)
        self.watchers.discard(session)
        self.hooks.run(self.hooks.leave, session)
        if session.instance is not None:
            session.instance.on_leave(session)
            self.waiting.departed()

    def restore(self, seats: Iterable[Seat]) -> list[Session]:
        """Give back the avatars a previous run of this process saved at its drain.

        Each comes back detached, in the instance of the same id (opened if need be), with the
        same avatar id at the same place, and waits for a hello with its resume token until the
        rest of its resume window has passed, like an avatar whose socket just dropped. A seat
        whose instance, avatar id or place cannot be had (another world, a taken id, a point off
        the floor) is skipped and logged.
        """
        now = time.monotonic()
        floors = {f.id: i for i, f in enumerate(self.world.floors)}
        back: list[Session] = []
        for seat in seats:
            inst = self._instance_named(seat.instance)
            floor = floors.get(seat.floor)
            if seat.token in self.by_token or inst is None or floor is None:
                log.warning("resume seat skipped", extra={"instance": seat.instance})
                continue
            c = self.config
            session = Session(c.send_buffer_limit, c.rate_per_second, c.rate_burst)
            session.name, session.color, session.mode = seat.name, seat.color, seat.mode
            session.role = seat.role
            session.resume_token = seat.token
            try:
                inst.place(session, seat.avatar_id, floor, seat.x, seat.z, seat.yaw)
            except ValueError as exc:
                log.warning(
                    "resume seat skipped", extra={"instance": seat.instance, "why": str(exc)}
                )
                continue
            session.to(SessionState.ACTIVE)
            session.to(SessionState.DETACHED)
            session.detached_at = now - max(0.0, c.resume_window - seat.left)
            self.by_token[seat.token] = session
            self.hooks.run(self.hooks.join, session)
            back.append(session)
        return back

    def open_instance(self, instance_id: str, lease_until: float = math.inf) -> Instance | None:
        """The instance ``instance_id``, opened under that id if this process has none, with
        the deadline of this process's lease on it (the cluster); None if it can not be opened."""
        inst = self._instance_named(instance_id)
        if inst is not None:
            inst.lease_until = lease_until
        return inst

    def lose(self, inst: Instance) -> None:
        """This process no longer owns ``inst`` (its lease lapsed or another process took it):
        every client is closed with MOVED, to resume with the new owner, and the instance stops.
        Nothing is written for it any more."""
        if inst not in self.instances:
            return
        self.instances.remove(inst)
        for s in list(inst.sessions.values()):
            s.close(CloseCode.MOVED)
            self.leave(s)
        log.warning("instance lost to another process", extra={"instance": inst.id})
        task = asyncio.get_running_loop().create_task(inst.stop(), name=f"stop {inst.id}")
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    def _instance_named(self, instance_id: str) -> Instance | None:
        """The instance ``instance_id`` of this world, opened under that id if there is none."""
        for inst in self.instances:
            if inst.id == instance_id:
                return inst
        world, _, n = instance_id.rpartition("#")
        if (
            world != self.world.id
            or not n.isdigit()
            or len(self.instances) >= self.config.max_instances
        ):
            return None
        inst = Instance(instance_id, self.world, self.config, self.metrics, self.hooks)
        self._next_instance = max(self._next_instance, int(n) + 1)
        self.instances.append(inst)
        inst.start()
        return inst

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(self.reap_every)
            now = time.monotonic()
            for s in list(self.by_token.values()):
                if (
                    s.state is SessionState.DETACHED
                    and now - s.detached_at > self.config.resume_window
                ):
                    self.leave(s)
            await self._dispose_empty(now)

    async def _dispose_empty(self, now: float) -> None:
        """Stop the extra instances that have stood empty past the grace period (never the first
        public one)."""
        first = next((i for i in self.instances if not i.private), None)
        for inst in list(self.instances):
            if inst is first:
                continue
            if inst.empty_since is not None and now - inst.empty_since > self.dispose_grace:
                self.instances.remove(inst)
                await inst.stop()
                self.waiting.offer()

    # -- the waiting line ----------------------------------------------------------------------

    def free_places(self) -> int:
        """Avatars the public hall can still take: room in its open instances, and instances yet to
        open (an event's private instance takes no one from the line)."""
        public = [i for i in self.instances if not i.private]
        free = sum(max(0, i.capacity - i.population) for i in public if i.has_room())
        return free + max(0, self.config.max_instances - len(self.instances)) * self.config.capacity

    def must_wait(self, session: Session) -> bool:
        """Whether a hello must queue: an avatar newcomer while the hall is full or others wait
        (watchers, event guests, who have their own instance, and resumes of a kept avatar never
        do)."""
        if session.mode == "watch" or session.place_in:
            return False
        old = self.by_token.get(session.resume_token) if session.resume_token else None
        if old is not None and old.state in (SessionState.ACTIVE, SessionState.DETACHED):
            return False
        return self.waiting.must_wait()

    async def wait_for_place(self, session: Session) -> bool:
        """Keep ``session`` in the waiting line, telling it its position (NOTICE ``queue``), until
        a place is its to take (True: call :meth:`join` at once) or its socket closes (False).

        Raises:
            PeerError: WORLD_FULL, the line itself is full.
        """
        ws = session.ws
        if ws is None:
            return False

        def tell(position: int, ahead: int, eta_s: float | None) -> None:
            data = {"position": position, "ahead": ahead, "eta_s": eta_s}
            session.send(Notice(kind="queue", data=data).encode())

        async def until_closed() -> None:
            while True:  # a visitor in line has nothing to say: anything but a close is dropped
                msg = await ws.receive()
                if msg.type in (
                    WSMsgType.CLOSE,
                    WSMsgType.CLOSING,
                    WSMsgType.CLOSED,
                    WSMsgType.ERROR,
                ):
                    return

        gone: asyncio.Task[None] = asyncio.get_running_loop().create_task(until_closed())
        try:
            return await self.waiting.wait(tell, gone)
        except OverflowError:
            raise PeerError(CloseCode.WORLD_FULL) from None
        finally:
            gone.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await gone
