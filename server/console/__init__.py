"""The staff console's own pages: sign-in and sign-out, the session, the index, the staff log.

``setup(app)`` (after ``server.audit`` in ``server.features``) mounts:

- ``GET /staff/signin``: a plain form (ja first, en beside); ``POST /staff/signin`` (form fields
  ``name``, ``password``, ``next``): the password checked with scrypt off the event loop, at most
  :data:`SIGNIN_PER_MINUTE` tries a minute per address, then the session cookie
  (``server.staff``) and ``303`` to ``next`` (a ``/staff`` address only);
- ``POST /staff/signout`` (with the CSRF token): the session ends here at once and in every
  process within a poll of the accounts (``server.accounts``); the cookie is cleared;
- ``GET /staff/session``: ``{"name", "role", "csrf", "expires"}``, what a staff page's script
  needs to send state-changing requests (the cookie itself is HttpOnly);
- ``GET /staff``: an index of every staff page (kiosks, briefings, the log, events when mounted);
- ``GET /staff/audit``: the newest records of the staff log (``server.audit``), bilingual HTML, or
  JSON with ``Accept: application/json``; the chain is checked as the records are read;
- a middleware that hands the ``csrf`` field of a form posted to ``/staff/...`` to
  ``server.staff.staff_actor`` (which is synchronous and cannot read a body);
- the accounts poller: this process's :class:`server.accounts.AccountBook`, refreshed every
  :data:`server.accounts.POLL_SECONDS`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta, timezone
from html import escape
from typing import Any

from aiohttp import web

from server import accounts
from server.audit import audit
from server.keys import ACCOUNTS, AUDIT, BRIEFINGS, CONFIG, OUTBOX, STORE
from server.session import address_key
from server.staff import (
    COOKIE,
    CSRF_FIELD,
    CSRF_FORM_KEY,
    CSRF_HEADER,
    Actor,
    csrf_token,
    new_session,
    read_session,
    refuse_cross_site,
    session_cookie,
    staff_actor,
)
from server.staff_roles import may, roles_for
from server.store import StoreAway
from server.tasks import stop_task
from server.web_security import RateLimiter

__all__ = ["setup", "SIGNIN_PER_MINUTE"]

log = logging.getLogger("emachi.console")

SIGNIN_PER_MINUTE = 10
JST = timezone(timedelta(hours=9), "JST")
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
_LIMITER: web.AppKey[RateLimiter] = web.AppKey("console_signin_limit")
_TAIL_LOCK: web.AppKey[asyncio.Lock] = web.AppKey("console_tail_lock")


def setup(app: web.Application) -> None:
    """Mount the console pages, the form CSRF middleware and the accounts poller."""
    app[ACCOUNTS] = accounts.AccountBook()
    app[_LIMITER] = RateLimiter(float(SIGNIN_PER_MINUTE))
    app[_TAIL_LOCK] = asyncio.Lock()
    app.middlewares.append(_csrf_form)
    r = app.router
    r.add_get("/staff", index)
    r.add_get("/staff/", index)
    r.add_get("/staff/signin", signin_page)
    r.add_post("/staff/signin", signin)
    r.add_post("/staff/signout", signout)
    r.add_get("/staff/session", session_info)
    r.add_get("/staff/audit", audit_page)
    app.cleanup_ctx.append(_poll_accounts)


@web.middleware
async def _csrf_form(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if (
        request.method not in _SAFE
        and request.path.startswith("/staff/")
        and CSRF_HEADER not in request.headers
        and request.content_type in _FORMS
    ):
        form = await _form(request)  # aiohttp keeps the body: the handler can read it again
        value = form.get(CSRF_FIELD)
        if isinstance(value, str):
            request[CSRF_FORM_KEY] = value
    return await handler(request)


async def _form(request: web.Request) -> Any:
    """The request's form; a body that does not parse as its Content-Type says (a multipart
    type without a boundary, say) is the peer's fault: 400 with what was wrong, never a 500."""
    try:
        return await request.post()
    except ValueError as exc:
        raise web.HTTPBadRequest(
            text=f"expected a form body matching its Content-Type: {exc}"
        ) from None


