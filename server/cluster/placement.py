"""Where a hello belongs: here, or on the process that owns its instance (a redirect).

A client may reach any process (a plain round-robin load balancer, no stickiness). The process
that takes the hello asks :meth:`Placement.route`:

- a watch-only viewer, or a resume of an avatar this process has: here;
- a resume token of an avatar of another process (the token's instance is in Redis): the owner
  of that instance; while the instance has no owner (its process died and the lease has not
  expired yet) the hello waits, up to a little more than a lease, for the process that takes it
  over;
- a new avatar: the emptiest instance with room in the whole cluster; when every one is full, a
  new instance on the least loaded live process (this one when it is among the least loaded).

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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from server.cluster.leases import Holder, Lease, Leases, Member

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


HERE = Route()


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


@dataclass(frozen=True, slots=True)
class Reservation:
    instance: str
    hops: int


class Reservations:
    """Sign and check seat reservations."""

    def __init__(self, secret: bytes, seconds: float = SEAT_SECONDS) -> None:
        self._secret = secret
        self.seconds = seconds

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode(), hashlib.sha256).digest()[:18])

    def sign(self, instance: str, hops: int, now: float | None = None) -> str:
        exp = int((time.time() if now is None else now) + self.seconds)
        payload = _b64(
            json.dumps({"i": instance, "h": hops, "e": exp}, separators=(",", ":")).encode()
        )
        return f"{payload}.{self._mac(payload)}"

    def check(self, seat: str, now: float | None = None) -> Reservation | None:
        """The reservation, or None when it is forged, damaged or expired."""
        payload, _, mac = seat.partition(".")
        if not payload or not hmac.compare_digest(mac, self._mac(payload)):
            return None
        try:
            d = json.loads(_unb64(payload))
            instance, hops, exp = str(d["i"]), int(d["h"]), float(d["e"])
        except (ValueError, KeyError, TypeError):
            return None
        if exp < (time.time() if now is None else now):
            return None
        return Reservation(instance, hops)


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
        self._waits: dict[tuple[str, Holder | None], asyncio.Future[Holder | None]] = {}

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
                hops, reserved = res.hops, res.instance
        if token:
            inst = await self.leases.token_instance(token)
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
        if reserved is not None:
            route = await self._to(reserved, hops, wait=False, reserved=True)
            if token and token in self.hall.by_token:
                return HERE
            if route is not None:
                return route
        return await self._new(hops)

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
            if member is None or not member.url or (gone and ws_url(member.url) == gone):
                # after the wait a live owner is tried all the same (the client's own network)
                holder = await self._await_owner(inst, stale=holder) or holder
        if holder is None and wait:
            holder = await self._await_owner(inst)
        if holder is None:
            if not reserved:
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

    async def _await_owner(self, inst: str, stale: Holder | None = None) -> Holder | None:
        """Wait (bounded) for an instance whose owner is gone to be taken over: its holder when
        it has one other than ``stale``, else None. Every hello waiting for the same instance
        shares one wait (one look-up a tenth of a second, not one per hello)."""
        key = (inst, stale)
        running = self._waits.get(key)
        if running is None:
            running = self._waits[key] = asyncio.ensure_future(self._poll_owner(inst, stale))
            running.add_done_callback(lambda _f: self._waits.pop(key, None))
        return await asyncio.shield(running)

    async def _poll_owner(self, inst: str, stale: Holder | None) -> Holder | None:
        loop = asyncio.get_running_loop()
        end = loop.time() + self.wait_for_owner
        while loop.time() < end:
            await asyncio.sleep(0.1)
            if self._local(inst) is not None:
                return Holder(self.me, 0)
            holder = await self.leases.holder(inst)  # read now: the beat's table is older
            if holder is None:
                # its owner is gone: open it here rather than wait for another process's beat
                got = await self.leases.take_over(inst)
                if isinstance(got, Lease):
                    return Holder(self.me, got.fence)
                holder = got
            if holder is not None and holder != stale:
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
        if lease is None or lease.lost:
            return None
        return self.hall.open_instance(inst_id, lease_until=lease.valid_until)

    async def _redirect(self, pid: str, inst: str, hops: int) -> Route | None:
        if hops >= MAX_HOPS:
            return None
        member = self.leases.members.get(pid)
        if member is None:
            member = await self.leases.member(pid)
        if member is None or not member.url:
            return None
        self.redirects += 1
        return Route(
            url=ws_url(member.url), seat=self.reservations.sign(inst, hops + 1), instance=inst
        )

    # -- a new avatar ---------------------------------------------------------------------------

    def _population(self, inst: str, holder: Holder) -> int | None:
        if holder.process_id == self.me:
            local = self._local(inst)
            return local.population if local is not None and local.has_room() else None
        member = self.leases.members.get(holder.process_id)
        if member is None:
            return None
        return member.instances.get(inst, 0)

    async def _new(self, hops: int) -> Route:
        """The emptiest instance with room in the cluster, else a new one on the least loaded
        live process; after ``MAX_HOPS`` (or with Redis away) the best this process can do."""
        capacity = self.hall.config.capacity
        if hops < MAX_HOPS and self.leases.connected:
            candidates: list[tuple[int, int, str, Holder]] = []
            for inst, holder in self.leases.holders.items():
                pop = self._population(inst, holder)
                if pop is not None and pop < capacity:
                    candidates.append((pop, _number(inst), inst, holder))
            for _pop, _n, inst, holder in sorted(candidates, key=lambda c: (c[0], c[1])):
                if holder.process_id == self.me:
                    route = self._here(self._local(inst))
                else:
                    route = await self._redirect(holder.process_id, inst, hops)
                if route is not None:
                    return route
            route = await self._open_new(hops)
            if route is not None:
                return route
        # here, in an instance this process holds, with room; else the hall says WORLD_FULL
        return self._held_with_room() or Route(instance="")

    def _held_with_room(self) -> Route | None:
        for local in sorted(self.hall.instances, key=lambda i: i.population):
            if local.has_room() and local.id in self.leases.mine:
                return Route(into=local, instance=local.id)
        return None

    async def _open_new(self, hops: int) -> Route | None:
        world = self.hall.world.id
        taken = {_number(i) for i in self.leases.holders} | {
            _number(i.id) for i in self.hall.instances
        }
        # this process's own load as it is now, the others' as of their last beat
        members = [m for m in self.leases.members.values() if m.process_id != self.me]
        members.append(Member(self.me, "", self.hall.population))
        fewest = min(m.people for m in members)
        least = sorted((m for m in members if m.people == fewest), key=lambda m: m.process_id)
        target = self.me if any(m.process_id == self.me for m in least) else least[0].process_id
        n = 1
        for _ in range(self.hall.config.max_instances * 4):
            while n in taken:
                n += 1
            inst = f"{world}#{n}"
            if target != self.me:
                return await self._redirect(target, inst, hops)
            if len(self.hall.instances) >= self.hall.config.max_instances:
                return None
            got = await self.leases.acquire(inst)
            if isinstance(got, Lease):
                return self._here(await self._open(inst))
            if got is None:
                return None  # Redis away
            # someone opened it since the last beat: it most likely has room (its owner routes
            # again if not)
            route = await self._redirect(got.process_id, inst, hops)
            if route is not None:
                return route
            taken.add(n)
        return None


def _number(inst: str) -> int:
    n = inst.rpartition("#")[2]
    return int(n) if n.isdigit() else 0
