"""Kiosk service without sockets: reach, links, QR codes, counts and the staff page."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import segno

from server.config import ROOT
from server.kiosk.counts import CountRow, MemoryCountStore, days_back
from server.kiosk.qr import qr_svg
from server.kiosk.service import KioskRefusal, KioskService, load_service
from server.kiosk.staff import chart_svg, render_csv, render_html, summarise
from tests.tools import require_module

WORLD = ROOT / "worlds" / "machida-city-hall"


@dataclass(frozen=True, slots=True)
class Place:
    id: str
    floor_id: str
    x: float
    z: float
    radius: float
    kind: str
    procedure: str


KIOSKS = [
    Place("kiosk-juminhyo", "1f", 12.0, 16.0, 2.0, "kiosk", "juminhyo"),
    Place("kiosk-bulky-garbage", "1f", 40.0, 10.0, 2.0, "helper", "bulky-garbage"),
    Place("kiosk-moving-checklist", "1f", 44.0, 10.0, 2.0, "helper", "moving-checklist"),
    Place("thumb-line-official", "1f", 0.5, 20.0, 2.5, "thumbnail", "line-official"),
]


@pytest.fixture
def service() -> KioskService:
    s = load_service(WORLD, KIOSKS, MemoryCountStore())
    s.today = lambda: "2026-11-26"
    return s


def svg_matrix(svg: str) -> np.ndarray:
    """Rasterise segno's SVG path (M/m moves, h runs at half-module y) back into modules."""
    size = int(re.search(r'viewBox="0 0 (\d+) (\d+)"', svg)[1])  # type: ignore[index]
    scale = int(re.search(r"scale\((\d+)\)", svg)[1])  # type: ignore[index]
    n = size // scale
    m = np.zeros((n, n), dtype=np.uint8)
    d = re.search(r'<path stroke="#000" d="([^"]+)"', svg)[1]  # type: ignore[index]
    x = y = 0.0
    for cmd, a, b in re.findall(r"([Mmh])(-?[\d.]+)(?:[ ,](-?[\d.]+))?", d):
        if cmd == "M":
            x, y = float(a), float(b)
        elif cmd == "m":
            x, y = x + float(a), y + float(b)
        else:
            x0, x1 = sorted((x, x + float(a)))
            m[int(y), int(x0) : int(x1)] = 1
            x += float(a)
    return m


# -- reach ---------------------------------------------------------------------------------


def test_open_at_the_kiosk_gives_the_panel_and_counts_a_view(service: KioskService) -> None:
    panel = service.open("kiosk-juminhyo", ("1f", 12.5, 17.5))
    assert panel["title"]["ja"] == "住民票の写し" and panel["kiosk_id"] == "kiosk-juminhyo"
    assert [c["id"] for c in panel["channels"]] == ["line", "graffer", "city-page"]
    assert service.store.rows() == [CountRow("2026-11-26", "kiosk-juminhyo", "view", "", 1)]


@pytest.mark.parametrize(
    ("where", "code", "says"),
    [
        (("1f", 40.0, 40.0), "kiosk_too_far", "m away"),
        (("1f", 12.0, 19.5), "kiosk_too_far", "3.5 m away"),
        (("2f", 12.0, 16.0), "kiosk_too_far", "another floor"),
        (None, "kiosk_no_avatar", "avatar"),
    ],
)
def test_open_from_afar_is_refused_and_not_counted(
    service: KioskService, where: tuple[str, float, float] | None, code: str, says: str
) -> None:
    with pytest.raises(KioskRefusal) as e:
        service.open("kiosk-juminhyo", where)
    assert e.value.code == code and says in e.value.reason
    assert service.store.rows() == []


def test_unknown_kiosk_or_channel_gets_a_refusal_never_a_link(service: KioskService) -> None:
    for kiosk, channel in [
        ("kiosk-nope", "line"),
        ("kiosk-juminhyo", "mynaportal"),
        ("kiosk-juminhyo", "https://evil.example/"),
    ]:
        with pytest.raises(KioskRefusal) as e:
            service.choose(kiosk, channel, "pc")
        assert "http" not in e.value.reason.replace("https://evil.example/", "")
    assert service.store.rows() == []


def test_choose_gives_the_catalogs_link_and_counts_the_channel(service: KioskService) -> None:
    url, qr = service.choose("kiosk-juminhyo", "graffer", "pc")
    assert url == "https://ttzk.graffer.jp/city-machida/smart-apply/apply-procedure-alias/juminhyo"
    assert qr is None  # QR only for LINE
    url, qr = service.choose("kiosk-juminhyo", "line", "phone")
    assert url == "https://liff.line.me/2000000000-Sample01/juminhyo" and qr is None
    assert [(r.event, r.channel, r.n) for r in service.store.rows()] == [
        ("open", "graffer", 1),
        ("open", "line", 1),
    ]


def test_line_on_a_pc_comes_with_a_qr_code_of_the_same_link(service: KioskService) -> None:
    url, qr = service.choose("kiosk-juminhyo", "line", "pc")
    assert qr is not None and qr.startswith("<svg") and "<script" not in qr
    # The drawn modules are exactly segno's matrix for the link (the QR content is the link).
    expected = np.array(segno.make(url, error="m", micro=False).matrix, dtype=np.uint8)
    got = svg_matrix(qr)
    border = (got.shape[0] - expected.shape[0]) // 2
    assert border == 4
    assert np.array_equal(got[border:-border, border:-border], expected)


