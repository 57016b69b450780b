"""Every application key of emachi, in one module that imports nothing of ours at run time.

Features and the shell both read app state through these keys, so that no import has to hide
inside a function to dodge a cycle (``server.app`` → a feature → ``server.app``). The types are
imported for the type checker only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from assets_manifest.store import AssetStore
    from server.accounts import AccountBook
    from server.audit import AuditLog
    from server.briefing.narration import NarrationSpot
    from server.briefing.service import BriefingService
    from server.cluster import Cluster
    from server.cluster.bus import Bus
    from server.cluster.bus import Outbox as BusOutbox
    from server.cluster.chat import ChatRelay
    from server.cluster.placement import Placement
    from server.config import Config
    from server.counters.service import CounterService
    from server.dispatch import Dispatcher
    from server.events import EventService
    from server.hall import Hall
    from server.hooks import Hooks
    from server.kiosk.service import KioskService
    from server.metrics import Metrics
    from server.session import Connections
    from server.store import Outbox, Store
    from server.voice import VoiceService
    from server.web_security import WebSecurity
    from world.loader import World

__all__ = [
    "CONFIG",
    "WORLD",
    "HALL",
    "HOOKS",
    "DISPATCH",
    "METRICS",
    "CONNECTIONS",
    "HEALTH",
    "ASSET_STORES",
    "CLUSTER",
    "BUS",
    "BUS_OUTBOX",
    "CHAT_RELAY",
    "PLACEMENT",
    "KIOSKS",
    "BRIEFINGS",
    "NARRATION",
    "VOICE",
    "SECURITY",
    "STORE",
    "OUTBOX",
    "AUDIT",
    "ACCOUNTS",
    "EVENTS",
    "COUNTERS",
]

CONFIG: web.AppKey[Config] = web.AppKey("config")
WORLD: web.AppKey[World] = web.AppKey("world")
HALL: web.AppKey[Hall] = web.AppKey("hall")
#: lifecycle hooks of the hall and its instances (``server.hooks``), registered by features
HOOKS: web.AppKey[Hooks] = web.AppKey("hooks")
DISPATCH: web.AppKey[Dispatcher] = web.AppKey("dispatch")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
#: the open WebSockets, by address (per-address limit, drain)
CONNECTIONS: web.AppKey[Connections] = web.AppKey("connections")
#: more parts of /healthz: name -> a function answering from memory (e.g. "cluster")
HEALTH: web.AppKey[dict[str, Callable[[], object]]] = web.AppKey("health")
ASSET_STORES: web.AppKey[list[AssetStore]] = web.AppKey("asset_stores")
CLUSTER: web.AppKey[Cluster] = web.AppKey("cluster")
#: the cluster's bus (``server/cluster/bus.py``): Redis pub/sub with ``--redis``, else in-process;
#: features subscribe to their channels in their ``setup`` (the cluster is mounted first)
BUS: web.AppKey[Bus] = web.AppKey("bus")
#: publish on the bus from synchronous code, in order, without waiting
BUS_OUTBOX: web.AppKey[BusOutbox] = web.AppKey("bus_outbox")
#: chat across processes (``server/cluster/chat.py``): set in cluster mode only
CHAT_RELAY: web.AppKey[ChatRelay] = web.AppKey("chat_relay")
#: where a hello belongs: here or (a cluster) the process that owns its instance
PLACEMENT: web.AppKey[Placement] = web.AppKey("placement")
KIOSKS: web.AppKey[KioskService] = web.AppKey("kiosks")
BRIEFINGS: web.AppKey[BriefingService] = web.AppKey("briefings")
#: where the briefing's narration is spoken from now (``server.briefing.narration``), which the
#: voice feature turns into each listener's gain of it
NARRATION: web.AppKey[NarrationSpot] = web.AppKey("narration")
VOICE: web.AppKey[VoiceService] = web.AppKey("voice")
#: the CSP, the allowed browser origins and the helper rate limit (``server.web_security``)
SECURITY: web.AppKey[WebSecurity] = web.AppKey("web_security")
#: where records last (``server.store``): read with ``await app[STORE].counters(...)`` etc.
STORE: web.AppKey[Store] = web.AppKey("store")
#: how records are written: ``app[OUTBOX].add(...)`` returns at once, never waiting on the store
OUTBOX: web.AppKey[Outbox] = web.AppKey("outbox")
#: the staff log (``server.audit``): ``audit(app, actor, action, ...)`` writes to it
AUDIT: web.AppKey[AuditLog] = web.AppKey("audit")
#: this process's copy of the staff accounts and signed-out sessions (``server.accounts``)
ACCOUNTS: web.AppKey[AccountBook] = web.AppKey("accounts")
#: invite-only events and moderation (``server.events``)
EVENTS: web.AppKey[EventService] = web.AppKey("events")
#: the service counters (``server.counters``)
COUNTERS: web.AppKey[CounterService] = web.AppKey("counters")
