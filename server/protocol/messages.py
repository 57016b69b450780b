"""Protocol v1 messages: one frozen dataclass per wire message, and :func:`decode`.

A frame is one MessagePack array ``[type, *fields]`` (``docs/architecture.md``, "Wire
format"). Each message class knows its :class:`~server.protocol.codes.MsgType`, encodes
itself with :meth:`Message.encode` and validates itself with :meth:`Message.check`.
:func:`decode` turns bytes from the peer into a checked message or raises
:class:`ProtocolError` with the close code and a reason a person can read, naming the
message and field ("hello.name: expected a string of 1-24 characters").

Decoding normalises what a peer may send loosely: integers where floats are expected
become floats (JavaScript encoders pack 1.0 as 1), control characters are stripped from
names and chat text, and an input's movement intent is clipped to unit length.
:meth:`Message.check` on a constructed message is strict: a value that decoding would
have changed is refused, so what the server sends is what a client would accept.

Pure: no sockets, no asyncio; only msgpack.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import msgpack

from server.protocol.codes import MAX_FRAME_BYTES, PROTOCOL_VERSION, CloseCode, MsgType

__all__ = [
    "ProtocolError",
    "Message",
    "Hello",
    "Input",
    "Ack",
    "Chat",
    "Ping",
    "KioskOpen",
    "KioskChoose",
    "HelperAsk",
    "Question",
    "BriefingJoin",
    "Voice",
    "Welcome",
    "Snapshot",
    "ChatMsg",
    "Pong",
    "Error",
    "Notice",
    "KioskPanel",
    "KioskLink",
    "HelperAnswer",
    "Briefing",
    "Questions",
    "VoiceFrame",
    "AudioSubs",
    "VoiceHeard",
    "Redirect",
    "MESSAGE_TYPES",
    "decode",
    "register",
    "NAME_MAX",
    "CHAT_MAX",
    "U32_MAX",
    "plain_ack",
    "plain_input",
]

NAME_MAX = 24
CHAT_MAX = 500
U32_MAX = 2**32 - 1
ID_MAX = 64  # ids of kiosks, briefings, helpers, channels
TOKEN_MAX = 256  # resume and invite tokens
URL_MAX = 512  # a process's address (a hello's opts.gone)
MAP_MAX = 64  # entries in a client-sent map
# A WebSocket close frame carries at most 123 bytes of reason.
_CLOSE_REASON_BYTES = 123

# Limits handed to msgpack so that a hostile frame cannot make the unpacker allocate
# more than the frame itself could describe.
_UNPACK_LIMITS: dict[str, Any] = {
    "max_str_len": MAX_FRAME_BYTES,
    "max_bin_len": MAX_FRAME_BYTES,
    "max_array_len": 4096,
    "max_map_len": 1024,
    "max_ext_len": 0,
}
# A frame of at most this many bytes holds no string, binary or array past the limits above, nor
# a map of more than 1024 entries (two bytes each at the least): only the ext limit can apply
# (the keyword arguments cost more than decoding an INPUT).
_SMALL_FRAME = 2048


class ProtocolError(Exception):
    """The peer sent a frame that breaks the protocol.

    Attributes:
        code: the close code to close the connection with.
        reason: what was wrong, for a person; at most 123 bytes of UTF-8 so that it fits
            a WebSocket close frame as is.
    """

    def __init__(self, code: CloseCode, reason: str) -> None:
        raw = reason.encode("utf-8")
        if len(raw) > _CLOSE_REASON_BYTES:
            reason = raw[: _CLOSE_REASON_BYTES - 3].decode("utf-8", "ignore") + "..."
        super().__init__(f"{code.name} ({int(code)}): {reason}")
        self.code = code
        self.reason = reason


def _bad(where: str, expected: str) -> ProtocolError:
    return ProtocolError(CloseCode.BAD_FRAME, f"{where}: expected {expected}")


# -- field checks -------------------------------------------------------------------
# A check takes (value, where) and returns the normalised value or raises ProtocolError.

Check = Callable[[Any, str], Any]


def _int(lo: int, hi: int) -> Check:
    def check(v: Any, where: str) -> int:
        if type(v) is not int or not lo <= v <= hi:
            raise _bad(where, f"an integer in {lo}..{hi}")
        return v

    return check


def _float(v: Any, where: str) -> float:
    t = type(v)
    if t is float:
        if math.isfinite(v):
            return v
    elif t is int:
        f = float(v)
        if math.isfinite(f):
            return f
    raise _bad(where, "a finite number")


def _strip_controls(s: str, keep_newline: bool) -> str:
    if s.isprintable():
        return s
    out = []
    for ch in s:
        if ch.isprintable() or (keep_newline and ch == "\n"):
            out.append(ch)
        elif unicodedata.category(ch)[0] != "C":
            out.append(ch)  # non-ASCII spaces such as U+3000 are not "printable" but fine
    return "".join(out)


def _str(lo: int, hi: int) -> Check:
    def check(v: Any, where: str) -> str:
        if type(v) is not str or not lo <= len(v) <= hi:
            raise _bad(where, f"a string of {lo}-{hi} characters")
        return v

    return check


def _text(hi: int, keep_newline: bool, what: str) -> Check:
    """A person's text: control characters stripped, surrounding spaces trimmed, 1..hi."""

    def check(v: Any, where: str) -> str:
        if type(v) is str:
            v = _strip_controls(v, keep_newline).strip()
            if 1 <= len(v) <= hi:
                return v
        raise _bad(where, f"{what} of 1-{hi} characters")

    return check


