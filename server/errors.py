"""The one exception hierarchy of emachi.

::

    EmachiError
    ├── PeerError            a fault of the peer: closes that one connection with a code and a reason
    │   ├── FloodError       too many messages
    │   ├── HandshakeError   first message was not a hello
    │   └── AuthError        token missing, invalid or expired
    ├── RequestError         a bad request that keeps the connection: the peer gets ERROR
    └── LoadError            a bad world, script or catalog: names the file, the place, what was expected

``server.protocol.messages.ProtocolError`` (a frame that does not decode) is a peer fault too and is
handled like a :class:`PeerError`. Anything else that escapes a handler is a bug of ours: it is logged
with its traceback, the peer is closed with 1011, and no other peer notices.
"""

from __future__ import annotations

from server.protocol.codes import CLOSE_REASONS, CloseCode

__all__ = [
    "EmachiError",
    "PeerError",
    "FloodError",
    "HandshakeError",
    "AuthError",
    "RequestError",
    "LoadError",
]


class EmachiError(Exception):
    """Base of every error emachi raises on purpose."""


class PeerError(EmachiError):
    """The peer broke the protocol; close its connection with ``code`` and ``reason``."""

    def __init__(self, code: CloseCode, reason: str | None = None) -> None:
        self.code = code
        self.reason = reason or CLOSE_REASONS[code]
        super().__init__(f"{int(code)} {self.reason}")


class FloodError(PeerError):
    def __init__(self) -> None:
        super().__init__(CloseCode.FLOOD)


class HandshakeError(PeerError):
    def __init__(self, reason: str | None = None) -> None:
        super().__init__(CloseCode.HANDSHAKE, reason)


class AuthError(PeerError):
    def __init__(self, reason: str | None = None) -> None:
        super().__init__(CloseCode.UNAUTHORIZED, reason)


class RequestError(EmachiError):
    """A request that cannot be served; the peer gets an ERROR message and stays connected."""

    def __init__(self, code: str, reason: str) -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"{code}: {reason}")


class LoadError(EmachiError):
    """A file that does not load; ``problems`` are one-line ``FILE:PLACE: expected ...`` strings."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))
