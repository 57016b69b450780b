"""Interest management: which avatars each viewer gets, over a uniform grid.

Each viewer sees the avatars on its floor within ``radius``, nearest first, at most ``cap`` of
them (itself first); the rest of its floor is counted in ``beyond`` so that a far crowd is
summarised rather than dropped silently.

The grid buckets avatars by ``(floor, cell x, cell z)``. Viewers of one cell are answered
together: the cells around them are searched ring by ring — a ``(2L+1)²`` block holds everyone
within ``L × cell`` metres — and the search stops at the first ring that already yields ``cap``
avatars within its guaranteed distance, which in a dense hall is the first.
"""

from __future__ import annotations

import math

import numpy as np

from world.crowd import Crowd

__all__ = ["Interest", "enter_leave"]

_SPAN = 1 << 20  # cells per axis in the bucket key
_OFF = _SPAN // 2
_BUDGET = 1 << 18  # distances computed at once, at most (about)


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


class Interest:
    """Who sees whom: a radius (m), a cap on the avatars per viewer, and the grid's cell (m)."""

    def __init__(self, radius: float = 30.0, cap: int = 64, cell: float = 10.0) -> None:
        if radius <= 0 or cap < 1 or cell <= 0:
            raise ValueError(f"need radius > 0, cap >= 1, cell > 0; got {radius}, {cap}, {cell}")
        self.radius = float(radius)
        self.cap = int(cap)
        self.cell = float(cell)
        # (cell size, ring) passes: a fine first pass answers dense crowds cheaply
        levels = max(1, math.ceil(self.radius / self.cell))
        # passes (cell size, ring); a pass settles viewers with ``cap`` avatars within
        # ring × size. Fine cells first (dense crowds are answered from few candidates), the
        # size growing by √2 up to ``cell``, then wider rings up to ``radius``.
        self._passes: list[tuple[float, int]] = []
        size = self.cell / 4
        while size < self.cell * 0.999:
            self._passes.append((size, 1))
            size *= math.sqrt(2.0)
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
        pos = crowd.pos[act].astype(np.float32)
        fl = crowd.floor[act].astype(np.int64)
        vslot = viewers[vi]
        vpos = crowd.pos[vslot].astype(np.float32)
        vfl = crowd.floor[vslot].astype(np.int64)
        grids: dict[float, _Grid] = {}
        rows = np.arange(len(vi))
        # a sentinel far away stands in for the padding of the candidate tables
        pos = np.ascontiguousarray(np.vstack([pos, np.full((1, 2), 1e9, dtype=np.float32)]).T).T
        act = np.append(act, -1)
        for n, (cell, ring) in enumerate(self._passes):
            last = n == len(self._passes) - 1
            grid = grids.get(cell)
            if grid is None:
                grid = grids[cell] = _Grid(cell, pos[:-1].astype(np.float64), fl)
            lim = self.radius if last else min(ring * cell, self.radius)
            rows = self._pass(grid, ring, lim, last, rows, vi, vslot, vpos, vfl, act, pos, visible)
            if len(rows) == 0:
                break
        # the viewer itself first, also when someone stands exactly where it stands
        rows_vi = visible[vi]
        wrong = np.flatnonzero(rows_vi[:, 0] != vslot)
        for i in wrong.tolist():
            row = rows_vi[i]
            at = int(np.flatnonzero(row == vslot[i])[0])
            row[1 : at + 1] = row[:at].copy()
            row[0] = vslot[i]
        visible[vi] = rows_vi
        shown = np.count_nonzero(rows_vi >= 0, axis=1)
        beyond[vi] = (np.bincount(fl)[vfl] - shown).astype(np.int32)
        return visible, beyond

    def _pass(
        self,
        grid: _Grid,
        ring: int,
        lim: float,
        last: bool,
        rows: np.ndarray,
        vi: np.ndarray,
        vslot: np.ndarray,
        vpos: np.ndarray,
        vfl: np.ndarray,
        act: np.ndarray,
        pos: np.ndarray,
        visible: np.ndarray,
    ) -> np.ndarray:
        """Answer the viewers ``rows`` whose ``(2 ring + 1)²`` block settles them; return the rest.

        A block holds everyone within ``ring × cell`` of a viewer of its centre cell, so a viewer
        with ``cap`` avatars within that distance (or within ``lim`` on the last pass) is done.
        """
        cap = self.cap
        vcells = np.floor(vpos[rows] / grid.cell).astype(np.int64)
        vkey = _key(vfl[rows], vcells[:, 0], vcells[:, 1])
        gkeys, gfirst, ginv = np.unique(vkey, return_index=True, return_inverse=True)
        ginv = ginv.reshape(-1)
        span = np.arange(-ring, ring + 1, dtype=np.int64)
        ox, oz = np.meshgrid(span, span, indexing="ij")
        bkeys = _key(
            vfl[rows][gfirst][:, None],
            vcells[gfirst, 0][:, None] + ox.ravel()[None, :],
            vcells[gfirst, 1][:, None] + oz.ravel()[None, :],
        )
        at = np.minimum(np.searchsorted(grid.keys, bkeys), len(grid.keys) - 1)
        cnt = np.where(grid.keys[at] == bkeys, grid.counts[at], 0)
        tot = cnt.sum(axis=1)
        # every block's members, block after block (indices into act)
        fc = cnt.ravel()
        excl = np.cumsum(fc) - fc
        members = grid.order[
            np.repeat(grid.starts[at].ravel(), fc) + np.arange(int(fc.sum())) - np.repeat(excl, fc)
        ]
        m_start = np.cumsum(tot) - tot
        # the viewers of every group, group after group (indices into rows)
        by_group = np.argsort(ginv, kind="stable")
        r_count = np.bincount(ginv, minlength=len(gkeys))
        r_start = np.cumsum(r_count) - r_count
        eligible = tot > 0
        if not last:
            # skip blocks too sparse to hold cap avatars within their reach (the reach's disc
            # is π ring² / (2 ring + 1)² of the block): they wait for a wider pass
            eligible &= tot * (math.pi * ring * ring / (2 * ring + 1) ** 2) >= 0.7 * cap
        done = np.zeros(len(rows), dtype=bool)
        # chunks of groups of similar size keep the padded tables small
        todo = np.flatnonzero(eligible)
        todo = todo[np.argsort(tot[todo], kind="stable")]
        chunk: list[int] = []
        weight = 0
        for g in todo.tolist():
            if chunk and (weight + int(r_count[g])) * int(tot[g]) > _BUDGET:
                self._chunk(
                    np.array(chunk),
                    tot,
                    members,
                    m_start,
                    by_group,
                    r_count,
                    r_start,
                    rows,
                    lim,
                    last,
                    vi,
                    vslot,
                    vpos,
                    act,
                    pos,
                    visible,
                    done,
                )
                chunk, weight = [], 0
            chunk.append(g)
            weight += int(r_count[g])
        if chunk:
            self._chunk(
                np.array(chunk),
                tot,
                members,
                m_start,
                by_group,
                r_count,
                r_start,
                rows,
                lim,
                last,
                vi,
                vslot,
                vpos,
                act,
                pos,
                visible,
                done,
            )
        return rows[~done]

    def _chunk(
        self,
        groups: np.ndarray,
        tot: np.ndarray,
        members: np.ndarray,
        m_start: np.ndarray,
        by_group: np.ndarray,
        r_count: np.ndarray,
        r_start: np.ndarray,
        rows: np.ndarray,
        lim: float,
        last: bool,
        vi: np.ndarray,
        vslot: np.ndarray,
        vpos: np.ndarray,
        act: np.ndarray,
        pos: np.ndarray,
        visible: np.ndarray,
        done: np.ndarray,
    ) -> None:
        """Distances from the viewers of ``groups`` to their blocks; keep the ``cap`` nearest."""
        cap = self.cap
        t = tot[groups]
        n_g = len(groups)
        table = np.full((n_g, max(1, int(t.max()))), len(act) - 1, dtype=np.int64)  # sentinel
        col = np.arange(int(t.sum())) - np.repeat(np.cumsum(t) - t, t)
        table[np.repeat(np.arange(n_g), t), col] = members[np.repeat(m_start[groups], t) + col]
        rc = r_count[groups]
        k = np.arange(int(rc.sum())) - np.repeat(np.cumsum(rc) - rc, rc)
        mine = by_group[np.repeat(r_start[groups], rc) + k]  # positions in rows
        cand = table[np.repeat(np.arange(n_g), rc)]  # (viewers, width) indices into act
        r = rows[mine]
        px, pz = pos[:, 0], pos[:, 1]
        dx = vpos[r, 0, None] - px[cand]
        dz = vpos[r, 1, None] - pz[cand]
        d2 = dx * dx + dz * dz
        lim2 = np.float32(lim * lim)
        if d2.shape[1] > cap:
            part = np.argpartition(d2, cap - 1, axis=1)[:, :cap]
            d2 = np.take_along_axis(d2, part, axis=1)
            cand = np.take_along_axis(cand, part, axis=1)
        # settled when its cap nearest in the block are all within the block's reach
        ok = np.count_nonzero(d2 <= lim2, axis=1) >= cap
        if last:
            ok[:] = True
        if not np.any(ok):
            return
        if not np.all(ok):
            d2, cand, r, mine = d2[ok], cand[ok], r[ok], mine[ok]
        d2[d2 > lim2] = np.inf
        cslot = act[cand]
        # nearest first, ties by slot (the slot term is below float32 resolution of d2)
        order = np.argsort(d2.astype(np.float64) + cslot * 1e-12, axis=1)
        d2 = np.take_along_axis(d2, order, axis=1)
        cslot = np.take_along_axis(cslot, order, axis=1)
        out = np.where(np.isfinite(d2), cslot, -1)
        visible[vi[r], : out.shape[1]] = out
        done[mine] = True


def enter_leave(prev: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Between two sorted id arrays, the ids that ``entered`` (in ``cur`` only) and ``left``."""
    prev = np.asarray(prev)
    cur = np.asarray(cur)
    return np.setdiff1d(cur, prev, assume_unique=True), np.setdiff1d(prev, cur, assume_unique=True)
