"""Who owns each instance: a lease per instance, with an expiry and a fencing number.

Each instance of the world is owned by exactly one live process at a time. The owner holds a
lease that expires after ``ttl`` seconds unless renewed; every acquisition takes a new fencing
number (``INCR``), so whoever holds the highest number is the owner and a process that was
paused past its lease can be told apart from the current one.

Two backends behind one small interface (:class:`Leases`): :class:`LocalLeases` (one process:
always the owner, fence 1, never lapses) and :class:`RedisLeases`. The Redis one renews every
lease of this process, writes its presence (address and load) and the seats of its avatars in
**one** script call per beat (``interval``, about a second), then reads the table of owners and
live processes in one pipeline. Every call is asynchronous and bounded by ``timeout``; none runs
on the tick path: an instance only compares the monotonic deadline :attr:`Lease.valid_until`
with the clock on each tick (``Instance.lease_until``).

The deadline is the start of the latest renewal attempt plus ``ttl`` (less a margin): Redis
counts the lease from when the attempt reached it, which is later. An attempt that failed because
Redis did not answer counts as an attempt: while a process keeps trying and Redis answers nobody
(paused, down), nobody can take the lease either, and the process keeps ticking. What a process
can not be is *late*: one that was itself paused (SIGSTOP, a swap storm) made no attempt, so its
deadline passes, it stops ticking when it wakes, and another process has taken the lease with a
higher fence. Writes for an instance (the seats) carry the fence and Redis refuses them when the
fence is no longer the instance's.

When Redis comes back after an outage, an owner re-takes each lease that expired meanwhile with
the same fence (nobody took another; or the Redis came back empty, with no fence at all); after
an outage long enough for a lease to lapse (``ttl`` less two beats), a process takes a lease it did
not hold only after Redis has answered it continuously for ``ttl``, so the owners re-take theirs
first. A shorter gap (one call that timed out on a loaded machine) holds no takeover back.

Redis layout (prefix ``emachi:`` by default):

- ``{prefix}lease:{instance}``: ``"{process id} {fence}"``, expiring after ``ttl``;
- ``{prefix}fence:{instance}``: the last fencing number handed out (never expires);
- ``{prefix}insts``: set of the instances that exist (an index; cleaned by readers);
- ``{prefix}live:{process}``: JSON ``{url, people, inst: {id: population}, b: beat, iv: beat
  interval}``, expiring after ``ttl``; ``{prefix}lives``: set of process ids (an index);
- ``{prefix}seats:{instance}``: hash resume token → seat JSON (``server.resume.Seat`` and
  ``at``, the wall time it was written), expiring after the resume window;
- ``{prefix}tok:{token}``: the instance of a resume token, expiring after the resume window.

A process whose presence record is still there but whose beat counter ``b`` has not advanced for
more than ``STALE_BEATS`` of its intervals is *gone for routing* (:attr:`Leases.members` leaves it
out, :attr:`Leases.stale` names it): no hello is sent to it and no instance is placed on it. Its
record would otherwise live a whole lease after a SIGKILL and send clients to a dead address. Its
leases are untouched: they expire in Redis as always, and only then can another process take its
instances (with a higher fence). A reader that itself did not read for a while judges a counter
that did not move only if Redis answered it all along since it first read that value (a Redis
that was away froze every counter: they are read afresh).

Evidence of death: a stale process on this machine (its record's ``nd``, boot id and network
namespace, is this process's) whose listening address (``pr``) refuses a TCP connection is dead
(:attr:`RedisLeases.dead`): nothing listens there, while a paused or swamped process still
listens (the kernel completes connections for it) and a stopping one beats until it gives its
leases up. Its instances are taken at once, before their leases expire, with a higher fence
(``ACQUIRE_LUA`` takes a lease that is still exactly the dead holder's), so whatever it might
still send is refused. Between machines only the expiry tells.

When an owner is gone, each of its instances is taken over by one survivor chosen by
:func:`assign` (the fewest instances, ties broken by a hash of instance and process), which
every survivor computes alike from the table of holders, so that the orphans spread over the
survivors instead of all going to the first one that looks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from server.cluster.bus import REDIS_DOWN
from server.tasks import stop_task

__all__ = [
    "Lease",
    "LookupUnanswered",
    "Member",
    "Holder",
    "BeatInput",
    "Leases",
    "LocalLeases",
    "RedisLeases",
    "DEFAULT_LEASE_TTL",
    "STALE_BEATS",
    "assign",
    "rank",
]

log = logging.getLogger("emachi.cluster.leases")

DEFAULT_LEASE_TTL = 2.5
#: the beat: this share of the ttl, at most BEAT_MAX seconds (ttl 2.5 s: every 0.5 s)
BEAT_SHARE = 0.2
BEAT_MAX = 0.5
#: share of the ttl a lease is given up before Redis would expire it (clock rates differ a little)
MARGIN = 0.1
#: a process whose beat counter has not advanced for more than this many of its intervals is gone
#: for routing and placement (its leases still expire only in Redis)
STALE_BEATS = 2.0


#: seconds a survivor waits for a connection to a stale process's probe address
PROBE_TIMEOUT = 0.3
#: a hello's probe of an owner's address is shared by the hellos of this many seconds
PROBE_EVERY = 0.25


def _node_id() -> str:
    """This machine's boot and network namespace: two processes that share it reach each other's
    listening sockets at the same addresses, so a refused connection means nothing listens there
    (empty when /proc does not say: no probing)."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            boot = f.read().strip()
        net = os.stat("/proc/self/ns/net").st_ino
    except OSError:
        return ""
    return f"{boot}:{net}" if boot else ""


