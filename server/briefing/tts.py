"""Speech synthesis engines: Open JTalk (pyopenjtalk-plus) for Japanese, espeak-ng for English.

Both run offline. :func:`synthesize` returns the waveform and, for Open JTalk, the phoneme
timings that the HTS engine itself decided: pyopenjtalk does not expose them, so we drive a
second HTS engine of the same shared library through ctypes, run only its duration model on
the same full-context labels and speed, and read the state durations back (the waveform length
is checked against them, so they can not drift apart silently). espeak-ng gives no timings;
its visemes come from the audio (see :mod:`server.briefing.visemes`).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import logging
import re
import shutil
import subprocess
import threading
import warnings
import wave
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Speech", "Phone", "synthesize", "engine_version", "split_sentences", "TTSError"]

log = logging.getLogger("emachi.briefing.tts")

ESPEAK_BASE_WPM = 175
ESPEAK_LEAD_IN = 0.15


class TTSError(RuntimeError):
    """The synthesizer is missing or failed."""


@dataclass(slots=True, frozen=True)
class Phone:
    """One phoneme and where it sits in the audio, in seconds."""

    name: str
    start: float
    end: float


@dataclass(slots=True, frozen=True)
class Speech:
    """Mono audio in [-1, 1] at ``rate`` Hz, and phoneme timings when the engine gives them."""

    samples: np.ndarray
    rate: int
    phones: tuple[Phone, ...] | None

    @property
    def duration(self) -> float:
        return len(self.samples) / self.rate


_SPLIT_JA = re.compile(r"(?<=[。！？])|(?<=[!?])\s*")
_SPLIT_EN = re.compile(r"(?<=[.!?])\s+")


def split_sentences(text: str, voice: str) -> list[str]:
    """Cut narration into the sentences that become caption lines (and synthesis units)."""
    pattern = _SPLIT_EN if voice.startswith("en-") else _SPLIT_JA
    return [s.strip() for s in pattern.split(text) if s.strip()]


def engine_version(voice: str) -> str:
    """A string that changes whenever the engine could produce different audio."""
    engine = voice.split(":", 1)[0]
    if engine == "ja-openjtalk":
        from importlib.metadata import version

        return f"pyopenjtalk-plus {version('pyopenjtalk-plus')}"
    if engine == "en-espeak":
        return _espeak_version()
    raise TTSError(f"unknown voice {voice!r}")


def synthesize(text: str, voice: str, speed: float) -> Speech:
    """Speak ``text`` with ``voice`` at ``speed`` (1.0 = the engine's normal rate).

    Raises:
        TTSError: the engine is missing or failed.
    """
    engine, _, variant = voice.partition(":")
    if engine == "ja-openjtalk":
        return _openjtalk(text, speed)
    if engine == "en-espeak":
        return _espeak(text, speed, variant or "en-us")
    raise TTSError(f"unknown voice {voice!r}")


# -- Open JTalk ---------------------------------------------------------------------------------


class _HtsDurations:
    """A private HTS engine (same library, same voice) used only for its duration model."""

    def __init__(self) -> None:
        import pyopenjtalk
        from pyopenjtalk import htsengine

        lib = ctypes.CDLL(htsengine.__file__)
        self._lib = lib
        # HTS_Engine is a plain C struct of a few KiB; 64 KiB of zeroes is more than enough.
        self._engine = ctypes.create_string_buffer(1 << 16)
        lib.HTS_Engine_load.restype = ctypes.c_char
        lib.HTS_Engine_generate_state_sequence_from_strings.restype = ctypes.c_char
        for name in ("nstate", "total_state", "fperiod", "state_duration"):
            getattr(lib, f"HTS_Engine_get_{name}").restype = ctypes.c_size_t
        lib.HTS_Engine_get_sampling_frequency.restype = ctypes.c_size_t
        lib.HTS_Engine_initialize(self._engine)
        voice = pyopenjtalk.DEFAULT_HTS_VOICE
        voice_b = voice if isinstance(voice, bytes) else str(voice).encode()
        if (
            lib.HTS_Engine_load(self._engine, (ctypes.c_char_p * 1)(voice_b), ctypes.c_size_t(1))
            != b"\x01"
        ):
            raise TTSError("HTS engine could not load the voice")
        self.rate = int(lib.HTS_Engine_get_sampling_frequency(self._engine))
        self.fperiod = int(lib.HTS_Engine_get_fperiod(self._engine))
        self._lock = threading.Lock()

    def phone_frames(self, labels: list[str], speed: float) -> list[int]:
        lib, eng = self._lib, self._engine
        with self._lock:
            lib.HTS_Engine_set_speed(eng, ctypes.c_double(speed))
            lines = (ctypes.c_char_p * len(labels))(*[s.encode() for s in labels])
            ok = lib.HTS_Engine_generate_state_sequence_from_strings(
                eng, lines, ctypes.c_size_t(len(labels))
            )
            if ok != b"\x01":
                lib.HTS_Engine_refresh(eng)
                raise TTSError("HTS engine could not build the state sequence")
            nstate = int(lib.HTS_Engine_get_nstate(eng))
            total = int(lib.HTS_Engine_get_total_state(eng))
            durs = [
                int(lib.HTS_Engine_get_state_duration(eng, ctypes.c_size_t(i)))
                for i in range(total)
            ]
            lib.HTS_Engine_refresh(eng)
        return [sum(durs[i : i + nstate]) for i in range(0, total, nstate)]


@functools.cache
def _hts() -> _HtsDurations | None:
    try:
        return _HtsDurations()
    except (OSError, AttributeError, TTSError) as e:
        log.warning(
            "no phoneme timings from the HTS engine, visemes will follow the audio",
            extra={"error": str(e)},
        )
        return None


_JT_LOCK = threading.Lock()


def _import_openjtalk() -> Any:
    """pyopenjtalk, imported without its "ONNX Runtime is not installed" banner: that runtime only
    serves predict_nani, which emachi keeps off (so the output does not depend on it); the banner
    is a print at import, so it is caught here once rather than alarming every operator."""
    with _JT_LOCK, contextlib.redirect_stdout(io.StringIO()):
        import pyopenjtalk
    return pyopenjtalk


def _openjtalk(text: str, speed: float) -> Speech:
    try:
        pyopenjtalk = _import_openjtalk()
    except ImportError as e:
        raise TTSError("pyopenjtalk-plus is not installed") from e
    with _JT_LOCK, warnings.catch_warnings():
        # pyopenjtalk-plus calls a deprecated SudachiPy API (not ours to fix); predict_nani
        # needs onnxruntime, so it stays off and the output does not depend on its presence
        warnings.simplefilter("ignore", DeprecationWarning)
        labels = pyopenjtalk.extract_fullcontext(text, predict_nani=False)
        wav, rate = pyopenjtalk.synthesize(labels, speed=speed)
    samples = np.clip(np.asarray(wav, dtype=np.float64) / 32768.0, -1.0, 1.0)
    phones: tuple[Phone, ...] | None = None
    hts = _hts()
    if hts is not None:
        frames = hts.phone_frames(labels, speed)
        if sum(frames) * hts.fperiod == len(samples) and len(frames) == len(labels):
            t = 0
            out = []
            for label, n in zip(labels, frames, strict=True):
                name = label.split("-", 1)[1].split("+", 1)[0]
                out.append(Phone(name, t * hts.fperiod / rate, (t + n) * hts.fperiod / rate))
                t += n
            phones = tuple(out)
        else:
            log.warning("HTS durations disagree with the waveform; visemes follow the audio")
    return Speech(samples=samples.astype(np.float32), rate=int(rate), phones=phones)


# -- espeak-ng ----------------------------------------------------------------------------------


@functools.cache
def _espeak_version() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise TTSError("espeak-ng is not installed (Debian package espeak-ng)")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout
    return " ".join(out.split()[:5])


def _espeak(text: str, speed: float, variant: str) -> Speech:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise TTSError("espeak-ng is not installed (Debian package espeak-ng)")
    if not re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{2,8})*", variant):
        raise TTSError(f"espeak voice {variant!r}: expected a language code like en-us")
    wpm = str(round(ESPEAK_BASE_WPM * speed))
    proc = subprocess.run(
        [exe, "-v", variant, "-s", wpm, "--stdout", "--", text],
        capture_output=True,
        check=False,
        timeout=120,
    )
    if proc.returncode != 0 or not proc.stdout:
        raise TTSError(f"espeak-ng failed: {proc.stderr.decode(errors='replace').strip()}")
    data = proc.stdout
    # espeak-ng writes a streaming WAV header with unknown sizes; read the PCM after "data"
    idx = data.find(b"data")
    try:
        with wave.open(io.BytesIO(data)) as w:
            rate = w.getframerate()
    except (wave.Error, EOFError):
        rate = 22050
    pcm = np.frombuffer(data[idx + 8 : len(data) - (len(data) - idx - 8) % 2], dtype="<i2")
    # espeak-ng starts speaking on the first sample; a short lead-in, as Open JTalk has, keeps
    # sentences apart and lets the mouth start closed
    lead = np.zeros(round(ESPEAK_LEAD_IN * rate), dtype=np.float32)
    return Speech(np.concatenate([lead, pcm.astype(np.float32) / 32768.0]), rate, None)
