"""The wire protocol, pure (numpy and msgpack only): codes, messages, snapshot deltas.

- :mod:`server.protocol.codes`: the one table of message types and close codes.
- :mod:`server.protocol.messages`: one frozen dataclass per message; :func:`decode`.
- :mod:`server.protocol.snapshot`: the per-client snapshot delta codec.
"""

from __future__ import annotations

from server.protocol.codes import (
    CLOSE_REASONS,
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    CloseCode,
    MsgType,
)
from server.protocol.messages import Message, ProtocolError, decode

__all__ = [
    "CLOSE_REASONS",
    "MAX_FRAME_BYTES",
    "PROTOCOL_VERSION",
    "CloseCode",
    "MsgType",
    "Message",
    "ProtocolError",
    "decode",
]
