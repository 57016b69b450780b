"""Routing of inbound messages to their handlers, by message type."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from server.errors import PeerError
from server.protocol.codes import CloseCode, MsgType

if TYPE_CHECKING:
    from server.session import Session

__all__ = ["Dispatcher", "Handler", "SyncHandler"]

Handler = Callable[["Session", Any], Awaitable[None]]
#: a handler that does its work at once (no await): the receive path calls it where the frame is
#: parsed, with no task or coroutine per message (voice: 50 frames a second per talker)
SyncHandler = Callable[["Session", Any], None]


class Dispatcher:
    """One handler per client → server message type; features register theirs in ``setup(app)``."""

    def __init__(self) -> None:
        self._handlers: dict[MsgType, Handler] = {}
        #: types whose handler limits their rate itself (voice: 50 a second by design), so the
        #: connection's token bucket does not charge them
        self.own_rate: set[MsgType] = set()
        #: the synchronous handlers, by type code (an int: what the inline path reads off a frame)
        self.sync: dict[int, SyncHandler] = {}

    def register(self, kind: MsgType, handler: Handler, *, own_rate: bool = False) -> None:
        if kind in self._handlers or kind in self.sync:
            raise ValueError(f"a handler for {kind.name} is already registered")
        self._handlers[kind] = handler
        if own_rate:
            self.own_rate.add(kind)

    def register_sync(self, kind: MsgType, handler: SyncHandler, *, own_rate: bool = False) -> None:
        """A handler that never awaits: called where the frame is parsed (in aiohttp's
        ``data_received``, :func:`server.app._inline`), in the order of the connection's frames.
        It may raise ``PeerError`` (the connection is closed with its code and reason) or
        ``RequestError`` (answered with an ERROR), as an async handler may."""
        if kind in self._handlers or kind in self.sync:
            raise ValueError(f"a handler for {kind.name} is already registered")
        self.sync[int(kind)] = handler
        if own_rate:
            self.own_rate.add(kind)

    async def dispatch(self, session: Session, msg: Any) -> None:
        sync = self.sync.get(msg.TYPE)
        if sync is not None:
            sync(session, msg)
            return
        handler = self._handlers.get(msg.TYPE)
        if handler is None:
            raise PeerError(
                CloseCode.UNKNOWN_TYPE, f"{msg.TYPE.name} is not accepted from a client"
            )
        await handler(session, msg)
