"""One way to read a data file and say what is wrong in it, shared by every loader.

The world file (TOML), the kiosk data files and the briefing scripts (YAML) are read with the same
pieces: :func:`read_source` reads the bytes and text, :func:`parse_toml` / :func:`parse_yaml` parse
them and map each place in the document to its line, and a :class:`Checker` collects
:class:`Problem` values from typed readers that all use the same words. Every problem is one line::

    FILE:LINE: PLACE: expected WHAT, got VALUE

where ``PLACE`` is the path inside the document (``items[2].channels[0].url``), ``(document)`` for
the whole of it and ``(file)`` when it cannot be read. A place with no line of its own (a missing
key) takes the line of the nearest place that has one. Pure: no I/O beyond reading the file.
"""

from __future__ import annotations

import bisect
import json
import math
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "MISSING",
    "TOML",
    "YAML",
    "PathT",
    "Where",
    "Syntax",
    "Problem",
    "Unreadable",
    "Checker",
    "place",
    "describe",
    "read_source",
    "parse_toml",
    "parse_yaml",
    "toml_lines",
    "yaml_lines",
    "is_number",
    "MAX_NUMBER",
]

MISSING: Any = object()
"""A value that is absent (or was bad; its problem is already recorded)."""

PathT = tuple[str | int, ...]
Where = str | PathT
"""A place as a path tuple (``("items", 2, "url")``) or already written (``items[2].url``)."""


@dataclass(frozen=True, slots=True)
class Syntax:
    """The words for a file's containers, in the language of its format."""

    name: str
    table: str
    array: str
    text: str


TOML = Syntax("TOML", "a table", "an array", 'a text { ja = "...", en = "..." }')
YAML = Syntax("YAML", "a mapping", "a list", "a text {ja: ..., en: ...}")


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding: the file, the line, the place in the document, what was expected and got."""

    file: str
    line: int
    place: str
    expected: str
    got: str | None = None

    def __str__(self) -> str:
        said = " ".join(self.expected.split())
        if self.got is not None:
            said += ", got " + " ".join(self.got.split())
        return f"{self.file}:{self.line}: {self.place}: expected {said}"


class Unreadable(Exception):
    """The file cannot be read or parsed; ``problem`` says where and why."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def place(path: Where) -> str:
    """``("items", 2, "url")`` → ``items[2].url``; the empty path is ``(document)``."""
    if isinstance(path, str):
        return path or "(document)"
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(document)"


def describe(v: Any, syntax: Syntax = TOML) -> str:
    """A value as a problem shows it: short, in the file's own words."""
    if v is MISSING or v is None:
        return "nothing"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        s = json.dumps(v, ensure_ascii=False)
        return s if len(s) <= 60 else s[:57] + '..."'
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, Mapping):
        return syntax.table
    if isinstance(v, list):
        return f"{syntax.array} of {len(v)}"
    return f"a {type(v).__name__}"


# reading and parsing ---------------------------------------------------------------------------


def read_source(path: Path, what: str = "a readable file") -> tuple[bytes, str]:
    """The bytes and UTF-8 text of ``path``.

    Raises:
        Unreadable: the file is missing (``what`` is expected), unreadable or not UTF-8.
    """
    file = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise Unreadable(Problem(file, 1, "(file)", what, "no such file")) from None
    except OSError as exc:
        got = exc.strerror or type(exc).__name__
        raise Unreadable(Problem(file, 1, "(file)", "a readable file", got)) from None
    try:
        return data, data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        bad = f"byte 0x{data[exc.start]:02x}"
        raise Unreadable(Problem(file, line, "(document)", "UTF-8 text", bad)) from None


