"""Protocol v1 messages: bytes on the wire, round trips, and what a bad frame gets.

The tables of expected bytes pin the wire format of ``docs/architecture.md``: a change
here is a change every client must follow.
"""

from __future__ import annotations

import math
import random

import msgpack
import pytest

from server.counters.wire import CounterAction, CounterState
from server.events.wire import EventState, Host, Moderate
from server.protocol.codes import CLOSE_REASONS, MAX_FRAME_BYTES, CloseCode, MsgType
from server.protocol.messages import (
    MESSAGE_TYPES,
    Ack,
    AudioSubs,
    Briefing,
    BriefingJoin,
    Chat,
    ChatMsg,
    Error,
    Hello,
    HelperAnswer,
    HelperAsk,
    Input,
    KioskChoose,
    KioskLink,
    KioskOpen,
    KioskPanel,
    Message,
    Notice,
    Ping,
    Pong,
    ProtocolError,
    Question,
    Questions,
    Redirect,
    Snapshot,
    Voice,
    VoiceFrame,
    VoiceHeard,
    Welcome,
    decode,
)

F15 = b"\xcb?\xf8\x00\x00\x00\x00\x00\x00"  # float64 1.5
F20 = b"\xcb@\x00\x00\x00\x00\x00\x00\x00"  # float64 2.0

WIRE: list[tuple[Message, bytes]] = [
    (
        Hello(1, "太郎", None, {"mode": "watch"}),
        b"\x95\x01\x01\xa6\xe5\xa4\xaa\xe9\x83\x8e\xc0\x81\xa4mode\xa5watch",
    ),
    (
        Input(3, 40, 0.0, -1.0, 1.5),
        b"\x96\x02\x03\x28\xcb" + bytes(8) + b"\xcb\xbf\xf0" + bytes(6) + F15,
    ),
    (Ack(41), b"\x92\x03\x29"),
    (Chat(1, "hi"), b"\x93\x04\x01\xa2hi"),
    (Ping(1.5), b"\x92\x05" + F15),
    (KioskOpen("k1", "ja"), b"\x93\x06\xa2k1\xa2ja"),
    (KioskChoose("k1", "line", "phone"), b"\x94\x07\xa2k1\xa4line\xa5phone"),
    (HelperAsk("garbage", {"item": "sofa"}), b"\x93\x08\xa7garbage\x81\xa4item\xa4sofa"),
    (Question("b1", "why?"), b"\x93\x09\xa2b1\xa4why?"),
    (BriefingJoin("b1"), b"\x92\x0a\xa2b1"),
    (
        Welcome(7, "lobby-1", "machida", "ab12", 1000.0, "tok", 20, 20),
        b"\x99\x20\x07\xa7lobby-1\xa7machida\xa4ab12\xcb@\x8f@\x00\x00\x00\x00\x00\xa3tok\x14\x14",
    ),
    (
        Snapshot(
            10,
            8,
            3,
            2.5,
            bytes(range(12)),
            b"\x01\x00\xff\x01",
            b"",
            b"",
            b"\x02\x00",
            [[1, "a", 255]],
            4,
        ),
        b"\x9c\x21\x0a\x08\x03\xcb@\x04\x00\x00\x00\x00\x00\x00"
        b"\xc4\x0c" + bytes(range(12)) + b"\xc4\x04\x01\x00\xff\x01\xc4\x00\xc4\x00"
        b"\xc4\x02\x02\x00\x91\x93\x01\xa1a\xcc\xff\x04",
    ),
    (ChatMsg(7, "taro", 0, "hi", 2.0), b"\x96\x22\x07\xa4taro\x00\xa2hi" + F20),
    (Pong(1.5, 2.0), b"\x93\x23" + F15 + F20),
    (Error("kiosk", "no such kiosk"), b"\x93\x24\xa5kiosk\xadno such kiosk"),
    (Notice("draining", {"in": 5}), b"\x93\x25\xa8draining\x81\xa2in\x05"),
    (KioskPanel("k1", {"t": "x"}), b"\x93\x26\xa2k1\x81\xa1t\xa1x"),
    (KioskLink("k1", "line", "https://x/", None), b"\x95\x27\xa2k1\xa4line\xaahttps://x/\xc0"),
    (HelperAnswer("garbage", {"fee": 400}), b"\x93\x28\xa7garbage\x81\xa3fee\xcd\x01\x90"),
    (Briefing({"t": 0}), b"\x92\x29\x81\xa1t\x00"),
    (Questions("b1", []), b"\x93\x2a\xa2b1\x90"),
    (Voice(7, True, False, b"\x01\x02"), b"\x95\x0b\x07\xc3\xc2\xc4\x02\x01\x02"),
    (VoiceFrame([[3, 7, b"\x01"]]), b"\x92\x2b\x91\x93\x03\x07\xc4\x01\x01"),
    (
        AudioSubs([[3, 0.5]], [4]),
        b"\x94\x2c\x91\x92\x03\xcb\x3f\xe0" + bytes(6) + b"\x91\x04\xc0",
    ),
    # only the narration's gain changed (a stage source the page plays itself)
    (AudioSubs([], [], 0.5), b"\x94\x2c\x90\x90\xcb\x3f\xe0" + bytes(6)),
    (VoiceHeard(2, [3]), b"\x93\x2d\x02\x91\x03"),
    # the events feature's messages (server/events/wire.py)
    (Host("mute", {"target": 3}), b"\x93\x0c\xa4mute\x81\xa6target\x03"),
    (Moderate("block", 7, ""), b"\x94\x0d\xa5block\x07\xa0"),
    (EventState({"phase": "round"}), b"\x92\x2e\x81\xa5phase\xa5round"),
    (Redirect("ws://a/ws", "s", "i"), b"\x94\x2f\xa9ws://a/ws\xa1s\xa1i"),
    # the service counters' messages (server/counters/wire.py)
    (CounterAction("call", {}), b"\x93\x0e\xa4call\x80"),
    (CounterState({"ticket": None}), b"\x92\x30\x81\xa6ticket\xc0"),
]


