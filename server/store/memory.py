"""Records in this process's memory: the same semantics as the durable stores, lost at exit.

For unit tests and tools that need a store but nothing kept (``python -m server.kiosk check``).
"""

from __future__ import annotations

import json
import time
from typing import Any

from .base import Add, Append, Batch, Delete, DropStream, Put, Record, StoreAway

__all__ = ["MemoryStore"]


class MemoryStore:
    """Dictionaries; :attr:`away` set True makes every call raise :class:`StoreAway` (tests)."""

    kind = "memory"

    def __init__(self) -> None:
        self.away = False
        self._batches: set[str] = set()
        self._counters: dict[str, dict[tuple[str, ...], int]] = {}
        self._values: dict[tuple[str, str], tuple[str, float | None]] = {}
        self._streams: dict[str, dict[str, str]] = {}

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def _check(self) -> None:
        if self.away:
            raise StoreAway("memory store set away")

    async def apply(self, batch: Batch) -> bool:
        self._check()
        if batch.id in self._batches:
            return False
        self._batches.add(batch.id)
        now = time.time()
        for op in batch.ops:
            if isinstance(op, Add):
                c = self._counters.setdefault(op.space, {})
                c[op.key] = c.get(op.key, 0) + op.n
            elif isinstance(op, Put):
                self._values[op.space, op.key] = (
                    op.value,
                    None if op.ttl is None else now + op.ttl,
                )
            elif isinstance(op, Delete):
                self._values.pop((op.space, op.key), None)
            elif isinstance(op, Append):
                self._streams.setdefault(op.stream, {}).setdefault(op.id, op.data)
            elif isinstance(op, DropStream):
                self._streams.pop(op.stream, None)
        return True

    async def counters(self, space: str, since: str | None = None) -> dict[tuple[str, ...], int]:
        self._check()
        c = self._counters.get(space, {})
        return {k: n for k, n in c.items() if since is None or k[0] >= since}

    async def get(self, space: str, key: str) -> Any | None:
        self._check()
        v = self._values.get((space, key))
        if v is None or (v[1] is not None and v[1] <= time.time()):
            return None
        return json.loads(v[0])

    async def records(self, stream: str, after: int = 0, limit: int = 1000) -> list[Record]:
        self._check()
        items = list(self._streams.get(stream, {}).items())[after : after + limit]
        return [Record(after + i + 1, k, json.loads(v)) for i, (k, v) in enumerate(items)]
