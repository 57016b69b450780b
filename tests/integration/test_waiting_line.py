"""A full hall: newcomers wait in line with their position, and are let in, in order, as places
free; a page closed cleanly frees its place in seconds, a dropped network keeps it."""

from __future__ import annotations

import asyncio
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from server.hall import Hall
from server.keys import HALL
from server.protocol.codes import PROTOCOL_VERSION
from server.protocol.messages import Hello, Notice, Welcome, decode
from server.session import SessionState
from tests.integration.client import WAIT, Client
from tests.integration.conftest import StartServer


async def _hello(url: str, name: str) -> ClientConnection:
    ws = await connect(url, max_size=2**20, compression=None)
    await ws.send(Hello(version=PROTOCOL_VERSION, name=name, resume=None, opts={}).encode())
    return ws


async def _next(ws: ClientConnection, timeout: float = 100 * WAIT) -> Any:
    """The next message that is a queue notice or a welcome (snapshots and the rest skipped)."""

    async def read() -> Any:
        while True:
            msg = decode(await ws.recv())  # type: ignore[arg-type]
            if isinstance(msg, Welcome) or (isinstance(msg, Notice) and msg.kind == "queue"):
                return msg

    return await asyncio.wait_for(read(), timeout)


async def test_a_full_hall_queues_in_order_and_lets_in_when_a_tab_closes(
    start_server: StartServer,
) -> None:
    srv = await start_server(capacity=1, max_instances=1, tick_rate=5, snapshot_rate=5)
    hall: Hall = srv.app[HALL]
    first = Client(srv.ws, "ひとりめ")
    await first.connect()
    b = await _hello(srv.ws, "ふたりめ")
    c = await _hello(srv.ws, "さんにんめ")
    nb = await _next(b)
    assert isinstance(nb, Notice) and nb.data["position"] == 1 and nb.data["eta_s"] is None
    nc = await _next(c)
    assert nc.data["position"] == 2 and nc.data["ahead"] == 1
    # the first visitor closes the tab: a clean close frees the place within seconds, not 30 s
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await first.close()
    wb = await _next(b)
    assert isinstance(wb, Welcome), wb
    assert loop.time() - t0 < 5.0
    # the one behind moves up, now with an estimate drawn from the departure just seen
    nc = await _next(c)
    assert nc.data["position"] == 1 and nc.data["eta_s"] is not None and nc.data["eta_s"] > 0
    # a visitor who gives up leaves the line at once
    await c.close()
    await first.until(lambda: len(hall.waiting) == 0)
    # a newcomer does not jump anyone: nobody waits, but the one place is taken
    d = await _hello(srv.ws, "よにんめ")
    assert (await _next(d)).data["position"] == 1
    await d.close()
    await b.close()


async def test_a_dropped_connection_keeps_its_place_for_the_resume_window(
    start_server: StartServer,
) -> None:
    srv = await start_server(capacity=1, max_instances=1, tick_rate=5, snapshot_rate=5)
    hall: Hall = srv.app[HALL]
    first = Client(srv.ws, "ひとりめ")
    await first.connect()
    assert first.ws is not None
    first.ws.transport.abort()  # the network goes: no close frame
    await first.until(lambda: hall.avatars()[0].state is SessionState.DETACHED)
    waiting = await _hello(srv.ws, "まつひと")
    assert (await _next(waiting)).data["position"] == 1
    await asyncio.sleep(20 * WAIT)  # well past the clean-close grace: the place is still kept
    assert len(hall.avatars()) == 1 and len(hall.waiting) == 1
    # and the dropped visitor comes back to the same avatar, ahead of the line
    again = Client(srv.ws, "ひとりめ", resume=first.resume)
    assert (await again.connect()).avatar_id == first.avatar_id
    await again.close()
    await waiting.close()
