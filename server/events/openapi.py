"""The OpenAPI 3.1 document of the staff events API, served at ``/staff/events/openapi.json``.

Written by hand next to the routes (``server.events.http``) so that it says what a person needs:
every route, every body and answer, and the error shape. The hall and tables a body may name are
filled in from the world.
"""

from __future__ import annotations

from typing import Any

from server.events.agenda import ItemKind
from server.events.permissions import ROLES

__all__ = ["document"]

_ERROR = {
    "type": "object",
    "required": ["error", "reason"],
    "properties": {
        "error": {"type": "string", "description": "a short code, e.g. bad_field, no_event"},
        "reason": {"type": "string", "description": "what was wrong, for a person"},
    },
}
_TIME = {
    "type": "string",
    "format": "date-time",
    "description": "ISO 8601 with an offset, e.g. 2027-04-01T10:00:00+09:00",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {"description": "", "content": {"text/plain": {"schema": {"type": "string"}}}}
    out: dict[str, Any] = {
        "401": {**text, "description": "no staff credential, or not this server's"},
        "403": {**text, "description": "a cross-site request, or a role that may not do this"},
    }
    names = {
        400: "a field is wrong (the reason names it)",
        404: "no such event or invite",
        409: "the event is cancelled",
    }
    for c in codes:
        out[str(c)] = _json(_ref("Error"), names[c])
    return out


_OPERATION_IDS = {
    ("/staff/events", "get"): "listEvents",
    ("/staff/events", "post"): "createEvent",
    ("/staff/events/halls", "get"): "listHalls",
    ("/staff/events/{event_id}", "get"): "getEvent",
    ("/staff/events/{event_id}", "patch"): "editEvent",
    ("/staff/events/{event_id}/cancel", "post"): "cancelEvent",
    ("/staff/events/{event_id}/invites", "get"): "listInvites",
    ("/staff/events/{event_id}/invites", "post"): "createInvite",
    ("/staff/events/{event_id}/invites/{invite_id}/revoke", "post"): "revokeInvite",
    ("/staff/events/{event_id}/attendance", "get"): "getAttendance",
    ("/staff/events/{event_id}/attendance.csv", "get"): "getAttendanceCsv",
    ("/staff/events/{event_id}/live", "get"): "getLive",
    ("/staff/events/{event_id}/actions", "post"): "hostAction",
    ("/staff/moderation/reports", "get"): "listReports",
    ("/staff/moderation/actions", "post"): "moderate",
}
_USES_EVENT = (
    "getEvent",
    "editEvent",
    "cancelEvent",
    "listInvites",
    "createInvite",
    "getAttendance",
    "getAttendanceCsv",
    "getLive",
    "hostAction",
)


def _link(paths: dict[str, Any]) -> None:
    """Operation ids, and links from what a creation answers to the operations that use it."""
    for (path, method), op_id in _OPERATION_IDS.items():
        paths[path][method]["operationId"] = op_id
    created = paths["/staff/events"]["post"]["responses"]["201"]
    created["links"] = {
        op: {"operationId": op, "parameters": {"event_id": "$response.body#/id"}}
        for op in _USES_EVENT
    }
    invited = paths["/staff/events/{event_id}/invites"]["post"]["responses"]["201"]
    invited["links"] = {
        "revokeInvite": {
            "operationId": "revokeInvite",
            "parameters": {"event_id": "$response.body#/event", "invite_id": "$response.body#/id"},
        }
    }


def document(halls: dict[str, tuple[str, ...]], max_capacity: int) -> dict[str, Any]:
    """The document for a world with these halls (hall id -> its table ids)."""
    tables = sorted({t for ts in halls.values() for t in ts})
    title = {
        "type": "object",
        "required": ["ja", "en"],
        "additionalProperties": False,
        "properties": {
            "ja": {
                "type": "string",
                "minLength": 1,
                "maxLength": 120,
                "pattern": "^[^\\x00-\\x1f\\x7f]*\\S[^\\x00-\\x1f\\x7f]*$",
            },
            "en": {
                "type": "string",
                "minLength": 1,
                "maxLength": 120,
                "pattern": "^[^\\x00-\\x1f\\x7f]*\\S[^\\x00-\\x1f\\x7f]*$",
            },
        },
    }
    item = {
        "type": "object",
        "required": ["kind", "minutes"],
        "additionalProperties": False,
        "properties": {
            "kind": {"enum": [k.value for k in ItemKind]},
            "minutes": {"type": "number", "minimum": 0.05, "maximum": 600},
            "shuffle": {"type": "boolean", "description": "shuffle the tables first (rounds only)"},
            "title": _ref("Title"),
        },
    }
    fields = {
        "title": _ref("Title"),
        "start": _TIME,
        "end": {**_TIME, "description": "after start, at most 7 days later"},
        "hall": {"enum": list(halls), "description": "the hall (a zone of the world with tables)"},
        "capacity": {
            "type": "integer",
            "minimum": 1,
            "maximum": max_capacity,
            "description": "guests at most",
        },
        "tables": {
            "type": "array",
            "items": {"enum": tables},
            "uniqueItems": True,
            "description": "tables of the hall (default: all)",
        },
        "agenda": {"type": "array", "items": _ref("AgendaItem"), "maxItems": 40},
    }
    event = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "pattern": "^ev-[0-9a-f]{10}$"},
            **fields,
            "cancelled": {"type": "boolean"},
            "version": {"type": "integer"},
            "created": _TIME,
            "updated": _TIME,
            "status": {"enum": ["scheduled", "running", "paused", "ended", "cancelled"]},
            "present": {"type": "integer", "description": "people in the event now"},
        },
    }
    invite = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "event": {"type": "string"},
            "role": {"enum": list(ROLES)},
            "label": {"type": "string"},
            "expires": {"type": "number", "description": "epoch seconds"},
            "single_use": {"type": "boolean"},
            "revoked": {"type": ["number", "null"]},
            "created": {"type": "number"},
            "created_by": {"type": "string"},
            "token": {"type": "string", "description": "the signed token (HMAC-SHA256)"},
            "link": {"type": "string", "description": "the invitation link to send"},
        },
    }
    eid = {
        "name": "event_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^ev-[0-9a-f]{10}$"},
    }
    iid = {
        "name": "invite_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^inv-[0-9a-f]{10}$"},
    }

    def body(schema: dict[str, Any]) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": schema}}}

    paths: dict[str, Any] = {
        "/staff/events": {
            "get": {
                "summary": "every event, by start",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {"events": {"type": "array", "items": _ref("Event")}},
                        },
                        "the events",
                    ),
                    **_errors(),
                },
            },
            "post": {
                "summary": "create an event",
                "requestBody": body(_ref("NewEvent")),
                "responses": {"201": _json(_ref("Event"), "created"), **_errors(400)},
            },
        },
        "/staff/events/halls": {
            "get": {
                "summary": "the halls, their tables and the stage an event may use",
                "responses": {"200": _json({"type": "object"}, "the halls"), **_errors()},
            },
        },
        "/staff/events/{event_id}": {
            "parameters": [eid],
            "get": {
                "summary": "one event",
                "responses": {"200": _json(_ref("Event"), "the event"), **_errors(404)},
            },
            "patch": {
                "summary": "change some fields of an event",
                "requestBody": body(_ref("EventPatch")),
                "responses": {"200": _json(_ref("Event"), "changed"), **_errors(400, 404, 409)},
            },
        },
        "/staff/events/{event_id}/cancel": {
            "parameters": [eid],
            "post": {
                "summary": "cancel an event (everyone in it is told; invites stop working)",
                "responses": {"200": _json(_ref("Event"), "cancelled"), **_errors(404)},
            },
        },
        "/staff/events/{event_id}/invites": {
            "parameters": [eid],
            "get": {
                "summary": "the invites of an event, with their links",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {"invites": {"type": "array", "items": _ref("Invite")}},
                        },
                        "the invites",
                    ),
                    **_errors(404),
                },
            },
            "post": {
                "summary": "make an invite (signed, expiring, optionally single-use and labelled)",
                "requestBody": body(_ref("NewInvite")),
                "responses": {"201": _json(_ref("Invite"), "made"), **_errors(400, 404, 409)},
            },
        },
        "/staff/events/{event_id}/invites/{invite_id}/revoke": {
            "parameters": [eid, iid],
            "post": {
                "summary": "withdraw an invite",
                "responses": {"200": _json(_ref("Invite"), "withdrawn"), **_errors(404)},
            },
        },
        "/staff/events/{event_id}/attendance": {
            "parameters": [eid],
            "get": {
                "summary": "who is in now, and every visit (name, label, role, times)",
                "responses": {"200": _json(_ref("Attendance"), "attendance"), **_errors(404)},
            },
        },
        "/staff/events/{event_id}/attendance.csv": {
            "parameters": [eid],
            "get": {
                "summary": "every visit as CSV",
                "responses": {
                    "200": {
                        "description": "CSV: name,label,role,joined,left",
                        "content": {"text/csv": {"schema": {"type": "string"}}},
                    },
                    **_errors(404),
                },
            },
        },
        "/staff/events/{event_id}/live": {
            "parameters": [eid],
            "get": {
                "summary": "the event as its guests see it: agenda, timer, tables, roster, hands",
                "responses": {"200": _json({"type": "object"}, "the live state"), **_errors(404)},
            },
        },
        "/staff/events/{event_id}/actions": {
            "parameters": [eid],
            "post": {
                "summary": "a host tool: announce, mute, mute_table, mute_all, move, shuffle, remove, lock, spotlight, hand_done, agenda",
                "requestBody": body(_ref("Action")),
                "responses": {"200": _json({"type": "object"}, "done"), **_errors(400, 404)},
            },
        },
        "/staff/moderation/reports": {
            "get": {
                "summary": "residents' reports, newest first",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "reports": {"type": "array", "items": {"type": "object"}}
                            },
                        },
                        "the reports",
                    ),
                    **_errors(),
                },
            },
        },
        "/staff/moderation/actions": {
            "post": {
                "summary": "mute, unmute, remove or ban (for a time) someone anywhere in the city",
                "requestBody": body(_ref("Moderation")),
                "responses": {"200": _json({"type": "object"}, "done"), **_errors(400, 404)},
            },
        },
    }
    _link(paths)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "emachi events (staff API)",
            "version": "1",
            "description": "Invite-only events in the virtual city hall. Send the staff token as "
            "'Authorization: Bearer TOKEN' or sign in on a staff page (cookie).",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": _ERROR,
                "Title": title,
                "AgendaItem": item,
                "NewEvent": {
                    "type": "object",
                    "required": ["title", "start", "end", "capacity"],
                    "additionalProperties": False,
                    "properties": fields,
                },
                "EventPatch": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": fields,
                },
                "Event": event,
                "NewInvite": {
                    "type": "object",
                    "required": ["role"],
                    "additionalProperties": False,
                    "properties": {
                        "role": {"enum": list(ROLES)},
                        "label": {
                            "type": "string",
                            "maxLength": 60,
                            "description": "e.g. 2027年度 内定者 A",
                        },
                        "expires": {**_TIME, "description": "default: the end of the event"},
                        "single_use": {"type": "boolean"},
                    },
                },
                "Invite": invite,
                "Attendance": {
                    "type": "object",
                    "properties": {
                        "event": {"type": "string"},
                        "present": {"type": "array", "items": {"type": "object"}},
                        "visits": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "name": {"type": "string"},
                                    "label": {"type": "string"},
                                    "role": {"type": "string"},
                                    "joined": {"type": ["number", "null"]},
                                    "left": {"type": ["number", "null"]},
                                },
                            },
                        },
                    },
                },
                "Action": {
                    "type": "object",
                    "required": ["action"],
                    "additionalProperties": False,
                    "properties": {
                        "action": {
                            "enum": [
                                "announce",
                                "mute",
                                "mute_table",
                                "mute_all",
                                "move",
                                "shuffle",
                                "remove",
                                "lock",
                                "spotlight",
                                "hand_done",
                                "agenda",
                            ]
                        },
                        "args": {
                            "type": "object",
                            "description": "announce {text}; mute {avatar, muted}; mute_table {table, muted}; mute_all {muted}; move {avatar, table}; remove {avatar, reason}; lock {locked}; spotlight {avatar | -1}; hand_done {avatar}; agenda {command: start|next|pause|resume|end}",
                        },
                    },
                },
                "Moderation": {
                    "type": "object",
                    "required": ["action", "instance", "avatar"],
                    "additionalProperties": False,
                    "properties": {
                        "action": {"enum": ["mute", "unmute", "remove", "ban"]},
                        "instance": {"type": "string"},
                        "avatar": {"type": "integer"},
                        "minutes": {"type": "number", "minimum": 1, "maximum": 129600},
                        "reason": {"type": "string", "maxLength": 200},
                    },
                },
            },
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }
