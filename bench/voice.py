"""Bench of the audibility selection: what one 10 Hz voice update costs the server.

    python -m bench.voice [--avatars N] [--talking F] [--updates U]

2,000 avatars (by default) spread over both floors of the Machida hall, 15 % of them talking,
walking a little between updates (so the hysteresis has a previous set to keep). Each update
times, separately:

- ``zones``: the zone key of every avatar (``ZoneTable.locate``, the raster look-up);
- ``select``: ``audibility.audible`` (gains, then each listener's K loudest with hysteresis);
- ``changes``: ``audibility.changes`` (who must be told what) and the AUDIO_SUBS bytes of
  every listener told (``server.voice.relay.encode_subs``).

Times are CPU time of this process (``time.process_time``), so that other load on a shared
machine blurs them less than wall-clock time would. Writes ``bench/results/voice-select.json``
with the machine and the load average before and after. Measures; asserts nothing. Target:
select ≤ 2 ms per update.

**The relay under a walking crowd** (``--relay``)::

    python -m bench.voice --relay --walkers 1000 --talkers 150 --seconds 30

starts ``emachi serve --capacity W`` on a free loopback port (one instance for everyone) and runs
W real WebSocket clients in ``--procs`` processes that walk the hall as :mod:`bench.crowd`'s do
(:class:`bench.client.Walker`, own avatar tracked through the snapshots, inputs and acks). T of
them (spread evenly over the clients) also talk all the time: a ``VOICE`` frame of 60 bytes
(20 ms of Opus at 24 kbit/s) every 20 ms, 50 a second, on a steady schedule (a sender whose
event loop fell more than 100 ms behind skips the frames it missed, as a capture worklet's
frames would be lost, rather than bursting past the server's 60 a second). Every client reads
everything the server sends. Measured over the window, after the ramp and a warm-up:

- server CPU (``/proc``, % of one core) and tick p50/p99/max (``/metrics`` histogram);
- from the server's ``emachi_voice_*`` counters: frames in and forwarded per second, batches
  per second, and every drop by cause (late, slow listener, rate, ...);
- relay latency, sender → listener on loopback: each payload starts with the sender's
  ``time.monotonic()`` (one clock for every process of the machine), and ``--probes`` listeners
  (spread over the clients) decode every ``VOICE_FRAME`` they get and take arrival − stamp per
  frame. It covers the server's receive, its hold until the next 20 ms flush (0-20 ms, about
  10 on average) and the write, plus the load generator's own event-loop lag (reported too);
- bytes down per listener for voice: each probe's ``VOICE_FRAME`` bytes (with WebSocket headers)
  per second, grouped by how many distinct voices it got that second; the figure for 8 voices is
  the one the issue asks.

Writes ``bench/results/voice-relay-W.json`` and prints a summary. Bounded (at most 2,000 clients
and 300 s), stops by itself, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import shlex
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
import numpy as np

from bench.client import OwnTrack, Walker, Waypoints, close_at, cpu_in_window, ws_frame_bytes
from bench.crowd import (
    RESULTS,
    _cpu_seconds,
    _get,
    _MetricsPoller,
    _Server,
    _tick_figures,
    machine,
)
from server.protocol.codes import PROTOCOL_VERSION, MsgType
from server.protocol.messages import Ack, Hello, Input, Voice, Welcome, decode
from server.voice.relay import encode_subs
from world import load_world
from world.audibility import Listeners, Selection, Speakers, ZoneTable, audible, changes
from world.model import World

__all__ = ["main"]

WORLD = Path(__file__).resolve().parent.parent / "worlds" / "machida-city-hall"


def _figures(samples: list[float]) -> dict[str, float]:
    a = np.array(samples) * 1e3
    return {
        "p50_ms": round(float(np.percentile(a, 50)), 3),
        "p99_ms": round(float(np.percentile(a, 99)), 3),
        "best_ms": round(float(a.min()), 3),
    }


def run(world: World, avatars: int, talking: float, updates: int, seed: int = 1) -> dict[str, Any]:
    """Time ``updates`` updates; returns the figures."""
    rng = np.random.default_rng(seed)
    table = ZoneTable.from_world(world)
    floor = rng.integers(0, len(world.floors), avatars)
    pos = np.stack([rng.uniform(0.5, 79.5, avatars), rng.uniform(0.5, 49.5, avatars)], 1)
    talk = rng.random(avatars) < talking
    ids = np.arange(avatars)
    told = Selection.empty(avatars)
    t_zone: list[float] = []
    t_sel: list[float] = []
    t_chg: list[float] = []
    told_rows = subs = 0
    for _ in range(updates):
        pos = np.clip(pos + rng.normal(0, 0.12, pos.shape), 0.5, 79.5)  # 100 ms of walking
        pos[:, 1] = np.clip(pos[:, 1], 0.5, 49.5)
        # some stop talking, as many others start: the share stays about the same
        r = rng.random(avatars)
        talk = np.where(talk, r >= 0.02, r < 0.02 * talking / (1.0 - talking))
        t0 = time.process_time()
        key = table.locate(floor, pos)
        t1 = time.process_time()
        sel = audible(
            table,
            Listeners.of(ids, pos, key),
            Speakers.of(ids[talk], pos[talk], key[talk]),
            told.ids,
        )
        t2 = time.process_time()
        out, told = changes(told, sel)
        encode_subs(out)
        t3 = time.process_time()
        t_zone.append(t1 - t0)
        t_sel.append(t2 - t1)
        t_chg.append(t3 - t2)
        told_rows += len(out)
        subs += int((sel.ids >= 0).sum())
    return {
        "avatars": avatars,
        "talking": int(talk.sum()),
        "updates": updates,
        "zones": _figures(t_zone[1:]),
        "select": _figures(t_sel[1:]),
        "changes": _figures(t_chg[1:]),
        "clock": "process_time",
        "listeners_told_per_update": round(told_rows / updates, 1),
        "subscriptions_per_listener": round(subs / updates / avatars, 2),
    }


# -- the relay under a walking crowd ------------------------------------------------------------

MAX_WALKERS = 2000
MAX_RELAY_SECONDS = 300
FRAME_S = 0.02  # one VOICE frame per 20 ms, 50 a second
OPUS_BYTES = 60  # 20 ms of Opus at 24 kbit/s
SKIP_AFTER = 0.1  # a sender this late skips the frames it missed instead of bursting them
CONTROL_EVERY = 0.1
ACK_EVERY = 0.1
_STAMP = struct.Struct("<dI")  # the sender's time.monotonic() and index, then padding
_SNAPSHOT = int(MsgType.SNAPSHOT)
_WELCOME = int(MsgType.WELCOME)
_VF_HEAD = bytes((0x92, int(MsgType.VOICE_FRAME)))  # [VOICE_FRAME, frames], as the relay packs


@dataclass(slots=True)
class RelayStats:
    """What one process's clients did and saw inside the measuring window."""

    clients: int = 0
    talkers: int = 0
    probes: int = 0
    connected: int = 0
    welcomed: int = 0
    failed: int = 0
    frames_sent: int = 0  # VOICE frames the talkers sent
    frames_skipped: int = 0  # frames a late sender skipped (the load generator's own loss)
    voice_msgs: int = 0  # VOICE_FRAME messages received, all clients
    voice_bytes: int = 0  # their bytes with WebSocket headers
    voice_frames_probed: int = 0  # frames inside the probes' VOICE_FRAME messages
    other_bytes: int = 0  # everything else down (snapshots, AUDIO_SUBS, ...)
    client_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # s, sender stamp → probe arrival
    by_voices: dict[str, list[float]] = field(default_factory=dict)  # n → [seconds, bytes]
    closes: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    cpu_seconds: float = 0.0
    loop_lag: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


