"""Browser-facing HTTP: security headers on every response, the Origin rule, a per-address limit.

Every response gets a Content-Security-Policy, ``X-Content-Type-Options: nosniff``, framing
refused (``frame-ancestors 'none'`` and ``X-Frame-Options: DENY``), ``Referrer-Policy:
same-origin`` (nothing goes to LINE or any other site; ``no-referrer`` would make Chromium send
``Origin: null`` with this origin's own form posts, and the staff sign-in would be refused as
cross-site) and a Permissions-Policy that lets this origin use the microphone (voice) and nothing
else sensitive. The CSP allows scripts from this origin only, plus the inline scripts of the web
client's own HTML files (the hall page's import map) by their SHA-256, computed at start from the
files served, so editing a page never needs a hand-kept hash.

The Origin rule (``origin_allowed``), used by ``/ws``, the staff routes and the helper endpoints:

- no ``Origin`` header: not a browser page (a script, ``curl``, a bot): allowed;
- an origin named by ``--public-url`` or ``--allow-origin``: allowed;
- otherwise only a page served by this very server under a name that cannot be a DNS-rebinding
  pair: ``Origin`` equals ``scheme://Host`` of the request and the host is ``localhost`` or an IP
  literal (``127.0.0.1``, ``[::1]``, ``192.168.1.20``...). A DNS name is never trusted from the
  ``Host`` header alone, since an attacker's name can resolve to this server and then both headers
  carry it. Behind a DNS name, start the server with ``--public-url https://name``.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from server.config import CLIENT_DIR, Config
from server.keys import SECURITY

__all__ = [
    "RateLimiter",
    "WebSecurity",
    "allowed_origins",
    "content_security_policy",
    "inline_script_hashes",
    "normalize_origin",
    "origin_allowed",
    "setup",
]

_INLINE_SCRIPT = re.compile(
    r"<script(?![^>]*\ssrc\s*=)[^>]*>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL
)
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def inline_script_hashes(client_dir: Path = CLIENT_DIR) -> list[str]:
    """CSP sources (``'sha256-…'``) of every inline ``<script>`` in the client's HTML files."""
    found: set[str] = set()
    if client_dir.is_dir():
        for page in sorted(client_dir.rglob("*.html")):
            if "vendor" in page.relative_to(client_dir).parts:
                continue
            text = page.read_text(encoding="utf-8")
            for m in _INLINE_SCRIPT.finditer(text):
                digest = hashlib.sha256(m.group(1).encode("utf-8")).digest()
                found.add(f"'sha256-{base64.b64encode(digest).decode('ascii')}'")
    return sorted(found)


def content_security_policy(script_hashes: list[str]) -> str:
    """The policy of every page: this origin only, what the client needs and nothing more.

    Styles may be inline (the staff pages and minutes have ``<style>`` and ``style=""``; style
    injection cannot run code). Images and media may be ``data:``/``blob:`` (the kiosk QR code is a
    ``data:`` SVG, the minutes open as a ``blob:`` page); workers and worklets from this origin or
    ``blob:`` (voice capture). ``connect-src 'self'`` covers ``ws:``/``wss:`` to this host.
    """
    scripts = " ".join(["'self'", *script_hashes])
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src {scripts}",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:",
            "media-src 'self' blob:",
            "font-src 'self'",
            "connect-src 'self'",
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def normalize_origin(text: str) -> str | None:
    """``scheme://host[:port]`` in lower case without a default port, or None if not an origin."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def allowed_origins(config: Config) -> frozenset[str]:
    """The origins named by ``--public-url`` and ``--allow-origin``, normalised.

    Raises:
        ValueError: one of them is not an ``http(s)://host[:port]`` origin.
    """
    out: set[str] = set()
    named = [*([config.public_url] if config.public_url else []), *config.allowed_origins]
    for text in named:
        origin = normalize_origin(text)
        if origin is None or not origin.startswith("http"):
            raise ValueError(f"expected an origin like https://hall.example.jp, got {text!r}")
        out.add(origin)
    return frozenset(out)


def _local_name(host: str) -> bool:
    """A host name that no attacker's DNS can point here: ``localhost`` or an IP literal."""
    h = host.strip("[]").lower()
    if h == "localhost":
        return True
    try:
        ipaddress.ip_address(h)
    except ValueError:
        return False
    return True


def origin_allowed(request: web.Request, allowed: frozenset[str]) -> bool:
    """The module's rule: no Origin, a configured one, or this server under a local name."""
    raw = request.headers.get("Origin")
    if raw is None:
        return True
    origin = normalize_origin(raw)
    if origin is None:
        return False  # "null" (sandboxed frames, file: pages) and garbage
    if origin in allowed:
        return True
    host = request.headers.get("Host", "")
    own = normalize_origin(f"{origin.split('://', 1)[0]}://{host}") if host else None
    hostname = urlsplit(origin).hostname or ""
    return origin == own and _local_name(hostname)


@dataclass(slots=True)
class RateLimiter:
    """A token bucket per key (a client address): ``per_minute`` requests, as a burst or spread.

    Refused requests take no token, so a client that keeps asking is served again as soon as its
    bucket refills. The table is pruned of full buckets when it grows past ``max_keys``.
    """

    per_minute: float
    max_keys: int = 10_000
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> (tokens, at)

    def take(self, key: str, now: float | None = None) -> float:
        """Take one token for ``key``; 0.0 when allowed, else seconds until one is free."""
        now = time.monotonic() if now is None else now
        rate = self.per_minute / 60.0
        tokens, at = self.buckets.get(key, (self.per_minute, now))
        tokens = min(self.per_minute, tokens + (now - at) * rate)
        if tokens < 1.0:
            self.buckets[key] = (tokens, now)
            return (1.0 - tokens) / rate if rate > 0 else float("inf")
        self.buckets[key] = (tokens - 1.0, now)
        if len(self.buckets) > self.max_keys:
            self._prune(now, rate)
        return 0.0

    def _prune(self, now: float, rate: float) -> None:
        full = [
            k for k, (t, at) in self.buckets.items() if t + (now - at) * rate >= self.per_minute
        ]
        for k in full:
            del self.buckets[k]


@dataclass(slots=True)
class WebSecurity:
    """What the security layer computed at start: the CSP, the allowed origins, the helper limit."""

    csp: str
    origins: frozenset[str]
    helper_limit: RateLimiter


_STATIC_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "microphone=(self), camera=(), geolocation=(), payment=(), usb=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def setup(app: web.Application, config: Config) -> WebSecurity:
    """Compute the policy and register the header hook on ``app``.

    Raises:
        ValueError: ``--public-url`` or an ``--allow-origin`` is not an origin.
    """
    sec = WebSecurity(
        csp=content_security_policy(inline_script_hashes()),
        origins=allowed_origins(config),
        helper_limit=RateLimiter(float(config.helper_rate_per_minute)),
    )
    app[SECURITY] = sec
    app.on_response_prepare.append(_headers(sec))
    return sec


def _headers(sec: WebSecurity) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    async def add(request: web.Request, response: web.StreamResponse) -> None:
        h = response.headers
        h.setdefault("Content-Security-Policy", sec.csp)
        for name, value in _STATIC_HEADERS.items():
            h.setdefault(name, value)

    return add
