"""Watch-only briefing viewers in processes of their own, timed by the kernel's receive timestamp.

A viewer's lag should be when the frame reached its device, not when a busy load generator got
round to reading it. So the viewers of :mod:`bench.cluster` are plain non-blocking sockets in
``procs`` child processes (``multiprocessing``, spawned), apart from the walking crowd, each
process one :mod:`selectors` loop without asyncio. A viewer:

- connects over TCP (through the balancer), sends the HTTP upgrade, then the watch-only HELLO
  and the BRIEFING_JOIN exactly as :class:`bench.client.Viewers` does, and waits for WELCOME and
  the full BRIEFING;
- reads with ``socket.recvmsg`` and ``SO_TIMESTAMPNS``: every read carries the wall-clock time
  (``CLOCK_REALTIME``, the clock of ``time.time()``) at which the kernel received its newest
  segment, for loopback the moment the sender (HAProxy) wrote it;
- parses the WebSocket frames and the MessagePack type of each message, answers the server's
  Pings (the liveness sweep would close a silent viewer) and, while armed, notes its first
  BRIEFING twice: ``kernel`` (the receive timestamp) and ``handled`` (``time.time()`` when this
  process's Python parsed it; the difference is the viewer process's own backlog).

:class:`ViewerPool` drives the processes from an asyncio program through pipes (read with
``loop.add_reader``, never blocking its loop) and times staff actions like
:meth:`bench.client.Viewers.time_actions`, from ``time.time()`` just before each POST.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import multiprocessing
import os
import resource
import selectors
import socket
import struct
import time
from array import array
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import msgpack

from bench.client import Viewers, note_spread, post_action, start_briefing
from server.protocol.codes import PROTOCOL_VERSION, MsgType

__all__ = ["ViewerPool", "message_type", "parse_frames", "viewer_process"]

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; SCM_TIMESTAMPNS is the same
_CMSG = socket.CMSG_SPACE(16)  # struct timespec: two 64-bit longs
_TIMESPEC = struct.Struct("=qq")
_HELLO, _JOIN = int(MsgType.HELLO), int(MsgType.BRIEFING_JOIN)
_WELCOME, _BRIEFING = int(MsgType.WELCOME), int(MsgType.BRIEFING)
_CONNECTING, _UPGRADING, _JOINING, _READY, _GONE = range(5)
_OP_CONT, _OP_BINARY, _OP_CLOSE, _OP_PING = 0x0, 0x2, 0x8, 0x9


def message_type(payload: bytes | bytearray) -> int | None:
    """The type code of a MessagePack array message (its first element), without decoding the
    rest; None when the payload is not an array starting with a small integer."""
    if not payload:
        return None
    head = payload[0]
    at = 1 if 0x90 <= head <= 0x9F else 3 if head == 0xDC else 5 if head == 0xDD else -1
    if at < 0 or len(payload) <= at:
        return None
    code = payload[at]
    if code < 0x80:
        return code
    if code == 0xCC and len(payload) > at + 1:  # uint8
        return payload[at + 1]
    return None


def parse_frames(buf: bytearray) -> list[tuple[int, bool, bytes]]:
    """Complete WebSocket frames at the front of ``buf`` as ``(opcode, fin, payload)``, removed
    from it; an incomplete frame stays for the next read. Server frames are not masked, but a
    mask is undone if present."""
    out: list[tuple[int, bool, bytes]] = []
    pos, size = 0, len(buf)
    while size - pos >= 2:
        b0, b1 = buf[pos], buf[pos + 1]
        n, off = b1 & 0x7F, pos + 2
        if n == 126:
            if size - pos < 4:
                break
            n, off = int.from_bytes(buf[pos + 2 : pos + 4], "big"), pos + 4
        elif n == 127:
            if size - pos < 10:
                break
            n, off = int.from_bytes(buf[pos + 2 : pos + 10], "big"), pos + 10
        mask = b""
        if b1 & 0x80:
            mask, off = bytes(buf[off : off + 4]), off + 4
        if size < off + n:
            break
        payload = bytes(buf[off : off + n])
        if mask:
            payload = bytes(c ^ mask[k % 4] for k, c in enumerate(payload))
        out.append((b0 & 0x0F, bool(b0 & 0x80), payload))
        pos = off + n
    del buf[:pos]
    return out


def _client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client-to-server frame (FIN set)."""
    n = len(payload)
    head = bytes((0x80 | opcode,))
    if n < 126:
        head += bytes((0x80 | n,))
    elif n < 65536:
        head += bytes((0x80 | 126,)) + n.to_bytes(2, "big")
    else:
        head += bytes((0x80 | 127,)) + n.to_bytes(8, "big")
    mask = os.urandom(4)
    return head + mask + bytes(c ^ mask[k % 4] for k, c in enumerate(payload))