_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def parse_toml(text: str, file: str) -> tuple[dict[str, Any], dict[str, int]]:
    """The document and the line of every place in it.

    Raises:
        Unreadable: not TOML, at the line (and column) of the fault.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _TOML_AT.search(msg)
        detail = _TOML_AT.sub("", msg).replace("(at end of document)", "").strip() or "an error"
        line = int(m.group(1)) if m else text.count("\n") + 1
        got = f"{detail} (column {m.group(2)})" if m else f"{detail} (at the end)"
        raise Unreadable(Problem(file, line, "(document)", "valid TOML", got)) from None
    return data, toml_lines(text)


def parse_yaml(text: str, file: str) -> tuple[Any, dict[str, int]]:
    """The document and the line of every place in it.

    Raises:
        Unreadable: not YAML, at the line of the fault.
    """
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise Unreadable(Problem(file, line, "(document)", "valid YAML", what)) from None
    return data, yaml_lines(node)


def yaml_lines(node: yaml.Node | None) -> dict[str, int]:
    """The line of every place of a composed YAML document (a key's line for its value)."""
    out: dict[str, int] = {}

    def walk(n: yaml.Node, path: PathT) -> None:
        out.setdefault(place(path) if path else "", n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            for key, value in n.value:
                if isinstance(key, yaml.ScalarNode):
                    child = (*path, str(key.value))
                    out[place(child)] = key.start_mark.line + 1
                    walk(value, child)
        elif isinstance(n, yaml.SequenceNode):
            for i, value in enumerate(n.value):
                walk(value, (*path, i))

    if node is not None:
        walk(node, ())
    return out


class _TomlScan:
    """Just enough of TOML to note where each key, table and array element starts.

    It runs on text that ``tomllib`` has already accepted, so it never has to report an error;
    the lines are a guide for the reader of a problem, not part of the data.
    """

    _BARE = re.compile(r"[A-Za-z0-9_-]+")

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.newlines = [m.start() for m in re.finditer("\n", text)]
        self.out: dict[str, int] = {"": 1}
        self.arrays: dict[PathT, int] = {}  # array-of-tables path -> how many so far

    def line(self) -> int:
        return bisect.bisect_left(self.newlines, self.i) + 1

    def note(self, path: PathT) -> None:
        self.out.setdefault(place(path), self.line())

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def skip(self, newlines: bool) -> None:
        """Skip blanks and comments (and line ends, inside arrays or between statements)."""
        while self.i < len(self.s):
            c = self.s[self.i]
            if c in " \t\r" or (newlines and c == "\n"):
                self.i += 1
            elif c == "#":
                end = self.s.find("\n", self.i)
                self.i = len(self.s) if end < 0 else end
            else:
                return

    def run(self) -> dict[str, int]:
        table: PathT = ()
        while True:
            self.skip(newlines=True)
            if self.i >= len(self.s):
                return self.out
            if self.s.startswith("[[", self.i):
                self.i += 2
                key = self.resolve(self.key())
                n = self.arrays.get(key, 0)
                self.arrays[key] = n + 1
                table = (*key, n)
                self.note(table)
                self.i = self.s.index("]]", self.i) + 2
            elif self.peek() == "[":
                self.i += 1
                table = self.resolve(self.key())
                self.note(table)
                self.i = self.s.index("]", self.i) + 1
            else:
                path = (*table, *self.key())
                self.note(path)
                self.i += 1  # "="
                self.value(path)

    def resolve(self, key: PathT) -> PathT:
        """A header's key with the current element of each array of tables it passes through."""
        out: PathT = ()
        for part in key:
            out = (*out, part)
            if out in self.arrays and len(out) < len(key):
                out = (*out, self.arrays[out] - 1)
        return out

    def key(self) -> PathT:
        parts: list[str] = []
        while True:
            self.skip(newlines=False)
            c = self.peek()
            if c in "\"'":
                start = self.i
                self.string()
                parts.append(tomllib.loads(f"k = {self.s[start : self.i]}")["k"])
            else:
                m = self._BARE.match(self.s, self.i)
                if m is None:
                    return tuple(parts)
                parts.append(m.group())
                self.i = m.end()
            self.skip(newlines=False)
            if self.peek() != ".":
                return tuple(parts)
            self.i += 1

    def value(self, path: PathT) -> None:
        self.skip(newlines=False)
        self.note(path)
        c = self.peek()
        if c == "[":
            self.i += 1
            n = 0
            while True:
                self.skip(newlines=True)
                if self.peek() in ("]", ""):
                    self.i += 1
                    return
                self.value((*path, n))
                self.skip(newlines=True)
                if self.peek() == ",":
                    self.i += 1
                    n += 1
        elif c == "{":
            self.i += 1
            while True:
                self.skip(newlines=False)
                if self.peek() in ("}", ""):
                    self.i += 1
                    return
                if self.peek() == ",":
                    self.i += 1
                    continue
                sub = (*path, *self.key())
                self.note(sub)
                self.i += 1  # "="
                self.value(sub)
        elif c in "\"'":
            self.string()
        else:
            while self.i < len(self.s) and self.s[self.i] not in ",]}\n#":
                self.i += 1

    def string(self) -> None:
        q = self.s[self.i]
        if self.s.startswith(q * 3, self.i):
            end = self.i + 3
            while True:
                end = self.s.index(q * 3, end)
                if q == "'" or not _escaped(self.s, end):
                    break
                end += 1
            while self.s.startswith(q, end + 3):  # up to two quotes may close the content
                end += 1
            self.i = end + 3
            return
        end = self.i + 1
        while self.s[end] != q or (q == '"' and _escaped(self.s, end)):
            end += 1
        self.i = end + 1


def _escaped(s: str, i: int) -> bool:
    n = 0
    while i - n - 1 >= 0 and s[i - n - 1] == "\\":
        n += 1
    return n % 2 == 1


def toml_lines(text: str) -> dict[str, int]:
    """The line of every key, table and array element of a TOML document that parses."""
    scan = _TomlScan(text)
    try:
        return scan.run()
    except (ValueError, IndexError, tomllib.TOMLDecodeError):
        # A construct the scan does not follow: keep the lines found so far; a place with no
        # line of its own falls back to the nearest that has one.
        return scan.out


# the checker -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Checker:
    """Collects the problems of one file; the typed readers report and return a fallback.

    A missing required field is reported at its own place (``items[0].fee``) as what was
    expected there, ``got nothing``; an unknown key at its place with the keys allowed.
    """

    file: str
    lines: dict[str, int] = field(default_factory=dict)
    syntax: Syntax = YAML
    problems: list[Problem] = field(default_factory=list)

    def line(self, where: Where) -> int:
        """The line of ``where``, or of the nearest enclosing place that has one."""
        p = where if isinstance(where, str) else (place(where) if where else "")
        while p:
            if p in self.lines:
                return self.lines[p]
            cut = max(p.rfind("."), p.rfind("["))
            p = p[:cut] if cut > 0 else ""
        return self.lines.get("", 1)

    def add(self, where: Where, expected: str, got: str | None = None) -> None:
        """Record one problem (once: two readers may see the same missing field)."""
        found = Problem(self.file, self.line(where), place(where), expected, got)
        if found not in self.problems:
            self.problems.append(found)

    def bad(self, where: Where, expected: str, value: Any) -> None:
        """Record that ``value`` at ``where`` is not what was expected."""
        self.add(where, expected, self.describe(value))

    def describe(self, v: Any) -> str:
        return describe(v, self.syntax)

    def messages(self) -> list[str]:
        """Every problem, one line each."""
        return [str(p) for p in self.problems]

    # containers --------------------------------------------------------------------------------

    def mapping(self, v: Any, where: Where) -> Mapping[str, Any]:
        if isinstance(v, Mapping):
            return v
        self.bad(where, self.syntax.table, v)
        return {}

    def seq(self, v: Any, where: Where) -> list[Any]:
        if isinstance(v, list):
            return v
        self.bad(where, self.syntax.array, v)
        return []

    def unknown(self, m: Mapping[str, Any], where: Where, known: Iterable[str]) -> None:
        """Report each key of ``m`` that is not ``known`` (listed in the order given)."""
        names = list(dict.fromkeys(known))
        for k in m:
            if k not in names:
                self.add(
                    _join(where, str(k)),
                    "one of the keys " + ", ".join(names),
                    f"unknown key {self.describe(str(k))}",
                )

    # fields of a mapping -----------------------------------------------------------------------

    def present(
        self, m: Mapping[str, Any], key: str, where: Where, expected: str, required: bool
    ) -> bool:
        """Whether ``key`` is in ``m``; a missing required key is reported as ``got nothing``."""
        if key in m:
            return True
        if required:
            self.add(_join(where, key), expected, "nothing")
        return False

    def table(
        self, m: Mapping[str, Any], key: str, where: Where, *, required: bool = True
    ) -> Mapping[str, Any]:
        if not self.present(m, key, where, self.syntax.table, required):
            return {}
        return self.mapping(m[key], _join(where, key))

    def array(
        self, m: Mapping[str, Any], key: str, where: Where, *, required: bool = True
    ) -> list[Any]:
        if not self.present(m, key, where, self.syntax.array, required):
            return []
        return self.seq(m[key], _join(where, key))

    def string(
        self,
        m: Mapping[str, Any],
        key: str,
        where: Where,
        *,
        required: bool = True,
        default: str = "",
        limit: int | None = None,
    ) -> str:
        """A non-empty string, stripped; at most ``limit`` characters when given."""
        if not self.present(m, key, where, "a non-empty string", required):
            return default
        v = m[key]
        if not (isinstance(v, str) and v.strip()):
            self.bad(_join(where, key), "a non-empty string", v)
            return default
        if limit is not None and len(v) > limit:
            self.add(_join(where, key), f"at most {limit} characters", f"{len(v)} characters")
        return v.strip()

    def boolean(
        self,
        m: Mapping[str, Any],
        key: str,
        where: Where,
        *,
        required: bool = True,
        default: bool = False,
    ) -> bool:
        if not self.present(m, key, where, "true or false", required):
            return default
        v = m[key]
        if isinstance(v, bool):
            return v
        self.bad(_join(where, key), "true or false", v)
        return default

    def integer(
        self,
        m: Mapping[str, Any],
        key: str,
        where: Where,
        *,
        required: bool = True,
        default: int = 0,
        minimum: int | None = None,
    ) -> int:
        expected = "an integer" + (f" >= {minimum}" if minimum is not None else "")
        if not self.present(m, key, where, expected, required):
            return default
        v = m[key]
        if isinstance(v, int) and not isinstance(v, bool) and (minimum is None or v >= minimum):
            return v
        self.bad(_join(where, key), expected, v)
        return default

    def number(
        self,
        m: Mapping[str, Any],
        key: str,
        where: Where,
        low: float,
        high: float,
        *,
        default: float | None = None,
    ) -> float:
        """A number in ``[low, high]``; ``default`` when absent, unless it is ``None``."""
        expected = f"a number between {low} and {high}"
        if key not in m and default is not None:
            return default
        if not self.present(m, key, where, expected, True):
            return low
        v = m[key]
        if is_number(v) and low <= v <= high:
            return float(v)
        self.bad(_join(where, key), expected, v)
        return low

    def text(
        self, m: Mapping[str, Any], key: str, where: Where, *, required: bool = True
    ) -> tuple[str, str] | None:
        """A ``ja`` / ``en`` pair of non-empty strings (as written), or ``None``."""
        if not self.present(m, key, where, self.syntax.text, required):
            return None
        return self.text_value(m[key], _join(where, key))

    def text_value(self, v: Any, where: Where) -> tuple[str, str] | None:
        if not isinstance(v, Mapping):
            self.bad(where, self.syntax.text, v)
            return None
        good = True
        for lang in ("ja", "en"):
            s = v.get(lang, MISSING)
            if not (isinstance(s, str) and s.strip()):
                self.bad(_join(where, lang), "a non-empty string", s)
                good = False
        for k in v:  # reported, but the text is still usable
            if k not in ("ja", "en"):
                self.add(_join(where, str(k)), "only the keys ja, en", f"key {self.describe(k)}")
        return (v["ja"], v["en"]) if good else None

    def texts(
        self, m: Mapping[str, Any], key: str, where: Where, *, required: bool = True
    ) -> list[tuple[str, str]]:
        out = []
        for i, v in enumerate(self.array(m, key, where, required=required)):
            t = self.text_value(v, _join(where, key, i))
            if t is not None:
                out.append(t)
        return out

    def one_of(self, v: Any, where: Where, choices: Sequence[Any]) -> bool:
        """Whether ``v`` is among ``choices``; if not, say which were allowed."""
        if v in choices:
            return True
        self.bad(where, "one of " + ", ".join(map(str, choices)), v)
        return False


MAX_NUMBER = 1e6
"""Numbers in these files are metres, seconds, radians or counts: anything larger is a mistake."""


def is_number(v: Any) -> bool:
    """A finite int or float (not a bool) no larger than :data:`MAX_NUMBER`."""
    return (
        isinstance(v, int | float)
        and not isinstance(v, bool)
        and math.isfinite(v)
        and abs(v) <= MAX_NUMBER
    )


def _join(where: Where, *parts: str | int) -> Where:
    """``where`` and then ``parts``, as a path tuple or a written place (as ``where`` is)."""
    if not isinstance(where, str):
        return (*where, *parts)
    out = where
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out
