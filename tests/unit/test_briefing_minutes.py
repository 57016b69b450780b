"""Questions (limits, moderation) and the minutes written from a played briefing."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.briefing.minutes import Attendance, Minutes, render_html, write_minutes
from server.briefing.questions import QuestionError, QuestionQueue, RateLimit


def test_questions_are_length_limited_and_folded() -> None:
    q = QuestionQueue()
    assert q.ask("  いつから\n使えますか？ ", 1.0).text == "いつから 使えますか？"
    with pytest.raises(QuestionError) as e:
        q.ask("あ" * 301, 2.0)
    assert e.value.code == "question_long"
    with pytest.raises(QuestionError):
        q.ask("   ", 3.0)


def test_a_viewer_may_ask_three_questions_a_minute() -> None:
    limit = RateLimit()
    for t in (0.0, 1.0, 2.0):
        limit.take(t)
    with pytest.raises(QuestionError) as e:
        limit.take(30.0)
    assert e.value.code == "question_rate"
    limit.take(61.0)


def test_staff_show_one_question_at_a_time_and_viewers_see_only_those_taken() -> None:
    q = QuestionQueue()
    a, b, _ = (q.ask(t, 0.0) for t in ("一", "二", "三"))
    assert q.public() == []
    q.move(a.id, "show")
    q.move(b.id, "show")
    assert [(x["id"], x["state"]) for x in q.public()] == [(b.id, "shown")]
    q.move(b.id, "answered")
    with pytest.raises(QuestionError):
        q.move(b.id, "answered")
    with pytest.raises(QuestionError) as e:
        q.move(99, "show")
    assert e.value.code == "question_unknown"
    assert [x.text for x in q.taken()] == ["二"]


def test_minutes_hold_narration_questions_attendance_and_duration(tmp_path: Path) -> None:
    m = Minutes(
        id="x",
        title="委員会 <テスト>",
        date="2022-06-29",
        started_at=1_656_489_600_000.0,
        ended_at=1_656_490_200_000.0,
        duration=600.0,
        spoken=[
            {
                "index": 0,
                "role": "事務局",
                "name": "情報システム課",
                "narration": "論点1は、戦略1と2にあたります。",
                "slide": {"title": "論点1"},
            }
        ],
        questions=[{"id": 1, "text": "いつから？", "state": "answered"}],
        attendance=Attendance(hall=3, online=181, hall_peak=3, online_peak=150),
    )
    md, page = write_minutes(m, tmp_path)
    text = md.read_text(encoding="utf-8")
    assert "論点1は、戦略1と2にあたります。" in text
    assert "184名 (ホール in the hall: 3名, オンライン online: 181名" in text
    assert "いつから？ (回答済 answered)" in text
    assert "10分00秒" in text
    html = page.read_text(encoding="utf-8")
    assert "委員会 &lt;テスト&gt;" in html and '<span id="online">181</span>' in html
    assert render_html(m) == html


def test_what_viewers_see_of_the_queue_stays_small() -> None:
    q = QuestionQueue()
    for i in range(100):
        q.move(q.ask(f"質問{i}" + "あ" * 290, 0.0).id, "answered")
    q.move(q.ask("いま画面に", 0.0).id, "show")
    public = q.public()
    assert len(public) == 21 and public[0]["text"] == "いま画面に"
    assert public[-1]["text"].startswith("質問99")
