"""Three processes behind HAProxy: a staff action to the last viewer across processes, and hellos.

    python -m bench.cluster [--walkers 60] [--viewers 150] [--actions 10] [--hellos 30]

Starts a private ``redis-server`` (free port, no persistence), three ``emachi serve --redis``
child processes with a small rendered briefing, and Debian's ``haproxy`` in front of them (the
configuration of docs/cluster.md: round robin, no stickiness; ``tests/haproxy.py`` writes it).
Then, through the balancer only:

- ``--walkers`` avatars walk (an input with a new heading every 0.5 s, snapshots read and
  acknowledged), spread by round robin over the processes and their instances;
- ``--viewers`` watch-only viewers of one briefing, spread the same way;
- ``--actions`` staff actions (pause, resume, seek) POSTed through the balancer, so each lands on
  some process and reaches the others through Redis: for each, the lag from just before the POST
  to the last viewer (of any process) receiving the BRIEFING it causes; p50/p99 over actions;
- ``--hellos`` fresh connections: hello → WELCOME through the balancer (p50/p99). When the server
  answers a hello with a redirect to the owner of the instance (issue 11's routing, not on main
  when this was written), :func:`hello_once` is the hook to follow it and time the second hop
  (``redirected`` in the result stays null until then).

Writes ``bench/results/cluster.json`` with the machine and its load average. Measures; asserts
nothing. The defaults run in about a minute; the issue's full size is ``--walkers 1500
--viewers 5000`` on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import msgpack

from bench.briefing_fanout import BID, SCRIPT, TOKEN, Viewers, _free_port
from bench.crowd import RESULTS, machine

__all__ = ["main", "hello_once"]

HELLO, INPUT, ACK, WELCOME = 1, 2, 3, 32
_SERVING = re.compile(r"serving \S+ on http://([\d.]+):(\d+)/")


def _pct(xs: list[float], p: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))], 2)


async def _wait_http(url: str, what: str, proc: subprocess.Popen[bytes] | None = None) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        for _ in range(600):
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {proc.returncode}")
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                async with http.get(url + "/healthz") as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{what} did not answer /healthz")


class Walkers:
    """Avatars that walk: a new heading every 0.5 s, snapshots read and now and then acknowledged."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http: aiohttp.ClientSession | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.frames = 0

    async def start(self, n: int) -> None:
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        sem = asyncio.Semaphore(32)

        async def one(i: int) -> None:
            async with sem:
                ws = await self.http.ws_connect(self.url, max_msg_size=2**20)  # type: ignore[union-attr]
                await ws.send_bytes(msgpack.packb([HELLO, 1, f"w{i}", None, {}]))
            self.tasks.append(asyncio.create_task(self._walk(ws)))

        await asyncio.gather(*(one(i) for i in range(n)))

    async def _walk(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        seq, tick, rng = 0, 0, random.Random()
        next_turn = 0.0
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.BINARY:
                continue
            self.frames += 1
            if self.frames % 10 == 0:  # decode a few: enough to acknowledge a recent tick
                with contextlib.suppress(Exception):
                    head = msgpack.unpackb(msg.data)
                    if head[0] != WELCOME and isinstance(head[1], int):
                        tick = head[1]
            now = time.monotonic()
            if now >= next_turn:
                next_turn = now + 0.5
                seq += 1
                a = rng.uniform(-math.pi, math.pi)
                await ws.send_bytes(msgpack.packb([INPUT, seq, tick, math.sin(a), math.cos(a), a]))

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        if self.http is not None:
            await self.http.close()


async def hello_once(url: str, i: int) -> tuple[float, float | None]:
    """One fresh connection: (hello → WELCOME ms, redirected second hop ms or None).

    The hook for routing (issue 11): when the first answer is a redirect to the owner process
    rather than WELCOME, connect there with the seat reservation and time that too."""
    async with aiohttp.ClientSession() as http:
        t0 = time.perf_counter()
        async with http.ws_connect(url, max_msg_size=2**20) as ws:
            await ws.send_bytes(msgpack.packb([HELLO, 1, f"h{i}", None, {}]))
            msg = await ws.receive(timeout=10)
            first = (time.perf_counter() - t0) * 1000.0
            kind = msgpack.unpackb(msg.data)[0] if msg.type == aiohttp.WSMsgType.BINARY else None
            if kind != WELCOME:
                return first, None  # a redirect: follow it here once the protocol has one
            return first, None


async def action_lag(lb: str, viewers: Viewers, actions: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    lasts, medians, missing, landed = [], [], 0, []
    plan = [("pause", None), ("resume", None), ("seek", {"segment": 1}), ("seek", {"segment": 0})]
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{lb}/staff/briefings/{BID}/start", headers=headers) as r:
            if r.status != 200:
                raise RuntimeError(f"start: {r.status} {await r.text()}")
        await asyncio.sleep(1.0)
        for k in range(actions):
            action, body = plan[k % len(plan)]
            viewers.received = [0.0] * len(viewers.sockets)
            viewers.armed = True
            t0 = time.perf_counter()
            async with http.post(
                f"{lb}/staff/briefings/{BID}/{action}", json=body, headers=headers
            ) as r:
                landed.append(r.status)
            deadline = time.perf_counter() + 30.0
            while not all(viewers.received) and time.perf_counter() < deadline:
                await asyncio.sleep(0.002)
            viewers.armed = False
            got = sorted((t - t0) * 1000.0 for t in viewers.received if t)
            missing += len(viewers.sockets) - len(got)
            if got:
                lasts.append(got[-1])
                medians.append(got[len(got) // 2])
            await asyncio.sleep(0.3)
    return {
        "last_viewer_ms": {"p50": _pct(lasts, 50), "p99": _pct(lasts, 99), "max": _pct(lasts, 100)},
        "median_viewer_ms": {"p50": _pct(medians, 50), "p99": _pct(medians, 99)},
        "missed_frames": missing,
        "statuses": sorted(set(landed)),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from server.briefing.render import render_script
    from server.briefing.script import parse_script
    from tests.haproxy import config_text

    haproxy, redis = shutil.which("haproxy"), shutil.which("redis-server")
    if haproxy is None or redis is None:
        raise SystemExit("bench.cluster needs haproxy and redis-server (scripts/install.sh --test)")
    procs: list[subprocess.Popen[bytes]] = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="emachi-cluster-") as tmp:
        root = Path(tmp)
        rport = _free_port()
        procs.append(
            subprocess.Popen(
                [
                    redis,
                    "--port",
                    str(rport),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    tmp,
                    "--loglevel",
                    "warning",
                ],
                stdout=subprocess.DEVNULL,
            )
        )
        try:
            rendered = root / "rendered"
            render_script(parse_script(SCRIPT, "cluster.yaml"), rendered)
            ports = []
            for i in range(3):
                data = root / f"p{i}"
                shutil.copytree(rendered, data)
                port = _free_port()
                ports.append(port)
                log = (root / f"p{i}.log").open("wb")
                procs.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "server.cli",
                            "serve",
                            "--port",
                            str(port),
                            "--data-dir",
                            str(data),
                            "--staff-token",
                            TOKEN,
                            "--max-per-address",
                            "0",
                            "--redis",
                            f"redis://127.0.0.1:{rport}/0",
                        ],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
            for port, proc in zip(ports, procs[1:], strict=True):
                await _wait_http(f"http://127.0.0.1:{port}", f"emachi serve on {port}", proc)
            lport = _free_port()
            cfg = root / "haproxy.cfg"
            cfg.write_text(config_text(lport, [("127.0.0.1", p) for p in ports], maxconn=4000))
            procs.append(
                subprocess.Popen(
                    [haproxy, "-db", "-f", str(cfg)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            lb = f"http://127.0.0.1:{lport}"
            await _wait_http(lb, "haproxy", procs[-1])
            await asyncio.sleep(2.5)  # every backend's health check has passed

            walkers = Walkers(lb.replace("http", "ws") + "/ws")
            await walkers.start(args.walkers)
            viewers = Viewers(lb.replace("http", "ws") + "/ws")
            await viewers.connect(args.viewers)
            await asyncio.sleep(3.5)  # the directory's next beat counts them
            async with aiohttp.ClientSession() as http:
                per_process = []
                for port in ports:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                        h = await r.json()
                        me = h["cluster"]["process"]
                        members = {m["id"]: m for m in h["cluster"]["members"]}
                        per_process.append(
                            {
                                "people": h["people"],
                                "watchers": members.get(me, {}).get("watchers"),
                            }
                        )
            lag = await action_lag(lb, viewers, args.actions)
            hellos = [
                await hello_once(lb.replace("http", "ws") + "/ws", i) for i in range(args.hellos)
            ]
            await viewers.close()
            await walkers.close()
            firsts = [h[0] for h in hellos]
            return {
                "bench": "cluster",
                "machine": machine(),
                "load_average_before": [round(x, 2) for x in load_before],
                "load_average_after": [round(x, 2) for x in os.getloadavg()],
                "processes": 3,
                "walkers": args.walkers,
                "viewers": args.viewers,
                "actions": args.actions,
                "per_process": per_process,
                "staff_action": lag,
                "hello_to_welcome_ms": {"p50": _pct(firsts, 50), "p99": _pct(firsts, 99)},
                # issue 11 routing: null until a hello can be redirected to the owner process
                "redirected_hello_ms": None,
            }
        finally:
            for p in reversed(procs):
                p.terminate()
            for p in procs:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--walkers", type=int, default=60)
    ap.add_argument("--viewers", type=int, default=150)
    ap.add_argument("--actions", type=int, default=10)
    ap.add_argument("--hellos", type=int, default=30)
    args = ap.parse_args(argv)
    result = asyncio.run(run(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cluster.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result["staff_action"]), flush=True)
    print(f"wrote {RESULTS / 'cluster.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
