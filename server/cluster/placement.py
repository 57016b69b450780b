"""Where a hello belongs: here, or on the process that owns its instance (a redirect).

A client may reach any process (a plain round-robin load balancer, no stickiness). The process
that takes the hello asks :meth:`Placement.route`:

- a watch-only viewer, or a resume of an avatar this process has: here;
- a resume token of an avatar of another process (the token's instance is in Redis): the owner
  of that instance; while the instance has no owner (its process died and the lease has not
  expired yet) the hello waits, up to a little more than a lease, for the process that takes it
  over;
- a new avatar: the emptiest instance with room in the whole cluster (its population the
  larger of its owner's last beat, plus the newcomers sent there since this process read it,
  and the seats in Redis, written as each avatar joins); when every one is full, a new
  instance on the least loaded live process: the fewest instances, counting those this process
  just sent hellos to open and its own as they are now (the others' beat is up to a beat old),
  then the fewest people in whole instances' worth, ties to the highest
  :func:`~server.cluster.leases.rank` of (instance, process), so equal processes do not all
  lose to the one deciding and two deciders pick the same one. A process whose
  beat stopped (:attr:`Leases.stale`) is never chosen. When no other process will do, the
  hello is served here, in an instance opened for it if need be: it is refused WORLD_FULL only
  when this process can open no more.

When the owner is another process, the answer is a :class:`Route` with its address and a seat
reservation: ``base64url(JSON {i: instance, h: hops, e: expiry}) "." base64url(HMAC-SHA256)``
signed with the cluster secret (``--cluster-secret``, else derived from the staff token, which
every process of a cluster shares). The client says hello there with ``opts.seat``; the owner
checks the signature and the expiry and places the avatar in that instance (taking its lease
first when the reservation opens a new one). A reservation gives nothing but a place in an
instance; after ``MAX_HOPS`` redirects a hello is served wherever it is, so that a stale view
can never bounce a client for ever.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from server.cluster.leases import Holder, Lease, Leases, LookupUnanswered, rank

if TYPE_CHECKING:
    from server.hall import Hall
    from server.instance import Instance
    from server.session import Session

__all__ = [
    "Route",
    "Placement",
    "LocalPlacement",
    "ClusterPlacement",
    "Reservations",
    "Reservation",
    "secret_for",
    "ws_url",
    "MAX_HOPS",
]

log = logging.getLogger("emachi.cluster.placement")

MAX_HOPS = 3
#: seconds a seat reservation is good for
SEAT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Route:
    """Here (``url`` None; ``into`` the instance to place the avatar in, or None for the hall's
    own choice), or the address of the owner and a seat reservation for it."""

    into: Instance | None = None
    url: str | None = None
    seat: str = ""
    instance: str = ""
    #: neither: the client is to say hello again soon through the balancer (MOVED, no seat)
    retry: bool = False


HERE = Route()
#: a resume whose instance lives on another process, with this hello out of redirects
RETRY = Route(retry=True)


class Placement(Protocol):
    async def route(self, session: Session) -> Route:
        """Where ``session`` (its hello read: name, mode, resume token, opts) belongs."""
        ...


class LocalPlacement:
    """One process: everything is here, and the hall chooses the instance."""

    async def route(self, session: Session) -> Route:
        return HERE


def secret_for(cluster_secret: str | None, staff_token: str) -> bytes:
    """The key seat reservations are signed with: ``--cluster-secret``, else one derived from
    the staff token (never the token itself, so a leaked reservation key is not the staff's)."""
    if cluster_secret:
        return cluster_secret.encode()
    return hmac.new(staff_token.encode(), b"emachi seat reservation v1", hashlib.sha256).digest()


def ws_url(base: str) -> str:
    """The WebSocket address of a process from its public URL (``https://p1.example`` →
    ``wss://p1.example/ws``)."""
    base = base.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[len("https://") :]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://") :]
    return base + "/ws"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(slots=True)
class _Sent:
    """Newcomers sent to one instance of ``process_id``: when (monotonic), oldest first."""

    process_id: str
    times: list[float] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Reservation:
    instance: str
    hops: int
    #: instances the hello already found full on its way (it is not sent back to them)
    full: tuple[str, ...] = ()


class Reservations:
    """Sign and check seat reservations."""

    def __init__(self, secret: bytes, seconds: float = SEAT_SECONDS) -> None:
        self._secret = secret
        self.seconds = seconds

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode(), hashlib.sha256).digest()[:18])

    def sign(
        self, instance: str, hops: int, now: float | None = None, full: tuple[str, ...] = ()
    ) -> str:
        exp = int((time.time() if now is None else now) + self.seconds)
        d: dict[str, object] = {"i": instance, "h": hops, "e": exp}
        if full:
            d["x"] = list(full)
        payload = _b64(json.dumps(d, separators=(",", ":")).encode())
        return f"{payload}.{self._mac(payload)}"

    def check(self, seat: str, now: float | None = None) -> Reservation | None:
        """The reservation, or None when it is forged, damaged or expired."""
        payload, _, mac = seat.partition(".")
        if not payload or not hmac.compare_digest(mac, self._mac(payload)):
            return None
        try:
            d = json.loads(_unb64(payload))
            instance, hops, exp = str(d["i"]), int(d["h"]), float(d["e"])
            full = tuple(str(x) for x in d.get("x", ()))
        except (ValueError, KeyError, TypeError):
            return None
        if exp < (time.time() if now is None else now):
            return None
        return Reservation(instance, hops, full)


