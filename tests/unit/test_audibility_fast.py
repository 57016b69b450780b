"""The compiled audibility selection gives exactly the answers of plain reference implementations.

The references here are written the straightforward way (a Python loop over listeners and
speakers, the profile's own ``AudioProfile.gain``, ``zone_at``-style polygon tests, sets), or as
the plain numpy of the selection before it was compiled (whole matrices, one sort key per pair),
so that what the kernels of ``world/audibility_kernels.py`` do is pinned by something readable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from world import load_world
from world.audibility import (
    ENTER_DB,
    LEAVE_DB,
    MEGAPHONE_GAIN,
    NONE,
    PA,
    RANK_BONUS_DB,
    Listeners,
    Selection,
    Speakers,
    ZoneTable,
    audible,
    changes,
    gains,
    select,
)
from world.model import World

ROOT = Path(__file__).resolve().parents[2]
F32 = np.float32


@pytest.fixture(scope="module")
def hall() -> World:
    return load_world(ROOT / "worlds" / "machida-city-hall")


@pytest.fixture(scope="module")
def table(hall: World) -> ZoneTable:
    return ZoneTable.from_world(hall)


def _gain_db(x: float) -> F32:
    return F32(10.0 ** (x / 20.0))


def plain_gains(table: ZoneTable, lis: Listeners, spk: Speakers) -> np.ndarray:
    """Every pair's gain in numpy, a block of columns per zone key, ``AudioProfile.gain``'s own
    float32 arithmetic (the numpy ``gains`` the kernels replaced)."""
    n, m = len(lis.ids), len(spk.ids)
    out = np.zeros((n, m), F32)
    remote = lis.key == table.remote
    for key in np.unique(spk.key).tolist():
        cols = np.flatnonzero(spk.key == key)
        rules = table.rule[lis.key, key]
        d = np.sqrt(np.square(lis.pos[:, 0:1] - spk.pos[cols, 0])
                    + np.square(lis.pos[:, 1:2] - spk.pos[cols, 1]))  # fmt: skip
        prof = table.profiles[key]
        g = prof.gain(d) * ((d <= prof.max_distance) & (rules != NONE)[:, None])
        pa = rules == PA
        g[pa] = np.maximum(g[pa], F32(table.pa_gain))
        g[remote] = F32(table.pa_gain) * (rules[remote] != NONE)[:, None]
        out[:, cols] = g
    mega = np.flatnonzero(spk.megaphone & ~table.quiet[spk.key])
    out[np.ix_(~remote, mega)] = F32(MEGAPHONE_GAIN)
    out[lis.ids[:, None] == spk.ids[None, :]] = 0.0
    return out


def plain_select(g: np.ndarray, sids: np.ndarray, prev: np.ndarray | None, k: int = 8) -> Selection:
    """Each row's k best in numpy: the scores with the hysteresis, then one int64 key per pair
    (the score's bits over the inverted rank by id) and a sort (the numpy ``select`` the kernels
    replaced)."""
    n, m = g.shape
    score = np.where(g > _gain_db(ENTER_DB), g, F32(0.0))
    if prev is not None:
        member = (prev[:, :, None] == sids[None, None, :]).any(axis=1)
        kept = member & (g >= _gain_db(LEAVE_DB))
        score = np.where(kept, g * _gain_db(RANK_BONUS_DB), score)
    rank = np.argsort(np.argsort(sids, kind="stable"), kind="stable")
    keys = (score.view(np.int32).astype(np.int64) << 32) | (m - 1 - rank)
    best = np.sort(keys, axis=1)[:, ::-1][:, :k]
    cols = np.argsort(rank)[(m - 1) - (best & 0xFFFFFFFF)]
    live = best > 0xFFFFFFFF
    ids = np.where(live, sids[cols], np.iinfo(np.int64).max)
    order = np.argsort(ids, axis=1, kind="stable")
    ids = np.take_along_axis(ids, order, axis=1)
    gains = np.take_along_axis(
        np.where(live, np.take_along_axis(g, cols, axis=1), 0.0), order, axis=1
    )
    out_ids = np.full((n, k), -1, np.int64)
    out_g = np.zeros((n, k), F32)
    w = ids.shape[1]
    out_ids[:, :w] = np.where(ids == np.iinfo(np.int64).max, -1, ids)
    out_g[:, :w] = gains
    return Selection(out_ids, out_g)


def assert_same(a: Selection, b: Selection) -> None:
    """The same ids and the same gains, bit for bit."""
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.gains.view(np.int32), b.gains.view(np.int32))


def reference(
    table: ZoneTable, lis: Listeners, spk: Speakers, prev: np.ndarray | None, k: int = 8
) -> Selection:
    """Who each listener keeps, one pair at a time, as the module docstring says."""
    n = len(lis.ids)
    ids = np.full((n, k), -1, np.int64)
    out = np.zeros((n, k), F32)
    for i in range(n):
        lkey = int(lis.key[i])
        members = set() if prev is None else {int(x) for x in prev[i] if x >= 0}
        ranked = []
        for j in range(len(spk.ids)):
            skey = int(spk.key[j])
            rule = int(table.rule[lkey, skey])
            if lkey == table.remote:
                g = F32(table.pa_gain) if rule == PA else F32(0.0)
            else:
                dx = F32(lis.pos[i, 0]) - F32(spk.pos[j, 0])
                dz = F32(lis.pos[i, 1]) - F32(spk.pos[j, 1])
                d = np.sqrt(dx * dx + dz * dz)
                prof = table.profiles[skey]
                g = F32(prof.gain(d)) if d <= prof.max_distance and rule != NONE else F32(0.0)
                if rule == PA:
                    g = max(g, F32(table.pa_gain))
                if spk.megaphone[j] and not table.quiet[skey]:
                    g = F32(MEGAPHONE_GAIN)
            sid = int(spk.ids[j])
            if sid == int(lis.ids[i]):
                g = F32(0.0)
            score = g if g > _gain_db(ENTER_DB) else F32(0.0)
            if sid in members and g >= _gain_db(LEAVE_DB):
                score = g * _gain_db(RANK_BONUS_DB)
            if score > 0:
                ranked.append((-float(score), sid, g))
        kept = sorted(sorted(ranked)[:k], key=lambda t: t[1])
        for c, (_, sid, g) in enumerate(kept):
            ids[i, c] = sid
            out[i, c] = g
    return Selection(ids, out)


def crowd(hall: World, table: ZoneTable, rng: np.random.Generator, n: int) -> tuple:
    """``n`` people on both floors, a third of them in the booths, tables, stage, auditorium
    and quiet corner (every zone kind), some exactly at 1 m and 0 m from others (equal gains)."""
    floor = rng.integers(0, 2, n)
    pos = np.stack([rng.uniform(0.5, 79.5, n), rng.uniform(0.5, 49.5, n)], 1)
    zones = [z for z in hall.zones if z.audio != "open"]
    for i in range(0, n, 3):
        z = zones[rng.integers(len(zones))]
        poly = np.asarray(z.polygon)
        lo, hi = poly.min(axis=0), poly.max(axis=0)
        floor[i] = z.floor
        pos[i] = rng.uniform(lo + 0.3, hi - 0.3)
    pos[1::17] = pos[0:-1:17][: len(pos[1::17])] + (1.0, 0.0)  # equal distances, equal gains
    floor[1::17] = floor[0:-1:17][: len(floor[1::17])]
    return floor, pos


def test_fast_selection_is_the_reference_over_updates_with_hysteresis(
    hall: World, table: ZoneTable
) -> None:
    rng = np.random.default_rng(5)
    n = 240
    floor, pos = crowd(hall, table, rng, n)
    talk = rng.random(n) < 0.3
    mega = rng.random(n) < 0.03
    remote = 6  # watch-only viewers: ids past the avatars
    ids = np.arange(n + remote)
    prev_fast: np.ndarray | None = None
    prev_ref: np.ndarray | None = None
    kept = 0
    for _ in range(5):
        pos = np.clip(pos + rng.normal(0, 0.4, pos.shape), 0.5, 79.5)
        pos[:, 1] = np.clip(pos[:, 1], 0.5, 49.5)
        talk ^= rng.random(n) < 0.1
        key = table.locate(floor, pos)
        lkey = np.concatenate([key, np.full(remote, table.remote, np.int32)])
        lpos = np.concatenate([pos, np.zeros((remote, 2))])
        lis = Listeners.of(ids, lpos, lkey)
        spk = Speakers.of(ids[:n][talk], pos[talk], key[talk], mega[talk])
        fast = audible(table, lis, spk, prev_fast)
        ref = reference(table, lis, spk, prev_ref)
        np.testing.assert_array_equal(fast.ids, ref.ids)
        np.testing.assert_array_equal(fast.gains, ref.gains)
        dense = select(gains(table, lis, spk), spk.ids, prev_fast)
        np.testing.assert_array_equal(dense.ids, ref.ids)
        np.testing.assert_array_equal(dense.gains, ref.gains)
        assert_same(plain_select(plain_gains(table, lis, spk), spk.ids, prev_fast), ref)
        if prev_fast is not None:
            kept += int(
                (
                    (fast.ids[:, :, None] == prev_fast[:, None, :]) & (fast.ids[:, :, None] >= 0)
                ).sum()
            )
        prev_fast, prev_ref = fast.ids, ref.ids
    assert kept > 500  # the hysteresis was exercised: members were kept across updates
    assert (fast.ids[n:] >= 0).any() or not (table.rule[table.remote, spk.key] == PA).any()


def test_many_equal_gains_keep_the_lower_ids(table: ZoneTable) -> None:
    """Twelve speakers within the reference distance (gain 1.0 each): the 8 lowest ids."""
    lobby = int(table.key_of_floor[0])
    spk = Speakers.of(np.arange(20, 8, -1), np.full((12, 2), 30.0), np.full(12, lobby))
    lis = Listeners.of([1], [(30.5, 30.0)], [lobby])
    sel = audible(table, lis, spk)
    assert sel.ids[0].tolist() == list(range(9, 17))
    assert (sel.gains[0] == 1.0).all()


def test_a_hundred_equal_gains_across_the_sort_pieces_keep_the_lower_ids(
    table: ZoneTable,
) -> None:
    """100 speakers within the reference distance of two listeners (gain 1.0 each; their
    columns span two pieces of the sort): the 8 lowest ids, and the ones kept from before
    (ranked 6 dB up) stay even when their ids are the highest."""
    lobby = int(table.key_of_floor[0])
    ids = np.random.default_rng(3).permutation(np.arange(100, 200))
    spk = Speakers.of(ids, np.full((100, 2), 30.0), np.full(100, lobby))
    lis = Listeners.of([1, 2], [(30.5, 30.0), (29.5, 30.0)], [lobby, lobby])
    prev = np.full((2, 8), -1, np.int64)
    prev[1, :3] = (150, 190, 199)
    sel = audible(table, lis, spk, prev)
    assert sel.ids[0].tolist() == list(range(100, 108))
    assert sel.ids[1].tolist() == [100, 101, 102, 103, 104, 150, 190, 199]
    assert (sel.gains == 1.0).all()


def test_locate_is_zone_indices(hall: World, table: ZoneTable) -> None:
    rng = np.random.default_rng(2)
    n = 20000
    floor = rng.integers(0, 2, n)
    pos = np.stack([rng.uniform(-3, 83, n), rng.uniform(-3, 53, n)], 1)
    pos[: n // 3] = np.round(pos[: n // 3] * 4) / 4  # on the quarter-metre grid: on the edges
    corners = np.concatenate([np.asarray(z.polygon) for z in hall.zones])
    pos[n // 3 : n // 3 + len(corners)] = corners
    want = table.key(floor, hall.zone_indices(floor, pos))
    np.testing.assert_array_equal(table.locate(floor, pos), want)
    np.testing.assert_array_equal(table.locate(floor, pos.astype(np.float32)),
                                  table.key(floor, hall.zone_indices(floor, pos.astype(np.float32))))  # fmt: skip


def reference_changes(told: Selection, new: Selection, min_db: float = 1.0) -> list[tuple]:
    out = []
    for r in range(len(new.ids)):
        before = {
            int(i): float(g) for i, g in zip(told.ids[r], told.gains[r], strict=True) if i >= 0
        }
        now = {int(i): g for i, g in zip(new.ids[r], new.gains[r], strict=True) if i >= 0}
        add = []
        for i, g in now.items():
            old = before.get(i)
            moved = (
                old is None
                or abs(20 * np.log10(max(float(g), 1e-9)) - 20 * np.log10(max(old, 1e-9))) >= min_db
            )
            if moved:
                add.append((i, round(float(g), 4)))
        gone = sorted(set(before) - set(now))
        if add or gone:
            out.append((r, add, gone))
    return out


def test_changes_are_the_reference(table: ZoneTable, hall: World) -> None:
    rng = np.random.default_rng(9)
    n = 300
    floor, pos = crowd(hall, table, rng, n)
    ids = np.arange(n)
    told = Selection.empty(n)
    talk = rng.random(n) < 0.25
    told_rows = 0
    for _ in range(4):
        pos = np.clip(pos + rng.normal(0, 0.3, pos.shape), 0.5, 49.5)
        key = table.locate(floor, pos)
        talk ^= rng.random(n) < 0.1
        new = audible(
            table,
            Listeners.of(ids, pos, key),
            Speakers.of(ids[talk], pos[talk], key[talk]),
            told.ids,
        )
        got, after = changes(told, new)
        want = reference_changes(told, new)
        assert [(c.row, c.add, c.remove) for c in got] == want
        np.testing.assert_array_equal(after.ids, new.ids)
        told_rows += len(got)
        told = after
    assert told_rows > 100


def test_a_crowd_of_2000_is_the_plain_selection(hall: World, table: ZoneTable) -> None:
    """The size of ``bench.voice`` (2,000 avatars, 15 % talking, a few megaphones, every zone
    kind, equal gains): ``audible`` keeps exactly what the plain numpy selection keeps, update
    after update with the hysteresis, the rule ids and the gains bit for bit; and ``gains`` is
    the plain numpy gains, bit for bit."""
    rng = np.random.default_rng(11)
    n = 2000
    floor, pos = crowd(hall, table, rng, n)
    talk = rng.random(n) < 0.15
    mega = rng.random(n) < 0.005
    ids = np.arange(n)
    prev: np.ndarray | None = None
    kept = 0
    for _ in range(3):
        pos = np.clip(pos + rng.normal(0, 0.3, pos.shape), 0.5, 79.5)
        pos[:, 1] = np.clip(pos[:, 1], 0.5, 49.5)
        talk ^= rng.random(n) < 0.03
        key = table.locate(floor, pos)
        lis = Listeners.of(ids, pos, key)
        spk = Speakers.of(ids[talk], pos[talk], key[talk], mega[talk])
        fast = audible(table, lis, spk, prev)
        g = plain_gains(table, lis, spk)
        np.testing.assert_array_equal(gains(table, lis, spk).view(np.int32), g.view(np.int32))
        assert_same(fast, plain_select(g, spk.ids, prev))
        assert_same(select(g, spk.ids, prev), fast)
        if prev is not None:
            kept += int(
                ((fast.ids[:, :, None] == prev[:, None, :]) & (fast.ids[:, :, None] >= 0)).sum()
            )
        prev = fast.ids
    assert (fast.ids >= 0).sum(axis=1).mean() > 4  # most people hear several voices
    assert kept > 5000  # and keep most of them from one update to the next


def shaped_crowd(hall: World, rng: np.random.Generator, n: int, shape: str) -> tuple:
    """``n`` people on both floors in one of several shapes: spread evenly, in a few tight
    clusters, packed into a 10 m square, half of them in the booths, tables, stage, auditorium
    and quiet corner, or only a few; some exactly 1 m from another (equal gains)."""
    floor = rng.integers(0, 2, n)
    pos = np.stack([rng.uniform(0.5, 79.5, n), rng.uniform(0.5, 49.5, n)], 1)
    if shape == "clusters":
        centres = rng.uniform((5, 5), (75, 45), (6, 2))
        pos = centres[rng.integers(0, 6, n)] + rng.normal(0, 2.5, (n, 2))
    elif shape == "packed":
        pos = rng.uniform((20, 10), (30, 20), (n, 2))
    elif shape == "zones":
        zones = [z for z in hall.zones if z.audio != "open"]
        for i in range(0, n, 2):
            z = zones[rng.integers(len(zones))]
            poly = np.asarray(z.polygon)
            floor[i] = z.floor
            pos[i] = rng.uniform(poly.min(axis=0) + 0.3, poly.max(axis=0) - 0.3)
    pos[1::17] = pos[0:-1:17][: len(pos[1::17])] + (1.0, 0.0)
    floor[1::17] = floor[0:-1:17][: len(floor[1::17])]
    return floor, pos


@pytest.mark.parametrize(
    ("shape", "n", "talking", "seed"),
    [
        ("even", 2000, 0.15, 1),
        ("even", 4000, 0.15, 2),
        ("even", 1200, 0.4, 3),
        ("clusters", 2000, 0.15, 4),
        ("packed", 1500, 0.3, 5),
        ("zones", 1600, 0.3, 6),
        ("zones", 800, 0.15, 7),
        ("even", 300, 0.15, 8),
    ],
)
def test_the_cells_keep_what_the_whole_rows_keep(
    hall: World, table: ZoneTable, shape: str, n: int, talking: float, seed: int
) -> None:
    """Scoring each listener against its members, the broadcast speakers and the speakers in
    the cells around it ring after ring (``audible``) keeps exactly what the plain numpy
    selection over every pair keeps, ids and gains bit for bit, update after update with the
    hysteresis, in every crowd shape (watch-only viewers too); and in the crowds of a hall it
    scores a small share of the pairs."""
    from world.audibility import _audible

    rng = np.random.default_rng(seed)
    floor, pos = shaped_crowd(hall, rng, n, shape)
    talk = rng.random(n) < talking
    mega = rng.random(n) < 0.002
    remote = 5
    ids = np.arange(n + remote)
    prev: np.ndarray | None = None
    for _ in range(4):
        pos = pos + rng.normal(0, 0.3, pos.shape)
        talk ^= rng.random(n) < 0.03
        key = table.locate(floor, pos)
        lkey = np.concatenate([key, np.full(remote, table.remote, np.int32)])
        lis = Listeners.of(ids, np.concatenate([pos, np.zeros((remote, 2))]), lkey)
        spk = Speakers.of(ids[:n][talk], pos[talk], key[talk], mega[talk])
        fast, pairs = _audible(table, lis, spk, prev, 8)
        assert_same(fast, plain_select(plain_gains(table, lis, spk), spk.ids, prev))
        prev = fast.ids
    if shape in ("even", "clusters", "zones") and n >= 1000:
        assert pairs < 0.2 * len(lis.ids) * len(spk.ids)


@pytest.mark.parametrize("model", ["linear", "exponential"])
def test_the_cells_keep_the_same_with_the_other_distance_models(
    hall: World, table: ZoneTable, model: str
) -> None:
    """The bound on the speakers left out holds for every Web Audio model: with linear or
    exponential profiles in half the places, ``audible`` keeps what ``select(gains(...))``
    keeps over every pair, ids and gains bit for bit. Linear gains are numpy's bits too; the
    exponential ones are ``powf``'s, which may be a last bit away from numpy's SIMD ``power``
    (and numpy's by a scalar -1 is a reciprocal): within 1e-6, and the same people kept."""
    import dataclasses

    from world.model import AudioProfile

    profiles = tuple(
        AudioProfile(model, p.ref_distance, p.max_distance, min(p.rolloff, 1.0)) if i % 2 == 0
        else p
        for i, p in enumerate(table.profiles)
    )  # fmt: skip
    other = dataclasses.replace(table, profiles=profiles)
    rng = np.random.default_rng(12)
    n = 2000
    floor, pos = shaped_crowd(hall, rng, n, "even")
    talk = rng.random(n) < 0.15
    ids = np.arange(n)
    prev: np.ndarray | None = None
    for _ in range(3):
        pos = pos + rng.normal(0, 0.3, pos.shape)
        key = other.locate(floor, pos)
        lis = Listeners.of(ids, pos, key)
        spk = Speakers.of(ids[talk], pos[talk], key[talk])
        fast = audible(other, lis, spk, prev)
        assert_same(fast, select(gains(other, lis, spk), spk.ids, prev))
        plain = plain_select(plain_gains(other, lis, spk), spk.ids, prev)
        if model == "linear":
            assert_same(fast, plain)
        else:
            np.testing.assert_array_equal(fast.ids, plain.ids)
            np.testing.assert_allclose(fast.gains, plain.gains, rtol=1e-6)
        assert (fast.ids >= 0).sum() > n * 3
        prev = fast.ids
