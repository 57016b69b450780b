"""Routing of inbound messages to their handlers, by message type."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from server.errors import PeerError
from server.protocol.codes import CloseCode, MsgType

if TYPE_CHECKING:
    from server.session import Session

__all__ = ["Dispatcher", "Handler"]

Handler = Callable[["Session", Any], Awaitable[None]]


class Dispatcher:
    """One handler per client → server message type; features register theirs in ``setup(app)``."""

    def __init__(self) -> None:
        self._handlers: dict[MsgType, Handler] = {}
        #: types whose handler limits their rate itself (voice: 50 a second by design), so the
        #: connection's token bucket does not charge them
        self.own_rate: set[MsgType] = set()

    def register(self, kind: MsgType, handler: Handler, *, own_rate: bool = False) -> None:
        if kind in self._handlers:
            raise ValueError(f"a handler for {kind.name} is already registered")
        self._handlers[kind] = handler
        if own_rate:
            self.own_rate.add(kind)

    async def dispatch(self, session: Session, msg: Any) -> None:
        handler = self._handlers.get(msg.TYPE)
        if handler is None:
            raise PeerError(
                CloseCode.UNKNOWN_TYPE, f"{msg.TYPE.name} is not accepted from a client"
            )
        await handler(session, msg)
