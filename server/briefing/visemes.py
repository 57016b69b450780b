"""Viseme tracks: which mouth shape to show when, for the speaking avatar's lip-sync.

Shapes (a small set a stylised avatar can draw): ``X`` rest / silence, ``M`` lips closed
(m b p, the closure of a geminate), ``A`` ``I`` ``U`` ``E`` ``O`` the vowels, ``S`` other
consonants (teeth nearly closed). With phoneme timings (Open JTalk) each phoneme maps to a
shape; without them (espeak-ng) the shape is read off the audio: silence, noise-like frames
(fricatives), and the spectral centroid of voiced frames for the vowel. Either way the track
also carries a loudness envelope so the client can open the mouth as wide as the voice is loud.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from server.briefing.tts import Phone

__all__ = ["SHAPES", "ENV_FPS", "phone_shape", "from_phones", "from_audio", "envelope", "track"]

SHAPES = "XMAIUEOS"
ENV_FPS = 25
_FRAME = 0.02
_SILENCE_DB = -40.0

_VOWELS = {"a": "A", "i": "I", "u": "U", "e": "E", "o": "O"}
_CLOSED = {"m", "my", "b", "by", "p", "py", "cl"}
_REST = {"sil", "pau", "xx"}


def phone_shape(name: str) -> str:
    """The mouth shape of one Open JTalk phoneme (upper-case vowels are devoiced ones)."""
    if name in _REST:
        return "X"
    if name.lower() in _VOWELS:
        return _VOWELS[name.lower()]
    if name in _CLOSED:
        return "M"
    if name in ("w", "f"):
        return "U"
    return "S"


def _merge(cues: list[list[Any]]) -> list[list[Any]]:
    out: list[list[Any]] = []
    for c in cues:
        if c[1] <= c[0]:
            continue
        if out and out[-1][2] == c[2]:
            out[-1][1] = c[1]
        else:
            out.append(list(c))
    return out


def from_phones(phones: tuple[Phone, ...] | list[Phone], offset: float = 0.0) -> list[list[Any]]:
    """Cues ``[start, end, shape]`` (seconds) from phoneme timings, neighbours of one shape merged."""
    return _merge(
        [
            [round(offset + p.start, 3), round(offset + p.end, 3), phone_shape(p.name)]
            for p in phones
        ]
    )


def _frames(samples: np.ndarray, rate: int, hop: float) -> np.ndarray:
    n = max(1, round(hop * rate))
    count = max(1, -(-len(samples) // n))
    padded = np.zeros(count * n, dtype=np.float32)
    padded[: len(samples)] = samples
    return padded.reshape(count, n)


def from_audio(samples: np.ndarray, rate: int, offset: float = 0.0) -> list[list[Any]]:
    """Cues read off the audio, for engines that give no phoneme timings."""
    frames = _frames(samples, rate, _FRAME)
    rms = np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1)) + 1e-9
    db = 20 * np.log10(rms / rms.max())
    signs = np.signbit(frames)
    zcr = (signs[:, 1:] != signs[:, :-1]).mean(axis=1)
    spec = np.abs(np.fft.rfft(frames * np.hanning(frames.shape[1]), axis=1))
    freqs = np.fft.rfftfreq(frames.shape[1], 1.0 / rate)
    centroid = (spec * freqs).sum(axis=1) / (spec.sum(axis=1) + 1e-9)
    cues: list[list[Any]] = []
    total = len(samples) / rate
    for i in range(len(frames)):
        if db[i] < _SILENCE_DB:
            shape = "X"
        elif zcr[i] > 0.3:
            shape = "S"
        elif db[i] < -25:
            shape = "M"
        elif centroid[i] < 600:
            shape = "O"
        elif centroid[i] < 900:
            shape = "U"
        elif centroid[i] < 1500:
            shape = "A"
        elif centroid[i] < 2200:
            shape = "E"
        else:
            shape = "I"
        start = i * _FRAME
        cues.append(
            [round(offset + start, 3), round(offset + min(total, start + _FRAME), 3), shape]
        )
    return _merge(cues)


def envelope(samples: np.ndarray, rate: int) -> list[int]:
    """Loudness 0-255 at :data:`ENV_FPS` frames a second (peak of the track = 255)."""
    frames = _frames(samples, rate, 1.0 / ENV_FPS)
    rms = np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1))
    peak = float(rms.max()) or 1.0
    return [int(v) for v in np.round(np.sqrt(rms / peak) * 255).astype(np.int64)]


def track(cues: list[list[Any]], samples: np.ndarray, rate: int) -> dict[str, Any]:
    """The viseme track of one segment as stored (JSON), covering ``[0, duration]``."""
    duration = round(len(samples) / rate, 3)
    cues = _merge(cues)
    if not cues or cues[0][0] > 0:
        cues.insert(0, [0.0, cues[0][0] if cues else duration, "X"])
    for a, b in zip(cues, cues[1:], strict=False):
        a[1] = b[0]  # no gaps and no overlaps: the mouth is always in exactly one shape
    if cues[-1][1] < duration:
        cues.append([cues[-1][1], duration, "X"])
    cues[-1][1] = duration
    return {
        "version": 1,
        "shapes": SHAPES,
        "duration": duration,
        "cues": _merge(cues),
        "env_fps": ENV_FPS,
        "env": envelope(samples, rate),
    }
