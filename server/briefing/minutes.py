"""Minutes of a briefing, in Markdown and HTML, written when it ends.

They hold the title and date, when it ran and for how long, the narration as spoken (the
segments that were played, with their speaker's role and name from the script: of a segment that
was skipped part-way, only the sentences heard; one skipped at once is left out), the questions
taken, and the attendance as counts only: people in the hall (avatars) and online (watch-only).
Times are in the city's time zone (``--time-zone``, Asia/Tokyo by default) with UTC beside.

The files are kept in ``DATA_DIR/minutes`` under stable names (``<briefing>-<start UTC>.md`` and
``.html``); :func:`list_minutes` and :func:`render_index` make the staff page that lists them
(``GET /staff/minutes/``, :mod:`server.briefing.minutes_http`).
"""

from __future__ import annotations

import datetime as dt
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "Attendance",
    "Minutes",
    "MinutesFile",
    "render_markdown",
    "render_html",
    "write_minutes",
    "list_minutes",
    "render_index",
    "when",
    "FILE_NAME",
    "FAVICON_LINK",
]

UTC = dt.UTC
#: a minutes file's name: the briefing id, the start in UTC, the format
FILE_NAME = re.compile(
    r"^(?P<id>[A-Za-z0-9][A-Za-z0-9_.-]*)-(?P<stamp>\d{8}T\d{6}Z)\.(?P<ext>md|html)$"
)
#: every staff page links the server's icon, so that no browser asks for a missing one
FAVICON_LINK = '<link rel="icon" href="/favicon.ico" type="image/svg+xml">'


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
    spoken: list[dict[str, Any]]  # segments played: {index, role, name, narration, slide, partly}
    questions: list[dict[str, Any]]  # {id, text, state}
    attendance: Attendance
    #: why the run ended without being played out or ended by staff (``crashed``,
    #: ``down_too_long``, ``rendered_again``), or None
    interrupted: str | None = None
    #: server restarts the run went on through: ``{at, down_s, position}``
    restarts: list[dict[str, Any]] = field(default_factory=list)


#: said of a segment only part of which was played (the sentences heard are given)
PARTLY = "（途中まで: 再生された文のみ / partly played: only the sentences heard）"

#: what an interruption means, for the minutes' reader (ja / en)
INTERRUPTED = {
    "crashed": "サーバーが停止し、中断しました / the server stopped without a drain",
    "down_too_long": "サーバーの停止が長く、中断しました / the server was down too long to go on",
    "rendered_again": "配信中に説明会が作り直され、中断しました / the briefing was rendered again",
}


def when(ms: float | None, tz: ZoneInfo | None = None, *, utc: bool = True) -> str:
    """Server ms as the city's local time with its zone's abbreviation, UTC beside
    (``2022-06-29 14:00:05 JST (05:00:05 UTC)``); ``—`` for None."""
    if ms is None:
        return "—"
    t = dt.datetime.fromtimestamp(ms / 1000.0, UTC)
    if tz is None or tz.key == "UTC":
        return t.strftime("%Y-%m-%d %H:%M:%S UTC")
    local = t.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")
    return f"{local} ({t.strftime('%H:%M:%S UTC')})" if utc else local


def _notes(m: Minutes, tz: ZoneInfo | None = None) -> list[str]:
    """Lines about interruptions and restarts (empty for a run without either)."""
    out = []
    if m.interrupted is not None:
        out.append(f"中断 interrupted: {INTERRUPTED.get(m.interrupted, m.interrupted)}")
    for r in m.restarts:
        out.append(
            f"再起動 restart: {when(r.get('at'), tz)} — {float(r.get('down_s', 0)):.0f} 秒停止 "
            f"(s down), {float(r.get('position', 0)):.0f} 秒の位置から再開 (resumed at that second)"
        )
    return out


def _dur(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 60}分{s % 60:02d}秒 ({seconds:.0f} s)"


