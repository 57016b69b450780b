"""The log of what staff and hosts did (a stand-in: the staff-accounts work brings the hash chain).

Every staff or host action (event edits, invites, mutes, moves, removals, bans) is appended here
with the account that acted. No chat text and no voice go in it.
"""

from __future__ import annotations

import secrets
import time

from aiohttp import web

from server.keys import OUTBOX

__all__ = ["audit", "STREAM"]

STREAM = "audit"


def audit(app: web.Application, actor: str, action: str, target: str = "", **data: object) -> None:
    """Append one record ``{actor, action, target, **data}`` through the outbox (synchronous)."""
    record = {"actor": actor, "action": action, "target": target, "at": time.time(), **data}
    app[OUTBOX].append(STREAM, f"{time.time_ns()}-{secrets.token_hex(4)}", record)
