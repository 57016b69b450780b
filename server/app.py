"""The aiohttp application: one port for the web client, the world, metrics and the WebSocket.

The WebSocket handler is the only place where a peer's bytes enter: every frame is size-checked,
rate-limited and decoded before it touches state. A fault of the peer closes that peer with a code
and a reason; a bug of ours is logged and closes only that peer with 1011.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import WSMessage, WSMsgType, web

from server import features, web_security
from server.cluster.chat import chat_targets
from server.config import CLIENT_DIR, Config
from server.dispatch import Dispatcher
from server.errors import FloodError, LoadError, PeerError, RequestError
from server.hall import Hall
from server.hooks import Hooks
from server.keys import (
    CHAT_RELAY,
    CONFIG,
    CONNECTIONS,
    DISPATCH,
    HALL,
    HEALTH,
    HOOKS,
    METRICS,
    OUTBOX,
    PLACEMENT,
    SECURITY,
    WORLD,
)
from server.liveness import liveness_ctx
from server.metrics import Metrics
from server.protocol.codes import MAX_FRAME_BYTES, CloseCode, MsgType
from server.protocol.messages import (
    Ack,
    Chat,
    ChatMsg,
    Error,
    Hello,
    Input,
    Notice,
    Ping,
    Pong,
    ProtocolError,
    Redirect,
    Welcome,
    decode,
)
from server.session import Connections, Session, SessionState, address_key
from server.web_security import origin_allowed
from server.ws_inline import InlineWebSocketResponse
from world.crowd import MAX_SPEED
from world.loader import World, WorldError, load_world

__all__ = ["create_app"]

log = logging.getLogger("emachi.app")

HELLO_TIMEOUT = 10.0
CHAT_WINDOW = 10.0


def create_app(config: Config, world: World | None = None) -> web.Application:
    """Build the application for ``config``; loads the world unless one is given.

    Raises:
        server.errors.LoadError: the world file does not load.
    """
    if world is None:
        try:
            world = load_world(config.world)
        except WorldError as exc:
            raise LoadError([str(p) for p in exc.problems]) from None
    app = web.Application(client_max_size=1024 * 1024)
    try:
        web_security.setup(app, config)  # headers on every response; origins; helper limit
    except ValueError as exc:
        raise LoadError([f"--public-url/--allow-origin: {exc}"]) from None
    metrics = Metrics()
    app[CONFIG] = config
    app[WORLD] = world
    app[METRICS] = metrics
    app[HOOKS] = hooks = Hooks()
    app[HALL] = Hall(world, config, metrics, hooks)
    app[DISPATCH] = Dispatcher()
    app[HEALTH] = {}
    app[CONNECTIONS] = Connections(config.max_per_address)
    _register_core(app[DISPATCH], app)

    app.router.add_get("/ws", ws_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/api/world", world_handler)
    app.router.add_get("/", index_handler)
    app.router.add_get("/favicon.ico", favicon_handler)
    for feature in features.SETUPS:
        feature(app)
    if CLIENT_DIR.is_dir():
        app.router.add_static("/client/", CLIENT_DIR, append_version=False)
    app.cleanup_ctx.append(_hall_ctx)
    app.cleanup_ctx.append(liveness_ctx)
    app.on_shutdown.append(_drain)
    return app


async def _hall_ctx(app: web.Application) -> AsyncIterator[None]:
    hall = app[HALL]
    await hall.start()
    yield
    await hall.stop()


async def _drain(app: web.Application) -> None:
    """SIGTERM: tell every client to reconnect, close them with DRAINING, then let the process go.

    Every connection has ``drain_seconds`` to take its Close; then it is reset, so a reader that
    stalled never holds the process up (it is aborted, not awaited). The connections still in
    their hello handshake are closed too.
    """
    conns = app[CONNECTIONS]
    grace = app[CONFIG].drain_seconds
    notice = Notice(
        kind="draining", data={"reason": "server restarting", "retry_ms": 1000}
    ).encode()
    open_ = conns.sessions()
    for ws, s in open_:
        if s.ws is ws:
            s.send(notice)
            s.close(CloseCode.DRAINING, timeout=grace)
    log.info("draining", extra={"clients": len(open_)})
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while len(conns) and loop.time() < deadline:
        await asyncio.sleep(0.02)
    for ws, s in conns.sessions():  # their handler has not seen the reset yet
        if s.ws is ws:
            s.reset()


# -- HTTP ---------------------------------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    hall = request.app[HALL]
    body = {
        "status": "ok",
        "world": hall.world.id,
        "instances": len(hall.instances),
        "people": hall.population,
    }
    body.update({name: part() for name, part in request.app[HEALTH].items()})
    return web.json_response(body)


async def metrics_handler(request: web.Request) -> web.Response:
    hall = request.app[HALL]
    gauges = {
        "emachi_instances": float(len(hall.instances)),
        "emachi_avatars": float(hall.population),
        "emachi_watchers": float(len(hall.watchers)),
        "emachi_snapshot_shed": float(max((i.shed for i in hall.instances), default=1)),
        "emachi_process_cpu": hall.governor.cpu,
        "emachi_sessions_detached": float(
            sum(1 for s in hall.by_token.values() if s.state is SessionState.DETACHED)
        ),
        **request.app[METRICS].feature_gauges(),  # the features' (e.g. the cluster's, voice's)
    }
    text = request.app[METRICS].render(gauges)
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


async def world_handler(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    etag = f'"{world.content_hash}"'
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag})
    doc = {**world.to_client(), "movement": {"max_speed": MAX_SPEED}}
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    return web.Response(
        text=body,
        content_type="application/json",
        headers={"ETag": etag, "Cache-Control": "no-cache"},
    )


async def index_handler(request: web.Request) -> web.StreamResponse:
    index = CLIENT_DIR / "index.html"
    if not index.is_file():
        return web.Response(text="emachi: the web client is not installed", status=503)
    return web.FileResponse(index, headers={"Cache-Control": "no-cache"})


async def favicon_handler(request: web.Request) -> web.StreamResponse:
    """The site icon (a small SVG), so that no page's automatic request for it is a 404."""
    icon = CLIENT_DIR / "favicon.svg"
    if not icon.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(
        icon, headers={"Content-Type": "image/svg+xml", "Cache-Control": "max-age=86400"}
    )


