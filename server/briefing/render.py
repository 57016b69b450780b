"""Rendering a script: speech for every segment, as content-addressed assets, plus a timeline.

Each segment is synthesized sentence by sentence (a sentence is a caption line, so caption times
are exact), the sentences are joined, and the result is stored in the asset store as a 16-bit
mono WAV (24 kHz for Open JTalk, whose 48 kHz output is halved with a low-pass filter first;
every browser's Web Audio decodes WAV). The viseme track is a JSON asset beside it.

Nothing is rendered twice: a segment's cache key is the hash of its text, voice, speed, the
engine's version and this renderer's version; the key's entry under
``DATA_DIR/briefings/cache/`` names the assets made for it, and is used while they exist.
The rendered timeline (``DATA_DIR/briefings/<id>.json``, also an asset) is what the server plays.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assets_manifest.store import AssetStore
from server.briefing import ogg, tts, visemes
from server.briefing.script import CastMember, Script, Segment

__all__ = [
    "RENDER_VERSION",
    "RenderStats",
    "render_script",
    "render_segment",
    "timeline_path",
    "load_timeline",
    "encode_wav",
    "segment_key",
]

log = logging.getLogger("emachi.briefing.render")

RENDER_VERSION = 2  # 2: an Ogg Opus copy beside the WAV
OUT_RATE_JA = 24000
LICENCES = {
    "ja-openjtalk": "CC-BY-3.0 (HTS voice mei, Nagoya Institute of Technology); Open JTalk BSD-3-Clause",
    "en-espeak": "generated with espeak-ng (GPL-3.0-or-later engine); output free to use",
}


@dataclass(slots=True)
class RenderStats:
    """What one render did: for the CLI's summary and the bench."""

    segments: int = 0
    rendered: int = 0
    cached: int = 0
    audio_seconds: float = 0.0
    synth_seconds: float = 0.0
    audio_bytes: int = 0
    opus_bytes: int = 0
    wall_seconds: float = 0.0


def segment_key(text: str, voice: str, speed: float) -> str:
    """The cache key: same text, voice, speed and engine → same key → same assets."""
    doc = {
        "v": RENDER_VERSION,
        "text": text,
        "voice": voice,
        "speed": round(speed, 4),
        "engine": tts.engine_version(voice),
    }
    return hashlib.sha256(json.dumps(doc, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def encode_wav(samples: np.ndarray, rate: int) -> bytes:
    """16-bit mono PCM WAV, deterministic (no dither)."""
    pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def _halve(samples: np.ndarray) -> np.ndarray:
    """Downsample by two: windowed-sinc low-pass at 0.45 of the new Nyquist band, then decimate."""
    n = np.arange(-31, 32)
    h = 0.45 * np.sinc(0.45 * n) * np.hamming(len(n))
    h /= h.sum()
    return np.convolve(samples.astype(np.float64), h, mode="same")[::2].astype(np.float32)


def render_segment(
    seg: Segment,
    member: CastMember,
    store: AssetStore,
    cache_dir: Path,
    stats: RenderStats | None = None,
    progress: Any = None,
) -> dict[str, Any]:
    """Audio, captions and visemes of one segment, from the cache when it has them.

    Returns ``{audio, visemes, duration, captions: [[start, end, text], ...]}`` (seconds).
    """
    stats = stats if stats is not None else RenderStats()
    key = segment_key(seg.narration, member.voice, member.speed)
    entry_path = cache_dir / f"{key}.json"
    if entry_path.exists():
        try:
            entry = json.loads(entry_path.read_text(encoding="utf-8"))
            shas = [entry["audio"], entry["visemes"], entry.get("audio_opus")]
            if all(store.get(sha) is not None and store.path(sha).exists() for sha in shas if sha):
                stats.cached += 1
                stats.audio_seconds += entry["duration"]
                if progress is not None:
                    progress.update(len(seg.narration))
                return dict(entry)
        except (OSError, ValueError, KeyError):
            log.warning(
                "unreadable render cache entry, rendering again", extra={"path": str(entry_path)}
            )
    t0 = time.perf_counter()
    parts: list[np.ndarray] = []
    captions: list[list[Any]] = []
    cues: list[list[Any]] = []
    rate = 0
    t = 0.0
    done = 0
    for sentence in tts.split_sentences(seg.narration, member.voice):
        speech = tts.synthesize(sentence, member.voice, member.speed)
        rate = speech.rate
        captions.append([round(t, 3), round(t + speech.duration, 3), sentence])
        if speech.phones is not None:
            cues.extend(visemes.from_phones(speech.phones, offset=t))
        else:
            cues.extend(visemes.from_audio(speech.samples, speech.rate, offset=t))
        parts.append(speech.samples)
        t += speech.duration
        if progress is not None:
            progress.update(len(sentence))
            done += len(sentence)
    if progress is not None:
        progress.update(len(seg.narration) - done)
    samples = np.concatenate(parts) if parts else np.zeros(1, dtype=np.float32)
    if rate == 48000:
        samples, rate = _halve(samples), OUT_RATE_JA
    duration = round(len(samples) / rate, 3)
    wav = encode_wav(samples, rate)
    base = member.voice.split(":", 1)[0]
    audio = store.put(
        wav,
        media_type="audio/wav",
        licence=LICENCES[base],
        source=f"emachi briefing render ({tts.engine_version(member.voice)})",
    )
    opus_bytes = ogg.encode_opus(samples, rate)
    opus = (
        store.put(
            opus_bytes,
            media_type="audio/ogg",
            licence=LICENCES[base],
            source=f"emachi briefing render ({tts.engine_version(member.voice)}), Opus",
        ).sha256
        if opus_bytes is not None
        else None
    )
    track = visemes.track(cues, samples, rate)
    vis = store.put(
        json.dumps(track, separators=(",", ":")).encode(),
        media_type="application/json",
        licence=LICENCES[base],
        source="emachi briefing render: viseme track",
    )
    if captions:
        captions[-1][1] = min(captions[-1][1], duration)
    entry = {
        "audio": audio.sha256,
        "audio_opus": opus,
        "visemes": vis.sha256,
        "duration": duration,
        "captions": captions,
        "audio_bytes": len(wav),
        "rate": rate,
    }
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = entry_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entry, ensure_ascii=False), encoding="utf-8")
    tmp.replace(entry_path)
    stats.rendered += 1
    stats.audio_seconds += duration
    stats.synth_seconds += time.perf_counter() - t0
    stats.audio_bytes += len(wav)
    stats.opus_bytes += len(opus_bytes or b"")
    return entry