def _choice(*values: Any) -> Check:
    allowed = " or ".join(repr(v) for v in values)

    types = {type(v) for v in values}

    def check(v: Any, where: str) -> Any:
        if type(v) not in types or v not in values:
            raise _bad(where, allowed)
        return v

    return check


def _optional(inner: Check, what: str) -> Check:
    def check(v: Any, where: str) -> Any:
        if v is None:
            return None
        try:
            return inner(v, where)
        except ProtocolError:
            raise _bad(where, f"{what} or nil") from None

    return check


def _map(hi: int) -> Check:
    def check(v: Any, where: str) -> dict[str, Any]:
        if type(v) is not dict or len(v) > hi:
            raise _bad(where, f"a map of at most {hi} entries")
        for k in v:
            if type(k) is not str:
                raise _bad(where, "a map with string keys")
        return v

    return check


def _list(hi: int) -> Check:
    def check(v: Any, where: str) -> list[Any]:
        if type(v) is not list or len(v) > hi:
            raise _bad(where, f"a list of at most {hi} items")
        return v

    return check


def _bool(v: Any, where: str) -> bool:
    if type(v) is not bool:
        raise _bad(where, "true or false")
    return v


def _bin(hi: int) -> Check:
    def check(v: Any, where: str) -> bytes:
        if type(v) is not bytes or len(v) > hi:
            raise _bad(where, f"binary of at most {hi} bytes")
        return v

    return check


def _voice_frames(v: Any, where: str) -> list[list[Any]]:
    if type(v) is not list or len(v) > 1024:
        raise _bad(where, "a list of [from_id, seq, data]")
    for i, item in enumerate(v):
        if (
            type(item) is not list
            or len(item) != 3
            or type(item[0]) is not int
            or not 0 <= item[0] <= 0xFFFF
            or type(item[1]) is not int
            or not 0 <= item[1] <= U32_MAX
            or type(item[2]) is not bytes
        ):
            raise _bad(f"{where}[{i}]", "[from_id u16, seq u32, data bin]")
    return v


def _gains(v: Any, where: str) -> list[list[Any]]:
    if type(v) is not list or len(v) > 4096:
        raise _bad(where, "a list of [id, gain]")
    for i, item in enumerate(v):
        if (
            type(item) is not list
            or len(item) != 2
            or type(item[0]) is not int
            or not 0 <= item[0] <= 0xFFFF
            or type(item[1]) is not float
            or not 0.0 <= item[1] <= 1.0
        ):
            raise _bad(f"{where}[{i}]", "[id u16, gain 0..1]")
    return v


def _gain(v: Any, where: str) -> float:
    if type(v) is not float or not 0.0 <= v <= 1.0:
        raise _bad(where, "a gain 0..1")
    return v


def _ids(v: Any, where: str) -> list[int]:
    if type(v) is not list or len(v) > 4096:
        raise _bad(where, "a list of avatar ids")
    for i, item in enumerate(v):
        if type(item) is not int or not 0 <= item <= 0xFFFF:
            raise _bad(f"{where}[{i}]", "an avatar id (u16)")
    return v


def _records(size: int) -> Check:
    def check(v: Any, where: str) -> bytes:
        if type(v) is not bytes or len(v) % size:
            raise _bad(where, f"binary of whole {size}-byte records")
        return v

    return check


def _hello_opts(v: Any, where: str) -> dict[str, Any]:
    v = _map(16)(v, where)
    mode = v.get("mode", "avatar")
    if mode not in ("avatar", "watch"):
        raise _bad(f"{where}.mode", "'avatar' or 'watch'")
    for key in ("briefing", "invite", "seat"):
        if v.get(key) is not None:  # nil is the same as absent
            _str(1, TOKEN_MAX)(v[key], f"{where}.{key}")
    if v.get("gone") is not None:
        _str(1, URL_MAX)(v["gone"], f"{where}.gone")
    return v


def _info(v: Any, where: str) -> list[list[Any]]:
    if type(v) is not list or len(v) > 4096:
        raise _bad(where, "a list of [id, name, color]")
    for i, item in enumerate(v):
        if (
            type(item) is not list
            or len(item) != 3
            or type(item[0]) is not int
            or not 0 <= item[0] <= 0xFFFF
            or type(item[1]) is not str
            or len(item[1]) > NAME_MAX
            or type(item[2]) is not int
            or not 0 <= item[2] <= 0xFFFFFF
        ):
            raise _bad(f"{where}[{i}]", "[id u16, name str, color 0..0xFFFFFF]")
    return v


_u32 = _int(0, U32_MAX)
_u16 = _int(0, 0xFFFF)
_id = _str(1, ID_MAX)
_name = _text(NAME_MAX, keep_newline=False, what="a name")
_chat = _text(CHAT_MAX, keep_newline=True, what="a text")
_any_str = _str(0, MAX_FRAME_BYTES)


# -- messages -----------------------------------------------------------------------


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(name))


@dataclass(frozen=True, slots=True)
class Message:
    """Base of every wire message: ``TYPE`` and one check per field, in field order."""

    TYPE: ClassVar[MsgType]
    CHECKS: ClassVar[tuple[Check, ...]]
    # Filled in by @register: field names and "msg.field" labels for reasons.
    FIELDS: ClassVar[tuple[str, ...]] = ()
    _WHERE: ClassVar[tuple[str, ...]] = ()

    def encode(self) -> bytes:
        """The frame: a MessagePack array ``[TYPE, *fields]``, str as str, bytes as bin."""
        return msgpack.packb(
            [int(self.TYPE), *[getattr(self, f) for f in self.FIELDS]], use_bin_type=True
        )

    def check(self) -> None:
        """Validate every field (types, ranges, lengths).

        Raises:
            ProtocolError: with ``BAD_FRAME`` and a reason naming the field, also when a
                value is not in the form :func:`decode` would produce (e.g. an unclipped
                input intent or a name with control characters).
        """
        values = [getattr(self, f) for f in self.FIELDS]
        normal = self._normalise(values)
        for where, v, n in zip(self._WHERE, values, normal, strict=True):
            if type(v) is not type(n) or v != n:
                raise ProtocolError(
                    CloseCode.BAD_FRAME, f"{where}: not normalised ({v!r} would be {n!r})"
                )

    @classmethod
    def _normalise(cls, values: list[Any]) -> list[Any]:
        """Run the field checks over ``values`` (one per field); return normalised values."""
        return [c(v, w) for c, v, w in zip(cls.CHECKS, values, cls._WHERE, strict=True)]

    @classmethod
    def from_fields(cls, items: list[Any]) -> Message:
        """Build a checked message from a decoded array ``[type, *fields]``."""
        n = len(cls.FIELDS)
        if len(items) != n + 1:
            raise ProtocolError(
                CloseCode.BAD_FRAME,
                f"{cls._label()}: expected {n} fields after the type, got {len(items) - 1}",
            )
        return cls(*cls._normalise(items[1:]))

    @classmethod
    def _label(cls) -> str:
        return _snake(cls.__name__)


