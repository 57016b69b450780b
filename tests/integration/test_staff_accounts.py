"""Staff accounts on a real server: sign-in sets the cookie with its flags, a change needs the
session's CSRF token and refuses other sites, roles are enforced, a briefing started by an account
is in the staff log under its name, and the ``emachi staff``/``emachi audit`` commands work on the
same records (as subprocesses)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from server import accounts
from server.config import ROOT
from server.keys import STORE
from server.store import RECORDS_FILE

from .client import WAIT, until
from .conftest import STAFF_TOKEN, RunningServer, StartServer
from .test_briefing import BID, _start
from .test_briefing import mounted as mounted  # noqa: F401 - fixtures used by name
from .test_briefing import rendered as rendered  # noqa: F401

PASSWORD = "correct horse battery"
EVIL = "http://evil.example"
EMACHI = [sys.executable, "-m", "server.cli"]


async def add_account(srv: RunningServer, name: str, role: str) -> None:
    """What ``emachi staff add`` writes, applied to the running server's Store."""
    account = accounts.Account(name, role, accounts.hash_password(PASSWORD), 0.0)
    await srv.app[STORE].apply(accounts.change_batch("add", name, account))


def jar() -> aiohttp.CookieJar:
    return aiohttp.CookieJar(unsafe=True)  # the server is on 127.0.0.1


async def sign_in(
    http: aiohttp.ClientSession, srv: RunningServer, name: str, password: str = PASSWORD
) -> aiohttp.ClientResponse:
    return await http.post(
        f"{srv.http}/staff/signin",
        data={"name": name, "password": password, "next": "/staff/audit"},
        allow_redirects=False,
    )


async def csrf(http: aiohttp.ClientSession, srv: RunningServer) -> str:
    async with http.get(f"{srv.http}/staff/session") as r:
        assert r.status == 200
        body = await r.json()
    assert isinstance(body["csrf"], str) and len(body["csrf"]) == 32
    return str(body["csrf"])


@pytest.fixture
async def bserver(
    mounted: None,  # noqa: F811
    rendered: Path,  # noqa: F811
    start_server: StartServer,
    tmp_path: Path,
) -> RunningServer:
    return await _start(start_server, rendered, tmp_path)


async def test_sign_in_sets_a_strict_httponly_cookie(server: RunningServer) -> None:
    await add_account(server, "yuki", "staff")
    async with aiohttp.ClientSession(cookie_jar=jar()) as http:
        r = await sign_in(http, server, "yuki", "wrong password!")
        assert r.status == 401 and "Set-Cookie" not in r.headers
        assert "名前かパスワードが違います" in await r.text()
        r = await sign_in(http, server, "nobody")
        assert r.status == 401 and "Set-Cookie" not in r.headers
        r = await sign_in(http, server, "yuki")
        assert r.status == 303 and r.headers["Location"] == "/staff/audit"
        c = r.cookies["emachi_staff"]
        assert c["httponly"] and c["samesite"] == "Strict" and c["path"] == "/staff"
        assert not c["secure"], "plain http: a Secure cookie would never come back"
        assert PASSWORD not in c.value and c.value.startswith("yuki~")
        r = await http.get(f"{server.http}/staff/session")
        assert (await r.json())["name"] == "yuki" and (await r.json())["role"] == "staff"
        r = await http.get(f"{server.http}/staff")
        index = await r.text()
        assert r.status == 200 and "yuki" in index and "/staff/audit" in index
        # the index links every staff page this role may open
        for page in (
            "/staff/kiosks",
            "/staff/counters/",
            "/staff/minutes/",
            "/staff/events/console",
            "/staff/moderation/reports",
        ):
            assert f'href="{page}"' in index, page


async def test_behind_https_the_cookie_is_secure(start_server: StartServer) -> None:
    srv = await start_server(public_url="https://hall.example.jp")
    await add_account(srv, "yuki", "staff")
    async with aiohttp.ClientSession(cookie_jar=jar()) as http:
        r = await sign_in(http, srv, "yuki")
        assert r.status == 303 and r.cookies["emachi_staff"]["secure"]