#: see :func:`_node_id`
NODE = _node_id()


async def refused(probe: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """True when a TCP connection to ``probe`` (``host:port``) is refused: no process listens
    there. A paused or busy process still has its listening socket (the kernel completes the
    handshake), and a timeout or any other error proves nothing: False."""
    host, _, port = probe.rpartition(":")
    if not host or not port.isdigit():
        return False
    try:
        async with asyncio.timeout(timeout):
            _reader, writer = await asyncio.open_connection(host.strip("[]"), int(port))
    except ConnectionRefusedError:
        return True
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return False


def rank(instance: str, process_id: str) -> int:
    """A number every process computes alike for (instance, process): among equally loaded
    processes the one of highest rank gets the instance (rendezvous hashing), so ties do not
    all go to the process that decides, and two deciders agree."""
    digest = hashlib.blake2b(f"{instance} {process_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def assign(
    orphans: Collection[str],
    live: Collection[str],
    holders: Mapping[str, Holder],
    previous: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Which live process takes over each orphaned instance: one at a time (in instance
    order), to the process with the fewest instances so far (those in ``holders`` held by live
    processes, and the orphans already given), ties to the highest :func:`rank`. Never the
    process that held the orphan (``previous``: instance → its last holder; it lost it). Pure:
    every survivor computes the same answer from the same table.

    Returns:
        instance → process id (an orphan is missing when there is no other live process).
    """
    load = dict.fromkeys(sorted(live), 0)
    for inst, h in holders.items():
        if h.process_id in load and inst not in orphans:
            load[h.process_id] += 1
    out: dict[str, str] = {}
    for inst in sorted(orphans, key=_order):
        held = holders.get(inst)
        old = (previous or {}).get(inst) or (held.process_id if held is not None else None)
        pids = [p for p in load if p != old]
        if not pids:
            continue
        best = min(pids, key=lambda p: (load[p], -rank(inst, p)))
        out[inst] = best
        load[best] += 1
    return out


def _order(inst: str) -> tuple[str, int]:
    world, _, n = inst.rpartition("#")
    return (world, int(n)) if n.isdigit() else (inst, 0)


class LookupUnanswered(Exception):
    """Redis did not answer a look-up in time: what it holds is unknown for now."""


@dataclass(slots=True)
class Lease:
    """This process's lease on one instance."""

    instance: str
    fence: int
    #: monotonic time after which this process must not tick the instance; -inf once lost
    valid_until: float

    @property
    def lost(self) -> bool:
        return self.valid_until == -math.inf


@dataclass(frozen=True, slots=True)
class Member:
    """A live process as the last beat saw it."""

    process_id: str
    url: str
    people: int
    instances: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds an instance's lease, with which fence."""

    process_id: str
    fence: int


@dataclass(frozen=True, slots=True)
class BeatInput:
    """What this process tells the cluster on each beat: where it serves, its load, and the
    seats of the avatars of each instance it owns (token → seat JSON text)."""

    url: str
    people: int
    instances: Mapping[str, int]
    seats: Mapping[str, Mapping[str, str]]
    #: ``host:port`` where this process listens, as another process on the same machine (and
    #: network namespace) connects to it: a refused connection there is evidence of death
    probe: str = ""


Source = Callable[[], BeatInput]
#: a lease was taken over from a process that is gone: (lease, token → seat JSON)
Takeover = Callable[[Lease, dict[str, dict[str, Any]]], None]


class Leases(Protocol):
    """Ownership of the instances of a cluster."""

    process_id: str
    ttl: float
    #: seconds between two beats
    interval: float
    #: live processes, by id (this one included), as of the last beat; a process whose beat
    #: stopped advancing is not among them (see the module)
    members: dict[str, Member]
    #: processes whose presence record is still there but whose beat stopped advancing
    stale: set[str]
    #: monotonic time the last beat read the table (``members``, ``holders``) from Redis
    read_at: float
    #: instance → holder, as of the last beat (this process's own leases always up to date)
    holders: dict[str, Holder]
    #: this process's leases
    mine: dict[str, Lease]
    #: called with each lease taken over from a process that is gone, with its seats
    on_takeover: list[Takeover]
    #: called after every beat
    on_beat: list[Callable[[], None]]
    #: called as soon as a renewal was answered (or tried), before the beat reads the table:
    #: the instances' deadlines follow the renewal, not a read that may be slow
    on_renew: list[Callable[[], None]]

    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Write the seats once more, give up every lease (others take them over now)."""
        ...

    async def acquire(self, instance: str) -> Lease | Holder | None:
        """Take the lease of ``instance``: the new lease, else who holds it, else None when
        Redis did not answer."""
        ...

    async def release(self, instance: str) -> None: ...

    async def holder(self, instance: str) -> Holder | None:
        """Who holds ``instance`` now (read from Redis; the cached one if it does not answer)."""
        ...

    async def token_instance(self, token: str) -> str | None:
        """The instance of a resume token issued anywhere in the cluster, or None.

        Raises:
            LookupUnanswered: Redis did not answer in time (it is slow or away): unknown, which
                is not the same as no seat.
        """
        ...

    async def seated(self, instances: Collection[str]) -> dict[str, int]:
        """How many avatars each of ``instances`` has a seat for in Redis now (written when
        each joined, so fresher than the owners' beats); {} when Redis does not answer."""
        ...

    async def member(self, process_id: str) -> Member | None:
        """A live process, read now if the last beat did not see it."""
        ...

    async def take_over(self, instance: str, dead: Holder | None = None) -> Lease | Holder | None:
        """Take an instance whose owner is gone (with its seats), if this process may; ``dead``:
        its holder, proven dead, whose lease has not expired yet."""
        ...

    def assignee(self, instance: str) -> str | None:
        """The live process that is to take ``instance`` over when its owner is gone
        (:func:`assign` over every instance whose owner is gone), or None if there is none."""
        ...

    def seat(self, instance: str, token: str, seat: str) -> None:
        """Write the seat of an avatar that just joined ``instance`` soon, without waiting for
        the next beat (a process killed right after a join must not lose it)."""
        ...

    async def refuses(self, process_id: str) -> bool:
        """True when ``process_id`` is on this machine and its port refuses connections now (it
        died, whatever its beat says yet): a hello is not sent there. False when unknown."""
        ...

    @property
    def connected(self) -> bool: ...


def _call_all(fns: list[Callable[..., None]], *args: Any) -> None:
    for fn in list(fns):
        try:
            fn(*args)
        except Exception:
            log.exception("leases listener failed")


class LocalLeases:
    """One process: it owns every instance (fence 1) and its leases never lapse."""

    def __init__(self, process_id: str, source: Source) -> None:
        self.process_id = process_id
        self.source = source
        self.ttl = math.inf
        self.interval = math.inf
        self.members: dict[str, Member] = {}
        self.stale: set[str] = set()
        self.read_at = -math.inf
        self.holders: dict[str, Holder] = {}
        self.mine: dict[str, Lease] = {}
        self.on_takeover: list[Takeover] = []
        self.on_beat: list[Callable[[], None]] = []
        self.on_renew: list[Callable[[], None]] = []

    @property
    def connected(self) -> bool:
        return True

    async def start(self) -> None:
        r = self.source()
        self.members = {self.process_id: Member(self.process_id, r.url, r.people, r.instances)}

    async def stop(self) -> None:
        self.mine.clear()

    async def acquire(self, instance: str) -> Lease | Holder | None:
        lease = self.mine.get(instance)
        if lease is None:
            lease = self.mine[instance] = Lease(instance, 1, math.inf)
            self.holders[instance] = Holder(self.process_id, 1)
        return lease

    async def release(self, instance: str) -> None:
        self.mine.pop(instance, None)
        self.holders.pop(instance, None)

    async def holder(self, instance: str) -> Holder | None:
        return self.holders.get(instance)

    async def token_instance(self, token: str) -> str | None:
        return None

    async def seated(self, instances: Collection[str]) -> dict[str, int]:
        return {}

    async def member(self, process_id: str) -> Member | None:
        return self.members.get(process_id)

    async def take_over(self, instance: str, dead: Holder | None = None) -> Lease | Holder | None:
        return None

    def assignee(self, instance: str) -> str | None:
        return self.process_id

    def seat(self, instance: str, token: str, seat: str) -> None:
        return None

    async def refuses(self, process_id: str) -> bool:
        return False


# KEYS[1] lives set, KEYS[2] live:{me}, KEYS[3] insts set, then keys named by index in ARGV[5].
# ARGV[1] me, ARGV[2] lease ttl ms, ARGV[3] live JSON, ARGV[4] seats ttl ms, ARGV[5] JSON list of
# [lease key, fence key, seats key, fence (text), instance, [[token, tok key, seat JSON], ...],
# 1 when the instance is open here (its seats replace those in Redis) else 0].
# Returns per instance: 1 renewed, 2 taken again (it had expired and nobody took it), 0 lost.
BEAT_LUA = """
local me, ttl, win = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[4])
redis.call('SET', KEYS[2], ARGV[3], 'PX', ttl)
redis.call('SADD', KEYS[1], me)
local out = {}
for i, it in ipairs(cjson.decode(ARGV[5])) do
  local lease, fencek, seats = KEYS[it[1]], KEYS[it[2]], KEYS[it[3]]
  local mine = me .. ' ' .. it[4]
  local cur = redis.call('GET', lease)
  local ok = 0
  if cur == mine then
    redis.call('PEXPIRE', lease, ttl)
    ok = 1
  elseif not cur then
    local f = redis.call('GET', fencek)
    if f == it[4] or not f then
      -- expired and nobody took it since (no fence at all: a Redis that lost its data)
      if not f then redis.call('SET', fencek, it[4]) end
      redis.call('SET', lease, mine, 'PX', ttl)
      ok = 2
    end
  end
  if ok > 0 then
    redis.call('SADD', KEYS[3], it[5])
  end
  -- the seats of an instance open here; one held but not open yet (just taken) keeps its seats
  if ok > 0 and it[7] == 1 then
    redis.call('DEL', seats)
    for _, s in ipairs(it[6]) do
      redis.call('HSET', seats, s[1], s[3])
      redis.call('SET', KEYS[s[2]], it[5], 'PX', win)
    end
    if #it[6] > 0 then redis.call('PEXPIRE', seats, win) end
  end
  out[i] = ok
end
return out
"""

# KEYS[1] lease, KEYS[2] fence, KEYS[3] insts, KEYS[4] seats; ARGV[1] me, ARGV[2] ttl ms,
# ARGV[3] instance, ARGV[4] the lease value ("{process} {fence}") of a holder proven dead, which
# is taken like no lease at all (its fence is passed: the dead one's writes are refused), or ''.
# Returns {fence, '', seats (HGETALL)} when taken now, {0, holder, {}} when
# someone holds it. The seats come in the same step as the lease: an instance whose owner is gone
# is never held here without them (a beat in between would have replaced them with none, a hello
# in between would have found an empty instance and got a new avatar).
ACQUIRE_LUA = """
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[4] then return {0, cur, {}} end
local f = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. f, 'PX', ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
return {f, '', redis.call('HGETALL', KEYS[4])}
"""

# KEYS[1] lease, KEYS[2] seats, then the tok keys; ARGV[1] "me fence", ARGV[2] seats ttl ms,
# ARGV[3] instance, then token, seat JSON pairs. The seats of avatars that just joined, written at
# once (the beat would write them up to a beat later), only while the lease is still ours.
SEATS_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local win = tonumber(ARGV[2])
for i = 4, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('SET', KEYS[3 + (i - 4) / 2], ARGV[3], 'PX', win)
end
redis.call('PEXPIRE', KEYS[2], win)
return 1
"""

# KEYS[1] lease; ARGV[1] "me fence": delete the lease only if it is still ours.
RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _text(x: bytes | str | None) -> str:
    if x is None:
        return ""
    return x.decode() if isinstance(x, bytes) else x


def _holder(raw: bytes | str | None) -> Holder | None:
    pid, _, fence = _text(raw).rpartition(" ")
    if not pid or not fence.isdigit():
        return None
    return Holder(pid, int(fence))


class RedisLeases:
    """Leases in Redis; see the module for the layout and the rules."""

    def __init__(
        self,
        url: str,
        process_id: str,
        source: Source,
        *,
        prefix: str = "emachi:",
        ttl: float = DEFAULT_LEASE_TTL,
        interval: float | None = None,
        timeout: float | None = None,
        lookup_timeout: float | None = None,
        seats_ttl: float = 30.0,
    ) -> None:
        self.url = url
        self.process_id = process_id
        self.source = source
        self.prefix = prefix
        self.ttl = ttl
        self.interval = interval if interval is not None else min(BEAT_MAX, ttl * BEAT_SHARE)
        self.timeout = timeout if timeout is not None else min(0.5, ttl / 4.0)
        #: hellos' look-ups (a token's instance, a holder, a process, the seat counts): longer
        #: than a beat's call. A loop that lagged past a short timeout (a busy process: its
        #: timers run before the reply waiting in the socket is read) failed a look-up Redis had
        #: answered, and a resume that does not know where its seat is is sent MOVED to try again
        self.lookup_timeout = (
            lookup_timeout if lookup_timeout is not None else max(self.timeout, ttl / 2.0)
        )
        self.seats_ttl = seats_ttl
        self.members: dict[str, Member] = {}
        self.stale: set[str] = set()
        self.holders: dict[str, Holder] = {}
        self.mine: dict[str, Lease] = {}
        self.on_takeover: list[Takeover] = []
        self.on_beat: list[Callable[[], None]] = []
        self.on_renew: list[Callable[[], None]] = []
        self.beats = 0
        #: monotonic time the latest beat started (the loop keeps them ``interval`` apart)
        self._beat_at = -math.inf
        #: beats attempted: the counter this process's presence record carries
        self._sent = 0
        #: process → (its beat counter, monotonic time this process first read that value)
        self._counters: dict[str, tuple[int, float]] = {}
        #: when the table was last read (monotonic)
        self.read_at = -math.inf
        #: instance → the process that last held it (kept while it has no holder: an orphan is
        #: never given back to the process that lost it)
        self._last_holder: dict[str, str] = {}
        self._redis: Any = None
        self._lookups: Any = None
        self._beat_script: Any = None
        self._acquire_script: Any = None
        self._release_script: Any = None
        self._task: asyncio.Task[None] | None = None
        self._ok = True
        #: monotonic time since when every call answered (-inf: since the start)
        self._ok_since = -math.inf
        #: when Redis last answered a beat, and _ok_since as it was before an outage
        self._last_ok = -math.inf
        self._ok_before = -math.inf
        #: orphan instance → beats it has been seen without a holder
        self._orphaned: dict[str, int] = {}
        #: stale processes proven dead (their listening address refuses connections)
        self.dead: set[str] = set()
        #: process → its probe address, for the processes on this machine (the last read)
        self._probes: dict[str, str] = {}
        #: process → (when, the probe's answer): one probe per process a quarter second
        self._refusing: dict[str, tuple[float, asyncio.Future[bool]]] = {}
        self._taking: dict[str, asyncio.Future[Lease | Holder | None]] = {}
        #: seats of avatars that just joined, by instance, for the seat writer
        self._new_seats: dict[str, dict[str, str]] = {}
        self._seats_due = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._seats_script: Any = None

    # -- keys -------------------------------------------------------------------------------------

    def key(self, kind: str, name: str = "") -> str:
        return f"{self.prefix}{kind}:{name}" if name else f"{self.prefix}{kind}"

    @property
    def connected(self) -> bool:
        return self._ok

    def _pool_client(self, size: int, timeout: float | None = None) -> Any:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # a call waits for a free connection (within its own timeout) rather than fail with
        # "too many connections", which would read as Redis being away
        timeout = self.timeout if timeout is None else timeout
        pool = aioredis.BlockingConnectionPool.from_url(
            self.url,
            max_connections=size,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry_on_timeout=False,
            retry=Retry(NoBackoff(), 0),
        )
        return aioredis.Redis(connection_pool=pool)

    def _client(self) -> Any:
        """The connections of the lease work (beat, acquire, release, seats): a few of their
        own, so that hellos looking things up (:meth:`_lookup`) never hold a beat back."""
        if self._redis is None:
            self._redis = self._pool_client(4)
            self._beat_script = self._redis.register_script(BEAT_LUA)
            self._acquire_script = self._redis.register_script(ACQUIRE_LUA)
            self._release_script = self._redis.register_script(RELEASE_LUA)
            self._seats_script = self._redis.register_script(SEATS_LUA)
        return self._redis

    def _lookup(self) -> Any:
        """The connections of hellos' look-ups (a token's instance, a holder, a process): a
        failover sends hundreds of resumes at once; they queue here, not on the beat."""
        if self._lookups is None:
            self._lookups = self._pool_client(16, self.lookup_timeout)
        return self._lookups

    def _failed(self, exc: BaseException) -> None:
        if self._ok:
            log.warning(
                "leases: redis unreachable; keeping the instances while trying",
                extra={"error": f"{type(exc).__name__}: {exc}"},
            )
            self._ok_before = self._ok_since
        self._ok = False
        self._ok_since = math.inf

    def _answered(self, now: float) -> None:
        if not self._ok:
            self._ok = True
            away = now - self._last_ok
            # the owners renew every interval: a gap this short let no lease lapse, so there is
            # nothing the owners must take back first (a call that timed out on a loaded machine
            # must not hold a failover back for a whole lease)
            if away < self.ttl - 2 * self.interval:
                self._ok_since = self._ok_before
            else:
                self._ok_since = now
            log.info("leases: redis reachable again", extra={"away_s": round(away, 3)})
        self._last_ok = now

    # -- life -------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._client()
        await self.beat()
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._loop(), name="lease beat")
        self._writer = loop.create_task(self._write_seats(), name="seat writer")

    async def stop(self) -> None:
        await stop_task(self._writer)
        await stop_task(self._task)
        self._task = self._writer = None
        if self._redis is None:
            return
        try:
            await self.beat(takeovers=False)  # the seats as they are now
            for inst in list(self.mine):
                await self.release(inst)
            async with asyncio.timeout(self.timeout):
                await self._redis.delete(self.key("live", self.process_id))
        except (*REDIS_DOWN, TimeoutError) as exc:
            log.warning("leases: could not give up the leases", extra={"error": str(exc)})
        for client in (self._redis, self._lookups):
            if client is None:
                continue
            try:
                async with asyncio.timeout(self.timeout):
                    await client.aclose(close_connection_pool=True)
            except Exception:
                pass
        self._redis = self._lookups = None

    async def _loop(self) -> None:
        while True:
            # one beat starts every interval, or half an interval after a slow one ended (a slow
            # read of the table must not space the renewals out by its whole length: on a loaded
            # machine a beat of a second and the sleep after it let live owners' leases lapse;
            # nor may slow beats run back to back: they rewrite every seat and load Redis more);
            # while Redis does not answer, try twice as often: each try keeps the instances
            every = self.interval if self._ok else self.interval / 2
            await asyncio.sleep(max(every / 2, self._beat_at + every - time.monotonic()))
            try:
                await self.beat()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("lease beat failed")

    # -- seats of avatars that just joined --------------------------------------------------------

    def seat(self, instance: str, token: str, seat: str) -> None:
        if instance in self.mine:
            self._new_seats.setdefault(instance, {})[token] = seat
            self._seats_due.set()

    async def _write_seats(self) -> None:
        """Write the seats :meth:`seat` was given, all that came meanwhile in one call per
        instance, fenced like the beat's; what Redis does not take the next beat writes."""
        while True:
            await self._seats_due.wait()
            self._seats_due.clear()
            due, self._new_seats = self._new_seats, {}
            for inst, seats in due.items():
                lease = self.mine.get(inst)
                if lease is None or lease.lost or not seats:
                    continue
                keys = [self.key("lease", inst), self.key("seats", inst)]
                args: list[Any] = [
                    f"{self.process_id} {lease.fence}",
                    max(1, int(self.seats_ttl * 1000)),
                    inst,
                ]
                for tok, seat in seats.items():
                    keys.append(self.key("tok", tok))
                    args += [tok, seat]
                try:
                    async with asyncio.timeout(self.timeout):
                        await self._seats_script(keys=keys, args=args, client=self._client())
                except (*REDIS_DOWN, TimeoutError):
                    pass  # the beat writes them (and notes that Redis is away)

    # -- the beat ---------------------------------------------------------------------------------

    async def beat(self, *, takeovers: bool = True) -> None:
        """Renew, tell the cluster where this process serves and its seats, read the table, take
        over what a process that is gone left; one script call and one read pipeline."""
        r = self.source()
        sent = self._beat_at = time.monotonic()
        keys = [self.key("lives"), self.key("live", self.process_id), self.key("insts")]

        def k(name: str) -> int:
            keys.append(name)
            return len(keys)

        items: list[list[Any]] = []
        order: list[str] = []
        for inst, lease in self.mine.items():
            if lease.lost:
                continue
            seats = r.seats.get(inst)
            items.append(
                [
                    k(self.key("lease", inst)),
                    k(self.key("fence", inst)),
                    k(self.key("seats", inst)),
                    str(lease.fence),
                    inst,
                    [[tok, k(self.key("tok", tok)), seat] for tok, seat in (seats or {}).items()],
                    0 if seats is None else 1,
                ]
            )
            order.append(inst)
        self._sent += 1
        live = json.dumps(
            {
                "url": r.url,
                "people": r.people,
                "inst": dict(r.instances),
                "b": self._sent,
                "iv": self.interval,
                **({"pr": r.probe, "nd": NODE} if r.probe and NODE else {}),
            },
            separators=(",", ":"),
        )
        args = [
            self.process_id,
            max(1, int(self.ttl * 1000)),
            live,
            max(1, int(self.seats_ttl * 1000)),
            json.dumps(items, ensure_ascii=False, separators=(",", ":")),
        ]
        client = self._client()
        try:
            async with asyncio.timeout(self.timeout):
                status = await self._beat_script(keys=keys, args=args, client=client)
        except (*REDIS_DOWN, TimeoutError) as exc:
            self._failed(exc)
            self._tried(order, sent)
            _call_all(self.on_renew)
            _call_all(self.on_beat)
            return
        now = time.monotonic()
        self._answered(now)
        self.beats += 1
        until = sent + self.ttl * (1.0 - MARGIN)
        for inst, ok in zip(order, status, strict=True):
            held = self.mine.get(inst)
            if held is None:
                continue
            if int(ok) > 0:
                held.valid_until = max(held.valid_until, until)
                if int(ok) == 2:
                    log.info("lease taken again after it expired", extra={"instance": inst})
            else:
                log.warning("lease lost to another process", extra={"instance": inst})
                held.valid_until = -math.inf
                del self.mine[inst]
        _call_all(self.on_renew)
        try:
            await self._read(takeovers and now - self._ok_since >= self.ttl)
        except (*REDIS_DOWN, TimeoutError) as exc:
            self._failed(exc)
        _call_all(self.on_beat)

    def _tried(self, instances: list[str], sent: float) -> None:
        """A renewal that Redis did not answer still counts as trying: see the module."""
        until = sent + self.ttl * (1.0 - MARGIN)
        for inst in instances:
            lease = self.mine.get(inst)
            if lease is not None and not lease.lost:
                lease.valid_until = max(lease.valid_until, until)

    async def _read(self, may_take: bool) -> None:
        client = self._client()
        async with asyncio.timeout(self.timeout):
            pipe = client.pipeline(transaction=False)
            pipe.smembers(self.key("insts"))
            pipe.smembers(self.key("lives"))
            insts_raw, lives_raw = await pipe.execute()
            insts = sorted(_text(x) for x in insts_raw)
            lives = sorted(_text(x) for x in lives_raw)
            pipe = client.pipeline(transaction=False)
            for inst in insts:
                pipe.get(self.key("lease", inst))
            for pid in lives:
                pipe.get(self.key("live", pid))
            rows = await pipe.execute()
        holders: dict[str, Holder] = {}
        orphans: list[str] = []
        for inst, raw in zip(insts, rows[: len(insts)], strict=True):
            h = _holder(raw)
            if h is None:
                orphans.append(inst)
            else:
                holders[inst] = h
        members: dict[str, Member] = {}
        gone: list[str] = []
        stale: set[str] = set()
        now = time.monotonic()
        # a reader that did not read for a while has not watched the counters: judge nobody yet
        judge = now - self.read_at <= STALE_BEATS * self.interval
        self.read_at = now
        counters: dict[str, tuple[int, float]] = {}
        probes: dict[str, str] = {}
        for pid, raw in zip(lives, rows[len(insts) :], strict=True):
            if raw is None:
                gone.append(pid)
                continue
            try:
                d = json.loads(raw)
                member = Member(
                    pid,
                    str(d["url"]),
                    int(d["people"]),
                    {str(a): int(b) for a, b in d["inst"].items()},
                )
                beat, every = int(d.get("b", 0)), float(d.get("iv", self.interval))
            except (ValueError, KeyError, TypeError, AttributeError):
                gone.append(pid)
                continue
            if NODE and d.get("nd") == NODE and d.get("pr"):
                probes[pid] = str(d["pr"])
            seen = self._counters.get(pid)
            # a counter that did not move is judged after a gap in this process's reads only if
            # Redis answered this process all along since it first read that value (a Redis that
            # was away froze every counter; one that was slow for a call or two did not: on a
            # loaded machine the reads are often more than two beats apart, and a survivor that
            # never judged waited for the dead one's lease)
            if seen is None or seen[0] != beat or (not judge and not self._ok_since <= seen[1]):
                seen = (beat, now)
            counters[pid] = seen
            if pid != self.process_id and now - seen[1] > STALE_BEATS * every:
                stale.add(pid)  # its record lives on, its beat stopped: gone for routing
            else:
                members[pid] = member
        for pid in stale - self.stale:
            log.warning("process stopped beating; gone for routing", extra={"process_id": pid})
        for inst, lease in self.mine.items():
            holders[inst] = Holder(self.process_id, lease.fence)
        self.holders, self.members = holders, members
        self.stale, self._counters = stale, counters
        self._last_holder = {
            i: h.process_id if (h := holders.get(i)) else self._last_holder.get(i, "")
            for i in insts
        }
        if gone:
            async with asyncio.timeout(self.timeout):
                await client.srem(self.key("lives"), *gone)
        await self._judge_dead(stale, probes)
        # instances whose holder is proven dead are orphans now, though their leases live on
        dead_held = {
            i: h for i, h in holders.items() if h.process_id in self.dead and i not in self.mine
        }
        orphans += sorted(dead_held, key=_order)
        self._orphaned = {i: self._orphaned.get(i, 0) + 1 for i in orphans if i not in self.mine}
        if orphans:
            await self._orphans(orphans, may_take, dead_held)

    async def _judge_dead(self, stale: set[str], probes: Mapping[str, str]) -> None:
        """Of the processes whose beat stopped, those on this machine whose listening address
        refuses connections are dead (:attr:`dead`): their instances are taken now, with a higher
        fence, instead of when their leases expire. A process that is only paused or busy still
        listens (its beat is back soon, or its leases expire as always); one that is stopping
        (SIGTERM) beats until it gives its leases up, so it is never stale meanwhile."""
        self.dead &= stale
        self._probes = dict(probes)
        self._refusing = {p: x for p, x in self._refusing.items() if p in probes}
        held = {h.process_id for h in self.holders.values()}
        ask = [
            pid for pid in sorted(stale) if pid not in self.dead and pid in probes and pid in held
        ]
        if not ask:
            return
        answers = await asyncio.gather(*(refused(probes[pid]) for pid in ask))
        for pid, no in zip(ask, answers, strict=True):
            if no:
                log.warning(
                    "process is dead (its port refuses connections); taking its instances now",
                    extra={"process_id": pid, "probe": probes[pid]},
                )
                self.dead.add(pid)

    async def _orphans(
        self, orphans: list[str], may_take: bool, dead_held: Mapping[str, Holder]
    ) -> None:
        """Instances nobody holds (or a dead process holds: ``dead_held``): forget those with no
        seats to give back; take over the others if :func:`assign` names this process (or the
        orphan has waited three beats)."""
        client = self._client()
        async with asyncio.timeout(self.timeout):
            pipe = client.pipeline(transaction=False)
            for inst in orphans:
                pipe.exists(self.key("seats", inst))
            seated = await pipe.execute()
        empty = [i for i, n in zip(orphans, seated, strict=True) if not n and i not in dead_held]
        for inst in empty:
            self._orphaned.pop(inst, None)  # nothing to give back: nobody takes it over
        if empty:
            async with asyncio.timeout(self.timeout):
                await client.srem(self.key("insts"), *empty)  # the renewal adds a live one back
        if not may_take:
            return
        for inst, n in zip(orphans, seated, strict=True):
            if not n or inst in self.mine:
                continue
            # its share only: the one assign() names (or anyone once it waited three beats)
            assigned = self.assignee(inst)
            if assigned != self.process_id and self._orphaned.get(inst, 0) < 3:
                continue
            log.info(
                "taking over an orphan",
                extra={
                    "instance": inst,
                    "assigned": assigned or "",
                    "beats": self._orphaned.get(inst, 0),
                    "live": sorted(self.members),
                    "dead_holder": dead_held[inst].process_id if inst in dead_held else "",
                },
            )
            await self.take_over(inst, dead=dead_held.get(inst))

    def assignee(self, instance: str) -> str | None:
        live = set(self.members) | {self.process_id}
        # every instance whose owner is gone, however this process learnt it (the beat's table,
        # or a hello's look-up that found no lease any more): the same set on every survivor
        orphans = {i for i, h in self.holders.items() if h.process_id not in live}
        orphans |= {
            i for i, pid in self._last_holder.items() if i not in self.holders and pid not in live
        }
        orphans |= set(self._orphaned) | {instance}
        return assign(orphans, live, self.holders, self._last_holder).get(instance)

    async def take_over(self, inst: str, dead: Holder | None = None) -> Lease | Holder | None:
        """Take the lease of an instance whose owner is gone and hand its seats to
        :attr:`on_takeover`; who holds it if another process was first; None when this process
        may not (Redis has not answered it for ``ttl`` since an outage) or Redis did not answer.
        ``dead``: the holder of a lease that has not expired, proven dead (:attr:`dead`); the
        lease is taken only while it is still exactly that holder's.
        Called by the beat, and by a hello waiting to resume in that instance (so the process
        the client reached opens it, and no redirect follows)."""
        if inst in self.mine:
            return self.mine[inst]
        if time.monotonic() - self._ok_since < self.ttl:
            return None
        if dead is not None and dead.process_id not in self.dead:
            dead = None
        # the seats come with the lease (ACQUIRE_LUA)
        return await self.acquire(inst, f"{dead.process_id} {dead.fence}" if dead else "")

    # -- single calls -----------------------------------------------------------------------------

    async def acquire(self, instance: str, dead: str = "") -> Lease | Holder | None:
        """Take the lease (one call at a time per instance, however many hellos ask), and with
        it the seats a process that is gone left (given to :attr:`on_takeover` at once).
        ``dead``: the exact lease value of a holder proven dead, taken like no lease."""
        held = self.mine.get(instance)
        if held is not None and not held.lost:
            return held
        running = self._taking.get(instance)
        if running is None:
            running = self._taking[instance] = asyncio.ensure_future(self._acquire(instance, dead))
            running.add_done_callback(lambda _t: self._taking.pop(instance, None))
        return await asyncio.shield(running)

    async def _acquire(self, instance: str, dead: str = "") -> Lease | Holder | None:
        sent = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout):
                fence, holder, raw = await self._acquire_script(
                    keys=[
                        self.key("lease", instance),
                        self.key("fence", instance),
                        self.key("insts"),
                        self.key("seats", instance),
                    ],
                    args=[self.process_id, max(1, int(self.ttl * 1000)), instance, dead],
                    client=self._client(),
                )
        except (*REDIS_DOWN, TimeoutError) as exc:
            self._failed(exc)
            return None
        if int(fence) == 0:
            h = _holder(holder)
            if h is not None:
                self.holders[instance] = h
            return h
        lease = Lease(instance, int(fence), sent + self.ttl * (1.0 - MARGIN))
        self.mine[instance] = lease
        self.holders[instance] = Holder(self.process_id, lease.fence)
        self._orphaned.pop(instance, None)
        seats: dict[str, dict[str, Any]] = {}
        for tok, seat in zip(raw[::2], raw[1::2], strict=True):
            try:
                seats[_text(tok)] = json.loads(seat)
            except ValueError:
                continue
        if not seats:
            log.info("lease acquired", extra={"instance": instance, "fence": lease.fence})
            return lease
        # a process that is gone left avatars here: they are given back before anything else
        # runs (no await between the lease and them), so no hello finds the instance without them
        log.info(
            "instance taken over",
            extra={
                "instance": instance,
                "fence": lease.fence,
                "seats": len(seats),
                "from_dead": dead.rpartition(" ")[0],
            },
        )
        _call_all(self.on_takeover, lease, seats)
        return lease

    async def release(self, instance: str) -> None:
        lease = self.mine.pop(instance, None)
        if self.holders.get(instance, None) == Holder(
            self.process_id, lease.fence if lease else -1
        ):
            del self.holders[instance]
        if lease is None or lease.lost:
            return
        lease.valid_until = -math.inf
        try:
            async with asyncio.timeout(self.timeout):
                await self._release_script(
                    keys=[self.key("lease", instance)],
                    args=[f"{self.process_id} {lease.fence}"],
                    client=self._client(),
                )
        except (*REDIS_DOWN, TimeoutError) as exc:
            log.warning(
                "lease not released; it expires", extra={"instance": instance, "error": str(exc)}
            )

    async def holder(self, instance: str) -> Holder | None:
        try:
            async with asyncio.timeout(self.lookup_timeout):
                raw = await self._lookup().get(self.key("lease", instance))
        except (*REDIS_DOWN, TimeoutError):
            return self.holders.get(instance)
        h = _holder(raw)
        if h is None:
            old = self.holders.pop(instance, None)
            if old is not None:
                self._last_holder[instance] = old.process_id
        else:
            self.holders[instance] = h
        return h

    async def refuses(self, process_id: str) -> bool:
        if process_id in self.dead:
            return True
        probe = self._probes.get(process_id)
        if not probe:
            return False
        now = time.monotonic()
        got = self._refusing.get(process_id)
        if got is None or now - got[0] > PROBE_EVERY:
            got = self._refusing[process_id] = (now, asyncio.ensure_future(refused(probe)))
        return await asyncio.shield(got[1])

    async def member(self, process_id: str) -> Member | None:
        """A live process read now (a hello must not wait for the next beat to find it)."""
        m = self.members.get(process_id)
        if m is not None or process_id in self.stale:
            return m  # a process whose beat stopped is not sent anyone
        try:
            async with asyncio.timeout(self.lookup_timeout):
                raw = await self._lookup().get(self.key("live", process_id))
            d = json.loads(raw) if raw else None
            if d is None:
                return None
            return Member(process_id, str(d["url"]), int(d["people"]), dict(d["inst"]))
        except (*REDIS_DOWN, TimeoutError, ValueError, KeyError, TypeError):
            return None

    async def token_instance(self, token: str) -> str | None:
        try:
            async with asyncio.timeout(self.lookup_timeout):
                raw = await self._lookup().get(self.key("tok", token))
        except (*REDIS_DOWN, TimeoutError) as exc:
            raise LookupUnanswered from exc
        return _text(raw) or None

    async def seated(self, instances: Collection[str]) -> dict[str, int]:
        names = list(instances)
        if not names:
            return {}
        try:
            async with asyncio.timeout(self.lookup_timeout):
                pipe = self._lookup().pipeline(transaction=False)
                for inst in names:
                    pipe.hlen(self.key("seats", inst))
                counts = await pipe.execute()
        except (*REDIS_DOWN, TimeoutError):
            return {}
        return {inst: int(n) for inst, n in zip(names, counts, strict=True)}
