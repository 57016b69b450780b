"""Instance.broadcast's frames, as its clients read them: each a WebSocket frame holding a snapshot
that rebuilds, on the acknowledged base, exactly what the server has in that viewer's view; a
viewer over its budget gets nothing and its kept view is forgotten; and no tick compiles a kernel.
"""

from __future__ import annotations

import math

import msgpack
import numpy as np

from server.config import ROOT, Config
from server.hooks import Hooks
from server.instance import HISTORY, Instance
from server.metrics import Metrics
from server.protocol import batch
from server.protocol.messages import Snapshot
from server.protocol.snapshot import SnapshotState
from server.session import Session, SessionState
from world.loader import load_world


class _Transport:
    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.buffered = 0

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def write(self, data: bytes) -> None:
        self.frames.append(bytes(data))

    def abort(self) -> None:
        pass

    def close(self) -> None:
        pass


def _payload(frame: bytes) -> bytes:
    assert frame[0] == 0x82
    n = frame[1]
    head = 2 if n < 126 else 4 if n == 126 else 10
    size = n if n < 126 else int.from_bytes(frame[2:head], "big")
    assert len(frame) == head + size
    return frame[head:]


def test_clients_rebuild_the_servers_view_from_the_frames() -> None:
    world = load_world(ROOT / "worlds" / "machida-city-hall")
    n = 12
    config = Config(capacity=n, interest_every=2)
    inst = Instance("t#1", world, config, Metrics(), Hooks())
    sessions, transports = [], []
    for i in range(n):
        s = Session(config.send_buffer_limit, config.rate_per_second, config.rate_burst)
        s.name = f"名{i}"
        s.color = 0x102030 + i
        t = _Transport()
        s.attach(None, t)  # type: ignore[arg-type]
        s.to(SessionState.ACTIVE)
        inst.on_join(s)
        sessions.append(s)
        transports.append(t)
    states = [SnapshotState() for _ in range(n)]
    names: list[dict[int, tuple[str, int]]] = [{} for _ in range(n)]
    rng = np.random.default_rng(3)
    headings = rng.uniform(0, 2 * math.pi, n)
    signatures = {k: len(getattr(batch, k).signatures) for k in ("_classify", "_frames")}
    stalled = 5  # this viewer's socket is full for a few ticks
    missed = 0
    for tick in range(1, 40):
        transports[stalled].buffered = config.send_buffer_limit + 1 if 10 <= tick < 13 else 0
        for i in range(n):
            a = float(headings[i]) + tick * 0.05
            inst.set_input(i, tick, 0.8 * math.sin(a), 0.8 * math.cos(a), a)
        inst.step(0.05)
        before = [len(t.frames) for t in transports]
        inst.broadcast()
        q = inst.history[inst.tick % HISTORY]
        for i, (s, t) in enumerate(zip(sessions, transports, strict=True)):
            if len(t.frames) == before[i]:
                assert i == stalled and 10 <= tick < 13
                assert inst.view_tick[inst.tick % HISTORY, s.avatar_id] == -1
                missed += 1
                continue
            items = msgpack.unpackb(_payload(t.frames[-1]), raw=False)
            snap = Snapshot.from_fields(items)
            assert isinstance(snap, Snapshot)
            assert snap.tick == inst.tick
            assert snap.last_seq == tick
            view = states[i].apply(snap)
            for a, name, color in snap.info or []:
                names[i][a] = (name, color)
            row = inst.views[inst.tick % HISTORY, s.avatar_id]
            ids = row[row != batch.PAD].tolist()
            assert sorted(view) == ids
            for a in ids:
                assert view[a] == tuple(q[a].tolist()), (tick, i, a)
                assert names[i][a] == (f"名{a}", 0x102030 + a)
            if tick % 3:  # ack most snapshots, the previous one: deltas on older bases too
                inst.ack(s, snap.tick)
    assert missed == 3
    assert all(len(t.frames) >= 36 for t in transports)
    # the server's dtypes are the warmed ones: no tick compiled a kernel
    assert signatures == {k: 1 for k in signatures}
    assert {k: len(getattr(batch, k).signatures) for k in signatures} == signatures