MESSAGE_TYPES: dict[int, type[Message]] = {}


def register(cls: type[Message]) -> type[Message]:
    """Add a message class to the decode table (a class decorator).

    Other modules may register messages for codes of ``codes.MsgType`` that this module
    does not define (e.g. voice); a code may be registered once.
    """
    names = tuple(f.name for f in fields(cls))
    if len(names) != len(cls.CHECKS):
        raise TypeError(f"{cls.__name__}: {len(names)} fields but {len(cls.CHECKS)} checks")
    if int(cls.TYPE) in MESSAGE_TYPES:
        raise TypeError(f"{cls.__name__}: type {cls.TYPE!r} is already registered")
    label = _snake(cls.__name__)
    cls.FIELDS = names
    cls._WHERE = tuple(f"{label}.{n}" for n in names)
    MESSAGE_TYPES[int(cls.TYPE)] = cls
    return cls


# client -> server


@register
@dataclass(frozen=True, slots=True)
class Hello(Message):
    """First message of a connection: who I am, which protocol, resume my avatar?

    ``opts``: ``mode`` ("avatar" default, or "watch"), ``briefing`` id, ``invite`` token; in a
    cluster ``seat`` (a REDIRECT's reservation) and ``gone`` (the address of a REDIRECT that did
    not answer: its process just died, so the receiving process waits for a new owner).
    """

    TYPE: ClassVar[MsgType] = MsgType.HELLO
    CHECKS: ClassVar[tuple[Check, ...]] = (
        _u32,
        _name,
        _optional(_str(1, TOKEN_MAX), f"a string of 1-{TOKEN_MAX} characters"),
        _hello_opts,
    )
    version: int
    name: str
    resume: str | None = None
    opts: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.opts is None:
            object.__setattr__(self, "opts", {})

    @property
    def mode(self) -> str:
        """The connection mode: "avatar" or "watch"."""
        assert self.opts is not None
        return str(self.opts.get("mode", "avatar"))

    @classmethod
    def from_fields(cls, items: list[Any]) -> Message:
        # A client of another protocol version may shape its hello differently: tell it
        # the version is wrong rather than that the frame is bad.
        if len(items) > 1 and type(items[1]) is int and items[1] != PROTOCOL_VERSION:
            raise ProtocolError(
                CloseCode.UNSUPPORTED_VERSION,
                f"hello.version: this server speaks protocol {PROTOCOL_VERSION}, "
                f"not {items[1]}; reload the page",
            )
        return super(Hello, cls).from_fields(items)


