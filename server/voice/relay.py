"""The voice relay of one instance: who is talking, who hears whom, and the frames in flight.

The server never decodes, stores or logs a voice packet. A frame from a speaker is kept (packed
once, as the ``[from_id, seq, data]`` element of a VOICE_FRAME) until the next flush, at most
20 ms later; each flush writes every listener ONE message holding the frames of the speakers it
is subscribed to, synchronously, like the snapshots. Audio never waits for a slow listener:

- a frame older than ``MAX_AGE`` (200 ms) at a flush (the event loop stalled) is dropped;
- a listener whose socket buffer has not drained for ``MAX_AGE`` gets nothing until it does
  (what it would get would be late; counted as dropped), and nobody else notices.

Subscriptions are recomputed at 10 Hz from the instance's numpy state (``world.audibility``);
listeners are told the changes (AUDIO_SUBS with gains). While a briefing runs, the same update
gives every avatar listener the gain of its narration (``world.audibility.source_gains`` from the
presenter's spot), told in AUDIO_SUBS's ``stage`` when it moves by ``STAGE_MIN_DB`` or more.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import msgpack
import numba
import numpy as np

from server.errors import PeerError
from server.protocol.codes import CloseCode, MsgType
from server.protocol.messages import AudioSubs, VoiceHeard
from world.audibility import (
    Changes,
    K,
    Listeners,
    Selection,
    Speakers,
    ZoneTable,
    audible,
    changes,
    db,
    source_gains,
)

if TYPE_CHECKING:
    from server.instance import Instance
    from server.session import Session

__all__ = [
    "Counters",
    "Room",
    "MAX_PACKET",
    "MAX_PER_SECOND",
    "FLOOD_PER_SECOND",
    "MAX_AGE",
    "FLUSH_SECONDS",
    "UPDATE_HZ",
    "TALK_LINGER",
    "HEARD_IDS_MAX",
    "STAGE_MIN_DB",
    "pack_batch",
    "encode_subs",
]

MAX_PACKET = 400  # bytes of Opus in one frame; 20 ms at 24 kbit/s is about 60
MAX_PER_SECOND = 60  # frames a second kept from one speaker (50 at 20 ms)
FLOOD_PER_SECOND = 120  # frames a second that close the connection
MAX_AGE = 0.2  # seconds: audio older than this is dropped
FLUSH_SECONDS = 0.02
UPDATE_HZ = 10
TALK_LINGER = 1.0  # a speaker stays a candidate this long after its last talking frame
STAFF_ROLES = ("staff", "host")
HEARD_IDS_MAX = 64  # avatar ids a speaker is told in VOICE_HEARD (the count is always whole)
STAGE_MIN_DB = 1.0  # the narration's gain is told again when it moves this much (as a voice's)

_packb = msgpack.Packer(use_bin_type=True).pack
_HEAD = bytes((0x92, int(MsgType.VOICE_FRAME)))  # [VOICE_FRAME, frames]


def _unblocked(sel: Selection, blocked: np.ndarray, lslots: np.ndarray) -> Selection:
    """``sel`` without the speakers each avatar listener (the first rows) blocked, or was
    blocked by; rows stay ascending with -1 padding at the end."""
    n = len(lslots)
    ids = sel.ids.copy()
    gains = sel.gains.copy()
    head = ids[:n]
    drop = (head >= 0) & blocked[lslots[:, None], np.maximum(head, 0)]
    if not drop.any():
        return sel
    big = np.iinfo(np.int64).max
    keyed = np.where(drop | (head < 0), big, head)
    order = np.argsort(keyed, axis=1, kind="stable")
    head_sorted = np.take_along_axis(keyed, order, axis=1)
    g = np.take_along_axis(np.where(drop, 0.0, gains[:n]), order, axis=1)
    head_sorted[head_sorted == big] = -1
    ids[:n] = head_sorted
    gains[:n] = np.where(head_sorted < 0, 0.0, g)
    return Selection(ids, gains)


@numba.njit(cache=True, nogil=True)
def _put_uint(buf: np.ndarray, o: int, v: int) -> int:
    """MessagePack's smallest form of the unsigned int ``v`` at ``buf[o:]``; the end."""
    if v < 0x80:
        buf[o] = v
        return o + 1
    if v <= 0xFF:
        buf[o] = 0xCC
        buf[o + 1] = v
        return o + 2
    if v <= 0xFFFF:
        buf[o] = 0xCD
        n = 2
    elif v <= 0xFFFFFFFF:
        buf[o] = 0xCE
        n = 4
    else:
        buf[o] = 0xCF
        n = 8
    for b in range(n):
        buf[o + n - b] = (v >> (8 * b)) & 0xFF
    return o + 1 + n