class ClusterPlacement:
    """Routing over :class:`~server.cluster.leases.Leases` (see the module)."""

    def __init__(
        self,
        leases: Leases,
        hall: Hall,
        reservations: Reservations,
        *,
        wait_for_owner: float | None = None,
    ) -> None:
        self.leases = leases
        self.hall = hall
        self.reservations = reservations
        #: how long a resume waits for its instance to get an owner again (a failover)
        self.wait_for_owner = wait_for_owner if wait_for_owner is not None else leases.ttl + 2.0
        self.redirects = 0
        self._waits: dict[tuple[str, Holder | None, bool], asyncio.Future[Holder | None]] = {}
        #: newcomers this process sent to each instance of another process lately (an instance
        #: to open included)
        self._sent: dict[str, _Sent] = {}
        leases.on_beat.append(self._forget_sent)

    @property
    def me(self) -> str:
        return self.leases.process_id

    async def route(self, session: Session) -> Route:
        if session.mode == "watch":
            return HERE
        token = session.resume_token
        if token and token in self.hall.by_token:
            return HERE
        seat = session.opts.get("seat")
        hops = 0
        reserved: str | None = None
        full: tuple[str, ...] = ()
        if isinstance(seat, str) and seat:
            res = self.reservations.check(seat)
            if res is None:
                # forged, expired, or signed with another secret (processes that do not share
                # one would bounce a client between them): here if there is room, else one hop
                log.warning("seat reservation refused (forged, expired or another secret)")
                local = self._held_with_room()
                if local is not None:
                    return local
                hops = MAX_HOPS - 1
            else:
                hops, reserved, full = res.hops, res.instance, res.full
        if token:
            try:
                inst = await self.leases.token_instance(token)
            except LookupUnanswered:
                if self.leases.connected:
                    # Redis is up but slow to answer (a busy machine): not knowing where the
                    # resident's seat is, a new avatar would lose it; they try again soon
                    return RETRY
                inst = None  # Redis away: served here (a new avatar) rather than not at all
            if inst is not None and (reserved is None or reserved == inst):
                gone = session.opts.get("gone")
                gone = gone if isinstance(gone, str) else ""
                route = await self._to(inst, hops, wait=True, gone=gone)
                if token in self.hall.by_token:
                    # given back here while it waited (this process took the instance over):
                    # its own place, full instance or not
                    return HERE
                if route is not None:
                    return route
                holder = await self.leases.holder(inst)
                if holder is None or hops >= MAX_HOPS:
                    # its instance is still being taken over (no owner within the wait, on a
                    # busy machine), or it has one and only the redirects ran out (views a
                    # beat apart during a failover): a new avatar would lose the resident's
                    # place, so they say hello again through the balancer, from hop 0, for as
                    # long as their seat lives in Redis (the resume window)
                    return RETRY
        if reserved is not None:
            route = await self._to(reserved, hops, wait=False, reserved=True)
            if token and token in self.hall.by_token:
                return HERE
            if route is not None:
                return route
            full = (*full, reserved)  # full by now (or gone): routed again, never back to it
        return await self._new(hops, full)

    # -- an instance that exists (or a reservation opens) -------------------------------------

    async def _to(
        self, inst: str, hops: int, *, wait: bool, reserved: bool = False, gone: str = ""
    ) -> Route | None:
        """The route to ``inst``'s owner, or None to place the avatar elsewhere (full, gone).

        ``wait`` (a resume): while the instance has no owner, or its owner is presumed gone (no
        longer a live process, or ``gone``: the address the client was just sent to and could not
        reach), wait for the lease to pass on rather than send the client to a dead address or
        give it a new avatar."""
        holder = self.leases.holders.get(inst)
        if holder is None or (
            holder.process_id != self.me and holder.process_id not in self.leases.members
        ):
            holder = await self.leases.holder(inst)
        if holder is not None and wait and holder.process_id != self.me:
            member = self.leases.members.get(holder.process_id) or await self.leases.member(
                holder.process_id
            )
            if (
                member is None
                or not member.url
                or (gone and ws_url(member.url) == gone)
                or await self.leases.refuses(holder.process_id)
            ):
                # after the wait a live owner is tried all the same (the client's own network);
                # an owner that was only stale (its beat late) is tried as soon as it beats again;
                # one on this machine whose port refuses (it died a moment ago, its beat not yet
                # missed) is not sent the client: the redirect would lead nowhere
                refused = member is not None and bool(member.url)
                holder = await self._await_owner(inst, stale=holder, refused=refused) or holder
        if holder is None and wait:
            holder = await self._await_owner(inst)
        if holder is None:
            if not reserved or len(self.hall.instances) >= self.hall.config.max_instances:
                return None
            got = await self.leases.acquire(inst)  # a reservation for a new instance, here
            if isinstance(got, Lease):
                return self._here(await self._open(inst))
            holder = got if isinstance(got, Holder) else None
            if holder is None:
                return None
        if holder.process_id == self.me:
            local = self._local(inst) or await self._open(inst)
            return self._here(local)
        return await self._redirect(holder.process_id, inst, hops)

    async def _await_owner(
        self, inst: str, stale: Holder | None = None, refused: bool = False
    ) -> Holder | None:
        """Wait (bounded) for an instance whose owner is gone to be taken over: its holder when
        it has one other than ``stale`` (or ``stale`` again when its beat is back, unless the
        client was ``refused`` by it), else None. Every hello waiting for the same instance
        shares one wait (one look-up a tenth of a second, not one per hello)."""
        key = (inst, stale, refused)
        running = self._waits.get(key)
        if running is None:
            running = self._waits[key] = asyncio.ensure_future(
                self._poll_owner(inst, stale, refused)
            )
            running.add_done_callback(lambda _f: self._waits.pop(key, None))
        return await asyncio.shield(running)

    async def _poll_owner(self, inst: str, stale: Holder | None, refused: bool) -> Holder | None:
        loop = asyncio.get_running_loop()
        end = loop.time() + self.wait_for_owner
        orphaned_at: float | None = None
        while loop.time() < end:
            await asyncio.sleep(0.1)
            if self._local(inst) is not None:
                return Holder(self.me, 0)
            holder = await self.leases.holder(inst)  # read now: the beat's table is older
            if holder is None:
                now = loop.time()
                orphaned_at = now if orphaned_at is None else orphaned_at
                # its owner is gone: the survivor assign() names opens it (the orphans of one
                # process spread over the survivors); anyone does once that one is late
                assigned = self.leases.assignee(inst)
                if assigned == self.me or now - orphaned_at >= 2 * self.leases.interval:
                    log.info(
                        "taking over an orphan a resume waits for",
                        extra={"instance": inst, "assigned": assigned or ""},
                    )
                    got = await self.leases.take_over(inst)
                    if isinstance(got, Lease):
                        return Holder(self.me, got.fence)
                    holder = got
            if holder is not None and (
                holder != stale or (not refused and holder.process_id in self.leases.members)
            ):
                return holder
        return None

    def _here(self, inst: Instance | None) -> Route | None:
        if inst is None or not inst.has_room():
            return None
        return Route(into=inst, instance=inst.id)

    def _local(self, inst_id: str) -> Instance | None:
        for inst in self.hall.instances:
            if inst.id == inst_id:
                return inst
        return None

    async def _open(self, inst_id: str) -> Instance | None:
        """Open the instance this process holds the lease of (once, however many hellos ask)."""
        local = self._local(inst_id)
        if local is not None:
            return local
        lease = self.leases.mine.get(inst_id)
        if lease is None or lease.lost or lease.valid_until <= time.monotonic():
            return None  # a lease that lapsed here (not renewed in time) opens nothing
        return self.hall.open_instance(inst_id, lease_until=lease.valid_until)

    async def _redirect(
        self, pid: str, inst: str, hops: int, full: tuple[str, ...] = ()
    ) -> Route | None:
        if hops >= MAX_HOPS:
            return None
        member = self.leases.members.get(pid)
        if member is None:
            member = await self.leases.member(pid)
        if member is None or not member.url:
            return None
        self.redirects += 1
        return Route(
            url=ws_url(member.url),
            seat=self.reservations.sign(inst, hops + 1, full=full),
            instance=inst,
        )

    # -- a new avatar ---------------------------------------------------------------------------

    def _forget_sent(self) -> None:
        """After a beat: what the owners' reports read by it may count is dropped; an instance
        sent to open that never did is forgotten after a seat's life."""
        now, read = time.monotonic(), self.leases.read_at
        kept: dict[str, _Sent] = {}
        for inst, sent in self._sent.items():
            if inst in self.leases.holders:
                sent.times[:] = [t for t in sent.times if t > read]
                if sent.times:
                    kept[inst] = sent
            elif now - sent.times[0] < SEAT_SECONDS:
                kept[inst] = sent
        self._sent = kept

    def _note_sent(self, pid: str, inst: str) -> None:
        sent = self._sent.get(inst)
        if sent is None or sent.process_id != pid:
            sent = self._sent[inst] = _Sent(pid)
        sent.times.append(time.monotonic())

    def _population(self, inst: str, holder: Holder) -> int | None:
        """How many ``inst`` holds: here, as it is; elsewhere, its owner's last beat and the
        newcomers this process sent there since it read that beat (a report read earlier may
        or may not count the ones sent before: too few costs a hop, too many would open an
        instance too soon)."""
        if holder.process_id == self.me:
            local = self._local(inst)
            if local is None:
                # leased a moment ago, opening (its acquirer resumes a turn later): empty
                lease = self.leases.mine.get(inst)
                return 0 if lease is not None and not lease.lost else None
            return local.population if local.has_room() else None
        member = self.leases.members.get(holder.process_id)
        if member is None:
            return None  # gone, or its beat stopped
        sent = self._sent.get(inst)
        if sent is None or sent.process_id != holder.process_id:
            extra = 0
        elif inst not in self.leases.holders:
            extra = len(sent.times)  # just sent to open: no report has it yet
        else:
            extra = sum(1 for t in sent.times if t > self.leases.read_at)
        return member.instances.get(inst, 0) + extra

    def _instances(self) -> dict[str, Holder]:
        """Every instance this process knows of: the holders' table and the instances it just
        sent hellos to open (as if held by the process they were sent to)."""
        out = dict(self.leases.holders)
        for inst, sent in self._sent.items():
            out.setdefault(inst, Holder(sent.process_id, 0))
        return out

    async def _new(self, hops: int, full: tuple[str, ...] = ()) -> Route:
        """The emptiest instance with room in the cluster (none of ``full``, found full on the
        way here), else a new one on the least loaded live process; after ``MAX_HOPS`` (or
        with Redis away) the best this process can do."""
        capacity = self.hall.config.capacity
        if hops < MAX_HOPS and self.leases.connected:
            # the others' beats are up to a beat old: right after a burst every instance would
            # look as if it had room; the seats in Redis are written as each avatar joins
            # (only those with room by their owner's beat: the seats can only make one fuller,
            # so with none, as when every instance is full, the hello makes no Redis call here;
            # on a busy process each call costs a turn of its loop, a tick or more)
            roomy = []
            for i, h in self._instances().items():
                if h.process_id != self.me:
                    pop = self._population(i, h)
                    if pop is not None and pop < capacity:
                        roomy.append(i)
            seated = await self.leases.seated(roomy)
            # what this process knows after the read (other hellos went on meanwhile)
            known = {i: h for i, h in self._instances().items() if i not in full}
            candidates: list[tuple[int, int, str, Holder]] = []
            for inst, holder in known.items():
                pop = self._population(inst, holder)
                if pop is not None:
                    pop = max(pop, seated.get(inst, 0))
                if pop is not None and pop < capacity:
                    candidates.append((pop, _number(inst), inst, holder))
            for _pop, _n, inst, holder in sorted(candidates, key=lambda c: (c[0], c[1])):
                if holder.process_id == self.me:
                    route = self._here(self._local(inst) or await self._open(inst))
                else:
                    route = await self._redirect(holder.process_id, inst, hops, full)
                    if route is not None:
                        self._note_sent(holder.process_id, inst)
                if route is not None:
                    return route
            route = await self._open_new(hops, full)
            if route is not None:
                return route
        # here, in an instance this process holds with room, else in one it opens now; a hello is
        # refused WORLD_FULL only when this process can open none
        if not self.leases.connected:
            return self._held_with_room() or Route(instance="")
        return self._held_with_room() or await self._open_here() or Route(instance="")

    def _held_with_room(self) -> Route | None:
        for local in sorted(self.hall.instances, key=lambda i: i.population):
            if local.has_room() and local.id in self.leases.mine:
                return Route(into=local, instance=local.id)
        return None

    def _loads(self) -> dict[str, tuple[int, int]]:
        """Each live process (its beat advancing) → (instances, people): this process's as they
        are now, the others' from the holders' table (with the instances just sent to open) and
        their last beat."""
        instances = dict.fromkeys(self.leases.members, 0)
        people = {pid: m.people for pid, m in self.leases.members.items()}
        instances[self.me] = 0
        people[self.me] = self.hall.population
        for holder in self._instances().values():
            if holder.process_id in instances:
                instances[holder.process_id] += 1
        for inst, sent in self._sent.items():
            if sent.process_id in people and inst not in self.leases.holders:
                people[sent.process_id] += len(sent.times)
        return {pid: (instances[pid], people[pid]) for pid in instances}

    def _next_number(self, taken: set[int]) -> int:
        n = 1
        while n in taken:
            n += 1
        return n

    async def _open_new(self, hops: int, full: tuple[str, ...] = ()) -> Route | None:
        """A new instance on the least loaded live process (see the module); None when none
        will take it (this process at its ``max_instances`` and no other to send it to)."""
        world = self.hall.world.id
        taken = (
            {_number(i) for i in self._instances()}
            | {_number(i.id) for i in self.hall.instances}
            | {_number(i) for i in full}
        )
        for _ in range(self.hall.config.max_instances * 4):
            inst = f"{world}#{self._next_number(taken)}"
            loads = self._loads()
            # people in whole instances' worth: the others' counts are a beat old, and two
            # deciders that see them differ by a few should still pick the same process
            cap = max(1, self.hall.config.capacity)
            order = sorted(
                loads, key=lambda pid: (loads[pid][0], loads[pid][1] // cap, -rank(inst, pid))
            )
            for target in order:
                if target != self.me:
                    route = await self._redirect(target, inst, hops, full)
                    if route is not None:
                        self._note_sent(target, inst)
                        return route
                    continue  # out of hops, or it has no address: the next one
                if len(self.hall.instances) >= self.hall.config.max_instances:
                    continue
                got = await self.leases.acquire(inst)
                if isinstance(got, Lease):
                    return self._here(await self._open(inst))
                if got is None:
                    return None  # Redis away
                # someone opened it since the last beat: it most likely has room (its owner
                # routes again if not)
                route = await self._redirect(got.process_id, inst, hops, full)
                if route is not None:
                    self._note_sent(got.process_id, inst)
                    return route
                break  # the table is behind: try the next number
            else:
                return None
            taken.add(_number(inst))
        return None

    async def _open_here(self) -> Route | None:
        """A new instance here for a hello nobody else will take (out of hops, or no other
        process): the next free number this process can lease."""
        world = self.hall.world.id
        taken = {_number(i) for i in self._instances()} | {
            _number(i.id) for i in self.hall.instances
        }
        for _ in range(self.hall.config.max_instances * 4):
            if len(self.hall.instances) >= self.hall.config.max_instances:
                return None
            n = self._next_number(taken)
            got = await self.leases.acquire(f"{world}#{n}")
            if isinstance(got, Lease):
                return self._here(await self._open(f"{world}#{n}"))
            if got is None:
                return None
            taken.add(n)
        return None


def _number(inst: str) -> int:
    n = inst.rpartition("#")[2]
    return int(n) if n.isdigit() else 0
