"""Briefing scripts: the YAML format, loaded into frozen values and validated.

A script names its cast (who speaks, with which voice and speed) and its segments (who
speaks, what the stage screen shows, the narration, the pause after). Every problem is
reported as ``FILE:LINE: PLACE: expected ..., got ...`` (:mod:`world.checker`, as for the world
file and the kiosk data) so the author can go straight to it; all problems of a file are
collected, not just the first. The format is documented in
``docs/briefings.md``.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from world.checker import MISSING, YAML, Checker, Unreadable, parse_yaml, read_source

__all__ = [
    "VOICES",
    "FORMAT",
    "CastMember",
    "Slide",
    "Segment",
    "Script",
    "ScriptError",
    "load_script",
    "parse_script",
]

FORMAT = "emachi-briefing/1"
#: voice name → engine; the part after a colon (``en-espeak:en-gb``) picks an engine variant.
VOICES = {"ja-openjtalk": "openjtalk", "en-espeak": "espeak"}
SPEED_RANGE = (0.5, 2.0)
PAUSE_RANGE = (0.0, 30.0)
MAX_NARRATION = 4000
MAX_BULLETS = 12
MAX_TEXT = 200
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(slots=True, frozen=True)
class CastMember:
    """One speaker: the avatar on the stage, what they are, and how they sound."""

    avatar: str
    role: str
    name: str
    voice: str
    speed: float


@dataclass(slots=True, frozen=True)
class Slide:
    """What the stage screen shows: a title with bullet lines, or an image asset."""

    title: str
    bullets: tuple[str, ...] = ()
    image: str | None = None
    alt: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "bullets": list(self.bullets),
            "image": self.image,
            "alt": self.alt,
        }


@dataclass(slots=True, frozen=True)
class Segment:
    """One stretch of narration by one speaker in front of one slide."""

    speaker: str
    slide: Slide
    narration: str
    pause_after: float


@dataclass(slots=True, frozen=True)
class Script:
    """A validated briefing script."""

    id: str
    title: str
    date: str
    cast: tuple[CastMember, ...]
    segments: tuple[Segment, ...]
    path: str = ""

    def member(self, avatar: str) -> CastMember:
        for m in self.cast:
            if m.avatar == avatar:
                return m
        raise KeyError(avatar)


class ScriptError(ValueError):
    """A script failed validation; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def load_script(path: str | Path) -> Script:
    """Read and validate a script file.

    Raises:
        ScriptError: with one ``FILE:LINE: PLACE: expected ...`` line per problem.
    """
    p = Path(path)
    try:
        _, text = read_source(p, "a readable UTF-8 file")
    except Unreadable as exc:
        raise ScriptError([str(exc.problem)]) from None
    return parse_script(text, str(p), default_id=p.stem)


def parse_script(text: str, filename: str = "<script>", default_id: str = "briefing") -> Script:
    """Validate YAML text as a script; see :func:`load_script`."""
    try:
        data, lines = parse_yaml(text, filename)
    except Unreadable as exc:
        raise ScriptError([str(exc.problem)]) from None
    return _Validator(filename, lines).script(data, default_id)


_TOP = ("format", "id", "title", "date", "cast", "segments")
_MEMBER = ("avatar", "role", "name", "voice", "speed")
_SEGMENT = ("speaker", "slide", "narration", "pause_after")
_SLIDE = ("title", "bullets", "image", "alt")


