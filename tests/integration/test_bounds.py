"""Every connection is bounded: what a peer that stops reading, floods replies, or holds many
sockets can cost the server, checked on real sockets and, where the server's word is not enough,
in the kernel's socket table (``/proc/net/tcp``) and the server process's RSS."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import signal
import socket
import struct
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from server.config import ROOT
from server.keys import METRICS
from server.protocol.codes import PROTOCOL_VERSION, CloseCode
from server.protocol.messages import BriefingJoin, Hello, Input, Notice, Ping

from .client import WAIT, Client
from .conftest import StartServer

BID = "big-briefing"
TCP_STATES = {
    "01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1", "05": "FIN_WAIT2",
    "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN",
    "0B": "CLOSING",
}  # fmt: skip


async def until(predicate: Callable[[], object], timeout: float, what: str = "") -> None:
    """Wait until ``predicate()`` holds, failing after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        await asyncio.sleep(WAIT / 5)


# -- the kernel's view -----------------------------------------------------------------------------


def server_side(server_port: int, client_port: int) -> list[tuple[str, int]]:
    """(state, unsent bytes) of the server's end of the TCP connection from ``client_port``, as
    the kernel lists it; TIME_WAIT is left out (it holds neither buffers nor a peer)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table, encoding="ascii") as f:
            for line in list(f)[1:]:
                fields = line.split()
                local, remote, state = fields[1], fields[2], TCP_STATES.get(fields[3], fields[3])
                if (
                    int(local.rsplit(":", 1)[1], 16) == server_port
                    and int(remote.rsplit(":", 1)[1], 16) == client_port
                    and state != "TIME_WAIT"
                ):
                    found.append((state, int(fields[4].split(":")[0], 16)))
    return found


def rss_kib(pid: int) -> int:
    text = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    m = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
    assert m, text
    return int(m.group(1))


# -- a peer on a bare socket -----------------------------------------------------------------------


def masked_frame(payload: bytes, opcode: int = 0x2) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    else:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def parse_frames(data: bytes) -> list[tuple[int, bytes]]:
    """The (opcode, payload) of each whole server frame in ``data`` (unmasked, as RFC 6455 says)."""
    frames, i = [], 0
    while i + 2 <= len(data):
        opcode, n = data[i] & 0x0F, data[i + 1] & 0x7F
        j = i + 2
        if n == 126:
            n, j = struct.unpack("!H", data[j : j + 2])[0], j + 2
        elif n == 127:
            n, j = struct.unpack("!Q", data[j : j + 8])[0], j + 8
        if j + n > len(data):
            break
        frames.append((opcode, data[j : j + n]))
        i = j + n
    return frames


class RawPeer:
    """A WebSocket client on a bare socket with a 4 KiB receive buffer, which reads only when the
    test says so: the slow phone, or the attacker, that the websockets library would not be."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.setblocking(False)
        self.received = b""
        self.local_port = 0

    async def open(self, hello: Hello | None) -> None:
        loop = asyncio.get_running_loop()
        await loop.sock_connect(self.sock, ("127.0.0.1", self.port))
        self.local_port = self.sock.getsockname()[1]
        key = base64.b64encode(os.urandom(16)).decode()
        await loop.sock_sendall(
            self.sock,
            (
                f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode(),
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await asyncio.wait_for(loop.sock_recv(self.sock, 1024), 100 * WAIT)
            assert chunk, head
            head += chunk
        head, _, self.received = head.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        if hello is not None:
            assert await self.send(hello.encode())

    async def send(self, payload: bytes, opcode: int = 0x2) -> bool:
        """Send one frame; False once the server has dropped the connection."""
        try:
            await asyncio.wait_for(
                asyncio.get_running_loop().sock_sendall(self.sock, masked_frame(payload, opcode)),
                20 * WAIT,
            )
        except (OSError, TimeoutError):
            return False
        return True

    async def read_to_end(
        self, timeout: float, chunk: int = 65536, pause: float = 0.0
    ) -> list[tuple[int, bytes]]:
        """Read until the server ends the connection (or ``timeout``), ``chunk`` bytes at a time
        with ``pause`` seconds between reads (a slow link); every frame received."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            try:
                data = await asyncio.wait_for(loop.sock_recv(self.sock, chunk), end - loop.time())
            except (OSError, TimeoutError):
                break
            if not data:
                break
            self.received += data
            if pause:
                await asyncio.sleep(pause)
        return parse_frames(self.received)

    async def table(self) -> list[tuple[str, int]]:
        """The server's end of this connection in the kernel's table (read off the event loop:
        the table is long on a busy machine, and the server may share this loop)."""
        return await asyncio.to_thread(server_side, self.port, self.local_port)

    async def gone(self) -> bool:
        """The kernel no longer holds the server's end of this connection."""
        return not await self.table()

    async def until_gone(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        while not await self.gone():
            assert time.monotonic() < end, f"still in the kernel's table: {await self.table()}"
            await asyncio.sleep(WAIT / 5)

    async def unsent(self) -> int:
        """Bytes the server's kernel holds for this peer (its send queue)."""
        return sum(tx for _, tx in await self.table())

    def close(self) -> None:
        self.sock.close()


def hello(mode: str = "avatar", **opts: object) -> Hello:
    if mode == "watch":
        opts["mode"] = "watch"
    return Hello(version=PROTOCOL_VERSION, name="遅い人", resume=None, opts=opts)


def close_code(payload: bytes) -> int:
    return int(struct.unpack("!H", payload[:2])[0])


# -- a briefing whose state is about 17.5 KB, and `emachi serve` in a subprocess -------------------


def write_big_briefing(data_dir: Path) -> None:
    """A rendered timeline of 40 segments: each BRIEFING_JOIN is answered with ~17 KB of state."""
    segments = []
    for i in range(40):
        text = f"第{i}項について説明します。" + "市役所の手続きはオンラインでできます。" * 2
        segments.append(
            {
                "index": i, "speaker": "clerk", "name": "情報システム課", "role": "事務局",
                "voice": "ja-openjtalk", "speed": 1.0, "narration": text,
                "slide": {"title": f"{i}枚目", "bullets": [f"戦略{i}", "窓口", "オンライン"],
                          "image": None, "alt": ""},
                "audio": "a" * 64, "audio_opus": None, "visemes": "b" * 64,
                "duration": 2.0, "pause_after": 0.1, "captions": [[0.0, 2.0, text]],
                "start": i * 2.1,
            }
        )  # fmt: skip
    doc = {
        "format": "emachi-briefing-timeline/1",
        "id": BID,
        "title": "大きな説明会",
        "date": "2024-01-02",
        "cast": [{"avatar": "clerk", "role": "事務局", "name": "情報システム課"}],
        "segments": segments,
        "duration": 40 * 2.1,
        "asset": "c" * 64,
    }
    (data_dir / "briefings").mkdir(parents=True, exist_ok=True)
    (data_dir / "briefings" / f"{BID}.json").write_text(json.dumps(doc), encoding="utf-8")


@contextlib.asynccontextmanager
async def served(
    data_dir: Path, *args: str
) -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    """``emachi serve --port 0`` as an operator starts it; (process, port). Killed at the end."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", "serve", "--port", "0", "--data-dir", str(data_dir),
        "--staff-token", "t", "--log-level", "warning", *args,
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    out = proc.stdout
    try:
        line = await asyncio.wait_for(out.readline(), 400 * WAIT)
        m = re.search(rb"serving \S+ on http://[^/]+:(\d+)/", line)
        assert m, line
        drain_output = asyncio.create_task(out.read())  # the pipe never fills
        yield proc, int(m.group(1))
        drain_output.cancel()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def closes_counted(base: str, code: CloseCode) -> int:
    """The closes with ``code`` that ``/metrics`` reports."""
    async with aiohttp.ClientSession() as http, http.get(base + "/metrics") as r:
        text = await r.text()
    m = re.search(rf'^emachi_closes_total\{{code="{int(code)}"[^}}]*\}} (\d+)', text, re.M)
    return int(m.group(1)) if m else 0


# -- the tests -------------------------------------------------------------------------------------


async def test_a_watcher_that_never_reads_is_cut_off_and_memory_stays_bounded(
    tmp_path: Path,
) -> None:
    """Four watch-only viewers that never read and keep asking for a 17 KB briefing state (at
    the rate a client may send) are reset within about a second, and the server's RSS grows by
    less than a couple of MB; with no budget on replies it grew by megabytes a second."""
    write_big_briefing(tmp_path)
    async with served(tmp_path) as (proc, port):
        url = f"ws://127.0.0.1:{port}/ws"
        async with Client(url, "見る人", mode="watch", briefing=BID) as probe:
            await probe.send(BriefingJoin(briefing_id=BID))
            await probe.until(lambda: probe.others, 100 * WAIT)  # the timeline is loaded
        join = BriefingJoin(briefing_id=BID).encode()
        rss0 = rss_kib(proc.pid or 0)
        peers = [RawPeer(port) for _ in range(4)]
        for p in peers:
            await p.open(hello("watch", briefing=BID))
        t0 = time.monotonic()

        async def flood(p: RawPeer) -> float:
            # the token bucket allows a burst of 120, then 60 a second: stay just under it
            for i in range(120 + 3 * 55):
                if not await p.send(join):
                    break  # the server reset it
                if i >= 100:
                    await asyncio.sleep(1 / 55)
            await p.until_gone(20 * WAIT)
            return time.monotonic() - t0

        try:
            times = await asyncio.gather(*(flood(p) for p in peers))
            grown = rss_kib(proc.pid or 0) - rss0
        finally:
            for p in peers:
                p.close()
    assert max(times) < 2.0, times
    assert grown < 3 * 1024, f"the server's RSS grew by {grown} KiB"


async def test_a_stalled_sender_is_reset_within_the_bound_and_counted_once(
    start_server: StartServer,
) -> None:
    """A reader that stalls but keeps sending inputs and pings is closed with TOO_SLOW, and its
    TCP connection leaves the kernel's table within a second of that close (close_timeout);
    /metrics counts that close once, not once per tick it stayed behind."""
    srv = await start_server(
        send_buffer_limit=2048, socket_send_buffer=4096, output_budget=16384, slow_limit=0.5,
        close_timeout=0.3,
    )  # fmt: skip
    crowd = [Client(srv.ws, f"人{i}") for i in range(20)]  # for snapshots with something in them
    await asyncio.gather(*(c.connect() for c in crowd))
    peer = RawPeer(srv.port)
    try:
        await peer.open(hello())
        metrics = srv.app[METRICS]
        closed_at: float | None = None
        seq = 0
        end = time.monotonic() + 100 * WAIT
        while time.monotonic() < end:
            seq += 1
            msg = Input(seq=seq, ack_tick=0, mx=0.3, mz=0.0, yaw=0.0) if seq % 2 else Ping(1.0)
            if not await peer.send(msg.encode()) and await peer.gone():
                break
            if closed_at is None and metrics.closes.get(int(CloseCode.TOO_SLOW)):
                closed_at = time.monotonic()
            if closed_at is not None and await peer.gone():
                break
            await asyncio.sleep(WAIT / 2)
        gone_at = time.monotonic()
        assert closed_at is not None, "never closed as too slow"
        for _ in range(10):  # more ticks: nothing is counted again
            await peer.send(Ping(2.0).encode())
            await asyncio.sleep(WAIT)
        assert await closes_counted(srv.http, CloseCode.TOO_SLOW) == 1
        assert await peer.gone(), await peer.table()
        # reset close_timeout (0.3 s) after its close: within a second even on a busy machine
        assert gone_at - closed_at < 1.0, f"reset {gone_at - closed_at:.2f} s after the close"
        for c in crowd:
            assert c.close_code is None  # nobody else was touched
    finally:
        peer.close()
        await asyncio.gather(*(c.close() for c in crowd))


@pytest.mark.parametrize("why", ["bad_frame", "too_slow"])
async def test_no_frame_follows_a_close(
    start_server: StartServer, tmp_path: Path, why: str
) -> None:
    """Read every byte the server sends once it has decided to close: its Close frame is the
    last frame (RFC 6455 §5.5.1), though the tick keeps running and the peer never answers it.

    bad_frame: a text frame gets 4001 (the server used to wait 10 s for the answer, writing
    snapshots meanwhile). too_slow: a reader that stalls with replies piled up is closed with
    4006, then reads what it was sent over a slow link (close_timeout is long here so that it
    can; it used to get snapshots after the Close while the pile drained, and the close was
    counted again on every tick of it)."""
    data = tmp_path / "data"
    write_big_briefing(data)
    srv = await start_server(
        data_dir=data, send_buffer_limit=80 * 1024, socket_send_buffer=4096, slow_limit=0.3,
        close_timeout=12.0,
    )  # fmt: skip
    crowd = [Client(srv.ws, f"人{i}") for i in range(10)]
    await asyncio.gather(*(c.connect() for c in crowd))
    peer = RawPeer(srv.port)
    try:
        await peer.open(hello())
        await asyncio.sleep(5 * WAIT)  # a few snapshots first
        if why == "bad_frame":
            await peer.send(b"hello?", opcode=0x1)
            expected = CloseCode.BAD_FRAME
            frames = await peer.read_to_end(timeout=40 * WAIT)
        else:
            for _ in range(10):  # ~220 KB of briefing state that it does not read
                await peer.send(BriefingJoin(briefing_id=BID).encode())
            metrics = srv.app[METRICS]
            await until(lambda: metrics.closes, 100 * WAIT, "the too-slow close")
            expected = CloseCode.TOO_SLOW
            # the pile takes a while over a slow link when the server shares this event loop
            frames = await peer.read_to_end(timeout=200 * WAIT, chunk=4096, pause=0.02)
            # every tick it stayed behind while the pile drained used to count another close
            assert await closes_counted(srv.http, CloseCode.TOO_SLOW) == 1
    finally:
        peer.close()
        await asyncio.gather(*(c.close() for c in crowd))
    kinds = [op for op, _ in frames]
    assert 0x8 in kinds, f"no Close among {len(frames)} frames"
    at = kinds.index(0x8)
    assert close_code(frames[at][1]) == expected
    assert frames[at][1][2:].decode(), "a Close without a reason"
    assert at == len(frames) - 1, f"{len(frames) - 1 - at} frame(s) after the Close"


async def test_sigterm_with_stalled_readers_exits_within_a_second(tmp_path: Path) -> None:
    """SIGTERM with three readers whose kernel buffers are full (and which keep sending): every
    client is told, the stalled ones are reset rather than awaited, and the process has exited
    within a second of the drain notice."""
    write_big_briefing(tmp_path)
    async with served(tmp_path) as (proc, port):
        url = f"ws://127.0.0.1:{port}/ws"
        watcher = Client(url, "残る人")
        await watcher.connect()
        await watcher.until(lambda: watcher.snapshots > 2)
        join = BriefingJoin(briefing_id=BID).encode()
        stalled = [RawPeer(port) for _ in range(3)]
        for p in stalled:
            await p.open(hello())
            for _ in range(12):  # ~200 KB: the kernel's buffers full, some left in the server's
                assert await p.send(join)
        end = time.monotonic() + 100 * WAIT
        for p in stalled:  # a full send queue in the kernel: these readers are stalled for real
            while await p.unsent() < 90_000:
                assert time.monotonic() < end, await p.table()
                await asyncio.sleep(WAIT)

        async def keep_sending(p: RawPeer) -> None:
            while await p.send(Ping(3.0).encode()):
                await asyncio.sleep(WAIT)

        senders = [asyncio.create_task(keep_sending(p)) for p in stalled]
        try:
            t_term = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            await watcher.until(
                lambda: any(n.kind == "draining" for n in watcher.messages(Notice)), 40 * WAIT
            )
            t_notice = time.monotonic()
            code = await asyncio.wait_for(proc.wait(), 200 * WAIT)
            t_exit = time.monotonic()
        finally:
            for t in senders:
                t.cancel()
            for p in stalled:
                p.close()
            await watcher.close()
    assert code == 0
    assert t_exit - t_notice <= 1.0, f"exited {t_exit - t_notice:.2f} s after the drain notice"
    assert t_exit - t_term <= 1.2, f"exited {t_exit - t_term:.2f} s after SIGTERM"


async def test_the_51st_connection_from_one_address_is_refused_with_a_reason(
    start_server: StartServer,
) -> None:
    """50 open WebSockets from one address (one of them still before its hello) are served; the
    51st is closed with TOO_MANY_CONNECTIONS and a reason a person can read; once one of the 50
    leaves, a new one is served."""
    srv = await start_server()
    assert srv.config.max_per_address == 50
    viewers = [Client(srv.ws, f"見{i}", mode="watch") for i in range(49)]
    silent = RawPeer(srv.port)  # upgraded, no hello yet: it counts too
    try:
        await asyncio.gather(*(c.connect() for c in viewers))
        await silent.open(None)
        ws = await connect(srv.ws, compression=None)
        with pytest.raises(ConnectionClosed) as refused:  # it may be closed before the hello
            await ws.send(hello("watch").encode())
            await asyncio.wait_for(ws.recv(), 100 * WAIT)
        await ws.close()
        assert refused.value.rcvd is not None
        assert refused.value.rcvd.code == CloseCode.TOO_MANY_CONNECTIONS
        assert "too many connections from your network address" in refused.value.rcvd.reason
        await viewers.pop().close()
        late = Client(srv.ws, "後から", mode="watch")
        await until_served(late)
        await late.close()
    finally:
        silent.close()
        await asyncio.gather(*(c.close() for c in viewers))


async def until_served(c: Client) -> None:
    """Connect ``c``, retrying while the server has not yet seen the freed place."""
    end = time.monotonic() + 100 * WAIT
    while True:
        try:
            await c.connect()
            return
        except (ConnectionClosed, AssertionError):
            if time.monotonic() > end:
                raise
            await asyncio.sleep(WAIT)
