"""The compiled loops of :mod:`world.audibility`: a pair's gain, the K kept with hysteresis, and
the selection of every listener over the speakers near it.

Everything is float32 in the order of operations of :meth:`world.model.AudioProfile.gain` on a
float32 distance (the Web Audio formulas), so the gains are the bits numpy gives for the inverse
and linear models; for the exponential model ``powf`` may be a last bit away from numpy's SIMD
``power``. Inputs are C-contiguous arrays of fixed dtypes (the callers cast), so that one compiled
signature serves, cached in ``__pycache__`` and loaded when :mod:`world.audibility` is imported.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = [
    "NONE",
    "DISTANCE",
    "PA",
    "pair_gains",
    "keep_rows",
    "bound_table",
    "near",
    "diff_rows",
]

# zone rules, as in the table of world.audibility's docstring
NONE = 0
DISTANCE = 1
PA = 2

# profile parameters per zone key, float32 columns of ``par``
REF, ROLLOFF, NEG_ROLLOFF, MAX_DISTANCE, SPAN = range(5)

_CELL_SPEAKERS = 1.5  # cells sized to hold about this many speakers each
_MAX_CELLS = 128  # cells a side at most

# error_model="numpy": a float division by 0 gives inf or nan as numpy's does (no check, no raise)
_jit = numba.njit(cache=True, nogil=True, error_model="numpy")
# the helpers of one pair, inlined in the loops
_inline = numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")


@_inline
def _distance_gain(d, model, ref, rolloff, neg_rolloff, mx, span):
    """The Web Audio distance gain of one profile at float32 distance ``d``; 0 past its reach."""
    if not d <= mx:
        return np.float32(0.0)
    if model == 1:  # linear
        dc = min(max(d, ref), mx)
        return np.float32(1.0) - rolloff * (dc - ref) / span
    if model == 2:  # exponential
        return np.float32((max(d, ref) / ref) ** neg_rolloff)
    return ref / (ref + rolloff * (max(d, ref) - ref))  # inverse


@_inline
def _gain(r, to_remote, lx, lz, lid, sx, sz, sid, mega, model, ref, rolloff, neg_rolloff, mx,
          span, pa, mega_gain):  # fmt: skip
    """One speaker's gain at one listener, by the zone rule ``r`` of the pair: the speaker's
    zone profile, the PA of a stage, the megaphone (not to remote listeners), and nobody hears
    themselves. (Scalars only: a helper given an array pays for its reference count at every
    pair.)"""
    g = np.float32(0.0)
    if to_remote:  # a watch-only viewer: no distance, the PA only
        if r != NONE:
            g = pa
    else:
        if r != NONE:
            dx = lx - sx
            dz = lz - sz
            g = _distance_gain(
                np.sqrt(dx * dx + dz * dz), model, ref, rolloff, neg_rolloff, mx, span
            )
            if r == PA:
                g = max(g, pa)
        if mega:
            g = mega_gain
    if sid == lid:
        g = np.float32(0.0)
    return g


@_inline
def _score(g, member, enter, leave, bonus):
    """What a pair ranks by: a kept member's gain 6 dB up down to ``leave``, another's gain
    above ``enter``, else 0 (never kept)."""
    if member and g >= leave:
        return g * bonus
    if g > enter:
        return g
    return np.float32(0.0)


@_inline
def _offer(score, sid, g, bs, bi, bg, kept):
    """Keep ``sid`` among the best (``bs``, ``bi``, ``bg``: scores, ids, gains, best first; the
    higher score, then the lower id); returns how many are kept."""
    k = bs.size
    if not score > 0.0:
        return kept
    if kept == k:
        if score < bs[k - 1] or (score == bs[k - 1] and sid > bi[k - 1]):
            return kept
        at = k - 1
    else:
        at = kept
        kept += 1
    while at > 0 and (score > bs[at - 1] or (score == bs[at - 1] and sid < bi[at - 1])):
        bs[at] = bs[at - 1]
        bi[at] = bi[at - 1]
        bg[at] = bg[at - 1]
        at -= 1
    bs[at] = score
    bi[at] = sid
    bg[at] = g
    return kept


@_inline
def _write(row, bi, bg, kept, ids, gains):
    """Row ``row`` of the selection: the kept ids ascending with their gains, -1 / 0 after."""
    for a in range(1, kept):  # insertion sort by id of at most k
        i, g = bi[a], bg[a]
        b = a
        while b > 0 and bi[b - 1] > i:
            bi[b] = bi[b - 1]
            bg[b] = bg[b - 1]
            b -= 1
        bi[b] = i
        bg[b] = g
    for a in range(ids.shape[1]):
        if a < kept:
            ids[row, a] = bi[a]
            gains[row, a] = bg[a]
        else:
            ids[row, a] = -1
            gains[row, a] = 0.0


@_jit
def _columns(sid, prev):
    """The column of each id (-1: none) for ids up to the largest of ``sid`` and ``prev``."""
    top = 0
    for i in sid:
        top = max(top, i)
    for i in prev.ravel():
        top = max(top, i)
    col_of = np.full(top + 1, -1, np.int64)
    for j in range(sid.size):
        if sid[j] >= 0:
            col_of[sid[j]] = j
    return col_of


@_jit
def pair_gains(lpos, lkey, lid, spos, skey, sid, mega, rule, kmodel, kpar, remote, pa, mega_gain):
    """Every speaker's gain at every listener: float32 ``(listeners, speakers)``."""
    n, m = lid.size, sid.size
    out = np.empty((n, m), np.float32)
    for i in range(n):
        key = lkey[i]
        for j in range(m):
            k = skey[j]
            out[i, j] = _gain(rule[key, k], key == remote, lpos[i, 0], lpos[i, 1], lid[i],
                              spos[j, 0], spos[j, 1], sid[j], mega[j], kmodel[k], kpar[k, REF],
                              kpar[k, ROLLOFF], kpar[k, NEG_ROLLOFF], kpar[k, MAX_DISTANCE],
                              kpar[k, SPAN], pa, mega_gain)  # fmt: skip
    return out


