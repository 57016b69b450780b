"""An event in real Chromium: a host and two guests come in by their invite links; the agenda's
round shuffles the guests to tables, the host moves one to another table and removes the other,
and each guest's own screen shows it (the event card, the text alternative, the banner). In the
public hall, a resident who blocks another stops seeing them (server/events/, clients/web/events/).
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.request
from typing import Any

from .conftest import WAIT, EmachiServer, join, wait_for

TITLE = "2027年度 内定者交流会"


def _when(seconds: float) -> str:
    return dt.datetime.fromtimestamp(time.time() + seconds, dt.UTC).isoformat()


def _api(emachi: EmachiServer, path: str, body: dict[str, Any]) -> Any:
    """POST to the staff API with the staff token (Bearer), as a script would."""
    req = urllib.request.Request(
        emachi.url + path,
        data=json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {emachi.staff_token}",
            "Content-Type": "application/json",
        },
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=40 * WAIT) as r:
        assert r.status == 201, r.status
        return json.loads(r.read())


def _invite_url(emachi: EmachiServer, event: str, role: str, label: str) -> str:
    inv = _api(emachi, f"/staff/events/{event}/invites", {"role": role, "label": label})
    link = str(inv["link"])
    return emachi.url + link[link.index("/?") :]  # the link as handed out, on this server


def _my_table(page: Any) -> str:
    return str(page.locator(".event-card .event-mytable").inner_text())


def _where_i_stand(page: Any) -> str | None:
    """The id of the smallest zone holding the own avatar as drawn (a table's zone at a table)."""
    return page.evaluate(
        """() => { const me = window.emachi.self(); if (!me) return null;
        const z = window.emachi.app.world.zoneAt(me.floor, me.x, me.z); return z ? z.id : null; }"""
    )


def _table_names(host: Any) -> dict[str, str]:
    """The event's tables as the host's card names them (id -> Japanese name)."""
    rows = host.evaluate("window.emachiEvent.state.tables")
    return {r[0]: r[1] for r in rows}


def _seated_at(page: Any, names: dict[str, str]) -> str:
    """Wait until the guest's card names a table and the guest stands in that table's zone, with
    the text alternative saying so; returns the table's id."""

    def table() -> str | None:
        text = _my_table(page)
        for tid, name in names.items():
            if text.endswith(name) and _where_i_stand(page) == f"zone-{tid}":
                live = page.locator("#nearby-live").inner_text()
                return tid if name in live else None
        return None

    deadline = time.monotonic() + 80 * WAIT
    while (tid := table()) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"not seated: {_my_table(page)!r} at {_where_i_stand(page)}")
        page.wait_for_timeout(WAIT * 1000 / 2)
    return tid


