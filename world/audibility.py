"""Who hears whom: each listener's audible talking speakers, their gains, and the K kept.

Pure (numpy, and numba for the loops over pairs: :mod:`world.audibility_kernels`). The server calls it at 10 Hz with the positions and zones of an instance; the
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

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from world import audibility_kernels as _kernels
from world.audibility_kernels import DISTANCE, NONE, PA
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
    "Changes",
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
    arrays: _TableArrays = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "arrays", _TableArrays.of(self))

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


_MODELS = {"inverse": 0, "linear": 1, "exponential": 2}
_BOUND_STEP = 0.25  # metres: the steps of the bound on a speaker left out (a float32 exactly)


@dataclass(frozen=True, slots=True)
class _TableArrays:
    """A :class:`ZoneTable` as the kernels take it.

    Attributes:
        rule: ``ZoneTable.rule`` as C-contiguous int8.
        floor, model: int16 floor and int8 distance model (0 inverse, 1 linear, 2 exponential)
            of each key.
        par: float32 ``(keys, 5)``: the profile's ref distance, rolloff, -rolloff, max distance
            and max - ref (in float64, then float32, as Python computes it).
        cast: bool per speaker key, heard other than by distance on its own floor (a PA rule,
            or a rule across floors): scored for every listener, not put in cells.
        bound: float64 ``(keys, t)``: the loudest gain a speaker heard by distance by a
            listener of that key can have ``t * _BOUND_STEP`` metres away or more
            (:func:`world.audibility_kernels.bound_table`), over the distinct profiles it hears
            by distance; inf where one's gain does not fall with distance (no bound).
    """

    rule: np.ndarray
    floor: np.ndarray
    model: np.ndarray
    par: np.ndarray
    cast: np.ndarray
    bound: np.ndarray

    @classmethod
    def of(cls, table: ZoneTable) -> _TableArrays:
        profiles = table.profiles
        rule = np.ascontiguousarray(table.rule, dtype=np.int8)
        floor = np.ascontiguousarray(table.floor, dtype=np.int16)

        def params(ps: list[AudioProfile]) -> tuple[np.ndarray, np.ndarray]:
            model = np.array([_MODELS.get(p.model, 0) for p in ps], np.int8)
            par = np.array(
                [(p.ref_distance, p.rolloff, -p.rolloff, p.max_distance,
                  p.max_distance - p.ref_distance) for p in ps], np.float64,
            ).reshape(-1, 5).astype(np.float32)  # fmt: skip
            return model, par

        model, par = params(list(profiles))
        heard = rule != NONE
        cast = ((rule == PA) | (heard & (floor[:, None] != floor[None, :]))).any(axis=0)
        distinct = list(dict.fromkeys(profiles))
        kind = np.array([distinct.index(p) for p in profiles], np.intp)
        hears = np.zeros((len(profiles), len(distinct)), bool)
        rows, cols = np.nonzero(heard & ~cast[None, :])
        hears[rows, kind[cols]] = True
        kind_model, kind_par = params(distinct)
        falls = np.array(
            [p.ref_distance > 0 and p.rolloff >= 0 and p.max_distance > p.ref_distance
             for p in distinct], bool)  # fmt: skip
        bound = _kernels.bound_table(hears, kind_model, kind_par, falls, _BOUND_STEP)
        return cls(rule, floor, model, par, cast, bound)


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
    """The gain of every speaker at every listener: float32 ``(listeners, speakers)``, the
    columns in ``speakers``' order (one compiled loop over the pairs,
    :func:`world.audibility_kernels.pair_gains`)."""
    n, m = len(listeners.ids), len(speakers.ids)
    if n == 0 or m == 0:
        return np.zeros((n, m), dtype=np.float32)
    t = table.arrays
    return np.asarray(
        _kernels.pair_gains(
            *_listener_args(listeners),
            *_speaker_args(table, speakers),
            t.rule, t.model, t.par, table.remote, np.float32(table.pa_gain), _MEGAPHONE,
        )
    )  # fmt: skip


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


_ENTER = np.float32(_gain_of_db(ENTER_DB))
_LEAVE = np.float32(_gain_of_db(LEAVE_DB))
_BONUS = np.float32(_gain_of_db(RANK_BONUS_DB))
_MEGAPHONE = np.float32(MEGAPHONE_GAIN)


def _prev_arg(prev: np.ndarray | None, n: int) -> np.ndarray:
    if prev is None:
        return np.zeros((n, 0), np.int64)
    return np.ascontiguousarray(prev, dtype=np.int64).reshape(n, -1)


def _listener_args(lis: Listeners) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.ascontiguousarray(lis.pos, dtype=np.float32),
        np.ascontiguousarray(lis.key, dtype=np.int32),
        np.ascontiguousarray(lis.ids, dtype=np.int64),
    )


def _speaker_args(
    table: ZoneTable, spk: Speakers
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Positions, keys, ids and whether each speaker's megaphone works (not from a quiet zone)."""
    key = np.ascontiguousarray(spk.key, dtype=np.int32)
    return (
        np.ascontiguousarray(spk.pos, dtype=np.float32),
        key,
        np.ascontiguousarray(spk.ids, dtype=np.int64),
        np.asarray(spk.megaphone, dtype=bool) & ~table.quiet[key],
    )


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
    if n == 0 or m == 0 or k <= 0:
        return Selection.empty(n, k)
    ids, out = _kernels.keep_rows(
        np.ascontiguousarray(g, dtype=np.float32),
        np.ascontiguousarray(speaker_ids, dtype=np.int64),
        _prev_arg(prev, n),
        k,
        np.float32(_gain_of_db(enter_db)),
        np.float32(_gain_of_db(leave_db)),
        np.float32(_gain_of_db(rank_bonus_db)),
    )
    return Selection(ids, out)


