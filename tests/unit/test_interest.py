"""Interest management: radius, cap, nearest first, the rest counted, enter and leave."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from world import load_world
from world.crowd import Crowd
from world.interest import Interest, enter_leave
from world.model import World

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def hall() -> World:
    return load_world(ROOT / "worlds" / "machida-city-hall")


def row(visible: np.ndarray, i: int = 0) -> list[int]:
    r = visible[i]
    return r[r >= 0].tolist()


def test_walking_away_past_the_radius_leaves_the_view_and_coming_back_enters(hall: World) -> None:
    crowd = Crowd(hall, 2)
    crowd.place(0, 0, 5.0, 25.0, 0.0)  # the viewer stands still
    crowd.place(1, 0, 8.0, 25.0, 0.0)  # the walker starts 3 m away and walks east
    interest = Interest(radius=30.0, cap=64)
    seen = np.array(sorted(row(interest.query(crowd, np.array([0]))[0])))
    assert seen.tolist() == [0, 1]
    events = []
    crowd.set_intent(1, 1.0, 0.0, 0.0)
    for tick in range(400):
        crowd.step(0.05)
        if tick == 200:
            crowd.set_intent(1, -1.0, 0.0, 0.0)  # and back
        visible, beyond = interest.query(crowd, np.array([0]))
        now = np.array(sorted(row(visible)))
        entered, left = enter_leave(seen, now)
        distance = float(crowd.pos[1, 0] - crowd.pos[0, 0])
        if len(left):
            events.append(("left", left.tolist(), distance, int(beyond[0])))
        if len(entered):
            events.append(("entered", entered.tolist(), distance, int(beyond[0])))
        seen = now
    assert [e[:2] for e in events] == [("left", [1]), ("entered", [1])]
    (_, _, d_left, beyond_left), (_, _, d_back, beyond_back) = events
    assert d_left > 30.0 and d_left < 30.2
    assert beyond_left == 1  # counted, not dropped
    assert d_back <= 30.0
    assert beyond_back == 0


def test_nearest_first_capped_and_the_rest_counted(hall: World) -> None:
    n = 40
    crowd = Crowd(hall, n)
    # avatars on a line at 0.5 m spacing, slot numbers shuffled against distance
    order = np.random.default_rng(3).permutation(n)
    for rank, slot in enumerate(order):
        crowd.place(int(slot), 0, 2.0 + 0.5 * rank, 25.0, 0.0)
    viewer = int(order[0])
    interest = Interest(radius=30.0, cap=10)
    visible, beyond = interest.query(crowd, np.array([viewer]))
    assert visible.shape == (1, 10) and visible.dtype == np.int32
    assert row(visible) == order[:10].tolist()  # itself first, then by distance
    assert beyond.tolist() == [n - 10]
    # a small radius leaves padding
    visible, beyond = Interest(radius=1.2, cap=10).query(crowd, np.array([viewer]))
    assert row(visible) == order[:3].tolist()
    assert visible[0, 3:].tolist() == [-1] * 7
    assert beyond.tolist() == [n - 3]


def test_other_floors_are_neither_seen_nor_counted(hall: World) -> None:
    crowd = Crowd(hall, 4)
    crowd.place(0, 0, 30.0, 45.0, 0.0)
    crowd.place(1, 1, 30.0, 45.0, 0.0)  # right above
    crowd.place(2, 1, 31.0, 45.0, 0.0)
    crowd.place(3, 0, 70.0, 45.0, 0.0)  # same floor, 40 m away
    visible, beyond = Interest().query(crowd, np.array([0, 1, 3]))
    assert row(visible, 0) == [0]
    assert row(visible, 1) == [1, 2]
    assert row(visible, 2) == [3]
    assert beyond.tolist() == [1, 0, 1]


def test_the_viewer_comes_first_even_when_someone_stands_on_its_spot(hall: World) -> None:
    crowd = Crowd(hall, 3)
    for s in range(3):
        crowd.place(s, 0, 30.0, 30.0, 0.0)
    visible, _ = Interest().query(crowd, np.array([2, 0, 1]))
    assert [row(visible, i)[0] for i in range(3)] == [2, 0, 1]
    assert all(sorted(row(visible, i)) == [0, 1, 2] for i in range(3))


def test_an_inactive_viewer_sees_nothing(hall: World) -> None:
    crowd = Crowd(hall, 3)
    crowd.place(0, 0, 30.0, 30.0, 0.0)
    visible, beyond = Interest().query(crowd, np.array([1, 0]))
    assert visible[0].tolist() == [-1] * 64 and beyond[0] == 0
    assert row(visible, 1) == [0]


@pytest.mark.parametrize("seed", range(6))
def test_agrees_with_brute_force_on_crowds_sparse_and_dense(hall: World, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 1200))
    crowd = Crowd(hall, n + 5)
    crowd.active[:n] = True
    crowd.pos[:n] = rng.uniform([0, 0], [80, 50], (n, 2))
    if seed % 2:
        crowd.pos[: n // 2] = rng.normal([30, 45], 0.7, (n // 2, 2))  # a crowd at the door
    crowd.floor[:n] = rng.integers(0, 2, n)
    radius, cap = [(30.0, 64), (8.0, 16), (45.0, 200)][seed % 3]
    interest = Interest(radius=radius, cap=cap)
    viewers = rng.choice(n + 5, size=120, replace=False)
    visible, beyond = interest.query(crowd, viewers)
    act = np.flatnonzero(crowd.active)
    for i, v in enumerate(viewers):
        if not crowd.active[v]:
            assert row(visible, i) == [] and beyond[i] == 0
            continue
        same = act[crowd.floor[act] == crowd.floor[v]]
        d = np.hypot(*(crowd.pos[same] - crowd.pos[v]).T)
        within = np.sort(d[d <= radius])
        got = row(visible, i)
        assert got[0] == v
        assert len(got) == min(cap, len(within))
        got_d = np.hypot(*(crowd.pos[got] - crowd.pos[v]).T)
        assert np.all(np.diff(got_d) >= -1e-4)  # nearest first
        assert np.allclose(got_d, within[: len(got)], atol=1e-4)  # and the nearest ones
        assert beyond[i] == len(same) - len(got)


def test_enter_leave_between_sorted_views() -> None:
    entered, left = enter_leave(np.array([1, 3, 5, 7]), np.array([3, 4, 7, 9]))
    assert entered.tolist() == [4, 9]
    assert left.tolist() == [1, 5]
    entered, left = enter_leave(np.array([], dtype=np.int32), np.array([2], dtype=np.int32))
    assert entered.tolist() == [2] and left.tolist() == []


def reference(
    crowd: Crowd, viewers: np.ndarray, radius: float, cap: int
) -> tuple[np.ndarray, np.ndarray]:
    """The contract, written plainly: per viewer, its floor within the radius sorted by the key
    (float32 d², slot), the first cap of them, the viewer itself moved to the front."""
    visible = np.full((len(viewers), cap), -1, dtype=np.int32)
    beyond = np.zeros(len(viewers), dtype=np.int32)
    act = np.flatnonzero(crowd.active)
    for i, v in enumerate(viewers.tolist()):
        if not crowd.active[v]:
            continue
        same = act[crowd.floor[act] == crowd.floor[v]]
        d = crowd.pos[same].astype(np.float32) - crowd.pos[v].astype(np.float32)
        d2 = d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1]  # float32, as the kernel computes it
        inside = d2 <= np.float32(radius * radius)
        order = np.lexsort((same[inside], d2[inside]))
        got = same[inside][order][:cap].tolist()
        if v in got:
            got.remove(v)
        else:
            got.pop()  # more than cap stand on its spot with lower slots
        got.insert(0, v)
        visible[i, : len(got)] = got
        beyond[i] = len(same) - len(got)
    return visible, beyond


@pytest.mark.parametrize("seed", range(8))
def test_the_answer_is_the_keys_order_whatever_the_grid_cell(hall: World, seed: int) -> None:
    """Ties in d² break by slot, exactly, and the grid's cell size never shows in the answer."""
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(30, 1500))
    crowd = Crowd(hall, n + 5)
    crowd.active[:n] = True
    crowd.pos[:n] = rng.uniform([0, 0], [80, 50], (n, 2))
    crowd.pos[: n // 3] = rng.normal([30, 45], 0.5, (n // 3, 2))  # a crowd, with ties in d²
    crowd.pos[n // 3 : n // 3 + 5] = crowd.pos[0]  # some stand on one spot
    if seed >= 4:
        crowd.pos[:n] = np.round(crowd.pos[:n] * 4) / 4  # on a lattice: ties everywhere
    crowd.floor[:n] = rng.integers(0, 2, n)
    radius, cap = [(30.0, 64), (8.0, 16), (45.0, 200), (30.0, 1)][seed % 4]
    viewers = rng.choice(n + 5, size=min(n, 150), replace=False)
    want = reference(crowd, viewers, radius, cap)
    for cell in (0.7, 2.5, 10.0, 100.0):
        visible, beyond = Interest(radius=radius, cap=cap, cell=cell).query(crowd, viewers)
        assert visible.dtype == np.int32 and beyond.dtype == np.int32
        assert np.array_equal(visible, want[0]) and np.array_equal(beyond, want[1])


def test_avatars_spread_over_a_city_get_a_coarser_grid_and_the_same_answer(hall: World) -> None:
    rng = np.random.default_rng(7)
    n = 300
    crowd = Crowd(hall, n)
    crowd.active[:] = True
    crowd.pos[:] = rng.uniform([-5000, -3000], [20000, 9000], (n, 2))  # 10⁸ cells of 2.5 m
    crowd.pos[:40] = rng.uniform([100, 100], [130, 110], (40, 2))
    viewers = np.arange(n)
    for radius in (30.0, 3000.0):
        got = Interest(radius=radius, cap=16).query(crowd, viewers)
        want = reference(crowd, viewers, radius, 16)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


def test_a_viewer_that_is_not_a_slot_is_refused(hall: World) -> None:
    crowd = Crowd(hall, 3)
    crowd.place(0, 0, 30.0, 30.0, 0.0)
    with pytest.raises(IndexError):
        Interest().query(crowd, np.array([0, 3]))
    visible, beyond = Interest().query(crowd, np.array([], dtype=np.int64))
    assert visible.shape == (0, 64) and beyond.shape == (0,)