def timeline_path(data_dir: Path, briefing_id: str) -> Path:
    return Path(data_dir) / "briefings" / f"{briefing_id}.json"


def render_script(
    script: Script, data_dir: Path, *, progress: bool = False, stats: RenderStats | None = None
) -> dict[str, Any]:
    """Render every segment of ``script`` and write its timeline; returns the timeline.

    The timeline is written to ``DATA_DIR/briefings/<id>.json`` and put in the asset store.
    Raises :class:`server.briefing.tts.TTSError` when a synthesizer is missing or fails.
    """
    stats = stats if stats is not None else RenderStats()
    t0 = time.perf_counter()
    data_dir = Path(data_dir)
    store = AssetStore(data_dir / "assets")
    cache_dir = data_dir / "briefings" / "cache"
    bar: Any = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(
            total=sum(len(s.narration) for s in script.segments),
            unit="char",
            desc=f"render {script.id}",
        )
    segments = []
    at = 0.0
    try:
        for i, seg in enumerate(script.segments):
            member = script.member(seg.speaker)
            r = render_segment(seg, member, store, cache_dir, stats, bar)
            stats.segments += 1
            segments.append(
                {
                    "index": i,
                    "speaker": seg.speaker,
                    "name": member.name,
                    "role": member.role,
                    "voice": member.voice,
                    "speed": member.speed,
                    "slide": seg.slide.to_json(),
                    "narration": seg.narration,
                    "audio": r["audio"],
                    "audio_opus": r.get("audio_opus"),
                    "visemes": r["visemes"],
                    "duration": r["duration"],
                    "pause_after": seg.pause_after,
                    "captions": r["captions"],
                    "start": round(at, 3),
                }
            )
            at += r["duration"] + seg.pause_after
    finally:
        if bar is not None:
            bar.close()
    timeline = {
        "format": "emachi-briefing-timeline/1",
        "id": script.id,
        "title": script.title,
        "date": script.date,
        "cast": [
            {"avatar": m.avatar, "role": m.role, "name": m.name, "voice": m.voice, "speed": m.speed}
            for m in script.cast
        ],
        "segments": segments,
        "duration": round(at, 3),
    }
    body = json.dumps(timeline, ensure_ascii=False, indent=1).encode()
    entry = store.put(
        body,
        media_type="application/json",
        licence="CC-BY-4.0",
        source=f"emachi briefing render of {Path(script.path).name}",
    )
    timeline["asset"] = entry.sha256
    out = timeline_path(data_dir, script.id)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(timeline, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(out)
    stats.wall_seconds = time.perf_counter() - t0
    return timeline


def load_timeline(path: Path) -> dict[str, Any]:
    """Read a rendered timeline (what the server plays)."""
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or doc.get("format") != "emachi-briefing-timeline/1":
        raise ValueError(f"{path}: format: expected emachi-briefing-timeline/1")
    return doc
