"""Movement: speed clamp, walls that are never crossed, stairs between floors, spawning."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from world import load_world
from world.collision import build_grid
from world.crowd import SPAWN_SPREAD, Crowd
from world.geometry import points_in_polygon, polygon_edges, segments_intersect
from world.model import World

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def hall() -> World:
    return load_world(ROOT / "worlds" / "machida-city-hall")


def blocking_segments(world: World, floor: int) -> np.ndarray:
    """Walls as the world file draws them (outline, walls, solid decor), built independently."""
    segs = [tuple(e) for e in polygon_edges(world.floors[floor].outline)]
    for w in world.walls:
        if w.floor == floor:
            segs += [(*w.points[i], *w.points[i + 1]) for i in range(len(w.points) - 1)]
    for d in world.decor:
        if d.floor == floor and d.solid:
            fp = d.footprint()
            segs += [(*fp[i], *fp[(i + 1) % 4]) for i in range(4)]
    return np.array(segs, dtype=np.float64)


def crossed(a: np.ndarray, b: np.ndarray, segs: np.ndarray) -> bool:
    return any(
        segments_intersect(
            (float(a[0]), float(a[1])), (float(b[0]), float(b[1])), (s[0], s[1]), (s[2], s[3])
        )
        for s in segs
    )


def crossed_many(a: np.ndarray, b: np.ndarray, segs: np.ndarray) -> np.ndarray:
    """Per move ``a[i] → b[i]``: does it touch any segment? (orientation test, touching counts)"""
    a = a.astype(np.float64)[:, None, :]
    b = b.astype(np.float64)[:, None, :]
    p, q = segs[None, :, 0:2], segs[None, :, 2:4]

    def orient(o: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return (u[..., 0] - o[..., 0]) * (v[..., 1] - o[..., 1]) - (u[..., 1] - o[..., 1]) * (
            v[..., 0] - o[..., 0]
        )

    d1, d2 = orient(p, q, a), orient(p, q, b)
    d3, d4 = orient(a, b, p), orient(a, b, q)
    proper = (d1 * d2 < 0) & (d3 * d4 < 0)

    # an end lying on the other segment (within a micrometre)
    def on(o: np.ndarray, u: np.ndarray, v: np.ndarray, d: np.ndarray) -> np.ndarray:
        lo = np.minimum(o, u) - 1e-6
        hi = np.maximum(o, u) + 1e-6
        return (np.abs(d) <= 1e-9) & np.all((v >= lo) & (v <= hi), axis=-1)

    touch = on(p, q, a, d1) | on(p, q, b, d2) | on(a, b, p, d3) | on(a, b, q, d4)
    return np.asarray((proper | touch).any(axis=1))


# (case, floor, start x, z, intent mx, mz, dt, steps, which side must hold)
PUSHES = [
    ("straight into the north outline", 0, 30.0, 1.0, 0.0, -1.0, 0.05, 40, lambda x, z: z > 0),
    ("fast diagonal into a corner", 0, 1.0, 1.0, -1.0, -1.0, 0.5, 20, lambda x, z: x > 0 and z > 0),
    ("huge dt into the south outline", 0, 30.0, 48.0, 0.0, 1.0, 10.0, 5, lambda x, z: z < 50),
    ("into a booth wall from the corridor", 0, 69.0, 1.0, 1.0, 0.0, 0.05, 60, lambda x, z: x < 70),
    ("out of a booth through its side wall", 0, 75.0, 5.0, 0.0, 1.0, 0.1, 60, lambda x, z: z < 6),
    ("grazing along a booth divider", 0, 78.0, 5.9, 1.0, 0.001, 0.05, 200, lambda x, z: z < 6),
    (
        "at the end of a thin wall, head on",
        0,
        70.0,
        3.0,
        0.0,
        -1.0,
        0.05,
        60,
        lambda x, z: z > 2.25 or x != 70,
    ),
    ("into a pillar", 0, 24.0, 30.0, 0.0, 1.0, 0.05, 100, lambda x, z: z < 33.5),
    ("into the committee hall wall", 1, 10.0, 27.0, 0.0, -1.0, 0.2, 50, lambda x, z: z > 26),
    (
        "into the stairwell railing upstairs",
        1,
        17.0,
        34.0,
        -1.0,
        0.0,
        0.05,
        80,
        lambda x, z: x > 15.5,
    ),
    (
        "into a stair's side from the lobby",
        0,
        17.0,
        34.0,
        -1.0,
        0.0,
        0.05,
        80,
        lambda x, z: x > 15.5,
    ),
    (
        "under the landing, into the top end",
        0,
        14.0,
        45.0,
        0.0,
        -1.0,
        0.05,
        80,
        lambda x, z: z > 40,
    ),
]


@pytest.mark.parametrize(
    ("case", "floor", "x", "z", "mx", "mz", "dt", "steps", "side"),
    PUSHES,
    ids=[p[0] for p in PUSHES],
)
def test_pushing_into_a_wall_never_goes_through(
    hall: World,
    case: str,
    floor: int,
    x: float,
    z: float,
    mx: float,
    mz: float,
    dt: float,
    steps: int,
    side: object,
) -> None:
    crowd = Crowd(hall, 1)
    crowd.place(0, floor, x, z, 0.0)
    segs = blocking_segments(hall, floor)
    for _ in range(steps):
        before = crowd.pos[0].copy()
        crowd.set_intent(0, mx, mz, 0.0)
        crowd.step(dt)
        after = crowd.pos[0]
        assert int(crowd.floor[0]) == floor, case
        assert not crossed(before, after, segs), case
        assert side(float(after[0]), float(after[1])), (case, after)  # type: ignore[operator]


def test_repeated_pushes_at_every_angle_never_cross_anything(hall: World) -> None:
    """Avatars pressed against walls and corners with changing intents and uneven ticks.

    Ticks stay within one collision substep, so each tick's move is a straight line that must
    cross no wall (longer ticks slide round corners: see the closed-room test).
    """
    rng = np.random.default_rng(7)
    n = 300
    crowd = Crowd(hall, n)
    starts = [
        (0, 69.5, 2.0),
        (0, 70.5, 5.5),
        (0, 0.3, 0.3),
        (0, 79.7, 49.7),
        (0, 24.0, 33.3),
        (0, 60.2, 39.0),
        (1, 40.3, 10.0),
        (1, 16.0, 27.5),
        (0, 13.0, 27.9),
        (1, 14.0, 40.3),
    ]
    for s in range(n):
        f, x, z = starts[s % len(starts)]
        crowd.place(s, f, x, z, 0.0)
    segs = [blocking_segments(hall, f.index) for f in hall.floors]
    for step in range(150):
        before = crowd.pos.copy()
        floors_before = crowd.floor.copy()
        for s in range(n):
            a = rng.uniform(0, 2 * math.pi)
            crowd.set_intent(s, math.sin(a) * 2, math.cos(a) * 2, a)
        crowd.step(float(rng.choice([0.005, 0.05, 0.08])))
        for f in range(len(hall.floors)):
            on_f = crowd.floor == f
            outline = hall.floors[f].outline
            assert points_in_polygon(crowd.pos[on_f, 0], crowd.pos[on_f, 1], outline).all(), step
            stayed = on_f & (floors_before == f)
            bad = crossed_many(before[stayed], crowd.pos[stayed], segs[f])
            assert not bad.any(), (step, before[stayed][bad], crowd.pos[stayed][bad])


ROOM = """\
format = 1
id = "rooms"
name = { ja = "部屋", en = "Rooms" }