def test_qr_svg_decodes_to_the_link_with_an_independent_decoder() -> None:
    zxingcpp = require_module("zxingcpp")
    url = "https://line.me/R/oaMessage/@sample-machida/?%E7%B2%97%E5%A4%A7%E3%81%94%E3%81%BF"
    m = svg_matrix(qr_svg(url))
    img = np.kron((1 - m) * 255, np.ones((6, 6))).astype(np.uint8)
    assert [r.text for r in zxingcpp.read_barcodes(img)] == [url]


def test_helpers_answer_and_count_an_ask_on_their_kiosk(service: KioskService) -> None:
    a = service.ask("garbage", {"item": "ソファ"})
    assert a["found"] and a["item"]["fee"]["yen"] == 1600
    m = service.ask("moving", {"direction": "out", "who": "alone"})
    assert m["steps"][0]["id"] == "move-out-notice"
    assert [(r.kiosk, r.event) for r in service.store.rows()] == [
        ("kiosk-bulky-garbage", "ask"),
        ("kiosk-moving-checklist", "ask"),
    ]
    with pytest.raises(KioskRefusal, match="helper_unknown"):
        service.ask("tarot", {})
    with pytest.raises(KioskRefusal, match="helper_query"):
        service.ask("garbage", {"item": 3})


def test_helper_panels_carry_their_form(service: KioskService) -> None:
    p = service.panel("kiosk-moving-checklist")
    assert p["helper"] == "moving" and p["form"]["questions"][0]["id"] == "direction"
    g = service.panel("kiosk-bulky-garbage")
    assert g["helper"] == "garbage" and g["form"]["examples"][0]["ja"] == "蛍光灯"


def test_world_kiosk_naming_no_catalog_item_fails_loading() -> None:
    from server.kiosk.datafile import DataError

    with pytest.raises(DataError) as e:
        load_service(
            WORLD, [Place("kiosk-x", "1f", 0, 0, 2, "kiosk", "time-travel")], MemoryCountStore()
        )
    (problem,) = e.value.problems
    assert ":kiosks.kiosk-x.procedure: expected an item id of " in problem
    assert "got 'time-travel'" in problem


# -- counts (the store suite is tests/cluster/test_store.py, the kiosk counts over it
# tests/integration/test_kiosk_counts.py) -----------------------------------------------------


def test_days_back_counts_today() -> None:
    assert days_back(1, "2026-11-26") == "2026-11-26"
    assert days_back(30, "2026-03-01") == "2026-01-31"


# -- staff page ------------------------------------------------------------------------------


ROWS = [
    CountRow("2026-11-26", "kiosk-juminhyo", "view", "", 10),
    CountRow("2026-11-26", "kiosk-juminhyo", "open", "line", 4),
    CountRow("2026-11-26", "kiosk-juminhyo", "open", "graffer", 2),
    CountRow("2026-11-26", "kiosk-bulky-garbage", "ask", "", 5),
]
TITLES = {
    "kiosk-juminhyo": ("juminhyo", "住民票の写し / Copy"),
    "kiosk-bulky-garbage": ("bulky-garbage", "粗大ごみガイド / Guide"),
}


def test_staff_table_shows_views_opens_rate_and_channels() -> None:
    s = summarise(ROWS, TITLES)
    assert (s[0].views, s[0].total_opens, s[0].opens) == (10, 6, {"line": 4, "graffer": 2})
    html = render_html(s, 7, "2026-11-20", "")
    row = re.search(r"<tr><th scope=row>住民票の写し.*?</tr>", html)[0]  # type: ignore[index]
    assert re.findall(r"<td>([^<]*)</td>", row) == ["10", "6", "0.60", "4", "2", "0", "0", "0", "0"]
    assert "<svg" in html and "<script" not in html


def test_staff_chart_draws_a_bar_per_channel() -> None:
    svg = chart_svg(summarise(ROWS, TITLES))
    assert svg.count('fill="#06c755"') == 1 and svg.count('fill="#2f6fde"') == 1
    assert "住民票の写し" in svg


def test_staff_csv_has_one_line_per_counter_and_no_personal_data() -> None:
    text = render_csv(ROWS, {k: p for k, (p, _) in TITLES.items()})
    lines = text.strip().split("\r\n")
    assert lines[0] == "day,kiosk,procedure,event,channel,count"
    assert lines[2] == "2026-11-26,kiosk-juminhyo,juminhyo,open,line,4"
    assert len(lines) == 1 + len(ROWS)


def test_staff_per_day_series_fills_days_without_counts() -> None:
    from server.kiosk.staff import daily, daily_svg

    series = daily(
        ROWS + [CountRow("2026-11-24", "kiosk-juminhyo", "view", "", 3)], "2026-11-23", "2026-11-26"
    )
    assert series == [
        ("2026-11-23", 0, 0),
        ("2026-11-24", 3, 0),
        ("2026-11-25", 0, 0),
        ("2026-11-26", 10, 6),
    ]
    svg = daily_svg(series)
    assert "2026-11-26 opens 6" in svg and svg.count("<rect") == 8


def test_kiosk_check_command_reports_problems_with_places(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    from server.kiosk.check import main

    assert main(["check", str(WORLD)]) == 0
    assert capsys.readouterr().out.strip().endswith(": ok")
    bad = tmp_path / "world"
    shutil.copytree(WORLD, bad, ignore=shutil.ignore_patterns("assets"))
    cat = bad / "catalog" / "catalog.yaml"
    cat.write_text(
        cat.read_text(encoding="utf-8").replace(
            "base: https://www.city.machida.tokyo.jp",
            "base: https://www.city.machida.tokyo.jp.evil.example",
        ),
        encoding="utf-8",
    )
    assert main(["check", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err and all(": channels[4].base: " in e or "evil.example" in e for e in err)