async def _poll_accounts(app: web.Application) -> AsyncIterator[None]:
    book, store = app[ACCOUNTS], app[STORE]

    async def poll() -> None:
        while True:
            try:
                await book.refresh(store)
            except StoreAway:
                pass  # the sessions already known stay as they are until the Store is back
            except Exception:
                log.exception("reading the staff accounts failed")
            await asyncio.sleep(accounts.POLL_SECONDS)

    task = asyncio.get_running_loop().create_task(poll(), name="staff accounts")
    yield
    await stop_task(task)


# -- pages -------------------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,"Hiragino Sans","Noto Sans JP",sans-serif;margin:2rem auto;max-width:60rem;
padding:0 1rem;color:#1d2a33;line-height:1.6}
h1{font-size:1.5rem}h1 small,.en{color:#5b6b75;font-weight:normal}
label{display:block;margin:.8rem 0 .2rem}input{font-size:1rem;padding:.5rem;width:20rem;max-width:100%}
button{font-size:1rem;padding:.5rem 1.2rem;margin-top:1rem;cursor:pointer}
.error{color:#a11;font-weight:bold}.ok{color:#176a2a}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #d8dee2;padding:.35rem .5rem;
text-align:left;vertical-align:top;font-size:.92rem}th{background:#f3f5f7}
ul.links li{margin:.4rem 0}.muted{color:#5b6b75}
"""


def _page(title_ja: str, title_en: str, body: str) -> web.Response:
    html = (
        '<!doctype html><html lang="ja"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title_ja)} / {escape(title_en)} · emachi</title><style>{_STYLE}</style>"
        f'</head><body><h1>{escape(title_ja)} <small lang="en">/ {escape(title_en)}</small></h1>'
        f"{body}</body></html>"
    )
    return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-store"})


def _safe_next(value: object) -> str:
    """Where a sign-in may send the browser: a ``/staff`` address of this server, nothing else."""
    if (
        isinstance(value, str)
        and value.startswith("/staff")
        and "//" not in value
        and "\\" not in value
    ):
        return value
    return "/staff"


def _signin_form(next_: str, error: str = "", status: int = 200) -> web.Response:
    err = f'<p class="error" role="alert">{error}</p>' if error else ""
    body = (
        f"{err}"
        '<form method="post" action="/staff/signin">'
        f'<input type="hidden" name="next" value="{escape(next_)}">'
        '<label for="name">名前 <span class="en">/ Name</span></label>'
        '<input id="name" name="name" autocomplete="username" required autofocus>'
        '<label for="password">パスワード <span class="en">/ Password</span></label>'
        '<input id="password" name="password" type="password" autocomplete="current-password" '
        "required>"
        '<div><button type="submit">サインイン <span lang="en">/ Sign in</span></button></div>'
        "</form>"
        '<p class="muted">アカウントは管理者が <code>emachi staff add</code> で作ります。 / '
        '<span lang="en">An administrator creates accounts with <code>emachi staff add</code>.</span></p>'
    )
    resp = _page("職員サインイン", "Staff sign-in", body)
    resp.set_status(status)
    return resp


async def signin_page(request: web.Request) -> web.Response:
    return _signin_form(_safe_next(request.query.get("next")))


WRONG = "名前かパスワードが違います。 / Name or password is wrong."


async def signin(request: web.Request) -> web.StreamResponse:
    """Check an account's password and start its session."""
    refuse_cross_site(request)
    wait = request.app[_LIMITER].take(address_key(request.remote))
    if wait:
        resp = _signin_form(
            "/staff",
            f"サインインの試行が多すぎます。{int(wait) + 1} 秒後にもう一度どうぞ。 / "
            f"Too many sign-in attempts; try again in {int(wait) + 1} s.",
            429,
        )
        resp.headers["Retry-After"] = str(int(wait) + 1)
        return resp
    form = await _form(request)
    name, password = form.get("name"), form.get("password")
    next_ = _safe_next(form.get("next"))
    if not isinstance(name, str) or not isinstance(password, str):
        return _signin_form(next_, WRONG, 400)
    name = name.strip()
    try:
        account = (
            await accounts.load_account(request.app[STORE], name) if _good_name(name) else None
        )
    except StoreAway:
        return _signin_form(
            next_,
            "記録の保存先が応答しないため、いまはサインインできません。 / "
            "The records store is not answering; sign-in is not possible right now.",
            503,
        )
    encoded = account.hash if account is not None else accounts.DUMMY_HASH
    loop = asyncio.get_running_loop()
    ok = await loop.run_in_executor(None, accounts.verify_password, password[:1024], encoded)
    if not ok or account is None:
        log.info("staff sign-in refused", extra={"account": name[:40]})
        return _signin_form(next_, WRONG, 401)
    request.app[ACCOUNTS].learn(account)
    token = request.app[CONFIG].staff_token
    resp = web.HTTPSeeOther(location=next_)
    session_cookie(request, resp, new_session(token, account.name, account.generation))
    audit(request.app, account.name, "staff.signin", account.name, role=account.role)
    raise resp


def _good_name(name: str) -> bool:
    try:
        accounts.check_name(name)
    except accounts.AccountError:
        return False
    return True


async def signout(request: web.Request) -> web.StreamResponse:
    """End this browser's session everywhere and clear its cookie."""
    actor = staff_actor(request)
    token = request.app[CONFIG].staff_token
    s = read_session(token, request.cookies.get(COOKIE, ""))
    if s is not None:
        line = request.app[ACCOUNTS].revoke(s.nonce, float(s.expires))
        request.app[OUTBOX].append(accounts.STREAM, secrets.token_hex(8), line)
    audit(request.app, actor.name, "staff.signout", actor.name)
    resp = web.HTTPSeeOther(location="/staff/signin")
    session_cookie(request, resp, "")
    raise resp


async def session_info(request: web.Request) -> web.Response:
    """Who this session is, and the CSRF token its page sends with every change."""
    actor = staff_actor(request)
    token = request.app[CONFIG].staff_token
    s = read_session(token, request.cookies.get(COOKIE, ""))
    body: dict[str, Any] = {"name": actor.name, "role": actor.role, "csrf": None, "expires": None}
    if s is not None and "Authorization" not in request.headers:
        body["csrf"] = csrf_token(token, s.value)
        body["expires"] = s.expires
    return web.json_response(body, headers={"Cache-Control": "no-store"})


def _csrf_field(request: web.Request) -> str:
    token = request.app[CONFIG].staff_token
    s = read_session(token, request.cookies.get(COOKIE, ""))
    value = csrf_token(token, s.value) if s is not None else ""
    return f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(value)}">'


def _has_route(app: web.Application, path: str) -> bool:
    return any(r.canonical == path for r in app.router.resources())


def _whoami(request: web.Request, actor: Actor) -> str:
    signout_form = ""
    if request.cookies.get(COOKIE):
        signout_form = (
            '<form method="post" action="/staff/signout" style="display:inline">'
            f'{_csrf_field(request)}<button type="submit" style="margin:0 0 0 1rem">'
            'サインアウト <span lang="en">/ Sign out</span></button></form>'
        )
    return (
        f"<p>サインイン中: <b>{escape(actor.name)}</b>（{escape(actor.role)}） "
        f'<span class="en">/ Signed in as {escape(actor.name)} ({escape(actor.role)})</span>'
        f"{signout_form}</p>"
    )


async def index(request: web.Request) -> web.Response:
    """Every staff page, for this account's role."""
    actor = staff_actor(request, roles_for("console"))
    app = request.app
    items: list[str] = []

    def link(href: str, ja: str, en: str) -> None:
        items.append(
            f'<li><a href="{escape(href)}">{escape(ja)}</a> <span class="en">/ {escape(en)}</span></li>'
        )

    if may(actor.role, "kiosks") and _has_route(app, "/staff/kiosks"):
        link("/staff/kiosks", "キオスクの利用状況", "Kiosk use")
    if may(actor.role, "counters") and _has_route(app, "/staff/counters/"):
        link(
            "/staff/counters/",
            "窓口（当番・予約・数字）",
            "Service counters: duty, bookings, figures",
        )
    if may(actor.role, "events") and _has_route(app, "/staff/events/console"):
        link("/staff/events/console", "イベント", "Events")
    if may(actor.role, "moderation") and _has_route(app, "/staff/moderation/reports"):
        link("/staff/moderation/reports", "利用者からの報告", "Reports from residents")
    if may(actor.role, "briefings") and BRIEFINGS in app:
        service = app[BRIEFINGS]
        for b in service.briefings.values():
            link(
                f"/staff/briefings/{b.id}/console",
                f"説明会の操作: {b.doc.get('title', b.id)}",
                f"Briefing console: {b.id}",
            )
    if may(actor.role, "briefings") and _has_route(app, "/staff/minutes/"):
        link("/staff/minutes/", "議事録（ファイル）", "Minutes (files)")
    if may(actor.role, "audit"):
        link("/staff/audit", "職員操作の記録", "Staff log")
    body = _whoami(request, actor) + f'<ul class="links">{"".join(items)}</ul>'
    if not items:
        body += '<p class="muted">この役割で開けるページはまだありません。 / No pages for this role yet.</p>'
    return _page("職員コンソール", "Staff console", body)


def _when(ms: object) -> str:
    if not isinstance(ms, int):
        return "?"
    return datetime.fromtimestamp(ms / 1000, JST).strftime("%Y-%m-%d %H:%M:%S")


async def audit_page(request: web.Request) -> web.Response:
    """The newest records of the staff log, newest first (HTML, or JSON on request)."""
    actor = staff_actor(request, roles_for("audit"))
    try:
        limit = max(1, min(int(request.query.get("limit", "100")), 1000))
    except ValueError:
        raise web.HTTPBadRequest(text="limit: expected a whole number 1-1000") from None
    tail = request.app[AUDIT].tail
    away = None
    async with request.app[_TAIL_LOCK]:
        try:
            await tail.read(request.app[STORE])
        except StoreAway as e:
            away = str(e)
    records = list(tail.records)[-limit:][::-1]
    problem = tail.verifier.problem
    if (
        "application/json" in request.headers.get("Accept", "")
        or request.query.get("format") == "json"
    ):
        return web.json_response(
            {
                "records": records,
                "count": tail.seen,
                "chain": {"ok": problem is None, "problem": str(problem) if problem else None},
                "store_away": away,
            },
            headers={"Cache-Control": "no-store"},
        )
    if problem is None:
        chain = (
            f'<p class="ok">記録 {tail.seen} 件、鎖はつながっています。 / '
            f"{tail.seen} records; the chain is intact.</p>"
        )
    else:
        chain = (
            '<p class="error" role="alert">記録が書き換えられています / The log was altered: '
            f"{escape(str(problem))}</p>"
        )
    if away:
        chain += (
            '<p class="error">記録の保存先が応答しません。表示は前回読めた分です。 / '
            "The records store is not answering; shown is what was read before.</p>"
        )
    rows = "".join(
        "<tr>"
        f"<td>{r.get('position')}</td><td>{escape(_when(r.get('at')))}</td>"
        f"<td>{escape(str(r.get('actor', '')))}</td><td>{escape(str(r.get('action', '')))}</td>"
        f"<td>{escape(str(r.get('target', '')))}</td>"
        f"<td>{escape(', '.join(f'{k}={v}' for k, v in (r.get('data') or {}).items()))}</td>"
        "</tr>"
        for r in records
    )
    body = (
        _whoami(request, actor)
        + chain
        + '<p><a href="/staff">← 職員コンソール / Staff console</a></p>'
        + "<table><thead><tr><th>#</th><th>時刻 <span class=en>/ Time</span> (JST)</th>"
        "<th>担当 <span class=en>/ Account</span></th><th>操作 <span class=en>/ Action</span></th>"
        "<th>対象 <span class=en>/ Target</span></th><th>内容 <span class=en>/ Details</span></th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )
    return _page("職員操作の記録", "Staff log", body)