@_jit
def keep_rows(g, sid, prev, k, enter, leave, bonus):
    """Each row's ``k`` best of a gain matrix ``g`` (columns ``sid``), with the hysteresis
    against ``prev`` (the rows' previous ids): ids int64 and gains float32 ``(rows, k)``."""
    n, m = g.shape
    col_of = _columns(sid, prev)
    member = np.full(m, -1, np.int64)
    ids = np.empty((n, k), np.int64)
    gains = np.empty((n, k), np.float32)
    bs = np.empty(k, np.float32)
    bi = np.empty(k, np.int64)
    bg = np.empty(k, np.float32)
    for i in range(n):
        for p in prev[i]:
            if p >= 0 and col_of[p] >= 0:
                member[col_of[p]] = i
        kept = 0
        for j in range(m):
            s = _score(g[i, j], member[j] == i, enter, leave, bonus)
            kept = _offer(s, sid[j], g[i, j], bs, bi, bg, kept)
        _write(i, bi, bg, kept, ids, gains)
    return ids, gains


@_jit
def bound_table(hears, qmodel, qpar, qfalls, step):
    """For each listener key, the loudest gain a speaker it hears by distance can have at
    ``t * step`` metres or more (float64 ``(keys, t)``, up to past the longest reach, where it is
    0): every operation of the formulas is monotonic in float32 too, so each gain falls with
    the float32 distance and the gain at ``t * step`` bounds those farther; padded for ``powf``;
    inf for a key that hears a profile whose gain does not fall (no bound)."""
    reach = 0.0
    for q in range(qpar.shape[0]):
        reach = max(reach, float(qpar[q, MAX_DISTANCE]))
    steps = int(np.ceil(reach / step)) + 2
    out = np.zeros((hears.shape[0], steps), np.float64)
    for key in range(hears.shape[0]):
        for t in range(steps):
            d = np.float32(t * step)
            b = 0.0
            for q in range(hears.shape[1]):
                if hears[key, q]:
                    if not qfalls[q]:
                        b = np.inf
                    else:
                        g = _distance_gain(d, qmodel[q], qpar[q, REF], qpar[q, ROLLOFF],
                                           qpar[q, NEG_ROLLOFF], qpar[q, MAX_DISTANCE],
                                           qpar[q, SPAN])  # fmt: skip
                        b = max(b, float(g) * (1.0 + 1e-5))
            out[key, t] = b
    return out


