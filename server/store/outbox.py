"""The outbox: how code on the event loop writes records without ever waiting on the backend.

A caller (a request handler, a hook, the tick) calls :meth:`Outbox.add`, :meth:`~Outbox.put`,
:meth:`~Outbox.delete` or :meth:`~Outbox.append`: synchronous, O(1), and it returns a sequence
number at once. One background task seals what is waiting into a :class:`~server.store.base.Batch`
with a fresh id and applies it; while the backend is away it retries the same batch (same id) with
backoff, so a retry never double counts, and new records wait in the next batch. A record is
acknowledged once the batch holding it committed: ``await outbox.committed(seq)``.

Memory is bounded: counters and values coalesce by key (a thousand views of one kiosk on one day
are one ``Add``), and at most ``limit`` operations wait besides the batch in flight; past that an
enqueue raises :class:`OutboxFull` for the caller to decide.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Any

from server.tasks import stop_task

from .base import (
    Add,
    Append,
    Batch,
    Delete,
    DropStream,
    Op,
    Put,
    Store,
    check_key,
    check_name,
    dumps,
)

__all__ = ["Outbox", "OutboxFull"]

log = logging.getLogger("emachi.store.outbox")


class OutboxFull(Exception):  # noqa: N818 - a state, said as such
    """Too many records wait for a backend that is away; this one was not taken."""


class Outbox:
    """Records on their way to ``store``, in order, each batch applied once."""

    def __init__(
        self,
        store: Store,
        *,
        limit: int = 20_000,
        linger: float = 0.005,
        backoff: tuple[float, float] = (0.05, 2.0),
    ) -> None:
        self.store = store
        self.limit = limit
        self.linger = linger
        self.backoff = backoff
        #: the backend did not take the last try (cleared by the next commit)
        self.away = False
        self.failures = 0
        self.committed_batches = 0
        self._adds: dict[tuple[str, tuple[str, ...]], int] = {}
        self._values: dict[tuple[str, str], Put | Delete] = {}
        self._appends: list[Append | DropStream] = []
        self._seq = 0  # the newest record taken
        self._done = 0  # every record up to this one is committed
        self._flight: Batch | None = None
        self._flight_upto = 0
        self._run_id = secrets.token_hex(6)
        self._batches = 0
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- taking records (synchronous, O(1)) -------------------------------------------------------

    @property
    def waiting(self) -> int:
        """Operations not yet committed (the batch in flight and the ones after it)."""
        flight = len(self._flight.ops) if self._flight is not None else 0
        return flight + len(self._adds) + len(self._values) + len(self._appends)

    def _room(self, new_key: bool) -> None:
        if new_key and len(self._adds) + len(self._values) + len(self._appends) >= self.limit:
            raise OutboxFull(f"{self.limit} records wait for the {self.store.kind} store")

    def _taken(self) -> int:
        self._seq += 1
        self._wake.set()
        return self._seq

    def add(self, space: str, key: tuple[str, ...], n: int = 1) -> int:
        """Add ``n`` to a counter. Returns the record's sequence number.

        Raises:
            ValueError: a bad space, key or ``n``. OutboxFull: see the module.
        """
        check_name(space, "space")
        check_key(key)
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n: expected a whole number >= 1, got {n!r}")
        k = (space, key)
        old = self._adds.get(k)
        self._room(old is None)
        self._adds[k] = (old or 0) + n
        return self._taken()

    def put(self, space: str, key: str, value: Any, ttl: float | None = None) -> int:
        """Set a value (anything JSON can hold), optionally for ``ttl`` seconds.

        Raises:
            ValueError / TypeError: a bad name or a value JSON cannot hold. OutboxFull.
        """
        check_name(space, "space")
        check_name(key, "key")
        if ttl is not None and not ttl > 0:
            raise ValueError(f"ttl: expected seconds > 0 or None, got {ttl!r}")
        k = (space, key)
        self._room(k not in self._values)
        self._values[k] = Put(space, key, dumps(value), ttl)
        return self._taken()

    def delete(self, space: str, key: str) -> int:
        check_name(space, "space")
        check_name(key, "key")
        k = (space, key)
        self._room(k not in self._values)
        self._values[k] = Delete(space, key)
        return self._taken()

    def append(self, stream: str, record_id: str, data: Any) -> int:
        """Append a record once (a second append with the same id is ignored by the store)."""
        check_name(stream, "stream")
        check_name(record_id, "record id")
        self._room(True)
        self._appends.append(Append(stream, record_id, dumps(data)))
        return self._taken()

    def drop_stream(self, stream: str) -> int:
        """Forget every record of ``stream``, after the appends to it taken before (in order)."""
        check_name(stream, "stream")
        self._room(True)
        self._appends.append(DropStream(stream))
        return self._taken()

    # -- acknowledgements -------------------------------------------------------------------------

    @property
    def last(self) -> int:
        """The sequence number of the newest record taken."""
        return self._seq

    def is_committed(self, seq: int) -> bool:
        return seq <= self._done

    async def committed(self, seq: int | None = None) -> None:
        """Return once record ``seq`` (default: every record taken so far) is committed."""
        target = self._seq if seq is None else seq
        while self._done < target:
            await self._progress.wait()

    # -- the flusher ------------------------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="records outbox")

    async def close(self, timeout: float = 2.0) -> None:
        """Commit what waits (within ``timeout``), then stop; what could not be saved is logged."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.committed()
        await stop_task(self._task)  # its writes retry: one cancel can become a timeout it handles
        self._task = None
        if self.waiting:
            log.error(
                "records not saved at exit",
                extra={"records": self.waiting, "store": self.store.kind},
            )

    def _seal(self) -> None:
        ops: list[Op] = [Add(s, k, n) for (s, k), n in self._adds.items()]
        ops += self._values.values()
        ops += self._appends
        self._adds, self._values, self._appends = {}, {}, []
        self._batches += 1
        self._flight = Batch(f"{self._run_id}-{self._batches}", tuple(ops))
        self._flight_upto = self._seq

    async def _run(self) -> None:
        delay = self.backoff[0]
        while True:
            if self._flight is None:
                if self._seq == self._done:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                if self.linger:
                    await asyncio.sleep(self.linger)  # let a burst join one batch
                self._seal()
            assert self._flight is not None
            try:
                await self.store.apply(self._flight)
            except Exception as exc:  # StoreAway, or a disk error: keep the batch, try again
                self.failures += 1
                if not self.away:
                    self.away = True
                    log.warning(
                        "records backend away; keeping records and retrying",
                        extra={"store": self.store.kind, "why": f"{type(exc).__name__}: {exc}"},
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff[1])
                continue
            if self.away:
                log.info("records backend back", extra={"store": self.store.kind})
            self.away = False
            delay = self.backoff[0]
            self._flight = None
            self.committed_batches += 1
            self._done = self._flight_upto
            progress, self._progress = self._progress, asyncio.Event()
            progress.set()

    def health(self) -> dict[str, Any]:
        """The ``store`` part of ``/healthz``, from memory."""
        return {"backend": self.store.kind, "up": not self.away, "waiting": self.waiting}
