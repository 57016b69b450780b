"""Where one instance tick spends its time, in process, without sockets.

``python -m bench.tick --avatars 1000 --ticks 200`` walks N avatars in the real world and times
each phase of a tick (step, quantise, interest, encode, pack): the server's work per tick less the
socket writes. Times are CPU time of this process (``time.process_time``), so that other load on
the machine does not blur where the tick's work goes; the server's wall-clock tick is measured by
``bench.crowd``. Writes bench/results/tick-N.json. Measures; never asserts.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np

from server.config import ROOT
from server.instance import HISTORY, _pack_snapshot
from server.protocol.batch import PAD, encode_batch, sort_views
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
    args = ap.parse_args(argv)
    n = args.avatars
    world = load_world(ROOT / "worlds" / "machida-city-hall")
    crowd = Crowd(world, n)
    interest = Interest()
    rng = np.random.default_rng(1)
    for i in range(n):
        crowd.spawn(i)
    history = np.zeros((HISTORY, n, 4), np.int32)
    views = np.full((HISTORY, n, interest.cap), PAD, np.uint16)
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
        v, b = interest.query(crowd, redo)
        visible_cache[redo] = v
        beyond_cache[redo] = b
        visible, beyond = visible_cache, beyond_cache
        t3 = time.process_time()
        cur = sort_views(visible)
        views[tick % HISTORY] = cur
        base_tick = max(tick - 2, 0)  # clients acknowledge about 100 ms back
        base = views[base_tick % HISTORY] if base_tick else np.full_like(cur, PAD)
        sec = encode_batch(cur, base, q, history, np.full(n, base_tick % HISTORY))
        t4 = time.process_time()
        total_bytes = 0
        for i in range(n):
            frame = _pack_snapshot(tick, base_tick, 0, 0.0, *sec.sections(i), [], int(beyond[i]))
            total_bytes += len(frame)
        t5 = time.process_time()
        for k, v in zip(
            phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t5 - t0), strict=True
        ):
            phases[k].append(v * 1000)
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