@_jit
def near(lpos, lkey, lid, prev, spos, skey, sid, mega, rule, kfloor, kmodel, kpar, kcast,
         kbound, step, remote, pa, mega_gain, k, enter, leave, bonus):  # fmt: skip
    """Each listener's ``k`` loudest speakers with hysteresis, scoring only the pairs that can
    matter: its members (kept last time), the broadcast speakers (``kcast`` keys: a stage's PA,
    a rule across floors; and megaphones), and the speakers in the cells around its own, ring
    after ring, until no speaker farther away could be kept (the loudest gain of the profiles
    it hears by distance at the rings' least distance, :func:`bound_table`, is below its k-th best
    score, or does not enter). The same answer as every pair scored, since a speaker left out
    scores less than each of the k kept.

    Returns:
        ids int64 and gains float32 ``(listeners, k)`` as ``Selection`` has them, and the
        number of pairs scored.
    """
    n, m = lid.size, sid.size
    col_of = _columns(sid, prev)
    # the speakers heard by distance go in cells, floor after floor; the others are broadcast
    cast = np.zeros(m, np.bool_)
    ncast = 0
    x0 = z0 = np.inf
    x1 = z1 = -np.inf
    for j in range(m):
        key = skey[j]
        cast[j] = mega[j] or kcast[key] or kfloor[key] < 0
        if cast[j]:
            ncast += 1
        else:
            x0, x1 = min(x0, spos[j, 0]), max(x1, spos[j, 0])
            z0, z1 = min(z0, spos[j, 1]), max(z1, spos[j, 1])
    casts = np.empty(ncast, np.int64)
    c = 0
    for j in range(m):
        if cast[j]:
            casts[c] = j
            c += 1
    ng = m - ncast
    nfl = 1
    for f in kfloor:
        nfl = max(nfl, f + 1)
    if ng:
        wx, wz = x1 - x0, z1 - z0
        cell = np.sqrt(_CELL_SPEAKERS * max(wx * wz, 1.0) * nfl / ng)
        cell = max(cell, wx / (_MAX_CELLS - 1), wz / (_MAX_CELLS - 1), 1e-3)
        nx, nz = int(wx / cell) + 1, int(wz / cell) + 1
    else:
        x0 = z0 = 0.0
        cell = 1.0
        nx = nz = 1
    starts = np.zeros(nfl * nz * nx + 1, np.int64)
    cell_of = np.full(m, -1, np.int64)
    for j in range(m):
        if not cast[j]:
            cx = min(max(int(np.floor((spos[j, 0] - x0) / cell)), 0), nx - 1)
            cz = min(max(int(np.floor((spos[j, 1] - z0) / cell)), 0), nz - 1)
            cell_of[j] = (kfloor[skey[j]] * nz + cz) * nx + cx
            starts[cell_of[j] + 1] += 1
    for c in range(1, starts.size):
        starts[c] += starts[c - 1]
    order = np.empty(ng, np.int64)
    fill = starts[:-1].copy()
    for j in range(m):
        if cell_of[j] >= 0:
            order[fill[cell_of[j]]] = j
            fill[cell_of[j]] += 1
    # each listener: its candidates, stage by stage (members and broadcast, then a ring of
    # cells at a time), scored in one place
    ids = np.empty((n, k), np.int64)
    gains = np.empty((n, k), np.float32)
    bs = np.empty(k, np.float32)
    bi = np.empty(k, np.int64)
    bg = np.empty(k, np.float32)
    seen = np.full(m, -1, np.int64)
    cand = np.empty(m, np.int64)
    pairs = 0
    for i in range(n):
        lx, lz, key, me = lpos[i, 0], lpos[i, 1], lkey[i], lid[i]
        to_remote = key == remote
        kept = 0
        nc = 0
        for a in range(prev.shape[1]):  # the members first: one left out would rank 6 dB up
            p = prev[i, a]
            if p >= 0 and col_of[p] >= 0 and seen[col_of[p]] != i:
                seen[col_of[p]] = i
                cand[nc] = col_of[p]
                nc += 1
        members = nc
        for c in range(ncast):
            j = casts[c]
            if seen[j] != i:
                cand[nc] = j
                nc += 1
        f = kfloor[key]
        hall = f >= 0 and ng > 0
        cx = min(max(int(np.floor((lx - x0) / cell)), 0), nx - 1)
        cz = min(max(int(np.floor((lz - z0) / cell)), 0), nz - 1)
        base = max(f, 0) * nz * nx
        r = 0
        while True:
            if hall:  # ring r: the cells r away from the listener's (in the grid)
                for z in range(max(cz - r, 0), min(cz + r, nz - 1) + 1):
                    row = base + z * nx
                    edge = z == cz - r or z == cz + r
                    a = max(cx - r, 0) if edge else cx - r
                    while a <= min(cx + r, nx - 1):
                        if a >= 0:
                            for o in range(starts[row + a], starts[row + a + 1]):
                                j = order[o]
                                if seen[j] != i:
                                    cand[nc] = j
                                    nc += 1
                        a += 1 if edge else 2 * r
                        if r == 0:
                            break
            for c in range(nc):
                j = cand[c]
                sk = skey[j]
                g = _gain(rule[key, sk], to_remote, lx, lz, me, spos[j, 0], spos[j, 1], sid[j],
                          mega[j], kmodel[sk], kpar[sk, REF], kpar[sk, ROLLOFF],
                          kpar[sk, NEG_ROLLOFF], kpar[sk, MAX_DISTANCE], kpar[sk, SPAN], pa,
                          mega_gain)  # fmt: skip
                s = _score(g, c < members, enter, leave, bonus)
                kept = _offer(s, sid[j], g, bs, bi, bg, kept)
            pairs += nc
            nc = 0
            members = 0
            if not hall:
                break
            r += 1
            # the least distance from here to a cell outside the square of rings < r
            dmin = np.inf
            if cx - r >= 0:
                dmin = min(dmin, lx - (x0 + (cx - r + 1) * cell))
            if cx + r < nx:
                dmin = min(dmin, x0 + (cx + r) * cell - lx)
            if cz - r >= 0:
                dmin = min(dmin, lz - (z0 + (cz - r + 1) * cell))
            if cz + r < nz:
                dmin = min(dmin, z0 + (cz + r) * cell - lz)
            if dmin == np.inf:
                break  # every cell seen
            dlo = max(dmin * (1.0 - 1e-5) - 1e-4, 0.0)  # below any float32 distance that far
            b = kbound[key, min(int(dlo / step), kbound.shape[1] - 1)]
            if b <= enter or (kept == k and b < bs[k - 1]):
                break  # nobody farther can enter, or beat the k-th
        _write(i, bi, bg, kept, ids, gains)
    return ids, gains, pairs