@register
@dataclass(frozen=True, slots=True)
class Input(Message):
    """Movement intent in world axes, held until the next input; carries an ack too."""

    TYPE: ClassVar[MsgType] = MsgType.INPUT
    CHECKS: ClassVar[tuple[Check, ...]] = (_u32, _u32, _float, _float, _float)
    seq: int
    ack_tick: int
    mx: float
    mz: float
    yaw: float

    @classmethod
    def from_fields(cls, items: list[Any]) -> Message:
        # Every client sends inputs and acks ten times a second: take the common, already
        # normal frame without the generic checks; anything else gets them, and the reason.
        if plain_input(items):
            return cls(items[1], items[2], float(items[3]), float(items[4]), float(items[5]))
        return super(Input, cls).from_fields(items)

    @classmethod
    def _normalise(cls, values: list[Any]) -> list[Any]:
        seq, ack, mx, mz, yaw = super(Input, cls)._normalise(values)
        h = math.hypot(mx, mz)
        if math.isinf(h):  # both finite but huge: scale down first so the direction survives
            big = max(abs(mx), abs(mz))
            mx, mz = mx / big, mz / big
            h = math.hypot(mx, mz)
        if h > 1.0:
            mx, mz = mx / h, mz / h
            # Rounding may leave the hypot a hair above 1; never let it through.
            if math.hypot(mx, mz) > 1.0:
                mx, mz = math.nextafter(mx, 0.0), math.nextafter(mz, 0.0)
        return [seq, ack, mx, mz, yaw]


@register
@dataclass(frozen=True, slots=True)
class Ack(Message):
    """The newest snapshot tick the client has applied."""

    TYPE: ClassVar[MsgType] = MsgType.ACK
    CHECKS: ClassVar[tuple[Check, ...]] = (_u32,)
    tick: int

    @classmethod
    def from_fields(cls, items: list[Any]) -> Message:
        if plain_ack(items):
            return cls(items[1])  # the common frame, as for Input
        return super(Ack, cls).from_fields(items)


def plain_input(items: list[Any]) -> bool:
    """Whether the fields of a frame (``[INPUT, seq, ack_tick, mx, mz, yaw]``) are an input as
    clients send them, which the generic checks would take as it is but for an integral number
    made a float: in range, ``|m| <= 1``, nothing else to normalise (a browser's codec packs
    0 and 1 as integers). Such a frame needs no other check (``Input.from_fields``)."""
    if len(items) != 6:
        return False
    _, seq, ack, mx, mz, yaw = items
    return (
        type(seq) is int
        and type(ack) is int
        and type(mx) in _NUMBER
        and type(mz) in _NUMBER
        and type(yaw) in _NUMBER
        and 0 <= seq <= U32_MAX
        and 0 <= ack <= U32_MAX
        and math.hypot(mx, mz) <= 1.0  # False for NaN; inf is > 1
        and math.isfinite(yaw)
    )


_NUMBER = (float, int)  # not bool: type() is exact


def plain_ack(items: list[Any]) -> bool:
    """Whether the fields of a frame (``[ACK, tick]``) are an ack the generic checks would take."""
    return len(items) == 2 and type(items[1]) is int and 0 <= items[1] <= U32_MAX


@register
@dataclass(frozen=True, slots=True)
class Chat(Message):
    """A chat line: scope 0 the whole instance, 1 people nearby."""

    TYPE: ClassVar[MsgType] = MsgType.CHAT
    CHECKS: ClassVar[tuple[Check, ...]] = (_choice(0, 1), _chat)
    scope: int
    text: str


@register
@dataclass(frozen=True, slots=True)
class Ping(Message):
    """Clock probe; the server answers with :class:`Pong`."""

    TYPE: ClassVar[MsgType] = MsgType.PING
    CHECKS: ClassVar[tuple[Check, ...]] = (_float,)
    client_time: float


@register
@dataclass(frozen=True, slots=True)
class KioskOpen(Message):
    """Open a kiosk's panel in a language ("ja", "en")."""

    TYPE: ClassVar[MsgType] = MsgType.KIOSK_OPEN
    CHECKS: ClassVar[tuple[Check, ...]] = (_id, _str(1, 16))
    kiosk_id: str
    lang: str


@register
@dataclass(frozen=True, slots=True)
class KioskChoose(Message):
    """Choose a channel of a kiosk's procedure on a device ("pc" or "phone")."""

    TYPE: ClassVar[MsgType] = MsgType.KIOSK_CHOOSE
    CHECKS: ClassVar[tuple[Check, ...]] = (_id, _id, _choice("pc", "phone"))
    kiosk_id: str
    channel: str
    device: str


