"""The minutes' narration "as spoken" is what was played, and their times are in the city's zone."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from server.briefing.minutes import list_minutes, render_index, render_markdown, when, write_minutes
from server.briefing.service import LiveBriefing
from server.briefing.timeline import Action

T0 = 1_656_478_800_000.0  # 2022-06-29 05:00:00 UTC = 14:00:00 JST
TOKYO = ZoneInfo("Asia/Tokyo")


def doc() -> dict[str, Any]:
    """Four segments of 10 s narration (two 5 s sentences each) and a 1 s pause."""
    segs = []
    for i in range(4):
        segs.append(
            {
                "index": i,
                "speaker": "a",
                "name": f"委員{i}",
                "role": "委員",
                "start": 11.0 * i,
                "duration": 10.0,
                "pause_after": 1.0,
                "audio": "0" * 64,
                "audio_opus": None,
                "visemes": "1" * 64,
                "narration": f"第{i}文のいち。第{i}文のに。",
                "captions": [[0.0, 5.0, f"第{i}文のいち。"], [5.0, 10.0, f"第{i}文のに。"]],
                "slide": {"title": f"スライド{i}", "bullets": [], "image": None, "alt": ""},
            }
        )
    return {"id": "b1", "title": "説明会", "date": "2022-06-29", "cast": [], "segments": segs}


def at(s: float) -> float:
    return T0 + s * 1000.0


def test_segments_skipped_past_are_not_in_the_narration_as_spoken() -> None:
    b = LiveBriefing(doc())
    b.act(Action.START, at(0))
    b.act(Action.SEEK, at(1), segment=2)  # segment 0 heard for 1 s of its first 5 s sentence
    b.act(Action.SEEK, at(8), segment=3)  # segment 2: its first sentence and 2 s of the second
    b.act(Action.END, at(8 + 11))  # segment 3 played through
    spoken = b.minutes_doc().spoken
    assert [s["index"] for s in spoken] == [2, 3]  # 0 was reached, but not heard; 1 never
    assert spoken[0]["narration"] == "第2文のいち。" and spoken[0]["partly"] is True
    assert spoken[1]["narration"] == "第3文のいち。第3文のに。" and spoken[1]["partly"] is False
    md = render_markdown(b.minutes_doc(), TOKYO)
    assert "第0文" not in md and "第1文" not in md and "第2文のに" not in md
    assert "途中まで" in md


def test_what_was_played_survives_a_snapshot() -> None:
    b = LiveBriefing(doc())
    b.act(Action.START, at(0))
    b.act(Action.SEEK, at(7), segment=3)
    snap = b.snapshot(at(7))
    again = LiveBriefing(doc())
    again.load(snap)
    assert again.played == b.played and again.minutes_doc().spoken == b.minutes_doc().spoken


def test_a_snapshot_from_before_the_spans_counts_whole_segments() -> None:
    b = LiveBriefing(doc())
    b.act(Action.START, at(0))
    b.act(Action.PAUSE, at(12))
    snap = b.snapshot(at(12))
    del snap["played"]
    old = LiveBriefing(doc())
    old.load(snap)
    assert [s["index"] for s in old.minutes_doc().spoken] == [0, 1]


def test_times_are_in_the_city_zone_with_utc_beside(tmp_path: Path) -> None:
    assert when(T0, TOKYO) == "2022-06-29 14:00:00 JST (05:00:00 UTC)"
    assert when(T0, ZoneInfo("Europe/Berlin")) == "2022-06-29 07:00:00 CEST (05:00:00 UTC)"
    assert when(T0) == "2022-06-29 05:00:00 UTC"
    b = LiveBriefing(doc())
    b.act(Action.START, at(0))
    b.act(Action.END, at(30))
    md, page = write_minutes(b.minutes_doc(), tmp_path, TOKYO)
    assert md.name == "b1-20220629T050000Z.md"  # the name stays UTC: links do not move
    assert "開始 started: 2022-06-29 14:00:00 JST" in md.read_text(encoding="utf-8")
    assert "14:00:30 JST" in page.read_text(encoding="utf-8")
    (tmp_path / "minutes" / "notes.txt").write_text("not minutes", encoding="utf-8")
    files = list_minutes(tmp_path / "minutes")
    assert [(f.briefing, f.title, f.formats) for f in files] == [("b1", "説明会", ("html", "md"))]
    index = render_index(files, TOKYO)
    assert 'href="/staff/minutes/b1-20220629T050000Z.html"' in index
    assert 'href="/staff/minutes/b1-20220629T050000Z.md"' in index
    assert "2022-06-29 14:00:00 JST" in index