async def test_a_page_without_a_session_sends_the_browser_to_sign_in(
    server: RunningServer,
) -> None:
    async with aiohttp.ClientSession() as http:
        r = await http.get(
            f"{server.http}/staff/audit", headers={"Accept": "text/html"}, allow_redirects=False
        )
        where = URL(r.headers["Location"])
        assert r.status == 303 and where.path == "/staff/signin"
        assert where.query["next"] == "/staff/audit", "and back to the page after"
        r = await http.get(f"{server.http}/staff/signin?next=/staff/audit")
        assert r.status == 200 and "サインイン" in await r.text() and "Sign in" in await r.text()
        r = await http.get(f"{server.http}/staff/audit")  # a script: told, not redirected
        assert r.status == 401 and "/staff/signin" in await r.text()


async def test_a_change_needs_the_csrf_token_and_comes_from_this_site(
    bserver: RunningServer,
) -> None:
    await add_account(bserver, "yuki", "staff")
    start = f"{bserver.http}/staff/briefings/{BID}/start"
    own = {"Origin": bserver.http, "Sec-Fetch-Site": "same-origin"}
    async with aiohttp.ClientSession(cookie_jar=jar()) as http:
        assert (await sign_in(http, bserver, "yuki")).status == 303
        token = await csrf(http, bserver)
        r = await http.post(start, headers=own)
        assert r.status == 403 and "CSRF token missing or wrong" in await r.text()
        r = await http.post(start, headers={**own, "X-CSRF-Token": "0" * 32})
        assert r.status == 403
        # another site's page, even one that somehow had the token
        r = await http.post(start, headers={"Origin": EVIL, "X-CSRF-Token": token})
        assert r.status == 403 and "cross-site" in await r.text()
        r = await http.post(start, headers={"Sec-Fetch-Site": "cross-site", "X-CSRF-Token": token})
        assert r.status == 403
        state = await http.get(f"{bserver.http}/staff/briefings/{BID}")
        assert (await state.json())["state"] == "scheduled", "nothing refused got through"
        r = await http.post(start, headers={**own, "X-CSRF-Token": token})
        assert r.status == 200 and (await r.json())["state"] == "live"
        # a form post carries it as a field: signing out
        r = await http.post(f"{bserver.http}/staff/signout", data={}, allow_redirects=False)
        assert r.status == 403
        r = await http.post(
            f"{bserver.http}/staff/signout", data={"csrf": token}, allow_redirects=False
        )
        assert r.status == 303 and r.headers["Location"] == "/staff/signin"
        r = await http.get(f"{bserver.http}/staff/briefings/{BID}")
        assert r.status == 401


async def test_a_signed_out_session_is_refused_even_if_its_cookie_is_kept(
    server: RunningServer,
) -> None:
    await add_account(server, "yuki", "staff")
    async with aiohttp.ClientSession(cookie_jar=jar()) as http:
        await sign_in(http, server, "yuki")
        kept = http.cookie_jar.filter_cookies(URL(server.http + "/staff"))["emachi_staff"].value
        token = await csrf(http, server)
        await http.post(f"{server.http}/staff/signout", data={"csrf": token})
    async with aiohttp.ClientSession() as http:
        r = await http.get(
            f"{server.http}/staff/session", headers={"Cookie": f"emachi_staff={kept}"}
        )
        assert r.status == 401 and "signed out" in await r.text()