@_jit
def diff_rows(t_ids, t_gains, n_ids, n_gains, min_db, floor):
    """Each row's told (``t_*``) and new (``n_*``) kept speakers (ids ascending, -1 padded at
    the end) merged: the new ids to tell (new, or a gain moved by ``min_db`` or more, in dB of
    float64 gains floored at ``floor``), the told ids gone, and the gains known after.

    Returns ``(rows, add_ids, add_gains, add_end, gone_ids, gone_end, after_gains)``: the rows
    with something to tell, ascending; each one's add and gone entries in the flat arrays end at
    ``add_end`` / ``gone_end`` (cumulative); ``after_gains`` as ``n_gains`` but a gain not told
    keeps the told value (0 where padded).
    """
    n, k = n_ids.shape
    kt = t_ids.shape[1]
    after = np.zeros((n, k), np.float32)
    rows = np.empty(n, np.int64)
    add_ids = np.empty(n * k, np.int64)
    add_gains = np.empty(n * k, np.float32)
    add_end = np.empty(n, np.int64)
    gone_ids = np.empty(n * kt, np.int64)
    gone_end = np.empty(n, np.int64)
    nr = 0
    na = 0
    ng = 0
    lo = np.float64(floor)
    for r in range(n):
        nt = 0
        while nt < kt and t_ids[r, nt] >= 0:
            nt += 1
        a0 = na
        g0 = ng
        i = 0
        for j in range(k):
            nid = n_ids[r, j]
            if nid < 0:
                break
            while i < nt and t_ids[r, i] < nid:
                gone_ids[ng] = t_ids[r, i]
                ng += 1
                i += 1
            g = n_gains[r, j]
            if i < nt and t_ids[r, i] == nid:
                before = t_gains[r, i]
                i += 1
                d = 20.0 * np.log10(max(np.float64(g), lo)) - 20.0 * np.log10(
                    max(np.float64(before), lo)
                )
                tell = abs(d) >= min_db
            else:
                before = np.float32(0.0)
                tell = True
            if tell:
                add_ids[na] = nid
                add_gains[na] = g
                na += 1
                after[r, j] = g
            else:
                after[r, j] = before
        while i < nt:
            gone_ids[ng] = t_ids[r, i]
            ng += 1
            i += 1
        if na > a0 or ng > g0:
            rows[nr] = r
            add_end[nr] = na
            gone_end[nr] = ng
            nr += 1
    return (
        rows[:nr],
        add_ids[:na],
        add_gains[:na],
        add_end[:nr],
        gone_ids[:ng],
        gone_end[:nr],
        after,
    )