@register
@dataclass(frozen=True, slots=True)
class HelperAsk(Message):
    """Ask a helper kiosk (moving house, bulky garbage) a question."""

    TYPE: ClassVar[MsgType] = MsgType.HELPER_ASK
    CHECKS: ClassVar[tuple[Check, ...]] = (_id, _map(MAP_MAX))
    helper: str
    query: dict[str, Any]


@register
@dataclass(frozen=True, slots=True)
class Question(Message):
    """An audience question to a briefing."""

    TYPE: ClassVar[MsgType] = MsgType.QUESTION
    CHECKS: ClassVar[tuple[Check, ...]] = (_id, _chat)
    briefing_id: str
    text: str


@register
@dataclass(frozen=True, slots=True)
class BriefingJoin(Message):
    """Watch a briefing."""

    TYPE: ClassVar[MsgType] = MsgType.BRIEFING_JOIN
    CHECKS: ClassVar[tuple[Check, ...]] = (_id,)
    briefing_id: str


@register
@dataclass(frozen=True, slots=True)
class Voice(Message):
    """One Opus packet of the microphone (20 ms), never decoded or kept by the server.

    ``talking`` false says the person stopped (push-to-talk released, mic muted): the frame is
    not forwarded. ``megaphone`` asks for the whole instance; honoured for staff only. A packet
    over ``server.voice`` 's limit (400 bytes) is dropped, not refused, so the decode bound is
    the frame's.
    """

    TYPE: ClassVar[MsgType] = MsgType.VOICE
    CHECKS: ClassVar[tuple[Check, ...]] = (_u32, _bool, _bool, _bin(MAX_FRAME_BYTES))
    seq: int
    talking: bool
    megaphone: bool
    data: bytes

    @classmethod
    def from_fields(cls, items: list[Any]) -> Message:
        # 50 a second from each talker: the frame as clients send it without the generic checks
        # (decode() has bounded the frame, so the packet is within MAX_FRAME_BYTES)
        if (
            len(items) == 5
            and type(items[1]) is int
            and 0 <= items[1] <= U32_MAX
            and type(items[2]) is bool
            and type(items[3]) is bool
            and type(items[4]) is bytes
        ):
            return cls(items[1], items[2], items[3], items[4])
        return super(Voice, cls).from_fields(items)


# server -> client


@register
@dataclass(frozen=True, slots=True)
class Welcome(Message):
    """Answer to hello: your avatar, instance, world, clock and resume token.

    A watch-only viewer has no avatar and no instance: ``avatar_id`` -1 and ``instance`` "".
    """

    TYPE: ClassVar[MsgType] = MsgType.WELCOME
    CHECKS: ClassVar[tuple[Check, ...]] = (
        _int(-1, 0xFFFF),
        _str(0, 128),
        _str(1, 128),
        _str(1, 128),
        _float,
        _str(1, TOKEN_MAX),
        _int(1, 1000),
        _int(1, 1000),
    )
    avatar_id: int
    instance: str
    world_id: str
    world_hash: str
    server_time: float
    resume: str
    tick_rate: int
    snapshot_rate: int


@register
@dataclass(frozen=True, slots=True)
class Snapshot(Message):
    """One tick of the view: a delta against ``base_tick`` (0: against nothing).

    The binary sections are described in ``server/protocol/snapshot.py``.
    """

    TYPE: ClassVar[MsgType] = MsgType.SNAPSHOT
    CHECKS: ClassVar[tuple[Check, ...]] = (
        _u32,
        _u32,
        _u32,
        _float,
        _records(12),
        _records(4),
        _records(5),
        _records(3),
        _records(2),
        _info,
        _u32,
    )
    tick: int
    base_tick: int
    last_seq: int
    server_time: float
    full: bytes = b""
    move: bytes = b""
    turn_move: bytes = b""
    turn: bytes = b""
    left: bytes = b""
    info: list[list[Any]] | None = None
    crowd: int = 0

    def __post_init__(self) -> None:
        if self.info is None:
            object.__setattr__(self, "info", [])

    @classmethod
    def _normalise(cls, values: list[Any]) -> list[Any]:
        out = super(Snapshot, cls)._normalise(values)
        if out[1] and out[1] >= out[0]:
            raise _bad("snapshot.base_tick", "0 or a tick before snapshot.tick")
        return out


