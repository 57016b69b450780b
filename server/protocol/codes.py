"""The one table of wire codes: message types and close codes.

Every WebSocket frame is a binary MessagePack array whose first element is a
:class:`MsgType`. Codes 1-31 travel client → server, 32-63 server → client.
``clients/web/protocol.js`` mirrors this table; ``tests/unit/test_protocol_mirror.py``
checks that the two agree.

A connection closed for a fault of the peer gets a :class:`CloseCode` (4000 up)
and the matching entry of :data:`CLOSE_REASONS`, a sentence a person can read.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["PROTOCOL_VERSION", "MAX_FRAME_BYTES", "MsgType", "CloseCode", "CLOSE_REASONS"]

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 64 * 1024


class MsgType(IntEnum):
    # client -> server
    HELLO = 1
    INPUT = 2
    ACK = 3
    CHAT = 4
    PING = 5
    KIOSK_OPEN = 6
    KIOSK_CHOOSE = 7
    HELPER_ASK = 8
    QUESTION = 9
    BRIEFING_JOIN = 10
    VOICE = 11
    HOST = 12
    MODERATE = 13
    COUNTER = 14
    # server -> client
    WELCOME = 32
    SNAPSHOT = 33
    CHAT_MSG = 34
    PONG = 35
    ERROR = 36
    NOTICE = 37
    KIOSK_PANEL = 38
    KIOSK_LINK = 39
    HELPER_ANSWER = 40
    BRIEFING = 41
    QUESTIONS = 42
    VOICE_FRAME = 43
    AUDIO_SUBS = 44
    VOICE_HEARD = 45
    EVENT = 46
    REDIRECT = 47
    COUNTER_STATE = 48


class CloseCode(IntEnum):
    UNSUPPORTED_VERSION = 4000
    BAD_FRAME = 4001
    FRAME_TOO_BIG = 4002
    UNKNOWN_TYPE = 4003
    FLOOD = 4004
    WORLD_FULL = 4005
    TOO_SLOW = 4006
    HANDSHAKE = 4007
    DRAINING = 4008
    REPLACED = 4009
    REMOVED = 4010
    UNAUTHORIZED = 4011
    TOO_MANY_CONNECTIONS = 4012
    INVITE_INVALID = 4013
    INVITE_EXPIRED = 4014
    INVITE_REVOKED = 4015
    INVITE_OTHER_EVENT = 4016
    INVITE_USED = 4017
    EVENT_FULL = 4018
    EVENT_NOT_STARTED = 4019
    EVENT_OVER = 4020
    EVENT_LOCKED = 4021
    BANNED = 4022
    MOVED = 4023
    SILENT = 4024


CLOSE_REASONS: dict[CloseCode, str] = {
    CloseCode.UNSUPPORTED_VERSION: "protocol version not supported; reload the page",
    CloseCode.BAD_FRAME: "frame is not a valid MessagePack message",
    CloseCode.FRAME_TOO_BIG: "frame larger than 64 KiB",
    CloseCode.UNKNOWN_TYPE: "unknown message type",
    CloseCode.FLOOD: "too many messages; slow down",
    CloseCode.WORLD_FULL: "every instance of this world is full; try again later",
    CloseCode.TOO_SLOW: "connection fell too far behind (5 s, or 512 KiB not taken)",
    CloseCode.HANDSHAKE: "expected hello as the first message",
    CloseCode.DRAINING: "server restarting; reconnect with your resume token",
    CloseCode.REPLACED: "this avatar was resumed on another connection",
    CloseCode.REMOVED: "removed by the host",
    CloseCode.UNAUTHORIZED: "token missing, invalid or expired",
    CloseCode.TOO_MANY_CONNECTIONS: "too many connections from your network address; close another tab or try again later",
    CloseCode.INVITE_INVALID: "this invitation link is not valid; ask the organiser for a new one",
    CloseCode.INVITE_EXPIRED: "this invitation has expired; ask the organiser for a new one",
    CloseCode.INVITE_REVOKED: "this invitation was withdrawn by the organiser",
    CloseCode.INVITE_OTHER_EVENT: "this invitation is for another event",
    CloseCode.INVITE_USED: "this invitation was for one person and has been used already",
    CloseCode.EVENT_FULL: "the event is full",
    CloseCode.EVENT_NOT_STARTED: "the event has not started yet; come back a little before it begins",
    CloseCode.EVENT_OVER: "the event is over or was cancelled",
    CloseCode.EVENT_LOCKED: "the host has closed the doors of this event",
    CloseCode.BANNED: "you may not enter for a while (a moderator decided so)",
    CloseCode.MOVED: "this part of the hall is now served by another process; reconnect with your resume token",
    CloseCode.SILENT: "nothing heard from your connection for 30 s (not even a pong); reconnect",
}