def _spread(index: int, share: int, total: int) -> bool:
    """Whether client ``index`` of ``total`` is one of ``share`` chosen evenly among them."""
    return (index + 1) * share // total != index * share // total


async def _talk(
    ws: aiohttp.ClientWebSocketResponse,
    index: int,
    window: tuple[float, float],
    stop_at: float,
    stats: RelayStats,
) -> None:
    """Send a VOICE frame every 20 ms until ``stop_at``, stamped with the time of sending."""
    loop = asyncio.get_running_loop()
    pad = bytes(OPUS_BYTES - _STAMP.size)
    seq = 0
    due = loop.time() + random.random() * FRAME_S  # browsers' frames are not in step
    while not ws.closed:
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -SKIP_AFTER:
            missed = int(-delay / FRAME_S)
            due += missed * FRAME_S
            seq += missed
            if window[0] <= due < window[1]:
                stats.frames_skipped += missed
        t = loop.time()
        if t >= stop_at or ws.closed:
            return
        seq += 1
        frame = Voice(seq, True, False, _STAMP.pack(time.monotonic(), index) + pad).encode()
        await ws.send_bytes(frame)
        stats.frames_sent += window[0] <= t < window[1]
        due += FRAME_S


async def _relay_client(
    http: aiohttp.ClientSession,
    url: str,
    index: int,
    talker: bool,
    probe: bool,
    waypoints: Waypoints,
    window: tuple[float, float],
    stop_at: float,
    stats: RelayStats,
    seed: int,
) -> None:
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    now = loop.time
    t0, t1 = window
    try:
        ws = await http.ws_connect(url, autoping=True, compress=0, max_msg_size=1 << 20)
    except (aiohttp.ClientError, OSError):
        stats.failed += 1
        return
    stats.connected += 1
    closer = asyncio.create_task(close_at(ws, stop_at))
    talk: asyncio.Task[None] | None = None
    joined: float | None = None
    # a probe's current second: its start, the voices heard in it and their bytes
    sec_start, sec_voices, sec_bytes = 0.0, set(), 0
    try:
        await ws.send_bytes(Hello(PROTOCOL_VERSION, f"voice{index}", None, {}).encode())
        walker = Walker(waypoints, rng)
        own: OwnTrack | None = None
        seq = newest = 0
        last_ack = last_control = 0.0
        unpackb = msgpack.unpackb
        monotonic = time.monotonic
        while True:
            msg = await ws.receive()
            if msg.type != aiohttp.WSMsgType.BINARY:
                break
            data: bytes = msg.data
            t = now()
            inside = t0 <= t < t1
            if inside and joined is None:
                joined = t
            if data[:2] == _VF_HEAD:
                size = ws_frame_bytes(len(data))
                if inside:
                    stats.voice_msgs += 1
                    stats.voice_bytes += size
                if probe:
                    arrived = monotonic()
                    frames = unpackb(data)[1]
                    if t - sec_start >= 1.0:
                        if t0 <= sec_start and sec_start + 1.0 <= t1:
                            n = str(len(sec_voices))
                            row = stats.by_voices.setdefault(n, [0.0, 0.0])
                            row[0] += 1.0
                            row[1] += sec_bytes
                        sec_start, sec_voices, sec_bytes = t, set(), 0
                    sec_bytes += size
                    for speaker, _seq, payload in frames:
                        sec_voices.add(speaker)
                        if inside:
                            stats.latencies.append(arrived - _STAMP.unpack_from(payload)[0])
                    if inside:
                        stats.voice_frames_probed += len(frames)
                continue
            if inside:
                stats.other_bytes += ws_frame_bytes(len(data))
            items = unpackb(data)
            if items[0] == _SNAPSHOT and own is not None:
                tick, base_tick = items[1], items[2]
                full, move, turn_move, turn, gone = items[5:10]
                rec = own.apply(tick, base_tick, full, move, turn_move, turn, gone)
                newest = tick
                intent = None
                if rec is not None and t - last_control >= CONTROL_EVERY:
                    last_control = t
                    intent = walker.control(rec[0], rec[2] / 100.0, rec[3] / 100.0, t)
                if ws.closed:
                    break
                if intent is not None:
                    seq += 1
                    await ws.send_bytes(Input(seq, newest, *intent).encode())
                    last_ack = t
                elif t - last_ack >= ACK_EVERY - 0.02:
                    await ws.send_bytes(Ack(newest).encode())
                    last_ack = t
            elif items[0] == _WELCOME:
                w = decode(data)
                assert isinstance(w, Welcome)
                own = OwnTrack(w.avatar_id)
                stats.welcomed += 1
                if talker and talk is None:
                    talk = asyncio.create_task(_talk(ws, index, window, stop_at, stats))
        if joined is not None:
            stats.client_seconds += min(now(), t1) - joined
    finally:
        closer.cancel()
        if talk is not None:
            talk.cancel()
        if not ws.closed:
            await ws.close()
        if ws.close_code is not None and ws.close_code != 1000:
            key = str(ws.close_code)
            stats.closes[key] = stats.closes.get(key, 0) + 1


