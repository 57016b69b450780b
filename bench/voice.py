"""Bench of the audibility selection: what one 10 Hz voice update costs the server.

    python -m bench.voice [--avatars N] [--talking F] [--updates U]

2,000 avatars (by default) spread over both floors of the Machida hall, 15 % of them talking,
walking a little between updates (so the hysteresis has a previous set to keep). Each update
times, separately:

- ``zones``: the zone key of every avatar (``ZoneTable.locate``, the raster look-up);
- ``select``: ``audibility.audible`` (gains, then each listener's K loudest with hysteresis);
- ``changes``: ``audibility.changes`` (who must be told what).

Times are CPU time of this process (``time.process_time``), so that other load on a shared
machine blurs them less than wall-clock time would. Writes ``bench/results/voice-select.json``
with the machine and the load average before and after. Measures; asserts nothing. Target:
select ≤ 2 ms per update.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.crowd import RESULTS, machine
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


def main(argv: list[str] | None = None) -> int:
    doc = __doc__ or ""
    ap = argparse.ArgumentParser(prog="python -m bench.voice", description=doc.split("\n\n")[0])
    ap.add_argument("--avatars", type=int, default=2000)
    ap.add_argument("--talking", type=float, default=0.15)
    ap.add_argument("--updates", type=int, default=100)
    ap.add_argument("--out", type=Path, default=RESULTS / "voice-select.json")
    args = ap.parse_args(argv)
    world = load_world(WORLD)
    load_before = os.getloadavg()
    result = run(world, args.avatars, args.talking, args.updates)
    result["machine"] = machine()
    result["load_before"] = [round(x, 2) for x in load_before]
    result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
