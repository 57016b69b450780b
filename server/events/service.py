"""Events at run time: what is stored, who is in, and what the agenda and the hosts do to the space.

Records (``app[OUTBOX]`` → ``app[STORE]``):

=====================  ====================================================================
stream / space         what
=====================  ====================================================================
``events``             every version of every event (the newest of each id wins at start)
``invites``            each invite made, and each withdrawal (``{"revoke": id}``)
``invite-uses``        the first use of a single-use invite (appended once: idempotent)
``attendance:EVENT``   each join and leave: display name, invite label, role, time
``attendance-purged``  the events whose attendance the retention period has removed
``event-runs`` (put)   where each event's agenda is (phase, item, since when)
=====================  ====================================================================

Everything needed to answer a hello is in memory (hooks are synchronous); it is read back from
the store at start. A join is written, and committed, before its WELCOME (the hello hook sets
``session.commit_before_welcome``); a leave asked for by the guest is committed before its
answer. Each event runs in its own private instance (``Hall.private_instance``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from server.audit import audit
from server.errors import PeerError, RequestError
from server.events import agenda as ag
from server.events.invites import Claims, Invite, admit, sign, verify
from server.events.model import Event, iso
from server.events.permissions import allowed
from server.events.space import HallLayout, Spot, halls, shuffle_tables
from server.events.wire import EventState
from server.keys import CONFIG, HALL, OUTBOX, STORE, VOICE, WORLD
from server.protocol.codes import CLOSE_REASONS, CloseCode
from server.protocol.messages import Notice
from server.session import SessionState

if TYPE_CHECKING:
    from server.instance import Instance
    from server.protocol.messages import Hello
    from server.session import Session

__all__ = ["EventService", "Member", "Live", "attendance_stream", "close_reason"]

log = logging.getLogger("emachi.events")

EVENTS = "events"
INVITES = "invites"
USES = "invite-uses"
PURGED = "attendance-purged"
RUNS = "event-runs"
SECRET_FILE = "invite-secret"
ANNOUNCE_MAX = 500


def attendance_stream(event_id: str) -> str:
    return f"attendance:{event_id}"


def close_reason(text: str, default: str) -> str:
    """A close reason that fits a WebSocket close frame (123 bytes of UTF-8)."""
    text = " ".join(text.split()) or default
    raw = text.encode()
    if len(raw) <= 123:
        return text
    return raw[:120].decode("utf-8", "ignore") + "..."


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


@dataclass(slots=True)
class Member:
    """A session in an event: its invite, role, label, visit id and table."""

    session: Session
    event: str
    invite: str
    role: str
    label: str
    visit: str
    joined: float
    placed: bool = False
    table: str = ""
    hand: float = 0.0  # when the hand went up; 0: down
    muted: bool = False
    left_seq: int = 0


@dataclass(slots=True)
class Live:
    """An event while it runs: its instance id, members, doors, hands, spotlight, agenda."""

    event: str
    instance_id: str
    run: ag.Run = field(default_factory=ag.Run)
    members: dict[Session, Member] = field(default_factory=dict)
    locked: bool = False
    spotlight: Session | None = None
    dirty: bool = True
    shuffles: int = 0

    def guests(self) -> list[Member]:
        return [m for m in self.members.values() if m.role == "guest"]

    def by_avatar(self, avatar_id: Any) -> Member:
        if type(avatar_id) is not int:
            raise RequestError("event_bad_args", "args.avatar: expected an avatar id")
        for m in self.members.values():
            if m.placed and m.session.avatar_id == avatar_id:
                return m
        raise RequestError("event_no_such_avatar", f"nobody with avatar {avatar_id} in this event")


class EventService:
    """The events of this process (see the module docstring)."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.config = app[CONFIG]
        self.world = app[WORLD]
        self.halls: dict[str, HallLayout] = halls(self.world)
        self.events: dict[str, Event] = {}
        self.invites: dict[str, Invite] = {}
        self.used: set[str] = set()
        self.purged: set[str] = set()
        self.live: dict[str, Live] = {}
        self.members: dict[Session, Member] = {}
        self.secret = b""
        self.clock: Callable[[], float] = time.time
        self._visits = 0
        self._left: dict[Session, int] = {}
        self._run_id = secrets.token_hex(4)

    # -- start: the secret and the records ---------------------------------------------------------

    def load_secret(self) -> None:
        """The invite key: ``Config.invite_secret``, else DATA_DIR/invite-secret (made once, 0600)."""
        if self.config.invite_secret:
            self.secret = self.config.invite_secret.encode()
            return
        path: Path = self.config.data_dir / SECRET_FILE
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(32))
        self.secret = path.read_text().strip().encode()

    async def load(self) -> None:
        """Read events, invites, uses and runs back from the store."""
        store = self.app[STORE]

        async def every(stream: str) -> list[Any]:
            out: list[Any] = []
            while True:
                page = await store.records(stream, after=len(out), limit=1000)
                out += page
                if len(page) < 1000:
                    return out

        for rec in await every(EVENTS):
            ev = Event.from_record(rec.data)
            old = self.events.get(ev.id)
            if old is None or ev.version >= old.version:
                self.events[ev.id] = ev
        for rec in await every(INVITES):
            d = rec.data
            if "revoke" in d:
                inv = self.invites.get(d["revoke"])
                if inv is not None:
                    self.invites[inv.id] = replace(inv, revoked=float(d["at"]))
            else:
                self.invites[d["id"]] = Invite(**d)
        self.used = {rec.id for rec in await every(USES)}
        self.purged = {rec.id for rec in await every(PURGED)}
        for eid in self.events:
            run = await store.get(RUNS, eid)
            if run is not None:
                self.live_of(eid).run = ag.Run.from_json(run)

    # -- what the staff API changes ------------------------------------------------------------------

    def hall_tables(self) -> dict[str, tuple[str, ...]]:
        return {hid: tuple(h.tables) for hid, h in self.halls.items()}

    @property
    def default_hall(self) -> str:
        return next(iter(self.halls), "")

    def save_event(self, ev: Event, actor: str, action: str) -> None:
        self.events[ev.id] = ev
        self.app[OUTBOX].append(EVENTS, f"{ev.id}-v{ev.version}", ev.to_record())
        audit(self.app, actor, action, ev.id, version=ev.version)
        live = self.live.get(ev.id)
        if live is not None:
            live.dirty = True

    def cancel_event(self, ev: Event, actor: str) -> Event:
        ev = replace(ev, cancelled=True, version=ev.version + 1, updated=self.clock())
        self.save_event(ev, actor, "event.cancel")
        live = self.live.get(ev.id)
        if live is not None and live.run.phase not in (ag.Phase.ENDED, ag.Phase.CANCELLED):
            self._apply(live, ev, *ag.step(live.run, ag.Command.CANCEL, self.clock(), ev.agenda))
        return ev

    def make_invite(
        self, ev: Event, role: str, label: str, expires: float, single_use: bool, actor: str
    ) -> tuple[Invite, str]:
        inv = Invite(
            id=f"inv-{secrets.token_hex(5)}",
            event=ev.id,
            role=role,
            label=label,
            expires=expires,
            single_use=single_use,
            created=self.clock(),
            created_by=actor,
        )
        self.invites[inv.id] = inv
        self.app[OUTBOX].append(INVITES, inv.id, inv.to_json())
        audit(
            self.app, actor, "invite.create", inv.id, event=ev.id, role=role, single_use=single_use
        )
        return inv, self.token(inv)

    def token(self, inv: Invite) -> str:
        return sign(self.secret, Claims(inv.event, inv.id, inv.role, inv.expires))

    def revoke_invite(self, inv: Invite, actor: str) -> Invite:
        if inv.revoked is None:
            inv = replace(inv, revoked=self.clock())
            self.invites[inv.id] = inv
            self.app[OUTBOX].append(
                INVITES, f"{inv.id}-revoked", {"revoke": inv.id, "at": inv.revoked}
            )
            audit(self.app, actor, "invite.revoke", inv.id, event=inv.event)
        return inv

    # -- live state ------------------------------------------------------------------------------------

    def live_of(self, event_id: str) -> Live:
        live = self.live.get(event_id)
        if live is None:
            live = self.live[event_id] = Live(event_id, f"{self.world.id}!{event_id}")
        return live

    def instance(self, live: Live) -> Instance | None:
        for inst in self.app[HALL].instances:
            if inst.id == live.instance_id:
                return inst
        return None

    def layout(self, ev: Event) -> HallLayout | None:
        return self.halls.get(ev.hall)

    # -- hooks -------------------------------------------------------------------------------------------

    def on_hello(self, session: Session, hello: Hello) -> None:
        """Admit a hello with an invite into its event, or refuse it with the reason."""
        opts = session.opts
        token = opts.get("invite")
        wanted = opts.get("event")
        if wanted is not None and (type(wanted) is not str or not 0 < len(wanted) <= 64):
            raise PeerError(CloseCode.INVITE_INVALID, "opts.event: expected an event id")
        if token is None:
            if wanted is not None:
                raise PeerError(CloseCode.INVITE_INVALID, "this event needs an invitation link")
            return
        hall = self.app[HALL]
        old = hall.by_token.get(session.resume_token) if session.resume_token else None
        if old is not None and old.state in (SessionState.ACTIVE, SessionState.DETACHED):
            m = self.members.get(old)
            if m is not None and (wanted is None or m.event == wanted):
                return  # a reconnect within the resume window: the same member, the same visit
            session.resume_token = ""  # a lobby avatar does not carry over into an event
        claims = verify(self.secret, token)
        inv = self.invites.get(claims.invite) if claims is not None else None
        ev = self.events.get(claims.event) if claims is not None else None
        live = self.live.get(ev.id) if ev is not None else None
        now = self.clock()
        code = admit(
            claims,
            inv,
            wanted_event=wanted,
            event_start=ev.start if ev else None,
            event_end=ev.end if ev else None,
            event_cancelled=bool(
                ev and (ev.cancelled or (live and live.run.phase is ag.Phase.CANCELLED))
            ),
            now=now,
            used=bool(inv and inv.id in self.used),
            locked=bool(live and live.locked),
            guests=len(live.guests()) if live else 0,
            capacity=ev.capacity if ev else 0,
        )
        if code is not None:
            raise PeerError(code)
        assert inv is not None and ev is not None
        live = self.live_of(ev.id)
        self._visits += 1
        m = Member(
            session=session,
            event=ev.id,
            invite=inv.id,
            role=inv.role,
            label=inv.label,
            visit=f"{self._run_id}-{self._visits}",
            joined=now,
        )
        live.members[session] = m
        self.members[session] = m
        session.place_in = live.instance_id
        session.role = "host" if inv.role == "host" else ("staff" if inv.role == "staff" else "")
        outbox = self.app[OUTBOX]
        if inv.single_use:
            self.used.add(inv.id)
            outbox.append(USES, inv.id, {"event": ev.id, "at": now})
        session.commit_before_welcome = self._attend(m, "join", now)
        live.dirty = True

    def _attend(self, m: Member, kind: str, at: float) -> int:
        """One attendance record (only what an organiser needs); returns its outbox seq."""
        return self.app[OUTBOX].append(
            attendance_stream(m.event),
            f"{m.visit}-{kind}",
            {
                "visit": m.visit,
                "kind": kind,
                "name": m.session.name,
                "label": m.label,
                "role": m.role,
                "at": at,
            },
        )

    def on_join(self, session: Session) -> None:
        m = self.members.get(session)
        if m is None:
            return
        m.placed = True
        live = self.live_of(m.event)
        ev = self.events.get(m.event)
        if ev is not None:
            self._place(live, ev, m, self._spot_now(live, ev, m))
        live.dirty = True
        self.publish(live)

    def on_resume(self, session: Session) -> None:
        m = self.members.get(session)
        if m is None:
            return
        if m.muted:  # a reload does not lift a host's mute
            self._voice_mute(m, True)
        live = self.live_of(m.event)
        live.dirty = True

    def on_leave(self, session: Session) -> None:
        m = self.members.pop(session, None)
        if m is None:
            return
        live = self.live_of(m.event)
        live.members.pop(session, None)
        if live.spotlight is session:
            live.spotlight = None
        m.left_seq = self._attend(m, "leave", self.clock())
        self._left[session] = m.left_seq
        live.dirty = True

    def left_seq(self, session: Session) -> int:
        return self._left.pop(session, 0)

    # -- the agenda ----------------------------------------------------------------------------------

    def tick(self) -> None:
        """Move every event's agenda on (time alone), publish what changed, sweep lost members."""
        now = self.clock()
        for eid, ev in self.events.items():
            if ev.cancelled:
                continue
            live = self.live.get(eid)
            if live is None and not ev.start <= now < ev.end:
                continue
            live = self.live_of(eid)
            if live.run.phase in (ag.Phase.ENDED, ag.Phase.CANCELLED):
                continue
            run, effects = ag.tick(live.run, now, ev.agenda, ev.start)
            if now >= ev.end and run.phase not in (ag.Phase.ENDED, ag.Phase.CANCELLED):
                run, more = ag.step(run, ag.Command.END, now, ev.agenda)
                effects += more
            if effects or run != live.run:
                self._apply(live, ev, run, effects)
        for live in self.live.values():
            for s, m in list(live.members.items()):
                if not m.placed and s.state is SessionState.CLOSED and now - m.joined > 5.0:
                    # admitted, then the join failed (the instance full): a leave closes the visit
                    self.on_leave(s)
            if live.dirty:
                self.publish(live)

    def command(self, live: Live, ev: Event, command: ag.Command) -> None:
        try:
            run, effects = ag.step(live.run, command, self.clock(), ev.agenda)
        except ag.AgendaError as exc:
            raise RequestError("agenda", str(exc)) from None
        self._apply(live, ev, run, effects)

    def _apply(self, live: Live, ev: Event, run: ag.Run, effects: list[ag.Effect]) -> None:
        live.run = run
        self.app[OUTBOX].put(RUNS, ev.id, run.to_json())
        for eff in effects:
            if isinstance(eff, ag.ItemStarted) and eff.item.shuffle:
                self._shuffle(live, ev)
        if effects:
            self._arrange(live, ev)
        live.dirty = True

    # -- places --------------------------------------------------------------------------------------

    def _spot_now(self, live: Live, ev: Event, m: Member) -> Spot | None:
        layout = self.layout(ev)
        if layout is None:
            return None
        space = ag.current(live.run, ev.agenda)
        if live.spotlight is m.session and layout.stage_spots:
            return layout.stage_spots[0]
        if m.role != "guest":
            if space.stage_live and layout.stage_spots:
                return layout.stage_spots[-1]
            return layout.lounge[0] if layout.lounge else None
        if space.tables_open and ev.tables:
            if m.table not in ev.tables:
                m.table = self._smallest_table(live, ev)
            return self._seat(live, layout, m)
        spots = layout.gather if space.stage_live else layout.lounge
        guests = live.guests()
        i = guests.index(m) if m in guests else 0
        return spots[i % len(spots)] if spots else None

    def _smallest_table(self, live: Live, ev: Event) -> str:
        counts = {t: 0 for t in ev.tables}
        for g in live.guests():
            if g.table in counts:
                counts[g.table] += 1
        return min(ev.tables, key=lambda t: (counts[t], ev.tables.index(t)))

    def _seat(self, live: Live, layout: HallLayout, m: Member) -> Spot:
        at = [g for g in live.guests() if g.table == m.table]
        i = at.index(m) if m in at else len(at)
        seats = layout.seats[m.table]
        return seats[i % len(seats)]

    def _place(self, live: Live, ev: Event, m: Member, spot: Spot | None) -> None:
        inst = self.instance(live)
        layout = self.layout(ev)
        if inst is None or layout is None or spot is None or not m.placed:
            return
        try:
            inst.move_avatar(m.session.avatar_id, layout.floor, spot[0], spot[1], spot[2])
        except ValueError:
            log.warning("event move failed", extra={"event": ev.id})

    def _arrange(self, live: Live, ev: Event) -> None:
        """Everyone where the agenda item wants them (tables, the auditorium, the hall)."""
        for m in list(live.members.values()):
            self._place(live, ev, m, self._spot_now(live, ev, m))

    def _shuffle(self, live: Live, ev: Event) -> None:
        live.shuffles += 1
        guests = live.guests()
        deal = shuffle_tables([g.visit for g in guests], ev.tables, f"{ev.id}/{live.shuffles}")
        for g in guests:
            g.table = deal.get(g.visit, "")

    # -- what everyone sees --------------------------------------------------------------------------

    def state(self, live: Live) -> dict[str, Any]:
        ev = self.events[live.event]
        now = self.clock()
        left = ag.remaining(live.run, now, ev.agenda)
        space = ag.current(live.run, ev.agenda)
        layout = self.layout(ev)
        tables = []
        if layout is not None:
            for tid in ev.tables:
                zone = layout.table_zones.get(tid)
                name = zone.name if zone is not None else None
                tables.append([tid, name.ja if name else tid, name.en if name else tid])
        hands = sorted(
            (m for m in live.members.values() if m.hand and m.placed), key=lambda m: m.hand
        )
        return {
            "event": ev.id,
            "title": {"ja": ev.title_ja, "en": ev.title_en},
            "start": ev.start * 1000.0,
            "end": ev.end * 1000.0,
            "phase": live.run.phase.value,
            "index": live.run.index,
            "items": [[i.kind.value, i.seconds, i.title_ja, i.title_en] for i in ev.agenda],
            "remaining_ms": None if left is None else round(left * 1000.0),
            "ends_at": None
            if left is None or live.run.phase is ag.Phase.PAUSED
            else (now + left) * 1000.0,
            "server_time": now * 1000.0,
            "tables_open": space.tables_open,
            "stage_live": space.stage_live,
            "locked": live.locked,
            "spotlight": live.spotlight.avatar_id if live.spotlight is not None else -1,
            "hands": [m.session.avatar_id for m in hands],
            "tables": tables,
            "roster": [
                [m.session.avatar_id, m.session.name, m.role, m.label, m.table, m.muted]
                for m in live.members.values()
                if m.placed
            ],
        }

    def publish(self, live: Live) -> None:
        """Send the state to everyone in the event (one encode for all)."""
        live.dirty = False
        if live.event not in self.events or not live.members:
            return
        frame = EventState(state=self.state(live)).encode()
        for m in live.members.values():
            if m.placed:
                m.session.send(frame)

    # -- host tools (over the WebSocket or the staff API) --------------------------------------------

    def act(
        self,
        live: Live,
        role: str,
        actor: str,
        action: str,
        args: dict[str, Any],
        me: Member | None,
    ) -> dict[str, Any]:
        """Do ``action`` in ``live`` as ``role``; returns a short answer.

        Raises:
            RequestError: not allowed, bad arguments, no such person or table.
        """
        if not allowed(role, action):
            raise RequestError("forbidden", f"a {role} may not {action}")
        ev = self.events[live.event]
        inst = self.instance(live)
        out: dict[str, Any] = {"action": action}
        if action == "announce":
            text = args.get("text")
            if not isinstance(text, str) or not 1 <= len(text.strip()) <= ANNOUNCE_MAX:
                raise RequestError("event_bad_args", f"args.text: 1-{ANNOUNCE_MAX} characters")
            if me is not None:  # the megaphone: the voice relay honours it for hosts and staff
                me.session.role = "host" if me.role == "host" else "staff"
            frame = Notice(
                kind="announcement",
                data={"text": text.strip(), "from": me.session.name if me else "", "role": role},
            ).encode()
            for m in live.members.values():
                if m.placed:
                    m.session.send(frame)
            audit(self.app, actor, "event.announce", ev.id, chars=len(text))
        elif action in ("mute", "mute_table", "mute_all"):
            muted = args.get("muted", True)
            if type(muted) is not bool:
                raise RequestError("event_bad_args", "args.muted: true or false")
            if action == "mute":
                targets = [live.by_avatar(args.get("avatar"))]
                target = str(args.get("avatar"))
            elif action == "mute_table":
                tid = args.get("table")
                if tid not in ev.tables:
                    raise RequestError(
                        "event_no_such_table", f"args.table: one of {', '.join(ev.tables)}"
                    )
                targets = [
                    m for m in live.guests() if m.placed and self._table_now(ev, inst, m) == tid
                ]
                target = str(tid)
            else:
                targets = [m for m in live.guests() if m.placed]
                target = "everyone"
            for m in targets:
                m.muted = muted
                self._voice_mute(m, muted)
                m.session.send(Notice(kind="muted", data={"muted": muted}).encode())
            audit(
                self.app,
                actor,
                f"event.{action}",
                ev.id,
                who=target,
                muted=muted,
                people=len(targets),
            )
            out["people"] = len(targets)
        elif action == "move":
            m = live.by_avatar(args.get("avatar"))
            tid = args.get("table")
            if tid not in ev.tables:
                raise RequestError(
                    "event_no_such_table", f"args.table: one of {', '.join(ev.tables)}"
                )
            m.table = str(tid)
            layout = self.layout(ev)
            if layout is not None:
                self._place(live, ev, m, self._seat(live, layout, m))
            m.session.send(Notice(kind="moved", data={"table": tid}).encode())
            audit(self.app, actor, "event.move", ev.id, avatar=m.session.avatar_id, table=tid)
        elif action == "shuffle":
            self._shuffle(live, ev)
            if ag.current(live.run, ev.agenda).tables_open:
                self._arrange(live, ev)
            else:  # tables closed: deal now, seat when they open; show it by seating now too
                for m in live.guests():
                    layout = self.layout(ev)
                    if layout is not None and m.table:
                        self._place(live, ev, m, self._seat(live, layout, m))
            audit(self.app, actor, "event.shuffle", ev.id, people=len(live.guests()))
        elif action == "remove":
            m = live.by_avatar(args.get("avatar"))
            reason = args.get("reason", "")
            if not isinstance(reason, str) or len(reason) > 200:
                raise RequestError("event_bad_args", "args.reason: at most 200 characters")
            s = m.session
            s.close(CloseCode.REMOVED, close_reason(reason, CLOSE_REASONS[CloseCode.REMOVED]))
            self.app[HALL].leave(s)
            audit(self.app, actor, "event.remove", ev.id, avatar=s.avatar_id)
        elif action == "lock":
            locked = args.get("locked", True)
            if type(locked) is not bool:
                raise RequestError("event_bad_args", "args.locked: true or false")
            live.locked = locked
            audit(self.app, actor, "event.lock", ev.id, locked=locked)
        elif action == "spotlight":
            avatar = args.get("avatar", -1)
            old = live.spotlight
            live.spotlight = None if avatar == -1 else live.by_avatar(avatar).session
            for who in (old, live.spotlight):
                if who is not None and who in live.members:
                    mm = live.members[who]
                    mm.hand = 0.0
                    self._place(live, ev, mm, self._spot_now(live, ev, mm))
            audit(self.app, actor, "event.spotlight", ev.id, avatar=avatar)
        elif action == "hand_done":
            live.by_avatar(args.get("avatar")).hand = 0.0
        elif action == "agenda":
            try:
                cmd = ag.Command(str(args.get("command")))
            except ValueError:
                raise RequestError(
                    "event_bad_args", "args.command: start, next, pause, resume or end"
                ) from None
            if cmd in (ag.Command.TIME_UP, ag.Command.CANCEL):
                raise RequestError(
                    "event_bad_args", "args.command: start, next, pause, resume or end"
                )
            self.command(live, ev, cmd)
            audit(self.app, actor, f"event.agenda.{cmd.value}", ev.id)
        elif action in ("raise_hand", "lower_hand"):
            if me is None:
                raise RequestError("event_bad_args", "only a person in the event raises a hand")
            me.hand = self.clock() if action == "raise_hand" else 0.0
        live.dirty = True
        return out

    def _table_now(self, ev: Event, inst: Instance | None, m: Member) -> str:
        layout = self.layout(ev)
        if inst is None or layout is None:
            return m.table
        floor, x, z = inst.position(m.session.avatar_id)
        return layout.table_of(self.world.floor_index(floor), x, z) or ""

    def _voice_mute(self, m: Member, muted: bool) -> None:
        voice = self.app.get(VOICE)
        inst = m.session.instance
        if voice is not None and inst is not None:
            voice.mute(inst, m.session.avatar_id, muted)

    # -- attendance ----------------------------------------------------------------------------------

    async def attendance(self, event_id: str) -> list[dict[str, Any]]:
        """Every visit of an event (committed records), joined with its leave, oldest first."""
        store = self.app[STORE]
        recs: list[Any] = []
        while True:
            page = await store.records(attendance_stream(event_id), after=len(recs), limit=1000)
            recs += page
            if len(page) < 1000:
                break
        visits: dict[str, dict[str, Any]] = {}
        for r in recs:
            d = r.data
            v = visits.setdefault(
                d["visit"],
                {
                    "name": d["name"],
                    "label": d["label"],
                    "role": d["role"],
                    "joined": None,
                    "left": None,
                },
            )
            v["joined" if d["kind"] == "join" else "left"] = d["at"]
        return list(visits.values())

    @staticmethod
    def csv(visits: list[dict[str, Any]]) -> str:
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["name", "label", "role", "joined", "left"])
        for v in visits:
            w.writerow(
                [
                    _cell(v["name"]),
                    _cell(v["label"]),
                    v["role"],
                    iso(v["joined"]) if v["joined"] else "",
                    iso(v["left"]) if v["left"] else "",
                ]
            )
        return out.getvalue()

    def purge(self, now: float | None = None) -> list[str]:
        """Drop the attendance of every event that ended more than the retention period ago."""
        now = self.clock() if now is None else now
        keep = self.config.attendance_retention_days * 86400.0
        done = []
        for eid, ev in self.events.items():
            if eid not in self.purged and now - ev.end > keep:
                self.app[OUTBOX].drop_stream(attendance_stream(eid))
                self.app[OUTBOX].append(PURGED, eid, {"at": now})
                self.purged.add(eid)
                done.append(eid)
        if done:
            log.info("attendance purged", extra={"events": len(done)})
        return done

    def ban_key(self, session: Session) -> list[str]:
        keys = []
        device = session.opts.get("device")
        if isinstance(device, str) and 8 <= len(device) <= 64:
            keys.append("d:" + _hash(device))
        if session.resume_token:
            keys.append("r:" + _hash(session.resume_token))
        return keys


def _cell(text: str) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