async def run_relay_clients(
    url: str,
    world: dict[str, Any],
    first: int,
    count: int,
    walkers: int,
    talkers: int,
    probes: int,
    ramp: float,
    measure_from: float,
    measure_for: float,
    seed: int,
) -> RelayStats:
    """Clients ``first`` .. ``first + count - 1`` of ``walkers``; returns what they saw."""
    loop = asyncio.get_running_loop()
    start = loop.time() + (measure_from - time.time())
    window = (start, start + measure_for)
    stop_at = window[1] + 0.5
    waypoints = Waypoints(world)
    stats = RelayStats(clients=count)
    connector = aiohttp.TCPConnector(limit=0, force_close=True)

    async def delayed(delay: float, index: int, talker: bool, probe: bool) -> None:
        await asyncio.sleep(delay)
        try:
            await _relay_client(
                http, url, index, talker, probe, waypoints, window, stop_at, stats, seed + index
            )
        except (aiohttp.ClientError, ConnectionError) as exc:
            key = type(exc).__name__
            stats.errors[key] = stats.errors.get(key, 0) + 1

    async with aiohttp.ClientSession(connector=connector) as http:
        tasks = []
        for k in range(count):
            i = first + k
            talker = _spread(i, talkers, walkers)
            probe = _spread((i + walkers // 2) % walkers, probes, walkers)  # not the same ones
            stats.talkers += talker
            stats.probes += probe
            tasks.append(asyncio.create_task(delayed(ramp * i / walkers, i, talker, probe)))
        tasks.append(asyncio.create_task(cpu_in_window(window, stats)))
        await asyncio.wait(tasks, timeout=stop_at - loop.time() + 10.0)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return stats


def _relay_worker(kwargs: dict[str, Any], out: Any) -> None:
    out.put(asyncio.run(run_relay_clients(**kwargs)).to_json())


def _ms(values: list[float], q: float) -> float | None:
    return round(float(np.quantile(np.asarray(values), q)) * 1e3, 2) if values else None


def _relay_summary(
    parts: list[dict[str, Any]], readings: list[tuple[float, dict[str, float]]], seconds: float
) -> dict[str, Any]:
    total: dict[str, Any] = {}
    lat: list[float] = []
    lag: list[float] = []
    by_voices: dict[int, list[float]] = {}
    closes: dict[str, int] = {}
    errors: dict[str, int] = {}
    for p in parts:
        for k, v in p.items():
            if k == "latencies":
                lat.extend(v)
            elif k == "loop_lag":
                lag.extend(v)
            elif k == "by_voices":
                for n, (secs, nbytes) in v.items():
                    row = by_voices.setdefault(int(n), [0.0, 0.0])
                    row[0] += secs
                    row[1] += nbytes
            elif k in ("closes", "errors"):
                bucket = closes if k == "closes" else errors
                for code, n in v.items():
                    bucket[code] = bucket.get(code, 0) + n
            else:
                total[k] = total.get(k, 0) + v
    server: dict[str, Any] = {}
    if len(readings) >= 2:
        (ta, first), (tb, last) = readings[0], readings[-1]
        span = tb - ta
        for name in sorted(last):
            if name.startswith("emachi_voice_"):
                short = name.removeprefix("emachi_voice_")
                server[f"{short}_per_s"] = round((last[name] - first.get(name, 0.0)) / span, 1)
        server["span_s"] = round(span, 1)
    dropped = sum(v for k, v in server.items() if k.startswith("dropped_"))
    voices = {
        str(n): {
            "listener_seconds": int(secs),
            "kbit_per_s": round(nbytes * 8 / 1000 / secs, 1),
            "bytes_per_s": round(nbytes / secs),
        }
        for n, (secs, nbytes) in sorted(by_voices.items())
        if secs
    }
    cs = total.get("client_seconds", 0.0)
    return {
        "clients": total.get("clients", 0),
        "talkers": total.get("talkers", 0),
        "probes": total.get("probes", 0),
        "connected": total.get("connected", 0),
        "welcomed": total.get("welcomed", 0),
        "failed": total.get("failed", 0),
        "closes": closes,
        "errors": errors,
        "sent_frames_per_s": round(total.get("frames_sent", 0) / seconds, 1),
        "sender_skipped_frames": total.get("frames_skipped", 0),
        "server_voice": server,
        "forwarded_frames_per_s": server.get("frames_forwarded_per_s"),
        "dropped_per_s": round(dropped, 1),
        "relay_latency_ms": {
            "p50": _ms(lat, 0.5),
            "p99": _ms(lat, 0.99),
            "max": _ms(lat, 1.0),
            "samples": len(lat),
            "note": "sender's time.monotonic() in the payload → a probe listener's arrival; "
            "includes the hold until the 20 ms flush and the load generator's loop lag",
        },
        "voice_down_per_listener_by_voices": voices,
        "voice_kbit_per_listener_with_8_voices": voices.get("8", {}).get("kbit_per_s"),
        "voice_kbit_per_client": round(total.get("voice_bytes", 0) * 8 / 1000 / cs, 1)
        if cs
        else None,
        "other_kbit_per_client": round(total.get("other_bytes", 0) * 8 / 1000 / cs, 1)
        if cs
        else None,
        "loadgen_loop_lag_ms": {"p50": _ms(lag, 0.5), "p99": _ms(lag, 0.99)},
        "loadgen_cpu_percent": round(total.get("cpu_seconds", 0.0) / seconds * 100, 1),
    }


def relay(args: argparse.Namespace) -> dict[str, Any]:
    """The relay scenario: a self-started server, the walking and talking crowd, the figures."""
    ramp = max(2.0, args.walkers / 250)
    server = _Server(args.walkers, shlex.split(args.server_args))
    server.wait_ready()
    url, base, pid = f"ws://127.0.0.1:{server.port}/ws", server.base, server.proc.pid
    load_before = os.getloadavg()
    results: list[dict[str, Any]] = []
    try:
        world = json.loads(_get(base + "/api/world", 10.0))
        measure_from = time.time() + 1.0 + ramp + args.warmup
        window = (measure_from, measure_from + args.seconds)
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        procs = []
        per = [
            args.walkers // args.procs + (i < args.walkers % args.procs) for i in range(args.procs)
        ]
        first = 0
        for i, n in enumerate(per):
            if n == 0:
                continue
            kw = {
                "url": url,
                "world": world,
                "first": first,
                "count": n,
                "walkers": args.walkers,
                "talkers": args.talkers,
                "probes": args.probes,
                "ramp": ramp,
                "measure_from": measure_from,
                "measure_for": args.seconds,
                "seed": args.seed * 100_003 + i,
            }
            first += n
            p = ctx.Process(target=_relay_worker, args=(kw, out), daemon=True)
            p.start()
            procs.append(p)
        poller = _MetricsPoller(base, window)
        poller.start()
        while time.time() < window[0]:
            time.sleep(0.05)
        cpu0 = _cpu_seconds(pid)
        while time.time() < window[1]:
            time.sleep(0.05)
        cpu1 = _cpu_seconds(pid)
        poller.join(5.0)
        deadline = time.time() + 40.0
        for _ in procs:
            try:
                results.append(out.get(timeout=max(0.1, deadline - time.time())))
            except Exception:  # a worker died or hung: report what the others saw
                break
        for p in procs:
            p.join(5.0)
            if p.is_alive():
                p.terminate()
                p.join(5.0)
    finally:
        server.stop()
    errors = server.problems()
    result: dict[str, Any] = {
        "bench": "voice-relay",
        "walkers": args.walkers,
        "talkers": args.talkers,
        "seconds": args.seconds,
        "procs": args.procs,
        "ramp_s": ramp,
        "warmup_s": args.warmup,
        "server_cmd": " ".join(server.cmd[1:]),
        "machine": machine(),
        "loadavg_before_after": [
            [round(x, 2) for x in load_before],
            [round(x, 2) for x in os.getloadavg()],
        ],
        "server_cpu_percent": round((cpu1 - cpu0) / args.seconds * 100, 1)
        if cpu0 is not None and cpu1 is not None
        else None,
        "server_tick": _tick_figures(poller.readings),
        **_relay_summary(results, poller.readings, args.seconds),
        "processes_reporting": len(results),
        "server_log_errors": len(errors),
        "server_log_first_error": errors[0] if errors else None,
    }
    if errors:
        print(f"the server logged {len(errors)} errors; its log: {server.log.name}")
    else:
        Path(server.log.name).unlink(missing_ok=True)
    return result


def _relay_table(r: dict[str, Any]) -> str:
    t = r["server_tick"]
    lat = r["relay_latency_ms"]

    def f(v: Any, fmt: str = "{:.1f}") -> str:
        return "-" if v is None else fmt.format(v)

    rows = [
        ("walkers / talkers (welcomed)", f"{r['walkers']} / {r['talkers']} ({r['welcomed']})"),
        ("server CPU (% of a core)", f(r["server_cpu_percent"], "{:.0f}")),
        ("ticks/s, snapshots every N ticks", f"{f(t.get('ticks_per_s'))}, {f(t.get('snapshot_shed'), '{:.0f}')}"),
        ("tick p50 / p99 / max (ms)", f"{f(t['p50_ms'], '{:.2f}')} / {f(t['p99_ms'], '{:.2f}')} / {f(t['max_ms'], '{:.2f}')}"),
        ("frames sent / forwarded per s", f"{f(r['sent_frames_per_s'], '{:.0f}')} / {f(r['forwarded_frames_per_s'], '{:.0f}')}"),
        ("dropped per s (by cause in JSON)", f(r["dropped_per_s"])),
        ("relay latency p50 / p99 (ms)", f"{f(lat['p50'])} / {f(lat['p99'])}  (n={lat['samples']})"),
        ("voice down, listener w/ 8 voices", f"{f(r['voice_kbit_per_listener_with_8_voices'])} kbit/s"),
        ("voice / other down per client", f"{f(r['voice_kbit_per_client'])} / {f(r['other_kbit_per_client'])} kbit/s"),
        ("load generator CPU, loop lag p99", f"{f(r['loadgen_cpu_percent'], '{:.0f}')} %, {f(r['loadgen_loop_lag_ms']['p99'])} ms"),
        ("load average before / after", f"{r['loadavg_before_after'][0][0]} / {r['loadavg_before_after'][1][0]}"),
        ("closes / errors", f"{r['closes'] or '-'} / {r['errors'] or '-'}"),
    ]  # fmt: skip
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(w)}  {v}" for k, v in rows)


def main(argv: list[str] | None = None) -> int:
    doc = __doc__ or ""
    ap = argparse.ArgumentParser(prog="python -m bench.voice", description=doc.split("\n\n")[0])
    ap.add_argument("--avatars", type=int, default=2000)
    ap.add_argument("--talking", type=float, default=0.15)
    ap.add_argument("--updates", type=int, default=100)
    ap.add_argument("--relay", action="store_true", help="the relay under a walking crowd instead")
    ap.add_argument("--walkers", type=int, default=1000, help="--relay: clients (1-2000)")
    ap.add_argument("--talkers", type=int, default=150, help="--relay: of them, talking")
    ap.add_argument("--probes", type=int, default=40, help="--relay: listeners that time frames")
    ap.add_argument("--seconds", type=float, default=30.0, help="--relay: measuring window")
    ap.add_argument("--warmup", type=float, default=3.0, help="--relay: seconds before measuring")
    ap.add_argument("--procs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--server-args", default="", help="--relay: extra `emachi serve` options")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.relay:
        if not 1 <= args.walkers <= MAX_WALKERS:
            ap.error(f"--walkers must be 1-{MAX_WALKERS}")
        if not 0 <= args.talkers <= args.walkers or not 0 <= args.probes <= args.walkers:
            ap.error("--talkers and --probes must be 0-walkers")
        if not 1 <= args.seconds <= MAX_RELAY_SECONDS:
            ap.error(f"--seconds must be 1-{MAX_RELAY_SECONDS}")
        if not 1 <= args.procs <= 8:
            ap.error("--procs must be 1-8")
        result = relay(args)
        dest = args.out or RESULTS / f"voice-relay-{args.walkers}.json"
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"voice relay: {args.walkers} walkers, {args.talkers} talking, {args.seconds:g} s")
        print(_relay_table(result))
        print(f"  written to {dest}")
        return 0
    world = load_world(WORLD)
    load_before = os.getloadavg()
    result = run(world, args.avatars, args.talking, args.updates)
    result["machine"] = machine()
    result["load_before"] = [round(x, 2) for x in load_before]
    result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    out = args.out or RESULTS / "voice-select.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
