"""The staff view of kiosk counts: a table, an inline SVG chart and a CSV export.

Pure rendering from count rows: no JavaScript, no chart library, readable when printed. The chart
shows, per kiosk, how many panels were opened (views) and how many residents went on to a channel
(opens), split by channel, so staff see which procedures actually go online. Channels are named
as staff know them (LINE, Graffer, マイナポータル, 東京共同電子申請…), not by their ids.

The rate is opens per view, a number with its definition beside it: one view may open several
channels (LINE, then the city's page), so it is not a share and can be above 1. The counts hold
no link between a view and its opens (no session is recorded), so "views that opened at least one
channel" cannot be told from them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from html import escape

from .catalog import CHANNEL_IDS
from .counts import CountRow

__all__ = [
    "KioskSummary",
    "summarise",
    "render_html",
    "render_csv",
    "chart_svg",
    "daily",
    "daily_svg",
    "opens_per_view",
    "RATE_DEFINITION",
    "CHANNEL_NAMES",
]

COLORS = {
    "line": "#06c755",
    "graffer": "#2f6fde",
    "mynaportal": "#e2711d",
    "tokyo-eapp": "#8e44ad",
    "city-page": "#7f8c8d",
}
#: the services by the names staff know them by (the catalog's labels are residents' buttons:
#: "LINEで", "市のページを見る"); one per channel id of the catalog (CHANNEL_IDS)
CHANNEL_NAMES = {
    "line": "LINE",
    "graffer": "Graffer グラファー",
    "mynaportal": "マイナポータル Mynaportal",
    "tokyo-eapp": "東京共同電子申請 Tokyo e-application",
    "city-page": "市のホームページ City website",
}
VIEW_COLOR = "#d5dbe3"
#: what the rate column means, said beside the table
RATE_DEFINITION = (
    "1表示あたりの移動数 = 移動（手続きのリンクを開いた数）÷ 表示（パネルを開いた数）。1回の表示で"
    "いくつもの窓口を開けるため、1を超えることがあります。 / Opens per view = opens (links to a "
    "procedure handed out) ÷ views (panels opened). One view can open several channels, so it can "
    "be above 1; it is not a share of residents."
)
OPEN_COLOR = "#1f5d8c"


@dataclass(slots=True)
class KioskSummary:
    kiosk: str
    procedure: str
    title: str
    views: int = 0
    asks: int = 0
    opens: dict[str, int] = field(default_factory=dict)

    @property
    def total_opens(self) -> int:
        return sum(self.opens.values())


def summarise(
    rows: Iterable[CountRow], kiosks: Mapping[str, tuple[str, str]]
) -> list[KioskSummary]:
    """Totals per kiosk; ``kiosks`` maps kiosk id → (procedure id, title) in display order."""
    out = {k: KioskSummary(k, p, t) for k, (p, t) in kiosks.items()}
    for r in rows:
        s = out.get(r.kiosk)
        if s is None:  # a kiosk since removed from the world: still shown
            s = out[r.kiosk] = KioskSummary(r.kiosk, "", r.kiosk)
        if r.event == "view":
            s.views += r.n
        elif r.event == "ask":
            s.asks += r.n
        elif r.event == "open":
            s.opens[r.channel] = s.opens.get(r.channel, 0) + r.n
    return list(out.values())


def opens_per_view(s: KioskSummary) -> str:
    """``1.25`` (two decimals), or ``–`` for a kiosk nobody viewed."""
    return f"{s.total_opens / s.views:.2f}" if s.views else "–"


def _name(channel: str, names: Mapping[str, str] | None) -> str:
    return (names or {}).get(channel) or CHANNEL_NAMES.get(channel, channel)


def chart_svg(
    summary: list[KioskSummary], width: int = 720, names: Mapping[str, str] | None = None
) -> str:
    """Horizontal bars: a pale bar for views, stacked channel bars for opens beneath it."""
    label_w, row_h, top = 230, 34, 30
    bar_w = width - label_w - 60
    peak = max([1] + [max(s.views, s.total_opens) for s in summary])
    h = top + row_h * len(summary) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {h}" width="{width}" '
        f'height="{h}" role="img" aria-labelledby="chart-title" class="kiosk-chart">',
        '<title id="chart-title">パネル表示と手続きへの移動（キオスク別） / Views and opens per kiosk</title>',
        f'<text x="{label_w}" y="16" font-size="12" fill="#333">表示 views ▭ ・ 移動 opens ▬ '
        f"(max {peak})</text>",
    ]
    for i, s in enumerate(summary):
        y = top + i * row_h
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 17}" font-size="12" text-anchor="end" '
            f'fill="#222">{escape(_short(s.title.split(" / ")[0]))}</text>'
        )
        vw = bar_w * s.views / peak
        parts.append(
            f'<rect x="{label_w}" y="{y + 2}" width="{vw:.1f}" height="11" '
            f'fill="{VIEW_COLOR}"><title>{escape(s.kiosk)} views {s.views}</title></rect>'
        )
        x = float(label_w)
        for ch in CHANNEL_IDS:
            n = s.opens.get(ch, 0)
            if not n:
                continue
            w = bar_w * n / peak
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 15}" width="{w:.1f}" height="11" '
                f'fill="{COLORS[ch]}"><title>{escape(s.kiosk)} {escape(_name(ch, names))} '
                f"{n}</title></rect>"
            )
            x += w
        parts.append(
            f'<text x="{max(label_w + vw, x) + 6:.1f}" y="{y + 17}" font-size="11" '
            f'fill="#555">{s.views} / {s.total_opens}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def daily(rows: Iterable[CountRow], since: str, today: str) -> list[tuple[str, int, int]]:
    """(day, views, opens) for every day from ``since`` to ``today``, zeros included."""
    from datetime import date, timedelta

    views: dict[str, int] = {}
    opens: dict[str, int] = {}
    for r in rows:
        if r.event == "view":
            views[r.day] = views.get(r.day, 0) + r.n
        elif r.event == "open":
            opens[r.day] = opens.get(r.day, 0) + r.n
    out = []
    d, end = date.fromisoformat(since), date.fromisoformat(today)
    while d <= end:
        k = d.isoformat()
        out.append((k, views.get(k, 0), opens.get(k, 0)))
        d += timedelta(days=1)
    return out


def daily_svg(days: list[tuple[str, int, int]], width: int = 720, height: int = 160) -> str:
    """Views and opens per day, all kiosks together: a pale bar and a dark bar for each day."""
    n = max(len(days), 1)
    peak = max([1] + [max(v, o) for _, v, o in days])
    left, bottom = 40, 22
    slot = (width - left - 10) / n
    bw = max(slot * 0.4, 0.5)
    plot_h = height - bottom - 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-labelledby="daily-title" class="kiosk-daily">',
        '<title id="daily-title">日ごとの表示と移動 / Views and opens per day</title>',
        f'<text x="{left - 6}" y="16" font-size="11" text-anchor="end" fill="#555">{peak}</text>',
        f'<line x1="{left}" y1="{10 + plot_h}" x2="{width - 10}" y2="{10 + plot_h}" stroke="#999"/>',
    ]
    for i, (day, v, o) in enumerate(days):
        x = left + i * slot
        for j, (val, color) in enumerate(((v, VIEW_COLOR), (o, OPEN_COLOR))):
            h = plot_h * val / peak
            parts.append(
                f'<rect x="{x + j * bw:.1f}" y="{10 + plot_h - h:.1f}" width="{bw:.1f}" '
                f'height="{h:.1f}" fill="{color}"><title>{day} '
                f"{'views' if j == 0 else 'opens'} {val}</title></rect>"
            )
        if n <= 14 or i % max(1, n // 10) == 0:
            parts.append(
                f'<text x="{x:.1f}" y="{height - 6}" font-size="10" fill="#555">{day[5:]}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _short(title: str, n: int = 18) -> str:
    return title if len(title) <= n else title[: n - 1] + "…"


def render_html(
    summary: list[KioskSummary],
    days: int,
    since: str,
    token_query: str,
    per_day: list[tuple[str, int, int]] | None = None,
    away: str | None = None,
    names: Mapping[str, str] | None = None,
) -> str:
    """The whole staff page (Japanese first, English beside); ``away`` is a notice that the
    records store does not answer, shown above the figures; ``names`` are the channels' names
    (catalog labels) by id."""
    notice = f'<p class="away" role="alert">{escape(away)}</p>' if away else ""
    day_chart = ""
    if per_day:
        day_chart = (
            "<h2>日ごと <small>Per day (all kiosks)</small></h2>"
            + daily_svg(per_day)
            + f'<p class="legend"><span><i style="background:{VIEW_COLOR}"></i>表示 views</span>'
            f'<span><i style="background:{OPEN_COLOR}"></i>移動 opens</span></p>'
        )
    head = "".join(
        f'<th data-channel="{escape(c)}">{escape(_name(c, names))}</th>' for c in CHANNEL_IDS
    )
    body = []
    for s in summary:
        rate = opens_per_view(s)
        cells = "".join(f"<td>{s.opens.get(c, 0)}</td>" for c in CHANNEL_IDS)
        body.append(
            f"<tr><th scope=row>{escape(s.title)}<br><small>{escape(s.kiosk)}</small></th>"
            f"<td>{s.views}</td><td>{s.total_opens}</td><td>{rate}</td>{cells}<td>{s.asks}</td></tr>"
        )
    legend = " ".join(
        f'<span><i style="background:{COLORS[c]}"></i>{escape(_name(c, names))}</span>'
        for c in CHANNEL_IDS
    )
    choices = " ".join(
        f'<a href="/staff/kiosks?days={d}{token_query}">{d}日</a>' for d in (1, 7, 30, 365)
    )
    return f"""<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<link rel="icon" href="/favicon.ico" type="image/svg+xml">