@numba.njit(cache=True, nogil=True)
def _put_array(buf: np.ndarray, o: int, n: int) -> int:
    if n < 16:
        buf[o] = 0x90 | n
        return o + 1
    if n <= 0xFFFF:
        buf[o] = 0xDC
        buf[o + 1] = n >> 8
        buf[o + 2] = n & 0xFF
        return o + 3
    buf[o] = 0xDD
    for b in range(4):
        buf[o + 4 - b] = (n >> (8 * b)) & 0xFF
    return o + 5


@numba.njit(cache=True, nogil=True)
def _encode_subs(code, add_ids, add_bits, add_off, gone_ids, gone_off):
    """Every row's ``AudioSubs(add=[[id, gain], ...], remove=[...], stage=None).encode()``
    (MessagePack: ids as unsigned ints in their smallest form, gains as float64 from their
    bits ``add_bits``) back to back in one buffer; row ``c`` is ``buf[off[c]:off[c + 1]]``."""
    nr = len(add_off) - 1
    size = nr * 16 + len(add_ids) * 19 + len(gone_ids) * 9
    buf = np.empty(size, np.uint8)
    off = np.empty(nr + 1, np.int64)
    o = 0
    for c in range(nr):
        off[c] = o
        buf[o] = 0x94
        o = _put_uint(buf, o + 1, code)
        a0, a1 = add_off[c], add_off[c + 1]
        o = _put_array(buf, o, a1 - a0)
        for a in range(a0, a1):
            buf[o] = 0x92
            o = _put_uint(buf, o + 1, add_ids[a])
            buf[o] = 0xCB
            bits = add_bits[a]
            for b in range(8):
                buf[o + 8 - b] = (bits >> np.uint64(8 * b)) & np.uint64(0xFF)
            o += 9
        g0, g1 = gone_off[c], gone_off[c + 1]
        o = _put_array(buf, o, g1 - g0)
        for g in range(g0, g1):
            o = _put_uint(buf, o, gone_ids[g])
        buf[o] = 0xC0  # stage: nil
        o += 1
    off[nr] = o
    return buf[:o], off


_SUBS_CODE = int(MsgType.AUDIO_SUBS)


def encode_subs(ch: Changes) -> tuple[bytes, list[int]]:
    """The AUDIO_SUBS message of each changed row (``stage`` nil), as one bytes and the
    offsets of each message in it: row ``ch.rows[c]``'s is ``data[off[c]:off[c + 1]]``, the
    bytes of ``AudioSubs(add, remove).encode()``."""
    buf, off = _encode_subs(
        _SUBS_CODE,
        np.ascontiguousarray(ch.add_ids, dtype=np.int64),
        np.ascontiguousarray(ch.add_gains, dtype=np.float64).view(np.uint64),
        np.ascontiguousarray(ch.add_off, dtype=np.int64),
        np.ascontiguousarray(ch.gone_ids, dtype=np.int64),
        np.ascontiguousarray(ch.gone_off, dtype=np.int64),
    )
    return buf.tobytes(), off.tolist()


_F64 = struct.Struct(">d")


def with_stage(msg: bytes, stage: float) -> bytes:
    """An :func:`encode_subs` message with ``stage`` in place of its nil."""
    return msg[:-1] + b"\xcb" + _F64.pack(stage)


_HEAD_U8 = np.frombuffer(_HEAD, np.uint8)


