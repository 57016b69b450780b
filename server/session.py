"""One connected peer: its socket, its avatar, and what it has acknowledged; and the open
connections of the process, counted by address.

``send`` and ``push`` are synchronous: they append one whole WebSocket frame to the transport and
return. They never wait on the peer, so a loop over thousands of sessions cannot be slowed by one
slow reader (``websockets.broadcast`` does the same).

Every frame the server writes to a peer passes one output budget, whatever its kind (snapshots,
replies, chat, notices, briefing state, voice):

- past ``send_limit`` unsent bytes (the transport's write buffer) the peer is *behind*: snapshots
  skip (they are deltas against what it acknowledged, so skipping costs nothing but freshness),
  other frames are still written;
- a peer behind for longer than ``slow_limit`` seconds, or whose unsent bytes would pass
  ``budget``, is closed with TOO_SLOW.

A close is started once: the session remembers it, ``send`` and ``push`` become no-ops (RFC 6455
§5.5.1: nothing after a Close frame), the close is counted once, and the TCP connection is reset
``close_timeout`` seconds later if the peer has not taken the Close by then, whatever it keeps
sending and whether or not the transport is already "closing" (a graceful close waits behind the
unsent bytes for as long as the peer lives).

Liveness: the receive loop notes in ``last_heard`` (a plain float) when anything last came from the
peer; one server-wide sweep (``server/liveness.py``) pings the quiet ones (:meth:`Session.ping`)
and closes those silent past a bound, instead of a timer per connection rescheduled on every
inbound message.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import ipaddress
import logging
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from server.errors import FloodError
from server.protocol.codes import CLOSE_REASONS, CloseCode

if TYPE_CHECKING:
    from aiohttp import web

    from server.config import Config
    from server.instance import Instance

__all__ = [
    "Session",
    "SessionState",
    "Connections",
    "address_key",
    "ws_binary_header",
]

log = logging.getLogger("emachi.session")

_LINGER_RESET = struct.pack("ii", 1, 0)
_PING_FRAME = b"\x89\x00"  # RFC 6455 §5.5.2: final, opcode 0x9, unmasked, no payload


def ws_binary_header(n: int) -> bytes:
    """RFC 6455 header of an unmasked, final, binary frame carrying ``n`` bytes."""
    if n < _HEADERS_UP_TO:
        return _HEADERS[n]
    return _header(n)


def _header(n: int) -> bytes:
    if n < 126:
        return bytes((0x82, n))
    if n < 65536:
        return struct.pack("!BBH", 0x82, 126, n)
    return struct.pack("!BBQ", 0x82, 127, n)


# the headers of frames up to 4 KiB (every snapshot of a hall), made once: 4096 small bytes
_HEADERS_UP_TO = 4096
_HEADERS = [_header(n) for n in range(_HEADERS_UP_TO)]


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
    """A peer and its avatar. Lives on across a reconnect: the resume token finds it again.

    Args:
        config_limit: unsent bytes past which the peer is behind and snapshots skip.
        rate, burst: the inbound token bucket (messages per second, and the bucket's size).
        budget: unsent bytes past which the peer is closed with TOO_SLOW (any frame).
        slow_limit: seconds a peer may stay behind before it is closed with TOO_SLOW.
        close_timeout: seconds a closed peer has to take its Close before the TCP connection is
            reset.
        on_close: called with the code of each close this session starts (metrics), once per
            connection.
    """

    def __init__(
        self,
        config_limit: int,
        rate: float,
        burst: float,
        *,
        budget: int = 512 * 1024,
        slow_limit: float = 5.0,
        close_timeout: float = 0.5,
        on_close: Callable[[int], None] | None = None,
    ) -> None:
        self.state = SessionState.HANDSHAKE
        self.ws: web.WebSocketResponse | None = None
        self._transport: asyncio.Transport | None = None
        #: the current connection's client address as the per-address limit counts it
        #: (:func:`address_key`); "" before a socket is attached
        self.address = ""
        self.send_limit = config_limit
        self.budget = max(budget, config_limit)
        self.slow_limit = slow_limit
        self.close_timeout = close_timeout
        self.on_close = on_close
        #: a close was started on the current socket: nothing more is written to it
        self.closing = False
        self._close_task: asyncio.Task[bool] | None = None
        self.avatar_id: int = -1
        self.instance: Instance | None = None
        self.name = ""
        self.color = 0
        self.mode = "avatar"
        self.resume_token = ""
        self.opts: dict[str, Any] = {}
        # "staff" or "host" when a hello hook said so (never taken from what the client sent)
        self.role = ""
        # the private instance a hello hook chose for this session (an event's), "" for the public
        self.place_in = ""
        # an outbox record (its sequence number) that must be committed before WELCOME (attendance)
        self.commit_before_welcome = 0
        # snapshots: the newest the client has acknowledged (the views sent are kept by the instance)
        self.acked_tick = 0
        self.behind_since: float | None = None
        self.detached_at = 0.0
        # The inbound token bucket (``rate`` a second, ``burst`` at most), kept as one float: the
        # bucket is full at monotonic ``rate_debt_until`` and each message adds
        # ``rate_interval`` to it; a message finds at least one token as long as it is at most
        # ``rate_slack`` seconds ahead of now (the same decisions as a bucket of tokens, two
        # attribute reads and one write a message; the inline receive path does it in place).
        self.rate_interval = 1.0 / max(rate, 1e-9)
        self.rate_slack = (burst - 1.0) * self.rate_interval
        self.rate_debt_until = 0.0
        #: monotonic time anything (a message, a ping, a pong) last came from the peer; set by the
        #: receive loop, read by the liveness sweep
        self.last_heard = time.monotonic()
        self.chat_times: list[float] = []

    @classmethod
    def for_config(cls, config: Config, on_close: Callable[[int], None] | None = None) -> Session:
        """A session with the limits of ``config``."""
        return cls(
            config.send_buffer_limit,
            config.rate_per_second,
            config.rate_burst,
            budget=config.output_budget,
            slow_limit=config.slow_limit,
            close_timeout=config.close_timeout,
            on_close=on_close,
        )

    def to(self, new: SessionState) -> None:
        if (self.state, new) not in TRANSITIONS:
            raise RuntimeError(f"session {self.state} -> {new} is not a transition")
        self.state = new

    def attach(
        self, ws: web.WebSocketResponse, transport: asyncio.Transport | None, address: str = ""
    ) -> None:
        """Take a (new) socket from ``address`` (an :func:`address_key`): nothing of the
        previous one carries over."""
        self.ws = ws
        self._transport = transport
        self.address = address
        self.closing = False
        self._close_task = None
        self.behind_since = None
        self.acked_tick = 0
        self.last_heard = time.monotonic()

    def intent_stop(self) -> None:
        """Stop the avatar where it stands (its socket is gone)."""
        inst = self.instance
        if inst is not None and self.avatar_id >= 0:
            inst.crowd.set_intent(self.avatar_id, 0.0, 0.0, float(inst.crowd.yaw[self.avatar_id]))

    # -- inbound -------------------------------------------------------------------------------

    def take_token(self, now: float | None = None) -> None:
        """Charge one inbound message (``now``: its monotonic arrival, if the caller has it);
        raise FloodError past the rate."""
        if now is None:
            now = time.monotonic()
        debt = self.rate_debt_until - now
        if debt < 0.0:
            debt = 0.0
        if debt > self.rate_slack:
            raise FloodError()
        self.rate_debt_until = now + debt + self.rate_interval

    # -- outbound ------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """The socket is open and no close was started on it."""
        return self._writable() is not None

    def writable(self) -> asyncio.Transport | None:
        """The transport, unless a close was started, it is closing, or a close frame is out (ours
        or aiohttp's answer to the peer's: a browser takes a data frame after a close frame as a
        protocol error, "Data frame received after close")."""
        t = self._transport
        if self.closing or t is None or t.is_closing():
            return None
        ws = self.ws
        return None if ws is not None and ws.closed else t

    _writable = writable

    @property
    def unsent(self) -> int:
        """Bytes written to the transport that the kernel has not taken yet."""
        t = self._transport
        return t.get_write_buffer_size() if t is not None else 0

    def buffered(self) -> int:
        """Bytes written but not yet taken by the kernel (0 for a peer that keeps up)."""
        t = self._transport
        return t.get_write_buffer_size() if t is not None else 0

    def send(self, data: bytes) -> bool:
        """Write one message now (replies, chat, notices, briefing state) unless the peer is over
        its budget, which closes it with TOO_SLOW; returns whether it was written."""
        t = self._writable()
        if t is None:
            return False
        if not self._within_budget(t.get_write_buffer_size(), len(data), None):
            return False
        t.write(ws_binary_header(len(data)) + data)
        return True

    def ping(self) -> bool:
        """Write a WebSocket Ping (a peer that lives answers with a Pong, which the receive loop
        notes in ``last_heard``); returns whether it was written."""
        t = self._transport
        if self.closing or t is None or t.is_closing():
            return False
        t.write(_PING_FRAME)
        return True

    def pong(self, payload: bytes) -> bool:
        """Answer the peer's Ping with a Pong carrying its payload (at most 125 bytes: the
        WebSocket reader refuses a longer control frame); returns whether it was written."""
        t = self._transport
        if self.closing or t is None or t.is_closing():
            return False
        t.write(bytes((0x8A, len(payload))) + payload)
        return True

    def push(self, data: bytes, now: float) -> bool:
        """Write a snapshot unless the peer is behind (then it skips, or is closed with TOO_SLOW
        past the budget); returns whether it was written."""
        t = self._writable()
        if t is None:
            return False
        return self.push_to(t, data, now)

    def push_to(self, t: asyncio.Transport, data: bytes, now: float) -> bool:
        """:meth:`push` to the transport :meth:`writable` has just given (a tick's send loop looks
        at each viewer once, and nothing between the two can close it but this push)."""
        buffered = t.get_write_buffer_size()
        if buffered > self.send_limit:
            self._within_budget(buffered, len(data), now)  # behind: skip, or TOO_SLOW
            return False
        self.behind_since = None
        n = len(data)
        t.write((_HEADERS[n] if n < _HEADERS_UP_TO else _header(n)) + data)
        return True

    def _within_budget(self, buffered: int, n: int, now: float | None) -> bool:
        """Note whether the peer is behind; close it with TOO_SLOW when it is too far behind."""
        if buffered <= self.send_limit:
            self.behind_since = None
            return True
        if now is None:
            now = time.monotonic()
        if self.behind_since is None:
            self.behind_since = now
        if buffered + n > self.budget or now - self.behind_since > self.slow_limit:
            self.close(CloseCode.TOO_SLOW)
            return False
        return True

    def close(self, code: int, reason: str | None = None, timeout: float | None = None) -> None:
        """Start closing the socket with a code and a person-readable reason, without waiting.

        Only the first call per socket does anything. The TCP connection is reset ``timeout``
        seconds later (``close_timeout`` by default) unless the closing handshake ended by then.
        """
        ws, t = self.ws, self._transport
        if self.closing or ws is None:
            return
        self.closing = True
        self.behind_since = None
        loop = asyncio.get_running_loop()
        if t is not None:
            loop.call_later(self.close_timeout if timeout is None else timeout, _reset, t)
        if ws.closed:
            return  # aiohttp already closed it (the peer's Close, a failed heartbeat)
        if self.on_close is not None:
            self.on_close(code)
        if reason is None:
            reason = CLOSE_REASONS.get(CloseCode(code), "") if code >= 4000 else ""
        # drain=False: never wait for a stalled peer to take the bytes before its Close
        task = loop.create_task(ws.close(code=code, message=reason.encode(), drain=False))
        task.add_done_callback(_log_close_failure)
        self._close_task = task

    async def wait_closed(self) -> None:
        """Until the close this session started on its socket is over (at most about
        ``close_timeout``: the reset ends it). A handler that returned before its close task
        wrote the Close would have aiohttp close with 1000 instead."""
        task = self._close_task
        if task is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(task)

    def close_silent(self) -> None:
        """Close a peer that stopped answering with SILENT, its TCP connection ending in a reset
        however the close goes: the socket is armed to reset on close (SO_LINGER 0), so that a
        dead peer, which will never take our FIN, does not leave the kernel retrying it for
        minutes (FIN_WAIT1), nor a half-closed peer sit in FIN_WAIT2."""
        t = self._transport
        sock = t.get_extra_info("socket") if t is not None else None
        if sock is not None and sock.fileno() >= 0:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        self.close(CloseCode.SILENT)

    def reset(self) -> None:
        """Drop the TCP connection now (a drain whose time is up)."""
        self.closing = True
        if self._transport is not None:
            _reset(self._transport)


def _reset(t: asyncio.Transport) -> None:
    """Abort ``t`` with a TCP reset unless it is already gone. A plain close would leave the
    kernel holding the unsent bytes (FIN_WAIT1) for minutes behind a peer that does not read."""
    sock = t.get_extra_info("socket")
    if sock is None or sock.fileno() < 0:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    t.abort()


def _log_close_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("close failed: %r", task.exception())


def address_key(remote: str | None) -> str:
    """The address a connection is counted under: the IPv4 address, or the /64 of an IPv6 one
    (one household or office gets a /64; counting single IPv6 addresses would not limit it)."""
    if not remote:
        return ""
    try:
        ip = ipaddress.ip_address(remote)
    except ValueError:
        return remote  # a Unix socket path or the like: counted as it is
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class Connections:
    """The WebSockets open in this process, from the upgrade (before hello) to the end of their
    handler, counted by address (:func:`address_key`) for the per-address limit, and kept for
    the drain, which must reach the connections still in their hello handshake too.

    ``per_address`` 0 means no limit.
    """

    __slots__ = ("per_address", "counts", "_open")

    def __init__(self, per_address: int) -> None:
        self.per_address = per_address
        self.counts: Counter[str] = Counter()
        self._open: dict[object, Session] = {}

    def __len__(self) -> int:
        return len(self._open)

    def admit(self, address: str, conn: object, session: Session) -> bool:
        """Count a new connection from ``address``; False (and not counted) past the limit."""
        if self.per_address and self.counts[address] >= self.per_address:
            return False
        self.counts[address] += 1
        self._open[conn] = session
        return True

    def update(self, conn: object, session: Session) -> None:
        """The connection now serves ``session`` (a resume handed back an older one)."""
        if conn in self._open:
            self._open[conn] = session

    def release(self, address: str, conn: object) -> None:
        if self._open.pop(conn, None) is None:
            return
        self.counts[address] -= 1
        if self.counts[address] <= 0:
            del self.counts[address]

    def sessions(self) -> list[tuple[object, Session]]:
        """(connection, session) of every open connection."""
        return list(self._open.items())