# -- WebSocket ----------------------------------------------------------------------------------


async def ws_handler(request: web.Request) -> web.StreamResponse:
    """One WebSocket from upgrade to close; a fault of the peer closes it with a code and a reason.

    Per-address limit: past ``max_per_address`` open WebSockets from one address (counted from
    the upgrade, so connections still in their hello handshake count), the connection is upgraded
    and closed at once with TOO_MANY_CONNECTIONS and its reason, rather than refused with an HTTP
    429 before the upgrade: a browser hides the HTTP status of a failed upgrade from the page
    (it sees only "error" and 1006), while a close code and reason reach the page, which can tell
    the person why and retry later instead of treating the server as down.
    """
    app = request.app
    config = app[CONFIG]
    if not origin_allowed(request, app[SECURITY].origins):
        # the rule (configured origins, else localhost and IP literals only) is in web_security
        raise web.HTTPForbidden(
            text="origin not allowed: start the server with --public-url or --allow-origin "
            "naming the address residents open"
        )
    # aiohttp refuses frames over max_msg_size with 1009; we check 64 KiB ourselves to answer 4002.
    # No aiohttp heartbeat (it reschedules a timer on every inbound message) and no autoping: the
    # receive loop notes when the peer was last heard (a Pong included) and answers its Pings, and
    # one sweep (server/liveness.py) pings the quiet connections and closes the silent ones.
    ws = InlineWebSocketResponse(
        max_msg_size=4 * MAX_FRAME_BYTES, heartbeat=None, autoping=False, compress=False
    )
    metrics = app[METRICS]
    session = Session.for_config(config, on_close=metrics.closed)
    conns = app[CONNECTIONS]
    address = address_key(request.remote)
    admitted = conns.admit(address, ws, session)
    try:
        await ws.prepare(request)
        session.attach(ws, request.transport, address)
        if not admitted:
            log.info(
                "refused: too many connections from one address", extra={"limit": conns.per_address}
            )
            session.close(CloseCode.TOO_MANY_CONNECTIONS)
            await session.wait_closed()
            return ws
        sock = request.transport.get_extra_info("socket") if request.transport else None
        if sock is not None and config.socket_send_buffer:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, config.socket_send_buffer)
        metrics.connections_total += 1
        await _serve_socket(app, session, ws, request)
    finally:
        if admitted:
            conns.release(address, ws)
    return ws


