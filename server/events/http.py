"""The staff API of events under ``/staff/events`` (JSON), the moderation routes under
``/staff/moderation``, and the console page. The OpenAPI document is ``server.events.openapi``.

Every route needs a staff credential (``server.staff.staff_actor``); the event routes the role
host or admin. A bad request is answered 400 with ``{"error": CODE, "reason": TEXT}`` naming
the field; an unknown event or invite 404 in the same shape.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from server.config import CLIENT_DIR
from server.errors import RequestError
from server.events.model import BadField, parse_event, parse_time, patch_event
from server.events.openapi import document
from server.events.permissions import ACCOUNT_ROLES, ROLES
from server.keys import CONFIG, OUTBOX
from server.staff import Actor, staff_actor

if TYPE_CHECKING:
    from server.events.moderation import Moderation
    from server.events.service import EventService

__all__ = ["add_routes", "EVENT_ID", "INVITE_ID"]

EVENT_ID = r"ev-[0-9a-f]{10}"
INVITE_ID = r"inv-[0-9a-f]{10}"
LABEL_MAX = 60
EVENT_ROLES = ("host", "admin")
MODERATOR_ROLES = ("staff", "admin", "host")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: type[web.HTTPException], code: str, reason: str) -> web.HTTPException:
    return status(
        text=json.dumps({"error": code, "reason": reason}, ensure_ascii=False),
        content_type="application/json",
    )


async def _body(request: web.Request) -> Any:
    try:
        return await request.json(loads=json.loads)
    except (ValueError, UnicodeDecodeError):
        raise _error(web.HTTPBadRequest, "bad_json", "the body is not JSON") from None


def _bad(exc: BadField) -> web.HTTPException:
    return _error(web.HTTPBadRequest, "bad_field", str(exc))


def add_routes(app: web.Application, service: EventService, moderation: Moderation) -> None:
    """Mount the routes (fixed paths before the ``{event_id}`` ones)."""
    config = app[CONFIG]

    def event_of(request: web.Request) -> Any:
        ev = service.events.get(request.match_info["event_id"])
        if ev is None:
            raise _error(web.HTTPNotFound, "no_event", "no event with this id")
        return ev

    def summary(ev: Any) -> dict[str, Any]:
        d = ev.to_json()
        live = service.live.get(ev.id)
        d["status"] = (
            "cancelled" if ev.cancelled else (live.run.phase.value if live else "scheduled")
        )
        d["present"] = len([m for m in live.members.values() if m.placed]) if live else 0
        return d

    async def list_events(request: web.Request) -> web.Response:
        staff_actor(request, EVENT_ROLES)
        events = sorted(service.events.values(), key=lambda e: e.start)
        return web.json_response({"events": [summary(e) for e in events]})

    async def create_event(request: web.Request) -> web.Response:
        actor = staff_actor(request, EVENT_ROLES)
        body = await _body(request)
        now = time.time()
        try:
            ev = parse_event(
                body,
                f"ev-{_hex()}",
                now,
                service.hall_tables(),
                config.capacity,
                service.default_hall,
            )
        except BadField as exc:
            raise _bad(exc) from None
        service.save_event(ev, actor.name, "event.create")
        await app[OUTBOX].committed()  # an answered change is stored
        return web.json_response(summary(ev), status=201)

    async def get_event(request: web.Request) -> web.Response:
        staff_actor(request, EVENT_ROLES)
        return web.json_response(summary(event_of(request)))

    async def edit_event(request: web.Request) -> web.Response:
        actor = staff_actor(request, EVENT_ROLES)
        ev = event_of(request)
        body = await _body(request)
        if ev.cancelled:
            raise _error(web.HTTPConflict, "cancelled", "a cancelled event is not edited")
        try:
            new = patch_event(ev, body, time.time(), service.hall_tables(), config.capacity)
        except BadField as exc:
            raise _bad(exc) from None
        service.save_event(new, actor.name, "event.edit")
        await app[OUTBOX].committed()
        return web.json_response(summary(new))

    async def cancel_event(request: web.Request) -> web.Response:
        actor = staff_actor(request, EVENT_ROLES)
        ev = event_of(request)
        if not ev.cancelled:
            ev = service.cancel_event(ev, actor.name)
        await app[OUTBOX].committed()
        return web.json_response(summary(ev))

    def invite_json(inv: Any, request: web.Request, with_token: bool) -> dict[str, Any]:
        d = inv.to_json()
        if with_token:
            token = service.token(inv)
            base = (config.public_url or f"{request.scheme}://{request.host}").rstrip("/")
            d["token"] = token
            d["link"] = f"{base}/?event={inv.event}&invite={token}"
        return d

    async def list_invites(request: web.Request) -> web.Response:
        staff_actor(request, EVENT_ROLES)
        ev = event_of(request)
        invs = [i for i in service.invites.values() if i.event == ev.id]
        return web.json_response({"invites": [invite_json(i, request, True) for i in invs]})

    async def create_invite(request: web.Request) -> web.Response:
        actor = staff_actor(request, EVENT_ROLES)
        ev = event_of(request)
        body = await _body(request)
        try:
            if not isinstance(body, dict) or not set(body) <= {
                "role",
                "label",
                "expires",
                "single_use",
            }:
                raise BadField("body", 'an object {"role", "label"?, "expires"?, "single_use"?}')
            role = body.get("role")
            if role not in ROLES:
                raise BadField("role", " or ".join(ROLES))
            label = body.get("label", "")
            if not isinstance(label, str) or len(label) > LABEL_MAX or not label.isprintable():
                raise BadField("label", f"a text of at most {LABEL_MAX} characters")
            expires = parse_time(body["expires"], "expires") if "expires" in body else ev.end
            if not time.time() < expires <= ev.end + 86400:
                raise BadField(
                    "expires", "a time in the future, at most a day after the event ends"
                )
            single = body.get("single_use", False)
            if type(single) is not bool:
                raise BadField("single_use", "true or false")
        except BadField as exc:
            raise _bad(exc) from None
        if ev.cancelled:
            raise _error(web.HTTPConflict, "cancelled", "a cancelled event takes no invites")
        inv, _ = service.make_invite(ev, role, label.strip(), expires, single, actor.name)
        await app[OUTBOX].committed()
        return web.json_response(invite_json(inv, request, True), status=201)

    async def revoke_invite(request: web.Request) -> web.Response:
        actor = staff_actor(request, EVENT_ROLES)
        ev = event_of(request)
        inv = service.invites.get(request.match_info["invite_id"])
        if inv is None or inv.event != ev.id:
            raise _error(web.HTTPNotFound, "no_invite", "no invite with this id for this event")
        inv = service.revoke_invite(inv, actor.name)
        await app[OUTBOX].committed()
        return web.json_response(invite_json(inv, request, False))

    async def attendance(request: web.Request) -> web.Response:
        staff_actor(request, EVENT_ROLES)
        ev = event_of(request)
        visits = await service.attendance(ev.id)
        live = service.live.get(ev.id)
        present = [
            {
                "avatar": m.session.avatar_id,
                "name": m.session.name,
                "label": m.label,
                "role": m.role,
            }
            for m in (live.members.values() if live else [])
            if m.placed
        ]
        return web.json_response({"event": ev.id, "present": present, "visits": visits})

    async def attendance_csv(request: web.Request) -> web.Response:
        staff_actor(request, EVENT_ROLES)
        ev = event_of(request)
        text = service.csv(await service.attendance(ev.id))
        return web.Response(
            text=text,
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="attendance-{ev.id}.csv"'},
        )

    async def live_state(request: web.Request) -> web.Response:
        staff_actor(request, EVENT_ROLES)
        ev = event_of(request)
        return web.json_response(service.state(service.live_of(ev.id)))

    async def act(request: web.Request) -> web.Response:
        actor = staff_actor(request, EVENT_ROLES)
        ev = event_of(request)
        body = await _body(request)
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("action"), str)
            or not isinstance(body.get("args", {}), dict)
            or not set(body) <= {"action", "args"}
        ):
            raise _error(
                web.HTTPBadRequest, "bad_field", 'expected {"action": NAME, "args": {...}}'
            )
        if body["action"] in ("raise_hand", "lower_hand", "leave"):
            raise _error(web.HTTPBadRequest, "bad_field", "action: a host tool")
        try:
            out = service.act(
                service.live_of(ev.id),
                _event_role(actor),
                actor.name,
                body["action"],
                body.get("args", {}),
                None,
            )
        except RequestError as exc:
            status: type[web.HTTPException] = web.HTTPBadRequest
            if exc.code == "forbidden":
                status = web.HTTPForbidden
            elif exc.code == "event_no_such_avatar":
                status = web.HTTPNotFound
            raise _error(status, exc.code, exc.reason) from None
        service.publish(service.live_of(ev.id))
        return web.json_response(out)

    async def hall_info(request: web.Request) -> web.Response:
        staff_actor(request, EVENT_ROLES)
        out = []
        for hid, h in service.halls.items():
            out.append(
                {
                    "id": hid,
                    "name": {"ja": h.zone.name.ja, "en": h.zone.name.en},
                    "tables": [
                        {
                            "id": tid,
                            "name": {"ja": z.name.ja, "en": z.name.en},
                            "seats": h.tables[tid].seats,
                        }
                        for tid, z in h.table_zones.items()
                    ],
                    "stage": h.stage.id if h.stage else None,
                }
            )
        return web.json_response({"halls": out, "max_capacity": config.capacity})

    async def openapi(request: web.Request) -> web.Response:
        staff_actor(request, EVENT_ROLES)
        return web.json_response(document(service.hall_tables(), config.capacity))

    async def console(request: web.Request) -> web.StreamResponse:
        staff_actor(request, EVENT_ROLES)
        return web.FileResponse(
            CLIENT_DIR / "events" / "console.html", headers={"Cache-Control": "no-cache"}
        )

    async def reports(request: web.Request) -> web.Response:
        staff_actor(request, MODERATOR_ROLES)
        return web.json_response({"reports": await moderation.reports()})

    async def moderate(request: web.Request) -> web.Response:
        actor = staff_actor(request, MODERATOR_ROLES)
        body = await _body(request)
        ok = (
            isinstance(body, dict)
            and set(body) <= {"action", "instance", "avatar", "minutes", "reason"}
            and body.get("action") in ("mute", "unmute", "remove", "ban")
            and isinstance(body.get("instance"), str)
            and type(body.get("avatar")) is int
            and isinstance(body.get("reason", ""), str)
            and len(body.get("reason", "")) <= 200
        )
        if ok and body["action"] == "ban":
            m = body.get("minutes")
            ok = type(m) in (int, float) and 1 <= m <= 60 * 24 * 90
        if not ok:
            raise _error(
                web.HTTPBadRequest,
                "bad_field",
                'expected {"action": "mute"|"unmute"|"remove"|"ban", "instance": ID, "avatar": N, '
                '"minutes": 1..129600 (ban), "reason"?: TEXT}',
            )
        return web.json_response(moderation.act(actor.name, body))

    r = app.router
    r.add_get("/staff/events", list_events)
    r.add_post("/staff/events", create_event)
    r.add_get("/staff/events/openapi.json", openapi)
    r.add_get("/staff/events/console", console)
    r.add_get("/staff/events/halls", hall_info)
    e = f"/staff/events/{{event_id:{EVENT_ID}}}"
    r.add_get(e, get_event)
    r.add_patch(e, edit_event)
    r.add_post(f"{e}/cancel", cancel_event)
    r.add_get(f"{e}/invites", list_invites)
    r.add_post(f"{e}/invites", create_invite)
    r.add_post(f"{e}/invites/{{invite_id:{INVITE_ID}}}/revoke", revoke_invite)
    r.add_get(f"{e}/attendance", attendance)
    r.add_get(f"{e}/attendance.csv", attendance_csv)
    r.add_get(f"{e}/live", live_state)
    r.add_post(f"{e}/actions", act)
    r.add_get("/staff/moderation/reports", reports)
    r.add_post("/staff/moderation/actions", moderate)


def _event_role(actor: Actor) -> str:
    return ACCOUNT_ROLES.get(actor.role, "guest")


def _hex() -> str:
    return secrets.token_hex(5)
