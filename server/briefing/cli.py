"""``emachi briefing render|check SCRIPT``: the command-line side of briefings."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main", "render_main"]


def main(args: argparse.Namespace) -> int:
    """Run ``emachi briefing ACTION`` with the parsed arguments (``briefing_command``, ``script``)."""
    if args.briefing_command == "check":
        return check_main(args)
    if args.briefing_command == "render":
        return render_main(args)
    return 2


def check_main(args: argparse.Namespace) -> int:
    from server.briefing.script import ScriptError, load_script

    try:
        script = load_script(args.script)
    except ScriptError as e:
        for p in e.problems:
            print(p)
        print(f"{len(e.problems)} problem(s) in {args.script}", file=sys.stderr)
        return 1
    chars = sum(len(s.narration) for s in script.segments)
    print(f"{args.script}: ok ({len(script.segments)} segments, {chars} characters)")
    return 0


def render_main(args: argparse.Namespace) -> int:
    """Validate, render (with a progress bar) and print where the timeline went."""
    from server.briefing.render import RenderStats, render_script, timeline_path
    from server.briefing.script import ScriptError, load_script
    from server.briefing.tts import TTSError

    try:
        script = load_script(args.script)
    except ScriptError as e:
        for p in e.problems:
            print(p)
        return 1
    data_dir = Path(getattr(args, "data_dir", "var"))
    stats = RenderStats()
    try:
        timeline = render_script(script, data_dir, progress=True, stats=stats)
    except TTSError as e:
        print(f"{args.script}: {e}", file=sys.stderr)
        return 1
    rtf = (
        stats.synth_seconds / stats.audio_seconds if stats.rendered and stats.audio_seconds else 0.0
    )
    print(
        f"{script.id}: {stats.segments} segments ({stats.rendered} rendered, {stats.cached} cached), "
        f"{timeline['duration']:.1f} s, {stats.audio_bytes / 1e6:.1f} MB new audio, "
        f"real-time factor {rtf:.3f}, {stats.wall_seconds:.1f} s"
    )
    print(f"timeline: {timeline_path(data_dir, script.id)} (asset {timeline['asset']})")
    return 0
