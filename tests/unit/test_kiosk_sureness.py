"""The helpers say how sure they are: only an item's own name or a known alias is answered as
that item; a typo, a compound or the start of a name is a guess, said as one, with candidates.
And the moving checklist's answers and ticks travel to a phone as ids only."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from server.config import ROOT
from server.kiosk.catalog import load_catalog
from server.kiosk.garbage import GarbageGuide, load_garbage
from server.kiosk.moving import AnswerError, MovingGuide, load_moving

CATALOG_DIR = ROOT / "worlds" / "machida-city-hall" / "catalog"


@pytest.fixture(scope="module")
def garbage() -> GarbageGuide:
    return load_garbage(CATALOG_DIR / "garbage.yaml", load_catalog(CATALOG_DIR / "catalog.yaml"))


# query, match kind, the item answered (ja) or None, candidates that must be offered
SURENESS: list[tuple[str, str | None, str | None, list[str]]] = [
    # the item's own name, reading, English name: sure
    ("いす", "name", "いす", []),
    ("ソファ（1人掛け）", "name", "ソファ（1人掛け）", []),
    ("けいこうとう", "name", "蛍光灯", []),
    ("chair", "name", "いす", []),
    # a known alias: sure
    ("チェア", "alias", "いす", []),
    ("ｿﾌｧｰ", "name", "ソファ（2人掛け以上）", []),  # its reading, in half-width kana
    ("couch", "alias", "ソファ（2人掛け以上）", []),
    ("ノートパソコン", "alias", "パソコン", []),
    # a typo: a guess
    ("ソフア", "typo", "ソファ（2人掛け以上）", ["ソファ（2人掛け以上）"]),
    ("ベット", "typo", "ベッド（シングル）", ["ベッド（シングル）", "マットレス"]),
    ("蛍光燈", "typo", "蛍光灯", ["蛍光灯"]),
    # a known item only as part of the query: a guess, never the item with confidence
    ("マッサージチェア", "contains", "いす", ["いす", "ソファ（1人掛け）"]),
    (
        "ソファベッド",
        "contains",
        "ベッド（シングル）",
        ["ベッド（シングル）", "ソファ（2人掛け以上）"],
    ),
    ("古い２人掛けのソファ", "contains", "ソファ（2人掛け以上）", ["ソファ（2人掛け以上）"]),
    ("シーリング", "prefix", "シーリングライト", ["シーリングライト"]),
    # unknown: not found, said plainly
    ("宇宙船", None, None, []),
]


@pytest.mark.parametrize(("query", "match", "item", "offered"), SURENESS)
def test_garbage_guide_says_how_sure_it_is(
    garbage: GarbageGuide, query: str, match: str | None, item: str | None, offered: list[str]
) -> None:
    a = garbage.lookup(query)
    assert a["match"] == match
    if item is None:
        assert a["found"] is False and "ありません" in a["message"]["ja"]
        return
    assert a["item"]["name"]["ja"] == item
    names = [s["ja"] for s in a["suggestions"]]
    if match in ("name", "alias"):
        assert a["sure"] is True and "guess" not in a and names == []
    else:
        assert a["sure"] is False
        assert a["guess"]["ja"].startswith(f"近い名前で調べました: {item}")
        assert a["guess"]["en"].startswith("Closest match: ")
        assert names[0] == item, "the guessed item is the first candidate"
        assert set(offered) <= set(names) and len(names) <= 3 and len(set(names)) == len(names)


def test_the_massage_chair_is_not_a_400_yen_chair_with_confidence(garbage: GarbageGuide) -> None:
    a = garbage.lookup("マッサージチェア")
    assert a["item"]["fee"]["yen"] == 400  # the nearest item's fee is still shown ...
    assert a["sure"] is False and "マッサージチェア" in a["guess"]["ja"]  # ... as a guess


def test_a_candidate_picked_is_then_answered_surely(garbage: GarbageGuide) -> None:
    """The client asks again with a candidate's name: that one is exact."""
    for s in garbage.lookup("ソファベッド")["suggestions"]:
        again = garbage.lookup(s["ja"])
        assert again["sure"] is True and again["item"]["name"] == s


# -- the moving checklist carried to a phone --------------------------------------------------


@pytest.fixture(scope="module")
def moving() -> MovingGuide:
    return load_moving(CATALOG_DIR / "moving.yaml", load_catalog(CATALOG_DIR / "catalog.yaml"))


def test_a_checklist_and_its_ticks_go_to_the_phone_and_back(moving: MovingGuide) -> None:
    answers = {"direction": "out", "who": "alone", "nhi": True}
    q = moving.share_query(answers, ["nhi-leave", "move-out-notice"])
    # question and step ids only, ticks in checklist order, a "no" left out
    assert q == "direction=out&who=alone&nhi=1&done=move-out-notice,nhi-leave"
    back, done = moving.parse_share(dict(parse_qsl(q)))
    assert back == moving.normalise(answers) and done == ["move-out-notice", "nhi-leave"]
    assert moving.checklist(answers)["share"] == "direction=out&who=alone&nhi=1"


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ({"direction": "out"}, "for 'who'"),
        ({"direction": "out", "who": "alone", "nhi": "maybe"}, "1 or 0 for 'nhi'"),
        ({"direction": "out", "who": "alone", "name": "山田"}, "'name' is not a question"),
        ({"direction": "out", "who": "alone", "done": "school"}, "'school' is not one"),
    ],
)
def test_a_shared_link_with_anything_else_is_refused(
    moving: MovingGuide, query: dict[str, str], says: str
) -> None:
    with pytest.raises(AnswerError, match=says):
        moving.parse_share(query)


def test_a_tick_outside_the_checklist_is_not_written(moving: MovingGuide) -> None:
    with pytest.raises(AnswerError, match="'school' is not one"):
        moving.share_query({"direction": "out", "who": "alone"}, ["school"])