def audible(
    table: ZoneTable,
    listeners: Listeners,
    speakers: Speakers,
    prev: np.ndarray | None = None,
    k: int = K,
) -> Selection:
    """``select(gains(...), ...)``, the same selection with less work.

    One compiled loop per listener (:func:`world.audibility_kernels.near`) scores its members
    (kept last time), the broadcast speakers (megaphones, a stage with its PA) and the speakers
    of its floor in the cells around it, ring after ring, keeping the K best as it goes, until
    no speaker farther away could be kept: voices do not cross floors except a megaphone's or a
    PA's, and every distance gain falls with distance.
    """
    return _audible(table, listeners, speakers, prev, k)[0]


def _audible(
    table: ZoneTable,
    listeners: Listeners,
    speakers: Speakers,
    prev: np.ndarray | None,
    k: int,
) -> tuple[Selection, int]:
    """:func:`audible`, and the number of pairs it scored."""
    n, m = len(listeners.ids), len(speakers.ids)
    if n == 0 or m == 0 or k <= 0:
        return Selection.empty(n, k), 0
    t = table.arrays
    ids, out, pairs = _kernels.near(
        *_listener_args(listeners),
        _prev_arg(prev, n),
        *_speaker_args(table, speakers),
        t.rule, t.floor, t.model, t.par, t.cast, t.bound, _BOUND_STEP, table.remote, np.float32(table.pa_gain), _MEGAPHONE, k, _ENTER, _LEAVE,
        _BONUS,
    )  # fmt: skip
    return Selection(ids, out), int(pairs)


def _warm() -> None:
    """Compile (or load from the cache) every kernel with the dtypes of a real update, so that
    no tick pays for it."""
    profile = AudioProfile()
    rule = np.full((2, 2), DISTANCE, np.int8)
    rule[1] = NONE
    table = ZoneTable(
        rule, (profile, profile), np.array([0, -1], np.int16), np.zeros(2, bool),
        np.zeros(0, np.int32), np.zeros(1, np.int32),
    )  # fmt: skip
    lis = Listeners.of([0, 1], [(0.0, 0.0), (1.0, 0.0)], [0, 0])
    spk = Speakers.of([0, 1], [(0.0, 0.0), (1.0, 0.0)], [0, 0])
    prev = audible(table, lis, spk).ids
    audible(table, lis, spk, prev)
    select(gains(table, lis, spk), spk.ids, prev)
    _kernels.diff_rows(
        prev,
        np.zeros(prev.shape, np.float32),
        prev,
        np.ones(prev.shape, np.float32),
        1.0,
        np.float32(1e-9),
    )


@dataclass(frozen=True, slots=True)
class Change:
    """What one listener must be told: speakers to add or re-gain, and speakers to drop."""

    row: int
    add: list[tuple[int, float]]
    remove: list[int]


@dataclass(frozen=True, slots=True)
class Changes:
    """The changes of one update as flat arrays (what :func:`changes` computes in one compiled
    pass): ``rows`` ascending, the listeners with something to tell; row ``rows[c]``'s adds are
    ``add_ids[add_off[c]:add_off[c + 1]]`` with ``add_gains`` (float64, rounded to 4 places as
    they are told), its removes ``gone_ids[gone_off[c]:gone_off[c + 1]]``. Iterating gives
    :class:`Change` objects (for tests and tools; the relay encodes from the arrays)."""

    rows: np.ndarray
    add_ids: np.ndarray
    add_gains: np.ndarray
    add_off: np.ndarray
    gone_ids: np.ndarray
    gone_off: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[Change]:
        add_ids = self.add_ids.tolist()
        add_g = self.add_gains.tolist()
        gone = self.gone_ids.tolist()
        a_off = self.add_off.tolist()
        g_off = self.gone_off.tolist()
        for c, r in enumerate(self.rows.tolist()):
            a0, a1, g0, g1 = a_off[c], a_off[c + 1], g_off[c], g_off[c + 1]
            yield Change(r, list(zip(add_ids[a0:a1], add_g[a0:a1], strict=True)), gone[g0:g1])


_DB_FLOOR = np.float32(1e-9)


def changes(told: Selection, new: Selection, min_db: float = 1.0) -> tuple[Changes, Selection]:
    """What to tell each listener: the rows whose set changed, or whose kept gain moved by
    ``min_db`` or more from the gain last told.

    A gain change is told only past ``min_db`` so that walking about does not send an update to
    every listener ten times a second; the client smooths the gain it is given. Both selections
    are as :class:`Selection` says (ids ascending in each row, -1 padded at the end), so one
    compiled pass merges each row's old and new ids (:func:`world.audibility_kernels.diff_rows`).

    Returns:
        The changes, and what the listeners know after them (``new``'s ids, with the gains
        told: a gain that moved less than ``min_db`` keeps its older value, so a slow drift is
        told once it adds up).
    """
    rows, add_ids, add_g, add_end, gone_ids, gone_end, after_g = _kernels.diff_rows(
        np.ascontiguousarray(told.ids, dtype=np.int64),
        np.ascontiguousarray(told.gains, dtype=np.float32),
        np.ascontiguousarray(new.ids, dtype=np.int64),
        np.ascontiguousarray(new.gains, dtype=np.float32),
        float(min_db),
        _DB_FLOOR,
    )
    zero = np.zeros(1, np.int64)
    out = Changes(
        rows,
        add_ids,
        np.round(add_g.astype(np.float64), 4),
        np.concatenate([zero, add_end]),
        gone_ids,
        np.concatenate([zero, gone_end]),
    )
    return out, Selection(new.ids.copy(), after_g)


_warm()
