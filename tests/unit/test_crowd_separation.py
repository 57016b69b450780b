"""Personal space: avatars ease apart instead of standing in or walking through each other."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from world import load_world
from world.crowd import PERSONAL_SPACE, SEPARATION_SPEED, Crowd
from world.model import World

ROOT = Path(__file__).resolve().parents[2]
TICK = 0.05


@pytest.fixture(scope="module")
def hall() -> World:
    return load_world(ROOT / "worlds" / "machida-city-hall")


def gap(crowd: Crowd, a: int, b: int) -> float:
    return float(np.hypot(*(crowd.pos[a] - crowd.pos[b])))


def test_two_people_on_one_spot_step_apart_softly(hall: World) -> None:
    crowd = Crowd(hall, 2)
    crowd.place(0, 0, 30.0, 30.0, 0.0)
    crowd.place(1, 0, 30.0, 30.0, 0.0)
    crowd.step(TICK)
    # soft: one tick moves each at most SEPARATION_SPEED × dt
    assert 0 < gap(crowd, 0, 1) <= 2 * SEPARATION_SPEED * TICK + 1e-4
    for _ in range(40):
        crowd.step(TICK)
    assert gap(crowd, 0, 1) >= PERSONAL_SPACE - 0.02
    # and then they stand still: nobody drifts once there is room
    settled = crowd.pos.copy()
    for _ in range(20):
        crowd.step(TICK)
    assert np.allclose(crowd.pos, settled, atol=1e-4)


def test_walking_into_someone_does_not_pass_through(hall: World) -> None:
    crowd = Crowd(hall, 2)
    crowd.place(0, 0, 30.0, 30.0, 0.0)  # stands
    crowd.place(1, 0, 30.0, 34.0, 0.0)  # runs north, straight at them
    crowd.set_intent(1, 0.0, -1.0, math.pi)
    closest = math.inf
    for _ in range(60):
        crowd.step(TICK)
        closest = min(closest, gap(crowd, 0, 1))
        # the runner never gets past the one standing
        assert crowd.pos[1, 1] > crowd.pos[0, 1]
    assert closest > 0.3, closest


def test_a_crowd_at_the_entrance_spreads_out_and_stays_inside(hall: World) -> None:
    n = 150
    crowd = Crowd(hall, n)
    for s in range(n):
        crowd.spawn(s, spawn_index=0)
    for _ in range(100):
        crowd.step(TICK)
    d = np.hypot(*(crowd.pos[:, None, :] - crowd.pos[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(d, np.inf)
    assert d.min() > 0.4, d.min()
    assert (d.min(axis=1) > PERSONAL_SPACE * 0.8).mean() > 0.9
    # the south wall of the lobby (z = 50) holds everyone pushed against it
    assert (crowd.pos[:, 1] < 50).all()


def test_a_wall_holds_against_the_push_and_floors_do_not_mix(hall: World) -> None:
    crowd = Crowd(hall, 3)
    crowd.place(0, 0, 30.0, 0.2, 0.0)  # against the north outline of the lobby
    crowd.place(1, 0, 30.0, 0.4, 0.0)  # pressing from the south
    crowd.place(2, 1, 30.0, 0.4, 0.0)  # the same spot upstairs
    crowd.set_intent(1, 0.0, -1.0, math.pi)
    for _ in range(40):
        crowd.step(TICK)
        assert crowd.pos[0, 1] > 0 and crowd.pos[1, 1] > 0
    assert tuple(crowd.pos[2]) == (30.0, pytest.approx(0.4))
    # upstairs and downstairs never push each other
    assert crowd.pos[0, 0] != pytest.approx(30.0, abs=1e-6) or crowd.pos[2, 0] == 30.0


def test_personal_space_zero_turns_it_off(hall: World) -> None:
    crowd = Crowd(hall, 2, personal_space=0.0)
    crowd.place(0, 0, 30.0, 30.0, 0.0)
    crowd.place(1, 0, 30.0, 30.0, 0.0)
    crowd.step(TICK)
    assert gap(crowd, 0, 1) == 0.0


def reference_separation(crowd: Crowd, idx: np.ndarray, dt: float) -> np.ndarray:
    """Crowd.separation's rule, pair by pair over every pair of ``idx`` (no cells)."""
    r = crowd.personal_space
    p = crowd.pos[idx].astype(np.float64)
    out = np.zeros((len(idx), 2))
    for a in range(len(idx)):
        for b in range(a + 1, len(idx)):
            if crowd.floor[idx[a]] != crowd.floor[idx[b]]:
                continue
            d = p[a] - p[b]
            dist = math.hypot(*d)
            if dist >= r:
                continue
            if dist < 1e-6:
                lo, hi = sorted((float(idx[a]), float(idx[b])))
                angle = math.pi * (3.0 - math.sqrt(5.0)) * lo + hi
                d = np.array([math.sin(angle), math.cos(angle)]) * (
                    1.0 if idx[a] < idx[b] else -1.0
                )
                dist = 1.0
            push = d * (r - dist) / 2 / max(dist, 1e-6)
            out[a] += push
            out[b] -= push
    length = np.hypot(out[:, 0], out[:, 1])
    cap = crowd.separation_speed * dt
    over = length > cap
    out[over] *= (cap / length[over])[:, None]
    return out


def test_the_cells_find_every_close_pair_as_looking_at_all_pairs_does(hall: World) -> None:
    """Separation hashes avatars into cells and pairs each cell with its neighbours; a plain
    look at every pair finds the same pushes (up to the order of the sums), on two floors, with
    avatars on the cells' edges, stacked on one spot, and just out of reach."""
    rng = np.random.default_rng(2)
    n = 300
    crowd = Crowd(hall, n)
    r = crowd.personal_space
    for s in range(n):
        if s % 5 == 0:  # on a cell's corner or edge
            x, z = 30 + r * rng.integers(0, 6), 20 + r * rng.integers(0, 6) + rng.choice([0, 0.3])
        elif s % 7 == 0:  # a few on one spot
            x, z = 31.0, 21.0
        else:
            x, z = rng.uniform(28, 34, 2)
        crowd.place(s, int(s % 3 == 0), float(x), float(z), 0.0)
    idx = np.flatnonzero(crowd.active)[rng.permutation(n)[: n - 20]]
    for dt in (TICK, 1.0):
        got = crowd.separation(idx, dt)
        want = reference_separation(crowd, idx, dt)
        assert (np.abs(want).sum(axis=1) > 0).mean() > 0.8
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
