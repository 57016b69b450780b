"""Who is calling a ``/staff`` route: an :class:`Actor` (an account and its role), or a refusal.

``staff_actor(request, roles)`` lets a request through when it carries

- ``Authorization: Bearer TOKEN``, the shared staff token (scripts, and the first sign-in): it acts
  as the account ``token`` with the role ``admin``; or
- the ``emachi_staff`` session cookie, set by ``POST /staff/signin`` (an account's name and
  password, ``server.staff_pages``) or by opening ``GET /staff/...?token=TOKEN`` once (the token's
  session; the answer sends the browser to the same address without the token, so the token stays
  out of the history, out of links and out of logs). On a state-changing method a session must
  also carry its CSRF token, in the ``X-CSRF-Token`` header or a ``csrf`` form field (``GET
  /staff/session`` tells a page its token; the server's own forms carry it).

The cookie (HttpOnly, SameSite=Strict, Path=/staff, Secure under TLS or an ``https`` public URL)
holds ``name~generation~expiry~nonce~signature``: an HMAC-SHA256 under a key derived from the
staff token, so every process of a cluster (same token) accepts it and changing the token ends
every session. It is checked in memory, never waiting on the Store: the account must still exist
with the same password (its *generation*) in this process's :class:`server.accounts.AccountBook`,
and the session must not have been signed out; its role is the account's role now, not the one
it signed in with. The CSRF token is an HMAC of the cookie under the same key.

Cross-site requests are refused before any credential is looked at (``403``): an ``Origin`` that
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
from urllib.parse import quote

from aiohttp import web

from server.keys import ACCOUNTS, CONFIG, SECURITY
from server.web_security import origin_allowed

__all__ = [
    "Actor",
    "Session",
    "staff_actor",
    "require_staff",
    "new_session",
    "read_session",
    "csrf_token",
    "session_cookie",
    "refuse_cross_site",
    "COOKIE",
    "CSRF_HEADER",
    "CSRF_FIELD",
    "SESSION_SECONDS",
    "TOKEN_ACTOR",
]

COOKIE = "emachi_staff"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"
#: where a middleware (``server.staff_pages``) leaves the ``csrf`` field of a form post
CSRF_FORM_KEY: web.RequestKey[str] = web.RequestKey("emachi_csrf_form")
SESSION_SECONDS = 12 * 3600
ALL_ROLES = ("host", "staff", "admin")
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_TOKEN_GENERATION = "t"

HOW = (
    "sign in at /staff/signin, send 'Authorization: Bearer TOKEN', or open the staff page once "
    "with ?token=TOKEN (the token is printed by 'emachi serve', or set with --staff-token / "
    "EMACHI_STAFF_TOKEN)"
)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: an account name (``token`` for the shared staff token) and its role."""

    name: str
    role: str


TOKEN_ACTOR = Actor("token", "admin")


@dataclass(frozen=True, slots=True)
class Session:
    """A staff session cookie, read and its signature checked."""

    name: str
    generation: str
    expires: int
    nonce: str
    value: str


def _key(token: str) -> bytes:
    return hmac.new(token.encode(), b"emachi staff session v2", hashlib.sha256).digest()


def _sign(token: str, body: str) -> str:
    return hmac.new(_key(token), body.encode(), hashlib.sha256).hexdigest()


def new_session(
    token: str, name: str = "token", generation: str = _TOKEN_GENERATION, now: float | None = None
) -> str:
    """A cookie value for account ``name`` (whose password generation is ``generation``)."""
    expires = int((time.time() if now is None else now) + SESSION_SECONDS)
    body = f"{name}~{generation}~{expires}~{secrets.token_urlsafe(12)}"
    return f"{body}~{_sign(token, body)}"


def read_session(token: str, value: str, now: float | None = None) -> Session | None:
    """The session ``value`` holds if it was signed for ``token`` and has not expired."""
    parts = value.split("~")
    if not token or len(parts) != 5 or not parts[2].isdigit():
        return None
    name, generation, expires, nonce, sig = parts
    if not hmac.compare_digest(sig.encode(), _sign(token, "~".join(parts[:4])).encode()):
        return None
    if int(expires) <= (time.time() if now is None else now):
        return None
    return Session(name, generation, int(expires), nonce, value)


def csrf_token(token: str, cookie_value: str) -> str:
    """The CSRF token of a session: bound to its cookie, so it ends with it."""
    return hmac.new(_key(token), b"csrf\x00" + cookie_value.encode(), hashlib.sha256).hexdigest()[
        :32
    ]


def _unauthorized(text: str, error: str | None = None) -> web.HTTPUnauthorized:
    challenge = 'Bearer realm="emachi staff"' + (f', error="{error}"' if error else "")
    return web.HTTPUnauthorized(text=text, headers={"WWW-Authenticate": challenge})


def refuse_cross_site(request: web.Request) -> None:
    """Raise 403 for a request from another site (the module docstring's rule)."""
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


