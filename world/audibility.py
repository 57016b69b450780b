"""Who hears whom: each listener's audible talking speakers, their gains, and the K kept.

Pure (numpy only). The server calls it at 10 Hz with the positions and zones of an instance; the
result is, for every listener, at most ``k`` speakers with a gain each, which the server turns
into subscriptions (it forwards a speaker's frames only to its subscribers) and the client into
the ``GainNode`` value of that voice.

Gain = zone rule × distance gain:

- the **distance gain** is the Web Audio formula of the *speaker's* zone profile
  (:meth:`world.model.AudioProfile.gain`: inverse, linear or exponential, exactly), and 0 beyond
  the profile's ``max_distance`` or on another floor;
- the **zone rule** depends only on the zone (or open floor) of the speaker and of the listener,
  so it is a small table (:class:`ZoneTable`) computed once per world:

  ================  ================================================================
  speaker in        who hears it
  ================  ================================================================
  open floor, open  listeners on the same floor in open, auditorium or stage zones
  or auditorium     (or in no zone), by distance; never into an isolated or quiet zone
  isolated          only listeners in the same zone, by distance: nothing goes out
  stage             as open, and every listener of its linked auditorium at least at
                    ``pa_gain`` (a PA), and every remote (watch-only) listener at ``pa_gain``
  quiet             nobody; and a listener in a quiet zone hears nobody
  ================  ================================================================

- a speaker with the **megaphone** (the server sets it only for staff) reaches every listener of
  the instance at ``megaphone_gain``, whatever the zones, booths and quiet corners included: an
  announcement is meant for everyone. A speaker in a quiet zone carries nothing, megaphone or not.

Nobody hears themselves. Remote listeners (watch-only viewers of a briefing, who have no avatar)
hear stage speakers at ``pa_gain`` and nothing else.

**Keeping K, with hysteresis in decibels.** A speaker enters a listener's set above ``enter_db``
(−40 dB) and a member leaves below ``leave_db`` (−46 dB); members also rank 6 dB louder than they
are, so two speakers of about the same loudness do not swap places at every update. The set is
chosen by gain alone, never by a hold time: a hold time would keep a listener who walks out of a
booth subscribed to it for that long, and a booth's privacy must end the moment one leaves (a zone
rule of 0 drops a member at once, since 0 is below any threshold).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from world.model import AudioProfile, World

__all__ = [
    "ENTER_DB",
    "LEAVE_DB",
    "RANK_BONUS_DB",
    "PA_GAIN",
    "MEGAPHONE_GAIN",
    "K",
    "NONE",
    "DISTANCE",
    "PA",
    "ZoneTable",
    "Listeners",
    "Speakers",
    "Selection",
    "Change",
    "gains",
    "select",
    "audible",
    "changes",
    "db",
]

ENTER_DB = -40.0
LEAVE_DB = -46.0
RANK_BONUS_DB = 6.0
PA_GAIN = 0.5  # -6 dB: the auditorium hears the stage clearly, but below someone next to them
MEGAPHONE_GAIN = 1.0
K = 8

# zone rules, as in the table of the module docstring
NONE = 0
DISTANCE = 1
PA = 2

_OPENISH = ("open", "auditorium", "stage")


def db(gain: np.ndarray | float) -> np.ndarray:
    """Gain in decibels (−inf for 0)."""
    with np.errstate(divide="ignore"):
        return np.asarray(20.0 * np.log10(np.asarray(gain, dtype=np.float64)))


def _gain_of_db(value: float) -> float:
    return float(10.0 ** (value / 20.0))


@dataclass(frozen=True, slots=True)
class ZoneTable:
    """The zone rules of a world, by *zone key*.

    A key names where someone stands for audio: a zone, the open floor ``f`` outside every zone,
    or remote (a watch-only viewer, nowhere in the hall; the last key). Keys are numbered floor by
    floor, so that speakers sorted by key are grouped by floor too.

    Attributes:
        rule: int8 ``(keys, keys)``, ``rule[listener_key, speaker_key]``: NONE, DISTANCE or PA.
        profiles: the audio profile of each key (the zone's, or the world default).
        floor: int16, the floor of each key (-1 for remote).
        quiet: bool per key, a quiet zone (carries nothing, megaphone or not).
        key_of_zone: int32, the key of each zone (by ``Zone.index``).
        key_of_floor: int32, the key of each open floor.
        pa_gain: the flat gain of a stage in its auditorium and to remote listeners.
    """

    rule: np.ndarray
    profiles: tuple[AudioProfile, ...]
    floor: np.ndarray
    quiet: np.ndarray
    key_of_zone: np.ndarray
    key_of_floor: np.ndarray
    pa_gain: float = PA_GAIN

    @classmethod
    def from_world(cls, world: World, pa_gain: float = PA_GAIN) -> ZoneTable:
        places: list[tuple[int, str, AudioProfile, int]] = []  # (floor, mode, profile, zone)
        for fl in world.floors:
            places += [
                (fl.index, zn.audio, zn.profile, zn.index)
                for zn in world.zones
                if zn.floor == fl.index
            ]
            places.append((fl.index, "open", world.default_profile, -1))
        places.append((-1, "remote", world.default_profile, -1))
        n = len(places)
        key_of_zone = np.zeros(len(world.zones), np.int32)
        key_of_floor = np.zeros(len(world.floors), np.int32)
        for key, (f, _, _, zi) in enumerate(places):
            if zi >= 0:
                key_of_zone[zi] = key
            elif f >= 0:
                key_of_floor[f] = key
        floor = np.array([p[0] for p in places], np.int16)
        modes = [p[1] for p in places]
        auditorium = {
            int(key_of_zone[zn.index]): int(key_of_zone[linked.index])
            for zn in world.zones
            if zn.auditorium and (linked := world.zone(zn.auditorium)) is not None
        }
        rule = np.zeros((n, n), dtype=np.int8)
        for s in range(n):
            for li in range(n):
                rule[li, s] = _rule(modes[s], modes[li], s, li, floor, auditorium.get(s))
        quiet = np.array([m == "quiet" for m in modes], dtype=bool)
        profiles = tuple(p[2] for p in places)
        return cls(rule, profiles, floor, quiet, key_of_zone, key_of_floor, pa_gain)

    @property
    def remote(self) -> int:
        """The key of a remote (watch-only) listener."""
        return len(self.profiles) - 1

    def key(self, floor: np.ndarray | int, zone: np.ndarray | int) -> np.ndarray:
        """Zone keys from floor indices and zone indices (-1: in no zone), e.g. of
        ``World.zone_indices``."""
        zone = np.asarray(zone)
        by_zone = self.key_of_zone[np.maximum(zone, 0)] if self.key_of_zone.size else 0
        return np.where(zone >= 0, by_zone, self.key_of_floor[np.asarray(floor)]).astype(np.int32)

    def rule_of(self, speaker_key: int, listener_key: int) -> int:
        return int(self.rule[listener_key, speaker_key])


def _rule(
    s_mode: str, l_mode: str, s: int, li: int, floor: np.ndarray, auditorium: int | None
) -> int:
    """The rule for a speaker at key ``s`` and a listener at key ``li`` (see the module table)."""
    if s_mode == "remote" or s_mode == "quiet" or l_mode == "quiet":
        return NONE
    if l_mode == "remote":
        return PA if s_mode == "stage" else NONE
    if s_mode == "stage" and auditorium == li:
        return PA
    if floor[s] != floor[li]:
        return NONE
    if s_mode == "isolated" or l_mode == "isolated":
        return DISTANCE if s == li else NONE
    if s_mode in _OPENISH and l_mode in _OPENISH:
        return DISTANCE
    return NONE


@dataclass(frozen=True, slots=True)
class Listeners:
    """The listeners of one update: ids (avatar slots; remote viewers ids no avatar has),
    ``x, z`` positions and zone keys (``ZoneTable.key``; ``ZoneTable.remote`` for viewers)."""

    ids: np.ndarray
    pos: np.ndarray
    key: np.ndarray

    @classmethod
    def of(cls, ids: object, pos: object, key: object) -> Listeners:
        ids_a = np.asarray(ids, dtype=np.int64).reshape(-1)
        return cls(
            ids_a,
            np.asarray(pos, dtype=np.float32).reshape(len(ids_a), 2),
            np.asarray(key, dtype=np.int32).reshape(-1),
        )

    def take(self, rows: np.ndarray) -> Listeners:
        return Listeners(self.ids[rows], self.pos[rows], self.key[rows])


@dataclass(frozen=True, slots=True)
class Speakers:
    """The talking speakers of one update, sorted by zone key (build with :meth:`of`).

    The columns of :func:`gains` follow this order; ``ids`` says who each column is.
    """

    ids: np.ndarray
    pos: np.ndarray
    key: np.ndarray
    megaphone: np.ndarray

    @classmethod
    def of(cls, ids: object, pos: object, key: object, megaphone: object | None = None) -> Speakers:
        ids_a = np.asarray(ids, dtype=np.int64).reshape(-1)
        n = len(ids_a)
        key_a = np.asarray(key, dtype=np.int32).reshape(-1)
        mega = np.zeros(n, bool) if megaphone is None else np.asarray(megaphone, bool).reshape(-1)
        order = np.lexsort((ids_a, key_a))
        return cls(
            ids_a[order],
            np.asarray(pos, dtype=np.float32).reshape(n, 2)[order],
            key_a[order],
            mega[order],
        )

    def take(self, cols: np.ndarray) -> Speakers:
        return Speakers(self.ids[cols], self.pos[cols], self.key[cols], self.megaphone[cols])


def gains(table: ZoneTable, listeners: Listeners, speakers: Speakers) -> np.ndarray:
    """The gain of every speaker at every listener: float32 ``(listeners, speakers)``.

    Speakers of one zone key share a profile and a column of rules, so the work goes one run of
    equal keys at a time over a contiguous block of columns: distances, the profile's formula,
    the rule.
    """
    n, m = len(listeners.ids), len(speakers.ids)
    out = np.zeros((n, m), dtype=np.float32)
    if n == 0 or m == 0:
        return out
    lx = listeners.pos[:, 0:1]
    lz = listeners.pos[:, 1:2]
    lkey = listeners.key
    remote = lkey == table.remote
    any_remote = bool(remote.any())
    skey = speakers.key
    cuts = np.flatnonzero(np.diff(skey)) + 1
    starts = [0, *cuts.tolist()]
    ends = [*cuts.tolist(), m]
    pa_gain = np.float32(table.pa_gain)
    for a, b in zip(starts, ends, strict=True):
        key = int(skey[a])
        rules = table.rule[lkey, key]
        heard = rules != NONE
        if not heard.any():
            continue
        d = np.subtract(lx, speakers.pos[a:b, 0])
        np.square(d, out=d)
        dz = np.subtract(lz, speakers.pos[a:b, 1])
        np.square(dz, out=dz)
        d += dz
        np.sqrt(d, out=d)
        prof = table.profiles[key]
        g = prof.gain(d)
        g *= d <= prof.max_distance
        if not heard.all():
            g *= heard[:, None]
        pa = rules == PA
        if pa.any():
            g[pa] = np.maximum(g[pa], pa_gain)
            if any_remote:
                g[remote] = pa_gain * heard[remote, None]  # no distance to someone not in the hall
        out[:, a:b] = g
    mega = np.flatnonzero(speakers.megaphone & ~table.quiet[skey])
    if mega.size:
        out[np.ix_(~remote, mega)] = np.float32(MEGAPHONE_GAIN)
    # nobody hears themselves
    top = int(speakers.ids.max()) + 1
    col_of = np.full(top + 1, -1, np.int64)
    col_of[speakers.ids] = np.arange(m)
    mine = col_of[np.clip(listeners.ids, -1, top)]
    rows = np.flatnonzero(mine >= 0)
    out[rows, mine[rows]] = 0.0
    return out


@dataclass(frozen=True, slots=True)
class Selection:
    """Each listener's kept speakers: ``ids`` int64 ``(listeners, k)`` ascending, -1 padded at
    the end; ``gains`` float32 of the same shape (0 where padded)."""

    ids: np.ndarray
    gains: np.ndarray

    @classmethod
    def empty(cls, n: int, k: int = K) -> Selection:
        return cls(np.full((n, k), -1, np.int64), np.zeros((n, k), np.float32))


_COL_BITS = 9  # an int32 sort key holds a score's top 23 bits and a column below 512


def select(
    g: np.ndarray,
    speaker_ids: np.ndarray,
    prev: np.ndarray | None = None,
    k: int = K,
    enter_db: float = ENTER_DB,
    leave_db: float = LEAVE_DB,
    rank_bonus_db: float = RANK_BONUS_DB,
) -> Selection:
    """The K loudest speakers of each listener, with hysteresis against ``prev``.

    Args:
        g: gains ``(listeners, speakers)`` from :func:`gains`.
        speaker_ids: the id of each column.
        prev: the previous ``Selection.ids`` of the same listeners (rows), or None.
        k: at most this many speakers per listener.
        enter_db: a speaker not kept enters above this gain.
        leave_db: a kept speaker leaves below this gain.
        rank_bonus_db: kept speakers rank this much louder than they are.

    Returns:
        A new :class:`Selection`; the arguments are not changed.
    """
    n, m = g.shape
    ids = np.full((n, k), -1, np.int64)
    out_g = np.zeros((n, k), np.float32)
    if n == 0 or m == 0:
        return Selection(ids, out_g)
    speaker_ids = np.asarray(speaker_ids, np.int64)
    score = g * (g > np.float32(_gain_of_db(enter_db)))  # not kept and not loud enough: 0
    if prev is not None and prev.size:
        top = int(max(int(speaker_ids.max()), int(prev.max()))) + 1
        col_of = np.full(top + 1, -1, np.int64)
        col_of[speaker_ids] = np.arange(m)
        cols = col_of[np.where(prev >= 0, prev, top)]
        r, c = np.nonzero(cols >= 0)
        cc = cols[r, c]
        kept = g[r, cc] >= np.float32(_gain_of_db(leave_db))
        r, cc = r[kept], cc[kept]
        score[r, cc] = g[r, cc] * np.float32(_gain_of_db(rank_bonus_db))
    # Sort keys: a non-negative float32's bits sort as its value; the low bits carry the column,
    # so one SIMD sort of integers (faster than argpartition here) gives the loudest per row.
    w = min(k, m)
    if m <= 1 << _COL_BITS:
        keys = (score.view(np.int32) >> _COL_BITS) << _COL_BITS
        keys |= np.arange(m, dtype=np.int32)
        best = np.sort(keys, axis=1)[:, m - w :]
        cols = best & ((1 << _COL_BITS) - 1)
        live = (best >> _COL_BITS) > 0
    else:
        keys64 = score.view(np.int32).astype(np.int64) << 32
        keys64 |= np.arange(m, dtype=np.int64)
        best64 = np.sort(keys64, axis=1)[:, m - w :]
        cols = (best64 & 0xFFFFFFFF).astype(np.int64)
        live = (best64 >> 32) > 0
    sel = np.where(live, speaker_ids[cols], np.iinfo(np.int64).max)
    order = np.argsort(sel, axis=1, kind="stable")
    sel = np.take_along_axis(sel, order, axis=1)
    cols = np.take_along_axis(cols, order, axis=1)
    live = sel != np.iinfo(np.int64).max
    ids[:, :w] = np.where(live, sel, -1)
    out_g[:, :w] = np.where(live, np.take_along_axis(g, cols, axis=1), np.float32(0.0))
    return Selection(ids, out_g)


def audible(
    table: ZoneTable,
    listeners: Listeners,
    speakers: Speakers,
    prev: np.ndarray | None = None,
    k: int = K,
) -> Selection:
    """:func:`gains` then :func:`select`, one floor at a time (the same result, less work).

    Voices do not cross floors except a megaphone's, so each floor's listeners are scored
    against that floor's speakers and the megaphones only, and remote listeners against the
    stage speakers only.
    """
    n = len(listeners.ids)
    ids = np.full((n, k), -1, np.int64)
    out_g = np.zeros((n, k), np.float32)
    if n == 0 or len(speakers.ids) == 0:
        return Selection(ids, out_g)
    lfloor = table.floor[listeners.key]
    sfloor = table.floor[speakers.key]
    mega = np.flatnonzero(speakers.megaphone)
    for f in np.unique(lfloor).tolist():
        rows = np.flatnonzero(lfloor == f)
        if f >= 0:
            lo, hi = np.searchsorted(sfloor, f, "left"), np.searchsorted(sfloor, f, "right")
            cols = np.arange(lo, hi)
            extra = mega[(mega < lo) | (mega >= hi)]
            if extra.size:
                cols = np.concatenate([cols, extra])
        else:
            cols = np.flatnonzero(table.rule[table.remote, speakers.key] != NONE)
        if cols.size == 0:
            continue
        sub = speakers.take(cols)
        sel = select(
            gains(table, listeners.take(rows), sub),
            sub.ids,
            None if prev is None else prev[rows],
            k,
        )
        ids[rows] = sel.ids
        out_g[rows] = sel.gains
    return Selection(ids, out_g)


@dataclass(frozen=True, slots=True)
class Change:
    """What one listener must be told: speakers to add or re-gain, and speakers to drop."""

    row: int
    add: list[tuple[int, float]]
    remove: list[int]


def changes(told: Selection, new: Selection, min_db: float = 1.0) -> tuple[list[Change], Selection]:
    """What to tell each listener: the rows whose set changed, or whose kept gain moved by
    ``min_db`` or more from the gain last told.

    A gain change is told only past ``min_db`` so that walking about does not send an update to
    every listener ten times a second; the client smooths the gain it is given.

    Returns:
        The changes, and what the listeners know after them (``new``'s ids, with the gains
        told: a gain that moved less than ``min_db`` keeps its older value, so a slow drift is
        told once it adds up).
    """
    live = new.ids >= 0
    match = (new.ids[:, :, None] == told.ids[:, None, :]) & live[:, :, None]
    known = match.any(axis=2)
    before = (match * told.gains[:, None, :]).sum(axis=2, dtype=np.float32)
    with np.errstate(divide="ignore"):
        moved = np.abs(db(np.maximum(new.gains, 1e-9)) - db(np.maximum(before, 1e-9))) >= min_db
    add = live & (~known | moved)
    gone = (told.ids >= 0) & ~match.any(axis=1)
    after = Selection(new.ids.copy(), np.where(add, new.gains, before).astype(np.float32))
    rows = np.flatnonzero(add.any(axis=1) | gone.any(axis=1))
    if rows.size == 0:
        return [], after
    ids_l = new.ids[rows].tolist()
    g_l = np.round(new.gains[rows].astype(np.float64), 4).tolist()
    add_l = add[rows].tolist()
    old_l = told.ids[rows].tolist()
    gone_l = gone[rows].tolist()
    out = [
        Change(
            r,
            [(i, g) for i, g, a in zip(ids, gs, adds, strict=True) if a],
            sorted(i for i, x in zip(olds, gones, strict=True) if x),
        )
        for r, ids, gs, adds, olds, gones in zip(
            rows.tolist(), ids_l, g_l, add_l, old_l, gone_l, strict=True
        )
    ]
    return out, after
