"""One suite for both backends: the in-process bus and directory, and the Redis ones.

Each test stands for a cluster of "processes" (a bus and a directory each, with their own process
id) on the same backend: a shared hub or registry for the local one, the private Redis for the
other. What the suite checks is what the cluster relies on: a message reaches the other processes
in order and not its sender, a process is seen with its instances and people, and one that dies
is gone within the time to live.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from server.cluster.bus import Bus, LocalBus, LocalHub, RedisBus
from server.cluster.directory import (
    Directory,
    LocalDirectory,
    LocalRegistry,
    RedisDirectory,
    Report,
)
from tests.tools import WAIT, until

from .conftest import PrivateRedis

pytestmark = pytest.mark.cluster

TTL = 20 * WAIT


@dataclass(slots=True)
class Backend:
    """Makes buses and directories for "processes" of one cluster, and stops them at the end."""

    kind: str
    url: str = ""
    prefix: str = ""
    hub: LocalHub = field(default_factory=LocalHub)
    registry: LocalRegistry = field(default_factory=LocalRegistry)
    buses: list[Bus] = field(default_factory=list)
    directories: list[Directory] = field(default_factory=list)

    async def bus(self, pid: str, subscribe: Callable[[Bus], None] | None = None) -> Bus:
        bus: Bus
        if self.kind == "local":
            bus = LocalBus(pid, self.hub)
        else:
            bus = RedisBus(self.url, pid, prefix=self.prefix)
        if subscribe is not None:
            subscribe(bus)
        await bus.start()
        self.buses.append(bus)
        return bus

    async def directory(self, pid: str, source: Callable[[], Report]) -> Directory:
        d: Directory
        if self.kind == "local":
            d = LocalDirectory(pid, source, registry=self.registry, ttl=TTL, interval=2 * WAIT)
        else:
            d = RedisDirectory(
                self.url, pid, source, prefix=self.prefix, ttl=TTL, interval=2 * WAIT
            )
        await d.start()
        self.directories.append(d)
        return d

    async def close(self) -> None:
        for d in self.directories:
            await d.stop()
        for b in self.buses:
            await b.stop()


@pytest.fixture(params=["local", "redis"])
async def backend(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[Backend]:
    if request.param == "local":
        b = Backend("local")
    else:
        redis: PrivateRedis = request.getfixturevalue("redis_server")
        b = Backend("redis", redis.url, prefix)
    yield b
    await b.close()


def inbox(bus: Bus, channel: str, *, echo: bool = False) -> list[bytes]:
    got: list[bytes] = []
    bus.subscribe(channel, got.append, echo=echo)
    return got


async def ready(*buses: Bus) -> None:
    """A Redis subscriber hears only what is published after it subscribed."""
    await until(lambda: all(b.connected for b in buses))


# -- bus ------------------------------------------------------------------------------------------


async def test_a_message_reaches_the_other_processes_but_not_its_sender(backend: Backend) -> None:
    got: dict[str, list[bytes]] = {}

    def sub(name: str) -> Callable[[Bus], None]:
        return lambda bus: got.__setitem__(name, inbox(bus, "briefing"))

    a = await backend.bus("a", sub("a"))
    b = await backend.bus("b", sub("b"))
    await backend.bus("c", sub("c"))
    await ready(*backend.buses)
    await a.publish("briefing", b"start")
    await until(lambda: got["b"] and got["c"])
    # b answers once it heard a: its message reaches a and c after anything a's could have
    await b.publish("briefing", b"after")
    await until(lambda: b"after" in got["a"] and b"after" in got["c"])
    assert got["a"] == [b"after"], "a process does not hear its own message"
    assert got["b"] == [b"start"] and got["c"] == [b"start", b"after"], "each message once"


async def test_with_echo_a_process_hears_itself(backend: Backend) -> None:
    got: list[bytes] = []
    a = await backend.bus("a", lambda bus: bus.subscribe("x", got.append, echo=True))
    await ready(a)
    await a.publish("x", b"me")
    await until(lambda: got == [b"me"])


async def test_messages_from_one_process_arrive_in_order_on_their_channel_only(
    backend: Backend,
) -> None:
    boxes: dict[str, list[bytes]] = {}

    def sub(bus: Bus) -> None:
        boxes["one"] = inbox(bus, "one")
        boxes["two"] = inbox(bus, "two")

    a = await backend.bus("a")
    await backend.bus("b", sub)
    await ready(*backend.buses)
    sent = [f"m{i}".encode() for i in range(50)]
    for m in sent:
        await a.publish("one", m)
    await until(lambda: len(boxes["one"]) == len(sent))
    assert boxes["one"] == sent
    assert boxes["two"] == []


async def test_a_failing_callback_does_not_keep_the_message_from_the_others(
    backend: Backend,
) -> None:
    got: list[bytes] = []

    def broken(data: bytes) -> None:
        raise RuntimeError("a bug in one subscriber")

    def sub(bus: Bus) -> None:
        bus.subscribe("x", broken)
        bus.subscribe("x", got.append)

    a = await backend.bus("a")
    await backend.bus("b", sub)
    await ready(*backend.buses)
    await a.publish("x", b"still here")
    await until(lambda: got == [b"still here"])


async def test_a_stopped_process_hears_nothing_more(backend: Backend) -> None:
    got: list[bytes] = []
    witness: list[bytes] = []
    a = await backend.bus("a")
    b = await backend.bus("b", lambda bus: bus.subscribe("x", got.append))
    c = await backend.bus("c", lambda bus: bus.subscribe("x", witness.append))
    await ready(a, b, c)
    await a.publish("x", b"one")
    await until(lambda: got == [b"one"] and witness == [b"one"])
    await b.stop()
    await a.publish("x", b"two")
    await until(lambda: witness == [b"one", b"two"])  # delivered to whoever still listens
    assert got == [b"one"]


async def test_a_process_is_told_when_the_bus_connects(backend: Backend) -> None:
    calls: list[str] = []

    def sub(bus: Bus) -> None:
        bus.subscribe("x", lambda data: None)
        bus.on_connect.append(lambda: calls.append("up"))

    await backend.bus("a", sub)
    await until(lambda: calls == ["up"])


# -- directory ------------------------------------------------------------------------------------


async def test_every_process_sees_the_others_with_their_instances_and_people(
    backend: Backend,
) -> None:
    reports = {
        "a": Report({"hall#1": 3, "hall#2": 1}, watchers=5, addr="10.0.0.1:8081"),
        "b": Report({"hall#1": 2}, watchers=0, addr="10.0.0.2:8082"),
    }
    a = await backend.directory("a", lambda: reports["a"])
    b = await backend.directory("b", lambda: reports["b"])
    await until(lambda: len(a.view.processes) == 2 and len(b.view.processes) == 2)
    for d in (a, b):
        assert d.view.people == 6
        assert d.view.watchers == 5
        pa = next(p for p in d.view.processes if p.process_id == "a")
        assert dict(pa.instances) == {"hall#1": 3, "hall#2": 1}
        assert pa.addr == "10.0.0.1:8081"
        assert d.view.owner("hall#2") == ["a"]
        assert sorted(d.view.owner("hall#1")) == ["a", "b"]


async def test_a_change_of_population_is_seen_on_the_next_beat(backend: Backend) -> None:
    people = {"n": 1}
    await backend.directory("a", lambda: Report({"hall#1": people["n"]}))
    b = await backend.directory("b", lambda: Report({}))
    await until(lambda: b.view.people == 1)
    people["n"] = 7
    await until(lambda: b.view.people == 7)


async def test_a_process_that_dies_is_gone_within_the_time_to_live(backend: Backend) -> None:
    a = await backend.directory("a", lambda: Report({"hall#1": 4}))
    b = await backend.directory("b", lambda: Report({"hall#1": 1}))
    await until(lambda: b.view.people == 5)
    await a.stop(leave=False)  # no goodbye: its entry has to expire
    backend.directories.remove(a)
    await until(lambda: [p.process_id for p in b.view.processes] == ["b"], timeout=2 * TTL)
    assert b.view.people == 1


async def test_a_process_that_stops_cleanly_leaves_at_once(backend: Backend) -> None:
    a = await backend.directory("a", lambda: Report({"hall#1": 4}))
    backend.directories.remove(a)
    b = await backend.directory("b", lambda: Report({}))
    await until(lambda: b.view.people == 4)
    await a.stop()
    await b.beat()
    assert [p.process_id for p in b.view.processes] == ["b"]


# -- what Redis holds -----------------------------------------------------------------------------


async def test_redis_holds_counts_under_the_prefix_in_expiring_hashes(
    redis_server: PrivateRedis, prefix: str
) -> None:
    import redis.asyncio as aioredis

    backend = Backend("redis", redis_server.url, prefix)
    try:
        await backend.directory("a", lambda: Report({"hall#1": 2}, watchers=1, addr="h:1"))
        r = aioredis.Redis.from_url(redis_server.url)
        try:
            keys = sorted(k.decode() for k in await r.keys(f"{prefix}*"))
            assert keys == [f"{prefix}inst:a", f"{prefix}proc:a", f"{prefix}procs"]
            for k in (f"{prefix}inst:a", f"{prefix}proc:a"):
                assert await r.type(k) == b"hash"
                assert 0 < await r.pttl(k) <= TTL * 1000
            proc = await r.hgetall(f"{prefix}proc:a")
            assert set(proc) == {b"addr", b"url", b"started", b"people", b"watchers"}
            assert await r.hgetall(f"{prefix}inst:a") == {b"hall#1": b"2"}
        finally:
            await r.aclose()
    finally:
        await backend.close()
