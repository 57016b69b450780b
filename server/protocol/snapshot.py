"""Snapshot delta codec: what changed in a client's view since the snapshot it acknowledged.

The server quantises its avatars (:func:`quantize`: floor, yaw byte, x and z in cm), keeps
for each client the quantised view it sent at each recent tick, and for the next tick
encodes the view against the one the client acknowledged (:func:`encode_sections`; the server
runs :func:`server.protocol.batch.encode_batch`, the same for every viewer of a tick at once). The
client rebuilds the
view with :class:`SnapshotState`. Sections (``docs/architecture.md``, "Snapshots"),
little-endian records packed back to back, sorted by id:

======================  ==============================================  =====
section                 record                                          bytes
======================  ==============================================  =====
``full``                id u16, floor u8, yaw u8, x i32 cm, z i32 cm    12
``move``                id u16, dx i8, dz i8                            4
``turn_move``           id u16, dx i8, dz i8, yaw u8                    5
``turn``                id u16, yaw u8                                  3
``left``                id u16                                          2
======================  ==============================================  =====

An avatar unchanged since the base is not sent. One that is new to the view, changed
floor, or moved more than an int8 of centimetres on an axis is sent in ``full``.

Pure numpy; quantised states are ``int32`` arrays of shape ``(n, 4)`` with the columns
:data:`FLOOR`, :data:`YAW`, :data:`X`, :data:`Z`, rows matching a sorted ``uint16`` id array.
"""

from __future__ import annotations

import math

import numpy as np

from server.protocol.codes import CloseCode
from server.protocol.messages import ProtocolError, Snapshot

__all__ = [
    "QSTATE_DTYPE",
    "FLOOR",
    "YAW",
    "X",
    "Z",
    "HISTORY_TICKS",
    "FULL_DTYPE",
    "MOVE_DTYPE",
    "TURN_MOVE_DTYPE",
    "TURN_DTYPE",
    "LEFT_DTYPE",
    "Sections",
    "quantize",
    "encode_sections",
    "SnapshotState",
]

QSTATE_DTYPE = np.dtype(np.int32)
FLOOR, YAW, X, Z = 0, 1, 2, 3
# The client keeps the states of at least this many recent ticks; the server may use as a
# base only an acknowledged tick newer than ``tick - HISTORY_TICKS``, else it sends full.
HISTORY_TICKS = 64

FULL_DTYPE = np.dtype([("id", "<u2"), ("floor", "u1"), ("yaw", "u1"), ("x", "<i4"), ("z", "<i4")])
MOVE_DTYPE = np.dtype([("id", "<u2"), ("dx", "i1"), ("dz", "i1")])
TURN_MOVE_DTYPE = np.dtype([("id", "<u2"), ("dx", "i1"), ("dz", "i1"), ("yaw", "u1")])
TURN_DTYPE = np.dtype([("id", "<u2"), ("yaw", "u1")])
LEFT_DTYPE = np.dtype("<u2")

# full, move, turn_move, turn, left (bytes) and the ids that entered the view.
Sections = tuple[bytes, bytes, bytes, bytes, bytes, np.ndarray]

_TWO_PI = 2.0 * math.pi
_TURN_COLS = np.array([0, 1, 4])  # id, yaw of a turn_move record
_EMPTY_IDS = np.empty(0, np.uint16)
_U8 = np.uint8
_nz = np.count_nonzero