@dataclass(slots=True, eq=False)
class _Viewer:
    i: int
    sock: socket.socket
    state: int = _CONNECTING
    buf: bytearray = field(default_factory=bytearray)
    frag: bytearray = field(default_factory=bytearray)
    started: float = 0.0
    welcomed: bool = False


class _Process:
    """The loop of one viewer process (runs in the child)."""

    def __init__(self, conn: Connection, url: str, briefing: str) -> None:
        parts = urlsplit(url)
        self.conn = conn
        self.addr = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.path = parts.path or "/"
        self.host = parts.netloc
        self.briefing = briefing
        self.sel = selectors.DefaultSelector()
        self.viewers: list[_Viewer] = []  # ready ones, in the order they became ready
        self.failed: dict[str, int] = {}
        self.closed_by_server = 0
        self.pongs = 0
        self.unstamped = 0  # reads without a kernel timestamp (then timed when handled)
        self.armed = -1  # the action being timed, -1 when none
        self.kernel = array("d")
        self.handled = array("d")
        self.waiting = 0  # ready viewers without their BRIEFING of the armed action
        self.pending: set[_Viewer] = set()
        self.first = 0  # index of this process's first viewer
        self.armed_ready = 0  # viewers ready when the action was armed

    # -- connecting ------------------------------------------------------------------------------

    def _fail(self, v: _Viewer, why: str) -> None:
        self.failed[why] = self.failed.get(why, 0) + 1
        self._drop(v)

    def _drop(self, v: _Viewer) -> None:
        if v.state != _GONE:
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(v.sock)
            v.sock.close()
            v.state = _GONE
        self.pending.discard(v)

    def _open(self, i: int) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        v = _Viewer(i, s, started=time.monotonic())
        err = s.connect_ex(self.addr)
        if err not in (0, 115):  # EINPROGRESS
            self.failed[os.strerror(err)] = self.failed.get(os.strerror(err), 0) + 1
            s.close()
            return
        self.sel.register(s, selectors.EVENT_WRITE, v)
        self.pending.add(v)

    def _connected(self, v: _Viewer) -> None:
        err = v.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._fail(v, os.strerror(err))
            return
        key = base64.b64encode(os.urandom(16)).decode()
        req = (
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        v.sock.sendall(req.encode())
        v.state = _UPGRADING
        self.sel.modify(v.sock, selectors.EVENT_READ, v)

    def _upgraded(self, v: _Viewer) -> None:
        end = v.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        status = bytes(v.buf[: v.buf.find(b"\r\n")])
        del v.buf[: end + 4]
        if b" 101 " not in status + b" ":
            self._fail(v, status.decode("latin-1")[:60])
            return
        opts = {"mode": "watch", "briefing": self.briefing}
        hello = msgpack.packb([_HELLO, PROTOCOL_VERSION, f"v{v.i}", None, opts])
        join = msgpack.packb([_JOIN, self.briefing])
        v.sock.sendall(_client_frame(_OP_BINARY, hello) + _client_frame(_OP_BINARY, join))
        v.state = _JOINING

    def connect(self, n: int, first: int, timeout: float, at_once: int) -> None:
        """Connect viewers ``first`` … ``first + n - 1`` (``at_once`` handshakes at a time); a
        viewer not ready within ``timeout`` overall (30 s each) is counted in ``failed``."""
        end = time.monotonic() + timeout
        nxt = first
        while time.monotonic() < end and (nxt < first + n or self.pending):
            while nxt < first + n and len(self.pending) < at_once:
                self._open(nxt)
                nxt += 1
            for key, _ in self.sel.select(0.05):
                if isinstance(key.data, _Viewer):
                    self._event(key.data)
            now = time.monotonic()
            for v in [v for v in self.pending if now - v.started > 30.0]:
                self._fail(v, "handshake timeout")
        for v in list(self.pending):
            self._fail(v, "handshake timeout")
        if nxt < first + n:
            self.failed["not tried in time"] = first + n - nxt

    # -- reading ---------------------------------------------------------------------------------

    def _event(self, v: _Viewer) -> None:
        if v.state == _CONNECTING:
            self._connected(v)
            return
        try:
            data, anc, _, _ = v.sock.recvmsg(65536, _CMSG)
        except BlockingIOError:
            return
        except OSError as exc:
            self._lost(v, type(exc).__name__)
            return
        if not data:
            self._lost(v, "closed")
            return
        stamp = 0.0
        for level, kind, raw in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= 16:
                sec, ns = _TIMESPEC.unpack_from(raw)
                stamp = sec + ns * 1e-9
        v.buf += data
        if v.state == _UPGRADING:
            self._upgraded(v)
            if v.state != _JOINING:
                return
        for opcode, fin, payload in parse_frames(v.buf):
            if opcode == _OP_PING:
                v.sock.sendall(_client_frame(0xA, payload))
                self.pongs += 1
            elif opcode == _OP_CLOSE:
                with contextlib.suppress(OSError):
                    v.sock.sendall(_client_frame(_OP_CLOSE, payload[:2]))
                self._lost(v, f"closed {int.from_bytes(payload[:2], 'big') if payload else ''}")
                return
            elif opcode in (_OP_BINARY, _OP_CONT):
                v.frag += payload
                if fin:
                    self._message(v, bytes(v.frag), stamp)
                    v.frag.clear()

    def _lost(self, v: _Viewer, why: str) -> None:
        if v.state == _READY:
            self.closed_by_server += 1
            self._drop(v)
            if self.armed >= 0 and not self.kernel[v.i - self.first]:
                self._arrived()
        else:
            self._fail(v, why)

    def _message(self, v: _Viewer, payload: bytes, stamp: float) -> None:
        kind = message_type(payload)
        if v.state == _JOINING:
            if kind == _WELCOME:
                v.welcomed = True
            elif kind == _BRIEFING and v.welcomed:  # the full BRIEFING: this viewer is in
                v.state = _READY
                self.pending.discard(v)
                self.viewers.append(v)
            return
        if kind != _BRIEFING or self.armed < 0:
            return
        k = v.i - self.first
        if self.kernel[k]:
            return
        handled = time.time()
        if not stamp:
            self.unstamped += 1
        self.kernel[k] = stamp or handled
        self.handled[k] = handled
        self._arrived()

    def _arrived(self) -> None:
        """One more viewer is done with the armed action (its BRIEFING came, or it is gone)."""
        self.waiting -= 1
        if self.waiting == 0:
            self.conn.send(("complete", self.armed))

    # -- the command loop ------------------------------------------------------------------------

    def serve(self) -> None:
        """Answer the parent's commands until it says close (or its pipe goes)."""
        self.sel.register(self.conn.fileno(), selectors.EVENT_READ, None)
        while True:
            for key, _ in self.sel.select(1.0):
                if key.data is None:
                    try:
                        cmd = self.conn.recv()
                    except EOFError:
                        return
                    if not self._command(cmd):
                        return
                else:
                    self._event(key.data)

    def _command(self, cmd: tuple[Any, ...]) -> bool:
        what = cmd[0]
        if what == "connect":
            _, n, first, timeout, at_once = cmd
            self.sel.unregister(self.conn.fileno())
            self.first = first
            self.connect(n, first, timeout, at_once)
            self.sel.register(self.conn.fileno(), selectors.EVENT_READ, None)
            self.conn.send(("connected", len(self.viewers), dict(self.failed)))
        elif what == "arm":
            self.armed = cmd[1]
            size = max((v.i - self.first + 1 for v in self.viewers), default=0)
            self.kernel = array("d", bytes(8 * size))
            self.handled = array("d", bytes(8 * size))
            self.waiting = self.armed_ready = sum(1 for v in self.viewers if v.state == _READY)
            self.conn.send(("armed", cmd[1]))
            if self.waiting == 0:
                self.conn.send(("complete", cmd[1]))
        elif what == "collect":
            got = [k for k, t in enumerate(self.kernel) if t]
            self.conn.send(
                (
                    "collected",
                    cmd[1],
                    array("d", (self.kernel[k] for k in got)).tobytes(),
                    array("d", (self.handled[k] for k in got)).tobytes(),
                    self.armed_ready - len(got),  # a viewer closed meanwhile is missed too
                )
            )
            self.armed = -1
        elif what == "stats":
            self.conn.send(("stats", self._stats()))
        elif what == "close":
            stats = self._stats()
            for v in self.viewers:
                if v.state == _READY:
                    with contextlib.suppress(OSError):
                        v.sock.sendall(_client_frame(_OP_CLOSE, (1000).to_bytes(2, "big")))
                    self._drop(v)
            self.conn.send(("closed", stats))
            return False
        return True

    def _stats(self) -> dict[str, Any]:
        return {
            "ready": sum(1 for v in self.viewers if v.state == _READY),
            "failed": dict(self.failed),
            "closed_by_server": self.closed_by_server,
            "pongs": self.pongs,
            "unstamped_reads": self.unstamped,
            "cpu_s": round(time.process_time(), 2),
        }


def viewer_process(conn: Connection, url: str, briefing: str) -> None:
    """The child's entry point: one selectors loop of viewers, driven through ``conn``."""
    with contextlib.suppress(ValueError, OSError):
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # thousands of sockets
    with contextlib.suppress(KeyboardInterrupt):
        _Process(conn, url, briefing).serve()
    conn.close()


class _Child:
    """The parent's end of one viewer process: its pipe's messages land in a queue."""

    def __init__(self, url: str, briefing: str) -> None:
        ctx = multiprocessing.get_context("spawn")  # no fork of a running event loop
        self.conn, theirs = ctx.Pipe()
        self.proc = ctx.Process(
            target=viewer_process, args=(theirs, url, briefing), daemon=True, name="viewers"
        )
        self.proc.start()
        theirs.close()
        self.inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        loop.add_reader(self.conn.fileno(), self._readable)
        self.eof = False

    def _readable(self) -> None:
        try:
            self.inbox.put_nowait(self.conn.recv())
        except (EOFError, OSError):
            self.eof = True
            asyncio.get_running_loop().remove_reader(self.conn.fileno())
            self.inbox.put_nowait(("eof",))

    async def ask(self, *cmd: Any) -> None:
        if not self.eof:
            self.conn.send(cmd)

    async def expect(
        self, what: str, tag: Any = None, timeout: float | None = None
    ) -> tuple[Any, ...]:
        """The next message ``what`` (with ``tag`` as its second field if given); others that
        are stale (a late ``complete``) are dropped."""
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.inbox.get()
                if msg[0] == "eof":
                    raise RuntimeError("a viewer process ended")
                if msg[0] == what and (tag is None or msg[1] == tag):
                    return msg

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(self.conn.fileno())
        self.conn.close()
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


class ViewerPool:
    """``procs`` viewer processes of briefing ``briefing`` at ``url`` (a ``ws://`` URL)."""

    def __init__(self, url: str, briefing: str, procs: int = 2) -> None:
        if procs < 1:
            raise ValueError(f"procs must be at least 1, not {procs}")
        parts = urlsplit(url)
        if parts.scheme != "ws":
            raise ValueError(f"plain ws:// only (the viewers speak no TLS): {url}")
        self.url, self.briefing, self.procs = url, briefing, procs
        self.children: list[_Child] = []
        self.connected = 0
        self.failed: dict[str, int] = {}
        self.stats: list[dict[str, Any]] = []

    async def connect(self, n: int, *, timeout: float = 600.0, at_once: int = 64) -> None:
        """Start the processes and connect ``n`` viewers split evenly over them (``at_once``
        handshakes at a time in all). Viewers that fail or are not ready in ``timeout`` are
        counted in :attr:`failed`."""
        self.children = [_Child(self.url, self.briefing) for _ in range(self.procs)]
        share = [n // self.procs + (k < n % self.procs) for k in range(self.procs)]
        per = max(1, at_once // self.procs)
        first = 0
        for child, m in zip(self.children, share, strict=True):
            await child.ask("connect", m, first, timeout, per)
            first += m
        for child in self.children:
            _, ready, failed = await child.expect("connected", timeout=timeout + 60.0)
            self.connected += ready
            for why, c in failed.items():
                self.failed[why] = self.failed.get(why, 0) + c

    async def time_actions(
        self,
        base: str,
        token: str,
        actions: int,
        *,
        wait: float = 10.0,
        pause: float = 0.2,
        inline: Viewers | None = None,
    ) -> dict[str, Any]:
        """As :meth:`bench.client.Viewers.time_actions`: start the briefing, then per staff action
        (:data:`~bench.client.ACTION_PLAN` in turn) the lag from ``time.time()`` just before the
        POST to the first, median and last viewer, by kernel receive time (``first``, ``median``,
        ``last``) and by when the viewer process handled it (``handled_*``), in ms; ``missed``
        viewers had nothing within ``wait`` s. Also the server's ``fanout_ms`` and the POST's
        round trip (``post``). ``inline`` viewers (aiohttp, in the caller's own loop) are timed
        beside them as before, when that loop handled the frame (``inline_*``, ``inline_missed``)."""
        headers = {"Authorization": f"Bearer {token}"}
        keys = [f"{p}{q}" for p in ("", "handled_", "inline_") for q in ("first", "median", "last")]
        out: dict[str, Any] = {k: [] for k in (*keys, "server", "post")}
        out["missed"] = out["inline_missed"] = 0
        statuses = set()
        bid = self.briefing
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            await start_briefing(http, base, bid, headers)
            for k in range(actions):
                for c in self.children:
                    await c.ask("arm", k)
                for c in self.children:
                    await c.expect("armed", k, timeout=10.0)
                if inline is not None:
                    inline.received = [0.0] * len(inline.sockets)
                    inline.armed = True
                t0, p0 = time.time(), time.perf_counter()
                await post_action(http, base, bid, k, headers, out, statuses)
                out["post"].append((time.time() - t0) * 1000.0)
                deadline = time.monotonic() + wait
                for c in self.children:
                    with contextlib.suppress(TimeoutError):
                        await c.expect("complete", k, timeout=max(0.0, deadline - time.monotonic()))
                kernel: list[float] = []
                handled: list[float] = []
                for c in self.children:
                    await c.ask("collect", k)
                for c in self.children:
                    _, _, ks, hs, missed = await c.expect("collected", k, timeout=30.0)
                    kernel += array("d", ks).tolist()
                    handled += array("d", hs).tolist()
                    out["missed"] += missed
                lags = [[(t - t0) * 1000.0 for t in kernel], [(t - t0) * 1000.0 for t in handled]]
                if inline is not None:
                    while not all(inline.received) and time.monotonic() < deadline:
                        await asyncio.sleep(0.002)
                    inline.armed = False
                    mine = [(t - p0) * 1000.0 for t in inline.received if t]
                    out["inline_missed"] += len(inline.received) - len(mine)
                    lags.append(mine)
                for prefix, ms in zip(("", "handled_", "inline_"), lags, strict=False):
                    note_spread(out, prefix, ms)
                await asyncio.sleep(pause)
        out["statuses"] = sorted(statuses)
        return out

    async def counters(self) -> list[dict[str, Any]]:
        """Each process's counters now: viewers ready, failures, closes by the server, Pongs
        sent, reads without a kernel timestamp, CPU seconds."""
        for c in self.children:
            await c.ask("stats")
        return [(await c.expect("stats", timeout=30.0))[1] for c in self.children]

    async def close(self) -> None:
        """Close every viewer (a Close frame each) and end the processes; their counters are
        kept in :attr:`stats`."""
        for c in self.children:
            await c.ask("close")
        for c in self.children:
            with contextlib.suppress(TimeoutError, RuntimeError):
                self.stats.append((await c.expect("closed", timeout=30.0))[1])
            c.stop()
        self.children = []
