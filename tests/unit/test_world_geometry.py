"""Plane geometry used by the validator and the collision: tables of known answers."""

from __future__ import annotations

import numpy as np
import pytest

from world.geometry import (
    distance_to_segments,
    point_on_boundary,
    points_in_polygon,
    polygon_area,
    polygon_problem,
    segments_cross,
    segments_intersect,
)

L_SHAPE = [(0, 0), (10, 0), (10, 4), (4, 4), (4, 10), (0, 10)]


def test_points_in_polygon_is_vectorised_over_points() -> None:
    x = np.array([1.0, 8.0, 8.0, 2.0, -1.0, 3.9])
    z = np.array([1.0, 2.0, 8.0, 9.0, 5.0, 9.9])
    assert points_in_polygon(x, z, L_SHAPE).tolist() == [True, True, False, True, False, True]


@pytest.mark.parametrize(
    ("points", "problem"),
    [
        (L_SHAPE, None),
        ([(0, 0), (1, 0)], "2 points"),
        ([(0, 0), (4, 4), (4, 0), (0, 4)], "edges 0 and 2 intersect"),  # bow tie
        ([(0, 0), (4, 0), (4, 4), (4, 0), (0, 4)], "point 3 repeats point 1"),
        ([(0, 0), (2, 0), (4, 0)], "edges 0 and 2 overlap"),  # flat
        (
            [(0, 0), (6, 0), (6, 6), (3, 0), (0, 6)],
            "edges 0 and 2 intersect",
        ),  # a vertex on an edge
    ],
)
def test_simple_polygons(points: list[tuple[float, float]], problem: str | None) -> None:
    assert polygon_problem(points) == problem


@pytest.mark.parametrize(
    ("a", "b", "c", "d", "touch", "cross"),
    [
        ((0, 0), (2, 2), (0, 2), (2, 0), True, True),
        ((0, 0), (1, 1), (1, 1), (2, 0), True, False),  # share an end
        ((0, 0), (2, 0), (1, 0), (3, 0), True, False),  # overlap along a line
        ((0, 0), (1, 0), (0, 1), (1, 1), False, False),  # parallel apart
        ((0, 0), (1, 0), (2, -1), (2, 1), False, False),  # would cross if longer
    ],
)
def test_segments(a, b, c, d, touch: bool, cross: bool) -> None:  # type: ignore[no-untyped-def]
    assert segments_intersect(a, b, c, d) is touch
    assert segments_cross(a, b, c, d) is cross


def test_area_boundary_and_distance() -> None:
    assert polygon_area(L_SHAPE) == pytest.approx(64.0)
    assert polygon_area(L_SHAPE[::-1]) == pytest.approx(-64.0)
    assert point_on_boundary(10, 2, L_SHAPE) and not point_on_boundary(9, 2, L_SHAPE)
    segs = np.array([[0.0, 0.0, 10.0, 0.0], [5.0, 5.0, 5.0, 6.0]])
    assert distance_to_segments(5.0, 2.0, segs).tolist() == pytest.approx([2.0, 3.0])