def session_cookie(request: web.Request, response: web.StreamResponse, value: str) -> None:
    """Set the session cookie on ``response`` with its flags (an empty value signs out)."""
    config = request.app[CONFIG]
    secure = request.secure or (config.public_url or "").lower().startswith("https:")
    response.headers["Cache-Control"] = "no-store"
    response.set_cookie(
        COOKIE,
        value,
        max_age=SESSION_SECONDS if value else 0,
        path="/staff",
        httponly=True,
        samesite="Strict",
        secure=secure,
    )


def _sign_in(request: web.Request, token: str, given: str) -> web.HTTPException:
    """The answer to ``GET /staff/...?token=T``: a session cookie and the address without it."""
    if not _token_ok(token, given):
        return _unauthorized("staff token not valid for this server", "invalid_token")
    query = [(k, v) for k, v in request.query.items() if k != "token"]
    target = str(request.rel_url.with_query(query))
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
    session_cookie(request, resp, new_session(token))
    return resp


def _session_actor(request: web.Request, token: str, value: str) -> tuple[Actor, Session]:
    s = read_session(token, value)
    if s is None:
        raise _unauthorized(f"staff session expired or not valid: {HOW}", "invalid_token")
    book = request.app.get(ACCOUNTS)
    if book is not None and book.is_revoked(s.nonce):
        raise _unauthorized(f"this staff session was signed out: {HOW}", "invalid_token")
    if s.name == TOKEN_ACTOR.name:
        if s.generation != _TOKEN_GENERATION:
            raise _unauthorized(f"staff session not valid: {HOW}", "invalid_token")
        return TOKEN_ACTOR, s
    if book is not None and not book.ready:
        raise web.HTTPServiceUnavailable(
            text="the staff accounts have not been read from the records store yet (is it up?); "
            "try again in a moment, or use the staff token",
            headers={"Retry-After": "2"},
        )
    account = book.get(s.name) if book is not None else None
    if account is None:
        raise _unauthorized(
            f"the account {s.name!r} of this session no longer exists: {HOW}", "invalid_token"
        )
    if account.generation != s.generation:
        raise _unauthorized(
            f"the password of {s.name!r} was changed since this session began: sign in again",
            "invalid_token",
        )
    return Actor(account.name, account.role), s


def _check_csrf(request: web.Request, token: str, s: Session) -> None:
    given = request.headers.get(CSRF_HEADER) or request.get(CSRF_FORM_KEY) or ""
    if not isinstance(given, str) or not hmac.compare_digest(
        given.encode(), csrf_token(token, s.value).encode()
    ):
        raise web.HTTPForbidden(
            text=f"CSRF token missing or wrong: a staff page sends its session's token in the "
            f"{CSRF_HEADER} header or a '{CSRF_FIELD}' form field (GET /staff/session gives it)"
        )


def _wants_page(request: web.Request) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("Accept", "")


def staff_actor(request: web.Request, roles: tuple[str, ...] = ALL_ROLES) -> Actor:
    """Who sends ``request``, if it may act with one of ``roles``; otherwise an HTTP refusal.

    Raises:
        web.HTTPForbidden: a cross-site request; a session's unsafe request without its CSRF
            token; an account whose role is not among ``roles`` (the text says which are).
        web.HTTPSeeOther: ``GET ...?token=T`` with the right token (the cookie is set and the
            browser sent to the same address without the token); a browser's page request with
            no credential (sent to ``/staff/signin``, back here after).
        web.HTTPUnauthorized: no credential, or not this server's; the text says how to send one.
    """
    refuse_cross_site(request)
    token = request.app[CONFIG].staff_token
    if request.method in ("GET", "HEAD") and "token" in request.query:
        raise _sign_in(request, token, request.query.get("token", ""))
    auth = request.headers.get("Authorization", "")
    cookie = request.cookies.get(COOKIE)
    if auth.startswith("Bearer "):
        if not _token_ok(token, auth[7:].strip()):
            raise _unauthorized("staff token not valid for this server", "invalid_token")
        actor = TOKEN_ACTOR
    elif cookie:
        actor, session = _session_actor(request, token, cookie)
        if request.method not in _SAFE:
            _check_csrf(request, token, session)
    elif "token" in request.query:
        raise _unauthorized(f"the token is not taken from the address of a staff action: {HOW}")
    elif _wants_page(request):
        raise web.HTTPSeeOther(
            location=f"/staff/signin?next={quote(str(request.rel_url), safe='')}"
        )
    else:
        raise _unauthorized(f"staff token required: {HOW}")
    if actor.role not in roles:
        raise web.HTTPForbidden(
            text=f"the account {actor.name!r} ({actor.role}) may not do this: it needs the role "
            f"{' or '.join(roles)}"
        )
    return actor


def require_staff(request: web.Request) -> None:
    """Refuse the request unless it comes from staff of any role (see :func:`staff_actor`)."""
    staff_actor(request)
