"""The inline WebSocket path: frames a callback takes never reach ``receive()``, the others do, in
the order they were sent (server/ws_inline.py). Over a real loopback socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import WSMsgType, web

from server.ws_inline import INLINE, InlineWebSocketResponse
from tests.tools import until


def test_the_installed_aiohttp_takes_the_inline_path() -> None:
    # without it every input wakes its connection's task: correct, and much dearer at scale
    assert INLINE


@dataclass
class Server:
    url: str
    took: list[bytes]
    received: list[bytes]
    sockets: list[InlineWebSocketResponse]
    release: Callable[[], None]


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    """A /ws whose inline callback takes the frames starting with b"i": what it took and what
    ``receive()`` gave, in order; after a b"hold" the handler stops receiving until released."""
    took: list[bytes] = []
    received: list[bytes] = []
    sockets: list[InlineWebSocketResponse] = []
    gate = asyncio.Event()
    gate.set()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = InlineWebSocketResponse()
        sockets.append(ws)
        await ws.prepare(request)
        ws.set_inline(lambda data: data.startswith(b"i") and not took.append(data))
        while True:
            await gate.wait()
            msg = await ws.receive()
            if msg.type is not WSMsgType.BINARY:
                return ws
            received.append(msg.data)
            if msg.data == b"hold":
                gate.clear()

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield Server(f"http://127.0.0.1:{port}/ws", took, received, sockets, gate.set)
    await runner.cleanup()


async def test_taken_frames_skip_receive_and_the_rest_keep_their_order(server: Server) -> None:
    took, received = server.took, server.received
    async with aiohttp.ClientSession() as http, http.ws_connect(server.url) as ws:
        await ws.send_bytes(b"i1")
        await until(lambda: took == [b"i1"])
        await ws.send_bytes(b"chat")
        await until(lambda: received == [b"chat"])
        for data in (b"i2", b"i3"):
            await ws.send_bytes(data)
        await until(lambda: len(took) == 3)
        assert took == [b"i1", b"i2", b"i3"]
        assert received == [b"chat"]
        # while a message waits in the queue, later ones queue behind it, taken or not
        await ws.send_bytes(b"hold")
        await until(lambda: received[-1] == b"hold")
        for data in (b"chat2", b"i4"):
            await ws.send_bytes(data)
        queue = server.sockets[0].inline_queue
        assert queue is not None
        await until(lambda: len(queue._buffer) == 2)
        server.release()
        await until(lambda: received[-1:] == [b"i4"])
        assert received == [b"chat", b"hold", b"chat2", b"i4"]
        assert took == [b"i1", b"i2", b"i3"]
