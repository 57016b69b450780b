"""Invite tokens: signed (HMAC-SHA256), expiring, per event; and who an invite lets in.

A token is ``v1.PAYLOAD.SIG``: PAYLOAD the base64url of ``{"e": event, "i": invite, "r": role,
"x": expiry}`` (JSON), SIG the base64url HMAC-SHA256 of ``v1.PAYLOAD`` under the server's secret.
The token carries no label and no name; the invite's record (label, single use, revoked) is kept
by the server, so an invite can be withdrawn after its link went out. :func:`admit` decides, pure,
whether a hello with a token may enter, and if not, which close code says why.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import asdict, dataclass

from server.protocol.codes import CloseCode

__all__ = ["Claims", "Invite", "sign", "verify", "admit", "EARLY_SECONDS"]

#: guests may come in this long before the start (hosts and staff at any time)
EARLY_SECONDS = 15 * 60.0
_PREFIX = "v1"


@dataclass(frozen=True, slots=True)
class Claims:
    """What a token says: the event, the invite, the role, and until when (epoch seconds)."""

    event: str
    invite: str
    role: str
    expires: float


@dataclass(frozen=True, slots=True)
class Invite:
    """An invite as the server keeps it."""

    id: str
    event: str
    role: str
    label: str
    expires: float
    single_use: bool = False
    revoked: float | None = None
    created: float = 0.0
    created_by: str = ""

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, body: str) -> str:
    return _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())


def sign(secret: bytes, claims: Claims) -> str:
    """The token for ``claims``."""
    payload = {"e": claims.event, "i": claims.invite, "r": claims.role, "x": int(claims.expires)}
    body = f"{_PREFIX}.{_b64(json.dumps(payload, separators=(',', ':')).encode())}"
    return f"{body}.{_mac(secret, body)}"


def verify(secret: bytes, token: str) -> Claims | None:
    """The claims of a token signed with ``secret``, or None (bad shape or signature).

    Expiry is not checked here (:func:`admit` does, to say "expired" rather than "invalid").
    """
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3 or parts[0] != _PREFIX:
        return None
    body = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(parts[2].encode(), _mac(secret, body).encode()):
        return None
    try:
        d = json.loads(_unb64(parts[1]))
        claims = Claims(str(d["e"]), str(d["i"]), str(d["r"]), float(d["x"]))
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
    return claims


def admit(
    claims: Claims | None,
    invite: Invite | None,
    *,
    wanted_event: str | None,
    event_start: float | None,
    event_end: float | None,
    event_cancelled: bool,
    now: float,
    used: bool,
    locked: bool,
    guests: int,
    capacity: int,
) -> CloseCode | None:
    """Whether a hello with this invite may enter: None, or the close code that says why not.

    Args:
        claims: the verified token (None: it did not verify).
        invite: the server's record of the invite (None: unknown).
        wanted_event: the event the link names (``opts.event``), if it names one.
        event_start, event_end: the event's times (None: no such event).
        used: a single-use invite was taken by someone else already.
        locked: the host closed the doors. guests, capacity: guests inside now, and the most.
    """
    if (
        claims is None
        or invite is None
        or invite.event != claims.event
        or invite.id != claims.invite
    ):
        return CloseCode.INVITE_INVALID
    if wanted_event is not None and wanted_event != claims.event:
        return CloseCode.INVITE_OTHER_EVENT
    if invite.revoked is not None:
        return CloseCode.INVITE_REVOKED
    if event_start is None or event_end is None or event_cancelled or now >= event_end:
        return CloseCode.EVENT_OVER  # said before "expired": links expire with their event
    if now >= min(claims.expires, invite.expires):
        return CloseCode.INVITE_EXPIRED
    guest = invite.role == "guest"
    if guest and now < event_start - EARLY_SECONDS:
        return CloseCode.EVENT_NOT_STARTED
    if invite.single_use and used:
        return CloseCode.INVITE_USED
    if guest and locked:
        return CloseCode.EVENT_LOCKED
    if guest and guests >= capacity:
        return CloseCode.EVENT_FULL
    return None