async def _serve_socket(
    app: web.Application, session: Session, ws: web.WebSocketResponse, request: web.Request
) -> None:
    try:
        session = await _handshake(app, session, ws, request)
        app[CONNECTIONS].update(ws, session)
        await _receive_loop(app, session, ws)
    except (PeerError, ProtocolError) as exc:
        code = int(exc.code)
        log.info("peer closed", extra={"code": code, "reason": exc.reason})
        if session.ws is ws:
            session.close(code, exc.reason)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("bug while serving a peer")
        if session.ws is ws:
            session.close(1011, "internal error")
    finally:
        if session.ws is ws:
            if session.state is SessionState.HANDSHAKE:
                session.to(SessionState.CLOSED)
            else:
                # a close the server started (the drain, a limit) is not the page leaving: only a
                # clean close from the peer frees the avatar early
                app[HALL].detach(session, None if session.closing else ws.close_code)
    if session.ws is ws:
        await session.wait_closed()


async def _handshake(
    app: web.Application, session: Session, ws: web.WebSocketResponse, request: web.Request
) -> Session:
    """Wait for the hello (at most HELLO_TIMEOUT), place the session, answer WELCOME."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + HELLO_TIMEOUT
    while True:
        try:
            # a timeout of 0 would mean none to aiohttp
            msg = await ws.receive(timeout=max(1e-3, deadline - loop.time()))
        except TimeoutError as exc:
            raise PeerError(CloseCode.HANDSHAKE, "no hello within 10 s") from exc
        if not _control_frame(session, msg):
            break
    hello = _decode_frame(app, session, msg)
    if hello is None:
        raise PeerError(CloseCode.HANDSHAKE)
    if not isinstance(hello, Hello):
        raise PeerError(CloseCode.HANDSHAKE)
    # decode() already refused a version other than PROTOCOL_VERSION with UNSUPPORTED_VERSION
    opts = hello.opts or {}
    session.name = hello.name
    session.mode = "watch" if opts.get("mode") == "watch" else "avatar"
    session.opts = dict(opts)
    session.resume_token = hello.resume or ""
    app[HOOKS].run_hello(session, hello)
    into = None
    placement = app.get(PLACEMENT)  # the cluster's; an app mounted without it places locally
    if placement is not None and not session.place_in:  # event guests: their private instance
        route = await placement.route(session)  # a cluster: here, or the instance's owner
        if route.url is not None:
            session.send(Redirect(url=route.url, seat=route.seat, instance=route.instance).encode())
            raise PeerError(CloseCode.MOVED)
        if route.retry:
            raise PeerError(CloseCode.MOVED, "your place is changing hands; try again")
        into = route.into
    if app[HALL].must_wait(session) and not await app[HALL].wait_for_place(session):
        raise PeerError(CloseCode.WORLD_FULL, "left the waiting line")
    if session.commit_before_welcome:  # a hello hook wrote a record this WELCOME acknowledges
        await app[OUTBOX].committed(session.commit_before_welcome)
    joined = app[HALL].join(session, into=into)
    if joined is not session:
        joined.attach(ws, request.transport, address_key(request.remote))
    config = app[CONFIG]
    world = app[WORLD]
    joined.send(
        Welcome(
            avatar_id=joined.avatar_id,
            instance=joined.instance.id if joined.instance else "",
            world_id=world.id,
            world_hash=world.content_hash,
            server_time=time.time() * 1000.0,
            resume=joined.resume_token,
            tick_rate=config.tick_rate,
            snapshot_rate=config.snapshot_rate,
        ).encode()
    )
    app[HALL].joined(joined, resumed=joined is not session)  # the hooks may send: after WELCOME
    return joined


_DONE = frozenset((WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR))


def _control_frame(session: Session, msg: WSMessage) -> bool:
    """Note a Ping or Pong as heard from the peer (a Ping is charged as a message and answered);
    False for any other frame. aiohttp's autoping is off: it would swallow the Pongs."""
    kind = msg.type
    if kind is WSMsgType.PONG:
        session.last_heard = time.monotonic()
        return True
    if kind is WSMsgType.PING:
        session.last_heard = now = time.monotonic()
        session.take_token(now)
        session.pong(msg.data)
        return True
    return False


