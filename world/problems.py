"""What is wrong with a world file: one :class:`WorldProblem` per finding, one line each."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WorldProblem", "WorldError"]


@dataclass(frozen=True, slots=True)
class WorldProblem:
    """One finding: the file, the place in it, what was expected and what was found.

    ``place`` is a path into the file such as ``floors[1].outline`` or, when the file does not
    parse, ``line 12, column 3``.
    """

    file: str
    place: str
    expected: str
    got: str

    def __str__(self) -> str:
        line = f"{self.file}:{self.place}: expected {self.expected}, got {self.got}"
        return " ".join(line.split())


class WorldError(Exception):
    """A world file that does not load; ``problems`` lists every problem found."""

    def __init__(self, problems: list[WorldProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
