"""Audibility: zone rules for every pair, the Web Audio distance formulas, top-K with hysteresis."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from world import load_world
from world.audibility import (
    DISTANCE,
    ENTER_DB,
    LEAVE_DB,
    MEGAPHONE_GAIN,
    NONE,
    PA,
    PA_GAIN,
    Listeners,
    Selection,
    Speakers,
    ZoneTable,
    audible,
    changes,
    gains,
    select,
    source_gains,
)
from world.model import AudioProfile, World

ROOT = Path(__file__).resolve().parents[2]

# A spot in each kind of place of the Machida hall: (floor, x, z)
SPOTS = {
    "lobby": (0, 30.0, 25.0),  # open, 1F
    "booth1": (0, 75.0, 3.0),  # isolated
    "booth2": (0, 75.0, 9.0),  # isolated, next door
    "quiet": (0, 70.0, 43.0),
    "stage": (1, 20.0, 3.0),
    "auditorium": (1, 20.0, 20.0),
    "recruit": (1, 60.0, 24.0),  # open, 2F
    "table1": (1, 51.0, 7.0),  # isolated, inside the recruiting hall
    "corridor2": (1, 20.0, 40.0),  # open, 2F
}

D, P, _ = DISTANCE, PA, NONE
# rows: the speaker's place; columns: the listener's, in this order
COLUMNS = ["lobby", "booth1", "booth2", "quiet", "stage", "auditorium", "recruit", "table1",
           "corridor2", "floor1", "remote"]  # fmt: skip
RULES = {
    #              lob b1 b2 qu st au re t1 c2 f1 rem
    "lobby":      [D, _, _, _, _, _, _, _, _, D, _],
    "booth1":     [_, D, _, _, _, _, _, _, _, _, _],
    "booth2":     [_, _, D, _, _, _, _, _, _, _, _],
    "quiet":      [_, _, _, _, _, _, _, _, _, _, _],
    "stage":      [_, _, _, _, D, P, D, _, D, _, P],
    "auditorium": [_, _, _, _, D, D, D, _, D, _, _],
    "recruit":    [_, _, _, _, D, D, D, _, D, _, _],
    "table1":     [_, _, _, _, _, _, _, D, _, _, _],
    "corridor2":  [_, _, _, _, D, D, D, _, D, _, _],
    "floor1":     [D, _, _, _, _, _, _, _, _, D, _],
}  # fmt: skip


@pytest.fixture(scope="module")
def hall() -> World:
    return load_world(ROOT / "worlds" / "machida-city-hall")


@pytest.fixture(scope="module")
def table(hall: World) -> ZoneTable:
    return ZoneTable.from_world(hall)


def key_of(hall: World, table: ZoneTable, place: str) -> int:
    if place == "remote":
        return table.remote
    if place == "floor1":
        return int(table.key_of_floor[0])
    f, x, z = SPOTS[place]
    zone = hall.zone_at(f, x, z)
    assert zone is not None
    return int(table.key_of_zone[zone.index])


def test_the_rule_of_every_pair_of_places(hall: World, table: ZoneTable) -> None:
    got = {
        s: [table.rule_of(key_of(hall, table, s), key_of(hall, table, li)) for li in COLUMNS]
        for s in RULES
    }
    assert got == RULES


def test_remote_speakers_do_not_exist_and_quiet_listeners_hear_nothing(
    hall: World, table: ZoneTable
) -> None:
    quiet = key_of(hall, table, "quiet")
    assert not table.rule[quiet].any()  # a quiet listener hears no one
    assert not table.rule[:, quiet].any()  # a quiet speaker reaches no one
    assert not table.rule[:, table.remote].any()


def _webaudio(model: str, d: float, ref: float, mx: float, r: float) -> float:
    """The formulas of the Web Audio spec (PannerNode, distance models), written out again."""
    if model == "linear":
        return 1 - r * (max(min(d, mx), ref) - ref) / (mx - ref)
    if model == "exponential":
        return (max(d, ref) / ref) ** -r
    return ref / (ref + r * (max(d, ref) - ref))


@pytest.mark.parametrize(
    "profile",
    [
        AudioProfile("inverse", 2.0, 25.0, 1.0),
        AudioProfile("inverse", 1.5, 12.0, 1.2),
        AudioProfile("linear", 1.0, 20.0, 0.8),
        AudioProfile("exponential", 2.0, 25.0, 1.5),
    ],
    ids=lambda p: f"{p.model}-{p.ref_distance}-{p.rolloff}",
)
def test_distance_gain_is_the_web_audio_formula_and_zero_past_max(
    hall: World, table: ZoneTable, profile: AudioProfile
) -> None:
    lobby = key_of(hall, table, "lobby")
    t = dataclasses.replace(
        table, profiles=tuple(profile if i == lobby else p for i, p in enumerate(table.profiles))
    )
    distances = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 11.9, 12.1, 19.0, 24.9, 25.1, 40.0]
    listeners = Listeners.of(
        range(1, len(distances) + 1), [(5.0 + d, 25.0) for d in distances], [lobby] * len(distances)
    )
    speaker = Speakers.of([0], [(5.0, 25.0)], [lobby])
    got = gains(t, listeners, speaker)[:, 0]
    want = [
        _webaudio(profile.model, d, profile.ref_distance, profile.max_distance, profile.rolloff)
        if d <= profile.max_distance
        else 0.0
        for d in distances
    ]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def _at(hall: World, table: ZoneTable, places: list[str]) -> tuple[np.ndarray, np.ndarray]:
    pos = np.array([SPOTS[p][1:] for p in places], np.float32)
    floor = np.array([SPOTS[p][0] for p in places])
    return pos, table.key(floor, hall.zone_indices(floor, pos))


def test_stage_reaches_the_far_auditorium_at_the_pa_gain_and_nearby_people_by_distance(
    hall: World, table: ZoneTable
) -> None:
    places = ["stage", "auditorium", "recruit", "table1", "lobby"]
    pos, key = _at(hall, table, places)
    pos[1] = (20.0, 25.5)  # the back row: 22.5 m from the speaker, past the stage profile's 20 m
    key = key.copy()
    listeners = Listeners.of([10, 11, 12, 13, 14], pos, key)
    stage_speaker = Speakers.of([0], [(20.0, 3.0)], [key[0]])
    g = gains(table, listeners, stage_speaker)[:, 0]
    stage_profile = table.profiles[key[0]]
    assert g[1] == pytest.approx(PA_GAIN)  # the far auditorium: the PA
    d_recruit = float(np.hypot(60.0 - 20.0, 24.0 - 3.0))  # 45 m: out of earshot
    assert d_recruit > stage_profile.max_distance and g[2] == 0.0
    assert g[3] == 0.0  # a table is isolated
    assert g[4] == 0.0  # another floor
    near = Listeners.of([10], [(23.0, 3.0)], [key[0]])  # 3 m away on the stage itself
    assert gains(table, near, stage_speaker)[0, 0] == pytest.approx(
        float(stage_profile.gain(3.0)), rel=1e-6
    )
    # a watch-only viewer of the briefing hears the stage at the PA gain, nothing else
    remote = Listeners.of([99], [(0.0, 0.0)], [table.remote])
    auditorium_speaker = Speakers.of([1, 2], [(20.0, 3.0), (20.0, 20.0)], [key[0], key[1]])
    got = dict(
        zip(
            auditorium_speaker.ids.tolist(),
            gains(table, remote, auditorium_speaker)[0],
            strict=True,
        )
    )
    assert got == {1: pytest.approx(PA_GAIN), 2: 0.0}


# the Machida stage's first speaker spot, where the first presenter's narration comes from
NARRATOR = (1, 14.0, 3.5)


def test_the_narration_is_heard_as_a_stage_voice_from_the_presenters_spot(
    hall: World, table: ZoneTable
) -> None:
    """The narration's gain at each listener (the server tells it; the page plays the asset):
    the PA gain across the auditorium, by distance on the stage and near it, 0 in a booth, at a
    table, in a quiet zone and on another floor; a watch-only viewer at the PA gain."""
    f, x, z = NARRATOR
    src = int(table.locate(np.array([f]), np.array([[x, z]], np.float32))[0])
    assert table.profiles[src] == hall.zone("zone-committee-stage").profile  # type: ignore[union-attr]
    stage = table.profiles[src]
    places = {  # (floor, x, z), the gain expected
        "far auditorium corner": ((1, 2.0, 24.0), PA_GAIN),  # 23.8 m: past the voice's 20 m
        "auditorium front row": ((1, 14.0, 6.5), float(stage.gain(3.0))),  # 3 m: louder than PA
        "on the stage, 3 m": ((1, 17.0, 3.5), float(stage.gain(3.0))),
        "recruiting hall, 33 m": ((1, 47.0, 3.5), 0.0),  # open, out of earshot
        "table 1": (SPOTS["table1"], 0.0),
        "booth 1": (SPOTS["booth1"], 0.0),
        "quiet corner": (SPOTS["quiet"], 0.0),
        "lobby, downstairs": (SPOTS["lobby"], 0.0),
    }
    floor = np.array([p[0][0] for p in places.values()])
    pos = np.array([p[0][1:] for p in places.values()], np.float32)
    key = np.append(table.locate(floor, pos), table.remote)
    pos = np.vstack([pos, [[0.0, 0.0]]])
    got = source_gains(table, Listeners.of(range(len(key)), pos, key), src, (x, z))
    want = [g for _, g in places.values()] + [PA_GAIN]
    assert dict(zip([*places, "watch-only"], got.tolist(), strict=True)) == {
        k: pytest.approx(w, rel=1e-6) for k, w in zip([*places, "watch-only"], want, strict=True)
    }
    # from the last spot (26, 3.5), the open floor past the auditorium (in no zone) 16 m away
    open_floor = table.locate(np.array([1]), np.array([(42.0, 3.5)], np.float32))
    assert open_floor[0] == table.key_of_floor[1]
    last = source_gains(table, Listeners.of([0], [(42.0, 3.5)], open_floor), src, (26.0, 3.5))
    assert last[0] == pytest.approx(float(stage.gain(16.0)), rel=1e-6) and last[0] > 0.1
    # the same numbers as a live voice talking from that spot, for anyone the voice reaches
    voice = gains(
        table, Listeners.of(range(len(key)), pos, key), Speakers.of([99], [(x, z)], [src])
    )
    heard = voice[:, 0] > 10 ** (ENTER_DB / 20)
    np.testing.assert_array_equal(got[heard], voice[heard, 0])


def test_the_narrations_gain_has_a_voices_enter_and_leave_thresholds(
    hall: World, table: ZoneTable
) -> None:
    """Between −46 and −40 dB the narration stays as told: heard if it was, silent if not."""
    lobby = int(table.key(np.array([0]), np.array([-1]))[0])  # the open ground floor
    t = dataclasses.replace(  # a long reach, so that the gain falls below −40 dB in range
        table,
        profiles=tuple(
            AudioProfile("inverse", 1.0, 500.0, 1.0) if i == lobby else p
            for i, p in enumerate(table.profiles)
        ),
    )
    # inverse, ref 1: gain 1/d; −43 dB at d = 141 m, −50 dB at 316 m
    d = np.array([10.0, 141.0, 316.0], np.float32)
    lis = Listeners.of([1, 2, 3], np.stack([d, np.zeros(3, np.float32)], 1), [lobby] * 3)
    fresh = source_gains(t, lis, lobby, (0.0, 0.0))
    assert fresh[0] == pytest.approx(0.1) and fresh[1] == 0.0 and fresh[2] == 0.0
    kept = source_gains(t, lis, lobby, (0.0, 0.0), told=np.array([0.1, 0.01, 0.01], np.float32))
    assert kept[1] == pytest.approx(1 / 141, rel=1e-5)  # above −46 dB: still heard
    assert kept[2] == 0.0  # below −46 dB: gone
    assert 20 * np.log10(kept[1]) > LEAVE_DB
    unknown = source_gains(t, lis, lobby, (0.0, 0.0), told=np.full(3, np.nan, np.float32))
    np.testing.assert_array_equal(unknown, fresh)


def test_a_booth_has_no_path_out(hall: World, table: ZoneTable) -> None:
    """Someone talking in booth 1 reaches its members only, however near anyone else stands."""
    booth = hall.zone("zone-booth-1")
    assert booth is not None
    b = int(table.key_of_zone[booth.index])
    inside = [(72.0, 2.0), (78.0, 5.0)]
    # just past each wall: the corridor (x < 70), booth 2 (z > 6); and far ones everywhere
    rng = np.random.default_rng(3)
    far = rng.uniform((0, 0), (80, 50), (300, 2))
    outside = [(69.9, 3.0), (75.0, 6.1)] + [
        (x, z) for x, z in far.tolist() if not booth.contains(x, z)
    ]
    floors = np.array([0] * (len(inside) + len(outside)) + [1] * len(outside))
    pos = np.array(inside + outside + outside, np.float32)
    key = table.key(floors, hall.zone_indices(floors, pos))
    key[: len(inside)] = b
    n = len(pos)
    listeners = Listeners.of(np.arange(1, n + 1), pos, key)
    talker = Speakers.of([0], [(75.0, 3.0)], [b])
    g = gains(table, listeners, talker)[:, 0]
    assert (g[: len(inside)] > 0).all()
    assert (g[len(inside) :] == 0).all()
    sel = audible(table, listeners, talker)
    assert set(np.flatnonzero((sel.ids == 0).any(axis=1)).tolist()) == {0, 1}


def test_quiet_carries_nothing_in_or_out(hall: World, table: ZoneTable) -> None:
    pos, key = _at(hall, table, ["quiet", "quiet", "lobby"])
    pos[2] = (59.0, 43.0)  # 1 m outside the quiet corner
    listeners = Listeners.of([1, 2, 3], pos, key)
    speakers = Speakers.of([1, 2, 3], pos, key)
    g = gains(table, listeners, speakers)
    assert (g == 0).all()


def test_the_megaphone_reaches_the_whole_instance_but_not_from_a_quiet_corner(
    hall: World, table: ZoneTable
) -> None:
    places = list(SPOTS)
    pos, key = _at(hall, table, places)
    listeners = Listeners.of(np.arange(1, len(places) + 1), pos, key)
    host = Speakers.of([0], [(30.0, 25.0)], [key[0]], megaphone=[True])
    assert (gains(table, listeners, host)[:, 0] == MEGAPHONE_GAIN).all()
    sel = audible(table, listeners, host)
    assert (sel.ids[:, 0] == 0).all()  # every floor, every booth, the quiet corner too
    quiet_host = Speakers.of([0], [SPOTS["quiet"][1:]], [key[places.index("quiet")]], [True])
    assert (gains(table, listeners, quiet_host) == 0).all()
    remote = Listeners.of([99], [(0.0, 0.0)], [table.remote])
    assert gains(table, remote, host)[0, 0] == 0.0  # the hall's megaphone, not the briefing's


def test_nobody_hears_themselves(hall: World, table: ZoneTable) -> None:
    pos, key = _at(hall, table, ["lobby", "lobby"])
    pos[1] = (31.0, 25.0)
    g = gains(table, Listeners.of([4, 5], pos, key), Speakers.of([4, 5], pos, key, [True, False]))
    assert g[0, 0] == 0 and g[1, 1] == 0 and g[0, 1] > 0 and g[1, 0] == MEGAPHONE_GAIN


# ---- top-K with hysteresis, on tables of gains ----

DB = {x: 10 ** (x / 20) for x in range(-60, 1)}


def g_of(*dbs: float | None) -> np.ndarray:
    return np.array([[0.0 if d is None else 10 ** (d / 20) for d in dbs]], np.float32)


@pytest.mark.parametrize(
    ("row", "prev", "k", "want"),
    [
        # enter above -40 dB only
        ([-39, -41, -45, None], None, 8, [10]),
        # a member stays down to -46 dB, leaves below
        ([-45, -45, -47, None], [10, 12], 8, [10]),
        ([-47, -30, None, None], [10], 8, [11]),
        # the K loudest, members first within 6 dB
        ([-10, -20, -30, -5], None, 2, [10, 13]),
        ([-10, -14, -30, -12], [11, 12], 2, [10, 11]),  # 11 ranks at -8; 10 beats 13 and 12
        ([-10, -14, -30, -5], [11, 12], 2, [11, 13]),  # 11 (-8) keeps its place; 13 takes 10's
        ([-10, -21, -30, -12], [11], 2, [10, 13]),  # 11 is 9 dB down: displaced
        ([-10, -16, -30, -12], [11, 12], 2, [10, 11]),  # -16+6 = -10 ties 10; 12 at -24: out
        # fewer speakers than K
        ([-10, None, None, None], None, 8, [10]),
    ],
)
def test_top_k_with_hysteresis(
    row: list[float | None], prev: list[int] | None, k: int, want: list[int]
) -> None:
    g = g_of(*row)
    ids = np.array([10, 11, 12, 13])
    p = None if prev is None else np.array([prev + [-1] * (8 - len(prev))])
    sel = select(g, ids, p, k=k)
    assert [i for i in sel.ids[0].tolist() if i >= 0] == sorted(want)
    assert sel.ids.shape == (1, k)


def test_a_member_leaves_the_moment_its_gain_is_zero() -> None:
    """No hold time: walking out of a booth (gain 0 from its members) drops them at once."""
    g = g_of(None, -3)
    sel = select(g, np.array([10, 11]), np.array([[10, 11, -1, -1, -1, -1, -1, -1]]))
    assert sel.ids[0].tolist() == [11, -1, -1, -1, -1, -1, -1, -1]


def test_selection_is_a_pure_function(hall: World, table: ZoneTable) -> None:
    rng = np.random.default_rng(11)
    n = 400
    floor = rng.integers(0, 2, n)
    pos = np.stack([rng.uniform(0, 80, n), rng.uniform(0, 50, n)], 1).astype(np.float32)
    key = table.key(floor, hall.zone_indices(floor, pos))
    talk = rng.random(n) < 0.2
    listeners = Listeners.of(np.arange(n), pos, key)
    speakers = Speakers.of(
        np.flatnonzero(talk), pos[talk], key[talk], rng.random(talk.sum()) < 0.02
    )
    prev = audible(table, listeners, speakers).ids
    copies = [a.copy() for a in (listeners.pos, listeners.key, speakers.pos, prev)]
    one = audible(table, listeners, speakers, prev)
    two = audible(table, listeners, speakers, prev)
    assert (one.ids == two.ids).all() and (one.gains == two.gains).all()
    for a, b in zip(copies, (listeners.pos, listeners.key, speakers.pos, prev), strict=True):
        assert (a == b).all()  # nothing was changed in place
    # the per-floor path is the dense one
    dense = select(gains(table, listeners, speakers), speakers.ids, prev)
    assert (dense.ids == one.ids).all()
    np.testing.assert_allclose(dense.gains, one.gains)
    assert ((one.ids >= 0).sum(axis=1) <= 8).all()


def test_changes_tell_new_and_gone_speakers_and_gains_past_one_db() -> None:
    told = Selection(
        np.array([[1, 2, -1], [3, -1, -1], [4, -1, -1]]),
        np.array([[0.5, 0.5, 0], [0.5, 0, 0], [0.5, 0, 0]], np.float32),
    )
    new = Selection(
        np.array([[2, 5, -1], [3, -1, -1], [4, -1, -1]]),
        np.array([[0.52, 0.1, 0], [0.25, 0, 0], [0.53, 0, 0]], np.float32),
    )
    out, after = changes(told, new)
    assert [(c.row, c.add, c.remove) for c in out] == [
        (0, [(5, 0.1)], [1]),  # 2's gain moved 0.3 dB: not told
        (1, [(3, 0.25)], []),  # -6 dB
    ]
    assert after.gains[0].tolist() == pytest.approx([0.5, 0.1, 0])  # 2 keeps the told 0.5
    assert after.gains[2, 0] == pytest.approx(0.5)
    # the drift of row 2 adds up: told once past 1 dB
    out2, _ = changes(
        after,
        Selection(new.ids, np.array([[0.52, 0.1, 0], [0.25, 0, 0], [0.57, 0, 0]], np.float32)),
    )
    assert [(c.row, c.add) for c in out2] == [(2, [(4, 0.57)])]