@numba.njit(cache=True, nogil=True)
def _pack_rows(subs, pidx, part_buf, part_off, part_count, head):
    """Each listener's VOICE_FRAME (``pack_batch`` of its speakers' frames), back to back.

    ``subs[row]``: the speaker slots of a listener (padded with a slot that has no frames);
    ``pidx[slot]``: the index of that speaker's joined frames (``part_buf[part_off[i]:
    part_off[i + 1]]``, ``part_count[i]`` of them) or -1; speakers go in index order (the
    order they first spoke since the last flush). Returns the rows that get frames, each one's
    message as ``buf[off[j]:off[j + 1]]`` and its number of frames."""
    n, k = subs.shape
    idx = np.empty(k, np.int64)
    rows = np.empty(n, np.int64)
    nframes = np.empty(n, np.int64)
    size = 0
    nr = 0
    for r in range(n):
        total = 0
        nbytes = 0
        for c in range(k):
            i = pidx[subs[r, c]]
            if i >= 0:
                total += part_count[i]
                nbytes += part_off[i + 1] - part_off[i]
        if total:
            rows[nr] = r
            nframes[nr] = total
            nr += 1
            size += len(head) + 3 + nbytes
    buf = np.empty(size, np.uint8)
    off = np.empty(nr + 1, np.int64)
    o = 0
    for j in range(nr):
        r = rows[j]
        off[j] = o
        m = 0
        for c in range(k):  # this row's indices, ascending (insertion sort of at most k)
            i = pidx[subs[r, c]]
            if i >= 0:
                t = m
                while t > 0 and idx[t - 1] > i:
                    idx[t] = idx[t - 1]
                    t -= 1
                idx[t] = i
                m += 1
        buf[o : o + len(head)] = head
        o += len(head)
        total = nframes[j]
        if total < 16:
            buf[o] = 0x90 | total
            o += 1
        else:
            buf[o] = 0xDC
            buf[o + 1] = (total >> 8) & 0xFF
            buf[o + 2] = total & 0xFF
            o += 3
        for t in range(m):
            i = idx[t]
            a, b = part_off[i], part_off[i + 1]
            buf[o : o + b - a] = part_buf[a:b]
            o += b - a
    off[nr] = o
    return rows[:nr], off, nframes[:nr], buf[:o]


def pack_batch(elems: list[bytes]) -> bytes:
    """``VoiceFrame(frames).encode()`` from frames packed once each (shared by all listeners)."""
    n = len(elems)
    head = bytes((0x90 | n,)) if n < 16 else b"\xdc" + struct.pack(">H", n)
    return _HEAD + head + b"".join(elems)


@dataclass(slots=True)
class Counters:
    """What the relay did, for /metrics (counts only: no voice, no names)."""

    frames_in: int = 0
    frames_forwarded: int = 0  # frame copies written to listeners
    batches: int = 0  # VOICE_FRAME messages written
    subs_sent: int = 0  # AUDIO_SUBS messages written
    heard_sent: int = 0  # VOICE_HEARD messages written
    dropped_big: int = 0
    dropped_rate: int = 0
    dropped_muted: int = 0
    dropped_quiet: int = 0
    dropped_no_avatar: int = 0
    dropped_late: int = 0  # older than MAX_AGE at the flush
    dropped_slow: int = 0  # a listener's buffer had not drained for MAX_AGE
    floods: int = 0

    def gauges(self) -> dict[str, float]:
        return {f"emachi_voice_{f.name}": float(getattr(self, f.name)) for f in fields(self)}