async def test_a_briefing_started_by_yuki_is_in_the_log_under_her_name(
    bserver: RunningServer,
) -> None:
    await add_account(bserver, "yuki", "staff")
    await add_account(bserver, "hana", "host")
    own = {"Origin": bserver.http, "Sec-Fetch-Site": "same-origin"}
    async with aiohttp.ClientSession(cookie_jar=jar()) as http:
        await sign_in(http, bserver, "hana")
        r = await http.post(
            f"{bserver.http}/staff/briefings/{BID}/start",
            headers={**own, "X-CSRF-Token": await csrf(http, bserver)},
        )
        assert r.status == 403 and "'hana' (host)" in await r.text(), "a host runs events only"
        r = await http.get(f"{bserver.http}/staff/audit")
        assert r.status == 403
    async with aiohttp.ClientSession(cookie_jar=jar()) as http:
        await sign_in(http, bserver, "yuki")
        headers = {**own, "X-CSRF-Token": await csrf(http, bserver)}
        r = await http.post(f"{bserver.http}/staff/briefings/{BID}/start", headers=headers)
        assert r.status == 200
        r = await http.post(
            f"{bserver.http}/staff/briefings/{BID}/seek", json={"segment": 1}, headers=headers
        )
        assert r.status == 200

        async def logged() -> list[dict[str, Any]]:
            async with http.get(
                f"{bserver.http}/staff/audit", headers={"Accept": "application/json"}
            ) as r:
                body = await r.json()
            assert body["chain"]["ok"], body["chain"]
            return [x for x in body["records"] if x["action"].startswith("briefing.")]

        async def both() -> bool:
            return len(await logged()) >= 2

        await until(both, 100 * WAIT, what="two briefing records in /staff/audit")
        records = await logged()
        assert [(x["actor"], x["action"], x["target"]) for x in records] == [
            ("yuki", "briefing.seek", BID),
            ("yuki", "briefing.start", BID),
        ]
        assert records[0]["data"] == {"segment": 1}
        page = await (await http.get(f"{bserver.http}/staff/audit")).text()
        assert "briefing.start" in page and "yuki" in page and "鎖はつながっています" in page
    # the shared token still works for scripts, and acts as "token"
    async with aiohttp.ClientSession() as http:
        r = await http.post(
            f"{bserver.http}/staff/briefings/{BID}/pause",
            headers={"Authorization": f"Bearer {STAFF_TOKEN}"},
        )
        assert r.status == 200

        async def newest() -> tuple[str, str]:
            async with http.get(
                f"{bserver.http}/staff/audit?format=json",
                headers={"Authorization": f"Bearer {STAFF_TOKEN}"},
            ) as r:
                top = (await r.json())["records"][0]
            return top["actor"], top["action"]

        async def paused() -> bool:
            return await newest() == ("token", "briefing.pause")

        await until(paused, 100 * WAIT, what="the pause, by the shared token, in the log")


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EMACHI, *args], input=stdin, capture_output=True, text=True, timeout=60, cwd=ROOT
    )


async def test_emachi_staff_add_then_sign_in(start_server: StartServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    p = run(
        "staff",
        "add",
        "yuki",
        "--role",
        "admin",
        "--password-stdin",
        "--data-dir",
        str(data),
        stdin=PASSWORD + "\n",
    )
    assert p.returncode == 0, p.stderr
    assert "added yuki (admin)" in p.stdout
    p = run(
        "staff",
        "add",
        "yuki",
        "--role",
        "staff",
        "--password-stdin",
        "--data-dir",
        str(data),
        stdin=PASSWORD + "\n",
    )
    assert p.returncode == 1 and "exists" in p.stderr
    p = run("staff", "list", "--data-dir", str(data))
    assert p.returncode == 0 and "yuki" in p.stdout and "admin" in p.stdout
    srv = await start_server(data_dir=data)
    async with aiohttp.ClientSession(cookie_jar=jar()) as http:
        assert (await sign_in(http, srv, "yuki")).status == 303
        assert (await (await http.get(f"{srv.http}/staff/session")).json())["role"] == "admin"
        token = await csrf(http, srv)
        await http.post(f"{srv.http}/staff/signout", data={"csrf": token})
    await srv.stop()

    p = run("audit", "verify", "--data-dir", str(data))
    assert p.returncode == 0, p.stderr
    assert "3 records, the chain is intact" in p.stdout  # account.add, staff.signin, staff.signout
    # someone edits the SQLite file: record 2 (the sign-in) now says another account signed in
    db = sqlite3.connect(data / RECORDS_FILE)
    with db:
        ((rowid, text),) = db.execute(
            "SELECT seq, data FROM store_records WHERE stream = 'audit' ORDER BY seq LIMIT 1 OFFSET 1"
        ).fetchall()
        db.execute(
            "UPDATE store_records SET data = ? WHERE seq = ?",
            (text.replace('"yuki"', '"hana"'), rowid),
        )
    db.close()
    p = run("audit", "verify", "--data-dir", str(data))
    assert p.returncode == 1
    assert "record 2 " in p.stderr and "staff.signin" in p.stderr and "changed" in p.stderr