@pytest.mark.parametrize(("msg", "wire"), WIRE, ids=[type(m).__name__ for m, _ in WIRE])
def test_message_bytes_and_round_trip(msg: Message, wire: bytes) -> None:
    msg.check()
    assert msg.encode() == wire
    back = decode(wire)
    assert back == msg
    assert type(back) is type(msg)


def test_every_message_type_of_the_contract_is_in_the_table() -> None:
    tested = {type(m).TYPE for m, _ in WIRE}
    expected = set(MsgType)
    assert tested == expected
    assert {MsgType(t) for t in MESSAGE_TYPES} == expected


@pytest.mark.parametrize("code", list(CloseCode), ids=[c.name for c in CloseCode])
def test_every_close_code_has_a_reason_that_fits_a_close_frame(code: CloseCode) -> None:
    assert 4000 <= code < 5000
    reason = CLOSE_REASONS[code]
    assert 0 < len(reason.encode()) <= 123
    err = ProtocolError(code, reason)
    assert (err.code, err.reason) == (code, reason)
    assert CloseCode(int(err.code)) is code


def test_a_long_reason_is_cut_to_fit_a_close_frame() -> None:
    err = ProtocolError(CloseCode.BAD_FRAME, "ü" * 200)
    assert len(err.reason.encode()) <= 123
    assert err.reason.endswith("...")


def packed(*items: object) -> bytes:
    return msgpack.packb(list(items), use_bin_type=True)


