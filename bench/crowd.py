"""Load generator: a crowd of walking clients against one emachi server, measured.

    python -m bench.crowd --avatars N --seconds S [--url ws://127.0.0.1:PORT/ws] [--procs P]
                          [--input-rate HZ]

Without ``--url`` it starts its own ``emachi serve`` on a free loopback port with
``--capacity N`` (so that the whole crowd shares one instance) and stops it at the end.
``P`` processes (default ``min(2, cores)``) each run many asyncio clients
(:mod:`bench.client`). Clients connect spread over a ramp, walk a warm-up, then everything
is measured for ``S`` seconds. With ``--input-rate 10`` every client sends ten inputs a second
(the figure the real-time budget is stated at); without it, inputs go out when the intent changes.
Measured:

- server tick time p50/p99/max, read from the server's ``GET /metrics`` at the end of the
  window (the server's quantiles cover its last 1200 ticks);
- input-to-snapshot latency p50/p99 as clients see it: from sending input ``seq`` n to the
  first snapshot whose ``last_seq >= n``;
- bytes down per client per second, frames per client per second, and bytes per avatar
  update (snapshot frame bytes with the WebSocket header over the avatar records in them);
- CPU used by the server and by the load generator.

It writes ``bench/results/crowd-N.json`` with the machine it ran on and prints a table.
It measures; it asserts nothing. Loopback only, bounded in clients and time.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import multiprocessing as mp
import os
import platform
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

__all__ = ["main", "parse_metrics", "machine", "summarise"]

RESULTS = Path(__file__).resolve().parent / "results"
MAX_AVATARS = 5000
MAX_SECONDS = 600
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def machine() -> dict[str, Any]:
    """The machine a result came from: CPU model, cores, Python, date."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "speed_ms": speed_probe(),
    }


def speed_probe() -> float:
    """Milliseconds this machine takes, at best of five, for a fixed piece of Python (a million
    additions in a loop): a virtual machine's cores are not always as fast as their name says
    (a neighbour on the host takes its share), and figures from runs whose probes differ much
    are not comparable."""
    best = math.inf
    for _ in range(5):
        t0, acc = time.perf_counter(), 0
        for i in range(1_000_000):
            acc += i
        best = min(best, time.perf_counter() - t0)
    return round(best * 1000.0, 1)


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text → ``{name{labels}: value}`` (comments skipped)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        with contextlib.suppress(ValueError):
            out[name] = float(value)
    return out


