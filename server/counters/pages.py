"""The staff pages of the counters: the day's desks and bookings, the figures per counter and
hour with an inline SVG chart of the funnel, and the same as CSV. Pure: rows in, text out."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from html import escape

from .booking import Booking
from .records import FunnelRow, StatRow

__all__ = ["desks_page", "stats_page", "stats_csv", "by_counter_hour"]

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1.5rem;max-width:70rem}"
    "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #bbb;padding:.3rem .6rem}"
    "th{background:#eef}td.n{text-align:right}.away{background:#fee;padding:.5rem}"
)
HEAD = ("tickets", "served", "no_shows", "left", "dropped", "wait_s", "service_s")


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="ja"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{STYLE}</style></head><body>{body}</body></html>"
    )


def by_counter_hour(rows: list[StatRow]) -> dict[tuple[str, str], dict[str, int]]:
    out: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(HEAD, 0))
    for r in rows:
        if r.field in HEAD:
            out[(r.counter, r.hour)][r.field] += r.n
    return dict(sorted(out.items()))


def desks_page(
    counters: list[dict[str, object]], bookings: list[Booking], day: str, away: str | None
) -> str:
    rows = "".join(
        f"<tr><td>{escape(str(c['id']))}</td><td>{escape(str(c['status']))}</td>"
        f"<td>{escape(', '.join(map(str, c['staff'])))}</td>"  # type: ignore[call-overload]
        f"<td class=n>{c['waiting']}</td><td class=n>{c['wait_s'] if c['wait_s'] is not None else '-'}"
        f"</td><td>{escape(str(c['hours']))}</td></tr>"
        for c in counters
    )
    books = "".join(
        f"<tr><td>{escape(b.counter)}</td><td>{escape(b.slot)}</td><td>{escape(b.name)}</td>"
        f"<td>{escape(b.state)}</td></tr>"
        for b in bookings
    )
    note = f'<p class="away">{escape(away)}</p>' if away else ""
    body = (
        f"<h1>窓口 / Service counters — {escape(day)}</h1>{note}"
        "<p><a class=desk-hall href=/?staff=1>ホールで窓口に立つ / Take a counter in the hall</a>"
        " · <a href=/staff/counters/stats>数字とファネル / Figures and funnel</a> · "
        "<a href=/staff/counters/stats.csv>CSV</a></p>"
        "<table><tr><th>窓口 / counter</th><th>状態 / status</th><th>職員 / staff</th>"
        "<th>待ち / waiting</th><th>待ち時間 s / wait s</th><th>時間 / hours</th></tr>"
        f"{rows}</table><h2>本日の予約 / Today's bookings</h2>"
        "<table><tr><th>窓口 / counter</th><th>枠 / slot</th><th>表示名 / name</th>"
        f"<th>状態 / state</th></tr>{books}</table>"
    )
    return _page("窓口 / Service counters", body)


def _chart(funnel: list[FunnelRow]) -> str:
    """Bars per procedure: viewed, opened, completed (an inline SVG, labelled in ja and en)."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in funnel:
        t = totals[r.procedure]
        t[0], t[1], t[2] = t[0] + r.viewed, t[1] + r.opened, t[2] + r.completed
    if not totals:
        return "<p>まだ数がありません / No figures yet.</p>"
    top = max(max(v) for v in totals.values()) or 1
    row_h, width = 54, 520
    colors = ("#7aa6e0", "#3b6fb6", "#1d8a4a")
    parts = []
    for i, (proc, vals) in enumerate(sorted(totals.items())):
        y = 24 + i * row_h
        parts.append(f'<text x="0" y="{y + 12}" font-size="12">{escape(proc)}</text>')
        for j, v in enumerate(vals):
            w = round(v / top * (width - 220))
            yy = y + j * 14
            parts.append(
                f'<rect x="180" y="{yy}" width="{max(w, 1)}" height="12" fill="{colors[j]}"/>'
                f'<text x="{186 + w}" y="{yy + 10}" font-size="10">{v}</text>'
            )
    h = 30 + len(totals) * row_h
    legend = (
        '<text x="180" y="12" font-size="11">■ 閲覧 viewed</text>'
        '<text x="290" y="12" font-size="11" fill="#3b6fb6">■ 申請へ opened</text>'
        '<text x="410" y="12" font-size="11" fill="#1d8a4a">■ 完了 completed</text>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{h}" '
        f'viewBox="0 0 {width} {h}" aria-label="手続きのファネル / procedure funnel">'
        f"<title>手続きのファネル / Procedure funnel</title>{legend}{''.join(parts)}</svg>"
    )


def stats_page(rows: list[StatRow], funnel: list[FunnelRow], since: str, away: str | None) -> str:
    table = "".join(
        f"<tr><td>{escape(c)}</td><td>{escape(h)}</td>"
        + "".join(f"<td class=n>{v[k]}</td>" for k in HEAD)
        + "</tr>"
        for (c, h), v in by_counter_hour(rows).items()
    )
    ftable = "".join(
        f"<tr><td>{escape(r.day)}</td><td>{escape(r.procedure)}</td><td class=n>{r.viewed}</td>"
        f"<td class=n>{r.opened}</td><td class=n>{r.completed}</td></tr>"
        for r in funnel
    )
    note = f'<p class="away">{escape(away)}</p>' if away else ""
    heads = "".join(f"<th>{k}</th>" for k in HEAD)
    body = (
        f"<h1>窓口の数字 / Counter figures (from {escape(since)})</h1>{note}"
        "<p>個人の情報は保存していません。/ No personal data is kept: counts by counter and hour "
        "only. <a href=/staff/counters/stats.csv>CSV</a></p>"
        f"<h2>手続きのファネル / Procedure funnel</h2>{_chart(funnel)}"
        "<table><tr><th>日 / day</th><th>手続き / procedure</th><th>閲覧 / viewed</th>"
        f"<th>申請へ / opened</th><th>完了 / completed</th></tr>{ftable}</table>"
        "<h2>窓口と時間ごと / Per counter and hour</h2>"
        f"<table><tr><th>窓口 / counter</th><th>時 / hour</th>{heads}</tr>{table}</table>"
    )
    return _page("窓口の数字 / Counter figures", body)


def stats_csv(rows: list[StatRow], funnel: list[FunnelRow]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        ["kind", "counter_or_procedure", "hour_or_day", *HEAD, "viewed", "opened", "completed"]
    )
    for (c, h), v in by_counter_hour(rows).items():
        w.writerow(["counter", c, h, *(v[k] for k in HEAD), "", "", ""])
    for r in funnel:
        w.writerow(
            ["funnel", r.procedure, r.day, *([""] * len(HEAD)), r.viewed, r.opened, r.completed]
        )
    return buf.getvalue()