[[floors]]
id = "g"
name = { ja = "1階", en = "Ground" }
elevation = 0.0
outline = [[0, 0], [30, 0], [30, 30], [0, 30]]

[[walls]]
id = "closed-room"
floor = "g"
points = [[10, 10], [20, 10], [20, 20], [10, 20], [10, 10]]
thickness = 0.1

[[walls]]
id = "closed-triangle"
floor = "g"
points = [[22, 22], [28, 22], [25, 28], [22, 22]]

[[spawns]]
id = "spawn"
floor = "g"
x = 5.0
z = 5.0
yaw = 0.0
"""


def test_whatever_the_ticks_nobody_enters_or_leaves_a_closed_room(tmp_path: Path) -> None:
    (tmp_path / "world.toml").write_text(ROOM, encoding="utf-8")
    world = load_world(tmp_path)
    rng = np.random.default_rng(11)
    n = 400
    crowd = Crowd(world, n, max_speed=6.0)
    square = [(10, 10), (20, 10), (20, 20), (10, 20)]
    triangle = [(22, 22), (28, 22), (25, 28)]
    for s in range(n):
        while True:
            x, z = rng.uniform(0.2, 29.8, 2)
            if min(abs(x - 10), abs(x - 20), abs(z - 10), abs(z - 20)) > 0.1:
                break
        crowd.place(s, 0, float(x), float(z), 0.0)
    inside = points_in_polygon(crowd.pos[:, 0], crowd.pos[:, 1], square)
    in_tri = points_in_polygon(crowd.pos[:, 0], crowd.pos[:, 1], triangle)
    assert inside.any() and (~inside).any()
    for _ in range(100):
        a = rng.uniform(0, 2 * math.pi, n)
        for s in range(n):
            crowd.set_intent(s, math.sin(a[s]), math.cos(a[s]), float(a[s]))
        crowd.step(float(rng.choice([0.01, 0.05, 0.3, 1.0])))
        now = points_in_polygon(crowd.pos[:, 0], crowd.pos[:, 1], square)
        assert np.array_equal(now, inside)
        assert np.array_equal(points_in_polygon(crowd.pos[:, 0], crowd.pos[:, 1], triangle), in_tri)
        assert points_in_polygon(crowd.pos[:, 0], crowd.pos[:, 1], world.floors[0].outline).all()


def test_speed_is_clamped_and_bad_intents_are_ignored(hall: World) -> None:
    crowd = Crowd(hall, 3, max_speed=3.0)
    for s in range(3):
        crowd.place(s, 0, 30.0, 25.0 + s * 4, 0.0)
    crowd.set_intent(0, 50.0, 0.0, 0.0)  # clipped to length 1
    crowd.set_intent(1, float("nan"), float("inf"), float("nan"))
    crowd.set_intent(2, 0.3, 0.4, 0.0)  # half speed
    assert np.hypot(*crowd.intent[0]) == pytest.approx(1.0)
    start = crowd.pos.copy()
    for _ in range(20):
        crowd.step(0.05)
    moved = np.hypot(*(crowd.pos - start).T)
    assert moved[0] == pytest.approx(3.0, abs=1e-3)
    assert moved[1] == 0.0
    assert moved[2] == pytest.approx(1.5, abs=1e-3)


def test_walking_up_the_stairs_changes_floor_and_height_and_back_down(hall: World) -> None:
    stair = hall.stairs[0]
    crowd = Crowd(hall, 1)
    ax, az = stair.axis
    sx, sz = stair.start
    crowd.place(0, stair.lower, sx - ax * 2, sz - az * 2, 0.0)
    heights = []
    crowd.set_intent(0, ax, az, 0.0)
    for _ in range(200):
        crowd.step(0.05)
        heights.append(float(crowd.heights()[0]))
        if crowd.floor[0] == stair.upper:
            break
    lower, upper = hall.floors[stair.lower].elevation, hall.floors[stair.upper].elevation
    assert crowd.floor[0] == stair.upper
    assert heights[-1] == upper
    assert heights == sorted(heights) and heights[0] == lower
    assert any(lower < h < upper for h in heights)  # climbed, not teleported
    # a few steps further on the upper floor, then turn round and walk down
    for _ in range(10):
        crowd.step(0.05)
    assert crowd.floor[0] == stair.upper
    crowd.set_intent(0, -ax, -az, 0.0)
    heights = []
    for _ in range(300):
        crowd.step(0.05)
        heights.append(float(crowd.heights()[0]))
    assert crowd.floor[0] == stair.lower
    assert heights[-1] == lower
    assert heights == sorted(heights, reverse=True)


def test_spawns_do_not_stack_and_stay_on_the_floor(hall: World) -> None:
    crowd = Crowd(hall, 200)
    for s in range(200):
        crowd.spawn(s)
    assert crowd.active.all()
    points = {(round(float(x), 3), round(float(z), 3)) for x, z in crowd.pos}
    assert len(points) == 200
    spawn_floors = {sp.floor for sp in hall.spawns}
    assert set(crowd.floor.tolist()) <= spawn_floors
    for s in range(200):
        assert points_in_polygon(
            crowd.pos[s, 0], crowd.pos[s, 1], hall.floors[crowd.floor[s]].outline
        )
    # spawn_index picks the point
    crowd.spawn(0, spawn_index=1)
    sp = hall.spawns[1]
    assert math.hypot(crowd.pos[0, 0] - sp.x, crowd.pos[0, 1] - sp.z) <= SPAWN_SPREAD + 1e-3


def test_removed_avatars_do_not_move_and_place_refuses_points_off_the_floor(hall: World) -> None:
    crowd = Crowd(hall, 2)
    crowd.place(0, 0, 30.0, 30.0, 0.0)
    crowd.set_intent(0, 1.0, 0.0, 0.0)
    crowd.remove(0)
    crowd.step(0.5)
    assert not crowd.active[0]
    assert tuple(crowd.pos[0]) == (30.0, 30.0)
    with pytest.raises(ValueError):
        crowd.place(1, 0, 100.0, 30.0, 0.0)
    with pytest.raises(ValueError):
        crowd.place(1, 7, 10.0, 10.0, 0.0)


def test_the_collision_grid_moves_everyone_exactly_as_sweeping_every_wall_does(
    hall: World,
) -> None:
    """Each substep looks only at the walls its grid cell lists (world.collision.SegmentGrid);
    a crowd whose grid is one cell per floor sweeps every wall of the floor. Over random walks
    with stairs, walls and removals, both hold the very same bits at every step, and most of the
    hall's cells list no wall at all (a walker there takes its move without any test)."""
    rng = np.random.default_rng(5)
    n = 150
    fast, plain = Crowd(hall, n), Crowd(hall, n)
    plain._grid = build_grid(plain._segments, 0.0, math.inf)
    for i in range(n):
        fast.spawn(i)
        plain.spawn(i)
    cells = np.diff(fast._grid.start)
    assert len(cells) > 1000 and (cells == 0).mean() > 0.5
    for t in range(120):
        if t % 10 == 0:
            for i in rng.choice(n, n // 2, replace=False):
                h, m = rng.uniform(0, 2 * math.pi), rng.uniform(0.3, 1.2)
                for c in (fast, plain):
                    c.set_intent(int(i), m * math.sin(h), m * math.cos(h), h)
        if t == 60:
            fast.remove(3)
            plain.remove(3)
        dt = 0.05 if t % 7 else 0.4  # a stalled tick now and then: several substeps
        fast.step(dt)
        plain.step(dt)
        assert fast.pos.tobytes() == plain.pos.tobytes(), t
        assert fast.floor.tobytes() == plain.floor.tobytes(), t


def test_intents_of_a_tick_at_once_are_one_by_one_intents(hall: World) -> None:
    """``set_intents`` (the server's inputs of one tick) gives what ``set_intent`` gives for each:
    clipped to length 1, NaN/inf moves as 0, a non-finite yaw leaves the heading alone."""
    rng = np.random.default_rng(3)
    n = 40
    mx, mz, yaw = rng.uniform(-3, 3, n), rng.uniform(-3, 3, n), rng.uniform(-20, 20, n)
    mx[:4] = [float("nan"), float("inf"), 0.3, 0.0]
    mz[:4] = [0.5, 0.2, float("-inf"), 0.0]
    yaw[4:7] = [float("nan"), float("inf"), -math.pi]
    one, many = Crowd(hall, n), Crowd(hall, n)
    for s in range(n):
        one.spawn(s)
        many.spawn(s)
        many.yaw[s] = one.yaw[s] = 1.25
    for s in range(n):
        one.set_intent(s, float(mx[s]), float(mz[s]), float(yaw[s]))
    slots = rng.permutation(n)
    many.set_intents(slots, mx[slots], mz[slots], yaw[slots])
    np.testing.assert_allclose(many.intent, one.intent, rtol=0, atol=1e-7)
    np.testing.assert_allclose(many.yaw, one.yaw, rtol=0, atol=1e-6)
    assert many.yaw[4] == many.yaw[5] == np.float32(1.25)
