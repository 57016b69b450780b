"""The cluster bench's plain-socket viewer reads WebSocket frames and message types by itself
(bench/kernel_viewers.py): frames split across reads, 16-bit lengths, masks, and the type of a
MessagePack array message without decoding it."""

from __future__ import annotations

import msgpack
import pytest

from bench.kernel_viewers import message_type, parse_frames
from server.protocol.codes import MsgType


def test_frames_come_out_whole_and_a_partial_one_waits_for_the_next_read() -> None:
    big = bytes(range(256)) * 2  # 512 bytes: a 16-bit length
    wire = b"\x82\x03abc" + b"\x89\x00" + b"\x82\x7e\x02\x00" + big + b"\x82\x05he"
    buf = bytearray(wire)
    assert parse_frames(buf) == [(0x2, True, b"abc"), (0x9, True, b""), (0x2, True, big)]
    assert buf == b"\x82\x05he"  # the last frame is not all here yet
    buf += b"llo"
    assert parse_frames(buf) == [(0x2, True, b"hello")] and buf == b""


def test_a_masked_frame_is_unmasked_and_a_fragment_keeps_its_fin_bit() -> None:
    mask = b"\x01\x02\x03\x04"
    masked = bytes(c ^ mask[k % 4] for k, c in enumerate(b"ping"))
    buf = bytearray(b"\x02\x84" + mask + masked + b"\x80\x01!")
    assert parse_frames(buf) == [(0x2, False, b"ping"), (0x0, True, b"!")]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ([int(MsgType.BRIEFING), {"state": "live"}], 41),
        ([int(MsgType.WELCOME), *range(20)], 32),  # 21 elements: an array 16 header
        ([200, 1], 200),  # a uint8 type
        ({"not": "an array"}, None),
        ([], None),
        (["text"], None),
    ],
)
def test_message_type_reads_the_first_element_only(message: object, expected: int | None) -> None:
    assert message_type(msgpack.packb(message)) == expected
