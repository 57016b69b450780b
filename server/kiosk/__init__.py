"""Kiosks: from the virtual hall straight into the online procedure.

``setup(app)`` mounts the feature (docs/architecture.md, "Server extension points"):

- messages: ``KIOSK_OPEN`` → ``KIOSK_PANEL`` (only within the kiosk's radius + a small margin),
  ``KIOSK_CHOOSE`` → ``KIOSK_LINK`` (the catalog's link, a QR code SVG for LINE on a PC),
  ``HELPER_ASK`` → ``HELPER_ANSWER`` (helpers ``moving`` and ``garbage``); a refused request gets
  ``ERROR`` with a code and a reason, never a link;
- ``POST /api/helpers/{helper}`` (JSON query → JSON answer), the same helpers over HTTP;
- the moving checklist carried to a phone: ``GET /api/helpers/moving/share?<answers and ticks>``
  → ``{url, qr_svg, done, checklist}`` (the link of ``GET /moving?…``, the phone's page of that
  checklist, its QR code, the ticks and the checklist itself); the query holds question and step
  ids only, and the link is rebuilt from the checked answers;
- staff: ``GET /staff/kiosks`` (table and chart) and ``GET /staff/kiosks.csv``, behind the staff
  token (``Authorization: Bearer TOKEN``, or the session cookie that opening ``?token=TOKEN`` once
  sets: ``server.staff``);
- counts (views, opens per channel, helper asks per kiosk per day, no personal data) go through
  the records outbox into the records store (``server.store``: ``DATA_DIR/records.sqlite3``, or
  Redis when the process is part of a cluster); a count never waits on the store, and the staff
  page says so plainly when the store does not answer instead of failing.

Data and formats: ``worlds/<world>/catalog/`` and ``docs/kiosks.md``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from server import store as records
from server.config import CLIENT_DIR
from server.errors import RequestError
from server.keys import CONFIG, DISPATCH, HOOKS, KIOSKS, OUTBOX, SECURITY, STORE, WORLD
from server.protocol.codes import MsgType
from server.protocol.messages import HelperAnswer, KioskLink, KioskPanel
from server.staff import require_staff
from server.web_security import origin_allowed

from .counts import JST, CountRow, CountStore, KioskCounts, MemoryCountStore, days_back
from .moving import SHARE_PATH, AnswerError
from .qr import qr_svg
from .service import KioskRefusal, KioskService, load_service
from .staff import daily, render_csv, render_html, summarise

if TYPE_CHECKING:
    from server.protocol.messages import HelperAsk, KioskChoose, KioskOpen
    from server.session import Session

__all__ = ["setup", "KIOSKS", "KioskService"]

log = logging.getLogger("emachi.kiosk")

# A channel may be chosen for this long after the same connection opened the kiosk.
OPEN_TTL = 30 * 60.0
MAX_HELPER_BODY = 4096


def setup(app: web.Application, store: CountStore | None = None) -> None:
    """Mount kiosks on ``app``; idempotent, so a test may call it on an app that already has them.

    Raises:
        server.errors.LoadError: the catalog or a helper file does not load, or a world kiosk names
        a procedure the catalog lacks.
    """
    if KIOSKS in app:
        return
    config = app[CONFIG]
    world = app[WORLD]
    if store is None:
        records.setup(app)  # a no-op when server.features mounted it first
        store = KioskCounts(app[OUTBOX], app[STORE])
    service = load_service(config.world, world.kiosks, store)
    app[KIOSKS] = service
    opened: dict[Session, dict[str, float]] = {}  # kiosks each session opened, and when

    @app[HOOKS].on_leave
    def forget(session: Session) -> None:
        opened.pop(session, None)

    def refuse(exc: KioskRefusal) -> RequestError:
        return RequestError(exc.code, exc.reason)

    async def on_open(session: Session, msg: KioskOpen) -> None:
        inst = session.instance
        where = (
            inst.position(session.avatar_id)
            if inst is not None and session.avatar_id >= 0
            else None
        )
        try:
            panel = service.open(msg.kiosk_id, where)
        except KioskRefusal as exc:
            raise refuse(exc) from None
        panel["lang"] = msg.lang
        opened.setdefault(session, {})[msg.kiosk_id] = time.monotonic()
        session.send(KioskPanel(kiosk_id=msg.kiosk_id, panel=panel).encode())

    async def on_choose(session: Session, msg: KioskChoose) -> None:
        try:
            service.kiosk(msg.kiosk_id)  # an unknown kiosk is said first, open or not
            when = opened.get(session, {}).get(msg.kiosk_id)
            if when is None or time.monotonic() - when > OPEN_TTL:
                raise KioskRefusal(
                    "kiosk_not_open", "open the kiosk (walk up to it) before choosing"
                )
            url, qr = service.choose(msg.kiosk_id, msg.channel, msg.device)
        except KioskRefusal as exc:
            raise refuse(exc) from None
        session.send(
            KioskLink(kiosk_id=msg.kiosk_id, channel=msg.channel, url=url, qr_svg=qr).encode()
        )

    async def on_ask(session: Session, msg: HelperAsk) -> None:
        try:
            answer = service.ask(msg.helper, msg.query)
        except KioskRefusal as exc:
            raise refuse(exc) from None
        session.send(HelperAnswer(helper=msg.helper, answer=answer).encode())

    dispatch = app[DISPATCH]
    dispatch.register(MsgType.KIOSK_OPEN, on_open)
    dispatch.register(MsgType.KIOSK_CHOOSE, on_choose)
    dispatch.register(MsgType.HELPER_ASK, on_ask)

    app.router.add_get("/api/helpers/moving/share", moving_share)
    app.router.add_get(SHARE_PATH, moving_page)
    app.router.add_post("/api/helpers/{helper}", helper_http)
    app.router.add_get("/staff/kiosks", staff_page)
    app.router.add_get("/staff/kiosks.csv", staff_csv)


# -- HTTP ---------------------------------------------------------------------------------------


async def helper_http(request: web.Request) -> web.Response:
    """``POST /api/helpers/{moving|garbage}`` with a JSON query map → the helper's answer.

    A browser page of another origin is refused (403), and each client address may ask
    ``--helper-rate`` times a minute (429 with Retry-After); a refused ask is not counted.
    """
    service = request.app[KIOSKS]
    refused = _limited(request)
    if refused is not None:
        return refused
    if request.content_length is not None and request.content_length > MAX_HELPER_BODY:
        return _json(
            {"code": "too_big", "reason": f"a body of at most {MAX_HELPER_BODY} bytes"}, 413
        )
    try:
        raw = await request.content.read(MAX_HELPER_BODY + 1)
        if len(raw) > MAX_HELPER_BODY:
            return _json(
                {"code": "too_big", "reason": f"a body of at most {MAX_HELPER_BODY} bytes"}, 413
            )
        query = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        return _json({"code": "bad_json", "reason": "expected a JSON object"}, 400)
    if not isinstance(query, dict):
        return _json({"code": "bad_json", "reason": "expected a JSON object"}, 400)
    try:
        answer = service.ask(request.match_info["helper"], query)
    except KioskRefusal as exc:
        return _json({"code": exc.code, "reason": exc.reason}, 400)
    return _json({"helper": request.match_info["helper"], "answer": answer})


def _limited(request: web.Request) -> web.Response | None:
    """The helpers' origin check and per-address rate limit: a refusal, or None to go on."""
    sec = request.app.get(SECURITY)
    if sec is None:
        return None
    if not origin_allowed(request, sec.origins):
        return _json({"code": "origin", "reason": "this origin may not call the helpers"}, 403)
    wait = sec.helper_limit.take(request.remote or "")
    if wait > 0:
        per = int(sec.helper_limit.per_minute)
        resp = _json(
            {
                "code": "rate_limited",
                "reason": f"at most {per} questions a minute "
                f"from one address; ask again in {math.ceil(wait)} s",
            },
            429,
        )
        resp.headers["Retry-After"] = str(math.ceil(wait))
        return resp
    return None


