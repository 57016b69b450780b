"""Records in Redis (``emachi serve --redis URL``), so every process of a cluster shares them.

Every call goes through ``redis.asyncio`` and gives up after ``timeout`` seconds (a few for the
whole call) with :class:`StoreAway`. A batch is one Lua script: it first
``SET NX`` the batch id (kept a week) and applies nothing when the id was there, so a retry of a
batch whose first try reached Redis after the client gave up (a paused Redis) is not counted twice.

Keys, under the prefix (default ``emachi:store:``):

- ``c:{space}:{head}``  hash, field = the rest of the key, value = the count;
  ``ci:{space}`` set of the heads (so reads need no SCAN);
- ``v:{space}:{key}``   string, the JSON value, with a time to live when it has one;
- ``r:{stream}``        hash id → JSON, ``ro:{stream}`` list of the ids in order;
- ``b:{batch id}``      the batch was applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.exceptions

from .base import (
    Add,
    Append,
    Batch,
    Delete,
    DropStream,
    Put,
    Record,
    StoreAway,
    join_key,
    split_key,
)

__all__ = ["RedisStore", "DEFAULT_PREFIX", "APPLY_LUA"]

log = logging.getLogger("emachi.store.redis")

T = TypeVar("T")
DEFAULT_PREFIX = "emachi:store:"
BATCH_MEMORY_S = 7 * 86400
MAX_CONNECTIONS = 8
_DOWN = (OSError, TimeoutError, redis.exceptions.RedisError)

# KEYS[1] the batch id key; ARGV[1] its time to live (s); ARGV[2] the operations as JSON, each
# naming its keys by index into KEYS.
APPLY_LUA = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
for _, op in ipairs(cjson.decode(ARGV[2])) do
  local kind = op[1]
  if kind == 'add' then
    redis.call('HINCRBY', KEYS[op[2]], op[4], op[5])
    redis.call('SADD', KEYS[op[3]], op[6])
  elseif kind == 'put' then
    if op[4] > 0 then
      redis.call('SET', KEYS[op[2]], op[3], 'PX', op[4])
    else
      redis.call('SET', KEYS[op[2]], op[3])
    end
  elseif kind == 'del' then
    redis.call('DEL', KEYS[op[2]])
  elseif kind == 'app' then
    if redis.call('HSETNX', KEYS[op[2]], op[4], op[5]) == 1 then
      redis.call('RPUSH', KEYS[op[3]], op[4])
    end
  elseif kind == 'drop' then
    redis.call('DEL', KEYS[op[2]], KEYS[op[3]])
  end
end
return 1
"""


class RedisStore:
    """Records in the Redis at ``url`` under ``prefix``; each call bounded by ``timeout``."""

    kind = "redis"

    def __init__(self, url: str, prefix: str = DEFAULT_PREFIX, timeout: float = 1.0) -> None:
        self.url = url
        self.prefix = prefix
        self.timeout = timeout
        self._client: Any = None
        self._script: Any = None

    def _get(self) -> Any:
        if self._client is None:
            import redis.asyncio as aioredis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            # A pool, so that a staff page's read does not queue behind a batch; a connection
            # whose command timed out or was cancelled is disconnected by the client, so a late
            # reply is never read as the answer to another command. No retries of its own:
            # the outbox decides when to try again.
            self._client = aioredis.Redis.from_url(
                self.url,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                retry_on_timeout=False,
                retry=Retry(NoBackoff(), 0),
                max_connections=MAX_CONNECTIONS,
            )
            self._script = self._client.register_script(APPLY_LUA)
        return self._client

    async def _call(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        try:
            # the client's own socket timeouts come first; this one bounds the whole call
            # (connection, handshake and a wait for a free connection included)
            async with asyncio.timeout(5 * self.timeout):
                return await fn(self._get())
        except _DOWN as exc:
            raise StoreAway(f"redis: {type(exc).__name__}: {exc}") from None

    async def start(self) -> None:
        pass  # connected on first use: a Redis that is away at start is retried like any other time

    async def close(self) -> None:
        client, self._client, self._script = self._client, None, None
        if client is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.timeout):
                    await client.aclose()

    # -- writes -----------------------------------------------------------------------------------

    async def apply(self, batch: Batch) -> bool:
        p = self.prefix
        keys: list[str] = [f"{p}b:{batch.id}"]
        index: dict[str, int] = {}

        def k(name: str) -> int:
            i = index.get(name)
            if i is None:
                keys.append(name)
                i = index[name] = len(keys)  # Lua counts from 1
            return i

        ops: list[list[Any]] = []
        for op in batch.ops:
            if isinstance(op, Add):
                head = op.key[0]
                ops.append(
                    [
                        "add",
                        k(f"{p}c:{op.space}:{head}"),
                        k(f"{p}ci:{op.space}"),
                        split_key(op.key),
                        op.n,
                        head,
                    ]
                )
            elif isinstance(op, Put):
                ttl_ms = 0 if op.ttl is None else max(1, int(op.ttl * 1000))
                ops.append(["put", k(f"{p}v:{op.space}:{op.key}"), op.value, ttl_ms])
            elif isinstance(op, Delete):
                ops.append(["del", k(f"{p}v:{op.space}:{op.key}")])
            elif isinstance(op, Append):
                ops.append(["app", k(f"{p}r:{op.stream}"), k(f"{p}ro:{op.stream}"), op.id, op.data])
            elif isinstance(op, DropStream):
                ops.append(["drop", k(f"{p}r:{op.stream}"), k(f"{p}ro:{op.stream}")])
        argv = [BATCH_MEMORY_S, json.dumps(ops, ensure_ascii=False, separators=(",", ":"))]

        async def run(_client: Any) -> Any:
            return await self._script(keys=keys, args=argv)

        return bool(await self._call(run))

    # -- reads ------------------------------------------------------------------------------------

    async def counters(self, space: str, since: str | None = None) -> dict[tuple[str, ...], int]:
        p = self.prefix

        async def read(r: Any) -> dict[tuple[str, ...], int]:
            heads = sorted(
                h
                for h in (_text(x) for x in await r.smembers(f"{p}ci:{space}"))
                if since is None or h >= since
            )
            if not heads:
                return {}
            pipe = r.pipeline(transaction=False)
            for h in heads:
                pipe.hgetall(f"{p}c:{space}:{h}")
            out: dict[tuple[str, ...], int] = {}
            for h, fields in zip(heads, await pipe.execute(), strict=True):
                for tail, n in fields.items():
                    out[join_key(h, _text(tail))] = int(n)
            return out

        return await self._call(read)

    async def get(self, space: str, key: str) -> Any | None:
        async def read(r: Any) -> Any:
            return await r.get(f"{self.prefix}v:{space}:{key}")

        raw = await self._call(read)
        return None if raw is None else json.loads(raw)

    async def records(self, stream: str, after: int = 0, limit: int = 1000) -> list[Record]:
        p = self.prefix

        async def read(r: Any) -> list[tuple[str, str]]:
            ids = [_text(i) for i in await r.lrange(f"{p}ro:{stream}", after, after + limit - 1)]
            if not ids:
                return []
            data = await r.hmget(f"{p}r:{stream}", ids)
            return [(i, _text(d)) for i, d in zip(ids, data, strict=True)]

        rows = await self._call(read)
        return [Record(after + n + 1, i, json.loads(d)) for n, (i, d) in enumerate(rows)]


def _text(x: bytes | str) -> str:
    return x.decode() if isinstance(x, bytes) else x
