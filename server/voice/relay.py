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
import numpy as np

from server.errors import PeerError
from server.protocol.codes import CloseCode, MsgType
from server.protocol.messages import AudioSubs, VoiceHeard
from world.audibility import (
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
        self.listeners_of: dict[int, list[Session]] = {}
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
        for subs in self.listeners_of.values():
            if session in subs:
                subs.remove(session)

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
            self.listeners_of = {}
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
        for ch in out:
            s = everyone[ch.row]
            msg = AudioSubs(
                add=[[i, g] for i, g in ch.add], remove=ch.remove, stage=stage.pop(s, None)
            ).encode()
            if s.send(msg):
                self.counters.subs_sent += 1
        self._tell_stage(stage)
        # who gets each speaker's frames
        r, col = np.nonzero(after.ids >= 0)
        spk = after.ids[r, col]
        order = np.argsort(spk, kind="stable")
        r, spk = r[order], spk[order]
        heard: dict[int, list[Session]] = {}
        if spk.size:
            cuts = np.flatnonzero(np.diff(spk)) + 1
            firsts = spk[np.r_[0, cuts]].tolist()
            for who, rows in zip(firsts, np.split(r, cuts), strict=True):
                heard[who] = [everyone[i] for i in rows.tolist()]
        self.listeners_of = heard
        self._tell_speakers(heard)
        return stage_talks

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

    def _tell_speakers(self, heard: dict[int, list[Session]]) -> None:
        """VOICE_HEARD to each speaker whose listeners changed (the "who hears you" indicator)."""
        told = self.heard_told
        sessions = self.instance.sessions
        for slot in set(told) | set(heard):
            subs = heard.get(slot, ())
            ids = sorted(s.avatar_id for s in subs if s.avatar_id >= 0 and s.mode != "watch")
            value = (len(subs), tuple(ids[:HEARD_IDS_MAX]))
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
        """Write each listener one VOICE_FRAME with what its speakers said since the last flush."""
        if not self.pending:
            return
        c = self.counters
        out: dict[Session, list[bytes]] = {}
        for spk, frames in self.pending.items():
            subs = self.listeners_of.get(spk)
            if not subs:
                continue
            fresh = [e for t, e in frames if now - t <= MAX_AGE]
            c.dropped_late += (len(frames) - len(fresh)) * len(subs)
            if not fresh:
                continue
            for s in subs:
                got = out.get(s)
                if got is None:
                    out[s] = list(fresh)
                else:
                    got.extend(fresh)
        self.pending.clear()
        drained = self.drained_at
        for s, elems in out.items():
            if not s.connected:
                continue
            if s.buffered() == 0:
                drained[s] = now
            elif now - drained.get(s, now) > MAX_AGE:
                c.dropped_slow += len(elems)
                continue
            else:
                drained.setdefault(s, now)
            if s.send(pack_batch(elems)):
                c.batches += 1
                c.frames_forwarded += len(elems)
