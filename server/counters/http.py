"""The counters' HTTP routes (``docs/counters.md``, "HTTP"): the public counters and slots,
reservations, the procedure service's completion webhook, the staff pass and the staff pages."""

from __future__ import annotations

import json
import logging
import time
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web

from server.keys import CONFIG, KIOSKS, SECURITY
from server.staff import staff_actor
from server.staff_roles import roles_for
from server.store import StoreAway
from server.web_security import origin_allowed

from . import pages, view
from .booking import Attempts, slot_key, slots
from .desks import Desks
from .machine import Refused
from .passes import PASS_SECONDS, make_pass
from .webhook import HEADER, MAX_BODY, WebhookRefused, parse_body, verify

if TYPE_CHECKING:
    from .records import CounterRecords
    from .service import CounterService

__all__ = ["routes"]

log = logging.getLogger("emachi.counters.http")

#: reservations: at most this many per client address in 10 minutes
BOOK_LIMIT = 10
#: how far ahead a slot may be booked
BOOK_DAYS = 14
MAX_BODY_BOOK = 1024


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, ensure_ascii=False),
        status=status,
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def _err(status: int, code: str, reason: str) -> web.Response:
    return _json({"code": code, "reason": reason}, status)


def routes(
    app: web.Application, service: CounterService, records: CounterRecords, secret: bytes
) -> None:
    """Add the counters' routes to ``app``."""
    book_tries = Attempts(limit=BOOK_LIMIT, window=600.0)

    def public(d: Any = None) -> list[dict[str, Any]]:
        d = d or next(iter(service.desks.values()), None)
        if d is None:
            d = Desks(service.world.counters)
        return view.counters_view(d, service.in_hours, service.name)

    async def list_counters(request: web.Request) -> web.Response:
        return _json({"counters": public(), "always_open": service.always_open})

    def counter_of(request: web.Request) -> Any:
        spec = service.specs.get(request.match_info["id"])
        if spec is None:
            raise web.HTTPNotFound(text=f"no counter {request.match_info['id'][:64]!r}")
        return spec

    def day_of(text: str) -> date:
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise web.HTTPBadRequest(text="date: expected YYYY-MM-DD") from None

    async def free_slots(request: web.Request) -> web.Response:
        spec = counter_of(request)
        now = service.clock()
        day = day_of(request.query.get("date", now.date().isoformat()))
        taken = service.book.taken(spec.id, day.isoformat())
        free = [
            slot_key(s)
            for s in slots(spec.hours, day, spec.slot_minutes, now.tzinfo)
            if slot_key(s) not in taken and s + timedelta(minutes=spec.slot_minutes) > now
        ]
        return _json(
            {
                "counter": spec.id,
                "date": day.isoformat(),
                "minutes": spec.slot_minutes,
                "free": free,
            }
        )

    async def reserve(request: web.Request) -> web.Response:
        sec = request.app.get(SECURITY)
        if sec is not None and not origin_allowed(request, sec.origins):
            return _err(403, "origin", "this origin may not book")
        spec = counter_of(request)
        addr = request.remote or ""
        mono = time.monotonic()
        if book_tries.blocked(addr, mono):
            service.refused["booking_rate"] += 1
            return _err(429, "booking_rate", f"at most {BOOK_LIMIT} bookings in 10 minutes")
        raw = await request.content.read(MAX_BODY_BOOK + 1)
        try:
            body = json.loads(raw) if len(raw) <= MAX_BODY_BOOK else None
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            body = None
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("slot"), str)
            or not isinstance(body.get("name"), str)
        ):
            return _err(400, "bad_body", 'expected {"slot": "YYYY-MM-DDTHH:MM", "name": "..."}')
        now = service.clock()
        try:
            start = datetime.strptime(body["slot"], "%Y-%m-%dT%H:%M").replace(tzinfo=now.tzinfo)
        except ValueError:
            return _err(400, "bad_slot", "slot: expected YYYY-MM-DDTHH:MM")
        offered = {
            slot_key(s) for s in slots(spec.hours, start.date(), spec.slot_minutes, now.tzinfo)
        }
        if body["slot"] not in offered or start.date() > now.date() + timedelta(days=BOOK_DAYS):
            return _err(400, "bad_slot", f"not a slot of {spec.id} (GET its slots)")
        try:
            b, code = service.book.book(spec.id, start, spec.slot_minutes, body["name"], now)
        except Refused as exc:
            return _err(409 if exc.code == "slot_taken" else 400, exc.code, exc.reason)
        book_tries.wrong(addr, mono)  # every booking counts against the address
        records.booking(
            b.slot[:10], f"{b.counter}/{b.slot}", {"c": b.counter, "s": b.slot, "m": b.minutes,
                                                    "n": b.name, "h": b.code_hash},
        )  # fmt: skip
        service.dirty = True
        return _json({"code": code, "slot": b.slot, "counter": b.counter}, 201)

    async def completed(request: web.Request) -> web.Response:
        raw = await request.content.read(MAX_BODY + 1)
        try:
            verify(secret, request.headers.get(HEADER), raw, time.time())
            ref, _at = parse_body(raw)
        except WebhookRefused as exc:
            service.refused[f"webhook_{exc.code}"] += 1
            return _err(exc.status, exc.code, exc.reason)
        now = time.time()
        if service.refs.get(ref, now) is None:
            try:
                info = await records.read_ref(ref)
            except StoreAway:
                return _err(503, "store_away", "the records store is not answering; send it again")
            if info is not None:
                service.refs.learn(ref, info)
        outcome, info = service.refs.complete(ref, now)
        if outcome == "unknown" or info is None:
            service.refused["webhook_unknown_ref"] += 1
            return _err(
                404, "unknown_ref", "no link with this emachi_ref was handed out (or it expired)"
            )
        if outcome == "already":
            return _json({"ref": ref, "already": True})
        records.completed(info.procedure)
        records.ref(ref, info)
        return _json({"ref": ref, "already": False, "procedure": info.procedure})

    async def staff_pass(request: web.Request) -> web.Response:
        actor = staff_actor(request, roles_for("counters"))
        token = request.app[CONFIG].staff_token
        return _json(
            {"pass": make_pass(token, actor.name, time.time()), "expires_in": PASS_SECONDS}
        )

    async def desks_page(request: web.Request) -> web.Response:
        staff_actor(request, roles_for("counters"))
        day = service.clock().date().isoformat()
        html = pages.desks_page(public(), service.book.of_day(day), day, None)
        return web.Response(
            text=html, content_type="text/html", headers={"Cache-Control": "no-store"}
        )

    def kiosk_procedures(request: web.Request) -> dict[str, str]:
        kiosks = request.app.get(KIOSKS)
        return {k.id: k.procedure for k in kiosks.kiosks.values()} if kiosks else {}

    async def figures(request: web.Request) -> tuple[list[Any], list[Any], str, str | None]:
        try:
            days = int(request.query.get("days", "30"))
            if not 1 <= days <= 3660:
                raise ValueError
        except ValueError:
            raise web.HTTPBadRequest(
                text="days: expected a whole number of days (1-3660)"
            ) from None
        since = (service.clock().date() - timedelta(days=days - 1)).isoformat()
        try:
            rows = await records.stats(since)
            funnel = await records.funnel(since, kiosk_procedures(request))
        except StoreAway:
            return (
                [],
                [],
                since,
                (
                    "記録の保存先が応答しません。しばらくしてからもう一度開いてください。 / "
                    "The records store is not answering; open this page again in a moment."
                ),
            )
        return rows, funnel, since, None

    async def stats_page(request: web.Request) -> web.Response:
        staff_actor(request, roles_for("counters"))
        rows, funnel, since, away = await figures(request)
        html = pages.stats_page(rows, funnel, since, away)
        return web.Response(
            text=html, content_type="text/html", headers={"Cache-Control": "no-store"}
        )

    async def stats_csv(request: web.Request) -> web.Response:
        staff_actor(request, roles_for("counters"))
        rows, funnel, since, away = await figures(request)
        if away is not None:
            return web.Response(text=away, status=503, headers={"Retry-After": "10"})
        return web.Response(
            text=pages.stats_csv(rows, funnel),
            content_type="text/csv",
            headers={
                "Content-Disposition": f'attachment; filename="counter-figures-{since}.csv"',
                "Cache-Control": "no-store",
            },
        )

    r = app.router
    r.add_get("/api/counters", list_counters)
    r.add_get("/api/counters/{id}/slots", free_slots)
    r.add_post("/api/counters/{id}/reservations", reserve)
    r.add_post("/api/procedures/completed", completed)
    r.add_get("/staff/counters/pass", staff_pass)
    r.add_get("/staff/counters/", desks_page)
    r.add_get("/staff/counters", desks_page)
    r.add_get("/staff/counters/stats", stats_page)
    r.add_get("/staff/counters/stats.csv", stats_csv)
