"""The event messages on the wire (codes in ``server/protocol/codes.py``, mirrored in
``clients/web/protocol.js``).

- ``HOST`` (12, client → server) ``action:str, args:map``: a host's tool (announce, mute, move,
  shuffle, remove, lock, spotlight, agenda, ...) or a guest's request (raise_hand, lower_hand,
  leave); who may do which is ``server.events.permissions``.
- ``MODERATE`` (13, client → server) ``action:"block"|"unblock"|"report", target:u16,
  reason:str``: a resident blocks, unblocks or reports another avatar of their instance.
- ``EVENT`` (46, server → client) ``state:map``: the event's agenda, timer, tables and roster,
  sent to everyone in the event when it changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from server.protocol.codes import MsgType
from server.protocol.messages import (
    Check,
    Message,
    _choice,
    _id,
    _map,
    _str,
    _u16,
    register,
)

__all__ = ["Host", "Moderate", "EventState", "REASON_MAX"]

REASON_MAX = 300


@register
@dataclass(frozen=True, slots=True)
class Host(Message):
    """An event action from a session: ``action`` and its ``args``."""

    TYPE: ClassVar[MsgType] = MsgType.HOST
    CHECKS: ClassVar[tuple[Check, ...]] = (_id, _map(16))
    action: str
    args: dict[str, Any]


@register
@dataclass(frozen=True, slots=True)
class Moderate(Message):
    """A resident blocks, unblocks or reports the avatar ``target``."""

    TYPE: ClassVar[MsgType] = MsgType.MODERATE
    CHECKS: ClassVar[tuple[Check, ...]] = (
        _choice("block", "unblock", "report"),
        _u16,
        _str(0, REASON_MAX),
    )
    action: str
    target: int
    reason: str = ""


@register
@dataclass(frozen=True, slots=True)
class EventState(Message):
    """The state of the event this session is in (see ``server.events.service``)."""

    TYPE: ClassVar[MsgType] = MsgType.EVENT
    CHECKS: ClassVar[tuple[Check, ...]] = (_map(64),)
    state: dict[str, Any]
