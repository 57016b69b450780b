"""Strict reading of the kiosk data files (YAML), with the place of every problem.

Every problem is one line ``FILE:LINE: PLACE: expected …`` where PLACE is the path inside the
document (``items[2].channels[0].url``), as for the world file and the briefing scripts: the
reading and the wording are :mod:`world.checker`'s. A :class:`Checker` collects all problems of a
file instead of stopping at the first, so a person fixing the catalog sees the whole list at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.errors import LoadError
from world import checker
from world.checker import PathT, Unreadable, parse_yaml, place, read_source

__all__ = ["DataError", "Checker", "Text", "PathT", "read_yaml", "open_data", "place"]


class DataError(LoadError):
    """A data file (catalog, helper table, allow-list) is wrong; ``problems`` has one line each."""


@dataclass(frozen=True, slots=True)
class Text:
    """A text in Japanese and English; Japanese first, English beside it."""

    ja: str
    en: str

    def as_map(self) -> dict[str, str]:
        return {"ja": self.ja, "en": self.en}


def read_yaml(path: Path) -> tuple[Any, dict[str, int]]:
    """Parse ``path``; return the data and the line of every place in it.

    Raises:
        DataError: the file is missing or is not YAML (with the line of the fault).
    """
    try:
        _, text = read_source(path)
        return parse_yaml(text, str(path))
    except Unreadable as exc:
        raise DataError([str(exc.problem)]) from None


def open_data(path: Path, keys: list[str]) -> tuple[Checker, Mapping[str, Any]]:
    """Read a version-1 data file whose top level is a mapping with ``keys``.

    Returns the checker that collects its problems, and the top-level mapping.

    Raises:
        DataError: the file is missing or is not YAML.
    """
    data, lines = read_yaml(path)
    c = Checker(str(path), lines)
    root = c.mapping(data, ())
    c.unknown(root, (), keys)
    if c.present(root, "version", (), "version 1", True) and root["version"] != 1:
        c.bad(("version",), "version 1", root["version"])
    return c, root


class Checker(checker.Checker):
    """The shared checker, with texts as this package's :class:`Text` (stripped)."""

    __slots__ = ()

    def __init__(self, file: str, lines: dict[str, int] | None = None) -> None:
        super().__init__(file, lines or {}, checker.YAML)

    def raise_if_any(self) -> None:
        if self.problems:
            raise DataError(self.messages())

    def text_of(
        self,
        m: Mapping[str, Any],
        key: str,
        path: PathT,
        *,
        required: bool = True,
        default: Text | None = None,
    ) -> Text:
        """A ``{ja: …, en: …}`` pair, both non-empty; ``default`` (or empty) when bad."""
        return _text(self.text(m, key, path, required=required)) or default or Text("", "")

    def texts_of(
        self, m: Mapping[str, Any], key: str, path: PathT, *, required: bool = True
    ) -> tuple[Text, ...]:
        return tuple(
            Text(ja.strip(), en.strip()) for ja, en in self.texts(m, key, path, required=required)
        )


def _text(pair: tuple[str, str] | None) -> Text | None:
    return Text(pair[0].strip(), pair[1].strip()) if pair is not None else None
