"""The real-time loop as clients see it: a real server on a free port, real WebSocket clients."""

from __future__ import annotations

import asyncio
import math

from server.protocol.codes import CloseCode
from server.protocol.messages import Chat, ChatMsg, Error, Ping, Pong
from tests.integration.client import WAIT, Client, raw_msgpack
from tests.integration.conftest import RunningServer, StartServer


def _dist(a: tuple[int, float, float] | None, b: tuple[int, float, float] | None) -> float:
    assert a is not None and b is not None
    return math.hypot(a[1] - b[1], a[2] - b[2])


async def test_two_clients_see_each_other_move(server: RunningServer) -> None:
    async with Client(server.ws, "さくら") as a, Client(server.ws, "Ken") as b:
        await a.until(lambda: b.avatar_id in a.view)
        await b.until(lambda: a.avatar_id in b.view)
        assert a.names[b.avatar_id] == "Ken"
        assert b.names[a.avatar_id] == "さくら"
        start = b.position(a.avatar_id)
        await a.move(1.0, 0.0)
        await b.until(lambda: _dist(b.position(a.avatar_id), start) > 1.0)
        await a.move(0.0, 0.0)
        # what b sees of a matches what a is told about itself, to the centimetre, once a stops
        await asyncio.sleep(10 * WAIT)
        assert b.position(a.avatar_id) == a.position()


async def test_protocol_version_it_does_not_speak_is_refused(server: RunningServer) -> None:
    from websockets.asyncio.client import connect

    async with connect(server.ws) as ws:
        await ws.send(raw_msgpack(1, 99, "old client", None, {}))
        try:
            await asyncio.wait_for(ws.recv(), 40 * WAIT)
        except Exception:
            pass
        assert ws.close_code == CloseCode.UNSUPPORTED_VERSION
        assert "not supported" in (ws.close_reason or "")


async def test_bad_frames_close_only_that_client(server: RunningServer) -> None:
    """Not MessagePack, over 64 KiB, an unknown type, a flood: each closes its sender only."""
    cases = [
        (b"\xc1\xc1 not msgpack", CloseCode.BAD_FRAME),
        (b"\x00" * (64 * 1024 + 1), CloseCode.FRAME_TOO_BIG),
        (raw_msgpack(31, "x"), CloseCode.UNKNOWN_TYPE),
    ]
    async with Client(server.ws, "bystander") as bystander:
        for payload, code in cases:
            async with Client(server.ws, "mallory") as bad:
                await bad.send_raw(payload)
                got, reason = await bad.closed()
                assert got == code, (payload[:10], got, reason)
                assert reason  # a reason a person can read
        async with Client(server.ws, "flooder") as flooder:
            for _ in range(400):
                await flooder.send(Ping(client_time=1.0))
            got, reason = await flooder.closed()
            assert got == CloseCode.FLOOD, (got, reason)
        # the bystander is still connected and still receiving snapshots
        before = bystander.snapshots
        await bystander.until(lambda: bystander.snapshots > before + 5)
        assert bystander.close_code is None
        await bystander.send(Ping(client_time=123.0))
        await bystander.until(lambda: bystander.messages(Pong))
        assert bystander.messages(Pong)[0].client_time == 123.0


async def test_client_501_lands_in_instance_2(server: RunningServer) -> None:
    clients: list[Client] = []
    try:
        for i in range(500):
            c = Client(server.ws, f"p{i}")
            await c.connect()
            clients.append(c)
        instances = {c.welcome.instance for c in clients if c.welcome}
        assert len(instances) == 1
        last = Client(server.ws, "p500")
        await last.connect()
        clients.append(last)
        assert last.welcome is not None
        assert last.welcome.instance not in instances
        assert last.welcome.instance.endswith("#2")
    finally:
        await asyncio.gather(*(c.close() for c in clients))


async def test_resume_after_cut_connection_gets_same_avatar(server: RunningServer) -> None:
    async with Client(server.ws, "watcher") as watcher, Client(server.ws, "ゆうた") as a:
        await watcher.until(lambda: a.avatar_id in watcher.view)
        token, avatar = a.resume, a.avatar_id
        assert a.ws is not None
        a.ws.transport.abort()  # the network drops: no close handshake
        await asyncio.sleep(4 * WAIT)
        async with Client(server.ws, "ゆうた", resume=token) as again:
            assert again.avatar_id == avatar
            assert again.welcome is not None and a.welcome is not None
            assert again.welcome.instance == a.welcome.instance
            await again.until(lambda: avatar in again.view)
            await asyncio.sleep(10 * WAIT)
            # no duplicate: the watcher sees exactly one ゆうた
            named = [i for i in watcher.view if watcher.names.get(i) == "ゆうた"]
            assert named == [avatar]


async def test_chat_reaches_the_instance_and_is_rate_limited(server: RunningServer) -> None:
    async with Client(server.ws, "a") as a, Client(server.ws, "b") as b:
        await a.send(Chat(scope=0, text="こんにちは"))
        await b.until(lambda: b.messages(ChatMsg))
        msg = b.messages(ChatMsg)[0]
        assert (msg.name, msg.text, msg.from_id) == ("a", "こんにちは", a.avatar_id)
        for i in range(10):
            await a.send(Chat(scope=0, text=f"spam {i}"))
        await a.until(lambda: a.messages(Error))
        assert a.messages(Error)[0].code == "chat_rate"
        assert a.close_code is None


async def test_full_snapshot_then_deltas_are_small(start_server: StartServer) -> None:
    srv = await start_server()
    async with Client(srv.ws, "a") as a, Client(srv.ws, "b") as b:
        await a.move(0.0, 1.0)
        await b.until(lambda: b.snapshots > 40)
        snap = b.last_snapshot
        assert snap is not None and snap.base_tick > 0  # deltas against what b acknowledged
        # a walks straight: one 4-byte move record, nothing else
        assert len(snap.move) + len(snap.turn_move) in (4, 5, 0)
        assert snap.full == b""
