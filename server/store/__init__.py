"""Records that must last: one :class:`Store` interface, written through an :class:`Outbox`.

``setup(app)`` (listed first in ``server.features``) opens the backend the configuration names
and puts it and its outbox on the application (``app[STORE]``, ``app[OUTBOX]``):

- ``--database postgresql://…``: :class:`PostgresStore`, shared by every process that names it
  (what a cluster should use, with ``--redis`` too: records go to PostgreSQL then, not to Redis);
- else ``--redis URL``: :class:`RedisStore`, shared by every process of the cluster;
- else (one process): :class:`SqliteStore` in ``DATA_DIR/records.sqlite3``.

The SQL backends migrate their schema when they start (``server.store.migrations``).

Features write with ``app[OUTBOX].add / put / delete / append`` (synchronous, never waiting on the
backend) and read with ``await app[STORE].counters / get / records`` (bounded; :class:`StoreAway`
when the backend does not answer). The outbox is flushed when the application stops, after the
features that write in their own cleanup (they are set up later, so stopped earlier).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from server.config import Config
from server.keys import CLUSTER, CONFIG, HEALTH, OUTBOX, STORE

from .base import (
    Add,
    Append,
    Batch,
    Delete,
    DropStream,
    Put,
    Record,
    Store,
    StoreAway,
    answered_within,
)
from .memory import MemoryStore
from .migrations import SchemaTooNew
from .outbox import Outbox, OutboxFull
from .postgres import PostgresStore
from .redis_store import RedisStore
from .sqlite import SqliteStore

__all__ = [
    "setup",
    "open_store",
    "RECORDS_FILE",
    "Store",
    "StoreAway",
    "answered_within",
    "Outbox",
    "OutboxFull",
    "MemoryStore",
    "SqliteStore",
    "RedisStore",
    "PostgresStore",
    "SchemaTooNew",
    "Batch",
    "Add",
    "Put",
    "Delete",
    "Append",
    "DropStream",
    "Record",
]

RECORDS_FILE = "records.sqlite3"
#: how long the outbox may take at exit to commit what waits
CLOSE_TIMEOUT = 2.0


def open_store(config: Config) -> Store:
    """The backend for ``config`` (nothing opened yet: that is :meth:`Store.start`)."""
    if config.database_url:
        return PostgresStore(config.database_url)
    if config.redis_url:
        return RedisStore(config.redis_url)
    return SqliteStore(config.data_dir / RECORDS_FILE)


def setup(app: web.Application, store: Store | None = None) -> None:
    """Put the store and its outbox on ``app``; they start and stop with it."""
    if STORE in app:
        return
    store = store if store is not None else open_store(app[CONFIG])
    app[STORE] = store
    app[OUTBOX] = outbox = Outbox(store)
    app[HEALTH]["store"] = outbox.health
    app.cleanup_ctx.append(_store_ctx)


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    store, outbox = app[STORE], app[OUTBOX]
    cluster = app.get(CLUSTER)
    if isinstance(store, RedisStore) and cluster is not None:
        # under the cluster's prefix (default "emachi:"), set until the app starts
        store.prefix = f"{cluster.prefix}store:"
    await store.start()
    await outbox.start()
    try:
        yield
    finally:
        await outbox.close(CLOSE_TIMEOUT)
        await store.close()
