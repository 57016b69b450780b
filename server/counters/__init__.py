"""Service counters (issue 13): staff on duty, a queue with a wait, a private consultation.

``setup(app)`` mounts the feature (the contract is ``docs/counters.md``):

- ``COUNTER`` actions from residents (ticket, leave, accept, enter) and staff (duty, off_duty,
  call, screen, link, end); a refusal is ``ERROR code reason``, counted at ``/metrics`` as
  ``emachi_counters_refused_total{reason}``; the connection stays;
- ``COUNTER_STATE`` to every session of an instance when what it sees changed (at most 4 a
  second), ``NOTICE counter_call`` to a resident called, ``NOTICE counter_ticket`` when a ticket
  ends (done, left, dropped, no_show);
- staff are known at hello: ``opts.staff`` = the staff token (the voice feature's hello hook sets
  ``session.role``), or ``opts.staff_pass`` from ``GET /staff/counters/pass`` (a signed-in staff
  page; the session cookie is not sent to ``/ws``);
- while two people consult, their chat goes only to each other (never relayed to the other
  processes) and the lobby's, here or relayed from another process, does not reach them (the
  chat hook); voice is private already (booths are isolated zones);
- a reservation's states are written to the Store as they are reached and read back at start
  with the bookings, so a code used stays used across a restart;
- the kiosk's links carry an opaque ``emachi_ref``; ``POST /api/procedures/completed`` (HMAC)
  moves one to completed, once; reservations, the staff pages and the CSV (``server.counters.http``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, Metric

from server.errors import LoadError, RequestError
from server.keys import (
    BRIEFINGS,
    CONFIG,
    COUNTERS,
    DISPATCH,
    HOOKS,
    KIOSKS,
    METRICS,
    OUTBOX,
    STORE,
    WORLD,
)
from server.kiosk.qr import qr_svg
from server.protocol.codes import MsgType
from server.store import StoreAway
from server.tasks import stop_task

from .booking import Book
from .http import BOOK_DAYS, routes
from .machine import Refused
from .passes import read_pass
from .records import CounterRecords
from .service import CounterService
from .wire import CounterAction

if TYPE_CHECKING:
    from server.protocol.messages import Hello
    from server.session import Session

__all__ = ["setup", "CounterService"]

log = logging.getLogger("emachi.counters")

FLUSH_SECONDS = 0.25
STAFF_ACTIONS = frozenset({"duty", "off_duty", "call", "screen", "link", "end"})
RESIDENT_ACTIONS = frozenset({"ticket", "leave", "accept", "enter"})
SCREENS = ("kiosk", "slide", "checklist")
#: at start, the bookings streams of this many days back are dropped (a process stopped that
#: long leaves none behind; one running drops each day's once the day is over)
KEEP_DAYS_BACK = 31


def _secret(config: Any) -> bytes:
    if config.webhook_secret:
        return str(config.webhook_secret).encode()
    return hmac.new(
        config.staff_token.encode(), b"emachi procedure webhook v1", hashlib.sha256
    ).digest()


def _str_arg(args: dict[str, Any], key: str, hi: int = 64) -> str:
    v = args.get(key)
    if not isinstance(v, str) or not 1 <= len(v) <= hi:
        raise Refused("bad_args", f"expected args.{key}: a string of 1-{hi} characters")
    return v


class _Refusals:
    """``emachi_counters_refused_total{reason}`` for the metrics registry."""

    def __init__(self, service: CounterService) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        m = CounterMetricFamily(
            "emachi_counters_refused",
            "Counter requests refused (ticket flood, booth join without a call, guessed code, "
            "forged or replayed webhook, ...), by reason.",
            labels=["reason"],
        )
        for reason in sorted(self.service.refused):
            m.add_metric([reason], float(self.service.refused[reason]))
        yield m


def setup(app: web.Application) -> None:
    """Mount the counters: handler, hooks, chat routing, the kiosk's refs, routes, the flusher.

    Raises:
        server.errors.LoadError: a counter names a procedure the kiosk catalog lacks.
    """
    config = app[CONFIG]
    world = app[WORLD]
    tz = config.tz
    kiosks = app.get(KIOSKS)
    if kiosks is not None:
        bad = [
            f"{world.path}:counters.{c.id}.procedures: expected item ids of the catalog, got {p!r}"
            for c in world.counters
            for p in c.procedures
            if p not in kiosks.catalog.items
        ]
        if bad:
            raise LoadError(bad)

    def clock() -> datetime:
        return datetime.now(tz)

    records = CounterRecords(app[OUTBOX], app[STORE], clock)
    key = hmac.new(config.staff_token.encode(), b"emachi booking codes v1", hashlib.sha256).digest()
    service = CounterService(
        world,
        clock,
        always_open=config.counters_always_open,
        book=Book(key),
        record=records.stat,
        booked=lambda b: records.booking_state(b.counter, b.slot, b.state),
    )
    app[COUNTERS] = service
    app[METRICS].registry.register(_Refusals(service))
    hooks = app[HOOKS]

    if kiosks is not None:

        def issue(procedure: str, channel: str) -> str:
            now = time.time()
            ref = service.refs.issue(procedure, channel, clock().strftime("%Y-%m-%dT%H"), now)
            records.ref(ref, service.refs.known[ref])
            return ref

        kiosks.link_ref = issue

    @hooks.on_hello
    def staff_and_prior(session: Session, hello: Hello) -> None:
        given = session.opts.pop("staff_pass", None)
        if given is not None and read_pass(config.staff_token, given, time.time()) is not None:
            session.role = "staff"
        if hello.resume:
            service.prior[session] = (hello.resume, time.monotonic())

    hooks.on_create(service.created)
    hooks.on_join(service.joined)
    hooks.on_resume(service.resend)
    hooks.on_leave(service.left)
    hooks.on_dispose(service.disposed)

    @hooks.on_chat
    def private_booths(
        sender: Session | None, targets: list[Session]
    ) -> tuple[list[Session], bool] | None:
        # a line relayed from another process (no sender here) is the lobby's: not for a booth
        inst = sender.instance if sender is not None else (targets[0].instance if targets else None)
        d = service.desks.get(inst) if inst is not None else None
        if d is None or not d.consults:
            return None
        c = d.consults.get(sender) if sender is not None else None
        if c is not None:  # a line said in the booth: the two only, never relayed
            return [s for s in targets if s is c.staff or s is c.resident], False
        kept = [s for s in targets if s not in d.consults]
        return (kept, True) if len(kept) != len(targets) else None

    def screen(session: Session, args: dict[str, Any]) -> None:
        c = service.consultation(session)
        kind = args.get("kind")
        if kind not in SCREENS:
            raise Refused("bad_args", "expected args.kind: kiosk, slide or checklist")
        if kind == "kiosk":
            ref = _str_arg(args, "ref")
            if kiosks is None or ref not in kiosks.kiosks:
                raise Refused("screen_unknown", f"there is no kiosk {ref!r}")
            c.screen = {"kind": "kiosk", "ref": ref, "panel": kiosks.panel(ref)}
        elif kind == "slide":
            ref = _str_arg(args, "ref", 96)
            bid, _, idx = ref.rpartition("/")
            briefings = app.get(BRIEFINGS)
            b = briefings.get(bid) if briefings is not None and bid else None
            segs = b.doc.get("segments", []) if b is not None else []
            if not (idx.isascii() and idx.isdigit()) or not 0 <= int(idx) < len(segs):
                raise Refused("screen_unknown", "expected args.ref: 'briefing-id/slide index'")
            c.screen = {"kind": "slide", "ref": ref, "slide": segs[int(idx)].get("slide")}
        else:
            query = args.get("query", {})
            if kiosks is None or not isinstance(query, dict):
                raise Refused("bad_args", "expected args.query: the moving helper's answers")
            try:
                answer = kiosks.moving.checklist(query)
            except ValueError as exc:
                raise Refused("helper_query", f"expected {exc}") from None
            c.screen = {"kind": "checklist", "query": query, "answer": answer}
        service.dirty = True

    def link(session: Session, args: dict[str, Any]) -> None:
        c = service.consultation(session)
        proc, channel = _str_arg(args, "procedure"), _str_arg(args, "channel", 32)
        item = kiosks.catalog.items.get(proc) if kiosks is not None else None
        ch = item.channel(channel) if item is not None else None
        if kiosks is None or item is None or ch is None:
            raise Refused("link_unknown", f"the catalog has no channel {channel!r} of {proc!r}")
        url = kiosks.link(proc, ch.id, ch.url)
        c.link = {
            "url": url,
            "qr_svg": qr_svg(url),
            "label": {"ja": item.title.ja, "en": item.title.en},
            "channel": ch.id,
            "procedure": proc,
        }
        service.dirty = True

    def act(session: Session, action: str, args: dict[str, Any]) -> None:
        if action in STAFF_ACTIONS and session.role != "staff":
            raise Refused("not_staff", f"{action} is for staff on duty (sign in as staff)")
        if action == "ticket":
            service.ticket(session, _str_arg(args, "counter"))
        elif action == "leave":
            service.leave(session)
        elif action == "accept":
            service.accept(session)
        elif action == "enter":
            service.enter(session, _str_arg(args, "code", 32), session.address)
        elif action == "duty":
            counter = _str_arg(args, "counter")
            if counter not in service.specs:
                raise Refused("counter_unknown", f"there is no counter {counter!r}")
            service.duty(session, counter)
        elif action == "off_duty":
            service.off_duty(session)
        elif action == "call":
            service.call(session)
        elif action == "end":
            service.end(session)
        elif action == "screen":
            screen(session, args)
        elif action == "link":
            link(session, args)
        else:
            known = ", ".join(sorted(STAFF_ACTIONS | RESIDENT_ACTIONS))
            raise Refused("action_unknown", f"expected one of {known}; not {action[:32]!r}")

    async def on_counter(session: Session, msg: CounterAction) -> None:
        try:
            act(session, msg.action, msg.args)
        except Refused as exc:
            service.refuse(exc)
            raise RequestError(exc.code, exc.reason) from None

    app[DISPATCH].register(MsgType.COUNTER, on_counter)
    routes(app, service, records, _secret(config))

    def new_day(day: str) -> str:
        """Past midnight: yesterday's bookings are forgotten here and in the Store."""
        today = service.clock().date().isoformat()
        if today != day:
            service.book.expire(today)
            if day < today:
                records.drop_bookings(day)
            service.dirty = True
        return today

    async def flusher(app: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            n = 0
            day = service.clock().date().isoformat()
            while True:
                await asyncio.sleep(FLUSH_SECONDS)
                try:
                    n += 1
                    if n % 4 == 0:
                        service.sweep()
                        day = new_day(day)
                    service.flush()
                except Exception:
                    log.exception("counters flush failed")

        task = asyncio.get_running_loop().create_task(loop(), name="counters flush")
        yield
        await stop_task(task)

    app.cleanup_ctx.append(flusher)

    async def bookings_back(app: web.Application) -> AsyncIterator[None]:
        """At start: the bookings of today and the days ahead back from the Store, each in the
        state it reached (a code used before a restart stays used), and the streams of the
        days gone by dropped (a booking is kept until its day is over)."""
        now = service.clock()  # the service's: a test may have set its own
        today = now.date()
        for n in range(1, KEEP_DAYS_BACK + 1):
            records.drop_bookings((today - timedelta(days=n)).isoformat())
        try:
            for n in range(BOOK_DAYS + 1):
                for rec in await records.bookings((today + timedelta(days=n)).isoformat()):
                    if not service.book.restore(rec, now.tzinfo):
                        log.warning("a booking record that does not read was skipped")
        except (StoreAway, TimeoutError):
            log.warning("bookings not read back: the records store did not answer")
        yield

    app.cleanup_ctx.append(bookings_back)
