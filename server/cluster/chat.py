"""Chat across processes: a line said in an instance reaches that instance's people everywhere.

A chat line is delivered at once to the sessions of its instance on this process (the core chat
handler in ``server/app.py``), and handed to :meth:`ChatRelay.said`, which publishes it on the
bus channel ``chat:{instance id}`` through the outbox (never awaiting Redis on the handler's
path). Each process subscribes to the channel of every instance it opens (the instances' create
hook), so Redis sends a line only to the processes that hold that instance; a receiving process
writes it to its own sessions in that instance.

Before a relayed line is written, the shell's chat hooks choose among its targets, as for a
line said here (``route``: ``Hooks.route_chat`` with no sender), so a feature that keeps some
people's chat private (a consultation booth) keeps the other processes' lines from them too; a
line a hook marked private is never handed to :meth:`ChatRelay.said`.

Nearby scope (1) travels with the sender's floor and position: the receiving process keeps the
people within ``aoi_radius`` of that point on that floor (the positions it knows of its own
avatars), as the sending process did for its own.

The line carries the sender's name; its ``from_id`` is :data:`REMOTE_FROM` on the other
processes, because an avatar id is a slot of the sending process's instance and would name
another avatar here (``from_id`` is only used by clients to find the speaker in their view, and a
speaker on another process is not in it).

This module is part of the shell's cluster offer (chat is the shell's, not a feature): it imports
no feature.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgpack
import numpy as np

from server.protocol.messages import ChatMsg

if TYPE_CHECKING:
    from server.cluster.bus import Bus, Outbox
    from server.instance import Instance
    from server.session import Session

__all__ = ["ChatRelay", "REMOTE_FROM", "Route", "chat_targets", "channel_of"]

#: ``route(None, targets) -> (targets, relay)``: who of ``targets`` gets a relayed line
Route = Callable[["Session | None", "list[Session]"], "tuple[list[Session], bool]"]


def _everyone(sender: Session | None, targets: list[Session]) -> tuple[list[Session], bool]:
    return targets, True


log = logging.getLogger("emachi.cluster.chat")

#: ``from_id`` of a line said on another process (no avatar of this process has it)
REMOTE_FROM = 0xFFFF


def channel_of(instance_id: str) -> str:
    """The bus channel of one instance's chat."""
    return f"chat:{instance_id}"


def chat_targets(
    inst: Instance, scope: int, floor: int, x: float, z: float, radius: float
) -> list[Session]:
    """The sessions of ``inst`` a line reaches: everyone for scope 0; for scope 1 (nearby) those
    on ``floor`` within ``radius`` metres of ``(x, z)``, in one vectorised pass over the crowd."""
    sessions = inst.sessions
    if scope != 1 or not sessions:
        return list(sessions.values())
    ids = np.fromiter(sessions.keys(), dtype=np.int64, count=len(sessions))
    c = inst.crowd
    d = c.pos[ids] - np.array([x, z], dtype=c.pos.dtype)
    near = (c.floor[ids] == floor) & ((d * d).sum(axis=1) <= radius * radius)
    return [sessions[int(i)] for i in ids[near]]


@dataclass(slots=True)
class ChatRelay:
    """Publishes this process's chat lines per instance and delivers the others'."""

    bus: Bus
    outbox: Outbox
    radius: float
    #: the chat hooks' choice of targets (``server.hooks.Hooks.route_chat``)
    route: Route = _everyone
    #: the instances of this process by id (kept by the create and dispose hooks)
    instances: dict[str, Instance] = field(default_factory=dict)
    subscribed: set[str] = field(default_factory=set)
    sent: int = 0
    delivered: int = 0

    # -- hooks ------------------------------------------------------------------------------------

    def on_create(self, inst: Instance) -> None:
        """An instance opened here: listen to its chat (once per id: the bus keeps channels)."""
        self.instances[inst.id] = inst
        channel = channel_of(inst.id)
        if channel not in self.subscribed:
            self.subscribed.add(channel)
            iid = inst.id
            self.bus.subscribe(channel, lambda data: self.on_message(iid, data))

    def on_dispose(self, inst: Instance) -> None:
        if self.instances.get(inst.id) is inst:
            del self.instances[inst.id]

    # -- out --------------------------------------------------------------------------------------

    def said(self, session: Session, scope: int, text: str, server_time: float) -> None:
        """``session`` said ``text`` (already delivered here): tell the other processes."""
        inst = session.instance
        if inst is None:
            return
        c, me = inst.crowd, session.avatar_id
        msg = [
            session.name,
            scope,
            text,
            server_time,
            int(c.floor[me]),
            float(c.pos[me, 0]),
            float(c.pos[me, 1]),
        ]
        self.outbox.put(channel_of(inst.id), msgpack.packb(msg, use_bin_type=True))
        self.sent += 1

    # -- in ---------------------------------------------------------------------------------------

    def on_message(self, instance_id: str, data: bytes) -> None:
        """A line said in ``instance_id`` on another process: to our people there."""
        inst = self.instances.get(instance_id)
        if inst is None or not inst.sessions:
            return
        try:
            name, scope, text, server_time, floor, x, z = msgpack.unpackb(data, raw=False)
            frame = ChatMsg(
                from_id=REMOTE_FROM, name=name, scope=scope, text=text, server_time=server_time
            )
            frame.check()  # a peer process is trusted no more than a client
            floor, x, z = int(floor), float(x), float(z)
        except Exception:
            log.warning("chat relay: ignored a line that does not decode")
            return
        data = frame.encode()
        targets = chat_targets(inst, frame.scope, floor, x, z, self.radius)
        for s in self.route(None, targets)[0]:
            s.send(data)
        self.delivered += 1
