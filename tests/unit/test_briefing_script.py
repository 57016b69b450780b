"""Briefing scripts: the committee script loads; every problem is reported with its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.briefing.script import ScriptError, load_script, parse_script

ROOT = Path(__file__).resolve().parents[2]
COMMITTEE = ROOT / "briefings" / "2022-06-29-digital-committee.yaml"

GOOD = """\
format: emachi-briefing/1
title: Test briefing
date: 2024-01-02
cast:
  - avatar: host
    role: staff
    name: Host
    voice: ja-openjtalk
    speed: 0.9
segments:
  - speaker: host
    slide:
      title: One
      bullets: [a, b]
    narration: こんにちは。
    pause_after: 0.5
"""


def test_committee_script_is_the_secretariats_two_explanations_at_speed_09() -> None:
    s = load_script(COMMITTEE)
    assert s.id == "2022-06-29-digital-committee"
    assert s.date == "2022-06-29"
    assert {m.speed for m in s.cast} == {0.9}
    assert s.segments[0].narration.startswith("今回、改定する、4つの戦略からなる")
    assert any("論点2を説明します" in seg.narration for seg in s.segments)
    assert s.segments[-1].slide.bullets[0].startswith("1 印鑑登録証明書")
    assert all(seg.slide.title for seg in s.segments)


def test_a_good_script_parses() -> None:
    s = parse_script(GOOD, "good.yaml")
    assert s.id == "briefing"
    assert s.cast[0].voice == "ja-openjtalk"
    assert s.segments[0].slide.bullets == ("a", "b")
    assert s.segments[0].pause_after == 0.5


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ("format: emachi-briefing/1", "format: 2"),
            "x.yaml:1: format: expected format: emachi-briefing/1, got 2",
        ),
        (
            ("date: 2024-01-02", "date: soon"),
            'x.yaml:3: date: expected a date YYYY-MM-DD, got "soon"',
        ),
        (
            ("voice: ja-openjtalk", "voice: fr-robot"),
            'x.yaml:8: cast[0].voice: expected a voice, one of en-espeak, ja-openjtalk, got "fr-robot"',
        ),
        (
            ("speed: 0.9", "speed: 5"),
            "x.yaml:9: cast[0].speed: expected a number between 0.5 and 2.0, got 5",
        ),
        (
            ("speaker: host", "speaker: guest"),
            'x.yaml:11: segments[0].speaker: expected a speaker that is an avatar of cast (host), got "guest"',
        ),
        (
            ("      bullets: [a, b]\n", ""),
            "x.yaml:12: segments[0].slide: expected bullets (a list of lines) or an image",
        ),
        (
            ("narration: こんにちは。", "narration: ''"),
            'x.yaml:15: segments[0].narration: expected a non-empty string, got ""',
        ),
        (
            ("pause_after: 0.5", "pause_after: -1"),
            "x.yaml:16: segments[0].pause_after: expected a number between 0.0 and 30.0, got -1",
        ),
        (
            ("    pause_after: 0.5", "    pause_after: 0.5\n    music: loud"),
            'x.yaml:17: segments[0].music: expected one of the keys speaker, slide, narration, pause_after, got unknown key "music"',
        ),
        (
            ("      title: One\n", "      title: One\n      image: cat.png\n"),
            'x.yaml:14: segments[0].slide.image: expected the sha256 of an image asset (64 hex digits), got "cat.png"',
        ),
    ],
)
def test_each_problem_names_file_line_place_and_what_was_expected(
    edit: tuple[str, str], expected: str
) -> None:
    text = GOOD.replace(*edit)
    assert text != GOOD
    with pytest.raises(ScriptError) as e:
        parse_script(text, "x.yaml")
    assert expected in e.value.problems, e.value.problems


def test_all_problems_are_listed_not_just_the_first() -> None:
    text = GOOD.replace("speed: 0.9", "speed: fast").replace("speaker: host", "speaker: nobody")
    with pytest.raises(ScriptError) as e:
        parse_script(text, "x.yaml")
    assert len(e.value.problems) == 2
    assert all(p.startswith("x.yaml:") for p in e.value.problems)


def test_broken_yaml_names_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("title: a\ncast: [\n", encoding="utf-8")
    with pytest.raises(ScriptError) as e:
        load_script(bad)
    assert e.value.problems[0].startswith(f"{bad}:3: (document): expected valid YAML, got ")


def test_missing_sections_are_reported_at_the_top() -> None:
    with pytest.raises(ScriptError) as e:
        parse_script("format: emachi-briefing/1\ntitle: t\ndate: 2024-01-01\n", "x.yaml")
    assert "x.yaml:1: cast: expected a non-empty list, got nothing" in e.value.problems
    assert "x.yaml:1: segments: expected a non-empty list, got nothing" in e.value.problems


def test_the_check_command_prints_each_problem_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from server.briefing.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("speed: 0.9", "speed: 9"), encoding="utf-8")
    assert main(argparse.Namespace(briefing_command="check", script=bad)) == 1
    out = capsys.readouterr()
    assert f"{bad}:9: cast[0].speed: expected a number between 0.5 and 2.0, got 9" in out.out
    assert main(argparse.Namespace(briefing_command="check", script=COMMITTEE)) == 0
    assert "ok (11 segments" in capsys.readouterr().out