async def moving_share(request: web.Request) -> web.Response:
    """``GET /api/helpers/moving/share?direction=out&who=alone&nhi=1&done=…`` → the phone's link
    to the same checklist with the same ticks, its QR code (drawn on the server with segno), the
    ticks and the checklist (the phone's page draws it from this). The link is rebuilt from the
    checked answers, never echoed. Not counted as an ask: it is the same resident going on."""
    refused = _limited(request)
    if refused is not None:
        return refused
    guide = request.app[KIOSKS].moving
    try:
        answers, done = guide.parse_share(request.query)
        query = guide.share_query(answers, done)
    except AnswerError as exc:
        return _json({"code": "helper_query", "reason": f"expected {exc}"}, 400)
    base = (request.app[CONFIG].public_url or f"{request.scheme}://{request.host}").rstrip("/")
    url = f"{base}{SHARE_PATH}?{query}"
    return _json(
        {"url": url, "qr_svg": qr_svg(url), "done": done, "checklist": guide.checklist(answers)}
    )


async def moving_page(request: web.Request) -> web.StreamResponse:
    """``GET /moving?…``: the phone's page of a shared moving checklist (ticks kept there)."""
    page = CLIENT_DIR / "kiosk" / "moving.html"
    if not page.is_file():
        return web.Response(text="emachi: the moving checklist page is not installed", status=503)
    return web.FileResponse(page, headers={"Cache-Control": "no-cache"})


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, ensure_ascii=False), status=status, content_type="application/json"
    )