def _decode_frame(app: web.Application, session: Session, msg: object) -> object | None:
    """The message in a frame, or None when the socket is closing."""
    kind = getattr(msg, "type", None)
    if kind in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
        return None
    if kind == WSMsgType.ERROR:
        return None
    if kind == WSMsgType.TEXT:
        raise PeerError(
            CloseCode.BAD_FRAME, "text frames are not accepted; send binary MessagePack"
        )
    if kind != WSMsgType.BINARY:
        return None
    session.last_heard = now = time.monotonic()
    data: bytes = msg.data  # type: ignore[attr-defined]
    if len(data) > MAX_FRAME_BYTES:
        raise PeerError(CloseCode.FRAME_TOO_BIG)
    msg = decode(data)
    if msg.TYPE not in app[DISPATCH].own_rate:
        session.take_token(now)
    app[METRICS].messages_in += 1
    return msg


async def _receive_loop(app: web.Application, session: Session, ws: web.WebSocketResponse) -> None:
    """Frames of one socket until it closes.

    Every frame notes the time in ``session.last_heard`` (one float: the liveness sweep reads it,
    no timer is touched). INPUT and ACK (each client sends about ten a second) and the types
    with a synchronous handler (VOICE: 50 a second per talker) are applied at once, with no
    dispatch coroutine per message: where aiohttp parses them when the socket is an
    :class:`InlineWebSocketResponse` (:func:`_inline`: not even this task wakes up), else here
    (the same steps as :func:`_decode_frame`). Every other message goes through the dispatcher.
    Frames that a replaced socket still delivers after its session was resumed on a newer one
    are dropped: they are not the avatar's any more.
    """
    dispatch = app[DISPATCH]
    own_rate = dispatch.own_rate
    metrics = app[METRICS]
    receive = ws.receive
    binary = WSMsgType.BINARY
    monotonic = time.monotonic
    take_token = session.take_token
    # what a synchronous handler raised where the frame was parsed: that frame is queued and
    # this loop, which gets it next, raises the error for it (the close is the usual one)
    fault: list[BaseException] = []
    inline = isinstance(ws, InlineWebSocketResponse) and ws.set_inline(
        _inline(app, session, ws, fault)
    )
    try:
        while True:
            msg = await receive()
            if msg.type is not binary:
                if _control_frame(session, msg):
                    continue
                _decode_frame(app, session, msg)  # TEXT raises BAD_FRAME
                if msg.type in _DONE:
                    return
                continue
            if fault:
                raise fault.pop()
            if session.ws is not ws:
                continue
            session.last_heard = now = monotonic()
            data = msg.data
            if len(data) > MAX_FRAME_BYTES:
                raise PeerError(CloseCode.FRAME_TOO_BIG)
            decoded = decode(data)
            kind = type(decoded)
            if kind is Input or kind is Ack or decoded.TYPE not in own_rate:
                take_token(now)
            metrics.messages_in += 1
            inst = session.instance
            if kind is Input:
                if inst is not None:
                    m: Input = decoded  # type: ignore[assignment]
                    inst.take_input(session, m.seq, m.ack_tick, m.mx, m.mz, m.yaw, now)
                continue
            if kind is Ack:
                if inst is not None:
                    inst.ack(session, decoded.tick)  # type: ignore[attr-defined]
                continue
            try:
                await dispatch.dispatch(session, decoded)
            except RequestError as exc:
                session.send(Error(code=exc.code, reason=exc.reason).encode())
    finally:
        if inline:
            ws.set_inline(None)  # type: ignore[attr-defined]


