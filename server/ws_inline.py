"""A WebSocket response that hands the hot inbound frames to a callback where they are parsed.

Each client sends about ten INPUTs a second (each carrying an ack), so a thousand clients mean
ten thousand frames a second. Through ``ws.receive()`` every one of them costs a future, a
``call_soon`` and a wake-up of the connection's task, for a few microseconds of real work. Here
aiohttp's parser delivers each complete message to :class:`InlineQueue`, which first offers a
binary one to the response's ``inline`` callback (``server/app.py`` sets it for the receive loop:
INPUT and ACK are applied there and then, in the parser's ``data_received`` callback). A message
the callback declines (anything else, anything odd, and everything while messages are already
queued, so that the order of the frames is kept) is queued as aiohttp always does and reaches
``receive()``.

aiohttp builds its reader in the private ``WebSocketResponse._post_start``; this module builds the
same reader over its own queue. When the installed aiohttp's response lacks what it relies on,
:data:`INLINE` is False and the response is a plain ``WebSocketResponse`` (every frame goes through
``receive()``, as correct and slower; ``tests/unit/test_ws_inline.py`` fails on that aiohttp).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
from aiohttp.helpers import DEFAULT_CHUNK_SIZE

__all__ = ["INLINE", "InlineQueue", "InlineWebSocketResponse"]

log = logging.getLogger("emachi.ws")

_BINARY = WSMsgType.BINARY

INLINE = all(
    hasattr(web.WebSocketResponse, name)
    for name in ("_post_start", "_reset_heartbeat", "_on_data_received")
)


class InlineQueue(WebSocketDataQueue):
    """aiohttp's message queue, which offers each binary message to ``inline`` first."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: takes a binary message's payload; True if it dealt with it (then it is not queued)
        self.inline: Callable[[bytes], bool] | None = None

    def feed_data(self, data: Any, size: int) -> None:
        inline = self.inline
        if inline is not None and data[0] is _BINARY and not self._buffer and inline(data[1]):
            return
        super().feed_data(data, size)


class InlineWebSocketResponse(web.WebSocketResponse):
    """``web.WebSocketResponse`` whose reader delivers through an :class:`InlineQueue`."""

    inline_queue: InlineQueue | None = None

    def set_inline(self, inline: Callable[[bytes], bool] | None) -> bool:
        """Offer binary messages to ``inline`` from now on (None: stop); False if not supported."""
        q = self.inline_queue
        if q is None:
            return False
        q.inline = inline
        return True

    def _post_start(self, request: Any, protocol: Any, writer: Any) -> None:
        if not INLINE:
            super()._post_start(request, protocol, writer)
            return
        loop = self._loop
        assert loop is not None
        queue = InlineQueue(request._protocol, DEFAULT_CHUNK_SIZE, loop=loop)
        try:
            parser = WebSocketReader(
                queue,
                self._max_msg_size,
                compress=bool(self._compress),
                decode_text=self._decode_text,
            )
        except (TypeError, AttributeError):  # another aiohttp's reader: its own way, not inline
            super()._post_start(request, protocol, writer)
            return
        # as aiohttp 3.14's own _post_start, over the inline queue
        self._ws_protocol = protocol
        self._writer = writer
        self._reset_heartbeat()
        self._reader = queue
        self._parser = parser
        self.inline_queue = queue
        cb = None if self._heartbeat is None else self._on_data_received
        request.protocol.set_parser(parser, data_received_cb=cb)
        request.protocol.keep_alive(False)
