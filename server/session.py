"""One connected peer: its socket, its avatar, and what it has acknowledged.

``send`` and ``push`` are synchronous: they append one whole WebSocket frame to the transport and
return. They never wait on the peer, so a loop over thousands of sessions cannot be slowed by one
slow reader (``websockets.broadcast`` does the same). A peer whose transport buffer is over the limit
skips frames; snapshots are deltas against what it acknowledged, so skipping costs nothing but
freshness. One that stays behind past ``slow_limit`` is closed with TOO_SLOW.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import struct
import time
from typing import TYPE_CHECKING, Any

from server.errors import FloodError
from server.protocol.codes import CLOSE_REASONS, CloseCode

if TYPE_CHECKING:
    from aiohttp import web

    from server.instance import Instance

__all__ = ["Session", "SessionState", "ws_binary_header"]

log = logging.getLogger("emachi.session")


def ws_binary_header(n: int) -> bytes:
    """RFC 6455 header of an unmasked, final, binary frame carrying ``n`` bytes."""
    if n < 126:
        return bytes((0x82, n))
    if n < 65536:
        return struct.pack("!BBH", 0x82, 126, n)
    return struct.pack("!BBQ", 0x82, 127, n)


class SessionState(enum.Enum):
    HANDSHAKE = "handshake"  # socket open, waiting for hello
    ACTIVE = "active"  # has an avatar (or is a watch-only viewer)
    DETACHED = "detached"  # socket gone, avatar kept for the resume window
    CLOSED = "closed"


# (from, to) pairs that may happen; anything else is a bug of ours.
TRANSITIONS: frozenset[tuple[SessionState, SessionState]] = frozenset(
    {
        (SessionState.HANDSHAKE, SessionState.ACTIVE),
        (SessionState.HANDSHAKE, SessionState.CLOSED),
        (SessionState.ACTIVE, SessionState.DETACHED),
        (SessionState.ACTIVE, SessionState.CLOSED),
        (SessionState.DETACHED, SessionState.ACTIVE),
        (SessionState.DETACHED, SessionState.CLOSED),
    }
)


class Session:
    """A peer and its avatar. Lives on across a reconnect: the resume token finds it again."""

    def __init__(self, config_limit: int, rate: float, burst: float) -> None:
        self.state = SessionState.HANDSHAKE
        self.ws: web.WebSocketResponse | None = None
        self._transport: asyncio.Transport | None = None
        self.send_limit = config_limit
        self.avatar_id: int = -1
        self.instance: Instance | None = None
        self.name = ""
        self.color = 0
        self.mode = "avatar"
        self.resume_token = ""
        self.opts: dict[str, Any] = {}
        # "staff" or "host" when a hello hook said so (never taken from what the client sent)
        self.role = ""
        # snapshots: the newest the client has acknowledged (the views sent are kept by the instance)
        self.acked_tick = 0
        self.behind_since: float | None = None
        self.detached_at = 0.0
        # token bucket
        self._rate = rate
        self._burst = burst
        self._tokens = burst
        self._last = time.monotonic()
        self.chat_times: list[float] = []

    def to(self, new: SessionState) -> None:
        if (self.state, new) not in TRANSITIONS:
            raise RuntimeError(f"session {self.state} -> {new} is not a transition")
        self.state = new

    def attach(self, ws: web.WebSocketResponse, transport: asyncio.Transport | None) -> None:
        self.ws = ws
        self._transport = transport
        self.behind_since = None
        self.acked_tick = 0

    def intent_stop(self) -> None:
        """Stop the avatar where it stands (its socket is gone)."""
        inst = self.instance
        if inst is not None and self.avatar_id >= 0:
            inst.crowd.set_intent(self.avatar_id, 0.0, 0.0, float(inst.crowd.yaw[self.avatar_id]))

    # -- inbound -------------------------------------------------------------------------------

    def take_token(self) -> None:
        """Charge one inbound message; raise FloodError past the rate."""
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1.0:
            raise FloodError()
        self._tokens -= 1.0

    # -- outbound ------------------------------------------------------------------------------

    def _writable(self) -> asyncio.Transport | None:
        """The transport, unless it is closing or our close frame is out (a browser takes a data
        frame after a close frame as a protocol error, "Data frame received after close")."""
        t = self._transport
        if t is None or t.is_closing():
            return None
        ws = self.ws
        return None if ws is not None and ws.closed else t

    @property
    def connected(self) -> bool:
        return self._writable() is not None

    def buffered(self) -> int:
        """Bytes written but not yet taken by the kernel (0 for a peer that keeps up)."""
        t = self._transport
        return t.get_write_buffer_size() if t is not None else 0

    def send(self, data: bytes) -> bool:
        """Write one message now, whatever the buffer holds (replies, chat, notices)."""
        t = self._writable()
        if t is None:
            return False
        t.write(ws_binary_header(len(data)) + data)
        return True

    def push(self, data: bytes, now: float) -> bool:
        """Write a snapshot unless the peer is behind; returns whether it was written."""
        t = self._writable()
        if t is None:
            return False
        if t.get_write_buffer_size() > self.send_limit:
            if self.behind_since is None:
                self.behind_since = now
            return False
        self.behind_since = None
        t.write(ws_binary_header(len(data)) + data)
        return True

    def close(self, code: int, reason: str | None = None) -> None:
        """Close the socket with a code and a person-readable reason, without waiting."""
        ws = self.ws
        if ws is None or ws.closed:
            return
        if reason is None:
            reason = CLOSE_REASONS.get(CloseCode(code), "") if code >= 4000 else ""
        task = asyncio.get_running_loop().create_task(ws.close(code=code, message=reason.encode()))
        task.add_done_callback(_log_close_failure)

    def abort_later(self, delay: float = 1.0) -> None:
        """Drop the TCP connection if a stalled peer has not taken the close frame by then."""
        t = self._transport
        if t is not None:
            asyncio.get_running_loop().call_later(delay, _abort_if_open, t)


def _abort_if_open(t: asyncio.Transport) -> None:
    if not t.is_closing():
        t.abort()


def _log_close_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("close failed: %r", task.exception())