class Room:
    """The voice state of one instance (arrays by avatar slot)."""

    def __init__(
        self, instance: Instance, table: ZoneTable, counters: Counters, k: int = K
    ) -> None:
        cap = instance.capacity
        self.instance = instance
        self.table = table
        self.counters = counters
        self.k = k
        self.talking_until = np.zeros(cap, np.float64)
        self.megaphone = np.zeros(cap, bool)
        self.muted = np.zeros(cap, bool)
        self.key = np.full(cap, -1, np.int32)  # zone key at the last update
        self.told = Selection.empty(cap, k)
        self.window_start = np.zeros(cap, np.float64)
        self.window_count = np.zeros(cap, np.int64)
        # who gets each speaker's frames, from the last update: ``subs[row]`` the speakers of
        # listener ``subs_of[row]`` (``cap`` where none), ``nsubs[slot]`` a speaker's listeners
        self.subs = np.full((0, k), cap, np.intp)
        self.subs_of: list[Session] = []
        self.nsubs = np.zeros(cap + 1, np.int64)
        self._pidx = np.full(cap + 1, -1, np.int64)  # flush scratch: slot -> pending index
        self.pending: dict[int, list[tuple[float, bytes]]] = {}
        # watch-only viewers hearing this room's stage: their told ids and gains
        self.remote_told: dict[Session, Selection] = {}
        self.drained_at: dict[Session, float] = {}
        # what each speaker was last told of who hears them: (count, avatar ids)
        self.heard_told: dict[int, tuple[int, tuple[int, ...]]] = {}
        # the narration's gain each avatar listener was last told (NaN: not told on this socket)
        self.stage_told = np.full(cap, np.nan, np.float32)
        # memoryviews of the arrays ``receive`` reads and writes one element at a time, 50 times
        # a second per talker (half the cost of indexing the arrays; written in place only)
        self._window_start: Any = self.window_start.data
        self._window_count: Any = self.window_count.data
        self._muted: Any = self.muted.data
        self._key: Any = self.key.data
        self._quiet: Any = np.ascontiguousarray(table.quiet).data
        self._talking_until: Any = self.talking_until.data
        self._megaphone: Any = self.megaphone.data

    # -- slots in and out ----------------------------------------------------------------------

    def reset(self, slot: int) -> None:
        """A slot was taken or freed, or its client reconnected: it is told everything afresh."""
        self.talking_until[slot] = 0.0
        self.megaphone[slot] = False
        self.muted[slot] = False
        self.told.ids[slot] = -1
        self.told.gains[slot] = 0.0
        self.pending.pop(slot, None)
        self.heard_told.pop(slot, None)
        self.stage_told[slot] = np.nan

    def forget(self, session: Session) -> None:
        self.remote_told.pop(session, None)
        self.drained_at.pop(session, None)
        rows = [i for i, s in enumerate(self.subs_of) if s is session]
        if rows:
            cap = self.instance.capacity
            for spk in self.subs[rows].reshape(-1).tolist():
                if spk != cap:
                    self.nsubs[spk] -= 1
            self.subs[rows] = cap

    # -- inbound -------------------------------------------------------------------------------

    def receive(
        self, session: Session, seq: int, talking: bool, megaphone: bool, data: bytes, now: float
    ) -> None:
        """Take one VOICE frame of an avatar of this room: check the limits, keep it for the flush.

        Raises:
            PeerError: FLOOD past ``FLOOD_PER_SECOND`` frames in a second.
        """
        c = self.counters
        slot = session.avatar_id
        c.frames_in += 1
        count = self._window_count
        if now - self._window_start[slot] >= 1.0:
            self._window_start[slot] = now
            n = 1
        else:
            n = count[slot] + 1
        count[slot] = n
        if n > FLOOD_PER_SECOND:
            c.floods += 1
            raise PeerError(
                CloseCode.FLOOD, f"more than {FLOOD_PER_SECOND} voice frames in a second"
            )
        if n > MAX_PER_SECOND:
            c.dropped_rate += 1
            return
        if len(data) > MAX_PACKET:
            c.dropped_big += 1
            return
        if self._muted[slot]:
            c.dropped_muted += 1
            return
        key = self._key[slot]
        if key < 0:  # not placed by an update yet: find the zone now
            key = self._key_of(slot)
        if self._quiet[key]:
            c.dropped_quiet += 1
            return
        if not talking:
            self._talking_until[slot] = 0.0
            return
        self._talking_until[slot] = now + TALK_LINGER
        self._megaphone[slot] = megaphone and session.role in STAFF_ROLES
        frames = self.pending.get(slot)
        if frames is None:
            frames = self.pending[slot] = []
        frames.append((now, _packb([slot, seq, data])))

    def _key_of(self, slot: int) -> int:
        c = self.instance.crowd
        fl = c.floor[slot : slot + 1]
        return int(self.table.locate(fl, c.pos[slot : slot + 1])[0])

    # -- 10 Hz: who hears whom -----------------------------------------------------------------

    def update(
        self,
        now: float,
        watchers: list[Session],
        narration: tuple[int, float, float] | None = None,
    ) -> bool:
        """Recompute every listener's speakers; tell those whose set or gains changed.

        ``watchers`` (watch-only viewers) listen as remote listeners: the stage speakers only.
        ``narration``: the briefing's narration as a source ``(zone key, x, z)``, or None when
        none plays; each avatar listener is told its gain when that moves (watch-only viewers
        hear it plainly on their page).
        Returns whether someone talks on a stage here (the service picks the room watchers hear).
        """
        inst = self.instance
        c = inst.crowd
        sessions = inst.sessions
        slots = np.fromiter(sessions.keys(), dtype=np.intp, count=len(sessions))
        if slots.size:
            fl = c.floor[slots]
            self.key[slots] = self.table.locate(fl, c.pos[slots])
        listen: list[Session] | None = None
        stage: dict[Session, float] = {}
        if narration is not None:
            listen = [s for s in sessions.values() if s.connected]
            stage = self._stage_news(listen, narration)
        talking = slots[(self.talking_until[slots] > now) & ~self.muted[slots]]
        if (
            not talking.size
            and not self.heard_told
            and not (self.told.ids >= 0).any()
            and not any((t.ids >= 0).any() for t in self.remote_told.values())
        ):
            # a quiet hall, and nobody was told of anyone: nothing can change (the most
            # common case, and the selection is the costly part of an update)
            self._unsubscribe()
            self._tell_stage(stage)
            return False
        speakers = Speakers.of(talking, c.pos[talking], self.key[talking], self.megaphone[talking])
        stage_talks = bool(np.isin(speakers.key, self._stage_keys()).any())
        if listen is None:
            listen = [s for s in sessions.values() if s.connected]
        lslots = np.fromiter((s.avatar_id for s in listen), dtype=np.intp, count=len(listen))
        remote = [s for s in watchers if s.connected]
        cap = inst.capacity
        ids = np.concatenate([lslots, cap + np.arange(len(remote))]).astype(np.int64)
        pos = np.concatenate([c.pos[lslots], np.zeros((len(remote), 2), np.float32)])
        keys = np.concatenate([self.key[lslots], np.full(len(remote), self.table.remote, np.int32)])
        empty = Selection.empty(0, self.k)
        remote_told = [self.remote_told.get(s, Selection.empty(1, self.k)) for s in remote]
        told = Selection(
            np.concatenate([self.told.ids[lslots], *[t.ids for t in remote_told], empty.ids]),
            np.concatenate([self.told.gains[lslots], *[t.gains for t in remote_told], empty.gains]),
        )
        sel = audible(self.table, Listeners.of(ids, pos, keys), speakers, told.ids, self.k)
        if inst.blocked is not None and lslots.size:
            sel = _unblocked(sel, inst.blocked, lslots)
        out, after = changes(told, sel)
        n = len(lslots)
        self.told.ids[lslots] = after.ids[:n]
        self.told.gains[lslots] = after.gains[:n]
        for j, s in enumerate(remote):
            self.remote_told[s] = Selection(
                after.ids[n + j : n + j + 1], after.gains[n + j : n + j + 1]
            )
        everyone = listen + remote
        if len(out):
            data, off = encode_subs(out)
            sent = 0
            for at, r in enumerate(out.rows.tolist()):
                s = everyone[r]
                msg = data[off[at] : off[at + 1]]
                if stage:
                    g = stage.pop(s, None)
                    if g is not None:
                        msg = with_stage(msg, g)
                if s.send(msg):
                    sent += 1
            self.counters.subs_sent += sent
        self._tell_stage(stage)
        self._subscribe(after.ids, everyone, lslots)
        return stage_talks

    def _subscribe(self, ids: np.ndarray, everyone: list[Session], lslots: np.ndarray) -> None:
        """Note who gets each speaker's frames (``ids``: each listener's kept speakers, the
        avatar listeners first, then the remote ones), and tell the speakers whose listeners
        changed (:meth:`_tell_speakers`)."""
        cap = self.instance.capacity
        self.subs = np.where(ids >= 0, ids, cap).astype(np.intp)  # cap: nobody
        self.subs_of = everyone
        r, col = np.nonzero(ids >= 0)
        spk = ids[r, col]
        self.nsubs = np.bincount(spk, minlength=cap + 1)[: cap + 1]
        self.nsubs[cap] = 0
        n = len(lslots)
        big = np.iinfo(np.int64).max
        lid = np.full(r.size, big, np.int64)  # remote listeners: counted, not named
        av = r < n
        lid[av] = lslots[r[av]]
        order = np.lexsort((lid, spk))
        spk, lid = spk[order], lid[order]
        heard: dict[int, tuple[int, tuple[int, ...]]] = {}
        if spk.size:
            cuts = np.flatnonzero(np.diff(spk)) + 1
            starts = np.r_[0, cuts]
            ends = np.r_[cuts, spk.size]
            avatars = np.add.reduceat((lid != big).astype(np.int64), starts)
            for who, a, b, m in zip(
                spk[starts].tolist(), starts.tolist(), ends.tolist(), avatars.tolist(), strict=True
            ):
                heard[who] = (b - a, tuple(lid[a : a + min(m, HEARD_IDS_MAX)].tolist()))
        self._tell_speakers(heard)

    def _unsubscribe(self) -> None:
        self.subs = np.full((0, self.k), self.instance.capacity, np.intp)
        self.subs_of = []
        self.nsubs[:] = 0

    def _stage_news(
        self, listen: list[Session], narration: tuple[int, float, float]
    ) -> dict[Session, float]:
        """The narration's gain for each avatar listener whose gain moved by ``STAGE_MIN_DB`` or
        more since it was last told (or who was never told on this socket), noted as told.

        One vectorised pass over the listeners (:func:`world.audibility.source_gains`); only
        the listeners to tell are looked at one by one."""
        if not listen:
            return {}
        lslots = np.fromiter((s.avatar_id for s in listen), dtype=np.intp, count=len(listen))
        key, x, z = narration
        lis = Listeners.of(lslots, self.instance.crowd.pos[lslots], self.key[lslots])
        before = self.stage_told[lslots]
        g = source_gains(self.table, lis, key, (x, z), before)
        floor = np.float32(1e-9)  # 0 as -180 dB: 0 to 0 is no move, 0 to a gain is one
        moved = np.abs(db(np.maximum(g, floor)) - db(np.maximum(before, floor))) >= STAGE_MIN_DB
        moved |= np.isnan(before)
        rows = np.flatnonzero(moved)
        if not rows.size:
            return {}
        self.stage_told[lslots[rows]] = g[rows]
        told = np.round(g[rows].astype(np.float64), 4).tolist()
        return {listen[r]: v for r, v in zip(rows.tolist(), told, strict=True)}

    def _tell_stage(self, stage: dict[Session, float]) -> None:
        """AUDIO_SUBS with only the narration's gain, to those not told it with their subs
        (encoded once per gain: at a briefing's start the whole auditorium is told 0.5)."""
        frames: dict[float, bytes] = {}
        for s, g in stage.items():
            msg = frames.get(g)
            if msg is None:
                msg = frames[g] = AudioSubs(add=[], remove=[], stage=g).encode()
            if s.send(msg):
                self.counters.subs_sent += 1

    def _tell_speakers(self, heard: dict[int, tuple[int, tuple[int, ...]]]) -> None:
        """VOICE_HEARD to each speaker whose listeners changed (the "who hears you" indicator):
        ``heard`` has each speaker's (count, avatar ids ascending, at most ``HEARD_IDS_MAX``)."""
        told = self.heard_told
        sessions = self.instance.sessions
        for slot in set(told) | set(heard):
            value = heard.get(slot, (0, ()))
            if told.get(slot, (0, ())) == value:
                continue
            if value[0]:
                told[slot] = value
            else:
                told.pop(slot, None)
            s = sessions.get(slot)
            msg = VoiceHeard(count=value[0], ids=list(value[1])).encode()
            if s is not None and s.connected and s.send(msg):
                self.counters.heard_sent += 1

    def drop_remote(self, watchers: list[Session]) -> None:
        """The watchers now hear another room: tell them this one's speakers are gone."""
        for s in watchers:
            told = self.remote_told.pop(s, None)
            if told is not None:
                gone = [int(i) for i in told.ids[0].tolist() if i >= 0]
                if gone and s.send(AudioSubs(add=[], remove=gone).encode()):
                    self.counters.subs_sent += 1
            self.forget(s)

    def _stage_keys(self) -> np.ndarray:
        return np.flatnonzero(self.table.rule[self.table.remote] != 0)

    # -- every 20 ms: the frames out -----------------------------------------------------------

    def flush(self, now: float) -> None:
        """Write each listener one VOICE_FRAME with what its speakers said since the last flush.

        The frames of a speaker are joined once; each distinct set of speakers with frames is
        packed once, and each listener gets its set's batch (speakers in the order they first
        spoke since the last flush, each one's frames in order)."""
        if not self.pending:
            return
        c = self.counters
        nsubs = self.nsubs
        pidx = self._pidx
        parts: list[bytes] = []
        counts: list[int] = []
        used: list[int] = []
        for spk, frames in self.pending.items():
            nsub = int(nsubs[spk])
            if not nsub:
                continue
            fresh = [e for t, e in frames if now - t <= MAX_AGE]
            c.dropped_late += (len(frames) - len(fresh)) * nsub
            if not fresh:
                continue
            pidx[spk] = len(parts)
            used.append(spk)
            parts.append(b"".join(fresh))
            counts.append(len(fresh))
        self.pending.clear()
        if not parts:
            return
        try:
            joined = b"".join(parts)
            part_off = np.zeros(len(parts) + 1, np.int64)
            np.cumsum([len(x) for x in parts], out=part_off[1:])
            rows, off, frames_of, buf = _pack_rows(
                self.subs,
                pidx,
                np.frombuffer(joined, np.uint8),
                part_off,
                np.asarray(counts, np.int64),
                _HEAD_U8,
            )
        finally:
            pidx[used] = -1
        if not rows.size:
            return
        data = buf.tobytes()
        offs = off.tolist()
        drained = self.drained_at
        everyone = self.subs_of
        batch_n = written = 0
        for at, (i, n) in enumerate(zip(rows.tolist(), frames_of.tolist(), strict=True)):
            s = everyone[i]
            t = s.writable()  # s.connected and s.buffered(), with one look at the socket
            if t is None:
                continue
            if t.get_write_buffer_size() == 0:
                drained[s] = now
            elif now - drained.get(s, now) > MAX_AGE:
                c.dropped_slow += n
                continue
            else:
                drained.setdefault(s, now)
            if s.send(data[offs[at] : offs[at + 1]]):
                batch_n += 1
                written += n
        c.batches += batch_n
        c.frames_forwarded += written


def _warm() -> None:
    """Compile (or load from the cache) the encoder, so that no tick pays for it."""
    ch = Changes(
        np.zeros(1, np.int64),
        np.array([1], np.int64),
        np.array([0.5]),
        np.array([0, 1], np.int64),
        np.array([2], np.int64),
        np.array([0, 1], np.int64),
    )
    encode_subs(ch)
    part = _packb([0, 0, b""])
    pidx = np.array([0, -1], np.int64)
    _pack_rows(
        np.zeros((1, 2), np.intp),
        pidx,
        np.frombuffer(part, np.uint8),
        np.array([0, len(part)], np.int64),
        np.ones(1, np.int64),
        _HEAD_U8,
    )


_warm()
