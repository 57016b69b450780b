"""Three ``emachi serve`` processes behind HAProxy: a staff action to the last viewer across
processes, the cost of a redirected hello, and failover after a SIGKILL.

    python -m bench.cluster [--walkers 60] [--viewers 150] [--viewer-procs 2] [--inline-viewers 0]
                            [--actions 10] [--hellos 50] [--kills 2] [--lease-ttl 2.5]
                            [--max-seconds 600]

Starts a private ``redis-server`` (free port, no persistence), three ``emachi serve --redis``
child processes (real processes, so that one can be SIGKILLed) with a small rendered briefing,
and Debian's ``haproxy`` in front of them (the configuration of docs/cluster.md: round robin, no
stickiness; ``tests/haproxy.py`` writes it). Then:

- ``--walkers`` avatars walk (an input with a new heading every 0.5 s, snapshots read and
  acknowledged). Each says hello through the balancer and follows a REDIRECT to the owner of its
  instance as the web client does (``clients/web/Connection.js``: at once, with the seat); when
  its socket drops it resumes with its token through the balancer with the web client's backoff
  (0.25 s, 0.5 s, 1 s, 2 s, 4 s ±50 %, a MOVED again in 50–250 ms; 0.2 s after a redirect that led nowhere, up to four times, saying
  which address did not answer: ``opts.gone``). ``--capacity`` (default:
  a third of the walkers) makes them fill three instances, which open on the emptiest processes.
- ``--viewers`` watch-only viewers of one briefing, through the balancer, in ``--viewer-procs``
  processes of their own (``bench/kernel_viewers.py``: plain sockets, one ``selectors`` loop per
  process), apart from this process, whose event loop the walkers keep busy (1,500 walkers
  decode some 30,000 snapshots a second).
- **Staff action → last viewer**: ``--actions`` staff actions (pause, resume, seek) POSTed through
  the balancer, so each lands on some process and reaches the others through Redis; for each,
  the lag from ``time.time()`` just before the POST to the last viewer (of any process) receiving
  the BRIEFING it causes, by the **kernel's receive timestamp** (``SO_TIMESTAMPNS``: when the frame
  reached the viewer's socket, which is what a viewer's device would notice); p50/p99 over
  actions (``staff_action.last_viewer_ms``, the headline; also the median and first viewer).
  Beside it, ``staff_action.handled_ms``: the same from when the viewer process's Python parsed
  the frame (kernel time plus that process's own backlog). ``--inline-viewers`` N adds N aiohttp
  viewers in this process, timed as the bench did before it took kernel timestamps (when this
  loop handled the frame, walkers' backlog included): ``staff_action.inline_ms``. The lags still
  include waiting for a core: servers, HAProxy and the load generator share the machine.
- **Routing cost**: ``--hellos`` fresh hellos sent straight to the processes in turn. A hello on a
  process that does not own the instance it belongs in is answered with REDIRECT and followed:
  ``redirected`` is the time from sending that first hello to WELCOME on the owner (second
  WebSocket handshake included); ``direct`` is hello → WELCOME on the owner itself. ``*_socket``
  figures also count the first handshake. Closed at once; their avatars wait out the resume
  window and a few new instances open (part of what is measured).
- **Failover**: ``--kills`` times, the process that owns the most walkers is SIGKILLed; for each
  of its walkers, the time from the kill to WELCOME (resumed) and whether the avatar id is the
  same; p50/p99/max and how many came back within ``--lease-ttl`` + 25 s. The killed process is
  then started again on its port (same data folder) before the next kill. Watch-only viewers of
  the killed process are not brought back (the staff action figures are taken before).

Every phase runs within ``--max-seconds`` (default 600) from the start: a phase still running
then is cut short, everything is stopped, and what was measured is written (``cut_short_in``
says where). Viewers that cannot connect in time are counted, not waited for; a staff action
waits at most 10 s for its last viewer.

Writes ``bench/results/cluster.json`` (or ``--out``) with the machine and its load average and
prints a summary. Measures; asserts nothing. The defaults run in about a minute and a half; the
issue's full size is ``--walkers 1500 --viewers 5000`` on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import msgpack

from bench.briefing_fanout import BID, SCRIPT, TOKEN, _free_port
from bench.client import Viewers, pct
from bench.crowd import RESULTS, machine
from bench.kernel_viewers import ViewerPool

__all__ = ["main", "hello_once", "say_hello", "Walkers", "Cluster"]

HELLO, INPUT, WELCOME, REDIRECT = 1, 2, 32, 47
MOVED = 4023
BACKOFF_S = (0.25, 0.5, 1.0, 2.0, 4.0)  # clients/web/Connection.js BACKOFF_MS, ±50 %
REDIRECT_RETRY_S = 0.2  # ... REDIRECT_RETRY_MS
MAX_REDIRECTS = 4
MAX_QUICK_MOVED = 4  # ... MAX_QUICK_MOVED
HELLO_TIMEOUT = 20.0
_CONNECT = aiohttp.ClientTimeout(
    total=None, connect=10.0, sock_connect=10.0
)  # a resume may wait a lease and two seconds for its instance's new owner


def _spread(xs: list[float]) -> dict[str, float | int | None]:
    return {"n": len(xs), "p50": pct(xs, 50), "p99": pct(xs, 99), "max": pct(xs, 100)}


class Refused(Exception):
    """The hello was not welcomed: the socket closed (its close code) or answered something else."""

    def __init__(self, why: str, code: int | None = None) -> None:
        super().__init__(why)
        self.code = code


class RedirectLost(Exception):
    """A REDIRECT led to a process that did not answer (it may have just died): ``url``."""

    def __init__(self, url: str, why: str = "") -> None:
        super().__init__(f"{url}{why}")
        self.url = url


@dataclass(slots=True)
class Hop:
    """One hello of a connection attempt: where, and when it was sent and answered (perf_counter)."""

    url: str
    opened: float
    sent: float
    answered: float
    kind: int


async def say_hello(
    http: aiohttp.ClientSession,
    url: str,
    name: str,
    resume: str | None = None,
    opts: dict[str, Any] | None = None,
) -> tuple[aiohttp.ClientWebSocketResponse, list[Any], list[Hop]]:
    """Hello at ``url``, following REDIRECTs at once with the seat, as the web client does.

    Returns the welcomed socket, the WELCOME fields and the hops. Raises :class:`Refused` when a
    hello is closed or answered with something else, :class:`RedirectLost` when the owner a
    REDIRECT named cannot be reached, and aiohttp/OS errors when ``url`` itself cannot."""
    opts = dict(opts or {})
    hops: list[Hop] = []
    for n in range(MAX_REDIRECTS + 1):
        opened = time.perf_counter()
        try:
            ws = await http.ws_connect(url, max_msg_size=2**20)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            if n:
                raise RedirectLost(url) from exc
            raise
        sent = time.perf_counter()
        await ws.send_bytes(msgpack.packb([HELLO, 1, name, resume, opts]))
        while True:
            msg = await ws.receive(timeout=HELLO_TIMEOUT)
            if msg.type != aiohttp.WSMsgType.BINARY:
                break
            head = msgpack.unpackb(msg.data)
            if head[0] in (WELCOME, REDIRECT):
                break
        if msg.type != aiohttp.WSMsgType.BINARY:
            await ws.close()
            if n:
                raise RedirectLost(url, f": closed {ws.close_code}")
            raise Refused(f"{url}: closed {ws.close_code} {msg.extra or ''}", ws.close_code)
        hops.append(Hop(url, opened, sent, time.perf_counter(), head[0]))
        if head[0] == WELCOME:
            return ws, head, hops
        # REDIRECT [47, url, seat, instance]: the server closes this one with MOVED
        asyncio.get_running_loop().create_task(ws.close())
        url, opts = head[1], {**opts, "seat": head[2]}
    raise Refused(f"more than {MAX_REDIRECTS} redirects")


async def hello_once(url: str, i: int) -> tuple[float, float | None]:
    """One fresh connection at ``url``: (first hello → its answer ms, first hello → WELCOME ms
    when it was redirected, else None)."""
    async with aiohttp.ClientSession() as http:
        ws, _, hops = await say_hello(http, url, f"h{i}")
        await ws.close()
    first = (hops[0].answered - hops[0].sent) * 1000.0
    return first, (hops[-1].answered - hops[0].sent) * 1000.0 if len(hops) > 1 else None


@dataclass(slots=True)
class Seat:
    """One walker: who it is to the cluster and when it was welcomed (monotonic seconds)."""

    i: int
    resume: str | None = None
    avatar_id: int = -1
    instance: str = ""
    url: str = ""
    seq: int = 0
    connected: bool = False
    welcomes: list[tuple[float, int]] = field(default_factory=list)
    drops: list[float] = field(default_factory=list)
    #: every hello attempt that failed: (monotonic time, why), for the failover timeline
    failed: list[tuple[float, str]] = field(default_factory=list)
    #: the hops of each welcomed attempt, as (monotonic time of its first hello, hops)
    attempts: list[tuple[float, list[Hop]]] = field(default_factory=list)


class Walkers:
    """Avatars that walk, each resuming with its token when its socket drops (see the module)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http: aiohttp.ClientSession | None = None
        self.seats: list[Seat] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.sockets: set[aiohttp.ClientWebSocketResponse] = set()
        self.frames = 0
        self.stopping = False
        self.failures: dict[str, int] = {}

    async def start(self, n: int, timeout: float = 600.0) -> None:
        """Start ``n`` walkers (32 hellos at a time) and wait until each was welcomed once."""
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=_CONNECT)
        sem = asyncio.Semaphore(32)
        self.seats = [Seat(i) for i in range(n)]
        self.tasks = [asyncio.create_task(self._life(s, sem)) for s in self.seats]
        end = time.monotonic() + timeout
        while not all(s.welcomes for s in self.seats) and time.monotonic() < end:
            await asyncio.sleep(0.1)

    async def _life(self, s: Seat, sem: asyncio.Semaphore | None) -> None:
        rng, attempt, lost, moved = random.Random(s.i), 0, 0, 0
        gone = ""  # as the web client: the owner a redirect named that did not answer
        assert self.http is not None
        while not self.stopping:
            opts, gone = ({"gone": gone} if gone else None), ""
            try:
                if sem is not None:
                    async with sem:
                        ws, welcome, hops = await say_hello(
                            self.http, self.url, f"w{s.i}", s.resume, opts
                        )
                    sem = None
                else:
                    ws, welcome, hops = await say_hello(
                        self.http, self.url, f"w{s.i}", s.resume, opts
                    )
            except RedirectLost as exc:
                # as the web client: back to the balancer soon, a few times, then the backoff
                self._failed("redirect lost", s)
                gone = exc.url
                lost += 1
                if lost <= MAX_REDIRECTS:
                    await asyncio.sleep(REDIRECT_RETRY_S)
                else:
                    await asyncio.sleep(BACKOFF_S[min(attempt, 4)] * rng.uniform(0.5, 1.5))
                    attempt += 1
                continue
            except Refused as exc:
                self._failed(f"refused {exc.code}", s)
                if exc.code == MOVED and moved < MAX_QUICK_MOVED:
                    # as the web client: again soon through the balancer, a few times
                    moved += 1
                    await asyncio.sleep(rng.uniform(0.05, 0.25))
                else:
                    await asyncio.sleep(BACKOFF_S[min(attempt, 4)] * rng.uniform(0.5, 1.5))
                    attempt += 1
                continue
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                status = getattr(exc, "status", None)
                self._failed(type(exc).__name__ + (f" {status}" if status else ""), s)
                await asyncio.sleep(BACKOFF_S[min(attempt, 4)] * rng.uniform(0.5, 1.5))
                attempt += 1
                continue
            attempt = lost = moved = 0
            # WELCOME [32, avatar id, instance, world, hash, server time, resume, tick, snap]
            s.avatar_id, s.instance, s.resume = welcome[1], welcome[2], welcome[6]
            s.url, s.connected = hops[-1].url, True
            s.welcomes.append((time.monotonic(), s.avatar_id))
            s.attempts.append((time.monotonic() - (time.perf_counter() - hops[0].sent), hops))
            self.sockets.add(ws)
            try:
                await self._walk(s, ws, rng)
            except (aiohttp.ClientError, OSError, ConnectionResetError):
                pass
            finally:
                self.sockets.discard(ws)
                s.connected = False
            if self.stopping:
                return
            s.drops.append(time.monotonic())
            code = ws.close_code
            if code == MOVED:
                await asyncio.sleep(0.05 + rng.random() * 0.2)
            else:
                await asyncio.sleep(BACKOFF_S[0] * rng.uniform(0.5, 1.5))
                attempt = 1

    def _failed(self, why: str, s: Seat) -> None:
        self.failures[why] = self.failures.get(why, 0) + 1
        s.failed.append((time.monotonic(), why))

    async def _walk(self, s: Seat, ws: aiohttp.ClientWebSocketResponse, rng: random.Random) -> None:
        tick, next_turn, frames = 0, 0.0, 0
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.BINARY:
                continue
            self.frames += 1
            frames += 1
            if frames % 10 == 0:  # decode a few: enough to acknowledge a recent tick
                with contextlib.suppress(Exception):
                    head = msgpack.unpackb(msg.data)
                    if isinstance(head[1], int):
                        tick = head[1]
            now = time.monotonic()
            if now >= next_turn:
                next_turn = now + 0.5
                s.seq += 1
                a = rng.uniform(-math.pi, math.pi)
                await ws.send_bytes(
                    msgpack.packb([INPUT, s.seq, tick, math.sin(a), math.cos(a), a])
                )

    async def close(self) -> None:
        self.stopping = True
        for ws in list(self.sockets):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 1.0)
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.http is not None:
            await self.http.close()


