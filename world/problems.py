"""What is wrong with a world file: one :class:`WorldProblem` per finding, one line each.

A problem is the shared :class:`world.checker.Problem`, so a world file reports its places the way
the kiosk data files and the briefing scripts do: ``FILE:LINE: PLACE: expected ..., got ...``.
"""

from __future__ import annotations

from world.checker import Problem

__all__ = ["WorldProblem", "WorldError"]

WorldProblem = Problem
"""One finding: the file, the line, the place in it (``floors[1].outline``), what was expected
and what was found."""


class WorldError(Exception):
    """A world file that does not load; ``problems`` lists every problem found."""

    def __init__(self, problems: list[WorldProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