def quantize(pos: np.ndarray, floor: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """Quantise avatar states for the wire.

    Args:
        pos: ``(n, 2)`` float positions ``(x, z)`` in metres.
        floor: ``(n,)`` floor indices (0-255).
        yaw: ``(n,)`` yaw in radians, any range.

    Returns:
        ``(n, 4)`` int32: floor, yaw byte ``round(yaw / 2π · 256) mod 256``, x cm, z cm.
    """
    n = len(floor)
    q = np.empty((n, 4), QSTATE_DTYPE)
    q[:, FLOOR] = floor
    q[:, YAW] = np.rint(np.asarray(yaw, np.float64) * (256.0 / _TWO_PI)).astype(np.int64) & 255
    q[:, X:] = np.rint(np.asarray(pos, np.float64) * 100.0)
    return q


def _full_records(ids: np.ndarray, q: np.ndarray) -> bytes:
    rec = np.empty(len(ids), FULL_DTYPE)
    rec["id"] = ids
    rec["floor"] = q[:, FLOOR]
    rec["yaw"] = q[:, YAW]
    rec["x"] = q[:, X]
    rec["z"] = q[:, Z]
    return rec.tobytes()


def encode_sections(
    ids_now: np.ndarray, q_now: np.ndarray, ids_base: np.ndarray, q_base: np.ndarray
) -> Sections:
    """Encode one client's view at this tick against the view it acknowledged.

    Args:
        ids_now: ``(n,)`` uint16 ids in view now, sorted ascending, unique.
        q_now: ``(n, 4)`` int32 quantised states of ``ids_now`` (see :func:`quantize`).
        ids_base: ``(m,)`` uint16 ids of the acknowledged view, sorted (empty: no base).
        q_base: ``(m, 4)`` int32 quantised states of ``ids_base``.

    Returns:
        ``(full, move, turn_move, turn, left, entered_ids)``: the five sections as bytes
        and the ids not in the base (they need an ``info`` entry).
    """
    n, m = len(ids_now), len(ids_base)
    if m == 0:
        return _full_records(ids_now, q_now), b"", b"", b"", b"", ids_now
    if n == 0:
        return b"", b"", b"", b"", ids_base.astype(LEFT_DTYPE).tobytes(), _EMPTY_IDS
    idx = np.searchsorted(ids_base, ids_now)
    in_base = ids_base.take(idx, mode="clip") == ids_now
    d = np.subtract(q_now, q_base.take(idx, axis=0, mode="clip"), order="C")
    # Rows of d are (floor, yaw, dx, dz) int32: as int64 pairs, (floor, yaw) and (dx, dz).
    d64 = d.view(np.int64)
    # A delta outside int8, a new floor, or an avatar the base lacks: send it whole.
    wide = np.add(d[:, X:], 128, order="C")
    wide &= -256
    need_full = wide.view(np.int64).ravel() != 0
    need_full |= d[:, FLOOR] != 0
    n_in = int(np.count_nonzero(in_base))
    if n_in < n:
        need_full |= ~in_base
        entered = ids_now[~in_base]
    else:
        entered = _EMPTY_IDS
    if n_in < m:  # some of the base is no longer in view
        gone = np.ones(m, bool)
        gone[idx[in_base]] = False
        left = ids_base[gone].astype(LEFT_DTYPE).tobytes()
    else:
        left = b""
    # count_nonzero: a third of the cost of .any() on arrays this small
    full = _full_records(ids_now[need_full], q_now[need_full]) if _nz(need_full) else b""

    delta = ~need_full
    moved = d64[:, 1] != 0
    moved &= delta
    turned = d[:, YAW] != 0
    turned &= delta
    if not (_nz(moved) or _nz(turned)):
        return full, b"", b"", b"", left, entered
    rec = np.empty(n, TURN_MOVE_DTYPE)
    rec["id"] = ids_now
    rec["dx"] = d[:, X]
    rec["dz"] = d[:, Z]
    rec["yaw"] = q_now[:, YAW]
    raw = rec.view(_U8).reshape(n, 5)
    move = raw[moved & ~turned, :4].tobytes()
    turn_move = raw[moved & turned].tobytes()
    turn = raw[turned & ~moved][:, _TURN_COLS].tobytes()
    return full, move, turn_move, turn, left, entered


State = dict[int, tuple[int, int, int, int]]


class SnapshotState:
    """The client side: rebuild the view from snapshots, each a delta on an earlier one.

    Keeps the states of the last :data:`HISTORY_TICKS` ticks by tick, as the protocol
    requires of a client. Used by tests and the bench; the browser does the same in JS.
    """

    __slots__ = ("_states", "newest")

    def __init__(self) -> None:
        self._states: dict[int, State] = {}
        self.newest = 0

    def state(self, tick: int) -> State:
        """The view at ``tick`` (a copy). Raises KeyError if it is not kept."""
        return dict(self._states[tick])

    def apply(self, snap: Snapshot) -> State:
        """Apply ``snap`` on the state at its base tick; return and keep the new state.

        Returns:
            ``{id: (floor, yaw_byte, x_cm, z_cm)}`` at ``snap.tick``.

        Raises:
            ProtocolError: ``BAD_FRAME`` if the base tick is not one of the kept states,
                a record names an id the base lacks, or the tick does not advance.
        """
        if snap.tick <= self.newest:
            raise ProtocolError(
                CloseCode.BAD_FRAME,
                f"snapshot.tick: {snap.tick} does not follow the newest tick {self.newest}",
            )
        if snap.base_tick == 0:
            state: State = {}
        else:
            base = self._states.get(snap.base_tick)
            if base is None:
                raise ProtocolError(
                    CloseCode.BAD_FRAME,
                    f"snapshot.base_tick: tick {snap.base_tick} is not among the kept states",
                )
            state = dict(base)
        try:
            for i in np.frombuffer(snap.left, LEFT_DTYPE).tolist():
                del state[i]
            for i, fl, yw, x, z in np.frombuffer(snap.full, FULL_DTYPE).tolist():
                state[i] = (fl, yw, x, z)
            for i, dx, dz in np.frombuffer(snap.move, MOVE_DTYPE).tolist():
                fl, yw, x, z = state[i]
                state[i] = (fl, yw, x + dx, z + dz)
            for i, dx, dz, yw in np.frombuffer(snap.turn_move, TURN_MOVE_DTYPE).tolist():
                fl, _, x, z = state[i]
                state[i] = (fl, yw, x + dx, z + dz)
            for i, yw in np.frombuffer(snap.turn, TURN_DTYPE).tolist():
                fl, _, x, z = state[i]
                state[i] = (fl, yw, x, z)
        except (KeyError, ValueError) as exc:
            raise ProtocolError(
                CloseCode.BAD_FRAME, f"snapshot: a record names an avatar not in the base ({exc})"
            ) from None
        self._states[snap.tick] = state
        self.newest = snap.tick
        oldest = snap.tick - HISTORY_TICKS
        for t in [t for t in self._states if t <= oldest]:
            del self._states[t]
        return dict(state)