BAD: list[tuple[str, bytes, CloseCode, str]] = [
    ("not msgpack", b"\xc1", CloseCode.BAD_FRAME, "frame: not one MessagePack value"),
    ("two values", b"\x91\x03\x03", CloseCode.BAD_FRAME, "frame: not one MessagePack value"),
    ("truncated", b"\x92\x03", CloseCode.BAD_FRAME, "frame: not one MessagePack value"),
    ("bad utf-8", b"\x93\x04\x00\xa2\xff\xfe", CloseCode.BAD_FRAME, "MessagePack"),
    ("a map", packed({"t": 1})[1:], CloseCode.BAD_FRAME, "expected a MessagePack array"),
    ("an int", b"\x03", CloseCode.BAD_FRAME, "expected a MessagePack array"),
    ("empty array", b"\x90", CloseCode.BAD_FRAME, "expected a MessagePack array"),
    ("ext type", b"\x92\x03\xd4\x01\x00", CloseCode.BAD_FRAME, "MessagePack"),
    ("unknown type", packed(99, 1), CloseCode.UNKNOWN_TYPE, "unknown message type 99"),
    ("type as text", packed("hello"), CloseCode.UNKNOWN_TYPE, "unknown message type"),
    ("type as bool", packed(True, 1), CloseCode.UNKNOWN_TYPE, "unknown message type"),
    ("too big", packed(4, 0, "x" * MAX_FRAME_BYTES), CloseCode.FRAME_TOO_BIG, "at most 65536"),
    ("old version", packed(1, 0, "a", None, {}), CloseCode.UNSUPPORTED_VERSION, "not 0"),
    ("few fields", packed(2, 1, 2, 3.0), CloseCode.BAD_FRAME, "input: expected 5 fields"),
    ("many fields", packed(3, 1, 2), CloseCode.BAD_FRAME, "ack: expected 1 fields"),
    (
        "empty name",
        packed(1, 1, "", None, {}),
        CloseCode.BAD_FRAME,
        "hello.name: expected a name of 1-24",
    ),
    ("long name", packed(1, 1, "x" * 25, None, {}), CloseCode.BAD_FRAME, "hello.name"),
    ("only controls", packed(1, 1, "\x00\x1b", None, {}), CloseCode.BAD_FRAME, "hello.name"),
    ("name bytes", packed(1, 1, b"taro", None, {}), CloseCode.BAD_FRAME, "hello.name"),
    ("bad mode", packed(1, 1, "a", None, {"mode": "god"}), CloseCode.BAD_FRAME, "hello.opts.mode"),
    ("opts list", packed(1, 1, "a", None, []), CloseCode.BAD_FRAME, "hello.opts: expected a map"),
    ("resume int", packed(1, 1, "a", 5, {}), CloseCode.BAD_FRAME, "hello.resume"),
    (
        "nan",
        packed(2, 1, 0, math.nan, 0.0, 0.0),
        CloseCode.BAD_FRAME,
        "input.mx: expected a finite",
    ),
    ("inf", packed(2, 1, 0, 0.0, 0.0, math.inf), CloseCode.BAD_FRAME, "input.yaw"),
    ("str float", packed(2, 1, 0, "0", 0.0, 0.0), CloseCode.BAD_FRAME, "input.mx"),
    (
        "neg seq",
        packed(2, -1, 0, 0.0, 0.0, 0.0),
        CloseCode.BAD_FRAME,
        "input.seq: expected an integer",
    ),
    ("seq float", packed(2, 1.0, 0, 0.0, 0.0, 0.0), CloseCode.BAD_FRAME, "input.seq"),
    ("huge tick", packed(3, 2**40), CloseCode.BAD_FRAME, "ack.tick"),
    ("bool tick", packed(3, True), CloseCode.BAD_FRAME, "ack.tick"),
    ("scope 2", packed(4, 2, "hi"), CloseCode.BAD_FRAME, "chat.scope"),
    ("scope float", packed(4, 0.0, "hi"), CloseCode.BAD_FRAME, "chat.scope: expected 0 or 1"),
    (
        "deep nesting",
        b"\x93\x08\xa1g" + b"\x81\xa1k" * 2000 + b"\xc0",
        CloseCode.BAD_FRAME,
        "frame",
    ),
    ("nested arrays", b"\x91" * 60000 + b"\x01", CloseCode.BAD_FRAME, "frame"),
    (
        "long chat",
        packed(4, 0, "x" * 501),
        CloseCode.BAD_FRAME,
        "chat.text: expected a text of 1-500",
    ),
    ("blank chat", packed(4, 0, "  \n "), CloseCode.BAD_FRAME, "chat.text"),
    ("device", packed(7, "k1", "line", "tv"), CloseCode.BAD_FRAME, "kiosk_choose.device"),
    ("query", packed(8, "garbage", "sofa"), CloseCode.BAD_FRAME, "helper_ask.query"),
    ("int keys", b"\x93\x08\xa1g\x81\x01\x02", CloseCode.BAD_FRAME, "MessagePack"),
    ("long id", packed(10, "b" * 65), CloseCode.BAD_FRAME, "briefing_join.briefing_id"),
    (
        "ragged full",
        packed(33, 2, 0, 0, 0.0, b"x" * 11, b"", b"", b"", b"", [], 0),
        CloseCode.BAD_FRAME,
        "snapshot.full: expected binary of whole 12-byte records",
    ),
    (
        "base after tick",
        packed(33, 2, 2, 0, 0.0, b"", b"", b"", b"", b"", [], 0),
        CloseCode.BAD_FRAME,
        "snapshot.base_tick",
    ),
    ("stage gain 2", packed(44, [], [], 2.0), CloseCode.BAD_FRAME, "audio_subs.stage"),
    ("stage gain str", packed(44, [], [], "0.5"), CloseCode.BAD_FRAME, "audio_subs.stage"),
    (
        "bad info",
        packed(33, 2, 0, 0, 0.0, b"", b"", b"", b"", b"", [[1, "a"]], 0),
        CloseCode.BAD_FRAME,
        "snapshot.info[0]",
    ),
]