@register
@dataclass(frozen=True, slots=True)
class ChatMsg(Message):
    """A chat line from someone, as the server relays it."""

    TYPE: ClassVar[MsgType] = MsgType.CHAT_MSG
    CHECKS: ClassVar[tuple[Check, ...]] = (_u16, _name, _choice(0, 1), _chat, _float)
    from_id: int
    name: str
    scope: int
    text: str
    server_time: float


@register
@dataclass(frozen=True, slots=True)
class Pong(Message):
    """Answer to ping: the client's time echoed, and the server's."""

    TYPE: ClassVar[MsgType] = MsgType.PONG
    CHECKS: ClassVar[tuple[Check, ...]] = (_float, _float)
    client_time: float
    server_time: float


@register
@dataclass(frozen=True, slots=True)
class Error(Message):
    """A request failed; the connection stays open."""

    TYPE: ClassVar[MsgType] = MsgType.ERROR
    CHECKS: ClassVar[tuple[Check, ...]] = (_id, _str(0, 1000))
    code: str
    reason: str


@register
@dataclass(frozen=True, slots=True)
class Notice(Message):
    """Something the client should know, e.g. kind "draining"."""

    TYPE: ClassVar[MsgType] = MsgType.NOTICE
    CHECKS: ClassVar[tuple[Check, ...]] = (_id, _map(1024))
    kind: str
    data: dict[str, Any]


@register
@dataclass(frozen=True, slots=True)
class KioskPanel(Message):
    """The content of a kiosk's panel."""

    TYPE: ClassVar[MsgType] = MsgType.KIOSK_PANEL
    CHECKS: ClassVar[tuple[Check, ...]] = (_id, _map(1024))
    kiosk_id: str
    panel: dict[str, Any]


@register
@dataclass(frozen=True, slots=True)
class KioskLink(Message):
    """A deep link into an online procedure, with a QR code (SVG) for PCs."""

    TYPE: ClassVar[MsgType] = MsgType.KIOSK_LINK
    CHECKS: ClassVar[tuple[Check, ...]] = (
        _id,
        _id,
        _str(1, 4096),
        _optional(_any_str, "a string"),
    )
    kiosk_id: str
    channel: str
    url: str
    qr_svg: str | None = None


@register
@dataclass(frozen=True, slots=True)
class HelperAnswer(Message):
    """A helper kiosk's answer."""

    TYPE: ClassVar[MsgType] = MsgType.HELPER_ANSWER
    CHECKS: ClassVar[tuple[Check, ...]] = (_id, _map(1024))
    helper: str
    answer: dict[str, Any]


@register
@dataclass(frozen=True, slots=True)
class Briefing(Message):
    """A briefing's timeline state (see ``server/briefing/``)."""

    TYPE: ClassVar[MsgType] = MsgType.BRIEFING
    CHECKS: ClassVar[tuple[Check, ...]] = (_map(1024),)
    state: dict[str, Any]


@register
@dataclass(frozen=True, slots=True)
class Questions(Message):
    """The queue of audience questions of a briefing."""

    TYPE: ClassVar[MsgType] = MsgType.QUESTIONS
    CHECKS: ClassVar[tuple[Check, ...]] = (_id, _list(4096))
    briefing_id: str
    questions: list[Any]


