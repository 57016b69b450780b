"""Dead peers are found by one server-wide sweep (server/liveness.py), on real sockets: a peer that
never answers is pinged, closed with SILENT and its TCP connection reset (the kernel's table says
so); a quiet peer that answers the pings stays; the server answers a client's Ping."""

from __future__ import annotations

import asyncio
import struct
import time

from server.keys import CONNECTIONS, METRICS
from server.protocol.codes import CLOSE_REASONS, CloseCode

from .client import WAIT, Client
from .conftest import StartServer
from .test_bounds import RawPeer, hello

PING_AFTER = 0.3
SILENT_LIMIT = 0.8


async def test_a_peer_that_never_answers_is_pinged_then_closed_as_silent(
    start_server: StartServer,
) -> None:
    """A watch-only viewer (no snapshots come its way, so nothing else would notice it) that sends
    nothing after its hello and never answers a Ping: the server pings it once it has been quiet
    for ``ping_after``, closes it with SILENT and a reason once it has been silent for
    ``silent_limit``, and its connection leaves the kernel's table; the close is counted once."""
    srv = await start_server(ping_after=PING_AFTER, silent_limit=SILENT_LIMIT, close_timeout=0.3)
    peer = RawPeer(srv.port)
    try:
        await peer.open(hello("watch"))
        opened = time.monotonic()
        await peer.until_gone(SILENT_LIMIT + 200 * WAIT)
        took = time.monotonic() - opened
        frames = await peer.read_to_end(20 * WAIT)
    finally:
        peer.close()
    opcodes = [op for op, _ in frames]
    assert 0x9 in opcodes, f"never pinged: {opcodes}"
    assert opcodes[-1] == 0x8, f"no Close frame last: {opcodes}"
    code, reason = struct.unpack("!H", frames[-1][1][:2])[0], frames[-1][1][2:].decode()
    assert code == CloseCode.SILENT
    assert reason == CLOSE_REASONS[CloseCode.SILENT]
    assert took >= SILENT_LIMIT, f"closed after {took:.2f} s, before the silent limit"
    assert srv.app[METRICS].closes[int(CloseCode.SILENT)] == 1
    assert len(srv.app[CONNECTIONS]) == 0


async def test_a_quiet_peer_that_answers_pings_stays_and_gets_pongs(
    start_server: StartServer,
) -> None:
    """A watch-only viewer that sends nothing but whose library answers the server's Pings (as a
    browser does) is still connected after several silent limits; its own Ping gets a Pong."""
    srv = await start_server(ping_after=PING_AFTER, silent_limit=SILENT_LIMIT)
    async with Client(srv.ws, mode="watch") as c:
        assert c.ws is not None
        end = time.monotonic() + 3 * SILENT_LIMIT
        while time.monotonic() < end:
            assert c.close_code is None, (c.close_code, c.close_reason)
            await asyncio.sleep(WAIT)
        pong = await c.ws.ping(b"are you there")
        await asyncio.wait_for(pong, 100 * WAIT)
        assert c.close_code is None
        assert len(srv.app[CONNECTIONS]) == 1
    assert srv.app[METRICS].closes[int(CloseCode.SILENT)] == 0
