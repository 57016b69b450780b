"""The feature packages mounted on the application, each a ``setup(app)`` (docs/architecture.md)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from assets_manifest.store import AssetStore
from server import (
    assets_http,
    audit,
    briefing,
    cluster,
    console,
    counters,
    events,
    kiosk,
    resume,
    store,
    voice,
)
from server.config import Config
from server.keys import ASSET_STORES, CONFIG

__all__ = ["SETUPS", "asset_stores"]


def asset_stores(config: Config) -> list[AssetStore]:
    """The world's committed assets first, then the runtime store (rendered briefings)."""
    world_dir = config.world if config.world.is_dir() else config.world.parent
    return [AssetStore(world_dir / "assets"), AssetStore(config.asset_dir)]


def _assets(app: web.Application) -> None:
    app[ASSET_STORES] = asset_stores(app[CONFIG])
    assets_http.setup(app)


#: in mounting order: the cluster first, since it offers the bus (``app[BUS]``, ``app[BUS_OUTBOX]``)
#: that features mounted after it subscribe to in their ``setup``
SETUPS: list[Callable[[web.Application], None]] = [
    store.setup,  # first: the features below write records through it, and it stops last
    cluster.setup,  # then the bus (``app[BUS]``) that features subscribe to
    audit.setup,  # the staff log, which every staff action below writes to
    console.setup,  # staff sign-in, sessions, the /staff index and the log's page
    _assets,
    kiosk.setup,
    briefing.setup,
    voice.setup,
    events.setup,  # after voice: its hooks re-apply a host's mute over voice's reset
    counters.setup,  # after kiosk (its links carry refs) and voice (its hello hook sets staff)
    resume.setup,
]
