"""The inline receive path (server/app.py's ``_inline``): its direct reading of INPUT and ACK
takes exactly what ``decode`` takes, with the same values; the token bucket decides as a bucket of
tokens; a synchronous handler's error reaches the receive loop once."""

from __future__ import annotations

import math
import random
import struct
from typing import Any

import msgpack
import pytest

from server.app import _inline
from server.dispatch import Dispatcher
from server.errors import FloodError, PeerError
from server.keys import DISPATCH, METRICS
from server.metrics import Metrics
from server.protocol.codes import CloseCode, MsgType
from server.protocol.messages import Ack, Input, ProtocolError, Voice, decode
from server.session import Session


class _Socket:
    closed = False


class _Instance:
    def __init__(self) -> None:
        self.got: list[tuple[Any, ...]] = []

    def take_input(self, session: Session, seq: int, ack: int, mx: float, mz: float, yaw: float,
                   now: float) -> None:  # fmt: skip
        self.got.append(("input", seq, ack, mx, mz, yaw))

    def ack(self, session: Session, tick: int) -> None:
        self.got.append(("ack", tick))


def _setup(
    dispatch: Dispatcher | None = None,
) -> tuple[Any, Session, _Instance, list[BaseException]]:
    app = {METRICS: Metrics(), DISPATCH: dispatch or Dispatcher()}
    ws = _Socket()
    s = Session(1 << 20, 1e9, 1e9)
    s.ws = ws  # type: ignore[assignment]
    inst = _Instance()
    s.instance = inst  # type: ignore[assignment]
    fault: list[BaseException] = []
    return _inline(app, s, ws, fault), s, inst, fault  # type: ignore[arg-type]


def _number(rng: random.Random) -> Any:
    return rng.choice(
        [
            rng.uniform(-1, 1),
            rng.uniform(-0.7, 0.7),
            rng.uniform(-3, 3),
            0,
            1,
            -1,
            0.0,
            1.0,
            math.nan,
            math.inf,
            -math.inf,
            1e308,
            5,
            True,
        ]
    )


def _uint(rng: random.Random) -> Any:
    return rng.choice([0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, -1, 1.5])


def _frames(rng: random.Random, n: int) -> list[bytes]:
    out = []
    for _ in range(n):
        fields = [_uint(rng), _uint(rng), _number(rng), _number(rng), _number(rng)]
        out.append(msgpack.packb([int(MsgType.INPUT), *fields]))
        if rng.random() < 0.2 and 1e308 not in fields:  # float32 numbers, as another codec sends
            out.append(msgpack.packb([int(MsgType.INPUT), *fields], use_single_float=True))
        out.append(msgpack.packb([int(MsgType.ACK), fields[0]]))
    out += [
        Input(5, 7, 0.6, -0.8, 3.0).encode(),
        Input(5, 7, 0.6, -0.8, 3.0).encode()[:-1],  # cut short
        Input(5, 7, 0.6, -0.8, 3.0).encode() + b"\x00",  # a byte too many
        msgpack.packb([int(MsgType.INPUT), 1, 2, 0.1, 0.1]),  # a field short
        msgpack.packb([int(MsgType.ACK), 1, 2]),
        b"\x96\x02\xcc",
        b"\x92\x03",
        b"\x92\x03\xcd\x01",
    ]
    return out


def test_the_direct_read_takes_what_decode_takes_with_the_same_values() -> None:
    rng = random.Random(7)
    for data in _frames(rng, 3000):
        inline, _, inst, fault = _setup()
        try:
            msg = decode(data)
        except ProtocolError:
            msg = None
        took = inline(data)
        assert took == (msg is not None), (data.hex(), msg)
        assert not fault
        if msg is None:
            assert inst.got == []
            continue
        if isinstance(msg, Input):
            want: tuple[Any, ...] = ("input", msg.seq, msg.ack_tick, msg.mx, msg.mz, msg.yaw)
        else:
            assert isinstance(msg, Ack)
            want = ("ack", msg.tick)
        (got,) = inst.got
        assert [type(v) for v in got] == [type(v) for v in want]
        assert got == want, data.hex()


def test_the_common_input_shapes_are_read_directly() -> None:
    inline, _, inst, _ = _setup()
    for seq, ack in [(1, 0), (200, 100), (70000, 300), (2**32 - 1, 2**31)]:
        data = Input(seq, ack, 0.6, -0.8, 3.0).encode()
        assert inline(data)
        assert inst.got[-1] == ("input", seq, ack, 0.6, -0.8, 3.0)
    assert struct.unpack(">d", Input(1, 0, 0.6, 0.0, 0.0).encode()[5:13]) == (0.6,)


def _bucket(rate: float, burst: float, times: list[float]) -> list[bool]:
    """A plain bucket of tokens: what the one-float bucket must decide."""
    tokens, last, out = burst, 0.0, []
    for t in times:
        tokens = min(burst, tokens + (t - last) * rate)
        last = t
        ok = tokens >= 1.0
        if ok:
            tokens -= 1.0
        out.append(ok)
    return out


@pytest.mark.parametrize(("rate", "burst"), [(60.0, 120.0), (10.0, 1.0), (5.0, 3.0)])
def test_the_token_bucket_decides_as_a_bucket_of_tokens(rate: float, burst: float) -> None:
    rng = random.Random(int(rate))
    t, times = 1000.0, []
    for _ in range(25):  # stretches under, at and over the rate
        pace = rate * rng.choice([0.5, 1.0, 1.02, 3.0])
        for _ in range(400):
            t += rng.expovariate(pace)
            times.append(t)
    s = Session(1 << 20, rate, burst)
    s.rate_debt_until = times[0] - 1.0  # the session is older than the first message: a full bucket
    got = []
    for now in times:
        try:
            s.take_token(now)
            got.append(True)
        except FloodError:
            got.append(False)
    want = _bucket(rate, burst, [x - times[0] + 1e6 for x in times])
    # float rounding may move a decision that sits exactly on the edge; none other differs
    assert sum(g != w for g, w in zip(got, want, strict=True)) <= 2
    assert got.count(False) > 0


def test_a_sync_handlers_error_is_raised_by_the_loop_once() -> None:
    calls: list[int] = []

    def on_voice(session: Session, msg: Voice) -> None:
        calls.append(msg.seq)
        if msg.seq == 3:
            raise PeerError(CloseCode.FLOOD, "too many")

    d = Dispatcher()
    d.register_sync(MsgType.VOICE, on_voice, own_rate=True)
    inline, _, _, fault = _setup(d)
    assert inline(Voice(1, True, False, b"x" * 60).encode())
    assert inline(Voice(2, True, False, b"x" * 500).encode())  # the handler drops it, not decode
    assert not inline(Voice(3, True, False, b"x").encode())
    assert calls == [1, 2, 3]
    (exc,) = fault
    assert isinstance(exc, PeerError) and exc.code == CloseCode.FLOOD
    # a frame decode refuses is left to the loop, which closes with decode's reason
    assert not inline(msgpack.packb([int(MsgType.VOICE), 1, "yes", False, b""]))
    assert calls == [1, 2, 3]