@pytest.mark.parametrize(("frame", "code", "reason"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_bad_frame_gets_its_close_code_and_a_reason_naming_the_field(
    frame: bytes, code: CloseCode, reason: str
) -> None:
    with pytest.raises(ProtocolError) as info:
        decode(frame)
    assert info.value.code is code
    assert reason in info.value.reason
    assert len(info.value.reason.encode()) <= 123


def test_a_hostile_length_header_is_refused_without_allocating() -> None:
    # An array header claiming 2**32-1 elements in a 5-byte frame.
    with pytest.raises(ProtocolError) as info:
        decode(b"\xdd\xff\xff\xff\xff")
    assert info.value.code is CloseCode.BAD_FRAME


def test_names_lose_control_characters_and_keep_japanese_spaces() -> None:
    msg = decode(packed(1, 1, " \x1b[31m山田\u3000花子\u202e\n ", None, {}))
    assert isinstance(msg, Hello)
    assert msg.name == "[31m山田\u3000花子"


def test_chat_keeps_newlines_and_drops_other_controls() -> None:
    msg = decode(packed(4, 1, "line one\nline\x07 two\r"))
    assert msg == Chat(1, "line one\nline two")


def test_input_intent_is_clipped_to_unit_length_and_ints_become_floats() -> None:
    msg = decode(packed(2, 7, 3, 3, 4, 0))
    assert isinstance(msg, Input)
    assert (msg.seq, msg.ack_tick) == (7, 3)
    assert math.hypot(msg.mx, msg.mz) <= 1.0
    assert msg.mx == pytest.approx(0.6) and msg.mz == pytest.approx(0.8)
    assert type(msg.yaw) is float
    huge = decode(packed(2, 1, 0, 1e308, -1e308, 0.0))
    assert isinstance(huge, Input)
    assert huge.mx == pytest.approx(0.7071067811865476) and huge.mz == pytest.approx(-huge.mx)
    for mx, mz in [(1e300, 1e300), (1.0, 1.0), (-0.7071067811865476, 0.7071067811865476)]:
        m = decode(packed(2, 1, 0, mx, mz, 0.0))
        assert isinstance(m, Input)
        assert math.hypot(m.mx, m.mz) <= 1.0


def test_hello_defaults_and_mode() -> None:
    msg = decode(Hello(1, "taro").encode())
    assert msg == Hello(1, "taro", None, {})
    assert isinstance(msg, Hello) and msg.mode == "avatar"
    watch = decode(packed(1, 1, "v", "tok", {"mode": "watch", "briefing": "b1"}))
    assert isinstance(watch, Hello) and watch.mode == "watch" and watch.resume == "tok"
    # a page without a briefing id in its URL sends nil: same as absent
    assert decode(packed(1, 1, "v", None, {"mode": "watch", "briefing": None})) == Hello(
        1, "v", None, {"mode": "watch", "briefing": None}
    )
    with pytest.raises(ProtocolError) as info:
        decode(packed(1, 1, "v", None, {"invite": 7}))
    assert info.value.reason.startswith("hello.opts.invite: expected a string")
    # a cluster's client says which redirect address did not answer (opts.gone): an address
    gone = decode(packed(1, 1, "v", "tok", {"gone": "ws://p1.example:8081/ws"}))
    assert isinstance(gone, Hello) and gone.opts == {"gone": "ws://p1.example:8081/ws"}
    with pytest.raises(ProtocolError) as info:
        decode(packed(1, 1, "v", "tok", {"gone": "x" * 600}))
    assert info.value.reason.startswith("hello.opts.gone:")


@pytest.mark.parametrize(
    ("msg", "field"),
    [
        (Input(1, 0, 1.0, 1.0, 0.0), "input.mx"),
        (Hello(1, "a\x00b"), "hello.name"),
        (Ack(-1), "ack.tick"),
        (Chat(0, "x" * 501), "chat.text"),
        (Snapshot(1, 0, 0, 0.0, b"abc"), "snapshot.full"),
        (Welcome(70000, "i", "w", "h", 0.0, "r", 20, 20), "welcome.avatar_id"),
        (Pong(0.0, math.nan), "pong.server_time"),
        (KioskLink("k", "line", "", None), "kiosk_link.url"),
    ],
)
def test_check_refuses_what_a_client_would_refuse(msg: Message, field: str) -> None:
    with pytest.raises(ProtocolError) as info:
        msg.check()
    assert info.value.reason.startswith(field)


def test_messages_are_frozen_values() -> None:
    a = Ack(3)
    with pytest.raises(AttributeError):
        a.tick = 4  # type: ignore[misc]
    assert not hasattr(a, "__dict__")
    assert Ack(3) == a and hash(Ack(3)) == hash(a)


def test_the_fast_path_for_input_and_ack_agrees_with_the_checked_one() -> None:
    rng = random.Random(11)
    specials = [0.0, -0.0, 1.0, -1.0, 0.6, 0.8, 0.7071067811865476, 1e-300, 2.0, 1e308, 3]
    cases = [
        [
            rng.choice([0, 1, 2**32 - 1, 2**32, -1, 7]),
            rng.choice([0, 5, 2**32 - 1, 2**32]),
            rng.choice(specials + [rng.uniform(-1.5, 1.5)]),
            rng.choice(specials + [rng.uniform(-1.5, 1.5)]),
            rng.choice([0.0, 3.1, -7.5, math.inf, math.nan, 2]),
        ]
        for _ in range(3000)
    ]
    for values in cases:
        frame = packed(2, *values)
        try:
            want: Message | str = Input(*Input._normalise(list(values)))
        except ProtocolError as exc:
            want = exc.reason
        try:
            got: Message | str = decode(frame)
        except ProtocolError as exc:
            got = exc.reason
        assert got == want, values
        if isinstance(got, Input):
            got.check()  # what decode returns is always normal
    for tick in (0, 1, 2**32 - 1):
        assert decode(packed(3, tick)) == Ack(tick)
    for bad in (-1, 2**32, 1.0, None):
        with pytest.raises(ProtocolError):
            decode(packed(3, bad))
