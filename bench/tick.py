"""Where one instance tick spends its time, in process, without sockets.

``python -m bench.tick --avatars 1000 --ticks 200`` walks N avatars in the real world and times
each phase of a tick (step, quantise, interest, encode: views, sections and frames; pack: one
slice per viewer): the server's work per tick less the
socket writes. Times are CPU time of this process (``time.process_time``), so that other load on
the machine does not blur where the tick's work goes; the server's wall-clock tick is measured by
``bench.crowd``. Writes bench/results/tick-N.json. Measures; never asserts.

``--instance`` runs the server's own ``Instance.step`` and ``Instance.broadcast`` instead, with
sessions whose transport only counts bytes: every viewer sends 10 inputs a second and acks two ticks
back, so what is timed is the whole tick as the server runs it (per-viewer Python included), less
the kernel's socket writes. Deterministic, so it also runs under ``valgrind --tool=callgrind`` to
count instructions, which a busy machine does not blur.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

from server.config import ROOT
from server.instance import _HEAD, HISTORY, _packb
from server.protocol.batch import PAD, InfoTable, encode_frames, prepare_views
from server.protocol.snapshot import quantize
from world.crowd import Crowd
from world.interest import Interest
from world.loader import load_world


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--avatars", type=int, default=1000)
    ap.add_argument("--ticks", type=int, default=200)
    ap.add_argument(
        "--interest-every", type=int, default=2, help="as the server's setting (default 2)"
    )
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument(
        "--capacity",
        type=int,
        default=None,
        help="--instance: the instance's capacity (default: --avatars; a server's default is 500)",
    )
    ap.add_argument(
        "--instance", action="store_true", help="time the server's Instance.step + broadcast"
    )
    args = ap.parse_args(argv)
    if args.instance:
        return _instance_bench(
            args.avatars, args.ticks, args.interest_every, args.out, args.capacity or args.avatars
        )
    n = args.avatars
    world = load_world(ROOT / "worlds" / "machida-city-hall")
    crowd = Crowd(world, n)
    interest = Interest()
    rng = np.random.default_rng(1)
    for i in range(n):
        crowd.spawn(i)
    history = np.zeros((HISTORY, n, 4), np.int32)
    views = np.full((HISTORY, n, interest.cap), PAD, np.uint16)
    view_tick = np.full((HISTORY, n), -1, np.int64)
    zeros = np.zeros(n, np.int64)
    info = InfoTable(n)
    names, colors = [f"bench{a}" for a in range(n)], [0] * n
    slots = np.arange(n)
    visible_cache = np.full((n, interest.cap), -1, np.int32)
    beyond_cache = np.zeros(n, np.int32)
    phases: dict[str, list[float]] = {
        k: [] for k in ("step", "quantize", "interest", "encode", "pack", "total")
    }
    for tick in range(1, args.ticks + 1):
        if tick % 20 == 1:  # people change their minds now and then
            for i in rng.choice(n, n // 4, replace=False):
                a = rng.uniform(0, 2 * math.pi)
                crowd.set_intent(int(i), math.sin(a), math.cos(a), a)
        t0 = time.process_time()
        crowd.step(0.05)
        t1 = time.process_time()
        q = quantize(crowd.pos, crowd.floor, crowd.yaw)
        history[tick % HISTORY] = q
        t2 = time.process_time()
        redo = slots[(slots + tick) % args.interest_every == 0] if tick > 1 else slots
        seen, far = interest.query(crowd, redo)
        visible_cache[redo] = seen
        beyond_cache[redo] = far
        visible, beyond = visible_cache, beyond_cache
        t3 = time.process_time()
        base_tick = max(tick - 2, 0)  # clients acknowledge about 100 ms back
        # every viewer acks base_tick (none before tick 3): what Instance.broadcast runs
        cur, base, b_tick, b_ring = prepare_views(
            visible, views, view_tick, slots, np.full(n, base_tick), tick
        )
        info.update(names, colors)
        frames = encode_frames(
            cur,
            base,
            b_ring,
            q,
            history,
            _HEAD + _packb(tick),
            _packb(0.0),
            b_tick,
            zeros,
            beyond,
            info,
        )
        t4 = time.process_time()
        # the send loop's share: one slice per viewer
        data, lo = frames.data, 0
        total_bytes = 0
        for hi in frames.end.tolist():
            total_bytes += len(data[lo:hi])
            lo = hi
        t5 = time.process_time()
        for k, dt in zip(
            phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t5 - t0), strict=True
        ):
            phases[k].append(dt * 1000)
    summary = {
        k: {"p50_ms": float(np.percentile(v[20:], 50)), "p99_ms": float(np.percentile(v[20:], 99))}
        for k, v in phases.items()
    }
    result = {
        "bench": "tick",
        "avatars": n,
        "ticks": args.ticks,
        "interest_every": args.interest_every,
        "clock": "process CPU time",
        "phases": summary,
        "bytes_last_tick": total_bytes,
        "machine": {
            "cpu": _cpu(),
            "cores": __import__("os").cpu_count(),
            "python": platform.python_version(),
            "loadavg_1m": __import__("os").getloadavg()[0],
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    }
    out = args.out or ROOT / "bench" / "results" / f"tick-{n}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'phase':<10} {'p50 ms':>8} {'p99 ms':>8}")
    for k, v in summary.items():
        print(f"{k:<10} {v['p50_ms']:8.2f} {v['p99_ms']:8.2f}")
    return 0


class _CountingTransport:
    """A transport that is never full and only counts what it is given."""

    def __init__(self) -> None:
        self.bytes = 0

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def write(self, data: bytes) -> None:
        self.bytes += len(data)


def _instance_bench(
    n: int, ticks: int, interest_every: int, out: Path | None, capacity: int
) -> int:
    from server.config import Config
    from server.hooks import Hooks
    from server.instance import Instance
    from server.metrics import Metrics
    from server.session import Session, SessionState

    world = load_world(ROOT / "worlds" / "machida-city-hall")
    config = Config(capacity=max(n, capacity), interest_every=interest_every)
    inst = Instance("bench#1", world, config, Metrics(), Hooks())
    rng = np.random.default_rng(1)
    transports = []
    sessions = []
    for i in range(n):
        s = Session(config.send_buffer_limit, config.rate_per_second, config.rate_burst)
        s.name = f"bench{i}"
        t = _CountingTransport()
        s.attach(None, t)  # type: ignore[arg-type]
        s.to(SessionState.ACTIVE)
        inst.on_join(s)
        transports.append(t)
        sessions.append(s)
    headings = rng.uniform(0, 2 * math.pi, n)
    cpu: list[float] = []
    # under `valgrind --tool=callgrind --instr-atstart=no`, BENCH_CALLGRIND=1 counts the ticks
    # after the 20th only (the world's loading would dwarf them otherwise)
    callgrind = bool(os.environ.get("BENCH_CALLGRIND"))
    for tick in range(1, ticks + 1):
        if callgrind and tick == 21:
            subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=False)
        if tick % 20 == 1:  # people change their minds now and then
            turn = rng.choice(n, n // 4, replace=False)
            headings[turn] = rng.uniform(0, 2 * math.pi, len(turn))
        t0 = time.process_time()
        # 10 inputs a second: half the crowd sends one before each 20 Hz tick, carrying an ack
        seq = tick  # one input per tick per sender: rising
        for i in range(tick % 2, n, 2):
            s = sessions[i]
            s.acked_tick = inst.tick - 1  # what a valid ACK does (Instance.ack)
            a = float(headings[i])
            inst.set_input(i, seq, 0.5 * math.sin(a), 0.5 * math.cos(a), a)
        inst.step(0.05)
        inst.broadcast()
        cpu.append((time.process_time() - t0) * 1000)
    if callgrind:
        subprocess.run(["callgrind_control", "-i", "off", str(os.getpid())], check=False)
    warm = cpu[20:] or cpu
    summary = {
        "mean_ms": float(np.mean(warm)),
        "p50_ms": float(np.percentile(warm, 50)),
        "p99_ms": float(np.percentile(warm, 99)),
        "core_percent_at_20hz": float(np.mean(warm)) * 20 / 10,
    }
    result = {
        "bench": "tick --instance",
        "avatars": n,
        "capacity": config.capacity,
        "ticks": ticks,
        "interest_every": interest_every,
        "clock": "process CPU time; inputs, acks, step and broadcast",
        "tick": summary,
        "bytes_per_tick": sum(t.bytes for t in transports) / ticks,
        "machine": {"cpu": _cpu(), "python": platform.python_version()},
    }
    dest = out or ROOT / "bench" / "results" / f"tick-instance-{n}.json"
    dest.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"instance tick, {n} avatars: mean {summary['mean_ms']:.3f} ms, p50 {summary['p50_ms']:.3f}"
        f" ms, p99 {summary['p99_ms']:.3f} ms of CPU ({summary['core_percent_at_20hz']:.1f} % of"
        f" a core at 20 Hz)"
    )
    return 0


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    raise SystemExit(main())
