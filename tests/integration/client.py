"""The one WebSocket client of the integration and cluster tests: hello, snapshots applied and
acknowledged as the browser does, inputs sent, every other message kept in order."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
from typing import Any

import msgpack
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from server.protocol.codes import PROTOCOL_VERSION
from server.protocol.messages import (
    Ack,
    ChatMsg,
    Hello,
    Input,
    Message,
    Notice,
    Ping,
    Pong,
    Redirect,
    Snapshot,
    Welcome,
    decode,
)
from server.protocol.snapshot import SnapshotState
from tests.tools import WAIT, until

#: how often the client acknowledges the newest snapshot (clients/web/App.js: ACK_EVERY_MS = 100)
ACK_EVERY = 2 * WAIT

View = dict[int, tuple[int, int, int, int]]

_barrier_ids = itertools.count(1)


class Client:
    """Connects, says hello, keeps the world state from snapshots, acknowledges them.

    What it saw is kept for the test: ``view`` (avatar id → floor, yaw, x cm, z cm), ``names``,
    ``received`` ((tick, base_tick) of every snapshot), ``acked`` (every tick it acknowledged, by
    an ACK or an input),
    ``others`` (every other message, in order) and, with ``keep_views=True``, ``views_at`` (the
    view it decoded at each tick). Keyword arguments other than ``keep_views`` go into the hello's
    ``opts``.
    """

    def __init__(
        self,
        url: str,
        name: str = "テスト",
        resume: str | None = None,
        *,
        keep_views: bool = False,
        **opts: Any,
    ) -> None:
        self.url = url
        self.name = name
        self.resume = resume
        self.opts = opts
        self.keep_views = keep_views
        self.ws: ClientConnection | None = None
        self.welcome: Welcome | None = None
        self.state = SnapshotState()
        self.view: View = {}
        self.views_at: dict[int, View] = {}
        self.names: dict[int, str] = {}
        self.snapshots = 0
        self.last_snapshot: Snapshot | None = None
        self.received: list[tuple[int, int]] = []
        self.acked: list[int] = []
        self.others: list[Message] = []
        self.seq = 0
        self.close_code: int | None = None
        self.close_reason = ""
        self._task: asyncio.Task[None] | None = None
        self._acked_at = -math.inf
        self.error: Exception | None = None
        #: the REDIRECTs followed by the last connect, and the address that welcomed it
        self.redirects: list[Redirect] = []
        self.served = url
        #: the address of a REDIRECT that did not answer, said with the next hello only
        self.gone = ""

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> Welcome:
        """Say hello at ``url``; a REDIRECT (a cluster) is followed as the web client does: hello
        again at the owner's address with the seat reservation (``served`` says where)."""
        url, opts = self.url, self.opts
        if self.gone:  # as the web client: the owner a redirect named did not answer last time
            opts, self.gone = {**opts, "gone": self.gone}, ""
        self.redirects = []
        for _ in range(4):
            try:
                self.ws = await connect(url, max_size=2**20, compression=None)
            except OSError:
                if self.redirects:
                    self.gone = url
                raise
            await self.ws.send(
                Hello(
                    version=PROTOCOL_VERSION, name=self.name, resume=self.resume, opts=opts
                ).encode()
            )
            first = decode(await asyncio.wait_for(self.ws.recv(), 200 * WAIT))
            if not isinstance(first, Redirect):
                break
            self.redirects.append(first)
            with contextlib.suppress(ConnectionClosed):
                await self.ws.wait_closed()
            url, opts = first.url, {**self.opts, "seat": first.seat}
        assert isinstance(first, Welcome), first
        self.served = url
        self.welcome = first
        self.resume = first.resume
        self.state = SnapshotState()
        self._acked_at = -math.inf
        self._task = asyncio.create_task(self._reader())
        return first

    @property
    def avatar_id(self) -> int:
        assert self.welcome is not None
        return self.welcome.avatar_id

    async def _reader(self) -> None:
        assert self.ws is not None
        loop = asyncio.get_running_loop()
        try:
            async for data in self.ws:
                msg = decode(data)  # type: ignore[arg-type]
                if isinstance(msg, Snapshot):
                    self.view = self.state.apply(msg)
                    for row in msg.info or []:
                        self.names[int(row[0])] = row[1]
                    self.snapshots += 1
                    self.last_snapshot = msg
                    self.received.append((msg.tick, msg.base_tick))
                    if self.keep_views:
                        self.views_at[msg.tick] = dict(self.view)
                    now = loop.time()
                    if (
                        now - self._acked_at >= ACK_EVERY
                    ):  # as the browser: the newest, now and then
                        self._acked_at = now
                        self.acked.append(msg.tick)
                        # the server's Close may already be in: keep reading what came before it
                        with contextlib.suppress(ConnectionClosed):
                            await self.ws.send(Ack(tick=msg.tick).encode())
                else:
                    self.others.append(msg)
        except Exception as exc:  # a test that expects a message will fail on it; keep why
            self.error = exc
        finally:
            if self.ws.close_code is not None:
                self.close_code = self.ws.close_code
                self.close_reason = self.ws.close_reason or ""

    async def send(self, msg: Message) -> None:
        assert self.ws is not None
        await self.ws.send(msg.encode())

    async def send_raw(self, data: bytes) -> None:
        assert self.ws is not None
        await self.ws.send(data)

    async def move(self, mx: float, mz: float, yaw: float | None = None) -> None:
        self.seq += 1
        if yaw is None:
            yaw = math.atan2(mx, mz) if (mx or mz) else 0.0
        ack = self.last_snapshot.tick if self.last_snapshot else 0
        if ack:
            self.acked.append(ack)  # an input acknowledges too
        await self.send(Input(seq=self.seq, ack_tick=ack, mx=mx, mz=mz, yaw=yaw))

    def position(self, avatar_id: int | None = None) -> tuple[int, float, float] | None:
        """(floor index, x m, z m) of an avatar in this client's view."""
        rec = self.view.get(self.avatar_id if avatar_id is None else avatar_id)
        if rec is None:
            return None
        return rec[0], rec[2] / 100.0, rec[3] / 100.0

    async def until(self, predicate: Any, timeout: float = 100 * WAIT) -> Any:
        """Wait until ``predicate()`` holds (tests/tools.py ``until``), failing after ``timeout``."""
        return await until(predicate, timeout)

    async def sync(self, timeout: float = 100 * WAIT) -> None:
        """A round trip: once it returns, the server has handled everything sent before it and
        every answer to that has arrived (one connection keeps its order both ways). What a
        test expects *not* to get is checked after this, never after a sleep."""
        mark = float(next(_barrier_ids)) + 0.5  # never a time another ping of the test sends
        await self.send(Ping(client_time=mark))

        def answered() -> bool:
            return any(isinstance(m, Pong) and m.client_time == mark for m in self.others)

        await until(answered, timeout, what=f"the pong of ping {mark}")
        self.others = [
            m for m in self.others if not (isinstance(m, Pong) and m.client_time == mark)
        ]

    async def reply(
        self, kind: type[Message] | tuple[type[Message], ...], timeout: float = 100 * WAIT
    ) -> Any:
        """The oldest kept message of ``kind``, taken out of ``others``; waits up to ``timeout``."""

        def first() -> int | None:
            return next((i for i, m in enumerate(self.others) if isinstance(m, kind)), None)

        try:
            await until(lambda: first() is not None, timeout, what=f"a {kind}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; kept: {self.others}") from None
        i = first()
        assert i is not None
        return self.others.pop(i)

    async def closed(self, timeout: float = 100 * WAIT) -> tuple[int | None, str]:
        assert self._task is not None
        await asyncio.wait_for(asyncio.shield(self._task), timeout)
        return self.close_code, self.close_reason

    def messages(self, kind: type[Message] | tuple[type[Message], ...]) -> list[Any]:
        return [m for m in self.others if isinstance(m, kind)]

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task


def raw_msgpack(*items: Any) -> bytes:
    return msgpack.packb(list(items), use_bin_type=True)


__all__ = ["ACK_EVERY", "Client", "WAIT", "raw_msgpack", "until", "ChatMsg", "Notice"]
