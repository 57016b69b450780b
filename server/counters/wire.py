"""The service counters' messages on the wire (codes in ``server/protocol/codes.py``, mirrored in
``clients/web/protocol.js``; the contract is ``docs/counters.md``).

- ``COUNTER`` (14, client → server) ``action:str, args:map``: a resident's ticket, leave, accept,
  enter; a staff member's duty, off_duty, call, screen, link, end.
- ``COUNTER_STATE`` (48, server → client) ``state:map``: the counters' statuses, the session's own
  ticket and booth, and (staff) the desk; sent when it changes, coalesced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from server.protocol.codes import MsgType
from server.protocol.messages import Check, Message, _id, _map, register

__all__ = ["CounterAction", "CounterState"]


@register
@dataclass(frozen=True, slots=True)
class CounterAction(Message):
    """A counter action from a session: ``action`` and its ``args``."""

    TYPE: ClassVar[MsgType] = MsgType.COUNTER
    CHECKS: ClassVar[tuple[Check, ...]] = (_id, _map(8))
    action: str
    args: dict[str, Any]


@register
@dataclass(frozen=True, slots=True)
class CounterState(Message):
    """What this session sees of the counters (``server.counters.view``)."""

    TYPE: ClassVar[MsgType] = MsgType.COUNTER_STATE
    CHECKS: ClassVar[tuple[Check, ...]] = (_map(8),)
    state: dict[str, Any]
