"""The procedure service's completion webhook: its signature and its replay window. Pure.

Header ``X-Emachi-Signature: t=UNIX,v1=HEX`` with ``HEX = HMAC-SHA256(secret, f"{t}.{body}")``
(the body as sent, bytes). A signature more than :data:`WINDOW` seconds from now either way is
refused as a replay, whatever its HMAC; a bad HMAC is refused as forged. Idempotency (the same
ref counted once) is :class:`server.counters.refs.Refs`'s.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

__all__ = ["WINDOW", "HEADER", "WebhookRefused", "sign", "verify", "parse_body"]

WINDOW = 300.0
HEADER = "X-Emachi-Signature"
MAX_BODY = 2048


class WebhookRefused(Exception):  # noqa: N818 - a refusal
    """The call is refused: HTTP ``status``, a ``code`` (also the metric's label) and why."""

    def __init__(self, status: int, code: str, reason: str) -> None:
        super().__init__(f"{status} {code}: {reason}")
        self.status = status
        self.code = code
        self.reason = reason


def _mac(secret: bytes, t: int, body: bytes) -> str:
    return hmac.new(secret, str(t).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(secret: bytes, t: int, body: bytes) -> str:
    """The header value for ``body`` signed at ``t`` (what the procedure service sends)."""
    return f"t={t},v1={_mac(secret, t, body)}"


def verify(secret: bytes, header: str | None, body: bytes, now: float) -> None:
    """Check a call's signature.

    Raises:
        WebhookRefused: 401 ``unsigned`` (no or unreadable header), 401 ``replayed`` (outside
            the window), 401 ``forged`` (the HMAC does not match).
    """
    if not header:
        raise WebhookRefused(401, "unsigned", f"the {HEADER} header is missing")
    parts = dict(p.strip().partition("=")[::2] for p in header.split(","))
    t_s, given = parts.get("t", ""), parts.get("v1", "")
    if not (t_s.isascii() and t_s.isdigit()) or len(t_s) > 12 or not given:
        raise WebhookRefused(401, "unsigned", f"expected {HEADER}: t=UNIX,v1=HEX")
    t = int(t_s)
    if abs(now - t) > WINDOW:
        raise WebhookRefused(
            401, "replayed", f"signed at {t}, more than {WINDOW:g} s from now: sign it again"
        )
    if not hmac.compare_digest(given.encode(), _mac(secret, t, body).encode()):
        raise WebhookRefused(401, "forged", "the signature does not match the body")


def parse_body(body: bytes) -> tuple[str, float]:
    """``{"ref": "...", "completed_at": unix seconds}`` → (ref, completed_at).

    Raises:
        WebhookRefused: 400 ``bad_body`` with what was expected.
    """
    if len(body) > MAX_BODY:
        raise WebhookRefused(413, "bad_body", f"a body of at most {MAX_BODY} bytes")
    try:
        data: Any = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        data = None
    if not isinstance(data, dict):
        data = {}
    ref: Any = data.get("ref")
    at: Any = data.get("completed_at")
    if not isinstance(ref, str) or not 8 <= len(ref) <= 64 or not ref.isascii():
        raise WebhookRefused(400, "bad_body", 'expected {"ref": "<the emachi_ref>", ...}')
    if type(at) not in (int, float) or not 0 <= at < 1e11:
        raise WebhookRefused(400, "bad_body", 'expected "completed_at": unix seconds')
    return ref, float(at)
