"""The cluster bus: publish bytes on a channel, every process subscribed to it gets them.

Two backends behind one small interface (``Bus``): :class:`LocalBus` keeps everything in this
process (the embedded default; several ``LocalBus`` on one :class:`LocalHub` stand for several
processes in tests), :class:`RedisBus` uses Redis pub/sub (one connection to publish, one for the
listener task). Delivery is at most once, like Redis pub/sub: a message published while Redis is
away is lost, and the bus says so in the log and in :attr:`RedisBus.dropped`.

Every message travels in an envelope that names the sending process, so a process does not hear
its own messages unless it subscribed with ``echo=True``. Callbacks are synchronous and must never
await a peer: they run on the event loop between other work, like a broadcast.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgpack
import redis.exceptions

from server.tasks import stop_task

__all__ = [
    "Bus",
    "Callback",
    "LocalBus",
    "LocalHub",
    "RedisBus",
    "Outbox",
    "REDIS_DOWN",
    "close_quietly",
    "new_process_id",
    "redis_client",
    "pack",
    "unpack",
]

log = logging.getLogger("emachi.cluster.bus")

#: what a Redis that went away (killed, paused, unreachable) raises
REDIS_DOWN = (OSError, TimeoutError, redis.exceptions.RedisError)

Callback = Callable[[bytes], None]


def new_process_id() -> str:
    """A name for this process, unique in the cluster: host, pid and a few random characters
    (two apps in one Python process, as in the tests, get two ids)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def pack(sender: str, data: bytes) -> bytes:
    """The envelope of a bus message: ``[sender, data]`` in MessagePack."""
    return msgpack.packb([sender, data], use_bin_type=True)


def unpack(raw: bytes) -> tuple[str, bytes]:
    """Open an envelope; raises ``ValueError`` when it is not one of ours."""
    try:
        sender, data = msgpack.unpackb(raw, raw=False)
    except Exception as exc:  # msgpack raises several types; all mean the same here
        raise ValueError(f"not a bus envelope: {exc}") from None
    if not isinstance(sender, str) or not isinstance(data, bytes):
        raise ValueError("not a bus envelope: expected [str, bytes]")
    return sender, data


