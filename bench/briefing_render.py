"""Rendering cost of a briefing: the real-time factor of a first render, and a cached re-render.

    python -m bench.briefing_render [SCRIPT]

Renders SCRIPT (default: the 2022-06-29 committee script) into a fresh temporary data dir with
Open JTalk / espeak-ng, then renders it again (everything from the cache). Writes
``bench/results/briefing_render.json``: audio seconds, synthesis seconds, real-time factor
(synthesis time / audio time, lower is faster), the cached re-render's wall time, the audio's
size (WAV) and the narration rate in characters a minute. Measures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.crowd import RESULTS, machine
from server.briefing import tts
from server.briefing.render import RenderStats, render_script
from server.briefing.script import load_script

__all__ = ["main"]

DEFAULT = Path(__file__).resolve().parent.parent / "briefings" / "2022-06-29-digital-committee.yaml"


def run(script_path: Path) -> dict[str, Any]:
    script = load_script(script_path)
    chars = sum(len(s.narration) for s in script.segments)
    with tempfile.TemporaryDirectory(prefix="emachi-bench-") as tmp:
        first = RenderStats()
        t0 = time.perf_counter()
        timeline = render_script(script, Path(tmp), stats=first)
        first_wall = time.perf_counter() - t0
        again = RenderStats()
        t1 = time.perf_counter()
        render_script(script, Path(tmp), stats=again)
        cached_wall = time.perf_counter() - t1
    audio_s = sum(s["duration"] for s in timeline["segments"])
    voices = sorted({m.voice for m in script.cast})
    return {
        "script": script_path.name,
        "segments": len(script.segments),
        "characters": chars,
        "voices": voices,
        "engines": {v: tts.engine_version(v) for v in voices},
        "audio_seconds": round(audio_s, 2),
        "briefing_seconds_with_pauses": timeline["duration"],
        "chars_per_minute": round(chars / (audio_s / 60.0), 1),
        "first_render_wall_s": round(first_wall, 3),
        "synthesis_s": round(first.synth_seconds, 3),
        "real_time_factor": round(first.synth_seconds / audio_s, 4),
        "audio_bytes": first.audio_bytes,
        "audio_format": "WAV PCM 16-bit mono, 24 kHz (Open JTalk) / 22.05 kHz (espeak-ng); Ogg Opus copy at 24 kHz",
        "audio_mb_per_minute": round(first.audio_bytes / 1e6 / (audio_s / 60.0), 2),
        "opus_bytes": first.opus_bytes,
        "opus_mb_per_minute": round(first.opus_bytes / 1e6 / (audio_s / 60.0), 3),
        "cached_rerender_wall_s": round(cached_wall, 4),
        "cached_segments": again.cached,
        "rendered_again": again.rendered,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("script", nargs="?", type=Path, default=DEFAULT)
    args = ap.parse_args(argv)
    result = {"bench": "briefing_render", "machine": machine(), **run(args.script)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "briefing_render.json"
    out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, ensure_ascii=False, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