def _days(request: web.Request) -> int:
    try:
        d = int(request.query.get("days", "30"))
    except ValueError:
        raise web.HTTPBadRequest(text="days: expected a whole number of days (1-3660)") from None
    if not 1 <= d <= 3660:
        raise web.HTTPBadRequest(text="days: expected a whole number of days (1-3660)")
    return d


def _kiosk_titles(service: KioskService) -> dict[str, tuple[str, str]]:
    out = {}
    for k in service.kiosks.values():
        item = service.catalog.items[k.procedure]
        out[k.id] = (k.procedure, f"{item.title.ja} / {item.title.en}")
    return out


async def _rows(service: KioskService, since: str) -> tuple[list[CountRow], str | None]:
    """The counts from ``since``, and None; or, when the records store does not answer, what was
    read last (the days from ``since``) and a notice saying so, in Japanese and English."""
    counts = service.store
    if not isinstance(counts, KioskCounts):  # a test's own store
        return (counts.rows(since) if isinstance(counts, MemoryCountStore) else []), None
    try:
        return await counts.rows(since), None
    except records.StoreAway:
        pass
    last = counts.last_read
    rows = [r for r in last[2] if r.day >= since] if last is not None else []
    when = (
        datetime.fromtimestamp(last[0], JST).strftime("%H:%M:%S JST") if last is not None else None
    )
    kind = counts.store.kind
    shown_ja = (
        f"表示は {when} 時点の数です。"
        if when
        else "まだ一度も読めていないため、数は表示できません。"
    )
    shown_en = (
        f"The figures shown are as read at {when}." if when else "No figures could be read yet."
    )
    notice = (
        f"記録の保存先（{kind}）が応答しません。{shown_ja}この間の利用は失われず、保存先が戻りしだい"
        f"保存されます（このプロセスで保存待ち {counts.waiting} 件）。 / "
        f"The records store ({kind}) is not answering. {shown_en} Nothing is lost meanwhile: "
        f"counts are saved once it is back ({counts.waiting} records of this process waiting)."
    )
    return rows, notice


async def staff_page(request: web.Request) -> web.Response:
    require_staff(request)  # a person's browser has the session cookie: links carry no token
    service = request.app[KIOSKS]
    days = _days(request)
    since = days_back(days, service.today())
    rows, away = await _rows(service, since)
    summary = summarise(rows, _kiosk_titles(service))
    html = render_html(summary, days, since, "", daily(rows, since, service.today()), away)
    return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-store"})


async def staff_csv(request: web.Request) -> web.Response:
    require_staff(request)
    service = request.app[KIOSKS]
    days = _days(request)
    since = days_back(days, service.today())
    procedures = {k: p for k, (p, _) in _kiosk_titles(service).items()}
    rows, away = await _rows(service, since)
    if away is not None:
        # a CSV is taken for a record: never a partial one that looks whole
        return web.Response(
            text=away, status=503, headers={"Retry-After": "10", "Cache-Control": "no-store"}
        )
    body = render_csv(rows, procedures)
    return web.Response(
        text=body,
        content_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="kiosk-counts-{since}.csv"',
            "Cache-Control": "no-store",
        },
    )