class _Validator(Checker):
    """The shared checker (:mod:`world.checker`) with the reading of each part of a script."""

    __slots__ = ()

    def __init__(self, filename: str, lines: dict[str, int]) -> None:
        super().__init__(filename, lines, YAML)

    def fail(self) -> ScriptError:
        return ScriptError(self.messages())

    def entries(self, data: Mapping[str, Any], key: str) -> list[Any]:
        """A non-empty list under ``key``, or ``[]`` after saying so."""
        raw = data.get(key, MISSING)
        if not isinstance(raw, list) or not raw:
            self.bad(key, "a non-empty list", raw)
            return []
        return raw

    def script(self, data: Any, default_id: str) -> Script:
        if not isinstance(data, dict):
            self.bad("", "a mapping with format, title, date, cast and segments", data)
            raise self.fail()
        self.unknown(data, "", _TOP)
        if data.get("format") != FORMAT:
            self.bad("format", f"format: {FORMAT}", data.get("format", MISSING))
        sid = data.get("id", default_id)
        if not isinstance(sid, str) or not _ID_RE.match(sid):
            self.bad("id", "an id of lower-case letters, digits, '-' or '_'", sid)
            sid = "briefing"
        title = self.string(data, "title", "", limit=MAX_TEXT)
        date = data.get("date", MISSING)
        if isinstance(date, _dt.date):
            date_s = date.isoformat()
        elif isinstance(date, str) and re.match(r"^\d{4}-\d{2}-\d{2}$", date):
            date_s = date
        else:
            self.bad("date", "a date YYYY-MM-DD", date)
            date_s = ""
        cast = self._cast(self.entries(data, "cast"))
        segments = self._segments(self.entries(data, "segments"), {m.avatar for m in cast})
        if self.problems:
            raise self.fail()
        return Script(
            id=sid,
            title=title,
            date=date_s,
            cast=tuple(cast),
            segments=tuple(segments),
            path=self.file,
        )

    def _cast(self, raw: list[Any]) -> list[CastMember]:
        out: list[CastMember] = []
        seen: set[str] = set()
        for i, m in enumerate(raw):
            place = f"cast[{i}]"
            if not isinstance(m, dict):
                self.bad(place, "a mapping with avatar, role, name, voice, speed", m)
                continue
            self.unknown(m, place, _MEMBER)
            avatar = m.get("avatar", MISSING)
            if not isinstance(avatar, str) or not _ID_RE.match(avatar):
                self.bad(
                    f"{place}.avatar",
                    "an avatar id of lower-case letters, digits, '-' or '_'",
                    avatar,
                )
                avatar = f"?{i}"
            elif avatar in seen:
                self.bad(f"{place}.avatar", "an avatar id not used before in cast", avatar)
            seen.add(avatar)
            voice = m.get("voice", MISSING)
            if not isinstance(voice, str) or voice.split(":", 1)[0] not in VOICES:
                self.bad(f"{place}.voice", "a voice, one of " + ", ".join(sorted(VOICES)), voice)
                voice = "ja-openjtalk"
            out.append(
                CastMember(
                    avatar=avatar,
                    role=self.string(m, "role", place, limit=MAX_TEXT),
                    name=self.string(m, "name", place, limit=MAX_TEXT),
                    voice=voice,
                    speed=self.number(m, "speed", place, *SPEED_RANGE, default=1.0),
                )
            )
        return out

    def _segments(self, raw: list[Any], avatars: set[str]) -> list[Segment]:
        out: list[Segment] = []
        cast = ", ".join(sorted(a for a in avatars if not a.startswith("?")))
        for i, s in enumerate(raw):
            place = f"segments[{i}]"
            if not isinstance(s, dict):
                self.bad(place, "a mapping with speaker, slide, narration, pause_after", s)
                continue
            self.unknown(s, place, _SEGMENT)
            speaker = s.get("speaker", MISSING)
            if speaker not in avatars:
                self.bad(
                    f"{place}.speaker", f"a speaker that is an avatar of cast ({cast})", speaker
                )
            narration = self.string(s, "narration", place, limit=MAX_NARRATION)
            slide = self._slide(s.get("slide", MISSING), f"{place}.slide")
            pause = self.number(s, "pause_after", place, *PAUSE_RANGE, default=0.0)
            out.append(
                Segment(
                    speaker=str(speaker),
                    slide=slide,
                    narration=" ".join(narration.split()),
                    pause_after=pause,
                )
            )
        return out

    def _slide(self, raw: Any, place: str) -> Slide:
        if not isinstance(raw, dict):
            self.bad(place, "a slide: a mapping with title and bullets, or title and image", raw)
            return Slide(title="")
        self.unknown(raw, place, _SLIDE)
        title = self.string(raw, "title", place, limit=MAX_TEXT)
        bullets: list[str] = []
        b = raw.get("bullets", [])
        if not isinstance(b, list) or len(b) > MAX_BULLETS:
            self.bad(f"{place}.bullets", f"a list of at most {MAX_BULLETS} lines", b)
        else:
            for j, line in enumerate(b):
                if not isinstance(line, str) or not line.strip() or len(line) > MAX_TEXT:
                    self.bad(
                        f"{place}.bullets[{j}]",
                        f"a non-empty line of at most {MAX_TEXT} characters",
                        line,
                    )
                else:
                    bullets.append(line.strip())
        image = raw.get("image")
        alt = ""
        if image is not None:
            if not isinstance(image, str) or not _SHA_RE.match(image):
                self.bad(f"{place}.image", "the sha256 of an image asset (64 hex digits)", image)
                image = None
            alt = self.string(raw, "alt", place, limit=MAX_TEXT)
            if bullets:
                self.add(f"{place}.bullets", "either bullets or an image, not both")
        elif not bullets:
            self.add(place, "bullets (a list of lines) or an image")
        return Slide(title=title, bullets=tuple(bullets), image=image, alt=alt)