class Bus(Protocol):
    """Publish and subscribe between the processes of a cluster."""

    process_id: str
    #: called each time the bus (re)connects, the first time included: a chance to catch up
    on_connect: list[Callable[[], None]]

    async def publish(self, channel: str, data: bytes) -> None:
        """Send ``data`` to every subscriber of ``channel`` (other processes; this one with echo)."""
        ...

    def subscribe(self, channel: str, callback: Callback, *, echo: bool = False) -> None:
        """Call ``callback(data)`` for each message on ``channel``; ``echo`` includes our own."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    @property
    def connected(self) -> bool:
        """False while the backend is away (messages are dropped meanwhile)."""
        ...


@dataclass(slots=True)
class _Subscriber:
    process_id: str
    callback: Callback
    echo: bool


def _deliver(subs: list[_Subscriber], sender: str, data: bytes, channel: str) -> None:
    for sub in subs:
        if sub.process_id == sender and not sub.echo:
            continue
        try:
            sub.callback(data)
        except Exception:
            log.exception("bus callback failed", extra={"channel": channel})


def _call_all(hooks: list[Callable[[], None]]) -> None:
    for hook in list(hooks):
        try:
            hook()
        except Exception:
            log.exception("bus on_connect hook failed")


@dataclass(slots=True)
class LocalHub:
    """What several :class:`LocalBus` share: the subscribers of each channel."""

    channels: dict[str, list[_Subscriber]] = field(default_factory=dict)


class LocalBus:
    """The in-process bus: nothing to start, delivery on the next turn of the event loop."""

    def __init__(self, process_id: str | None = None, hub: LocalHub | None = None) -> None:
        self.process_id = process_id or new_process_id()
        self.hub = hub if hub is not None else LocalHub()
        self._mine: list[tuple[str, _Subscriber]] = []
        self._running = False
        self.on_connect: list[Callable[[], None]] = []

    @property
    def connected(self) -> bool:
        return self._running

    async def start(self) -> None:
        self._running = True
        _call_all(self.on_connect)

    async def stop(self) -> None:
        self._running = False
        for channel, sub in self._mine:
            with contextlib.suppress(ValueError):
                self.hub.channels[channel].remove(sub)
        self._mine.clear()

    def subscribe(self, channel: str, callback: Callback, *, echo: bool = False) -> None:
        sub = _Subscriber(self.process_id, callback, echo)
        self.hub.channels.setdefault(channel, []).append(sub)
        self._mine.append((channel, sub))

    async def publish(self, channel: str, data: bytes) -> None:
        subs = list(self.hub.channels.get(channel, ()))
        if subs:
            # never re-enter the publisher: the callbacks run after it has returned
            asyncio.get_running_loop().call_soon(_deliver, subs, self.process_id, data, channel)


class RedisBus:
    """Redis pub/sub: channel ``{prefix}bus:{channel}``; a listener task that reconnects.

    When Redis goes away the listener logs it once, retries with a growing backoff (up to
    ``max_backoff`` seconds) and logs again when it is back; subscriptions are renewed. A publish
    while Redis is away is logged, counted in :attr:`dropped` and forgotten: the caller carries on.
    """

    def __init__(
        self,
        url: str,
        process_id: str | None = None,
        *,
        prefix: str = "emachi:",
        timeout: float = 1.0,
        min_backoff: float = 0.1,
        max_backoff: float = 5.0,
    ) -> None:
        self.url = url
        self.process_id = process_id or new_process_id()
        self.prefix = prefix
        self.timeout = timeout
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.dropped = 0
        self.reconnects = 0
        self.on_connect: list[Callable[[], None]] = []
        self._subs: dict[str, list[_Subscriber]] = {}
        self._new_channels: asyncio.Event | None = None
        self._pub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._listening = False
        self._publish_ok = True

    @property
    def connected(self) -> bool:
        return self._publish_ok and (self._listening or not self._subs)

    def _client(self) -> Any:
        return redis_client(self.url, self.timeout)

    def _full(self, channel: str) -> str:
        return f"{self.prefix}bus:{channel}"

    async def start(self) -> None:
        self._pub = self._client()
        self._new_channels = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._listen(), name="redis bus")

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None
        if self._pub is not None:
            await close_quietly(self._pub, self.timeout)
            self._pub = None
        self._listening = False

    def subscribe(self, channel: str, callback: Callback, *, echo: bool = False) -> None:
        self._subs.setdefault(channel, []).append(_Subscriber(self.process_id, callback, echo))
        if self._new_channels is not None:
            self._new_channels.set()

    async def publish(self, channel: str, data: bytes) -> None:
        if self._pub is None:
            raise RuntimeError("RedisBus.publish before start()")
        try:
            await self._pub.publish(self._full(channel), pack(self.process_id, data))
        except REDIS_DOWN as exc:
            self._dropped(channel, exc)
        else:
            if not self._publish_ok:
                log.info("redis bus: publishing again", extra={"url": _safe(self.url)})
            self._publish_ok = True

    def _dropped(self, channel: str, exc: BaseException) -> None:
        self.dropped += 1
        if self._publish_ok:
            log.warning(
                "redis bus: publish failed, message dropped",
                extra={"channel": channel, "error": _why(exc), "url": _safe(self.url)},
            )
        self._publish_ok = False

    async def _listen(self) -> None:
        """Subscribe, read messages, hand them to callbacks; on any connection fault, wait and
        start again (a new connection, every channel subscribed again)."""
        assert self._new_channels is not None
        backoff = self.min_backoff
        lost = False
        while True:
            client = self._client()
            pubsub = client.pubsub()
            subscribed: set[str] = set()
            try:
                while True:
                    wanted = set(self._subs) - subscribed
                    if wanted:
                        self._new_channels.clear()
                        await pubsub.subscribe(*(self._full(c) for c in sorted(wanted)))
                        subscribed |= wanted
                        if not self._listening:
                            self._listening = True
                            if lost:
                                self.reconnects += 1
                                log.info(
                                    "redis bus: connected again", extra={"url": _safe(self.url)}
                                )
                            lost = False
                            backoff = self.min_backoff
                            _call_all(self.on_connect)
                    if not subscribed:
                        await self._new_channels.wait()
                        continue
                    msg = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=self.timeout
                    )
                    if msg is not None and msg.get("type") == "message":
                        self._on_message(msg["channel"], msg["data"])
            except asyncio.CancelledError:
                raise
            except REDIS_DOWN as exc:
                if not lost:
                    log.warning(
                        "redis bus: connection lost, retrying",
                        extra={"error": _why(exc), "url": _safe(self.url)},
                    )
                lost = True
                self._listening = False
            except Exception:
                # a bug of ours must not leave the process deaf for good: log it, start again
                log.exception("redis bus: listener failed, starting again")
                lost = True
                self._listening = False
            finally:
                await close_quietly(pubsub, self.timeout)
                await close_quietly(client, self.timeout)
            await asyncio.sleep(backoff)
            backoff = min(self.max_backoff, backoff * 2)

    def _on_message(self, full_channel: bytes | str, raw: bytes) -> None:
        name = full_channel.decode() if isinstance(full_channel, bytes) else full_channel
        channel = name[len(self.prefix) + len("bus:") :]
        try:
            sender, data = unpack(raw)
        except ValueError as exc:
            log.warning(
                "redis bus: ignored a message", extra={"channel": channel, "error": str(exc)}
            )
            return
        _deliver(list(self._subs.get(channel, ())), sender, data, channel)


class Outbox:
    """Publish from synchronous code (a hook, a request handler) in order, without waiting.

    ``put`` queues; one task publishes the queue in order. At most ``limit`` messages wait: while
    the bus is stalled the oldest are dropped first (counted in :attr:`dropped`).
    """

    def __init__(self, bus: Bus, limit: int = 1000) -> None:
        self.bus = bus
        self.dropped = 0
        self._queue: deque[tuple[str, bytes]] = deque()
        self._limit = limit
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def put(self, channel: str, data: bytes) -> None:
        if len(self._queue) >= self._limit:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append((channel, data))
        self._wake.set()

    async def handed(self, turns: int = 3) -> None:
        """Give the publishing task a few turns of the loop to take what is queued (its first
        write to Redis happens within its turn), never waiting for Redis: a caller about to do a
        long synchronous step (a staff action's fan-out to its own audience) lets the message go
        to the other processes first. Returns after ``turns`` turns whatever happened."""
        for _ in range(turns):
            if not self._queue or self._task is None:
                return
            await asyncio.sleep(0)

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="bus outbox")

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None

    async def flush(self) -> None:
        """Publish what is queued now (for a clean stop)."""
        while self._queue:
            channel, data = self._queue.popleft()
            await self.bus.publish(channel, data)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                channel, data = self._queue.popleft()
                try:
                    await self.bus.publish(channel, data)
                except Exception:
                    log.exception("bus outbox: publish failed", extra={"channel": channel})


async def close_quietly(thing: Any, timeout: float) -> None:
    """Close a Redis client or pub/sub without waiting long on a Redis that does not answer."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(timeout):
            await thing.aclose()


def redis_client(url: str, timeout: float) -> Any:
    """A Redis client on one connection that gives up after ``timeout`` seconds and does not
    retry by itself: the bus and the directory decide when to try again (and log it)."""
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    return aioredis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        single_connection_client=True,
        retry_on_timeout=False,
        retry=Retry(NoBackoff(), 0),
    )


def _safe(url: str) -> str:
    """The URL without a password, for logs."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rpartition('@')[2]}"


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
