"""Cluster mode: several ``emachi serve --redis URL`` processes serve one city hall.

``setup(app)`` mounts it (docs/architecture.md, "Server extension points"). Without a Redis URL
the bus and the directory are the in-process ones: nothing to start, the same code path. With
one, the bus is Redis pub/sub and the directory Redis hashes with a time to live (see
``docs/cluster.md``).

What the cluster offers features, set in ``setup`` so that a feature mounted after it can
subscribe in its own ``setup``: ``app[BUS]`` (subscribe to a channel), ``app[BUS_OUTBOX]`` (publish
from synchronous code) and ``app[CLUSTER].on_connect(fn)`` (called when the bus is up, the first
time included, and whenever Redis is reachable again: the moment to catch up). This package
imports no feature; the briefing feature carries its staff actions across processes this way
(:mod:`server.briefing.sync`). The directory (live processes, the instances each owns and their
population) is shown in ``/healthz`` (``cluster``) and ``/metrics`` (``emachi_cluster_*``).

Each instance is owned by one live process at a time, under a lease with a fencing number
(:mod:`server.cluster.leases`); a hello that reaches a process that does not own its instance is
redirected to the owner with a signed seat reservation (:mod:`server.cluster.placement`,
``app[PLACEMENT]``). When a process dies its leases expire and the instances open again on live
processes, from the seats kept in Redis. When Redis goes away, each process carries on with its
own clients and catches up when Redis is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from server.cluster.bus import REDIS_DOWN, Bus, LocalBus, Outbox, RedisBus, new_process_id
from server.cluster.chat import ChatRelay
from server.cluster.directory import (
    ClusterView,
    Directory,
    LocalDirectory,
    RedisDirectory,
    Report,
)
from server.cluster.leases import (
    DEFAULT_LEASE_TTL,
    BeatInput,
    Lease,
    Leases,
    LocalLeases,
    RedisLeases,
    Takeover,
)
from server.cluster.placement import (
    ClusterPlacement,
    LocalPlacement,
    Reservations,
    secret_for,
)
from server.keys import (
    BUS,
    BUS_OUTBOX,
    CHAT_RELAY,
    CLUSTER,
    CONFIG,
    HALL,
    HEALTH,
    HOOKS,
    METRICS,
    PLACEMENT,
)
from server.tasks import stop_task

if TYPE_CHECKING:
    from server.config import Config
    from server.instance import Instance

__all__ = ["setup", "CLUSTER", "Cluster", "check_redis"]

log = logging.getLogger("emachi.cluster")

DEFAULT_PREFIX = "emachi:"
DEFAULT_TTL = 10.0


@dataclass(slots=True)
class Cluster:
    """This process's place in the cluster: its id, bus, outbox and directory.

    Settings (``prefix``, ``ttl``, ``interval``) may be changed until the application starts;
    they are applied then (the directory is built then, the bus takes the prefix).
    """

    url: str | None
    process_id: str = field(default_factory=new_process_id)
    prefix: str = DEFAULT_PREFIX
    ttl: float = DEFAULT_TTL
    interval: float | None = None
    bus: Bus | None = None
    directory: Directory | None = None
    outbox: Outbox | None = None
    #: seconds a lease lasts unless renewed (``--lease-ttl``)
    lease_ttl: float = DEFAULT_LEASE_TTL
    #: the beat of the leases (None: a third of the ttl, at most a second)
    lease_interval: float | None = None
    leases: Leases | None = None
    #: instance → resume token → seat JSON of the instances given (server.resume sets it)
    seat_source: Callable[[Collection[str]], dict[str, dict[str, str]]] | None = None
    #: how long seats and token look-ups stay in Redis (the resume window)
    seats_ttl: float = 30.0
    #: called with each instance taken over from a process that is gone, and its seats
    on_takeover: list[Takeover] = field(default_factory=list)
    _on_connect: list[Callable[[], None]] = field(default_factory=list, init=False, repr=False)

    @property
    def clustered(self) -> bool:
        return self.url is not None

    def on_connect(self, fn: Callable[[], None]) -> Callable[[], None]:
        """Call ``fn()`` each time the bus is up: at start, after a reconnect, and when Redis
        answers again after an outage that kept the connection (a paused Redis). A feature
        that shares state across processes catches up there. ``fn`` is synchronous."""
        self._on_connect.append(fn)
        return fn

    def connected_again(self) -> None:
        """Tell the ``on_connect`` listeners; a failing one is logged and the others run."""
        for fn in list(self._on_connect):
            try:
                fn()
            except Exception:
                log.exception("cluster on_connect listener failed")

    @property
    def view(self) -> ClusterView:
        return self.directory.view if self.directory is not None else ClusterView()

    def health(self) -> dict[str, Any]:
        """The ``cluster`` part of ``/healthz``: from memory, never waiting on Redis."""
        view = self.view
        return {
            "process": self.process_id,
            "redis": "ok" if self.connected else "unreachable",
            "processes": len(view.processes),
            "people": view.people,
            "watchers": view.watchers,
            "members": [p.to_json() for p in view.processes],
            "leases": {
                i: lease.fence for i, lease in (self.leases.mine if self.leases else {}).items()
            },
            # the processes hellos are routed to and instances placed on: their beat advances
            "live": sorted(self.leases.members) if self.leases else [],
        }

    @property
    def connected(self) -> bool:
        return bool(
            self.bus is not None
            and self.bus.connected
            and self.directory is not None
            and self.directory.connected
            and (self.leases is None or self.leases.connected)
        )

    def gauges(self) -> dict[str, float]:
        view = self.view
        return {
            "emachi_cluster_people": float(view.people),
            "emachi_cluster_watchers": float(view.watchers),
            "emachi_cluster_processes": float(len(view.processes)),
            "emachi_cluster_redis_up": 1.0 if self.connected else 0.0,
            "emachi_cluster_bus_dropped": float(
                getattr(self.bus, "dropped", 0) + (self.outbox.dropped if self.outbox else 0)
            ),
            "emachi_cluster_leases": float(len(self.leases.mine) if self.leases else 0),
        }


def setup(app: web.Application) -> None:
    """Mount the cluster: ``app[CLUSTER]``, ``app[BUS]`` and ``app[BUS_OUTBOX]`` now, so that features
    mounted after it subscribe in their ``setup``; the bus, the outbox and the directory start
    with the app, in a ``cleanup_ctx``."""
    config = app[CONFIG]
    cluster = Cluster(url=config.redis_url, lease_ttl=config.lease_ttl)
    bus: Bus
    if cluster.url is None:
        bus = LocalBus(cluster.process_id)
    else:
        bus = RedisBus(cluster.url, cluster.process_id, prefix=cluster.prefix)
    bus.on_connect.append(cluster.connected_again)
    cluster.bus, cluster.outbox = bus, Outbox(bus)
    app[CLUSTER], app[BUS], app[BUS_OUTBOX] = cluster, bus, cluster.outbox
    app[PLACEMENT] = LocalPlacement()
    if cluster.clustered:
        app[HEALTH]["cluster"] = cluster.health
        relay = ChatRelay(bus, cluster.outbox, config.aoi_radius, app[HOOKS].route_chat)
        app[HOOKS].on_create(relay.on_create)
        app[HOOKS].on_dispose(relay.on_dispose)
        app[CHAT_RELAY] = relay
        _own_instances(app, cluster)
    app.cleanup_ctx.append(_cluster_ctx)


def public_url(config: Config) -> str:
    """Where clients reach this process: ``--public-url``, else ``http://HOST:PORT`` (the host
    name of the machine when it listens on every address)."""
    if config.public_url:
        return config.public_url
    host = config.host
    if host in ("", "0.0.0.0", "::"):
        host = socket.gethostname()
    return f"http://{host}:{config.port}" if config.port else ""


def probe_address(config: Config) -> str:
    """``host:port`` where another process on this machine reaches this one's listening socket
    (a wildcard address by loopback), or "" when the port is not known: see
    :func:`server.cluster.leases.refused`."""
    if not config.port:
        return ""
    host = config.host
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"[{host}]:{config.port}" if ":" in host else f"{host}:{config.port}"


def _own_instances(app: web.Application, cluster: Cluster) -> None:
    """In a cluster the hall opens instances only under a lease, and an instance this process
    no longer owns stops and sends its clients to the new owner (``Hall.lose``)."""
    hall, hooks = app[HALL], app[HOOKS]
    hall.open_freely = False

    @hooks.on_create
    def _watch(inst: Instance) -> None:
        inst.on_lapse = hall.lose
        lease = cluster.leases.mine.get(inst.id) if cluster.leases else None
        inst.lease_until = lease.valid_until if lease is not None else -math.inf

    @hooks.on_dispose
    def _give_up(inst: Instance) -> None:
        # an extra instance that stood empty: its lease goes now (at a stop, the leases go
        # after one last beat has written the seats)
        leases = cluster.leases
        if leases is not None and not inst.sessions and inst.id in leases.mine:
            task = asyncio.get_running_loop().create_task(leases.release(inst.id))
            _pending.add(task)
            task.add_done_callback(_pending.discard)


_pending: set[asyncio.Task[None]] = set()


async def _cluster_ctx(app: web.Application) -> AsyncIterator[None]:
    cluster = app[CLUSTER]
    config = app[CONFIG]
    hall = app[HALL]
    metrics = app[METRICS]

    def report() -> Report:
        return Report(
            {inst.id: inst.population for inst in hall.instances},
            len(hall.watchers),
            f"{config.host}:{config.port}",
            public_url(config),
        )

    leases: Leases

    def beat_input() -> BeatInput:
        owned = list(leases.mine)
        seats = cluster.seat_source(owned) if cluster.seat_source is not None else {}
        return BeatInput(
            public_url(config),
            hall.population,
            {inst.id: inst.population for inst in hall.instances if inst.id in leases.mine},
            seats,
            probe_address(config),
        )

    def deadlines() -> None:
        """Each instance ticks while this process's lease on it holds (see leases.py)."""
        for inst in hall.instances:
            lease = leases.mine.get(inst.id)
            inst.lease_until = lease.valid_until if lease is not None else -math.inf

    bus, outbox = app[BUS], app[BUS_OUTBOX]
    directory: Directory
    if cluster.url is None:
        directory = LocalDirectory(
            cluster.process_id, report, ttl=cluster.ttl, interval=cluster.interval
        )
    else:
        if isinstance(bus, RedisBus):
            bus.prefix = cluster.prefix  # the settings as they are at start
        directory = RedisDirectory(
            cluster.url,
            cluster.process_id,
            report,
            prefix=cluster.prefix,
            ttl=cluster.ttl,
            interval=cluster.interval,
        )
    cluster.directory = directory
    if cluster.url is None:
        leases = LocalLeases(cluster.process_id, beat_input)
    else:
        leases = RedisLeases(
            cluster.url,
            cluster.process_id,
            beat_input,
            prefix=cluster.prefix,
            ttl=cluster.lease_ttl,
            interval=cluster.lease_interval,
            seats_ttl=cluster.seats_ttl,
        )
        leases.on_renew.append(deadlines)
        leases.on_takeover.extend(cluster.on_takeover)

        def _took(lease: Lease, _seats: object) -> None:
            deadlines()

        leases.on_takeover.append(_took)
        app[PLACEMENT] = ClusterPlacement(
            leases, hall, Reservations(secret_for(config.cluster_secret, config.staff_token))
        )
    cluster.leases = leases

    was_connected = True

    def on_beat() -> None:
        """Keep the gauges for /metrics; when Redis comes back after an outage that did not
        drop the bus's connection (a paused Redis), catch up as after a reconnect."""
        nonlocal was_connected
        if cluster.clustered:
            metrics.extra.update(cluster.gauges())
        now_connected = cluster.connected
        if now_connected and not was_connected:
            log.info("cluster: redis reachable again", extra={"process_id": cluster.process_id})
            cluster.connected_again()
        was_connected = now_connected

    async with contextlib.AsyncExitStack() as stack:
        # whatever started is stopped, in reverse order, even when a later start fails
        await bus.start()
        stack.push_async_callback(bus.stop)
        await outbox.start()
        stack.push_async_callback(outbox.stop)
        await directory.start()
        stack.push_async_callback(directory.stop)
        await leases.start()
        stack.push_async_callback(leases.stop)
        on_beat()
        log.info(
            "cluster joined" if cluster.clustered else "single process",
            extra={"process_id": cluster.process_id, "processes": len(cluster.view.processes)},
        )
        beat_task = _every(directory, on_beat)
        stack.push_async_callback(stop_task, beat_task)
        yield


def _every(directory: Directory, fn: Callable[[], None]) -> asyncio.Task[None]:
    """Call ``fn`` on the directory's beat."""

    async def loop() -> None:
        interval = getattr(directory, "interval", 1.0)
        while True:
            await asyncio.sleep(interval)
            fn()

    return asyncio.get_running_loop().create_task(loop(), name="cluster gauges")


async def check_redis(url: str, timeout: float = 2.0) -> str | None:
    """None when Redis at ``url`` answers PING, else why not, in one line (for ``emachi serve``)."""
    import redis.asyncio as aioredis

    try:
        client = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
    except ValueError as exc:
        return f"--redis {url!r}: {exc}"
    try:
        await client.ping()
    except REDIS_DOWN as exc:
        return f"--redis {url}: cannot reach Redis: {exc}"
    finally:
        await client.aclose()
    return None
