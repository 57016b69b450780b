"""Micro-benchmark of the inbound path: what one client frame costs the server, from the bytes.

    python -m bench.inbound [--clients N] [--rounds R]

Feeds masked WebSocket frames, one TCP read each as they arrive, to aiohttp's WebSocket reader
over the server's inline queue (``server.ws_inline``) for ``N`` sessions with avatars in one
instance, round after round (each session one frame a round, as a crowd sends them), and times
µs per frame for:

- ``input``: INPUT as the Python clients send it (float64 numbers), with an ack;
- ``input_int``: INPUT with integral numbers (what a browser sends standing still or walking
  straight: its codec packs 0 and 1 as ints);
- ``ack``: ACK;
- ``voice``: VOICE of 60 bytes of Opus (with the voice feature's handler; a frame the inline
  path declines is timed up to the queue, not through ``receive()``);
- ``tick_apply``: the tick's taking of the inputs held (ms, all N clients sent one).

The event loop is not involved: a frame the inline path takes costs exactly this; one it leaves
in the queue costs this plus a wake-up of its connection's task, a future and the receive loop.
Measures; asserts nothing. Run it from the checkout whose code is to be timed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import struct
import time
from collections.abc import Callable
from typing import Any

import msgpack

from bench.crowd import machine
from server.config import ROOT, Config
from server.dispatch import Dispatcher
from server.hooks import Hooks
from server.instance import Instance
from server.keys import DISPATCH, METRICS
from server.metrics import Metrics
from server.protocol.messages import Ack, Input, Voice
from server.session import Session, SessionState
from world.loader import load_world

__all__ = ["main"]


class _Transport:
    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def write(self, data: bytes) -> None:
        pass


class _Socket:
    closed = False


class _Protocol:
    _reading_paused = False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _masked(payload: bytes) -> bytes:
    """A client's binary frame (RFC 6455: clients mask), final, unfragmented."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes((0x82, 0x80 | n)) if n < 126 else bytes((0x82, 0x80 | 126)) + struct.pack(">H", n)
    body = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
    return head + mask + body


def _best(fn: Callable[[], float], repeat: int) -> float:
    return min(fn() for _ in range(repeat))


def run(clients: int, rounds: int) -> dict[str, Any]:
    from aiohttp._websocket.reader import WebSocketReader

    import server.app as server_app
    from server.ws_inline import InlineQueue

    world = load_world(ROOT / "worlds" / "machida-city-hall")
    config = Config(capacity=clients)
    inst = Instance("bench#1", world, config, Metrics(), Hooks())
    dispatch = Dispatcher()
    voice_in = [0]

    def on_voice(session: Session, msg: Voice) -> None:
        voice_in[0] += 1

    register_sync = getattr(dispatch, "register_sync", None)
    if register_sync is not None:
        register_sync(Voice.TYPE, on_voice, own_rate=True)
    else:

        async def on_voice_async(session: Session, msg: Voice) -> None:
            on_voice(session, msg)

        dispatch.register(Voice.TYPE, on_voice_async, own_rate=True)
    app = {METRICS: Metrics(), DISPATCH: dispatch}
    loop = asyncio.new_event_loop()
    readers = []
    queues = []
    ws = _Socket()
    four = "fault" in server_app._inline.__code__.co_varnames
    for i in range(clients):
        s = Session(config.send_buffer_limit, 1e9, 1e9)
        s.name = f"b{i}"
        s.attach(ws, _Transport())  # type: ignore[arg-type]
        s.to(SessionState.ACTIVE)
        inst.on_join(s)
        q = InlineQueue(_Protocol(), 1 << 16, loop=loop)
        args: list[Any] = [app, s, ws, []] if four else [app, s, ws]
        q.inline = server_app._inline(*args)
        queues.append(q)
        readers.append(WebSocketReader(q, 1 << 18, compress=False, decode_text=True))
    inst.step(0.05)
    inst.broadcast()
    tick = inst.tick
    seq = [0]
    queued = [0]

    def feed(make: Callable[[int], bytes]) -> float:
        frames = [_masked(make(i)) for i in range(clients)]
        t0 = time.perf_counter()
        for r, f in zip(readers, frames, strict=True):
            r.feed_data(f)
        dt = time.perf_counter() - t0
        for q in queues:  # what the inline path declined: counted, then dropped
            queued[0] += len(q._buffer)
            q._buffer.clear()
        return dt / clients * 1e6

    def input_frame(_: int) -> bytes:
        return Input(seq[0], tick, 0.6, -0.3, 1.25).encode()

    def input_int(_: int) -> bytes:
        return msgpack.packb([2, seq[0], tick, 0, 1, 0])

    opus = os.urandom(60)

    def voice_frame(_: int) -> bytes:
        return Voice(seq[0], True, False, opus).encode()

    def step(make: Callable[[int], bytes]) -> Callable[[], float]:
        def one() -> float:
            seq[0] += 1
            return feed(make)

        return one

    out: dict[str, Any] = {"clients": clients}
    for name, make in (
        ("input", input_frame),
        ("input_int", input_int),
        ("ack", lambda _: Ack(tick).encode()),
        ("voice", voice_frame),
    ):
        queued[0] = 0
        out[name + "_us"] = round(_best(step(make), rounds), 3)
        out[name + "_declined"] = queued[0]

    def apply() -> float:
        seq[0] += 1
        for s in inst.sessions.values():
            inst.set_input(s.avatar_id, seq[0], 0.5, 0.5, 0.1)
        t0 = time.perf_counter()
        inst._apply_inputs()
        return (time.perf_counter() - t0) * 1e3

    out["tick_apply_ms"] = round(_best(apply, rounds), 4)
    out["voice_handled"] = voice_in[0]
    loop.close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.inbound", description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=15)
    args = p.parse_args(argv)
    result = {"bench": "inbound", "machine": machine(), **run(args.clients, args.rounds)}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
