"""The two helpers against tables of inputs and answers: moving checklist, bulky-garbage guide."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from server.config import ROOT
from server.kiosk.catalog import Catalog, load_catalog
from server.kiosk.datafile import DataError
from server.kiosk.garbage import GarbageGuide, QueryError, edit_distance, load_garbage, normalise
from server.kiosk.moving import AnswerError, MovingGuide, load_moving

CATALOG_DIR = ROOT / "worlds" / "machida-city-hall" / "catalog"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(CATALOG_DIR / "catalog.yaml")


@pytest.fixture(scope="module")
def moving(catalog: Catalog) -> MovingGuide:
    return load_moving(CATALOG_DIR / "moving.yaml", catalog)


@pytest.fixture(scope="module")
def garbage(catalog: Catalog) -> GarbageGuide:
    return load_garbage(CATALOG_DIR / "garbage.yaml", catalog)


# -- moving-house checklist ----------------------------------------------------------------

MOVING_TABLE: list[tuple[dict[str, Any], list[str]]] = [
    (
        {"direction": "in", "who": "alone"},
        ["move-in-notice", "my-number-card", "seal-registration", "bulky-garbage"],
    ),
    (
        {"direction": "within", "who": "household"},
        ["move-within-notice", "my-number-card", "bulky-garbage"],
    ),
    ({"direction": "out", "who": "alone"}, ["move-out-notice", "bulky-garbage"]),
    (
        {"direction": "in", "who": "household", "nhi": True, "children": True},
        [
            "move-in-notice",
            "my-number-card",
            "seal-registration",
            "nhi-join",
            "child-allowance-apply",
            "child-medical",
            "school",
            "bulky-garbage",
        ],
    ),
    (
        {"direction": "within", "who": "part", "nhi": True, "children": True, "pet": True},
        [
            "move-within-notice",
            "my-number-card",
            "household-change",
            "nhi-address",
            "child-address",
            "school",
            "dog",
            "bulky-garbage",
        ],
    ),
    (
        {
            "direction": "out",
            "who": "part",
            "nhi": True,
            "children": True,
            "car": True,
            "pet": True,
        },
        [
            "move-out-notice",
            "household-change",
            "nhi-leave",
            "child-leave",
            "driving",
            "moped",
            "dog-out",
            "bulky-garbage",
        ],
    ),
    (
        {"direction": "within", "who": "alone", "car": True},
        ["move-within-notice", "my-number-card", "driving", "bulky-garbage"],
    ),
]


@pytest.mark.parametrize(("answers", "steps"), MOVING_TABLE)
def test_moving_checklist_gives_the_procedures_for_the_answers(
    moving: MovingGuide, answers: dict[str, Any], steps: list[str]
) -> None:
    assert [s["id"] for s in moving.checklist(answers)["steps"]] == steps


def test_moving_out_can_be_done_online_now_on_mynaportal(moving: MovingGuide) -> None:
    a = moving.checklist({"direction": "out", "who": "alone"})
    assert a["online_now"] == ["move-out-notice", "bulky-garbage"]
    step = a["steps"][0]
    assert step["online"]["channel"] == "mynaportal"
    assert step["online"]["url"].startswith("https://myna.go.jp")
    assert step["counter"]["ja"].startswith("市民課")
    assert "14日" in step["deadline"]["ja"]


def test_moving_checklist_gathers_what_to_bring_and_counters_without_repeats(
    moving: MovingGuide,
) -> None:
    a = moving.checklist({"direction": "in", "who": "household", "nhi": True, "children": True})
    bring = [b["ja"] for b in a["bring"]]
    assert len(bring) == len(set(bring))
    assert "引越す人全員のマイナンバーカード" in bring
    counters = [c["ja"] for c in a["counters"]]
    assert counters[0] == "市民課（市庁舎）・各市民センター" and len(counters) == len(set(counters))
    assert "保険年金課（市庁舎）" in counters
    assert "サンプル" in a["sample_note"]["ja"]


@pytest.mark.parametrize(
    ("answers", "says"),
    [
        ({}, "one of in, within, out for 'direction'"),
        (
            {"direction": "sideways", "who": "alone"},
            "one of in, within, out for 'direction', got 'sideways'",
        ),
        ({"direction": "in"}, "for 'who'"),
        ({"direction": "in", "who": "alone", "nhi": "yes"}, "true or false for 'nhi'"),
        (
            {"direction": "in", "who": "alone", "address": "森野2-2-22"},
            "'address' is not a question",
        ),
    ],
)
def test_moving_checklist_refuses_incomplete_or_unknown_answers(
    moving: MovingGuide, answers: dict[str, Any], says: str
) -> None:
    with pytest.raises(AnswerError, match=says):
        moving.checklist(answers)


def test_moving_form_lists_the_questions_in_both_languages(moving: MovingGuide) -> None:
    form = moving.form()
    ids = [q["id"] for q in form["questions"]]
    assert ids == ["direction", "who", "nhi", "children", "car", "pet"]
    assert form["questions"][0]["type"] == "choice" and form["questions"][2]["type"] == "yes_no"
    assert all(q["text"]["ja"] and q["text"]["en"] for q in form["questions"])


def test_bad_moving_file_reports_places(tmp_path: Path, catalog: Catalog) -> None:
    data = yaml.safe_load((CATALOG_DIR / "moving.yaml").read_text(encoding="utf-8"))
    data["steps"][0]["when"] = {"direction": ["sideways"], "shoe_size": [42]}
    data["steps"][1]["online"] = {"item": "no-such-item", "channel": "line"}
    data["steps"][2]["online"] = {"channel": "city-page", "url": "https://evil.example/"}
    p = tmp_path / "moving.yaml"
    p.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(DataError) as e:
        load_moving(p, catalog)
    joined = "\n".join(e.value.problems)
    assert ": steps[0].when.direction[0]: " in joined and 'got "sideways"' in joined
    assert ": steps[0].when.shoe_size: " in joined
    assert ": steps[1].online.item: " in joined
    assert ": steps[2].online.url: " in joined and "'evil.example'" in joined


# -- bulky-garbage guide -----------------------------------------------------------------------

GARBAGE_TABLE: list[tuple[str, str, str, int | None]] = [
    # query, item (ja), category id, fee in yen
    ("蛍光灯", "蛍光灯", "hazardous", None),
    ("けいこうとう", "蛍光灯", "hazardous", None),
    ("ケイコウトウ", "蛍光灯", "hazardous", None),
    ("ｹｲｺｳﾄｳ", "蛍光灯", "hazardous", None),
    ("蛍光燈", "蛍光灯", "hazardous", None),  # a variant kanji: one character off
    ("シーリングライト", "シーリングライト", "bulky", 400),
    ("ｼｰﾘﾝｸﾞﾗｲﾄ", "シーリングライト", "bulky", 400),
    ("しーりんぐらいと", "シーリングライト", "bulky", 400),
    ("シーリングライド", "シーリングライト", "bulky", 400),  # typo
    ("シーリング", "シーリングライト", "bulky", 400),  # the start of the name
    ("ソファ", "ソファ（2人掛け以上）", "bulky", 1600),
    ("ソファー", "ソファ（2人掛け以上）", "bulky", 1600),
    ("ｿﾌｧｰ", "ソファ（2人掛け以上）", "bulky", 1600),
    ("ソフア", "ソファ（2人掛け以上）", "bulky", 1600),  # big ア for small ァ
    ("ＳＯＦＡ", "ソファ（2人掛け以上）", "bulky", 1600),  # full-width Latin
    ("古い２人掛けのソファ", "ソファ（2人掛け以上）", "bulky", 1600),
    ("1人掛けソファ", "ソファ（1人掛け）", "bulky", 800),
    ("テレビ台", "テレビ台", "bulky", 800),  # not the television
    ("テレビ", "テレビ", "appliance-recycling", None),
    ("れいぞうこ", "冷蔵庫", "appliance-recycling", None),
    ("ベット", "ベッド（シングル）", "bulky", 1600),
    ("せんぷき", "扇風機", "bulky", 400),
    ("ノートパソコン", "パソコン", "pc-recycling", None),
    ("自転車", "自転車", "bulky", 800),
]


@pytest.mark.parametrize(("query", "name", "category", "fee"), GARBAGE_TABLE)
def test_garbage_guide_finds_the_item_across_scripts_widths_and_typos(
    garbage: GarbageGuide, query: str, name: str, category: str, fee: int | None
) -> None:
    a = garbage.lookup(query)
    assert a["found"], (query, a.get("suggestions"))
    assert a["item"]["name"]["ja"] == name
    assert a["item"]["category"]["id"] == category
    assert a["item"]["fee"]["yen"] == fee
    assert "サンプル" in a["sample_note"]["ja"]


def test_bulky_item_says_how_to_book_online(garbage: GarbageGuide) -> None:
    a = garbage.lookup("ソファ")
    assert a["item"]["fee"]["ja"] == "1,600円"
    channels = [b["channel"] for b in a["booking"]]
    assert channels == ["line", "city-page"]
    assert a["booking"][0]["url"].startswith("https://line.me/R/oaMessage/@")
    assert "電子決済" in a["item"]["how"]["ja"]


def test_hazardous_item_needs_no_booking(garbage: GarbageGuide) -> None:
    a = garbage.lookup("蛍光灯")
    assert a["booking"] == [] and a["item"]["bookable"] is False
    assert "有害ごみ" in a["item"]["category"]["name"]["ja"]
    assert "照明器具" in a["item"]["note"]["ja"]  # the committee's 蛍光灯 vs シーリングライト


@pytest.mark.parametrize("query", ["宇宙船", "ｘｙｚ", "ロケット", "a"])
def test_unknown_item_is_said_plainly_with_the_page(garbage: GarbageGuide, query: str) -> None:
    a = garbage.lookup(query)
    assert a["found"] is False and "item" not in a
    assert "ありません" in a["message"]["ja"] and "not in this guide" in a["message"]["en"]
    assert a["page"].startswith("https://www.city.machida.tokyo.jp/")


def test_a_vague_word_gets_suggestions_not_a_guess(garbage: GarbageGuide) -> None:
    a = garbage.lookup("ライト")
    assert a["found"] is False
    assert {"ja": "シーリングライト", "en": "ceiling light"} in a["suggestions"]


@pytest.mark.parametrize("query", ["", "   ", "あ" * 61])
def test_empty_or_long_query_is_refused(garbage: GarbageGuide, query: str) -> None:
    with pytest.raises(QueryError):
        garbage.lookup(query)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("ソファー", "そふぁ"),
        ("ｿﾌｧｰ", "そふぁ"),
        ("Ｓｏｆａ", "sofa"),
        ("シーリング・ライト", "しりんぐらいと"),
        ("ヴァイオリン", "ぶぁいおりん"),
        ("蛍光灯　", "蛍光灯"),
    ],
)
def test_normalise_folds_width_kana_and_marks(text: str, key: str) -> None:
    assert normalise(text) == key


@pytest.mark.parametrize(
    ("a", "b", "d"),
    [
        ("そふぁ", "そふぁ", 0),
        ("そふあ", "そふぁ", 1),
        ("べっと", "べっど", 1),
        ("abc", "", 3),
        ("kitten", "sitting", 3),
    ],
)
def test_edit_distance(a: str, b: str, d: int) -> None:
    assert edit_distance(a, b) == d


def test_bad_garbage_file_reports_places(tmp_path: Path, catalog: Catalog) -> None:
    data = yaml.safe_load((CATALOG_DIR / "garbage.yaml").read_text(encoding="utf-8"))
    data["items"][0]["category"] = "space-junk"
    data["items"][1]["aliases"] = ["ソファ"]  # already the sofa's name
    del data["items"][2]["fee"]
    p = tmp_path / "garbage.yaml"
    p.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(DataError) as e:
        load_garbage(p, catalog)
    joined = "\n".join(e.value.problems)
    assert ": items[0].category: " in joined and 'got "space-junk"' in joined
    assert re.search(
        r'expected names no other item uses \(also items\[\d\]\), got "そふぁ"', joined
    )
    assert ": items[2].fee: expected a fee in yen (an integer >= 0) or null, got nothing" in joined