def render_markdown(m: Minutes, tz: ZoneInfo | None = None) -> str:
    a = m.attendance
    out = [
        f"# {m.title}",
        "",
        f"議事録 (minutes) — {m.date}",
        "",
        f"- 開始 started: {when(m.started_at, tz)}",
        f"- 終了 ended: {when(m.ended_at, tz)}",
        f"- 時間 duration: {_dur(m.duration)}",
        f"- 傍聴者数 attendance: {a.hall + a.online}名 (ホール in the hall: {a.hall}名, "
        f"オンライン online: {a.online}名; 最大同時 peak: {a.hall_peak} / {a.online_peak})",
        *(f"- {line}" for line in _notes(m, tz)),
        "",
        "## 説明 Narration as spoken",
        "",
    ]
    for s in m.spoken:
        out += [
            f"### {s['index'] + 1}. {s['slide']['title']}",
            "",
            f"**{s['role']}（{s['name']}）**" + (f" {PARTLY}" if s.get("partly") else ""),
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


def render_html(m: Minutes, tz: ZoneInfo | None = None) -> str:
    e = html.escape
    a = m.attendance
    parts = [
        "<!doctype html>",
        '<html lang="ja"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        FAVICON_LINK,
        f"<title>{e(m.title)} — 議事録</title>",
        "<style>body{font-family:'Noto Sans CJK JP',sans-serif;max-width:48em;margin:2em auto;"
        "line-height:1.7;padding:0 1em}dt{font-weight:bold}</style></head><body>",
        f"<h1>{e(m.title)}</h1>",
        f"<p>議事録 (minutes) — {e(m.date)}</p>",
        "<dl>",
        f'<dt>開始 started</dt><dd id="started">{e(when(m.started_at, tz))}</dd>',
        f'<dt>終了 ended</dt><dd id="ended">{e(when(m.ended_at, tz))}</dd>',
        f"<dt>時間 duration</dt><dd>{e(_dur(m.duration))}</dd>",
        f'<dt>傍聴者数 attendance</dt><dd id="attendance">{a.hall + a.online}名 '
        f'(ホール in the hall: <span id="hall">{a.hall}</span>名, オンライン online: '
        f'<span id="online">{a.online}</span>名; 最大同時 peak: {a.hall_peak} / {a.online_peak})</dd>',
        *(f'<dt>記録 notes</dt><dd class="note">{e(line)}</dd>' for line in _notes(m, tz)),
        "</dl>",
        "<h2>説明 Narration as spoken</h2>",
    ]
    for s in m.spoken:
        parts += [
            f"<h3>{s['index'] + 1}. {e(s['slide']['title'])}</h3>",
            f"<p><strong>{e(s['role'])}（{e(s['name'])}）</strong>"
            + (f' <span class="partly">{e(PARTLY)}</span>' if s.get("partly") else "")
            + "</p>",
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


def write_minutes(m: Minutes, data_dir: Path, tz: ZoneInfo | None = None) -> tuple[Path, Path]:
    """Write ``DATA_DIR/minutes/<id>-<start UTC>.md`` and ``.html`` (times in ``tz``); returns
    both paths. The names stay the same whatever the zone, so links to them stay good."""
    folder = Path(data_dir) / "minutes"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.fromtimestamp((m.started_at or m.ended_at or 0) / 1000.0, UTC)
    base = folder / f"{m.id}-{stamp.strftime('%Y%m%dT%H%M%SZ')}"
    md, page = base.with_suffix(".md"), base.with_suffix(".html")
    for path, text in ((md, render_markdown(m, tz)), (page, render_html(m, tz))):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return md, page


# -- the list of minutes files ------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class MinutesFile:
    """One run's minutes in ``DATA_DIR/minutes``: its briefing, start and the formats written."""

    briefing: str
    stamp: str  # the start in UTC, as in the names: 20220629T050005Z
    title: str
    formats: tuple[str, ...]  # "md", "html"

    @property
    def started_ms(self) -> float:
        t = dt.datetime.strptime(self.stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        return t.timestamp() * 1000.0

    def name(self, ext: str) -> str:
        return f"{self.briefing}-{self.stamp}.{ext}"

    def to_json(self, tz: ZoneInfo | None = None) -> dict[str, Any]:
        return {
            "briefing": self.briefing,
            "title": self.title,
            "started": when(self.started_ms, tz),
            "started_ms": self.started_ms,
            **{ext: f"/staff/minutes/{self.name(ext)}" for ext in self.formats},
        }


def _title(md: Path) -> str:
    try:
        with md.open(encoding="utf-8") as f:
            first = f.readline(400)
    except OSError:
        return ""
    return first[2:].strip() if first.startswith("# ") else ""


def list_minutes(folder: Path) -> list[MinutesFile]:
    """Every run's minutes under ``folder``, newest first (files not named as minutes are left out)."""
    runs: dict[tuple[str, str], set[str]] = {}
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return []
    for p in entries:
        m = FILE_NAME.match(p.name)
        if m and p.is_file():
            runs.setdefault((m["id"], m["stamp"]), set()).add(m["ext"])
    out = [
        MinutesFile(
            bid,
            stamp,
            _title(Path(folder) / f"{bid}-{stamp}.md") if "md" in exts else bid,
            tuple(e for e in ("html", "md") if e in exts),
        )
        for (bid, stamp), exts in runs.items()
    ]
    out.sort(key=lambda f: (f.stamp, f.briefing), reverse=True)
    return out


def render_index(files: list[MinutesFile], tz: ZoneInfo | None = None) -> str:
    """The staff page that lists every minutes file, with stable links to each format."""
    e = html.escape
    zone = tz.key if tz is not None else "UTC"
    rows = []
    for f in files:
        links = " · ".join(
            f'<a href="/staff/minutes/{e(f.name(ext))}">{"HTML" if ext == "html" else "Markdown"}</a>'
            for ext in f.formats
        )
        rows.append(
            f"<tr><td>{e(when(f.started_ms, tz, utc=False))}</td>"
            f"<td>{e(f.title or f.briefing)}<br><small>{e(f.briefing)}</small></td><td>{links}</td></tr>"
        )
    body = (
        "<table><thead><tr><th>開始 Started</th><th>説明会 Briefing</th><th>ファイル Files</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
        if rows
        else "<p>まだ議事録はありません。説明会が終わると作成されます。 / No minutes yet: they "
        "are written when a briefing ends.</p>"
    )
    return f"""<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
{FAVICON_LINK}
<title>議事録 / Minutes — emachi staff</title>
<style>
body{{font-family:"Noto Sans CJK JP",system-ui,sans-serif;margin:1.5rem auto;max-width:60rem;padding:0 1rem;color:#1d2a38}}
table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ccd;padding:.4rem;text-align:left;vertical-align:top}}
small{{color:#556}}a{{color:#1f5d8c}}
</style></head><body>
<h1>議事録 <small>Minutes</small></h1>
<p>時刻は {e(zone)} です。/ Times are in {e(zone)}. ファイルへのリンクはそのまま共有・保存できます。/ Each link is
a file you can keep or share (staff sign-in needed).</p>
{body}
</body></html>
"""
