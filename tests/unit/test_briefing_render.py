"""Rendering: deterministic assets, a cache that never renders twice, visemes and captions that
follow the voice."""

from __future__ import annotations

import io
import json
import wave
from pathlib import Path

import pytest

from assets_manifest.store import AssetStore
from server.briefing import tts
from server.briefing.render import RenderStats, render_script, render_segment
from server.briefing.script import parse_script
from tests.tools import require_module

SCRIPT = """\
format: emachi-briefing/1
id: unit
title: 単体テスト
date: 2024-01-02
cast:
  - {avatar: clerk, role: 事務局, name: 情報システム課, voice: ja-openjtalk, speed: 0.9}
  - {avatar: guide, role: guide, name: Guide, voice: en-espeak, speed: 1.0}
segments:
  - speaker: clerk
    slide: {title: 一, bullets: [戦略1]}
    narration: 論点1は、戦略1と2にあたります。 改定の方向性を整理しました。
    pause_after: 0.5
  - speaker: guide
    slide: {title: Two, bullets: [English]}
    narration: Welcome to the city hall. Please take a seat.
    pause_after: 0
"""


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, RenderStats]:
    data = tmp_path_factory.mktemp("data")
    stats = RenderStats()
    timeline = render_script(parse_script(SCRIPT, "unit.yaml"), data, stats=stats)
    return data, timeline, stats


def _wav(data: Path, sha: str) -> tuple[int, int]:
    with wave.open(io.BytesIO((data / "assets" / sha).read_bytes())) as w:
        return w.getframerate(), w.getnframes()


def _visemes(data: Path, sha: str) -> dict:
    return json.loads((data / "assets" / sha).read_bytes())


def test_every_segment_has_audio_that_browsers_decode(
    rendered: tuple[Path, dict, RenderStats],
) -> None:
    data, timeline, stats = rendered
    assert stats.rendered == 2
    store = AssetStore(data / "assets")
    for seg in timeline["segments"]:
        entry = store.get(seg["audio"])
        assert entry is not None and entry.media_type == "audio/wav"
        rate, frames = _wav(data, seg["audio"])
        assert frames / rate == pytest.approx(seg["duration"], abs=0.002)
        assert seg["duration"] > 1.0
    assert (data / "briefings" / "unit.json").exists()


def test_same_input_gives_the_same_asset_hash(
    tmp_path: Path, rendered: tuple[Path, dict, RenderStats]
) -> None:
    _, first, _ = rendered
    again = render_script(parse_script(SCRIPT, "unit.yaml"), tmp_path / "other")
    assert [s["audio"] for s in again["segments"]] == [s["audio"] for s in first["segments"]]
    assert [s["audio_opus"] for s in again["segments"]] == [
        s["audio_opus"] for s in first["segments"]
    ]
    assert [s["visemes"] for s in again["segments"]] == [s["visemes"] for s in first["segments"]]


def test_a_second_render_takes_everything_from_the_cache(
    rendered: tuple[Path, dict, RenderStats],
) -> None:
    data, first, _ = rendered
    stats = RenderStats()
    again = render_script(parse_script(SCRIPT, "unit.yaml"), data, stats=stats)
    assert (stats.rendered, stats.cached) == (0, 2)
    assert again["segments"] == first["segments"]


def test_changing_the_speed_renders_anew_and_slower_is_longer(tmp_path: Path) -> None:
    script = parse_script(SCRIPT, "unit.yaml")
    store = AssetStore(tmp_path / "assets")
    seg = script.segments[0]
    slow = render_segment(seg, script.cast[0], store, tmp_path / "cache")
    faster = script.cast[0].__class__(
        **{
            **{f: getattr(script.cast[0], f) for f in ("avatar", "role", "name", "voice")},
            "speed": 1.0,
        }
    )
    fast = render_segment(seg, faster, store, tmp_path / "cache")
    assert slow["audio"] != fast["audio"]
    assert slow["duration"] > fast["duration"] * 1.05