_INPUT = int(MsgType.INPUT)
_ACK = int(MsgType.ACK)
_F64 = 0xCB  # MessagePack's float64 marker
# The size of a MessagePack unsigned int from its first byte: a positive fixint is that byte,
# 0xcc, 0xcd, 0xce carry 1, 2, 4 bytes after it; 0 for anything else (then the general decoder).
_UINT_SIZE = bytes(1 if b < 0x80 else {0xCC: 2, 0xCD: 3, 0xCE: 5}.get(b, 0) for b in range(256))
_UINT_FORMAT = {1: "B", 2: "xB", 3: "xH", 5: "xI"}
# An INPUT as clients send it, ``[2, seq, ack, mx, mz, yaw]`` in a fixarray with the three numbers
# as float64: its struct (giving seq, ack, mx, mz, yaw) by the sizes of seq and ack
# (index size_seq * 6 + size_ack); the three float markers are checked apart.
_INPUT_STRUCTS: list[struct.Struct | None] = [None] * 36
for _s, _fs in _UINT_FORMAT.items():
    for _a, _fa in _UINT_FORMAT.items():
        _INPUT_STRUCTS[_s * 6 + _a] = struct.Struct(">xx" + _fs + _fa + "xdxdxd")
_INPUT_MIN = 2 + 1 + 1 + 27  # bytes of the smallest such INPUT
_U16 = struct.Struct(">xxxH").unpack_from
_U32 = struct.Struct(">xxxI").unpack_from


def _inline(
    app: web.Application,
    session: Session,
    ws: web.WebSocketResponse,
    fault: list[BaseException],
) -> Callable[[bytes], bool]:
    """The receive loop's steps for INPUT, ACK and the types with a synchronous handler, for
    aiohttp's parser to call with each binary message (:mod:`server.ws_inline`). True when the
    message was applied; False for anything it leaves to the loop, which then takes the message
    its usual way: another type, a frame it would refuse (too big, undecodable, over the rate:
    the loop closes with the reason), and one from a socket that is no longer the session's.
    What a synchronous handler raises goes into ``fault`` for the loop to raise when it gets
    that frame (False). Never raises into aiohttp's parser.

    The common INPUT (float64 numbers, as every client sends a non-integral number) and ACK are
    read with ``struct`` straight from the bytes; any other shape of them goes through
    :func:`decode` (numbers sent as integers, say), which checks and normalises as always. The
    checks of the direct read are ``plain_input`` 's and ``plain_ack`` 's: a frame that passes
    them is one ``decode`` would take unchanged."""
    metrics = app[METRICS]
    dispatch = app[DISPATCH]
    sync = dispatch.sync
    own_rate = dispatch.own_rate
    monotonic = time.monotonic
    hypot = math.hypot
    uint_size = _UINT_SIZE
    structs = _INPUT_STRUCTS
    interval = session.rate_interval
    slack = session.rate_slack

    def inline(data: bytes) -> bool:
        if session.ws is not ws:
            return False
        n = len(data)
        if n < 3:
            return False
        head = data[0]
        code = data[1]
        if head == 0x96 and code == _INPUT:
            st = None
            if n >= _INPUT_MIN:
                s = uint_size[data[2]]
                if s:
                    st = structs[s * 6 + uint_size[data[2 + s]]]
            if (
                st is not None
                and st.size == n
                and data[n - 27] == _F64
                and data[n - 18] == _F64
                and data[n - 9] == _F64
            ):
                seq, ack, mx, mz, yaw = st.unpack_from(data)
                if not (hypot(mx, mz) <= 1.0 and yaw - yaw == 0.0):  # NaN, inf, |m| > 1
                    return _general(data)
            else:
                return _general(data)
        elif head == 0x92 and code == _ACK:
            b = data[2]
            if n == 3 and b < 0x80:
                tick = b
            elif n == 4 and b == 0xCC:
                tick = data[3]
            elif n == 5 and b == 0xCD:
                tick = _U16(data)[0]
            elif n == 7 and b == 0xCE:
                tick = _U32(data)[0]
            else:
                return _general(data)
            seq = -1
        elif code in sync:
            return _general(data)
        else:
            return False
        # the connection's token bucket (Session.take_token, in place); over it, the loop raises
        now = monotonic()
        debt = session.rate_debt_until - now
        if debt < 0.0:
            debt = 0.0
        if debt > slack:
            return False
        session.rate_debt_until = now + debt + interval
        session.last_heard = now
        metrics.messages_in += 1
        inst = session.instance
        if inst is not None:
            try:
                if seq < 0:
                    inst.ack(session, tick)
                else:
                    inst.take_input(session, seq, ack, mx, mz, yaw, now)
            except Exception:
                log.exception("bug while applying an input")
        return True

    def _general(data: bytes) -> bool:
        """A frame of an inline type in any other shape, through the general decoder."""
        if len(data) > MAX_FRAME_BYTES:
            return False
        try:
            msg = decode(data)
        except ProtocolError:  # the loop's decode() raises it again and closes with the reason
            return False
        kind = type(msg)
        handler = None if kind is Input or kind is Ack else sync.get(msg.TYPE)
        if handler is None and kind is not Input and kind is not Ack:
            return False
        now = monotonic()
        if handler is None or msg.TYPE not in own_rate:
            try:
                session.take_token(now)
            except FloodError:
                return False
        session.last_heard = now
        metrics.messages_in += 1
        inst = session.instance
        if handler is not None:
            try:
                handler(session, msg)
            except RequestError as exc:
                session.send(Error(code=exc.code, reason=exc.reason).encode())
            except Exception as exc:  # PeerError (a flood), or a bug: the loop raises it
                fault.append(exc)
                return False
        elif inst is not None:
            try:
                if kind is Input:
                    m: Input = msg  # type: ignore[assignment]
                    inst.take_input(session, m.seq, m.ack_tick, m.mx, m.mz, m.yaw, now)
                else:
                    inst.ack(session, msg.tick)  # type: ignore[attr-defined]
            except Exception:
                log.exception("bug while applying an input")
        return True

    return inline


