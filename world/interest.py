"""Interest management: which avatars each viewer gets, over a uniform grid.

Each viewer sees the avatars on its floor within ``radius``, nearest first, at most ``cap`` of
them (itself first); the rest of its floor is counted in ``beyond`` so that a far crowd is
summarised rather than dropped silently.

Avatars are bucketed by ``(floor, cell x, cell z)``. Viewers of one cell are answered together
from the ``(2 ring + 1)²`` block of cells around it, which holds everyone within
``ring × cell`` (plus the viewer's margin inside its own cell). A viewer whose ``cap`` nearest in
the block all lie within that reach is settled; the others wait for the next pass. Passes go from
fine cells to coarse ones (a dense crowd is settled from few candidates) and then to wider rings,
until the last pass covers ``radius``. Each pass is a handful of numpy operations over a padded
``(viewers, candidates)`` table, never a Python loop over avatars.

A small query (viewers × avatars up to ``brute_limit``, e.g. everyone in a hall of a few hundred)
skips the grid: one ``(viewers, avatars)`` table of distances answers it in a dozen numpy calls,
where the passes would cost a few hundred. Both orders are the same keys (float32 d², slot), so
the answers are identical.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from world.crowd import Crowd

__all__ = ["Interest", "enter_leave"]

_SPAN = 1 << 20  # cells per axis in the bucket key
_OFF = _SPAN // 2
_BUDGET = 1 << 19  # distances computed at once, at most (about)
_SLOT_BITS = 20  # a sort key is (float32 bits of d², slot), slots below 2**20
_SLOT_MASK = (1 << _SLOT_BITS) - 1
_BRUTE = 1 << 17  # viewers × avatars up to which one dense table beats the grid's passes


def _key(floor: np.ndarray, cx: np.ndarray, cz: np.ndarray) -> np.ndarray:
    return (floor.astype(np.int64) * _SPAN + (cx + _OFF)) * _SPAN + (cz + _OFF)


class _Grid:
    """Active avatars bucketed by ``(floor, cell x, cell z)`` for one cell size."""

    __slots__ = ("cell", "order", "keys", "starts", "counts")

    def __init__(self, cell: float, pos: np.ndarray, fl: np.ndarray) -> None:
        self.cell = cell
        cells = np.floor(pos / cell).astype(np.int64)
        key = _key(fl, cells[:, 0], cells[:, 1])
        self.order = np.argsort(key, kind="stable")
        self.keys, self.starts, self.counts = np.unique(
            key[self.order], return_index=True, return_counts=True
        )


@dataclass(slots=True)
class _Query:
    """The arrays of one query. Candidates index ``px``/``pz``/``slot``; the last is a sentinel."""

    px: np.ndarray  # float32 (active + 1,)
    pz: np.ndarray
    slot: np.ndarray  # int64 (active + 1,)
    fl: np.ndarray  # int64 (active,)
    vpos: np.ndarray  # float32 (viewers, 2), active viewers only
    vfl: np.ndarray  # int64 (viewers,)
    out: np.ndarray  # int32 (viewers, cap)


class Interest:
    """Who sees whom: a radius (m), a cap on the avatars per viewer, and the grid's cell (m)."""

    def __init__(self, radius: float = 30.0, cap: int = 64, cell: float = 10.0) -> None:
        if radius <= 0 or cap < 1 or cell <= 0:
            raise ValueError(f"need radius > 0, cap >= 1, cell > 0; got {radius}, {cap}, {cell}")
        self.radius = float(radius)
        self.cap = int(cap)
        self.cell = float(cell)
        self.brute_limit = _BRUTE
        # (cell size, ring) passes: fine cells first, the size growing by √2 up to ``cell``,
        # then wider rings until ring × cell covers the radius
        self._passes: list[tuple[float, int]] = []
        size = self.cell / 4
        while size < self.cell * 0.999:
            self._passes.append((size, 1))
            size *= math.sqrt(2.0)
        levels = max(1, math.ceil(self.radius / self.cell))
        self._passes += [(self.cell, ring) for ring in range(1, levels + 1)]

    def query(self, crowd: Crowd, viewers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The view of each viewer slot.

        Returns:
            ``(visible, beyond)``: ``visible`` int32 ``(len(viewers), cap)``, the slots on the
            viewer's floor within ``radius``, nearest first (the viewer itself first), ties by
            slot, padded with -1; ``beyond`` int32 ``(len(viewers),)``, the active avatars on
            the viewer's floor that are not in its row. An inactive viewer gets an empty row.
        """
        viewers = np.asarray(viewers, dtype=np.int64).reshape(-1)
        nv, cap = len(viewers), self.cap
        visible = np.full((nv, cap), -1, dtype=np.int32)
        beyond = np.zeros(nv, dtype=np.int32)
        act = np.flatnonzero(crowd.active)
        vi = np.flatnonzero(crowd.active[viewers])
        if len(act) == 0 or len(vi) == 0:
            return visible, beyond
        if act[-1] > _SLOT_MASK:
            raise ValueError(f"slots above {_SLOT_MASK} are not supported")
        pos = crowd.pos[act].astype(np.float32)
        vslot = viewers[vi]
        q = _Query(
            px=np.append(pos[:, 0], np.float32(1e9)),  # the sentinel is far from everyone
            pz=np.append(pos[:, 1], np.float32(1e9)),
            slot=np.append(act, 0),
            fl=crowd.floor[act].astype(np.int64),
            vpos=crowd.pos[vslot].astype(np.float32),
            vfl=crowd.floor[vslot].astype(np.int64),
            out=np.full((len(vi), cap), -1, dtype=np.int32),
        )
        if len(vi) * len(act) <= self.brute_limit:
            self._dense(q)
        else:
            grids: dict[float, _Grid] = {}
            rows = np.arange(len(vi))
            for n, (cell, ring) in enumerate(self._passes):
                grid = grids.get(cell)
                if grid is None:
                    grid = grids[cell] = _Grid(cell, pos.astype(np.float64), q.fl)
                rows = self._pass(q, grid, ring, n == len(self._passes) - 1, rows)
                if len(rows) == 0:
                    break
        out = q.out
        # the viewer itself first, also when someone stands exactly where it stands
        for i in np.flatnonzero(out[:, 0] != vslot).tolist():
            row = out[i]
            hit = np.flatnonzero(row == vslot[i])
            # not in its own row at all when more than cap stand on its spot with lower slots
            at = int(hit[0]) if len(hit) else cap - 1
            row[1 : at + 1] = row[:at].copy()
            row[0] = vslot[i]
        visible[vi] = out
        shown = np.count_nonzero(out >= 0, axis=1)
        beyond[vi] = (np.bincount(q.fl)[q.vfl] - shown).astype(np.int32)
        return visible, beyond

    def _dense(self, q: _Query) -> None:
        """Every viewer against every avatar in one table; the same keys as :meth:`_chunk`."""
        cap = self.cap
        dx = q.px[None, :-1] - q.vpos[:, 0, None]  # candidate - viewer, as _chunk computes it
        dx *= dx
        dz = q.pz[None, :-1] - q.vpos[:, 1, None]
        dz *= dz
        dx += dz
        dx[q.fl[None, :] != q.vfl[:, None]] = np.inf  # other floors: never inside the radius
        keys = dx.view(np.int32).astype(np.int64)
        keys <<= _SLOT_BITS
        keys |= q.slot[None, :-1]
        if keys.shape[1] > cap:
            keys = np.partition(keys, cap - 1, axis=1)[:, :cap]
        keys.sort(axis=1)
        kd2 = (keys >> _SLOT_BITS).astype(np.int32).view(np.float32)
        inside = kd2 <= np.float32(self.radius * self.radius)
        q.out[:, : keys.shape[1]] = np.where(inside, keys & _SLOT_MASK, -1)

    def _pass(self, q: _Query, grid: _Grid, ring: int, last: bool, rows: np.ndarray) -> np.ndarray:
        """Settle what viewers ``rows`` the ``(2 ring + 1)²`` blocks can; return the others."""
        cap = self.cap
        vcells = np.floor(q.vpos[rows] / grid.cell).astype(np.int64)
        vkey = _key(q.vfl[rows], vcells[:, 0], vcells[:, 1])
        gkeys, gfirst, ginv = np.unique(vkey, return_index=True, return_inverse=True)
        ginv = ginv.reshape(-1)
        span = np.arange(-ring, ring + 1, dtype=np.int64)
        ox, oz = np.meshgrid(span, span, indexing="ij")
        bkeys = _key(
            q.vfl[rows][gfirst][:, None],
            vcells[gfirst, 0][:, None] + ox.ravel()[None, :],
            vcells[gfirst, 1][:, None] + oz.ravel()[None, :],
        )
        at = np.minimum(np.searchsorted(grid.keys, bkeys), len(grid.keys) - 1)
        cnt = np.where(grid.keys[at] == bkeys, grid.counts[at], 0)
        tot = cnt.sum(axis=1)
        # every block's members, block after block
        fc = cnt.ravel()
        excl = np.cumsum(fc) - fc
        members = grid.order[
            np.repeat(grid.starts[at].ravel(), fc) + np.arange(int(fc.sum())) - np.repeat(excl, fc)
        ]
        m_start = np.cumsum(tot) - tot
        # the viewers of every group, group after group (positions in rows)
        by_group = np.argsort(ginv, kind="stable")
        r_count = np.bincount(ginv, minlength=len(gkeys))
        r_start = np.cumsum(r_count) - r_count
        # how far each viewer's block reaches for sure: the ring plus its margin in its cell
        f = q.vpos[rows] / grid.cell - vcells
        margin = np.minimum(np.minimum(f[:, 0], 1 - f[:, 0]), np.minimum(f[:, 1], 1 - f[:, 1]))
        reach = np.minimum((ring + margin) * grid.cell, self.radius)
        if last:
            reach[:] = self.radius
        eligible = tot > 0
        if not last:
            # skip blocks too sparse to hold cap avatars within their reach (on average the
            # reach's disc is π (ring + 1/6)² / (2 ring + 1)² of the block): a wider pass will
            eligible &= tot * (math.pi * (ring + 1 / 6) ** 2 / (2 * ring + 1) ** 2) >= 0.7 * cap
        done = np.zeros(len(rows), dtype=bool)
        # chunks of groups of similar size keep the padded tables small
        todo = np.flatnonzero(eligible)
        todo = todo[np.argsort(tot[todo], kind="stable")]
        # cut the sorted groups into chunks whose padded tables stay under the budget
        cuts: list[int] = []
        start = weight = 0
        for n, g in enumerate(todo.tolist()):
            if n > start and (weight + int(r_count[g])) * int(tot[g]) > _BUDGET:
                cuts.append(n)
                start, weight = n, 0
            weight += int(r_count[g])
        for chunk in np.split(todo, cuts):
            if len(chunk):
                self._chunk(
                    q, chunk, tot, members, m_start, by_group, r_count, r_start, rows, reach,
                    last, done,
                )  # fmt: skip
        return rows[~done]

    def _chunk(
        self, q: _Query, groups: np.ndarray, tot: np.ndarray, members: np.ndarray,
        m_start: np.ndarray, by_group: np.ndarray, r_count: np.ndarray, r_start: np.ndarray,
        rows: np.ndarray, reach: np.ndarray, last: bool, done: np.ndarray,
    ) -> None:  # fmt: skip
        """Distances from the viewers of ``groups`` to their blocks; keep the ``cap`` nearest."""
        cap = self.cap
        t = tot[groups]
        n_g = len(groups)
        sentinel = len(q.px) - 1
        table = np.full((n_g, max(1, int(t.max()))), sentinel, dtype=np.int64)
        col = np.arange(int(t.sum())) - np.repeat(np.cumsum(t) - t, t)
        table[np.repeat(np.arange(n_g), t), col] = members[np.repeat(m_start[groups], t) + col]
        tx, tz, ts = q.px[table], q.pz[table], q.slot[table]
        rc = r_count[groups]
        k = np.arange(int(rc.sum())) - np.repeat(np.cumsum(rc) - rc, rc)
        mine = by_group[np.repeat(r_start[groups], rc) + k]  # positions in rows
        gi = np.repeat(np.arange(n_g), rc)  # each viewer's row of the table
        r = rows[mine]
        dx = tx[gi]
        dx -= q.vpos[r, 0, None]
        dx *= dx
        dz = tz[gi]
        dz -= q.vpos[r, 1, None]
        dz *= dz
        dx += dz
        d2 = dx
        # one int64 per candidate sorts by distance, then slot: d² >= 0, so its float32 bits
        # order like the values
        keys = d2.view(np.int32).astype(np.int64)
        keys <<= _SLOT_BITS
        keys |= ts[gi]
        if keys.shape[1] > cap:
            keys = np.partition(keys, cap - 1, axis=1)[:, :cap]
        keys.sort(axis=1)
        kd2 = (keys >> _SLOT_BITS).astype(np.int32).view(np.float32)
        lim2 = (reach[mine] * reach[mine]).astype(np.float32)[:, None]
        inside = kd2 <= lim2
        if last:
            ok = np.ones(len(mine), dtype=bool)
        elif keys.shape[1] < cap:
            return
        else:
            ok = inside[:, cap - 1]
        if not np.any(ok):
            return
        found = np.where(inside[ok], keys[ok] & _SLOT_MASK, -1)
        q.out[r[ok], : found.shape[1]] = found
        done[mine[ok]] = True


def enter_leave(prev: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Between two sorted id arrays, the ids that ``entered`` (in ``cur`` only) and ``left``."""
    prev = np.asarray(prev)
    cur = np.asarray(cur)
    return np.setdiff1d(cur, prev, assume_unique=True), np.setdiff1d(prev, cur, assume_unique=True)
