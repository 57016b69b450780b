"""A staff pass: how a signed-in staff page says who it is on the WebSocket. Pure.

The staff session cookie is ``Path=/staff`` (``server.staff``), so a browser does not send it on
the ``/ws`` upgrade. A staff page asks ``GET /staff/counters/pass`` (cookie or token) for a pass
valid :data:`PASS_SECONDS`, and puts it in its hello's ``opts.staff_pass``: ``name~expiry~sig``,
an HMAC-SHA256 under a key derived from the staff token (changing the token voids every pass).
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["PASS_SECONDS", "make_pass", "read_pass"]

PASS_SECONDS = 120


def _key(token: str) -> bytes:
    return hmac.new(token.encode(), b"emachi counter staff pass v1", hashlib.sha256).digest()


def make_pass(token: str, name: str, now: float) -> str:
    body = f"{name.replace('~', '-')}~{int(now) + PASS_SECONDS}"
    return f"{body}~{hmac.new(_key(token), body.encode(), hashlib.sha256).hexdigest()}"


def read_pass(token: str, value: object, now: float) -> str | None:
    """The account name a pass was made for, or None (forged, expired, not a pass)."""
    if not isinstance(value, str) or not token or len(value) > 256:
        return None
    parts = value.split("~")
    if len(parts) != 3 or not (parts[1].isascii() and parts[1].isdigit()):
        return None
    body = f"{parts[0]}~{parts[1]}"
    mac = hmac.new(_key(token), body.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(mac.encode(), parts[2].encode()) or int(parts[1]) < now:
        return None
    return parts[0]