@register
@dataclass(frozen=True, slots=True)
class VoiceFrame(Message):
    """The voice packets for one listener since the last one (every 20 ms): ``[from_id, seq,
    data]`` each, only from the speakers it is subscribed to (``server/voice/``)."""

    TYPE: ClassVar[MsgType] = MsgType.VOICE_FRAME
    CHECKS: ClassVar[tuple[Check, ...]] = (_voice_frames,)
    frames: list[list[Any]]


@register
@dataclass(frozen=True, slots=True)
class AudioSubs(Message):
    """Changes of whom this listener hears: ``add`` ``[id, gain]`` (new, or a gain moved by
    1 dB or more), ``remove`` ids no longer heard; ``stage`` the gain of the briefing's
    narration (a stage source the page plays from its asset) when that changed, else nil."""

    TYPE: ClassVar[MsgType] = MsgType.AUDIO_SUBS
    CHECKS: ClassVar[tuple[Check, ...]] = (_gains, _ids, _optional(_gain, "a gain 0..1"))
    add: list[list[Any]]
    remove: list[int]
    stage: float | None = None


@register
@dataclass(frozen=True, slots=True)
class VoiceHeard(Message):
    """To a speaker: who hears them now (``count`` listeners, watch-only viewers included; the
    avatar ids of up to ``HEARD_IDS_MAX`` of them, loudest first), when that changes. Sent
    while they talk, and once with ``count`` 0 when nobody hears them any more."""

    TYPE: ClassVar[MsgType] = MsgType.VOICE_HEARD
    CHECKS: ClassVar[tuple[Check, ...]] = (_u32, _ids)
    count: int
    ids: list[int]


@register
@dataclass(frozen=True, slots=True)
class Redirect(Message):
    """Sent instead of :class:`Welcome` when another process of the cluster serves the instance
    this hello belongs in: say hello again at ``url`` (``ws://`` or ``wss://``) with
    ``opts.seat = seat``, a signed seat reservation valid for a few seconds (docs/cluster.md).
    The connection is closed with MOVED right after."""

    TYPE: ClassVar[MsgType] = MsgType.REDIRECT
    CHECKS: ClassVar[tuple[Check, ...]] = (_str(1, 2048), _str(1, TOKEN_MAX), _str(0, 128))
    url: str
    seat: str
    instance: str


def decode(data: bytes | bytearray | memoryview) -> Message:
    """Decode and check one frame from a peer.

    Works for both directions (the server decodes client messages; tests and the bench
    decode what the server sends).

    Raises:
        ProtocolError: ``FRAME_TOO_BIG`` over 64 KiB; ``BAD_FRAME`` for bytes that are not
            one MessagePack array or fields of the wrong count or type; ``UNKNOWN_TYPE``
            for a type code no message has; ``UNSUPPORTED_VERSION`` for a hello of another
            protocol version.
    """
    if len(data) > MAX_FRAME_BYTES:
        raise ProtocolError(
            CloseCode.FRAME_TOO_BIG, f"frame of {len(data)} bytes; at most {MAX_FRAME_BYTES}"
        )
    try:
        if len(data) <= _SMALL_FRAME:  # no count or length in it can pass a limit but ext's
            items = msgpack.unpackb(data, raw=False, strict_map_key=True, max_ext_len=0)
        else:
            items = msgpack.unpackb(data, raw=False, strict_map_key=True, **_UNPACK_LIMITS)
    except Exception as exc:  # msgpack raises several types; all mean the same to the peer
        raise ProtocolError(
            CloseCode.BAD_FRAME, f"frame: not one MessagePack value ({type(exc).__name__})"
        ) from None
    if type(items) is not list or not items:
        raise ProtocolError(CloseCode.BAD_FRAME, "frame: expected a MessagePack array [type, ...]")
    code = items[0]
    cls = MESSAGE_TYPES.get(code) if type(code) is int else None
    if cls is None:
        raise ProtocolError(CloseCode.UNKNOWN_TYPE, f"frame: unknown message type {code!r}"[:100])
    return cls.from_fields(items)
