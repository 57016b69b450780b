"""Briefing scripts: the YAML format, loaded into frozen values and validated.

A script names its cast (who speaks, with which voice and speed) and its segments (who
speaks, what the stage screen shows, the narration, the pause after). Every problem is
reported as ``FILE:LINE: PLACE: expected ...`` so the author can go straight to it;
all problems of a file are collected, not just the first. The format is documented in
``docs/briefings.md``.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

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
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ScriptError([f"{p}:1: (file): expected a readable UTF-8 file ({e})"]) from e
    return parse_script(text, str(p), default_id=p.stem)


def parse_script(text: str, filename: str = "<script>", default_id: str = "briefing") -> Script:
    """Validate YAML text as a script; see :func:`load_script`."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise ScriptError([f"{filename}:{line}: (file): expected valid YAML ({e})"]) from e
    lines: dict[str, int] = {}
    if node is not None:
        _record_lines(node, "", lines)
    return _Validator(filename, lines).script(data, default_id)


def _record_lines(node: yaml.Node, path: str, out: dict[str, int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = str(k.value)
            child = f"{path}.{key}" if path else key
            out[child] = k.start_mark.line + 1
            _record_lines(v, child, out)
            out[child] = k.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _record_lines(v, f"{path}[{i}]", out)


class _Validator:
    def __init__(self, filename: str, lines: dict[str, int]) -> None:
        self.filename = filename
        self.lines = lines
        self.problems: list[str] = []

    def fail(self, place: str, expected: str, got: Any = ...) -> None:
        line = self._line(place)
        msg = f"{self.filename}:{line}: {place or '(top)'}: expected {expected}"
        if got is not ...:
            shown = repr(got)
            msg += f", got {shown[:60] + '…' if len(shown) > 60 else shown}"
        self.problems.append(msg)

    def _line(self, place: str) -> int:
        while place:
            if place in self.lines:
                return self.lines[place]
            cut = max(place.rfind("."), place.rfind("["))
            place = place[:cut] if cut > 0 else ""
        return self.lines.get("", 1)

    def text(
        self,
        d: dict[str, Any],
        key: str,
        place: str,
        *,
        required: bool = True,
        limit: int = MAX_TEXT,
    ) -> str:
        where = f"{place}.{key}" if place else key
        if key not in d or d[key] is None:
            if required:
                self.fail(
                    where if key in d else place,
                    f"a text `{key}`" if key not in d else "a non-empty text",
                )
            return ""
        v = d[key]
        if not isinstance(v, str) or not v.strip():
            self.fail(where, "a non-empty text", v)
            return ""
        if len(v) > limit:
            self.fail(where, f"at most {limit} characters", f"{len(v)} characters")
        return v.strip()

    def number(
        self,
        d: dict[str, Any],
        key: str,
        place: str,
        rng: tuple[float, float],
        default: float | None = None,
    ) -> float:
        where = f"{place}.{key}"
        v = d.get(key, default)
        if v is None:
            self.fail(place, f"a number `{key}` between {rng[0]} and {rng[1]}")
            return rng[0]
        if isinstance(v, bool) or not isinstance(v, int | float) or not rng[0] <= v <= rng[1]:
            self.fail(where, f"a number between {rng[0]} and {rng[1]}", v)
            return rng[0]
        return float(v)

    def unknown(self, d: dict[str, Any], known: set[str], place: str) -> None:
        for k in d:
            if k not in known:
                where = f"{place}.{k}" if place else str(k)
                self.fail(where, "one of the keys " + ", ".join(sorted(known)), k)

    def script(self, data: Any, default_id: str) -> Script:
        if not isinstance(data, dict):
            self.fail("", "a mapping with format, title, date, cast and segments", data)
            raise ScriptError(self.problems)
        self.unknown(data, {"format", "id", "title", "date", "cast", "segments"}, "")
        if data.get("format") != FORMAT:
            self.fail(
                "format" if "format" in data else "", f"format: {FORMAT}", data.get("format", ...)
            )
        sid = data.get("id", default_id)
        if not isinstance(sid, str) or not _ID_RE.match(sid):
            self.fail("id", "an id of lower-case letters, digits, '-' or '_'", sid)
            sid = "briefing"
        title = self.text(data, "title", "")
        date = data.get("date")
        if isinstance(date, _dt.date):
            date_s = date.isoformat()
        elif isinstance(date, str) and re.match(r"^\d{4}-\d{2}-\d{2}$", date):
            date_s = date
        else:
            self.fail(
                "date" if "date" in data else "",
                "a date YYYY-MM-DD",
                date if "date" in data else ...,
            )
            date_s = ""
        cast = self._cast(data.get("cast"))
        segments = self._segments(data.get("segments"), {m.avatar for m in cast})
        if self.problems:
            raise ScriptError(self.problems)
        return Script(
            id=sid,
            title=title,
            date=date_s,
            cast=tuple(cast),
            segments=tuple(segments),
            path=self.filename,
        )

    def _cast(self, raw: Any) -> list[CastMember]:
        if not isinstance(raw, list) or not raw:
            self.fail(
                "cast" if raw is not None else "",
                "a non-empty list `cast`",
                raw if raw is not None else ...,
            )
            return []
        out: list[CastMember] = []
        seen: set[str] = set()
        for i, m in enumerate(raw):
            place = f"cast[{i}]"
            if not isinstance(m, dict):
                self.fail(place, "a mapping with avatar, role, name, voice, speed", m)
                continue
            self.unknown(m, {"avatar", "role", "name", "voice", "speed"}, place)
            avatar = m.get("avatar")
            if not isinstance(avatar, str) or not _ID_RE.match(avatar):
                self.fail(
                    f"{place}.avatar" if "avatar" in m else place,
                    "an avatar id of lower-case letters, digits, '-' or '_'",
                    avatar if "avatar" in m else ...,
                )
                avatar = f"?{i}"
            elif avatar in seen:
                self.fail(f"{place}.avatar", "an avatar id not used before in cast", avatar)
            seen.add(avatar)
            voice = m.get("voice")
            if not isinstance(voice, str) or voice.split(":", 1)[0] not in VOICES:
                self.fail(
                    f"{place}.voice" if "voice" in m else place,
                    "a voice, one of " + ", ".join(sorted(VOICES)),
                    voice if "voice" in m else ...,
                )
                voice = "ja-openjtalk"
            out.append(
                CastMember(
                    avatar=avatar,
                    role=self.text(m, "role", place),
                    name=self.text(m, "name", place),
                    voice=voice,
                    speed=self.number(m, "speed", place, SPEED_RANGE, 1.0),
                )
            )
        return out

    def _segments(self, raw: Any, avatars: set[str]) -> list[Segment]:
        if not isinstance(raw, list) or not raw:
            self.fail(
                "segments" if raw is not None else "",
                "a non-empty list `segments`",
                raw if raw is not None else ...,
            )
            return []
        out: list[Segment] = []
        for i, s in enumerate(raw):
            place = f"segments[{i}]"
            if not isinstance(s, dict):
                self.fail(place, "a mapping with speaker, slide, narration, pause_after", s)
                continue
            self.unknown(s, {"speaker", "slide", "narration", "pause_after"}, place)
            speaker = s.get("speaker")
            if speaker not in avatars:
                self.fail(
                    f"{place}.speaker" if "speaker" in s else place,
                    "a speaker that is an avatar of cast ("
                    + ", ".join(sorted(a for a in avatars if not a.startswith("?")))
                    + ")",
                    speaker if "speaker" in s else ...,
                )
            narration = self.text(s, "narration", place, limit=MAX_NARRATION)
            slide = self._slide(s.get("slide"), f"{place}.slide", place)
            pause = self.number(s, "pause_after", place, PAUSE_RANGE, 0.0)
            out.append(
                Segment(
                    speaker=str(speaker),
                    slide=slide,
                    narration=" ".join(narration.split()),
                    pause_after=pause,
                )
            )
        return out

    def _slide(self, raw: Any, place: str, parent: str) -> Slide:
        if not isinstance(raw, dict):
            self.fail(
                place if raw is not None else parent,
                "a slide: a mapping with title and bullets, or title and image",
                raw if raw is not None else ...,
            )
            return Slide(title="")
        self.unknown(raw, {"title", "bullets", "image", "alt"}, place)
        title = self.text(raw, "title", place)
        bullets: list[str] = []
        b = raw.get("bullets", [])
        if not isinstance(b, list) or len(b) > MAX_BULLETS:
            self.fail(f"{place}.bullets", f"a list of at most {MAX_BULLETS} lines", b)
        else:
            for j, line in enumerate(b):
                if not isinstance(line, str) or not line.strip() or len(line) > MAX_TEXT:
                    self.fail(
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
                self.fail(f"{place}.image", "the sha256 of an image asset (64 hex digits)", image)
                image = None
            alt = self.text(raw, "alt", place)
            if bullets:
                self.fail(f"{place}.bullets", "either bullets or an image, not both")
        elif not bullets:
            self.fail(place, "bullets (a list of lines) or an image")
        return Slide(title=title, bullets=tuple(bullets), image=image, alt=alt)
