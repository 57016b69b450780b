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
are, so two speakers of about the same loudness do not swap places at every update; of equal
ranks the lower id is kept. The set is chosen by gain alone, never by a hold time: a hold time
would keep a listener who walks out of a booth subscribed to it for that long, and a booth's
privacy must end the moment one leaves (a zone rule of 0 drops a member at once, since 0 is
below any threshold).
"""

from __future__ import annotations

import functools
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
    "ZoneRaster",
    "Listeners",
    "Speakers",
    "Selection",
    "Change",
    "gains",
    "source_gains",
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
    raster: ZoneRaster | None = None

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
        raster = ZoneRaster.of_world(world)
        return cls(rule, profiles, floor, quiet, key_of_zone, key_of_floor, pa_gain, raster)

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

    def locate(self, floor: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """The zone keys of points: ``key(floor, world.zone_indices(floor, pos))``, exactly, but
        from the raster built with the table (a look-up per point; the exact polygon test only
        for points in a cell that a zone's edge crosses)."""
        if self.raster is None:
            raise ValueError("this ZoneTable was built without a world: use key(floor, zones)")
        floor = np.asarray(floor, dtype=np.intp).reshape(-1)
        return self.key(floor, self.raster.zone_indices(floor, pos))


_CELL = 0.25  # metres: the raster's cell; 64,000 cells a floor for the 80 m x 50 m Machida hall


@dataclass(frozen=True, slots=True)
class ZoneRaster:
    """``World.zone_indices`` as a look-up table, with the same answers.

    One int16 raster per floor over the box of all zones (cells of ``cell`` metres): the zone
    index of the cell, -1 for none, or -2 where a zone's edge passes within a cell, so that the
    cell's points may differ. Points in such a cell, and only they, take the exact even-odd test
    (the arithmetic of :func:`world.geometry.points_in_polygon`), vectorised over every edge of
    every zone at once. Points outside the box are in no zone.

    Attributes:
        x0, z0, cell: the raster's corner and cell size.
        grid: int16 ``(floors, rows, cols)``.
        ax, az, bx, bz: float64, every zone edge (from ``a`` to ``b``), zone by zone, zones in
            ``World.zone_indices``' order (largest first: a nested zone wins).
        starts: the first edge of each zone in that order; ``zfloor``, ``zindex``: its floor and
            index.
    """

    x0: float
    z0: float
    cell: float
    grid: np.ndarray
    ax: np.ndarray
    az: np.ndarray
    bx: np.ndarray
    bz: np.ndarray
    starts: np.ndarray
    zfloor: np.ndarray
    zindex: np.ndarray

    @classmethod
    def of_world(cls, world: World, cell: float = _CELL) -> ZoneRaster:
        zones = sorted(world.zones, key=lambda zn: -zn.area)  # as World.zone_indices
        floors = max(len(world.floors), 1)
        if not zones:
            e = np.zeros(0)
            return cls(0.0, 0.0, cell, np.full((floors, 1, 1), -1, np.int16), e, e, e, e,
                       np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0, np.int16))  # fmt: skip
        polys = [np.asarray(zn.polygon, dtype=np.float64).reshape(-1, 2) for zn in zones]
        a = np.concatenate(polys)
        b = np.concatenate([np.roll(p, -1, axis=0) for p in polys])
        starts = np.cumsum([0] + [len(p) for p in polys[:-1]]).astype(np.intp)
        zfloor = np.array([zn.floor for zn in zones], np.intp)
        zindex = np.array([zn.index for zn in zones], np.int16)
        lo = a.min(axis=0) - cell
        hi = a.max(axis=0) + cell
        nx, nz = (np.ceil((hi - lo) / cell).astype(int) + 1).tolist()
        empty = np.full((floors, nz, nx), -1, np.int16)
        r = cls(float(lo[0]), float(lo[1]), cell, empty, a[:, 0].copy(), a[:, 1].copy(),
                b[:, 0].copy(), b[:, 1].copy(), starts, zfloor, zindex)  # fmt: skip
        # each cell's zone at its centre
        cx = r.x0 + (np.arange(nx) + 0.5) * cell
        cz = r.z0 + (np.arange(nz) + 0.5) * cell
        gx, gz = np.meshgrid(cx, cz)
        centres = np.stack([gx.ravel(), gz.ravel()], axis=1)
        grid = np.empty((floors, nz, nx), np.int16)
        for f in range(floors):
            grid[f] = r._exact(np.full(len(centres), f, np.intp), centres).reshape(nz, nx)
        # cells an edge passes through (samples a quarter cell apart), and their neighbours
        for zi in range(len(zones)):
            end = int(starts[zi + 1]) if zi + 1 < len(zones) else len(a)
            for j in range(int(starts[zi]), end):
                steps = int(np.ceil(np.hypot(*(b[j] - a[j])) / (cell / 4))) + 1
                t = np.linspace(0.0, 1.0, steps)[:, None]
                pts = a[j] + t * (b[j] - a[j])
                ix = np.floor((pts[:, 0] - r.x0) / cell).astype(np.intp)
                iz = np.floor((pts[:, 1] - r.z0) / cell).astype(np.intp)
                for dz in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        grid[
                            zfloor[zi], np.clip(iz + dz, 0, nz - 1), np.clip(ix + dx, 0, nx - 1)
                        ] = -2
        return cls(r.x0, r.z0, cell, grid, r.ax, r.az, r.bx, r.bz, starts, zfloor, zindex)

    def zone_indices(self, floor: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """``World.zone_indices(floor, pos)``: int16 zone index per point, -1 for none."""
        floor = np.asarray(floor, dtype=np.intp).reshape(-1)
        p = np.asarray(pos, dtype=np.float64).reshape(-1, 2)
        nf, nz, nx = self.grid.shape
        fx = np.floor((p[:, 0] - self.x0) * (1.0 / self.cell))
        fz = np.floor((p[:, 1] - self.z0) * (1.0 / self.cell))
        ok = (fx >= 0) & (fx < nx) & (fz >= 0) & (fz < nz) & (floor >= 0) & (floor < nf)
        out = np.full(len(floor), -1, np.int16)
        sel = np.flatnonzero(ok)
        flat = (floor[sel] * nz + fz[sel].astype(np.intp)) * nx + fx[sel].astype(np.intp)
        out[sel] = self.grid.reshape(-1)[flat]
        edge = np.flatnonzero(out == -2)
        if edge.size:
            out[edge] = self._exact(floor[edge], p[edge])
        return out

    def _exact(self, floor: np.ndarray, p: np.ndarray) -> np.ndarray:
        """The even-odd test of ``points_in_polygon`` against every zone at once, smallest
        containing zone of the point's floor (the last in area order), or -1."""
        out = np.full(len(floor), -1, np.int16)
        if not self.zindex.size or not len(floor):
            return out
        px = p[:, 0:1]
        pz = p[:, 1:2]
        ax, az, bx, bz = self.ax, self.az, self.bx, self.bz
        straddles = (az > pz) != (bz > pz)
        with np.errstate(divide="ignore", invalid="ignore"):
            cross_x = ax + (pz - az) * (bx - ax) / (bz - az)
        hits = (straddles & (px < cross_x)).view(np.uint8)
        inside = (np.add.reduceat(hits, self.starts, axis=1, dtype=np.int32) & 1).astype(bool)
        inside &= self.zfloor[None, :] == floor[:, None]
        nzones = len(self.zindex)
        last = nzones - 1 - np.argmax(inside[:, ::-1], axis=1)
        has = inside.any(axis=1)
        out[has] = self.zindex[last[has]]
        return out


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


def source_gains(
    table: ZoneTable,
    listeners: Listeners,
    key: int,
    pos: tuple[float, float],
    told: np.ndarray | None = None,
) -> np.ndarray:
    """The gain at every listener of a source that is no avatar's voice: float32 ``(listeners,)``.

    The briefing's synthesized narration is such a source: each page plays it from its asset (the
    server relays nothing), from the presenter's spot on the stage. It is heard as a talking
    speaker at ``pos`` in zone key ``key`` would be, by :func:`gains` (the zone rules, the PA gain
    across the linked auditorium and to remote listeners, the distance gain of the zone's
    profile), and with a kept speaker's thresholds: heard above ``ENTER_DB``, still heard down to
    ``LEAVE_DB`` where ``told`` (the gains last told, NaN for none) was above 0, else 0. It takes
    no place among a listener's K (no frames of it are forwarded), so nothing ranks it.
    """
    n = len(listeners.ids)
    if n == 0:
        return np.zeros(0, np.float32)
    nobody = int(listeners.ids.max()) + 1  # an id no listener has: nobody is this source
    src = Speakers.of([nobody], np.asarray(pos, np.float32).reshape(1, 2), [key])
    g = gains(table, listeners, src)[:, 0]
    heard = g > _ENTER
    if told is not None:
        heard |= (np.asarray(told) > 0) & (g >= _LEAVE)  # NaN > 0 is False
    g *= heard
    return g


@dataclass(frozen=True, slots=True)
class Selection:
    """Each listener's kept speakers: ``ids`` int64 ``(listeners, k)`` ascending, -1 padded at
    the end; ``gains`` float32 of the same shape (0 where padded)."""

    ids: np.ndarray
    gains: np.ndarray

    @classmethod
    def empty(cls, n: int, k: int = K) -> Selection:
        return cls(np.full((n, k), -1, np.int64), np.zeros((n, k), np.float32))


_LOW = np.int64(0xFFFFFFFF)


def _top_k(
    g: np.ndarray,
    score: np.ndarray,
    ids_by_rank: np.ndarray,
    rank: np.ndarray | None,
    k: int,
) -> Selection:
    """The ``k`` best scores of each row (ties: the lower speaker id), as a :class:`Selection`
    ascending by id with the gains ``g`` of those kept; a score of 0 is never kept.

    ``rank`` is each column's place in ascending id order (None: the columns are in id order),
    ``ids_by_rank`` the ids in that order. One int64 key per pair carries the score's bits (a
    non-negative float32's bits sort as its value) over the inverted rank, so that a partition
    of integers finds each row's best and decoding the key gives the column.
    """
    n, m = score.shape
    w = min(k, m)
    keys = score.view(np.int32).astype(np.int64)
    keys <<= 32
    keys |= (m - 1 - (np.arange(m) if rank is None else rank)).astype(np.int64)
    best = np.partition(keys, m - w, axis=1)[:, m - w :] if m > w else keys
    live = best > _LOW  # a score above 0
    ranks = np.where(live, (m - 1) - (best & _LOW), m)
    ranks.sort(axis=1)
    live = ranks < m
    ranks[~live] = 0
    cols = ranks if rank is None else np.argsort(rank)[ranks]
    ids = np.full((n, k), -1, np.int64)
    out_g = np.zeros((n, k), np.float32)
    ids[:, :w] = np.where(live, ids_by_rank[ranks], -1)
    out_g[:, :w] = np.where(live, np.take_along_axis(g, cols, axis=1), np.float32(0.0))
    return Selection(ids, out_g)


def _scores(
    g: np.ndarray,
    col_of: np.ndarray,
    prev: np.ndarray | None,
    enter_db: float,
    leave_db: float,
    rank_bonus_db: float,
) -> np.ndarray:
    """What each pair ranks by: the gain if above ``enter_db``, a kept member's gain (if not
    below ``leave_db``) raised by ``rank_bonus_db``, else 0. ``col_of`` maps ids to columns."""
    score = np.where(g > np.float32(_gain_of_db(enter_db)), g, np.float32(0.0))
    if prev is not None and prev.size:
        top = len(col_of) - 1  # col_of[top] is -1
        cols = col_of[np.clip(prev, -1, top)]  # -1 (padding) maps to col_of[-1] = -1 too
        r, c = np.nonzero(cols >= 0)
        cc = cols[r, c]
        kept = g[r, cc] >= np.float32(_gain_of_db(leave_db))
        r, cc = r[kept], cc[kept]
        score[r, cc] = g[r, cc] * np.float32(_gain_of_db(rank_bonus_db))
    return score


def _col_of(
    speaker_ids: np.ndarray, prev: np.ndarray | None, order: np.ndarray | None
) -> np.ndarray:
    """Column of each id (-1 for an id no column has), indexable by ``-1`` too."""
    top = int(speaker_ids.max()) if speaker_ids.size else 0
    if prev is not None and prev.size:
        top = max(top, int(prev.max()))
    col_of = np.full(top + 2, -1, np.int64)
    col_of[speaker_ids] = np.arange(len(speaker_ids)) if order is None else order
    return col_of


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

    Speakers of equal rank are kept lower id first.

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
    if n == 0 or m == 0:
        return Selection.empty(n, k)
    speaker_ids = np.asarray(speaker_ids, np.int64)
    order = np.argsort(speaker_ids, kind="stable")
    rank = np.empty(m, np.int64)
    rank[order] = np.arange(m)
    score = _scores(g, _col_of(speaker_ids, prev, None), prev, enter_db, leave_db, rank_bonus_db)
    return _top_k(g, score, speaker_ids[order], rank, k)


@dataclass(frozen=True, slots=True)
class _Profiles:
    """The distance-gain parameters of every zone key, as float32 arrays (the Web Audio
    formulas in the float32 arithmetic of :meth:`AudioProfile.gain` on a float32 distance),
    and the distinct profiles (*kinds*) among them, for :func:`_near`'s bound."""

    ref: np.ndarray
    rolloff: np.ndarray
    neg_rolloff: np.ndarray
    max_distance: np.ndarray
    span: np.ndarray  # max_distance - ref_distance, in float64 then float32, as Python does
    model: np.ndarray  # 0 inverse, 1 linear, 2 exponential
    falls: np.ndarray  # bool: the gain never rises with distance (the bound holds)
    kind: np.ndarray  # float32 (keys, kinds): 1 where the key has that profile
    kinds: np.ndarray  # float64 (kinds, 4): model, ref, rolloff, max_distance

    @classmethod
    def of(cls, profiles: tuple[AudioProfile, ...]) -> _Profiles:
        return _profiles_of(profiles)


@functools.lru_cache(maxsize=32)
def _profiles_of(profiles: tuple[AudioProfile, ...]) -> _Profiles:
    f32 = np.float32
    model = np.array([("linear", "exponential").index(p.model) + 1 if p.model in
                      ("linear", "exponential") else 0 for p in profiles], np.int8)  # fmt: skip
    distinct = list(dict.fromkeys(profiles))
    kind = np.zeros((len(profiles), len(distinct)), f32)
    kind[np.arange(len(profiles)), [distinct.index(p) for p in profiles]] = 1.0
    kinds = np.array(  # the parameters as the float32 gains have them
        [(model[profiles.index(p)], *np.array((p.ref_distance, p.rolloff, p.max_distance), f32))
         for p in distinct], np.float64).reshape(-1, 4)  # fmt: skip
    falls = np.array(
        [p.ref_distance > 0 and p.rolloff >= 0 and p.max_distance > p.ref_distance
         for p in profiles], bool)  # fmt: skip
    out = _Profiles(
        np.array([p.ref_distance for p in profiles], f32),
        np.array([p.rolloff for p in profiles], f32),
        np.array([-p.rolloff for p in profiles], f32),
        np.array([p.max_distance for p in profiles], f32),
        np.array([p.max_distance - p.ref_distance for p in profiles], f32),
        model, falls, kind, kinds,
    )  # fmt: skip
    for name in _Profiles.__slots__:
        getattr(out, name).flags.writeable = False  # shared by every update: read only
    return out


def _floor_gains(
    table: ZoneTable, prof: _Profiles, lis: Listeners, spk: Speakers, mega_ok: np.ndarray
) -> np.ndarray:
    """:func:`gains` for listeners on one floor and that floor's speakers (and megaphones), as
    float32 ``(speakers, listeners)``: the same numbers in the same float32 arithmetic, with
    each speaker's profile parameters as a per-row scalar (numpy's fast inner loop) instead of
    one block of columns per zone key, and the rules as 0/1 factors."""
    skey = spk.key
    col = (slice(None), None)
    d = np.subtract(spk.pos[:, 0][col], lis.pos[:, 0])
    np.square(d, out=d)
    dz = np.subtract(spk.pos[:, 1][col], lis.pos[:, 1])
    np.square(dz, out=dz)
    d += dz
    np.sqrt(d, out=d)
    ref = prof.ref[skey][col]
    model = prof.model[skey]
    g = np.maximum(d, ref)  # inverse: ref / (ref + r * (max(d, ref) - ref))
    g -= ref
    g *= prof.rolloff[skey][col]
    g += ref
    np.divide(ref, g, out=g)
    if model.any():
        lin = np.flatnonzero(model == 1)
        if lin.size:
            r, mx, span = (a[skey[lin]][col] for a in (prof.rolloff, prof.max_distance, prof.span))
            dc = np.clip(d[lin], ref[lin], mx)
            g[lin] = 1.0 - r * (dc - ref[lin]) / span
        ex = np.flatnonzero(model == 2)
        if ex.size:
            g[ex] = np.power(np.maximum(d[ex], ref[ex]) / ref[ex], prof.neg_rolloff[skey[ex]][col])
    # out of earshot, or a rule of NONE: a factor 0 (g * 1.0 is g, exactly)
    rules = table.rule.T[:, lis.key]  # (speaker keys, listeners)
    heard = rules[skey] != NONE
    heard &= d <= prof.max_distance[skey][col]
    g *= heard.astype(np.float32)
    if (rules[np.unique(skey)] == PA).any():
        pa = np.where(rules == PA, np.float32(table.pa_gain), np.float32(0.0))
        np.maximum(g, pa[skey], out=g)
    mega = np.flatnonzero(mega_ok)
    if mega.size:
        g[mega] = np.float32(MEGAPHONE_GAIN)
    return g


def _best(g: np.ndarray, score: np.ndarray, ids: np.ndarray, k: int) -> Selection:
    """Each row's ``k`` best scores (ties: the lower id), ascending by id: ``g`` and ``score``
    ``(rows, speakers)``, ``ids`` the id of each column, ascending.

    One SIMD sort of int32 keys: a non-negative float32's bits sort as its value, so a key is
    the score's bits with the low bits replaced by the inverted column (the lower id wins a
    tie). Dropping those low bits can only confuse scores within 2^-14 of each other: a row
    whose k-th and (k+1)-th keys share their score part is redone with exact keys
    (:func:`_top_k`). A score of 0 (or any score's top bits all 0) is never kept.
    """
    n, m = score.shape
    cb = max(1, (m - 1).bit_length())
    if m <= k or cb > 12:
        return _top_k(g, score, ids, None, k)
    keys = score.view(np.int32) >> cb
    keys <<= cb
    keys |= np.arange(m - 1, -1, -1, dtype=np.int32)
    keys.sort(axis=1)
    best = keys[:, m - k :]
    nxt = keys[:, m - k - 1] >> cb
    tie = (nxt > 0) & ((best[:, 0] >> cb) == nxt)
    live = best >= (1 << cb)
    cols = np.where(live, (m - 1) - (best & ((1 << cb) - 1)), m)
    cols.sort(axis=1)
    live = cols < m
    cols[~live] = 0
    ids_out = np.where(live, ids[cols], -1).astype(np.int64)
    g_out = np.where(live, np.take_along_axis(g, cols, axis=1), np.float32(0.0))
    rows = np.flatnonzero(tie)
    if rows.size:
        exact = _top_k(g[rows], score[rows], ids, None, k)
        ids_out[rows] = exact.ids
        g_out[rows] = exact.gains
    return Selection(ids_out, g_out.astype(np.float32))


_ENTER = np.float32(_gain_of_db(ENTER_DB))
_LEAVE = np.float32(_gain_of_db(LEAVE_DB))
_BONUS = np.float32(_gain_of_db(RANK_BONUS_DB))


_SORT_W = 64  # numpy's SIMD sort of a row of 65-128 costs about twice one of 33-64


def _top_keys(keys: np.ndarray, w: int) -> np.ndarray:
    """Each row's ``w`` largest keys, ascending (``keys`` is sorted in place, piece by piece).

    A row's ``w`` largest are among the ``w`` largest of its pieces of ``_SORT_W`` columns, so
    each piece is sorted on its own (a short row is where numpy's SIMD sort is cheapest) and
    only those few kept of each are sorted again: the same keys as a sort of the whole row."""
    m = keys.shape[1]
    if m <= _SORT_W:
        keys.sort(axis=1)
        return keys[:, m - w :]
    tops = []
    for a in range(0, m, _SORT_W):
        piece = keys[:, a : a + _SORT_W]
        piece.sort(axis=1)
        tops.append(piece[:, max(0, piece.shape[1] - w) :])
    merged = np.concatenate(tops, axis=1)
    merged.sort(axis=1)
    return merged[:, merged.shape[1] - w :]


def _floor_select(
    table: ZoneTable,
    prof: _Profiles,
    lis: Listeners,
    spk: Speakers,
    mega_ok: np.ndarray,
    prev: np.ndarray | None,
    k: int,
    top: int,
) -> Selection:
    """The selection of one floor's listeners among that floor's speakers (``spk``, by id):
    the gains of :func:`_floor_gains` (the same float32 operations, so the same bits), nobody
    hearing themselves, the hysteresis against ``prev``, and :func:`_best`'s sort, in one
    ``(listeners, speakers)`` matrix built the way numpy runs fastest here: listeners' values
    as columns, speakers' as rows (vector loops over the speakers), each pass in place, rules
    and ranges as row copies from small tables, and the sort keys straight from the scores
    (no transposed copy)."""
    m = len(spk.ids)
    cb = max(1, (m - 1).bit_length())
    if m <= k or cb > 12:
        g = np.ascontiguousarray(_floor_gains(table, prof, lis, spk, mega_ok).T)
        return _choose(g, lis, spk, prev, k, top)
    f32 = np.float32
    skey = spk.key
    row = (None, slice(None))
    n = len(lis.ids)
    # contiguous operands: a strided row costs half as much again per outer difference
    sx, sz = np.ascontiguousarray(spk.pos.T)
    lx, lz = np.ascontiguousarray(lis.pos.T)
    d = np.subtract(sx[row], lx[:, None])
    np.square(d, out=d)
    g = np.subtract(sz[row], lz[:, None])
    np.square(g, out=g)
    d += g
    np.sqrt(d, out=d)
    ref = prof.ref[skey][row]
    rolloff = prof.rolloff[skey]
    np.maximum(d, ref, out=g)  # inverse: ref / (ref + r * (max(d, ref) - ref))
    g -= ref
    if (rolloff != 1.0).any():  # x * 1.0 is x
        g *= rolloff[row]
    g += ref
    np.divide(ref, g, out=g)
    model = prof.model[skey]
    if model.any():
        lin = np.flatnonzero(model == 1)
        if lin.size:
            r, mx, span = (a[skey[lin]][row] for a in (prof.rolloff, prof.max_distance, prof.span))
            dc = np.clip(d[:, lin], ref[:, lin], mx)
            g[:, lin] = 1.0 - r * (dc - ref[:, lin]) / span
        ex = np.flatnonzero(model == 2)
        if ex.size:
            e_ref = ref[:, ex]
            g[:, ex] = np.power(
                np.maximum(d[:, ex], e_ref) / e_ref, prof.neg_rolloff[skey[ex]][row]
            )
    # out of earshot, or a rule of NONE: a factor 0 (g * 1.0 is g, exactly); a pair's reach
    # is the speaker's range where the rule is not NONE, else -1
    present = np.zeros(len(table.profiles), bool)  # np.unique(lis.key) by a table of keys
    present[lis.key] = True
    ukeys = np.flatnonzero(present)
    lcode = (np.cumsum(present) - 1)[lis.key]
    rules = table.rule[ukeys][:, skey]  # (listener keys here, speakers)
    reach = np.where(rules != NONE, prof.max_distance[skey][row], f32(-1.0))
    mask = np.less_equal(d, np.take(reach, lcode, axis=0))
    np.multiply(g, mask, out=g)
    is_pa = rules == PA
    if is_pa.any():  # only the block of listeners and speakers that a PA rule joins
        pa_rows = np.flatnonzero(is_pa.any(axis=1)[lcode])
        pa_cols = np.flatnonzero(is_pa.any(axis=0))
        block = np.ix_(pa_rows, pa_cols)
        pa = np.where(is_pa[np.ix_(lcode[pa_rows], pa_cols)], f32(table.pa_gain), f32(0.0))
        g[block] = np.maximum(g[block], pa)
    mega = np.flatnonzero(mega_ok)
    if mega.size:
        g[:, mega] = f32(MEGAPHONE_GAIN)
    # nobody hears themselves
    col_of = np.full(top + 2, -1, np.int64)
    col_of[spk.ids] = np.arange(m)
    mine = col_of[np.clip(lis.ids, -1, top + 1)]
    r = np.flatnonzero(mine >= 0)
    g_flat = g.reshape(-1)  # g and d are contiguous: pairs by flat index, row * m + column
    g_flat[r * m + mine[r]] = 0.0
    # the scores: the gain above ENTER_DB; a kept member's, not below LEAVE_DB, 6 dB up
    score = d
    np.greater(g, _ENTER, out=mask)
    np.multiply(g, mask, out=score)
    if prev is not None and prev.size:
        pc = col_of[prev]  # -1 (padding) maps to col_of[-1], which is -1
        flat = (pc + (np.arange(n, dtype=np.int64) * m)[:, None])[pc >= 0]
        gk = g_flat[flat]
        kept = gk >= _LEAVE
        score.reshape(-1)[flat[kept]] = gk[kept] * _BONUS
    # int32 keys: the score's top bits over the inverted column (see _best)
    low = np.int32((1 << cb) - 1)
    keys = score.view(np.int32)
    keys &= ~low
    keys |= np.arange(m - 1, -1, -1, dtype=np.int32)
    top_keys = _top_keys(keys, k + 1)
    best = top_keys[:, 1:]
    nxt = top_keys[:, 0] >> cb
    tie = (nxt > 0) & ((best[:, 0] >> cb) == nxt)
    cols = np.where(best > low, (m - 1) - (best & low), m)  # m: nobody (a sentinel column)
    cols.sort(axis=1)
    ids_out = np.append(spk.ids, -1)[cols]
    at = np.minimum(cols, m - 1)
    at += (np.arange(n, dtype=np.int32) * m)[:, None]
    g_out = g_flat[at]
    g_out[cols == m] = 0.0
    rows = np.flatnonzero(tie)
    if rows.size:  # the scores were sorted away: those rows again, with exact keys
        sub = Listeners(lis.ids[rows], lis.pos[rows], lis.key[rows])
        ga = np.ascontiguousarray(_floor_gains(table, prof, sub, spk, mega_ok).T)
        exact = _choose_exact(ga, sub, spk, None if prev is None else prev[rows], k, top)
        ids_out[rows] = exact.ids
        g_out[rows] = exact.gains
    return Selection(ids_out, g_out)


_BLOCK = 2  # a listener's candidates: the speakers of the (2 * _BLOCK + 1)^2 cells around its own
_NEAR = 2.5  # cells sized so that a disc of a block's least margin holds about _NEAR * k speakers
_MAX_CELLS = 64  # cells a side of a floor at most
_MAX_PLACES = 1 << 20  # entries of the table of candidates' places, 4 MB (else whole rows)


def _bound_keys(prof: _Profiles, can: np.ndarray, margin: np.ndarray, low: np.int32) -> np.ndarray:
    """The sort key that a speaker at least ``margin`` away (per row) can at most reach: the
    loudest gain at that distance among the kinds of profile that row can hear (``can``, rows
    by kinds; every gain falls with distance), a little up for the float32 rounding of the
    gains and distances, with every low bit set; -1 when nobody that far can enter."""
    dm = (margin * (1.0 - 1e-5) - 1e-6)[:, None]  # below any float32 distance that far
    pmodel, pr, rr, pm = prof.kinds.T
    dmc = np.minimum(dm, pm)  # past the reach the bound is 0 below
    bound = pr / (pr + rr * (np.maximum(dmc, pr) - pr))
    if pmodel.any():
        lin = 1.0 - rr * (np.clip(dmc, pr, pm) - pr) / (pm - pr)
        expo = np.power(np.maximum(dmc, pr) / pr, -rr)
        bound = np.where(pmodel == 1, lin, np.where(pmodel == 2, expo, bound))
    bound = np.where(can & (dm <= pm), bound * (1.0 + 1e-5) + 1e-6, 0.0).max(axis=1)
    keys = np.nextafter(bound.astype(np.float32), np.float32(np.inf)).view(np.int32) | low
    keys[bound <= float(_ENTER)] = -1
    return keys


def _near(
    table: ZoneTable,
    prof: _Profiles,
    lis: Listeners,
    spk: Speakers,
    mega_ok: np.ndarray,
    prev: np.ndarray | None,
    k: int,
    top: int,
) -> tuple[Selection, np.ndarray] | None:
    """The selection of listeners in the hall (on floors) from the pairs that can matter only.

    The speakers heard by distance are put in square cells, floor beside floor, and each
    listener is scored against the speakers of the 5 x 5 cells around its own and every
    broadcast speaker (a megaphone, a stage with a PA): one ``(listeners, candidates)`` matrix
    taken row by row from tables per cell and zone key. A speaker left out is at least the
    block's margin away, so it scores at most the loudest gain at that distance of the
    profiles this listener hears by distance (every gain falls with distance). A listener
    whose k-th best candidate scores above that bound, and who kept nobody left out, has
    exactly the selection of its whole row. The gains of the pairs scored are the float32
    operations of :func:`_floor_select` on the same numbers, so the same bits.

    Returns:
        The selection, and the rows to redo with whole rows (a sparse corner, equal scores at
        the cut, a member left out); None when the cells would not help (few speakers, or
        gains that do not fall with distance): every row then.
    """
    n, m = len(lis.ids), len(spk.ids)
    if m <= k or m > 4096:
        return None
    f32, f64 = np.float32, np.float64
    skey = spk.key
    present = np.zeros(len(table.profiles), bool)
    present[lis.key] = True
    ukeys = np.flatnonzero(present)
    lcode = (np.cumsum(present) - 1)[lis.key]
    # the rules of the listeners' keys, within a floor only, as the floors' blocks of audible
    krule = np.where(table.floor[ukeys][:, None] == table.floor, table.rule[ukeys], NONE)
    rules = np.empty((len(ukeys), m + 1), np.int8)  # column m: nobody
    np.take(krule, skey, axis=1, out=rules[:, :m])
    rules[:, m] = NONE
    is_pa = rules[:, :m] == PA
    bcast = mega_ok | is_pa.any(axis=0)
    gcols = np.flatnonzero((rules[:, :m] != NONE).any(axis=0) & ~bcast)  # heard by distance
    bcols = np.flatnonzero(bcast)
    ng, nb = len(gcols), len(bcols)
    gkey = skey[gcols]
    if ng == 0 or not prof.falls[gkey].all():
        return None
    # the cells: a floor's, then _BLOCK empty columns, then the next floor's
    gx, gz = spk.pos[gcols].astype(f64).T
    gfl = table.floor[gkey].astype(np.intp)
    x0, z0 = float(gx.min()), float(gz.min())
    wx, wz = float(gx.max()) - x0, float(gz.max()) - z0
    floors = int(np.count_nonzero(np.bincount(gfl)))
    cell = float(np.sqrt(_NEAR * k * max(wx * wz, 1.0) * floors / (np.pi * ng))) / _BLOCK
    cell = min(cell, float(prof.max_distance[gkey].max()) * 1.001 / _BLOCK)  # past every reach
    cell = max(cell, wx / (_MAX_CELLS - 1), wz / (_MAX_CELLS - 1), 1e-3)
    fx, nz = int(wx / cell) + 1, int(wz / cell) + 1
    span = 2 * _BLOCK + 1
    if fx <= span and nz <= span:
        return None  # every block is the whole floor
    stride = fx + _BLOCK
    nx = (max(int(gfl.max()), int(table.floor[ukeys].max())) + 1) * stride
    ncell = nx * nz
    scell = np.minimum((gz - z0) / cell, nz - 1).astype(np.intp) * nx
    scell += np.minimum((gx - x0) / cell, fx - 1).astype(np.intp) + gfl * stride
    order = np.argsort(scell, kind="stable")
    starts = np.zeros(ncell + 1, np.intp)
    np.cumsum(np.bincount(scell, minlength=ncell), out=starts[1:])
    # the listeners' cells; rows alike in cell and zone key share their tables (a combo)
    c = np.maximum((lis.pos.astype(f64) - (x0, z0)) * (1.0 / cell), 0.0)
    c = np.minimum(c, (fx - 1, nz - 1)).astype(np.intp)
    base = np.arange(len(ukeys)) * ncell + table.floor[ukeys].astype(np.intp) * stride
    combo = base[lcode] + c[:, 1] * nx + c[:, 0]
    has = np.zeros(len(ukeys) * ncell, bool)
    has[combo] = True
    cu = np.flatnonzero(has)
    ccode = (np.cumsum(has) - 1)[combo]
    nc = len(cu)
    ucode, uc = np.divmod(cu, ncell)
    ucz, ucx = np.divmod(uc, nx)
    # a combo's block: a run of the sorted speakers per row of cells
    lo = np.maximum(ucx - _BLOCK, 0)[:, None]
    hi = np.minimum(ucx + _BLOCK, nx - 1)[:, None]
    rz = ucz[:, None] + np.arange(-_BLOCK, _BLOCK + 1)
    inz = (rz >= 0) & (rz < nz)
    rzc = rz * inz * nx
    run_start = starts[rzc + lo]
    run_len = (starts[rzc + hi + 1] - run_start) * inz
    w = max(int(run_len.sum(axis=1).max()), k + 1)
    nobody = w + nb  # the place of nobody (padding, or someone who is no candidate)
    if 4 * (nobody + 3) > 3 * m or nc * (m + 1) > _MAX_PLACES:
        return None  # hardly fewer pairs than the whole rows
    flat_len = run_len.reshape(-1)
    run_id = np.repeat(np.arange(flat_len.size), flat_len)
    before = np.cumsum(flat_len) - flat_len
    within = np.arange(run_id.size) - before[run_id]
    run_off = before - np.repeat(before[::span], span)  # a run's place in its block
    e_col = gcols[order[run_start.reshape(-1)[run_id] + within]]  # the cells' candidates
    e_row = run_id // span
    e_at = run_off[run_id] + within
    places = np.full((nc, m + 1), -1, np.int32)  # a spk column's place among a combo's
    places.reshape(-1)[e_row * (m + 1) + e_col] = e_at
    places[:, bcols] = np.arange(w, nobody)
    places[:, m] = nobody
    place = places.reshape(-1)
    col_of = np.full(top + 2, m, np.intp)  # m for an id that is not talking here, and for -1
    col_of[spk.ids] = np.arange(m)
    at_c = ccode * (m + 1)
    mine = col_of[np.minimum(np.maximum(lis.ids, -1), top + 1)]
    self_at = place[at_c + mine]
    self_at[self_at < 0] = nobody
    m_pos = None
    redo = np.zeros(n, bool)
    if prev is not None:
        pcol = col_of[prev]
        m_pos = place[at_c[:, None] + pcol]
        lost = m_pos < 0  # a member who is no candidate (or self): that row with whole rows
        redo[lost.any(axis=1)] = True
        m_pos[lost] = nobody
    wt = nobody + 1
    tab = np.full((nc, wt), m, np.intp)  # each candidate's spk column; m: nobody
    tab[e_row, e_at] = e_col
    tab[:, w:nobody] = bcols
    # the matrices, row by row from the combos' tables
    sxe = np.append(spk.pos[:, 0], f32(0.0))
    sze = np.append(spk.pos[:, 1], f32(0.0))
    refe = np.append(prof.ref[skey], f32(1.0))
    maxde = np.append(prof.max_distance[skey], f32(-1.0))
    heard_c = rules.reshape(-1)[(ucode * (m + 1))[:, None] + tab] != NONE
    xx = np.take(sxe[tab], ccode, axis=0)
    zz = np.take(sze[tab], ccode, axis=0)
    ref = np.take(refe[tab], ccode, axis=0)
    lim = np.take(np.where(heard_c, maxde[tab], f32(-1.0)), ccode, axis=0)
    roll = None
    if (prof.rolloff[skey] != 1.0).any():  # x * 1.0 is x
        rolle = np.append(prof.rolloff[skey], f32(1.0))
        roll = np.take(rolle[tab], ccode, axis=0)
    lx, lz = np.ascontiguousarray(lis.pos.T)
    d = np.subtract(xx, lx[:, None], out=xx)
    np.square(d, out=d)
    g = np.subtract(zz, lz[:, None], out=zz)
    np.square(g, out=g)
    d += g
    np.sqrt(d, out=d)
    np.maximum(d, ref, out=g)  # inverse: ref / (ref + r * (max(d, ref) - ref))
    g -= ref
    if roll is not None:
        g *= roll
    g += ref
    np.divide(ref, g, out=g)
    g_flat = g.reshape(-1)
    if prof.model[skey].any():  # the other formulas, pair by pair
        cand = np.take(tab, ccode, axis=0).reshape(-1)
        cm = np.append(prof.model[skey], np.int8(0))[cand]
        for model in (1, 2):
            at = np.flatnonzero(cm == model)
            if not at.size:
                continue
            kc = skey[cand[at]]
            dd = d.reshape(-1)[at]
            rf = prof.ref[kc]
            if model == 1:
                dc = np.clip(dd, rf, prof.max_distance[kc])
                g_flat[at] = 1.0 - prof.rolloff[kc] * (dc - rf) / prof.span[kc]
            else:
                g_flat[at] = np.power(np.maximum(dd, rf) / rf, prof.neg_rolloff[kc])
    mask = np.less_equal(d, lim)
    np.multiply(g, mask, out=g)
    if is_pa.any():
        pa = np.where(is_pa[:, bcols], f32(table.pa_gain), f32(0.0))
        g[:, w : w + nb] = np.maximum(g[:, w : w + nb], np.take(pa, lcode, axis=0))
    mega = np.flatnonzero(mega_ok[bcols])
    if mega.size:
        g[:, w + mega] = f32(MEGAPHONE_GAIN)
    rows = np.arange(n)
    rows_wt = rows * wt
    g_flat[rows_wt + self_at] = 0.0
    # the scores, the hysteresis, the keys: the score's top bits over the candidate's place
    score = d
    np.greater(g, _ENTER, out=mask)
    np.multiply(g, mask, out=score)
    if m_pos is not None:
        flat = m_pos + rows_wt[:, None]
        gk = g_flat[flat]
        s_flat = score.reshape(-1)
        s_flat[flat] = np.where(gk >= _LEAVE, gk * _BONUS, s_flat[flat])
    cbw = max(1, (wt - 1).bit_length())
    low = np.int32((1 << cbw) - 1)
    keys = score.view(np.int32)
    keys &= ~low
    keys |= np.arange(wt, dtype=np.int32)
    top_keys = _top_keys(keys, k + 1)
    best = top_keys[:, 1:]
    nxt = top_keys[:, 0] >> cbw
    redo |= (nxt > 0) & ((best[:, 0] >> cbw) == nxt)  # equal scores at the cut
    # the bound on a speaker left out: at least _BLOCK cells from anyone in the middle cell (on
    # a side where the block ends before the floor's cells do), so it scores at most the
    # loudest gain at that distance among the profiles this key hears by distance (from
    # speakers in cells), a little up for float32 rounding
    in_cells = np.zeros(len(table.profiles), f32)
    in_cells[gkey] = 1.0
    can = ((krule != NONE) * in_cells) @ prof.kind > 0  # (keys here, kinds)
    ucxf = ucx % stride  # the combo's column among its floor's
    closed = (ucxf <= _BLOCK) & (ucxf + _BLOCK + 1 >= fx)  # the block spans the floor's cells:
    closed &= (ucz <= _BLOCK) & (ucz + _BLOCK + 1 >= nz)  # nobody is left out
    key_out = _bound_keys(prof, can, np.full(len(ukeys), _BLOCK * cell), low)
    out_key = np.where(closed, np.int32(-1), key_out[ucode])[ccode]
    redo |= best[:, 0] <= out_key
    # read out the kept: their spk columns, ascending, and their gains
    at = best & low
    cand_col = tab.reshape(-1)[(ccode * wt)[:, None] + at]
    cand_col[best <= low] = m
    both = (cand_col << cbw) | at
    both.sort(axis=1)
    cols = both >> cbw
    g_out = g_flat[(both & low) + rows_wt[:, None]]
    g_out[cols == m] = 0.0
    return Selection(np.append(spk.ids, -1)[cols], g_out), redo


def _choose(
    g: np.ndarray, lis: Listeners, sub: Speakers, prev: np.ndarray | None, k: int, top: int
) -> Selection:
    """The selection from a whole ``(listeners, speakers)`` gain matrix ``g`` (changed in
    place): nobody hears themselves, the hysteresis against ``prev`` (the listeners' previous
    ids), each row's k best."""
    score = _hysteresis(g, lis, sub, prev, top)
    return _best(g, score, sub.ids, k)


def _choose_exact(
    g: np.ndarray, lis: Listeners, sub: Speakers, prev: np.ndarray | None, k: int, top: int
) -> Selection:
    """:func:`_choose` with exact int64 keys (:func:`_top_k`)."""
    score = _hysteresis(g, lis, sub, prev, top)
    return _top_k(g, score, sub.ids, None, k)


def _hysteresis(
    g: np.ndarray, lis: Listeners, sub: Speakers, prev: np.ndarray | None, top: int
) -> np.ndarray:
    """Zero each listener's own column of ``g``; the scores with the hysteresis."""
    col_of = np.full(top + 2, -1, np.int64)
    col_of[sub.ids] = np.arange(len(sub.ids))
    mine = col_of[np.clip(lis.ids, -1, top + 1)]
    r = np.flatnonzero(mine >= 0)
    g[r, mine[r]] = 0.0
    score = g * (g > _ENTER).astype(np.float32)
    if prev is not None and prev.size:
        pc = col_of[prev]  # -1 (padding) maps to col_of[-1], which is -1
        r, c = np.nonzero(pc >= 0)
        cc = pc[r, c]
        gk = g[r, cc]
        kept = gk >= _LEAVE
        score[r[kept], cc[kept]] = gk[kept] * _BONUS
    return score


def audible(
    table: ZoneTable,
    listeners: Listeners,
    speakers: Speakers,
    prev: np.ndarray | None = None,
    k: int = K,
) -> Selection:
    """``select(gains(...), ...)``, the same selection with less work.

    Voices do not cross floors except a megaphone's, and fall with distance: the listeners in
    the hall are scored against the speakers near them and the broadcast ones (:func:`_near`).
    The rows that leaves uncertain, and every row when the cells would not help, are scored
    floor by floor against that floor's speakers and the megaphones (in one block, every
    speaker with its own zone's profile and rule); remote listeners against the stage speakers
    only, at the PA gain.
    """
    n = len(listeners.ids)
    m = len(speakers.ids)
    if n == 0 or m == 0:
        return Selection.empty(n, k)
    ids = np.full((n, k), -1, np.int64)
    out_g = np.zeros((n, k), np.float32)
    spk = speakers.take(np.argsort(speakers.ids, kind="stable"))
    top = max(int(spk.ids[-1]), int(prev.max()) if prev is not None and prev.size else 0)
    if prev is not None and not prev.size:
        prev = None
    lfloor = table.floor[listeners.key]
    sfloor = table.floor[spk.key]
    mega_ok = spk.megaphone & ~table.quiet[spk.key]
    prof = _Profiles.of(table.profiles)
    whole = np.ones(n, bool)  # rows to score against whole floors
    few = False  # whole rows for a few rows only: every floor in one block, if no rule joins two
    hall = lfloor >= 0
    every = bool(hall.all())
    h_rows = np.arange(n) if every else np.flatnonzero(hall)
    if h_rows.size:
        lis = listeners if every else listeners.take(h_rows)
        p_rows = prev if every or prev is None else prev[h_rows]
        near = _near(table, prof, lis, spk, mega_ok, p_rows, k, top)
        if near is not None:
            sel, redo = near
            ids[h_rows] = sel.ids
            out_g[h_rows] = sel.gains
            whole[h_rows] = redo
            across = (table.rule != NONE) & (table.floor[:, None] != table.floor)
            few = not across[: table.remote, table.floor >= 0].any()
    left = np.flatnonzero(whole)
    lf = lfloor[left]
    for f in np.unique(np.where(lf >= 0, 0, -1) if few else lf).tolist():
        rows = left[(lf >= 0) if few and f >= 0 else lf == f]
        if f >= 0:
            # a floor's speakers and the megaphones; a speaker of another floor would be a 0
            cols = np.flatnonzero(((sfloor >= 0) if few else (sfloor == f)) | spk.megaphone)
        else:
            cols = np.flatnonzero(table.rule[table.remote, spk.key] != NONE)
        if cols.size == 0:
            continue
        sub = spk.take(cols)
        lis = listeners.take(rows)
        p_rows = None if prev is None else prev[rows]
        if f >= 0:
            sel = _floor_select(table, prof, lis, sub, mega_ok[cols], p_rows, k, top)
        else:
            g = np.full((len(rows), len(cols)), np.float32(table.pa_gain))
            sel = _choose(g, lis, sub, p_rows, k, top)
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
    every listener ten times a second; the client smooths the gain it is given. Both selections
    are as :class:`Selection` says: ids ascending in each row, -1 padded at the end, so each
    row's old and new ids are matched by a search in sorted arrays (all rows at once: the ids are
    offset by row).

    Returns:
        The changes, and what the listeners know after them (``new``'s ids, with the gains
        told: a gain that moved less than ``min_db`` keeps its older value, so a slow drift is
        told once it adds up).
    """
    n, k = new.ids.shape
    kt = told.ids.shape[1]
    top = max(int(new.ids.max(initial=0)), int(told.ids.max(initial=0))) + 2
    # row r's ids as r * top + id, the padding as r * top + top - 1: ascending over the array
    t_key = (
        np.where(told.ids >= 0, told.ids, top - 1) + (np.arange(n, dtype=np.int64) * top)[:, None]
    )
    n_key = np.where(new.ids >= 0, new.ids, top - 1) + (np.arange(n, dtype=np.int64) * top)[:, None]
    t_flat = t_key.reshape(-1)
    n_flat = n_key.reshape(-1)
    live = new.ids >= 0
    at = np.minimum(np.searchsorted(t_flat, n_flat), t_flat.size - 1).reshape(n, k)
    known = live & (t_flat[at] == n_key)
    before = np.where(known, told.gains.reshape(-1)[at], np.float32(0.0))
    with np.errstate(divide="ignore"):
        moved = np.abs(db(np.maximum(new.gains, 1e-9)) - db(np.maximum(before, 1e-9))) >= min_db
    add = live & (~known | moved)
    t_live = told.ids >= 0
    back = np.minimum(np.searchsorted(n_flat, t_flat), n_flat.size - 1).reshape(n, kt)
    gone = t_live & (n_flat[back] != t_key)
    after = Selection(new.ids.copy(), np.where(add, new.gains, before).astype(np.float32))
    a_count = add.sum(axis=1)
    g_count = gone.sum(axis=1)
    rows = np.flatnonzero(a_count + g_count)
    if rows.size == 0:
        return [], after
    # flat lists in row order, cut by each row's counts
    add_ids = new.ids[add].tolist()
    add_g = np.round(new.gains[add].astype(np.float64), 4).tolist()
    gone_ids = told.ids[gone].tolist()
    a_end = np.cumsum(a_count[rows]).tolist()
    g_end = np.cumsum(g_count[rows]).tolist()
    out = []
    a0 = g0 = 0
    for r, a1, g1 in zip(rows.tolist(), a_end, g_end, strict=True):
        out.append(Change(r, list(zip(add_ids[a0:a1], add_g[a0:a1], strict=True)), gone_ids[g0:g1]))
        a0, g0 = a1, g1
    return out, after
