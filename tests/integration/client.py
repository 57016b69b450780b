"""A small real WebSocket client for the tests: hello, snapshots applied, inputs sent."""

from __future__ import annotations

import asyncio
import contextlib
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
    Snapshot,
    Welcome,
    decode,
)
from server.protocol.snapshot import SnapshotState

WAIT = 0.05  # the one unit every wait in these tests is a multiple of


class Client:
    """Connects, says hello, keeps the world state from snapshots, acknowledges them."""

    def __init__(self, url: str, name: str = "テスト", resume: str | None = None, **opts: Any) -> None:
        self.url = url
        self.name = name
        self.resume = resume
        self.opts = opts
        self.ws: ClientConnection | None = None
        self.welcome: Welcome | None = None
        self.state = SnapshotState()
        self.view: dict[int, tuple[int, int, int, int]] = {}
        self.names: dict[int, str] = {}
        self.snapshots = 0
        self.last_snapshot: Snapshot | None = None
        self.others: list[Message] = []
        self.seq = 0
        self.close_code: int | None = None
        self.close_reason = ""
        self._task: asyncio.Task[None] | None = None
        self.error: Exception | None = None

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> Welcome:
        self.ws = await connect(self.url, max_size=2**20, compression=None)
        await self.ws.send(Hello(version=PROTOCOL_VERSION, name=self.name, resume=self.resume, opts=self.opts).encode())
        first = decode(await asyncio.wait_for(self.ws.recv(), 200 * WAIT))
        assert isinstance(first, Welcome), first
        self.welcome = first
        self.resume = first.resume
        self.state = SnapshotState()
        self._task = asyncio.create_task(self._reader())
        return first

    @property
    def avatar_id(self) -> int:
        assert self.welcome is not None
        return self.welcome.avatar_id

    async def _reader(self) -> None:
        assert self.ws is not None
        try:
            async for data in self.ws:
                msg = decode(data)  # type: ignore[arg-type]
                if isinstance(msg, Snapshot):
                    self.view = self.state.apply(msg)
                    for row in msg.info or []:
                        self.names[int(row[0])] = row[1]
                    self.snapshots += 1
                    self.last_snapshot = msg
                    if msg.tick % 2 == 0:
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
        await self.send(Input(seq=self.seq, ack_tick=ack, mx=mx, mz=mz, yaw=yaw))

    def position(self, avatar_id: int | None = None) -> tuple[int, float, float] | None:
        """(floor index, x m, z m) of an avatar in this client's view."""
        rec = self.view.get(self.avatar_id if avatar_id is None else avatar_id)
        if rec is None:
            return None
        return rec[0], rec[2] / 100.0, rec[3] / 100.0

    async def until(self, predicate: Any, timeout: float = 100 * WAIT) -> None:
        """Wait until ``predicate()`` holds, failing the test after ``timeout``."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not predicate():
            if loop.time() > end:
                raise AssertionError(f"timed out waiting for {getattr(predicate, '__name__', predicate)}")
            await asyncio.sleep(WAIT)

    async def closed(self, timeout: float = 100 * WAIT) -> tuple[int | None, str]:
        assert self._task is not None
        await asyncio.wait_for(asyncio.shield(self._task), timeout)
        return self.close_code, self.close_reason

    def messages(self, kind: type[Message]) -> list[Any]:
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


__all__ = ["Client", "WAIT", "raw_msgpack", "ChatMsg", "Notice"]
