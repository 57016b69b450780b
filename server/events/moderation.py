"""Moderation anywhere in the city, the public hall too: residents block and report, staff mute,
remove and ban for a time.

- A block is mutual and lasts while both avatars are in the instance: neither sees the other in
  snapshots (``Instance.block``: a per-viewer mask in ``Instance.broadcast``) nor hears them (the
  voice relay drops blocked pairs from its subscriptions).
- A report (with an optional reason) is kept in the ``reports`` stream for the staff on duty, and
  staff sessions in the same instance get a notice. At most ``REPORTS_PER_MINUTE`` a session.
- A ban is kept by the hash of the banned session's device token (``opts.device``, a random id
  the browser keeps) and resume token, never by anything personal, until it runs out; a banned
  hello is refused with BANNED.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from server.audit import audit
from server.errors import PeerError, RequestError
from server.keys import HALL, OUTBOX, STORE, VOICE
from server.protocol.codes import CloseCode
from server.protocol.messages import Notice

if TYPE_CHECKING:
    from server.events.service import EventService
    from server.events.wire import Moderate
    from server.instance import Instance
    from server.protocol.messages import Hello
    from server.session import Session

__all__ = ["Moderation", "REPORTS", "BANS"]

REPORTS = "reports"
BANS = "bans"
REPORTS_PER_MINUTE = 5
MAX_BAN_MINUTES = 60 * 24 * 90


@dataclass(slots=True)
class Moderation:
    app: web.Application
    events: EventService
    bans: dict[str, float] = field(default_factory=dict)  # key hash -> until (epoch s)
    _reported: dict[Session, list[float]] = field(default_factory=dict)

    async def load(self) -> None:
        store = self.app[STORE]
        after = 0
        while True:
            page = await store.records(BANS, after=after, limit=1000)
            for r in page:
                for k in r.data["keys"]:
                    self.bans[k] = max(self.bans.get(k, 0.0), float(r.data["until"]))
            after += len(page)
            if len(page) < 1000:
                return

    def on_hello(self, session: Session, hello: Hello) -> None:
        now = time.time()
        for k in self.events.ban_key(session):
            if self.bans.get(k, 0.0) > now:
                raise PeerError(CloseCode.BANNED)

    def on_leave(self, session: Session) -> None:
        self._reported.pop(session, None)

    async def on_moderate(self, session: Session, msg: Moderate) -> None:
        inst = session.instance
        if inst is None or msg.target == session.avatar_id:
            raise RequestError("moderate_target", "block or report another avatar near you")
        other = inst.sessions.get(msg.target)
        if other is None:
            raise RequestError("moderate_target", f"nobody with avatar {msg.target} here")
        if msg.action in ("block", "unblock"):
            inst.block(session.avatar_id, msg.target, msg.action == "block")
            session.send(Notice(kind=msg.action + "ed", data={"avatar": msg.target}).encode())
            return
        now = time.time()
        times = [t for t in self._reported.get(session, []) if now - t < 60.0]
        if len(times) >= REPORTS_PER_MINUTE:
            raise RequestError("report_rate", f"at most {REPORTS_PER_MINUTE} reports a minute")
        times.append(now)
        self._reported[session] = times
        report = {
            "at": now,
            "instance": inst.id,
            "avatar": msg.target,
            "name": other.name,
            "by": session.name,
            "reason": msg.reason.strip()[:300],
        }
        self.app[OUTBOX].append(REPORTS, f"{time.time_ns()}-{secrets.token_hex(3)}", report)
        note = Notice(
            kind="report", data={"instance": inst.id, "avatar": msg.target, "name": other.name}
        ).encode()
        for s in inst.sessions.values():
            if s.role == "staff":
                s.send(note)
        session.send(Notice(kind="reported", data={"avatar": msg.target}).encode())

    async def reports(self, limit: int = 200) -> list[dict[str, Any]]:
        store = self.app[STORE]
        out: list[Any] = []
        while True:
            page = await store.records(REPORTS, after=len(out), limit=1000)
            out += page
            if len(page) < 1000:
                break
        return [r.data for r in out[-limit:]][::-1]

    def find(self, instance_id: str, avatar: int) -> tuple[Instance, Session]:
        for inst in self.app[HALL].instances:
            if inst.id == instance_id:
                s = inst.sessions.get(avatar)
                if s is not None:
                    return inst, s
        raise web.HTTPNotFound(
            text=f'{{"error":"not_found","reason":"no avatar {avatar} in instance {instance_id}"}}',
            content_type="application/json",
        )

    def act(self, actor: str, body: dict[str, Any]) -> dict[str, Any]:
        """A staff action on a resident (mute, unmute, remove, ban); the body is checked already."""
        action, inst_id, avatar = body["action"], body["instance"], body["avatar"]
        inst, s = self.find(inst_id, avatar)
        reason = body.get("reason", "")
        if action in ("mute", "unmute"):
            voice = self.app.get(VOICE)
            if voice is not None:
                voice.mute(inst, avatar, action == "mute")
            m = self.events.members.get(s)
            if m is not None:
                m.muted = action == "mute"
            s.send(Notice(kind="muted", data={"muted": action == "mute"}).encode())
            audit(self.app, actor, f"moderation.{action}", inst_id, avatar=avatar)
            return {"action": action, "instance": inst_id, "avatar": avatar}
        from_reason = " ".join(reason.split())[:40]
        if action == "ban":
            minutes = body["minutes"]
            until = time.time() + minutes * 60.0
            keys = self.events.ban_key(s)
            for k in keys:
                self.bans[k] = max(self.bans.get(k, 0.0), until)
            self.app[OUTBOX].append(BANS, secrets.token_hex(8), {"keys": keys, "until": until})
            audit(self.app, actor, "moderation.ban", inst_id, avatar=avatar, minutes=minutes)
            s.close(CloseCode.BANNED, from_reason or None)
        else:
            audit(self.app, actor, "moderation.remove", inst_id, avatar=avatar)
            s.close(CloseCode.REMOVED, from_reason or None)
        self.app[HALL].leave(s)
        return {"action": action, "instance": inst_id, "avatar": avatar}
