"""The cluster directory: which processes are up, which instances each owns, how many people.

Each process writes its own entry every ``interval`` seconds with a time to live of ``ttl``: a
process that dies without a word disappears from everyone's view within ``ttl``. Each process also
reads the whole directory on the same beat and keeps the result in :attr:`Directory.view`, so
``/healthz`` and ``/metrics`` answer from memory, never waiting on Redis.

Only counts are shared: instance ids and their population, watch-only viewers, the address a
process serves on. No positions, names or chat.

Redis layout (prefix ``emachi:`` by default):

- ``{prefix}procs``: a set of process ids (an index; members whose entry expired are removed
  by whoever reads them);
- ``{prefix}proc:{id}``: hash ``addr, url, started, people, watchers``, expiring after ``ttl``;
- ``{prefix}inst:{id}``: hash ``instance id -> population``, expiring after ``ttl``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from server.cluster.bus import REDIS_DOWN, close_quietly, redis_client
from server.tasks import stop_task

__all__ = [
    "Directory",
    "LocalDirectory",
    "LocalRegistry",
    "RedisDirectory",
    "Report",
    "ProcessInfo",
    "ClusterView",
]

log = logging.getLogger("emachi.cluster.directory")


@dataclass(frozen=True, slots=True)
class Report:
    """What one process has now: instance id -> avatars, and watch-only viewers."""

    instances: Mapping[str, int] = field(default_factory=dict)
    watchers: int = 0
    addr: str = ""
    #: where clients reach this process (``--public-url``, else http://HOST:PORT)
    url: str = ""

    @property
    def people(self) -> int:
        return sum(self.instances.values())


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """One live process as the directory last saw it."""

    process_id: str
    addr: str
    started: float
    people: int
    watchers: int
    instances: Mapping[str, int]
    url: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.process_id,
            "addr": self.addr,
            "url": self.url,
            "people": self.people,
            "watchers": self.watchers,
            "instances": dict(self.instances),
        }


@dataclass(frozen=True, slots=True)
class ClusterView:
    """The whole cluster at one read, processes sorted by id."""

    processes: tuple[ProcessInfo, ...] = ()

    @property
    def people(self) -> int:
        """Avatars in every instance of every process (the sum of each ``/healthz`` people)."""
        return sum(p.people for p in self.processes)

    @property
    def watchers(self) -> int:
        return sum(p.watchers for p in self.processes)

    def owner(self, instance_id: str) -> list[str]:
        """The processes that have an instance of this id (ids are numbered per process)."""
        return [p.process_id for p in self.processes if instance_id in p.instances]


Source = Callable[[], Report]


class Directory(Protocol):
    """Presence of the processes of a cluster, with a time to live."""

    process_id: str
    view: ClusterView

    async def start(self) -> None:
        """Write this process's entry and read the cluster, then keep doing it every beat."""
        ...

    async def stop(self, *, leave: bool = True) -> None:
        """Stop the beat; ``leave`` removes this process's entry now (else it expires)."""
        ...

    async def beat(self) -> ClusterView:
        """Write this process's entry once and read the cluster (what the loop does)."""
        ...

    @property
    def connected(self) -> bool:
        """False while the backend did not answer the last beat."""
        ...


class _Beating:
    """The beat loop shared by both backends."""

    interval: float
    view: ClusterView
    _task: asyncio.Task[None] | None

    async def beat(self) -> ClusterView:
        raise NotImplementedError

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.beat()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("directory beat failed")

    def _start_loop(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="directory beat")

    async def _stop_loop(self) -> None:
        await stop_task(self._task)
        self._task = None


@dataclass(slots=True)
class LocalRegistry:
    """What several :class:`LocalDirectory` share: entries with their expiry (monotonic time)."""

    entries: dict[str, tuple[float, ProcessInfo]] = field(default_factory=dict)


class LocalDirectory(_Beating):
    """The in-process directory: this process alone, or several sharing a :class:`LocalRegistry`."""

    def __init__(
        self,
        process_id: str,
        source: Source,
        *,
        registry: LocalRegistry | None = None,
        ttl: float = 10.0,
        interval: float | None = None,
    ) -> None:
        self.process_id = process_id
        self.source = source
        self.registry = registry if registry is not None else LocalRegistry()
        self.ttl = ttl
        self.interval = interval if interval is not None else ttl / 3.0
        self.started = time.time()
        self.view = ClusterView()
        self._task = None

    @property
    def connected(self) -> bool:
        return True

    async def start(self) -> None:
        await self.beat()
        self._start_loop()

    async def stop(self, *, leave: bool = True) -> None:
        await self._stop_loop()
        if leave:
            self.registry.entries.pop(self.process_id, None)

    async def beat(self) -> ClusterView:
        r = self.source()
        info = ProcessInfo(
            self.process_id, r.addr, self.started, r.people, r.watchers, dict(r.instances), r.url
        )
        now = time.monotonic()
        entries = self.registry.entries
        entries[self.process_id] = (now + self.ttl, info)
        for pid in [p for p, (until, _) in entries.items() if until <= now]:
            del entries[pid]
        self.view = ClusterView(tuple(info for _, info in sorted(entries.values(), key=_by_id)))
        return self.view


