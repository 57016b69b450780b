"""The staff check shared by every ``/staff`` route: a credential, and no cross-site request.

A request is let through when it carries the staff token as ``Authorization: Bearer TOKEN``
(scripts) or a staff session cookie (people). The token is never taken from the query string of a
request it authorises: a person opens ``GET /staff/...?token=TOKEN`` once, and the answer sets the
``emachi_staff`` cookie (HttpOnly, SameSite=Strict, Path=/staff, Secure under TLS) and sends the
browser to the same address without the token, so the token stays out of the history, out of
links and out of logs. The cookie holds a signed expiry, not the token; the signing key is derived
from the token, so every process of a cluster (same token) accepts it and changing the token ends
every session.

Cross-site requests are refused before the credential is looked at (``403``): an ``Origin`` that
``server.web_security.origin_allowed`` refuses, or, on a state-changing method, ``Sec-Fetch-Site:
cross-site`` or ``same-site``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from html import escape

from aiohttp import web

from server.keys import CONFIG, SECURITY
from server.web_security import origin_allowed

__all__ = [
    "require_staff",
    "staff_actor",
    "Actor",
    "new_session",
    "session_valid",
    "COOKIE",
    "SESSION_SECONDS",
]

COOKIE = "emachi_staff"
SESSION_SECONDS = 12 * 3600
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})

HOW = (
    "send 'Authorization: Bearer TOKEN', or open the staff page once with ?token=TOKEN (the token "
    "is printed by 'emachi serve', or set with --staff-token / EMACHI_STAFF_TOKEN)"
)


def _key(token: str) -> bytes:
    return hmac.new(token.encode(), b"emachi staff session v1", hashlib.sha256).digest()


def _sign(token: str, body: str) -> str:
    return hmac.new(_key(token), body.encode(), hashlib.sha256).hexdigest()


def new_session(token: str, now: float | None = None) -> str:
    """A cookie value: ``expiry.nonce.signature`` (hex HMAC-SHA256 under a key from ``token``)."""
    expires = int((time.time() if now is None else now) + SESSION_SECONDS)
    body = f"{expires}.{secrets.token_urlsafe(12)}"
    return f"{body}.{_sign(token, body)}"


def session_valid(token: str, value: str, now: float | None = None) -> bool:
    """Whether ``value`` was signed for ``token`` and has not expired."""
    body, _, sig = value.rpartition(".")
    expires = body.partition(".")[0]
    if not token or not sig or not expires.isdigit():
        return False
    if not hmac.compare_digest(sig.encode(), _sign(token, body).encode()):
        return False
    return int(expires) > (time.time() if now is None else now)


def _unauthorized(text: str, error: str | None = None) -> web.HTTPUnauthorized:
    challenge = 'Bearer realm="emachi staff"' + (f', error="{error}"' if error else "")
    return web.HTTPUnauthorized(text=text, headers={"WWW-Authenticate": challenge})


def _refuse_cross_site(request: web.Request) -> None:
    sec = request.app.get(SECURITY)
    if not origin_allowed(request, sec.origins if sec is not None else frozenset()):
        raise web.HTTPForbidden(
            text="cross-site request refused: this origin may not call staff routes"
        )
    site = request.headers.get("Sec-Fetch-Site", "")
    if request.method not in _SAFE and site in ("cross-site", "same-site"):
        raise web.HTTPForbidden(
            text="cross-site request refused: staff actions come from the staff pages"
        )


def _token_ok(token: str, given: str) -> bool:
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())


def _sign_in(request: web.Request, token: str, given: str) -> web.HTTPException:
    """The answer to ``GET /staff/...?token=T``: a session cookie and the address without it."""
    if not _token_ok(token, given):
        return _unauthorized("staff token not valid for this server", "invalid_token")
    query = [(k, v) for k, v in request.query.items() if k != "token"]
    target = str(request.rel_url.with_query(query))
    config = request.app[CONFIG]
    secure = request.secure or (config.public_url or "").lower().startswith("https:")
    if request.headers.get("Sec-Fetch-Site") in ("cross-site", "same-site"):
        # a link followed from another site: a redirect would still count as cross-site and the
        # browser would hold back the Strict cookie, so this page moves on by itself instead
        resp: web.HTTPException = web.HTTPOk(
            text=f'<!doctype html><meta http-equiv="refresh" content="0;url={escape(target)}">'
            f'<a href="{escape(target)}">続ける / Continue</a>',
            content_type="text/html",
        )
    else:
        resp = web.HTTPSeeOther(location=target)
    resp.headers["Cache-Control"] = "no-store"
    resp.set_cookie(
        COOKIE,
        new_session(token),
        max_age=SESSION_SECONDS,
        path="/staff",
        httponly=True,
        samesite="Strict",
        secure=secure,
    )
    return resp


def require_staff(request: web.Request) -> None:
    """Refuse the request unless it is same-site and carries the staff token or a staff session.

    Raises:
        web.HTTPForbidden: a cross-site request (see the module docstring).
        web.HTTPSeeOther: ``GET ...?token=T`` with the right token: the cookie is set and the
            browser sent to the same address without the token.
        web.HTTPUnauthorized: no credential, or not this server's; the text says how to send one.
    """
    _refuse_cross_site(request)
    token = request.app[CONFIG].staff_token
    if request.method in ("GET", "HEAD") and "token" in request.query:
        raise _sign_in(request, token, request.query.get("token", ""))
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        if not _token_ok(token, auth[7:].strip()):
            raise _unauthorized("staff token not valid for this server", "invalid_token")
        return
    cookie = request.cookies.get(COOKIE)
    if cookie is not None:
        if session_valid(token, cookie):
            return
        raise _unauthorized(f"staff session expired or not valid: {HOW}", "invalid_token")
    if "token" in request.query:
        raise _unauthorized(f"the token is not taken from the address of a staff action: {HOW}")
    raise _unauthorized(f"staff token required: {HOW}")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who does a staff action: an account's name and role (host, staff or admin)."""

    name: str
    role: str


def staff_actor(request: web.Request, roles: tuple[str, ...] = ("host", "staff", "admin")) -> Actor:
    """The staff member behind ``request``, refused (403) unless their role is one of ``roles``.

    Until staff accounts exist, the shared token (or its session cookie) is the one credential
    and acts as ``Actor("token", "admin")``.

    Raises:
        web.HTTPForbidden, web.HTTPUnauthorized, web.HTTPSeeOther: as :func:`require_staff`; 403
            when the role may not do this.
    """
    require_staff(request)
    actor = Actor("token", "admin")
    if actor.role not in roles:
        raise web.HTTPForbidden(text=f"the role {actor.role} may not do this")
    return actor