def _get(url: str, timeout: float = 2.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 (loopback only)
        return bytes(r.read())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Server:
    """``emachi serve`` on a free loopback port, stopped with SIGTERM (then kill) at the end."""

    def __init__(self, capacity: int, extra: list[str]) -> None:
        exe = Path(sys.executable).with_name("emachi")
        cmd0 = str(exe) if exe.exists() else shutil.which("emachi")
        if cmd0 is None:
            raise SystemExit("bench: `emachi` not found; run `.venv/bin/pip install -e .`")
        self.port = _free_port()
        # kept open for the life of the server process, closed in stop()
        self.log = tempfile.NamedTemporaryFile(prefix="emachi-bench-", suffix=".log", delete=False)  # noqa: SIM115
        # a data dir of its own: the default one holds the resume seats the last run's clients
        # left behind, which a new server restores and keeps for their grace, so that a crowd of
        # N with --capacity N would spill into a second instance (and measure two ticks)
        self.data = tempfile.TemporaryDirectory(prefix="emachi-bench-data-")
        self.cmd = [
            cmd0,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--capacity",
            str(capacity),
            "--log-level",
            "warning",
            # every bench client comes from 127.0.0.1
            "--max-per-address",
            "0",
            "--data-dir",
            self.data.name,
            *extra,
        ]
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(OSError):
                _get(self.base + "/healthz", 1.0)
                return
            time.sleep(0.2)
        self.stop()
        tail = Path(self.log.name).read_text(errors="replace")[-2000:]
        raise SystemExit(f"bench: the server did not start ({' '.join(self.cmd)}):\n{tail}")

    def problems(self) -> list[str]:
        """Lines of the server's log that report an error (empty when all went well)."""
        text = Path(self.log.name).read_text(errors="replace")
        return [ln for ln in text.splitlines() if " error " in ln or ln.startswith("Traceback")]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        self.data.cleanup()


class _MetricsPoller(threading.Thread):
    """Reads ``/metrics`` every second; keeps the readings inside the window."""

    def __init__(self, base: str, window: tuple[float, float]) -> None:
        super().__init__(daemon=True)
        self.base, self.window = base, window
        self.readings: list[tuple[float, dict[str, float]]] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            now = time.time()
            if now >= self.window[0]:
                with contextlib.suppress(OSError, ValueError):
                    self.readings.append(
                        (now, parse_metrics(_get(self.base + "/metrics", 5.0).decode()))
                    )
            if now >= self.window[1]:
                return
            self.stop_event.wait(1.0)


def _worker(kwargs: dict[str, Any], out: Any) -> None:
    import asyncio

    import uvloop

    from bench.client import run_clients

    # uvloop: the clients' reads, writes and timers cost a fraction of asyncio's own loop
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        stats = runner.run(run_clients(**kwargs))
    out.put(stats.to_json())


def _pct(values: list[float], q: float) -> float | None:
    return float(np.quantile(np.asarray(values), q)) if values else None


def summarise(parts: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """Add up the processes' client statistics into the figures the bench reports."""
    total: dict[str, Any] = {}
    lat: list[float] = []
    lag: list[float] = []
    invalid_reasons: dict[str, int] = {}
    closes: dict[str, int] = {}
    errors: dict[str, int] = {}
    failed_by: dict[str, int] = {}
    for p in parts:
        for k, v in p.items():
            if k == "latencies":
                lat.extend(v)
            elif k == "loop_lag":
                lag.extend(v)
            elif k == "invalid_reasons":
                for reason, tick in v.items():
                    invalid_reasons.setdefault(reason, tick)
            elif k in ("closes", "errors", "failed_by"):
                bucket = closes if k == "closes" else errors if k == "errors" else failed_by
                for code, n in v.items():
                    bucket[code] = bucket.get(code, 0) + n
            else:
                total[k] = total.get(k, 0) + v
    cs = total.get("client_seconds", 0.0)

    def per_client_s(v: float) -> float | None:
        return v / cs if cs else None

    records = total.get("records", 0)
    snaps = total.get("snapshots", 0)
    ms = [x * 1000.0 for x in lat]
    return {
        "clients": total.get("clients", 0),
        "connected": total.get("connected", 0),
        "welcomed": total.get("welcomed", 0),
        "failed": total.get("failed", 0),
        "closes": closes,
        "errors": errors,
        "failed_by": failed_by,
        "latency_ms": {
            "p50": _pct(ms, 0.5),
            "p99": _pct(ms, 0.99),
            "max": max(ms, default=None),
            "samples": len(ms),
            "note": "from sending input seq n to the first snapshot whose last_seq >= n; inputs "
            "leave at a random moment within a tick, as key presses do",
        },
        "bytes_per_client_per_s": per_client_s(total.get("bytes_down", 0)),
        "kbit_per_client_per_s": per_client_s(total.get("bytes_down", 0) * 8 / 1000),
        "frames_per_client_per_s": per_client_s(total.get("frames", 0)),
        "bytes_per_avatar_update": total.get("snapshot_bytes", 0) / records if records else None,
        "records_per_snapshot": records / snaps if snaps else None,
        "full_snapshot_share": total.get("full_snapshots", 0) / snaps if snaps else None,
        "inputs_per_client_per_s": per_client_s(total.get("inputs", 0)),
        "acks_per_client_per_s": per_client_s(total.get("acks", 0)),
        "unknown_base": total.get("unknown_base", 0),
        "verified_snapshots": total.get("verified", 0),
        "invalid_snapshots": total.get("invalid", 0),
        "invalid_reasons": dict(list(invalid_reasons.items())[:10]),
        "loadgen_loop_lag_ms": {
            "p50": _pct([x * 1000.0 for x in lag], 0.5),
            "p99": _pct([x * 1000.0 for x in lag], 0.99),
        },
        "client_seconds": total.get("client_seconds", 0.0),
        "loadgen_cpu_s": total.get("cpu_seconds", 0.0),
        "seconds": seconds,
    }


def histogram_quantile(
    first: dict[str, float], last: dict[str, float], name: str, q: float
) -> float | None:
    """The ``q`` quantile of histogram ``name`` between two readings (Prometheus' interpolation).

    Buckets are the cumulative ``name_bucket{le="…"}`` counts; the quantile is interpolated
    linearly inside the bucket it falls in. None when nothing was observed in between.
    """
    prefix = f'{name}_bucket{{le="'
    bounds: list[tuple[float, float]] = []
    for key, value in last.items():
        if key.startswith(prefix):
            le = key[len(prefix) : -2]
            bound = float("inf") if le == "+Inf" else float(le)
            bounds.append((bound, value - first.get(key, 0.0)))
    bounds.sort()
    if not bounds or bounds[-1][1] <= 0:
        return None
    rank = q * bounds[-1][1]
    lower, below = 0.0, 0.0
    for le, count in bounds:
        if count >= rank:
            if le == float("inf"):
                return lower
            inside = count - below
            return lower + (le - lower) * ((rank - below) / inside if inside > 0 else 1.0)
        lower, below = le, count
    return lower


def _tick_figures(readings: list[tuple[float, dict[str, float]]]) -> dict[str, Any]:
    if not readings:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    first, last = readings[0][1], readings[-1][1]

    def ms(v: float | None) -> float | None:
        return None if v is None else v * 1000.0

    def quantile(q: float) -> float | None:
        return ms(histogram_quantile(first, last, "emachi_tick_seconds", q))

    return {
        "p50_ms": quantile(0.5),
        "p99_ms": quantile(0.99),
        "max_ms": ms(last.get("emachi_tick_seconds_max")),
        "input_to_snapshot_p99_ms": ms(
            histogram_quantile(first, last, "emachi_input_to_snapshot_seconds", 0.99)
        ),
        "avatars": last.get("emachi_avatars"),
        "instances": last.get("emachi_instances"),
        # each instance's ticks a second over the window (20 at the default rate: not behind)
        "ticks_per_s": _ticks_per_s(readings),
        # 1: every viewer got every tick's snapshot; 2 or 4: the server was over its CPU budget
        # and shed snapshots (server/shedding.py), at the end of the window
        "snapshot_shed": last.get("emachi_snapshot_shed"),
        "readings": len(readings),
        "window_note": "quantiles from the server's histograms between the first and last "
        "reading of the window (interpolated in buckets); max over its last 1200 ticks",
    }


def _tick_rate(readings: list[tuple[float, dict[str, float]]]) -> float | None:
    """Ticks a second of every instance together over the readings (from /metrics), or None."""
    if len(readings) < 2:
        return None
    count = "emachi_tick_seconds_count"
    ticks = readings[-1][1].get(count, 0.0) - readings[0][1].get(count, 0.0)
    span = readings[-1][0] - readings[0][0]
    return ticks / span if span > 0 else None


def _ticks_per_s(readings: list[tuple[float, dict[str, float]]]) -> float | None:
    rate = _tick_rate(readings)
    if rate is None:
        return None
    return rate / (readings[-1][1].get("emachi_instances") or 1.0)


def _cpu_per_tick(
    readings: list[tuple[float, dict[str, float]]],
    cpu0: float | None,
    cpu1: float | None,
    seconds: float,
) -> float | None:
    """Server CPU ms per tick: CPU over the window / ticks run in it (rate from /metrics)."""
    rate = _tick_rate(readings)
    if cpu0 is None or cpu1 is None or not rate:
        return None
    return (cpu1 - cpu0) * 1000.0 / (rate * seconds)


def _table(result: dict[str, Any]) -> str:
    c, t = result["clients"], result["server_tick"]

    def f(v: Any, fmt: str = "{:.1f}") -> str:
        return "-" if v is None else fmt.format(v)

    rows = [
        (
            "avatars (connected / welcomed)",
            f"{c['connected']} / {c['welcomed']}"
            + (f"  ({c['failed']} failed: {c.get('failed_by') or '-'})" if c["failed"] else ""),
        ),
        (
            "server avatars, instances",
            f"{f(t.get('avatars'), '{:.0f}')}, {f(t.get('instances'), '{:.0f}')}",
        ),
        (
            "ticks/s per instance, snapshots shed",
            f"{f(t.get('ticks_per_s'))}, every {f(t.get('snapshot_shed'), '{:.0f}')} tick(s)",
        ),
        (
            "tick p50 / p99 / max (ms)",
            f"{f(t['p50_ms'], '{:.2f}')} / {f(t['p99_ms'], '{:.2f}')} / {f(t['max_ms'], '{:.2f}')}",
        ),
        (
            "input→snapshot p50 / p99 (ms)",
            f"{f(c['latency_ms']['p50'])} / {f(c['latency_ms']['p99'])}  (n={c['latency_ms']['samples']})",
        ),
        ("down per client (kbit/s)", f(c["kbit_per_client_per_s"])),
        ("bytes per avatar update", f(c["bytes_per_avatar_update"], "{:.2f}")),
        ("records per snapshot", f(c["records_per_snapshot"])),
        ("frames per client per s", f(c["frames_per_client_per_s"])),
        ("server CPU (% of a core)", f(result.get("server_cpu_percent"), "{:.0f}")),
        ("server CPU per tick (ms)", f(result.get("server_cpu_ms_per_tick"), "{:.2f}")),
        ("load generator CPU (% of a core)", f(result.get("loadgen_cpu_percent"), "{:.0f}")),
        (
            "load average before / after",
            "{:.2f} / {:.2f}".format(*result["loadavg_1m_before_after"]),
        ),
        ("snapshots verified / invalid", f"{c['verified_snapshots']} / {c['invalid_snapshots']}"),
        ("closes / errors", f"{c['closes'] or '-'} / {c['errors'] or '-'}"),
    ]
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(w)}  {v}" for k, v in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.crowd", description=__doc__.split("\n\n")[0])
    ap.add_argument("--avatars", type=int, required=True, help=f"clients to run (1-{MAX_AVATARS})")
    ap.add_argument(
        "--seconds", type=float, required=True, help=f"measuring window (1-{MAX_SECONDS})"
    )
    ap.add_argument(
        "--url", default=None, help="a running server's ws://127.0.0.1:PORT/ws (default: start one)"
    )
    ap.add_argument(
        "--procs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="client processes (default %(default)s)",
    )
    ap.add_argument(
        "--ramp",
        type=float,
        default=None,
        help="seconds over which clients connect (default N/250, at least 2)",
    )
    ap.add_argument(
        "--warmup",
        type=float,
        default=3.0,
        help="seconds of walking before measuring (default %(default)s)",
    )
    ap.add_argument(
        "--verify",
        type=int,
        default=4,
        help="clients per process that decode, check and rebuild every snapshot (default %(default)s)",
    )
    ap.add_argument(
        "--server-args",
        default="",
        help='extra options for the self-started server, e.g. "--snapshot-rate 10"',
    )
    ap.add_argument(
        "--input-rate",
        type=float,
        default=0.0,
        help="inputs per second per client, whatever the intent (default: only on a change)",
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--out", type=Path, default=None, help="result file (default bench/results/crowd-N.json)"
    )
    args = ap.parse_args(argv)
    if not 1 <= args.avatars <= MAX_AVATARS:
        ap.error(f"--avatars must be 1-{MAX_AVATARS}")
    if not 1 <= args.seconds <= MAX_SECONDS:
        ap.error(f"--seconds must be 1-{MAX_SECONDS}")
    if not 1 <= args.procs <= 16:
        ap.error("--procs must be 1-16")
    if not 0 <= args.input_rate <= 20:
        ap.error("--input-rate must be 0-20 (the server allows 60 messages a second)")
    ramp = args.ramp if args.ramp is not None else max(2.0, args.avatars / 250)

    server: _Server | None = None
    if args.url is None:
        server = _Server(args.avatars, shlex.split(args.server_args))
        server.wait_ready()
        url, base, pid = f"ws://127.0.0.1:{server.port}/ws", server.base, server.proc.pid
    else:
        if args.server_args:
            ap.error("--server-args is for the self-started server; not with --url")
        parts = urlsplit(args.url)
        if parts.scheme != "ws" or parts.hostname not in LOOPBACK:
            ap.error("--url must be ws:// on the loopback interface")
        url, pid = args.url, None
        base = f"http://{parts.netloc}"
    load_before = os.getloadavg()
    try:
        world = json.loads(_get(base + "/api/world", 10.0))
        measure_from = time.time() + 1.0 + ramp + args.warmup
        window = (measure_from, measure_from + args.seconds)
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        procs = []
        per = [
            args.avatars // args.procs + (i < args.avatars % args.procs) for i in range(args.procs)
        ]
        first = 0
        for i, n in enumerate(per):
            if n == 0:
                continue
            kw = {
                "url": url,
                "world": world,
                "count": n,
                "first_index": first,
                "ramp": ramp,
                "measure_from": measure_from,
                "measure_for": args.seconds,
                "seed": args.seed + i,
                "verify": args.verify,
                "input_rate": args.input_rate,
            }
            first += n
            p = ctx.Process(target=_worker, args=(kw, out), daemon=True)
            p.start()
            procs.append(p)
        poller = _MetricsPoller(base, window)
        poller.start()
        cpu0 = None
        while time.time() < window[0]:
            time.sleep(0.05)
        if pid is not None:
            cpu0 = _cpu_seconds(pid)
        while time.time() < window[1]:
            time.sleep(0.05)
        cpu1 = _cpu_seconds(pid) if pid is not None else None
        poller.join(5.0)
        results = []
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
        if server is not None:
            server.stop()
    server_errors = server.problems() if server is not None else []

    clients = summarise(results, args.seconds)
    result: dict[str, Any] = {
        "bench": "crowd",
        "avatars": args.avatars,
        "seconds": args.seconds,
        "procs": args.procs,
        "input_rate": args.input_rate,
        "ramp_s": ramp,
        "warmup_s": args.warmup,
        "url": "self-started emachi serve" if server is not None else url,
        "server_cmd": " ".join(server.cmd[1:]) if server is not None else None,
        "machine": machine(),
        # other work on the machine shows up in wall-clock tick times and latencies
        "loadavg_1m_before_after": [load_before[0], os.getloadavg()[0]],
        "server_tick": _tick_figures(poller.readings),
        "clients": clients,
        "processes_reporting": len(results),
        "server_log_errors": len(server_errors),
        "server_log_first_error": server_errors[0] if server_errors else None,
        "server_cpu_percent": (cpu1 - cpu0) / args.seconds * 100
        if cpu0 is not None and cpu1 is not None
        else None,
        "loadgen_cpu_percent": clients["loadgen_cpu_s"] / args.seconds * 100,
        # CPU, not wall clock: what a tick costs however busy the machine is (an upper
        # bound: the process also reads frames and answers HTTP between ticks)
        "server_cpu_ms_per_tick": _cpu_per_tick(poller.readings, cpu0, cpu1, args.seconds),
    }
    dest = args.out or RESULTS / f"crowd-{args.avatars}.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(
        f"crowd: {args.avatars} avatars, {args.seconds:g} s measured, {len(results)}/{len(procs)} processes reporting"
    )
    print(_table(result))
    print(f"  written to {dest}")
    if server is not None:
        if server_errors:
            print(f"  the server logged {len(server_errors)} errors; its log: {server.log.name}")
        else:
            Path(server.log.name).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
