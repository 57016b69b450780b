"""Fan-out of a briefing to watch-only viewers: the lag from a staff action to the last viewer.

    python -m bench.briefing_fanout [--viewers 100,500,1000,2000,5000] [--actions 20]

Starts one server process (a child: ``python -m bench.briefing_fanout --serve``) with a small
rendered briefing, connects N watch-only viewers (hello in "watch" mode + BRIEFING_JOIN) from
this process, and then, ``--actions`` times, POSTs a staff action (pause / resume / seek in turn)
and notes when each viewer receives the BRIEFING it causes. For every action: the lag to the
first, the median and the last viewer (ms, measured from just before the POST). Reports p50/p99
over actions. The viewers' reading side runs in this one process, so the figures include its
own cost of reading N sockets; both processes share the machine. Writes
``bench/results/briefing_fanout.json``. Measures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.client import Viewers, pct
from bench.crowd import RESULTS, machine

__all__ = ["main"]

TOKEN = "bench-staff-token"
BID = "fanout"
SCRIPT = f"""\
format: emachi-briefing/1
id: {BID}
title: Fan-out bench
date: 2024-01-02
cast:
  - {{avatar: clerk, role: staff, name: Bench, voice: ja-openjtalk, speed: 1.0}}
segments:
  - {{speaker: clerk, slide: {{title: one, bullets: [a]}}, narration: 一つ目の説明です。, pause_after: 30}}
  - {{speaker: clerk, slide: {{title: two, bullets: [b]}}, narration: 二つ目の説明です。, pause_after: 30}}
  - {{speaker: clerk, slide: {{title: three, bullets: [c]}}, narration: 三つ目の説明です。, pause_after: 30}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(port: int, data: Path, capacity: int) -> None:
    """The child: one emachi server with briefings mounted."""
    from aiohttp import web

    from server import briefing, features
    from server.app import create_app
    from server.config import Config

    if briefing.setup not in features.SETUPS:
        features.SETUPS.append(briefing.setup)
    # every bench client comes from 127.0.0.1: no per-address limit
    config = Config(
        port=port, data_dir=data, staff_token=TOKEN, capacity=capacity, max_per_address=0
    )
    web.run_app(
        create_app(config),
        host="127.0.0.1",
        port=port,
        print=None,
        access_log=None,
        backlog=4096,
    )


async def measure(base: str, n: int, actions: int) -> dict[str, Any]:
    viewers = Viewers(base.replace("http", "ws") + "/ws", BID)
    t_conn = time.perf_counter()
    await viewers.connect(n)
    connect_s = time.perf_counter() - t_conn
    try:
        t = await viewers.time_actions(base, TOKEN, actions, wait=30.0)
    finally:
        await viewers.close()
    lasts, medians, firsts, server_ms = t["last"], t["median"], t["first"], t["server"]
    return {
        "viewers": n,
        "connected": len(viewers.sockets),
        "actions": actions,
        "connect_all_s": round(connect_s, 2),
        "last_viewer_ms": {"p50": pct(lasts, 50), "p99": pct(lasts, 99), "max": pct(lasts, 100)},
        "median_viewer_ms": {"p50": pct(medians, 50), "p99": pct(medians, 99)},
        "first_viewer_ms": {"p50": pct(firsts, 50), "p99": pct(firsts, 99)},
        # inside the server: one encode and the synchronous writes to every viewer
        "server_encode_and_write_ms": {"p50": pct(server_ms, 50), "p99": pct(server_ms, 99)},
        "missed_frames": t["missed"],
        "mean_last_viewer_ms": round(statistics.fmean(lasts), 2) if lasts else None,
        # the machine is shared: a high load average means these lags include waiting for a core
        "load_average_1m_after": round(os.getloadavg()[0], 2),
    }


async def run(counts: list[int], actions: int) -> list[dict[str, Any]]:
    from server.briefing.render import render_script
    from server.briefing.script import parse_script

    out = []
    with tempfile.TemporaryDirectory(prefix="emachi-fanout-") as tmp:
        data = Path(tmp)
        render_script(parse_script(SCRIPT, "fanout.yaml"), data)
        for n in counts:
            port = _free_port()
            child = subprocess.Popen(
                [sys.executable, "-m", "bench.briefing_fanout", "--serve", str(port), str(data)],
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            try:
                base = f"http://127.0.0.1:{port}"
                async with aiohttp.ClientSession() as http:
                    for _ in range(200):
                        if child.poll() is not None:
                            raise RuntimeError(f"the server exited with {child.returncode}")
                        with contextlib.suppress(aiohttp.ClientError):
                            async with http.get(base + "/healthz") as r:
                                if r.status == 200:
                                    break
                        await asyncio.sleep(0.1)
                result = await measure(base, n, actions)
                print(json.dumps(result), flush=True)
                out.append(result)
                _write(out)
            finally:
                child.terminate()
                child.wait(10)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--viewers", default="100,500,1000,2000,5000")
    ap.add_argument("--actions", type=int, default=20)
    ap.add_argument("--serve", nargs=2, metavar=("PORT", "DATA"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        serve(int(args.serve[0]), Path(args.serve[1]), capacity=500)
        return 0
    counts = [int(x) for x in args.viewers.split(",")]
    asyncio.run(run(counts, args.actions))
    print(f"wrote {RESULTS / 'briefing_fanout.json'}")
    return 0


def _write(results: list[dict[str, Any]]) -> None:
    """Write what has been measured so far (a long run that is cut short keeps its results)."""
    doc = {"bench": "briefing_fanout", "machine": machine(), "results": results}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "briefing_fanout.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


if __name__ == "__main__":
    raise SystemExit(main())
