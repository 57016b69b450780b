"""Strict reading of the kiosk data files (YAML), with the place of every problem.

Every problem is one line ``FILE:PLACE (line N): expected …`` where PLACE is the path inside the
document (``items[2].channels[0].url``). A :class:`Checker` collects all problems of a file instead
of stopping at the first, so a person fixing the catalog sees the whole list at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from server.errors import LoadError

__all__ = ["DataError", "Checker", "Text", "read_yaml", "place"]

PathT = tuple[str | int, ...]


class DataError(LoadError):
    """A data file (catalog, helper table, allow-list) is wrong; ``problems`` has one line each."""


@dataclass(frozen=True, slots=True)
class Text:
    """A text in Japanese and English; Japanese first, English beside it."""

    ja: str
    en: str

    def as_map(self) -> dict[str, str]:
        return {"ja": self.ja, "en": self.en}


def place(path: PathT) -> str:
    """``("items", 2, "url")`` → ``items[2].url``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(document)"


def _marks(node: yaml.Node | None, path: PathT, out: dict[PathT, int]) -> None:
    if node is None:
        return
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                out[(*path, str(key.value))] = key.start_mark.line + 1
                _marks(value, (*path, str(key.value)), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            _marks(value, (*path, i), out)


def read_yaml(path: Path) -> tuple[Any, dict[PathT, int]]:
    """Parse ``path``; return the data and the line of every place in it.

    Raises:
        DataError: the file is missing or is not YAML (with the line of the fault).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError([f"{path}: expected a readable file ({exc.strerror})"]) from None
    try:
        data = yaml.safe_load(text)
        marks: dict[PathT, int] = {}
        _marks(yaml.compose(text, Loader=yaml.SafeLoader), (), marks)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise DataError([f"{path}:(document){where}: expected valid YAML ({what})"]) from None
    return data, marks


def open_data(path: Path, keys: list[str]) -> tuple[Checker, Mapping[str, Any]]:
    """Read a version-1 data file whose top level is a mapping with ``keys``.

    Returns the checker that collects its problems, and the top-level mapping.

    Raises:
        DataError: the file is missing or is not YAML.
    """
    data, marks = read_yaml(path)
    c = Checker(path, marks)
    root = c.mapping(data, ())
    c.keys(root, (), keys)
    if root.get("version", 1) != 1:
        c.problem(("version",), f"version 1, got {root.get('version')!r}")
    return c, root


@dataclass(slots=True)
class Checker:
    """Collects problems of one file; the typed getters report and return a fallback."""

    file: Path
    marks: dict[PathT, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def problem(self, path: PathT, expected: str) -> None:
        probe = path
        line = None
        while probe:
            line = self.marks.get(probe)
            if line is not None:
                break
            probe = probe[:-1]
        where = f" (line {line})" if line is not None else ""
        line_ = f"{self.file}:{place(path)}{where}: expected {expected}"
        if line_ not in self.problems:  # a missing field is seen by the schema and the getter
            self.problems.append(line_)

    def raise_if_any(self) -> None:
        if self.problems:
            raise DataError(list(self.problems))

    # typed getters -------------------------------------------------------------------------

    def mapping(self, value: Any, path: PathT) -> Mapping[str, Any]:
        if isinstance(value, Mapping):
            return value
        self.problem(path, f"a mapping, got {_kind(value)}")
        return {}

    def seq(self, value: Any, path: PathT) -> list[Any]:
        if isinstance(value, list):
            return value
        self.problem(path, f"a list, got {_kind(value)}")
        return []

    def keys(self, m: Mapping[str, Any], path: PathT, required: Iterable[str],
             optional: Iterable[str] = ()) -> None:
        """Report each missing required key and each key the schema does not know."""
        req = list(required)
        known = set(req) | set(optional)
        for k in req:
            if k not in m:
                self.problem(path, f"field '{k}'")
        for k in m:
            if k not in known:
                self.problem((*path, str(k)), f"one of the fields {', '.join(sorted(known))}; "
                             f"'{k}' is unknown")

    def string(self, m: Mapping[str, Any], key: str, path: PathT, *, required: bool = True,
               default: str = "") -> str:
        if key not in m:
            if required:
                self.problem(path, f"field '{key}'")
            return default
        v = m[key]
        if isinstance(v, str) and v.strip():
            return v.strip()
        self.problem((*path, key), f"a non-empty string, got {_kind(v)}")
        return default

    def boolean(self, m: Mapping[str, Any], key: str, path: PathT, *, default: bool = False,
                required: bool = True) -> bool:
        if key not in m:
            if required:
                self.problem(path, f"field '{key}'")
            return default
        v = m[key]
        if isinstance(v, bool):
            return v
        self.problem((*path, key), f"true or false, got {_kind(v)}")
        return default

    def integer(self, m: Mapping[str, Any], key: str, path: PathT, *, required: bool = True,
                default: int = 0, minimum: int | None = None) -> int:
        if key not in m:
            if required:
                self.problem(path, f"field '{key}'")
            return default
        v = m[key]
        if isinstance(v, int) and not isinstance(v, bool) and (minimum is None or v >= minimum):
            return v
        low = f" ≥ {minimum}" if minimum is not None else ""
        self.problem((*path, key), f"an integer{low}, got {_kind(v)}")
        return default

    def text(self, m: Mapping[str, Any], key: str, path: PathT, *, required: bool = True,
             default: Text | None = None) -> Text:
        """A ``{ja: …, en: …}`` pair, both non-empty."""
        fallback = default or Text("", "")
        if key not in m:
            if required:
                self.problem(path, f"field '{key}'")
            return fallback
        return self.text_value(m[key], (*path, key)) or fallback

    def text_value(self, v: Any, path: PathT) -> Text | None:
        if not isinstance(v, Mapping):
            self.problem(path, f"a text {{ja: …, en: …}}, got {_kind(v)}")
            return None
        ok = True
        for lang in ("ja", "en"):
            s = v.get(lang)
            if not (isinstance(s, str) and s.strip()):
                self.problem((*path, lang), f"a non-empty {lang} text, got {_kind(s)}")
                ok = False
        extra = set(v) - {"ja", "en"}
        for k in sorted(map(str, extra)):
            self.problem((*path, k), "only the languages ja and en")
            ok = False
        return Text(str(v["ja"]).strip(), str(v["en"]).strip()) if ok else None

    def texts(self, m: Mapping[str, Any], key: str, path: PathT, *,
              required: bool = True) -> tuple[Text, ...]:
        if key not in m:
            if required:
                self.problem(path, f"field '{key}'")
            return ()
        out = []
        for i, v in enumerate(self.seq(m[key], (*path, key))):
            t = self.text_value(v, (*path, key, i))
            if t is not None:
                out.append(t)
        return tuple(out)


def _kind(v: Any) -> str:
    if v is None:
        return "nothing"
    if isinstance(v, bool):
        return f"a boolean ({v})"
    if isinstance(v, str):
        return f"the string {v!r}" if len(v) <= 40 else "a string"
    if isinstance(v, int | float):
        return f"the number {v}"
    if isinstance(v, Mapping):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    return type(v).__name__