def test_host_moves_shuffles_and_removes_guests(emachi: EmachiServer, open_page: Any) -> None:
    ev = _api(
        emachi,
        "/staff/events",
        {
            "title": {"ja": TITLE, "en": "2027 new-hire meetup"},
            "start": _when(-60),
            "end": _when(3600),
            "capacity": 10,
            "agenda": [
                {"kind": "welcome", "minutes": 30},
                {"kind": "round", "minutes": 30, "shuffle": True},
            ],
        },
    )
    host = open_page(_invite_url(emachi, ev["id"], "host", "人事課"))
    join(host, "人事の田中")
    guests = {}
    for name in ("山田", "佐藤"):
        page = open_page(_invite_url(emachi, ev["id"], "guest", "2027年度 内定者 A"))
        join(page, name)
        guests[name] = page
    yamada, sato = guests["山田"], guests["佐藤"]
    ids = {n: p.evaluate("window.emachi.state().avatarId") for n, p in guests.items()}

    # everyone sees the event card; during the welcome talk no guest has a table yet
    wait_for(host, "document.querySelectorAll('.event-people li').length === 3")
    for page in guests.values():
        wait_for(page, "document.querySelectorAll('.event-people li').length === 3")
        assert TITLE in page.locator(".event-card h2").inner_text()
        assert _my_table(page) == "あなたのテーブル: なし"
        people = page.locator(".event-people").inner_text()
        assert "人事の田中 — 主催 · 人事課" in people
        assert "山田 — ゲスト · 2027年度 内定者 A" in people
    names = _table_names(host)
    assert len(names) >= 2, names

    # the host moves the agenda on: the round's shuffle seats every guest at a table
    host.locator(".event-tools button", has_text="次へ").click()
    seated = {n: _seated_at(p, names) for n, p in guests.items()}
    assert "テーブルトーク" in yamada.locator(".event-timer").inner_text()

    # the host moves 山田 to another table with the select beside their name
    target = next(t for t in names if t != seated["山田"])
    host.locator(f".event-people li[data-avatar='{ids['山田']}'] select").select_option(target)
    wait_for(
        yamada,
        "(t) => document.querySelector('.event-mytable').textContent.endsWith(t)",
        arg=names[target],
    )
    assert _seated_at(yamada, {target: names[target]}) == target
    assert f"テーブルを移動しました: {names[target]}" in yamada.locator(".event-toast").inner_text()

    # the host removes 佐藤 with a reason: 佐藤's page says so, in Japanese, with the reason
    host.once("dialog", lambda d: d.accept("迷惑行為のため"))
    host.locator(
        f".event-people li[data-avatar='{ids['佐藤']}'] button", has_text="退出させる"
    ).click()
    wait_for(sato, "!document.querySelector('#banner').hidden")
    banner = sato.locator("#banner-text").inner_text()
    assert "主催者によって退出しました。" in banner and "迷惑行為のため" in banner, banner
    assert sato.evaluate("window.emachi.state().state") == "closed"
    wait_for(host, "document.querySelectorAll('.event-people li').length === 2")
    assert "佐藤" not in host.locator(".event-people").inner_text()
    assert "佐藤" not in yamada.locator(".event-people").inner_text()


def _seen(page: Any, avatar_id: int) -> dict[str, Any] | None:
    return next((o for o in page.evaluate("window.emachi.others()") if o["id"] == avatar_id), None)


def test_a_blocked_resident_disappears_for_the_blocker(open_page: Any) -> None:
    other = open_page()
    join(other, "ブロックされる人")
    page = open_page()
    join(page, "ブロックする人")
    other_id = other.evaluate("window.emachi.state().avatarId")
    wait_for(page, "(id) => window.emachi.others().some((o) => o.id === id)", arg=other_id)
    wait_for(
        page, "document.querySelector('#nearby-live').textContent.includes('ブロックされる人')"
    )

    # turn until the other person is in view, click on them, and block them from their panel
    spot = None
    for _ in range(16):
        seen = _seen(page, other_id)
        assert seen is not None
        spot = page.evaluate(
            "([x, z]) => window.emachi.screenOf(x, 0.8, z)", [seen["x"], seen["z"]]
        )
        if spot and 0 < spot["x"] < 640 and 60 < spot["y"] < 480:
            break
        page.keyboard.down("KeyQ")
        page.wait_for_timeout(WAIT * 1000)
        page.keyboard.up("KeyQ")
    assert spot, "the other person never came into view"
    page.mouse.click(spot["x"], spot["y"])
    wait_for(page, "document.querySelector('#panels .panel:not([hidden])') !== null")
    assert "ブロックされる人" in page.locator("#panels .panel:not([hidden]) h2").inner_text()
    page.locator("#panels .panel:not([hidden]) button", has_text="ブロック").first.click()

    # gone from the blocker's view and from the text alternative; and the blocker from theirs
    wait_for(page, "(id) => !window.emachi.others().some((o) => o.id === id)", arg=other_id)
    wait_for(
        page, "!document.querySelector('#nearby-live').textContent.includes('ブロックされる人')"
    )
    mine = page.evaluate("window.emachi.state().avatarId")
    wait_for(other, "(id) => !window.emachi.others().some((o) => o.id === id)", arg=mine)
