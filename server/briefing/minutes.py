"""Minutes of a briefing, in Markdown and HTML, written when it ends.

They hold the title and date, when it ran and for how long, the narration as spoken (the
segments that were played, with their speaker's role and name from the script), the questions
taken, and the attendance as counts only: people in the hall (avatars) and online (watch-only).
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Attendance", "Minutes", "render_markdown", "render_html", "write_minutes"]


@dataclass(slots=True, frozen=True)
class Attendance:
    """Display counts, nothing else: distinct viewers over the briefing and the most at once."""

    hall: int
    online: int
    hall_peak: int
    online_peak: int


@dataclass(slots=True, frozen=True)
class Minutes:
    id: str
    title: str
    date: str
    started_at: float | None  # server ms
    ended_at: float | None
    duration: float  # seconds live
    spoken: list[dict[str, Any]]  # segments played: {index, role, name, narration, slide}
    questions: list[dict[str, Any]]  # {id, text, state}
    attendance: Attendance
    #: why the run ended without being played out or ended by staff (``crashed``,
    #: ``down_too_long``, ``rendered_again``), or None
    interrupted: str | None = None
    #: server restarts the run went on through: ``{at, down_s, position}``
    restarts: list[dict[str, Any]] = field(default_factory=list)


#: what an interruption means, for the minutes' reader (ja / en)
INTERRUPTED = {
    "crashed": "サーバーが停止し、中断しました / the server stopped without a drain",
    "down_too_long": "サーバーの停止が長く、中断しました / the server was down too long to go on",
    "rendered_again": "配信中に説明会が作り直され、中断しました / the briefing was rendered again",
}


def _notes(m: Minutes) -> list[str]:
    """Lines about interruptions and restarts (empty for a run without either)."""
    out = []
    if m.interrupted is not None:
        out.append(f"中断 interrupted: {INTERRUPTED.get(m.interrupted, m.interrupted)}")
    for r in m.restarts:
        out.append(
            f"再起動 restart: {_utc(r.get('at'))} — {float(r.get('down_s', 0)):.0f} 秒停止 "
            f"(s down), {float(r.get('position', 0)):.0f} 秒の位置から再開 (resumed at that second)"
        )
    return out


def _utc(ms: float | None) -> str:
    if ms is None:
        return "—"
    return dt.datetime.fromtimestamp(ms / 1000.0, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _dur(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 60}分{s % 60:02d}秒 ({seconds:.0f} s)"


def render_markdown(m: Minutes) -> str:
    a = m.attendance
    out = [
        f"# {m.title}",
        "",
        f"議事録 (minutes) — {m.date}",
        "",
        f"- 開始 started: {_utc(m.started_at)}",
        f"- 終了 ended: {_utc(m.ended_at)}",
        f"- 時間 duration: {_dur(m.duration)}",
        f"- 傍聴者数 attendance: {a.hall + a.online}名 (ホール in the hall: {a.hall}名, "
        f"オンライン online: {a.online}名; 最大同時 peak: {a.hall_peak} / {a.online_peak})",
        *(f"- {line}" for line in _notes(m)),
        "",
        "## 説明 Narration as spoken",
        "",
    ]
    for s in m.spoken:
        out += [
            f"### {s['index'] + 1}. {s['slide']['title']}",
            "",
            f"**{s['role']}（{s['name']}）**",
            "",
            s["narration"],
            "",
        ]
    if not m.spoken:
        out += ["(no segment was played)", ""]
    out += ["## 質問 Questions taken", ""]
    if m.questions:
        out += [
            f"{i}. {q['text']}" + (" (回答済 answered)" if q["state"] == "answered" else "")
            for i, q in enumerate(m.questions, 1)
        ]
    else:
        out.append("(none)")
    out.append("")
    return "\n".join(out)


def render_html(m: Minutes) -> str:
    e = html.escape
    a = m.attendance
    parts = [
        "<!doctype html>",
        '<html lang="ja"><head><meta charset="utf-8">',
        f"<title>{e(m.title)} — 議事録</title>",
        "<style>body{font-family:'Noto Sans CJK JP',sans-serif;max-width:48em;margin:2em auto;"
        "line-height:1.7;padding:0 1em}dt{font-weight:bold}</style></head><body>",
        f"<h1>{e(m.title)}</h1>",
        f"<p>議事録 (minutes) — {e(m.date)}</p>",
        "<dl>",
        f"<dt>開始 started</dt><dd>{e(_utc(m.started_at))}</dd>",
        f"<dt>終了 ended</dt><dd>{e(_utc(m.ended_at))}</dd>",
        f"<dt>時間 duration</dt><dd>{e(_dur(m.duration))}</dd>",
        f'<dt>傍聴者数 attendance</dt><dd id="attendance">{a.hall + a.online}名 '
        f'(ホール in the hall: <span id="hall">{a.hall}</span>名, オンライン online: '
        f'<span id="online">{a.online}</span>名; 最大同時 peak: {a.hall_peak} / {a.online_peak})</dd>',
        *(f'<dt>記録 notes</dt><dd class="note">{e(line)}</dd>' for line in _notes(m)),
        "</dl>",
        "<h2>説明 Narration as spoken</h2>",
    ]
    for s in m.spoken:
        parts += [
            f"<h3>{s['index'] + 1}. {e(s['slide']['title'])}</h3>",
            f"<p><strong>{e(s['role'])}（{e(s['name'])}）</strong></p>",
            f"<p>{e(s['narration'])}</p>",
        ]
    if not m.spoken:
        parts.append("<p>(no segment was played)</p>")
    parts.append("<h2>質問 Questions taken</h2>")
    if m.questions:
        parts.append(
            "<ol>"
            + "".join(
                f"<li>{e(q['text'])}{' (回答済 answered)' if q['state'] == 'answered' else ''}</li>"
                for q in m.questions
            )
            + "</ol>"
        )
    else:
        parts.append("<p>(none)</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_minutes(m: Minutes, data_dir: Path) -> tuple[Path, Path]:
    """Write ``DATA_DIR/minutes/<id>-<start>.md`` and ``.html``; returns both paths."""
    folder = Path(data_dir) / "minutes"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.fromtimestamp((m.started_at or m.ended_at or 0) / 1000.0, dt.UTC)
    base = folder / f"{m.id}-{stamp.strftime('%Y%m%dT%H%M%SZ')}"
    md, page = base.with_suffix(".md"), base.with_suffix(".html")
    for path, text in ((md, render_markdown(m)), (page, render_html(m))):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return md, page