def _apply_input(session: Session, msg: Input) -> None:
    """An input's ack (see ``Instance.ack``) and its movement intent."""
    inst = session.instance
    if inst is not None:
        inst.take_input(session, msg.seq, msg.ack_tick, msg.mx, msg.mz, msg.yaw, time.monotonic())


# -- core handlers ------------------------------------------------------------------------------


def _register_core(dispatch: Dispatcher, app: web.Application) -> None:
    config = app[CONFIG]

    # INPUT and ACK are applied by _receive_loop's fast path; registered all the same so that
    # the dispatcher knows them (and no feature can take them over)
    async def on_input(session: Session, msg: Input) -> None:
        _apply_input(session, msg)

    async def on_ack(session: Session, msg: Ack) -> None:
        if session.instance is not None:
            session.instance.ack(session, msg.tick)

    async def on_ping(session: Session, msg: Ping) -> None:
        session.send(Pong(client_time=msg.client_time, server_time=time.time() * 1000.0).encode())

    async def on_chat(session: Session, msg: Chat) -> None:
        now = time.monotonic()
        session.chat_times = [t for t in session.chat_times if now - t < CHAT_WINDOW]
        if len(session.chat_times) >= config.chat_per_10s:
            raise RequestError("chat_rate", f"at most {config.chat_per_10s} messages every 10 s")
        text = msg.text.strip()
        if not text:
            raise RequestError("chat_empty", "the message is empty")
        session.chat_times.append(now)
        inst = session.instance
        if inst is None:
            raise RequestError("chat_no_avatar", "watch-only viewers cannot chat in the hall")
        server_time = time.time() * 1000.0
        frame = ChatMsg(
            from_id=session.avatar_id,
            name=session.name,
            scope=msg.scope,
            text=text,
            server_time=server_time,
        ).encode()
        me = session.avatar_id
        c = inst.crowd
        floor, x, z = int(c.floor[me]), float(c.pos[me, 0]), float(c.pos[me, 1])
        targets = chat_targets(inst, msg.scope, floor, x, z, config.aoi_radius)
        # a feature may choose who gets the line instead (a consultation booth: only the two)
        targets, relay_it = app[HOOKS].route_chat(session, targets)
        for s in targets:
            s.send(frame)
        relay = app.get(CHAT_RELAY) if relay_it else None
        if relay is not None:  # the same instance's people on the other processes
            relay.said(session, msg.scope, text, server_time)

    dispatch.register(MsgType.INPUT, on_input)
    dispatch.register(MsgType.ACK, on_ack)
    dispatch.register(MsgType.PING, on_ping)
    dispatch.register(MsgType.CHAT, on_chat)