<title>キオスクの利用状況 / Kiosk use — emachi</title>
<style>
body{{font-family:"Noto Sans CJK JP",system-ui,sans-serif;margin:1.5rem;color:#222}}
table{{border-collapse:collapse;margin:1rem 0}}td,th{{border:1px solid #ccc;padding:.3rem .5rem;text-align:right}}
th[scope=row]{{text-align:left;font-weight:normal}}small{{color:#666}}
.away{{border:2px solid #b00020;background:#fff4f4;padding:.6rem .8rem;max-width:48rem}}
.definition{{max-width:48rem;color:#444;font-size:.92rem}}
.legend span{{margin-right:1rem}}.legend i{{display:inline-block;width:.9rem;height:.9rem;margin-right:.3rem;vertical-align:middle}}
</style></head><body>
<h1>キオスクの利用状況 <small>Kiosk use</small></h1>
{notice}
<p>期間 Period: {escape(since)} から（日本時間）、{days}日間 / last {days} days. {choices}
 · <a href="/staff/kiosks.csv?days={days}{token_query}">CSV</a></p>
<p>個人情報は記録していません（アバターIDや住所はありません）。/ No personal data is recorded.</p>
<h2>キオスク別 <small>Per kiosk</small></h2>
{chart_svg(summary, names=names)}
<p class="legend"><span><i style="background:{VIEW_COLOR}"></i>表示 views</span> {legend}</p>
<table>
<thead><tr><th>キオスク Kiosk</th><th>表示 views</th><th>移動 opens</th><th id="rate">1表示あたりの移動 opens per view</th>{head}<th>ヘルパー質問 asks</th></tr></thead>
<tbody>
{"".join(body)}
</tbody></table>
<p class="definition" id="rate-definition">{escape(RATE_DEFINITION)}</p>
{day_chart}
</body></html>
"""


def render_csv(rows: Iterable[CountRow], procedure_of: Mapping[str, str]) -> str:
    """One line per counter: day, kiosk, procedure, event, channel, count."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["day", "kiosk", "procedure", "event", "channel", "count"])
    for r in rows:
        w.writerow([r.day, r.kiosk, procedure_of.get(r.kiosk, ""), r.event, r.channel, r.n])
    return buf.getvalue()
