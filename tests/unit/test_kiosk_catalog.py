"""The kiosk catalog: the shipped one loads, a bad one fails with every problem and its place."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from server.config import ROOT
from server.kiosk.catalog import CHANNEL_IDS, load_catalog
from server.kiosk.datafile import DataError
from server.kiosk.links import (
    AllowList,
    LinkError,
    check_url,
    liff_url,
    line_account_url,
    line_chat_url,
    web_url,
)

CATALOG_DIR = ROOT / "worlds" / "machida-city-hall" / "catalog"
WORLD_KIOSK_PROCEDURES = [
    "inkan-certificate",
    "juminhyo",
    "tax-certificate",
    "diaper-bags",
    "moving",
    "koseki",
    "tax-refund",
    "property-tax-ledger",
    "care-insurance",
    "boundary-map",
    "moving-checklist",
    "bulky-garbage",
    "city-website",
    "line-official",
    "graffer",
]
ALLOW = AllowList(
    frozenset({"line.me", "liff.line.me", "www.city.machida.tokyo.jp", "ttzk.graffer.jp"})
)


# -- the shipped catalog ---------------------------------------------------------------------


def test_shipped_catalog_has_every_kiosk_of_the_world_in_both_languages() -> None:
    cat = load_catalog(CATALOG_DIR / "catalog.yaml")
    assert set(WORLD_KIOSK_PROCEDURES) <= set(cat.items)
    for item in cat.items.values():
        assert item.title.ja and item.title.en and item.summary.ja and item.summary.en
        assert item.channels, item.id
        if item.kind == "procedure":
            assert item.who and item.counter and item.fee and item.bring and item.hours
            assert item.pay_online is not None


def test_shipped_top_ten_follow_the_seed_ranks() -> None:
    cat = load_catalog(CATALOG_DIR / "catalog.yaml")
    ranks = {i.rank: i.id for i in cat.items.values() if i.kind == "procedure"}
    assert ranks == {
        1: "inkan-certificate",
        2: "juminhyo",
        3: "tax-certificate",
        4: "diaper-bags",
        5: "moving",
        6: "koseki",
        7: "tax-refund",
        8: "property-tax-ledger",
        9: "care-insurance",
        10: "boundary-map",
    }
    assert cat.items["juminhyo"].section.ja == "市民部 市民課"  # type: ignore[union-attr]


def test_channels_are_shown_in_the_citys_priority_order() -> None:
    cat = load_catalog(CATALOG_DIR / "catalog.yaml")
    for item in cat.items.values():
        order = [CHANNEL_IDS.index(c.id) for c in item.channels]
        assert order == sorted(order), item.id
    assert [c.id for c in cat.items["juminhyo"].channels] == ["line", "graffer", "city-page"]


def test_panel_says_when_facts_are_samples_and_gives_hours() -> None:
    cat = load_catalog(CATALOG_DIR / "catalog.yaml")
    panel = cat.panel("juminhyo")
    assert "fee" in panel["sample"]
    assert "サンプル" in panel["sample_note"]["ja"] and "sample" in panel["sample_note"]["en"]
    assert "8:30" in panel["hours"]["ja"] and "17:00" in panel["hours"]["en"]
    assert "url" not in str(panel["channels"])  # links leave the server only on KIOSK_CHOOSE


# -- links ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        (lambda: line_account_url("sample-machida"), "https://line.me/R/ti/p/@sample-machida"),
        (
            lambda: line_chat_url("sample-machida", "住民票"),
            "https://line.me/R/oaMessage/@sample-machida/?%E4%BD%8F%E6%B0%91%E7%A5%A8",
        ),
        (
            lambda: line_chat_url("abc", "粗大ごみ 出したい&x=1"),
            "https://line.me/R/oaMessage/@abc/?%E7%B2%97%E5%A4%A7%E3%81%94%E3%81%BF%20"
            "%E5%87%BA%E3%81%97%E3%81%9F%E3%81%84%26x%3D1",
        ),
        (
            lambda: liff_url("2000000000-Sample01", "/juminhyo"),
            "https://liff.line.me/2000000000-Sample01/juminhyo",
        ),
        (lambda: liff_url("2000000000-Sample01"), "https://liff.line.me/2000000000-Sample01"),
        (
            lambda: web_url("https://www.city.machida.tokyo.jp", "/くらし/a b.html"),
            "https://www.city.machida.tokyo.jp/%E3%81%8F%E3%82%89%E3%81%97/a%20b.html",
        ),
    ],
)
def test_links_follow_the_documented_forms_and_percent_encode_utf8(
    built: Any, expected: str
) -> None:
    url = built()
    assert url == expected
    assert check_url(url, ALLOW) == url


@pytest.mark.parametrize(
    "bad",
    [
        lambda: line_account_url("@sample"),
        lambda: line_account_url("Sample Machida"),
        lambda: line_chat_url("abc", "  "),
        lambda: liff_url("not-a-liff-id"),
        lambda: web_url("https://www.city.machida.tokyo.jp", "//evil.example/x"),
        lambda: web_url("https://www.city.machida.tokyo.jp", "/a/../../x"),
        lambda: web_url("https://www.city.machida.tokyo.jp", "relative"),
        lambda: web_url("https://www.city.machida.tokyo.jp", "/a?next=https://evil.example"),
    ],
)
def test_link_parts_that_could_leave_the_host_are_refused(bad: Any) -> None:
    with pytest.raises(LinkError):
        bad()


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://line.me/R/ti/p/@x", "https"),
        ("https://evil.example/", "evil.example"),
        ("https://line.me.evil.example/", "line.me.evil.example"),
        ("https://line.me@evil.example/", "user name"),
        ("https://evil.example\\@line.me/", "backslash"),
        ("https://line.me:8443/", "port"),
        ("https://line.me/#x", "fragment"),
        ("javascript:alert(1)", "https"),
        ("https://www.city.machida.tokyo.jp/ü", "ASCII"),
    ],
)
def test_check_url_refuses_everything_off_the_allow_list(url: str, says: str) -> None:
    with pytest.raises(LinkError, match=re.escape(says)):
        check_url(url, ALLOW)


def test_allow_list_file_problems_name_the_line(tmp_path: Path) -> None:
    f = tmp_path / "allowlist.txt"
    f.write_text("line.me\nhttps://line.me/\nline.me\n", encoding="utf-8")
    with pytest.raises(DataError) as e:
        AllowList.load(f)
    assert e.value.problems == [
        f"{f}:line 2: expected a lower-case host name such as line.me, got 'https://line.me/'",
        f"{f}:line 3: expected each host once, 'line.me' repeats",
    ]


# -- a bad catalog fails with its places -----------------------------------------------------


def _base() -> dict[str, Any]:
    text = {"ja": "テキスト", "en": "text"}
    return {
        "version": 1,
        "defaults": {
            "hours": text,
            "place": text,
            "sample_note": text,
            "city_page": "https://www.city.machida.tokyo.jp/",
        },
        "line": {"account": "sample-machida", "liff_id": "2000000000-Sample01"},
        "channels": [
            {
                "id": cid,
                "priority": i + 1,
                "label": text,
                "how": text,
                "devices": ["phone"],
                "identity": False,
                "payment": False,
                **({} if cid == "line" else {"base": "https://www.city.machida.tokyo.jp"}),
            }
            for i, cid in enumerate(CHANNEL_IDS)
        ],
        "items": [
            {
                "id": "juminhyo",
                "kind": "procedure",
                "section": text,
                "title": text,
                "summary": text,
                "who": text,
                "bring": [text],
                "counter": text,
                "fee": text,
                "pay_online": True,
                "channels": [
                    {"channel": "line", "via": "chat", "text": "住民票"},
                    {"channel": "city-page", "path": "/juminhyo"},
                ],
            },
            {
                "id": "city-website",
                "kind": "link",
                "title": text,
                "summary": text,
                "channels": [{"channel": "city-page", "path": "/"}],
            },
        ],
    }


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    (tmp_path / "allowlist.txt").write_text(
        "line.me\nliff.line.me\nwww.city.machida.tokyo.jp\n", encoding="utf-8"
    )
    p = tmp_path / "catalog.yaml"
    p.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return p


def _problems(tmp_path: Path, data: dict[str, Any]) -> list[str]:
    p = _write(tmp_path, data)
    with pytest.raises(DataError) as e:
        load_catalog(p)
    return e.value.problems


def test_base_fixture_loads(tmp_path: Path) -> None:
    cat = load_catalog(_write(tmp_path, _base()))
    assert cat.items["juminhyo"].channel("line").url == (  # type: ignore[union-attr]
        "https://line.me/R/oaMessage/@sample-machida/?%E4%BD%8F%E6%B0%91%E7%A5%A8"
    )


def test_host_off_the_allow_list_names_the_entry_and_the_host(tmp_path: Path) -> None:
    d = _base()
    d["items"][0]["channels"][1] = {"channel": "city-page", "url": "https://evil.example/phish"}
    (problem,) = _problems(tmp_path, d)
    assert re.match(
        rf"{re.escape(str(tmp_path / 'catalog.yaml'))}:\d+: items\[0\]\.channels\[1\]\.url: ",
        problem,
    ), problem
    assert "expected a host in the allow-list" in problem and "'evil.example'" in problem


def test_missing_field_names_the_item(tmp_path: Path) -> None:
    d = _base()
    del d["items"][0]["fee"]
    (problem,) = _problems(tmp_path, d)
    assert re.fullmatch(
        rf"{re.escape(str(tmp_path / 'catalog.yaml'))}:\d+: items\[0\]\.fee: "
        r"expected a text \{ja: \.\.\., en: \.\.\.\}, got nothing",
        problem,
    ), problem


def test_duplicate_id_names_both_places(tmp_path: Path) -> None:
    d = _base()
    d["items"].append(copy.deepcopy(d["items"][0]))
    (problem,) = _problems(tmp_path, d)
    assert re.search(r":\d+: items\[2\]\.id: ", problem), problem
    assert 'expected an id used once (also items[0].id), got "juminhyo"' in problem


@pytest.mark.parametrize(
    ("channel", "place", "says"),
    [
        (
            {"channel": "fax", "path": "/"},
            "items[0].channels[0].channel",
            'a channel among line, graffer, mynaportal, tokyo-eapp, city-page, got "fax"',
        ),
        (
            {"channel": "line", "via": "carrier-pigeon"},
            "items[0].channels[0].via",
            'one of chat, account, rich-menu, liff, got "carrier-pigeon"',
        ),
        (
            {"channel": "line", "via": "chat"},
            "items[0].channels[0].text",
            "a non-empty string, got nothing",
        ),
        (
            {"channel": "graffer", "path": "/x", "url": "https://line.me/"},
            "items[0].channels[0]",
            "exactly one of 'path'",
        ),
        (
            {"channel": "city-page", "path": "//evil.example/"},
            "items[0].channels[0]",
            "a path starting with one '/'",
        ),
        (
            {"channel": "city-page", "path": "/x", "redirect": "https://evil.example"},
            "items[0].channels[0].redirect",
            'got unknown key "redirect"',
        ),
    ],
)
def test_bad_channel_is_reported_at_its_place(
    tmp_path: Path, channel: dict[str, Any], place: str, says: str
) -> None:
    d = _base()
    d["items"][0]["channels"] = [channel]
    problems = _problems(tmp_path, d)
    assert any(f": {place}: expected " in p and says in p for p in problems), problems


def test_every_problem_is_reported_at_once_one_line_each(tmp_path: Path) -> None:
    d = _base()
    del d["items"][0]["title"]
    d["items"][1]["kind"] = "kiosk"
    d["line"]["account"] = "Not Valid"
    d["channels"][0], d["channels"][1] = d["channels"][1], d["channels"][0]
    problems = _problems(tmp_path, d)
    assert len(problems) >= 4
    assert all("\n" not in p and ": expected " in p for p in problems)
    joined = "\n".join(problems)
    for place in ("items[0].title", "items[1].kind", "line.account", "channels"):
        assert re.search(rf":\d+: {re.escape(place)}: expected ", joined), place


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "allowlist.txt").write_text("line.me\n", encoding="utf-8")
    p = tmp_path / "catalog.yaml"
    p.write_text("version: 1\nitems: [\n  {id: x\n", encoding="utf-8")
    with pytest.raises(DataError) as e:
        load_catalog(p)
    (problem,) = e.value.problems
    assert problem.startswith(f"{p}:4: (document): expected valid YAML, got "), problem
