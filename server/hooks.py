"""Lifecycle hooks of the hall and its instances: where features plug in.

A feature registers its hooks in its ``setup(app)`` (``app[HOOKS].on_join(fn)`` and so on); the
shell calls them at fixed points and never knows which features exist:

=========  =====================================  ==============================================
hook       called                                 may
=========  =====================================  ==============================================
hello      a hello arrived, before any placement  refuse it: raise ``PeerError`` (invites, roles)
join       a session was placed (avatar/watcher)  send it what it needs to start
resume     a detached session got its socket back tell it what changed meanwhile
leave      a session left for good                forget it
create     an instance opened                     set up per-instance state
tick       after ``step`` and before snapshots    read or act on the numpy state of the instance
dispose    an instance was closed                 drop per-instance state
chat       a chat line is about to be delivered   choose who gets it instead (a private booth)
=========  =====================================  ==============================================

Only ``hello`` may refuse. An exception in any other hook is a bug of that feature: it is logged
and the other hooks, the tick and the peers carry on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from server.instance import Instance
    from server.protocol.messages import Hello
    from server.session import Session

__all__ = ["Hooks", "SessionHook", "InstanceHook", "HelloHook", "ChatHook"]

log = logging.getLogger("emachi.hooks")

SessionHook = Callable[["Session"], None]
InstanceHook = Callable[["Instance"], None]
HelloHook = Callable[["Session", "Hello"], None]
#: ``fn(sender, targets) -> (targets, relay) | None``: a chat line from ``sender`` is about to go
#: to ``targets`` (this process's sessions of its instance the scope reaches). ``sender`` is None
#: for a line said on another process of a cluster (the relay delivers it through the same
#: hooks). None leaves it as it is; a pair sends it to those sessions instead, and ``relay``
#: False keeps it from the other processes (a private line). Each hook sees what the one before
#: it chose.
ChatHook = Callable[["Session | None", list["Session"]], "tuple[list[Session], bool] | None"]


class Hooks:
    """The registered hooks, in registration order."""

    __slots__ = ("hello", "join", "resume", "leave", "create", "tick", "dispose", "chat")

    def __init__(self) -> None:
        self.hello: list[HelloHook] = []
        self.join: list[SessionHook] = []
        self.resume: list[SessionHook] = []
        self.leave: list[SessionHook] = []
        self.create: list[InstanceHook] = []
        self.tick: list[InstanceHook] = []
        self.dispose: list[InstanceHook] = []
        self.chat: list[ChatHook] = []

    # -- registration (a decorator or a plain call) ---------------------------------------------

    def on_hello(self, fn: HelloHook) -> HelloHook:
        self.hello.append(fn)
        return fn

    def on_join(self, fn: SessionHook) -> SessionHook:
        self.join.append(fn)
        return fn

    def on_resume(self, fn: SessionHook) -> SessionHook:
        self.resume.append(fn)
        return fn

    def on_leave(self, fn: SessionHook) -> SessionHook:
        self.leave.append(fn)
        return fn

    def on_create(self, fn: InstanceHook) -> InstanceHook:
        self.create.append(fn)
        return fn

    def on_tick(self, fn: InstanceHook) -> InstanceHook:
        self.tick.append(fn)
        return fn

    def on_dispose(self, fn: InstanceHook) -> InstanceHook:
        self.dispose.append(fn)
        return fn

    def on_chat(self, fn: ChatHook) -> ChatHook:
        self.chat.append(fn)
        return fn

    # -- calling --------------------------------------------------------------------------------

    def run_hello(self, session: Session, hello: Hello) -> None:
        """Every hello hook in turn; a ``PeerError`` from one refuses the hello."""
        for fn in self.hello:
            fn(session, hello)

    def route_chat(
        self, sender: Session | None, targets: list[Session]
    ) -> tuple[list[Session], bool]:
        """Who a chat line goes to after every chat hook, and whether it may be relayed
        (``sender`` None: a line relayed from another process). A failing hook is logged and the
        line goes to no one and is not relayed: a hook may be what keeps a booth private, so a
        bug in it must not leak the line."""
        relay = True
        for fn in self.chat:
            try:
                got = fn(sender, targets)
            except Exception:
                log.exception("chat hook %s failed", getattr(fn, "__qualname__", fn))
                return [], False
            if got is not None:
                targets, relay = got[0], relay and got[1]
        return targets, relay

    def run(self, hooks: list[Callable[[Any], None]], arg: object) -> None:
        """Call each hook with ``arg``; a failing hook is logged and the rest still run."""
        for fn in hooks:
            try:
                fn(arg)
            except Exception:
                log.exception("hook %s failed", getattr(fn, "__qualname__", fn))