def _by_id(entry: tuple[float, ProcessInfo]) -> str:
    return entry[1].process_id


class RedisDirectory(_Beating):
    """The directory in Redis: hashes that expire after ``ttl`` unless written again."""

    def __init__(
        self,
        url: str,
        process_id: str,
        source: Source,
        *,
        prefix: str = "emachi:",
        ttl: float = 10.0,
        interval: float | None = None,
        timeout: float = 1.0,
    ) -> None:
        self.url = url
        self.process_id = process_id
        self.source = source
        self.prefix = prefix
        self.ttl = ttl
        self.interval = interval if interval is not None else ttl / 3.0
        self.timeout = timeout
        self.started = time.time()
        self.view = ClusterView()
        self._redis: Any = None
        self._task = None
        self._ok = True

    @property
    def connected(self) -> bool:
        return self._ok

    def _key(self, kind: str, pid: str) -> str:
        return f"{self.prefix}{kind}:{pid}"

    async def start(self) -> None:
        self._redis = redis_client(self.url, self.timeout)
        await self.beat()
        self._start_loop()

    async def stop(self, *, leave: bool = True) -> None:
        await self._stop_loop()
        if self._redis is None:
            return
        if leave:
            try:
                pipe = self._redis.pipeline(transaction=True)
                pipe.delete(self._key("proc", self.process_id), self._key("inst", self.process_id))
                pipe.srem(f"{self.prefix}procs", self.process_id)
                await pipe.execute()
            except Exception as exc:
                log.warning("directory: could not leave", extra={"error": _why(exc)})
        await close_quietly(self._redis, self.timeout)
        self._redis = None

    async def beat(self) -> ClusterView:
        """Write this process's entry and read everyone's; on a Redis fault keep the last view
        (with this process's own numbers brought up to date), log once per outage and report it
        through :attr:`connected` instead of raising."""
        r = self.source()
        try:
            await self._write(r)
            view = await self._read()
        except REDIS_DOWN as exc:
            if self._ok:
                log.warning(
                    "directory: redis unreachable, keeping the last view",
                    extra={"error": _why(exc)},
                )
            self._ok = False
            mine = ProcessInfo(
                self.process_id,
                r.addr,
                self.started,
                r.people,
                r.watchers,
                dict(r.instances),
                r.url,
            )
            others = tuple(p for p in self.view.processes if p.process_id != self.process_id)
            self.view = ClusterView(tuple(sorted((*others, mine), key=lambda p: p.process_id)))
            return self.view
        if not self._ok:
            log.info("directory: redis reachable again")
        self._ok = True
        self.view = view
        return view

    async def _write(self, r: Report) -> None:
        ms = max(1, int(self.ttl * 1000))
        proc = self._key("proc", self.process_id)
        inst = self._key("inst", self.process_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(
            proc,
            mapping={
                "addr": r.addr,
                "url": r.url,
                "started": f"{self.started:.3f}",
                "people": r.people,
                "watchers": r.watchers,
            },
        )
        pipe.pexpire(proc, ms)
        pipe.delete(inst)
        if r.instances:
            pipe.hset(inst, mapping=dict(r.instances))
            pipe.pexpire(inst, ms)
        pipe.sadd(f"{self.prefix}procs", self.process_id)
        await pipe.execute()

    async def _read(self) -> ClusterView:
        ids = sorted(x.decode() for x in await self._redis.smembers(f"{self.prefix}procs"))
        if not ids:
            return ClusterView()
        pipe = self._redis.pipeline(transaction=False)
        for pid in ids:
            pipe.hgetall(self._key("proc", pid))
            pipe.hgetall(self._key("inst", pid))
        rows = await pipe.execute()
        out: list[ProcessInfo] = []
        gone: list[str] = []
        for i, pid in enumerate(ids):
            proc, inst = rows[2 * i], rows[2 * i + 1]
            if not proc:
                gone.append(pid)
                continue
            out.append(
                ProcessInfo(
                    pid,
                    proc.get(b"addr", b"").decode(),
                    float(proc.get(b"started", b"0")),
                    int(proc.get(b"people", b"0")),
                    int(proc.get(b"watchers", b"0")),
                    {k.decode(): int(v) for k, v in inst.items()},
                    proc.get(b"url", b"").decode(),
                )
            )
        if gone:
            await self._redis.srem(f"{self.prefix}procs", *gone)
        return ClusterView(tuple(out))


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
