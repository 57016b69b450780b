"""The staff token check shared by every ``/staff`` route."""

from __future__ import annotations

import hmac

from aiohttp import web

from server.keys import CONFIG

__all__ = ["require_staff"]

HOW = (
    "send 'Authorization: Bearer TOKEN' or add ?token=TOKEN (the token is printed by "
    "'emachi serve', or set with --staff-token / EMACHI_STAFF_TOKEN)"
)


def require_staff(request: web.Request) -> str | None:
    """Refuse the request unless it carries this server's staff token.

    Returns:
        The token when it came in the URL (a page keeps it in its own links), else None.

    Raises:
        web.HTTPUnauthorized: no token, or not this server's; the text says how to send one.
    """
    token = request.app[CONFIG].staff_token
    auth = request.headers.get("Authorization", "")
    from_query = not auth.startswith("Bearer ")
    given = request.query.get("token", "") if from_query else auth[7:].strip()
    if not given:
        raise web.HTTPUnauthorized(
            text=f"staff token required: {HOW}",
            headers={"WWW-Authenticate": 'Bearer realm="emachi staff"'},
        )
    if not token or not hmac.compare_digest(given.encode(), token.encode()):
        raise web.HTTPUnauthorized(
            text="staff token not valid for this server",
            headers={"WWW-Authenticate": 'Bearer realm="emachi staff", error="invalid_token"'},
        )
    return given if from_query else None