@pytest.mark.parametrize("index", [0, 1])
def test_visemes_cover_the_whole_audio_without_gaps(
    rendered: tuple[Path, dict, RenderStats], index: int
) -> None:
    data, timeline, _ = rendered
    seg = timeline["segments"][index]
    track = _visemes(data, seg["visemes"])
    cues = track["cues"]
    assert cues[0][0] == 0.0
    assert cues[-1][1] == pytest.approx(seg["duration"], abs=0.001)
    for a, b in zip(cues, cues[1:], strict=False):
        assert a[1] == b[0] and a[2] != b[2]
    assert len(track["env"]) >= seg["duration"] * track["env_fps"] - 1


@pytest.mark.parametrize("index", [0, 1])
def test_the_mouth_moves_while_speaking_and_rests_in_silence(
    rendered: tuple[Path, dict, RenderStats], index: int
) -> None:
    data, timeline, _ = rendered
    seg = timeline["segments"][index]
    cues = _visemes(data, seg["visemes"])["cues"]
    vowels = [c for c in cues if c[2] in "AIUEO"]
    assert len({c[2] for c in vowels}) >= 3, "several vowel shapes"
    assert len(cues) >= seg["duration"] * 4, "the shape changes several times a second"
    assert cues[0][2] == "X" and cues[-1][2] == "X", "closed before and after speech"
    speaking = sum(c[1] - c[0] for c in cues if c[2] != "X")
    assert 0.4 * seg["duration"] < speaking < seg["duration"]


def test_japanese_visemes_follow_the_phonemes() -> None:
    speech = tts.synthesize("ままま。", "ja-openjtalk", 1.0)
    assert speech.phones is not None
    names = [p.name for p in speech.phones]
    assert names[1:-1] == ["m", "a", "m", "a", "m", "a"]
    assert speech.phones[-1].end == pytest.approx(speech.duration, abs=1e-6)


def test_captions_are_sentences_in_order_inside_the_audio(
    rendered: tuple[Path, dict, RenderStats],
) -> None:
    _, timeline, _ = rendered
    ja, en = timeline["segments"]
    assert [c[2] for c in ja["captions"]] == [
        "論点1は、戦略1と2にあたります。",
        "改定の方向性を整理しました。",
    ]
    assert [c[2] for c in en["captions"]] == ["Welcome to the city hall.", "Please take a seat."]
    for seg in (ja, en):
        caps = seg["captions"]
        assert caps[0][0] == 0.0
        for start, end, _ in caps:
            assert 0.0 <= start < end <= seg["duration"]
        for a, b in zip(caps, caps[1:], strict=False):
            assert a[1] <= b[0]


def test_timeline_places_segments_one_after_another(
    rendered: tuple[Path, dict, RenderStats],
) -> None:
    _, timeline, _ = rendered
    a, b = timeline["segments"]
    assert a["start"] == 0.0
    assert b["start"] == pytest.approx(a["duration"] + a["pause_after"], abs=0.002)
    assert timeline["duration"] == pytest.approx(b["start"] + b["duration"], abs=0.002)


def test_japanese_narration_also_comes_as_a_smaller_ogg_opus_of_the_same_length(
    rendered: tuple[Path, dict, RenderStats],
) -> None:
    soundfile = require_module("soundfile")
    data, timeline, _ = rendered
    ja, en = timeline["segments"]
    assert en["audio_opus"] is None, "espeak-ng's 22.05 kHz is not an Opus rate: WAV only"
    opus = (data / "assets" / ja["audio_opus"]).read_bytes()
    wav = (data / "assets" / ja["audio"]).read_bytes()
    assert opus[:4] == b"OggS" and len(opus) * 5 < len(wav)
    samples, rate = soundfile.read(io.BytesIO(opus))
    assert len(samples) / rate == pytest.approx(ja["duration"], abs=0.002)
    assert AssetStore(data / "assets").get(ja["audio_opus"]).media_type == "audio/ogg"