class Cluster:
    """A private redis-server, three ``emachi serve --redis`` children and haproxy, in ``root``."""

    def __init__(self, root: Path, args: argparse.Namespace) -> None:
        self.root, self.args = root, args
        self.redis: subprocess.Popen[bytes] | None = None
        self.haproxy: subprocess.Popen[bytes] | None = None
        self.serves: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []
        self.rport = _free_port()
        self.lport = _free_port()

    @property
    def lb(self) -> str:
        return f"http://127.0.0.1:{self.lport}"

    def http(self, k: int) -> str:
        return f"http://127.0.0.1:{self.ports[k]}"

    def ws(self, k: int) -> str:
        return f"ws://127.0.0.1:{self.ports[k]}/ws"

    async def start(self) -> None:
        from server.briefing.render import render_script
        from server.briefing.script import parse_script
        from tests.haproxy import config_text

        haproxy, redis = shutil.which("haproxy"), shutil.which("redis-server")
        if haproxy is None or redis is None:
            raise SystemExit(
                "bench.cluster needs haproxy and redis-server (scripts/install.sh --test)"
            )
        self.redis = subprocess.Popen(
            [redis, "--port", str(self.rport), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
            + ["no", "--dir", str(self.root), "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
        )
        rendered = self.root / "rendered"
        render_script(parse_script(SCRIPT, "cluster.yaml"), rendered)
        for k in range(3):
            shutil.copytree(rendered, self.root / f"p{k}")
            self.ports.append(_free_port())
            self.serves.append(self._serve(k))
        await self.ready()
        cfg = self.root / "haproxy.cfg"
        a = self.args
        maxconn = a.walkers + a.viewers + a.inline_viewers + a.hellos + 500
        cfg.write_text(
            config_text(self.lport, [("127.0.0.1", p) for p in self.ports], maxconn=maxconn)
        )
        hlog = (self.root / "haproxy.log").open("ab")  # its servers going down and up
        self.haproxy = subprocess.Popen(
            [haproxy, "-db", "-f", str(cfg)], stdout=hlog, stderr=subprocess.STDOUT
        )
        await _wait_http(self.lb, "haproxy", self.haproxy)
        await asyncio.sleep(2.5)  # every backend's health check has passed

    def _serve(self, k: int) -> subprocess.Popen[bytes]:
        a = self.args
        log = (self.root / f"p{k}.log").open("ab")
        return subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--port", str(self.ports[k])]
            + ["--data-dir", str(self.root / f"p{k}"), "--staff-token", TOKEN]
            + ["--max-per-address", "0", "--redis", f"redis://127.0.0.1:{self.rport}/0"]
            + ["--capacity", str(a.capacity), "--lease-ttl", str(a.lease_ttl)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    async def ready(self, timeout: float = 120.0) -> None:
        """Wait until every process answers /healthz and sees all three in the cluster."""
        for k, proc in enumerate(self.serves):
            await _wait_http(self.http(k), f"emachi serve on {self.ports[k]}", proc)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            hs = [await self.health(k) for k in range(3)]
            if all(h and h["cluster"]["processes"] == 3 for h in hs):
                return
            await asyncio.sleep(0.2)
        raise RuntimeError("the three processes did not see each other")

    async def health(self, k: int) -> dict[str, Any] | None:
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError, ValueError):
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as http,
                http.get(self.http(k) + "/healthz") as r,
            ):
                return dict(await r.json())
        return None

    async def restart(self, k: int) -> None:
        self.serves[k].wait()
        self.serves[k] = self._serve(k)
        await self.ready()
        await asyncio.sleep(2.5)  # haproxy's health check sees it up again

    def stop(self) -> None:
        procs = [self.haproxy, *self.serves, self.redis]
        for p in procs:
            if p is not None and p.poll() is None:
                p.terminate()
        for p in procs:
            if p is None:
                continue
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


async def _wait_http(url: str, what: str, proc: subprocess.Popen[bytes] | None = None) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        for _ in range(1200):
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {proc.returncode}")
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                async with http.get(url + "/healthz") as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{what} did not answer /healthz")


KERNEL_TIMING = (
    "each viewer's kernel receive timestamp (SO_TIMESTAMPNS) of the BRIEFING an action causes,"
    " minus time.time() just before the staff POST; viewers in processes of their own"
)
HANDLED_TIMING = (
    "the same from when the viewer process's Python parsed that frame (time.time()): the"
    " kernel figure plus the viewer process's own backlog"
)


INLINE_TIMING = (
    "aiohttp viewers in the walkers' own process (--inline-viewers), from when that process's"
    " event loop handled the frame: how this figure was taken before, load generator's backlog"
    " included"
)


async def action_lag(
    lb: str, viewers: ViewerPool, actions: int, inline: Viewers | None = None
) -> dict[str, Any]:
    """Staff actions through the balancer, timed to the first, median and last viewer: by the
    kernel's receive time (the headline) and by when the viewer process handled the frame; and
    the ``inline`` viewers, if any, as the bench timed them before."""
    t = await viewers.time_actions(lb, TOKEN, actions, wait=10.0, pause=0.3, inline=inline)

    def p(xs: list[float]) -> dict[str, float | None]:
        return {"p50": pct(xs, 50), "p99": pct(xs, 99)}

    return {
        "timing": KERNEL_TIMING,
        "viewer_processes": viewers.procs,
        "last_viewer_ms": _spread(t["last"]),
        "median_viewer_ms": p(t["median"]),
        "first_viewer_ms": p(t["first"]),
        "handled_ms": {
            "timing": HANDLED_TIMING,
            "last_viewer_ms": _spread(t["handled_last"]),
            "median_viewer_ms": p(t["handled_median"]),
            "first_viewer_ms": p(t["handled_first"]),
        },
        "inline_ms": {
            "timing": INLINE_TIMING,
            "viewers": len(inline.sockets),
            "last_viewer_ms": _spread(t["inline_last"]),
            "median_viewer_ms": p(t["inline_median"]),
            "first_viewer_ms": p(t["inline_first"]),
            "missed_frames": t["inline_missed"],
        }
        if inline is not None
        else None,
        # inside the process that took the POST: one encode and the writes to its own viewers
        "server_fanout_ms": p(t["server"]),
        "post_ms": _spread(t["post"]),  # the staff POST's round trip, through the balancer
        "missed_frames": t["missed"],
        "statuses": t["statuses"],
    }


async def routing(cl: Cluster, hellos: int) -> dict[str, Any]:
    """Fresh hellos straight to process 0, 1, 2, 0, …: redirected ones against direct ones."""
    direct, redirected, hop, direct_s, redirected_s = [], [], [], [], []
    failed: dict[str, int] = {}
    async with aiohttp.ClientSession(timeout=_CONNECT) as http:
        for i in range(hellos):
            try:
                ws, _, hops = await say_hello(http, cl.ws(i % 3), f"h{i}")
            except (Refused, RedirectLost, aiohttp.ClientError, OSError, TimeoutError) as exc:
                why = f"{type(exc).__name__}: {exc}"[:80]
                failed[why] = failed.get(why, 0) + 1
                continue
            await ws.close()
            total = (hops[-1].answered - hops[0].sent) * 1000.0
            with_socket = (hops[-1].answered - hops[0].opened) * 1000.0
            if len(hops) == 1:
                direct.append(total)
                direct_s.append(with_socket)
            else:
                redirected.append(total)
                redirected_s.append(with_socket)
                hop.append((hops[0].answered - hops[0].sent) * 1000.0)
            await asyncio.sleep(0.05)
    out: dict[str, Any] = {
        "direct_ms": _spread(direct),
        "redirected_ms": _spread(redirected),
        "redirect_answer_ms": _spread(hop),
        "direct_socket_ms": _spread(direct_s),
        "redirected_socket_ms": _spread(redirected_s),
        "failed": failed,
    }
    if direct and redirected:
        out["extra_ms_p50"] = round(pct(redirected, 50) - pct(direct, 50), 2)  # type: ignore[operator]
    return out


async def failover(cl: Cluster, walkers: Walkers, wait: float) -> dict[str, Any]:
    """SIGKILL the process owning the most walkers; time each of them back (WELCOME again)."""
    owner: dict[str, int] = {}
    for k in range(3):
        h = await cl.health(k)
        for inst in (h or {}).get("cluster", {}).get("leases", {}):
            owner[inst] = k
    counts = [0, 0, 0]
    for s in walkers.seats:
        if s.connected and s.instance in owner:
            counts[owner[s.instance]] += 1
    victim = max(range(3), key=lambda k: counts[k])
    mine = [s for s in walkers.seats if s.connected and owner.get(s.instance) == victim]
    before = {s.i: (s.avatar_id, len(s.welcomes)) for s in mine}
    where = {s.i: s.instance for s in mine}
    drops_before = sum(len(s.drops) for s in walkers.seats)
    killed, killed_wall = time.monotonic(), time.time()
    os.kill(cl.serves[victim].pid, signal.SIGKILL)
    end = killed + wait
    while time.monotonic() < end and not all(len(s.welcomes) > before[s.i][1] for s in mine):
        await asyncio.sleep(0.05)
    back, same, changed = [], 0, []
    # what the killed process's walkers met on the way back: failed hellos by kind and half
    # second after the kill (0.5 s bins), the first drop noticed, the hellos each needed
    bins: dict[str, dict[str, int]] = {}
    tries: list[int] = []
    noticed: list[float] = []
    for s in mine:
        after = [(t - killed, why) for t, why in s.failed if t >= killed]
        n = before[s.i][1]
        upto = s.welcomes[n][0] - killed if len(s.welcomes) > n else math.inf
        after = [(t, why) for t, why in after if t <= upto]
        tries.append(len(after) + 1)
        for t, why in after:
            b = f"{math.floor(t * 2) / 2:.1f}"
            bins.setdefault(b, {})[why] = bins.setdefault(b, {}).get(why, 0) + 1
        dropped = [t - killed for t in s.drops if t >= killed]
        if dropped:
            noticed.append(dropped[0])
    # the attempt that brought each one back: when its first hello was sent, how long the
    # first process held it before answering, how many hops
    sent_at, held, hops_n = [], [], []
    for s in mine:
        n = before[s.i][1]
        if len(s.attempts) > n:
            t0, hops = s.attempts[n]
            sent_at.append(t0 - killed)
            held.append(hops[0].answered - hops[0].sent)
            hops_n.append(float(len(hops)))
    for s in mine:
        n = before[s.i][1]
        if len(s.welcomes) > n:
            at, avatar = s.welcomes[n]
            back.append(at - killed)
            if avatar == before[s.i][0]:
                same += 1
            else:  # resumed as someone else: worth a look (first ten kept)
                changed.append([where[s.i], before[s.i][0], s.instance, avatar])
    return {
        "killed_process": victim,
        "instances": sorted(i for i, k in owner.items() if k == victim),
        "clients": len(mine),
        "back": len(back),
        "same_avatar": same,
        "back_s": _spread(back),
        "back_all_s": [round(x, 3) for x in back],
        "clients_by_instance": {
            i: list(where.values()).count(i) for i in sorted(set(where.values()))
        },
        "other_avatar": changed[:10],
        "walker_drops_before": drops_before,
        "killed_at_wall": round(killed_wall, 3),
        "drop_noticed_s": _spread(noticed),
        "hellos_to_come_back": _spread([float(x) for x in tries]),
        "failed_hellos_by_half_second": dict(sorted(bins.items(), key=lambda kv: float(kv[0]))),
        "back_by_half_second": _histogram(back),
        "last_attempt_sent_s": _spread(sent_at),
        "last_attempt_sent_by_half_second": _histogram(sent_at),
        "last_attempt_first_answer_s": _spread(held),
        "last_attempt_hops": _spread(hops_n),
    }


def _histogram(xs: list[float]) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in sorted(xs):
        b = f"{math.floor(x * 2) / 2:.1f}"
        out[b] = out.get(b, 0) + 1
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # thousands of sockets
    load_before = os.getloadavg()
    phases: dict[str, float] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.max_seconds
    per_process: list[dict[str, Any]] = []
    lag: dict[str, Any] | None = None
    route: dict[str, Any] | None = None
    kills: list[dict[str, Any]] = []
    walkers: Walkers | None = None
    viewers: ViewerPool | None = None
    inline: Viewers | None = None
    viewer_counters: list[dict[str, Any]] = []
    phase, cut = "start", None
    t = time.monotonic()

    def done(name: str) -> None:
        nonlocal t
        phases[name] = time.monotonic() - t
        t = time.monotonic()

    with tempfile.TemporaryDirectory(prefix="emachi-cluster-") as tmp:
        cl = Cluster(Path(tmp), args)
        try:
            # every phase within one budget: at any size the bench stops by itself
            async with asyncio.timeout_at(deadline):
                await cl.start()
                done("start_s")
                phase = "connect"
                ws_lb = cl.lb.replace("http", "ws") + "/ws"
                walkers = Walkers(ws_lb)
                # each crowd gets at most a third of the budget: whoever is not in by then is
                # counted (walkers_welcomed, viewers_connected) and the run goes on without them
                share = args.max_seconds / 3
                await walkers.start(args.walkers, timeout=min(share, deadline - loop.time()))
                viewers = ViewerPool(ws_lb, BID, procs=args.viewer_procs)
                await viewers.connect(
                    args.viewers, timeout=max(1.0, min(share, deadline - loop.time()))
                )
                if args.inline_viewers:
                    inline = Viewers(ws_lb, BID)
                    await inline.connect(
                        args.inline_viewers,
                        timeout=max(1.0, min(share / 4, deadline - loop.time())),
                    )
                done("connect_s")
                await asyncio.sleep(3.5)  # the directory's next beat counts them
                for k in range(3):
                    h = await cl.health(k) or {}
                    c = h.get("cluster", {})
                    members = {m["id"]: m for m in c.get("members", [])}
                    per_process.append(
                        {
                            "people": h.get("people"),
                            "watchers": members.get(c.get("process"), {}).get("watchers"),
                            "instances": sorted(c.get("leases", {})),
                        }
                    )
                t = time.monotonic()
                phase = "actions"
                print(f"  phase: {phase}", flush=True)  # a profiler started by hand waits for it
                lag = await action_lag(cl.lb, viewers, args.actions, inline)
                done("actions_s")
                phase = "hellos"
                print(f"  phase: {phase}", flush=True)
                route = await routing(cl, args.hellos)
                done("hellos_s")
                for n in range(args.kills):
                    phase = f"kill {n + 1}"
                    got = await failover(cl, walkers, args.lease_ttl + 25.0)
                    kills.append(got)
                    print(
                        f"  kill {n + 1}: process {got['killed_process']} with {got['clients']}"
                        f" walkers; {got['back']} back ({got['same_avatar']} same avatar),"
                        f" p50 {got['back_s']['p50']} s, max {got['back_s']['max']} s",
                        flush=True,
                    )
                    await cl.restart(got["killed_process"])
                    await asyncio.sleep(2.0)  # a seat write passes; the stragglers settle
                    done(f"kill{n + 1}_s")
        except TimeoutError:
            cut = phase
            print(f"  cut short by --max-seconds {args.max_seconds:g} in: {phase}", flush=True)
        finally:
            for part in (inline, viewers, walkers):
                if part is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(part.close(), 30.0)
            if viewers is not None:
                viewer_counters = viewers.stats
            cl.stop()
            if args.logs is not None:  # the processes' logs (the folder goes with the run)
                args.logs.mkdir(parents=True, exist_ok=True)
                for log in [*Path(tmp).glob("p*.log"), *Path(tmp).glob("haproxy.log")]:
                    shutil.copy(log, args.logs / log.name)
    backs = [k["back_s"]["max"] for k in kills if k["back_s"]["max"] is not None]
    every = [x for k in kills for x in k.get("back_all_s", [])]
    return {
        "bench": "cluster",
        "machine": machine(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "processes": 3,
        "walkers": args.walkers,
        "viewers": args.viewers,
        "viewers_connected": viewers.connected if viewers is not None else 0,
        "inline_viewers_connected": len(inline.sockets) if inline is not None else 0,
        "viewer_failures": viewers.failed if viewers is not None else {},
        "viewer_process_counters": viewer_counters,
        "walkers_welcomed": sum(1 for s in walkers.seats if s.welcomes) if walkers else 0,
        "capacity": args.capacity,
        "lease_ttl": args.lease_ttl,
        "actions": args.actions,
        "hellos": args.hellos,
        "max_seconds": args.max_seconds,
        "cut_short_in": cut,
        "per_process": per_process,
        "staff_action": lag,
        "routing": route,
        # kept from the first version of this file: the redirected hello's p50, or null
        "redirected_hello_ms": route["redirected_ms"]["p50"] if route else None,
        "failover": kills,
        "failover_all_s": _spread(every),
        "failover_worst_s": max(backs) if backs else None,
        "walker_frames": walkers.frames if walkers else 0,
        "walker_hello_failures": walkers.failures if walkers else {},
        "phases_s": {k: round(v, 1) for k, v in phases.items()},
        "nofile_limit": [soft, hard],
    }


def _summary(r: dict[str, Any]) -> str:
    def ms(d: dict[str, Any] | None, unit: str = "ms") -> str:
        if not d or not d.get("n", 1) or d.get("p50") is None:
            return "none"
        return f"p50 {d['p50']} {unit}, p99 {d['p99']} {unit}, max {d.get('max')} {unit}"

    sa, ro = r["staff_action"], r["routing"]
    lines = [
        f"cluster: 3 processes, {r['walkers_welcomed']}/{r['walkers']} walkers"
        f" (capacity {r['capacity']}), {r['viewers_connected']}/{r['viewers']} viewers,"
        f" load {r['load_average_before'][0]} → {r['load_average_after'][0]}",
        "  per process: "
        + "; ".join(
            f"{p['people']} people, {p['watchers']} viewers, {','.join(p['instances']) or '-'}"
            for p in r["per_process"]
        ),
    ]
    if sa is not None:
        ha = sa["handled_ms"]
        lines += [
            f"  staff action → last viewer, kernel receive time ({r['actions']} actions,"
            f" viewers in {sa['viewer_processes']} processes): {ms(sa['last_viewer_ms'])};"
            f" median viewer p50 {sa['median_viewer_ms']['p50']} ms; missed {sa['missed_frames']}",
            f"    the same when the viewer's Python handled it: {ms(ha['last_viewer_ms'])};"
            f" median viewer p50 {ha['median_viewer_ms']['p50']} ms",
            f"    server encode + writes (the process that took the POST):"
            f" p50 {sa['server_fanout_ms']['p50']} ms; POST round trip p50 {sa['post_ms']['p50']} ms",
        ]
        if sa["inline_ms"] is not None:
            il = sa["inline_ms"]
            lines.append(
                f"    {il['viewers']} viewers in the walkers' process, when its loop handled it"
                f" (the old way): {ms(il['last_viewer_ms'])}; median viewer p50"
                f" {il['median_viewer_ms']['p50']} ms; missed {il['missed_frames']}"
            )
    if ro is not None:
        lines += [
            f"  hello → WELCOME, direct ({ro['direct_ms']['n']}): {ms(ro['direct_ms'])}",
            f"  hello → WELCOME, redirected ({ro['redirected_ms']['n']}): {ms(ro['redirected_ms'])}"
            f" (REDIRECT itself {ro['redirect_answer_ms']['p50']} ms p50)",
        ]
    for n, k in enumerate(r["failover"], 1):
        lines.append(
            f"  failover {n}: SIGKILL of process {k['killed_process']} ({', '.join(k['instances'])});"
            f" {k['back']}/{k['clients']} back ({k['same_avatar']} same avatar): {ms(k['back_s'], 's')}"
        )
    if r["failover"]:
        lines.append(f"  failover, every walker of every kill: {ms(r['failover_all_s'], 's')}")
    if ro is not None and ro["failed"]:
        lines.append(f"  hellos not welcomed: {ro['failed']}")
    if r["walker_hello_failures"]:
        lines.append(
            f"  walkers' hellos that failed and were retried: {r['walker_hello_failures']}"
        )
    if r["cut_short_in"]:
        lines.append(f"  CUT SHORT by --max-seconds in: {r['cut_short_in']}")
    lines.append(f"  phases: {r['phases_s']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.cluster",
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--walkers", type=int, default=60, help="walking avatars, through the balancer")
    ap.add_argument("--viewers", type=int, default=150, help="watch-only viewers of one briefing")
    ap.add_argument(
        "--viewer-procs",
        type=int,
        default=2,
        help="processes the viewers run in (apart from the walkers), split evenly",
    )
    ap.add_argument(
        "--inline-viewers",
        type=int,
        default=0,
        help="more viewers (aiohttp) in the walkers' own process, timed as before this bench"
        " used kernel timestamps: when that loop handled the frame (0: none)",
    )
    ap.add_argument(
        "--capacity",
        type=int,
        default=0,
        help="avatars per instance (emachi serve --capacity); 0: a third of --walkers, "
        "so that they fill three instances",
    )
    ap.add_argument(
        "--actions", type=int, default=10, help="staff actions timed to the last viewer"
    )
    ap.add_argument("--hellos", type=int, default=50, help="fresh hellos for the routing cost")
    ap.add_argument("--kills", type=int, default=2, help="SIGKILLs of the busiest owner (0: none)")
    ap.add_argument("--lease-ttl", type=float, default=2.5, help="emachi serve --lease-ttl (s)")
    ap.add_argument(
        "--max-seconds",
        type=float,
        default=600.0,
        help="the whole run, start to stop: a phase still running then is cut short "
        "(what was measured is written)",
    )
    ap.add_argument(
        "--logs", type=Path, default=None, help="copy the processes' logs to this folder"
    )
    ap.add_argument("--out", type=Path, default=RESULTS / "cluster.json", help="where to write")
    args = ap.parse_args(argv)
    if args.viewer_procs < 1:
        ap.error("--viewer-procs must be at least 1")
    if args.capacity <= 0:
        args.capacity = max(1, math.ceil(args.walkers / 3))
    result = asyncio.run(run(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(_summary(result))
    print(f"  written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
