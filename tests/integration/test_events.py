"""Events through a real server and real WebSocket clients: invites, host tools, attendance,
blocks (server/events/)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import aiohttp
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from server.events.service import attendance_stream
from server.events.wire import EventState, Host, Moderate
from server.keys import EVENTS, HALL, OUTBOX, STORE, VOICE
from server.protocol.codes import CLOSE_REASONS, PROTOCOL_VERSION, CloseCode
from server.protocol.messages import Error, Hello, Notice, Voice, VoiceFrame
from tests.integration.client import WAIT, Client, until
from tests.integration.conftest import STAFF_TOKEN, RunningServer

AUTH = {"Authorization": f"Bearer {STAFF_TOKEN}"}
TABLE_3 = (69.0, 3.0, 77.0, 11.0)  # zone-table-3 of the Machida world: x0, z0, x1, z1


def when(seconds: float) -> str:
    """A time ``seconds`` from now, as the API takes it."""
    return dt.datetime.fromtimestamp(time.time() + seconds, dt.UTC).isoformat()


async def api(
    srv: RunningServer, method: str, path: str, body: Any = None, status: int = 200
) -> Any:
    async with (
        aiohttp.ClientSession(headers=AUTH) as http,
        http.request(method, srv.http + path, json=body) as r,
    ):
        text = await r.text()
        assert r.status == status, (r.status, text)
        return await r.json() if r.content_type == "application/json" else text


async def new_event(srv: RunningServer, **fields: Any) -> dict[str, Any]:
    body = {
        "title": {"ja": "2027年度 内定者交流会", "en": "2027 new-hire meetup"},
        "start": when(-60),
        "end": when(3600),
        "capacity": 10,
        "agenda": [{"kind": "round", "minutes": 30, "shuffle": True}],
        **fields,
    }
    return await api(srv, "POST", "/staff/events", body, 201)


async def invite(srv: RunningServer, event: str, role: str = "guest", **fields: Any) -> str:
    body = {"role": role, "label": "2027年度 内定者 A", **fields}
    inv = await api(srv, "POST", f"/staff/events/{event}/invites", body, 201)
    assert inv["link"].endswith(f"?event={event}&invite={inv['token']}")
    return inv["token"]


async def refused(srv: RunningServer, **opts: Any) -> tuple[int, str]:
    """Say hello with ``opts``; the close code and reason the server answers with."""
    async with connect(srv.ws) as ws:
        await ws.send(Hello(version=PROTOCOL_VERSION, name="来客", opts=opts).encode())
        try:
            await ws.recv()
        except ConnectionClosed:
            pass
        else:
            raise AssertionError("welcomed, not refused")
        assert ws.close_code is not None
        return ws.close_code, ws.close_reason or ""


def event_state(c: Client) -> dict[str, Any] | None:
    states = c.messages(EventState)
    return states[-1].state if states else None


async def test_invite_flow(server: RunningServer) -> None:
    ev = await new_event(server)
    host_token = await invite(server, ev["id"], "host", label="人事課")
    guest_token = await invite(server, ev["id"])
    async with (
        Client(server.ws, "人事の田中", invite=host_token, event=ev["id"]) as host,
        Client(server.ws, "山田", invite=guest_token, event=ev["id"]) as guest,
        Client(server.ws, "ロビーの人") as resident,
    ):
        assert host.welcome and guest.welcome and resident.welcome
        # the event has its own instance; the lobby's resident is not in it
        assert guest.welcome.instance == host.welcome.instance == f"machida-city-hall!{ev['id']}"
        assert resident.welcome.instance != guest.welcome.instance
        await guest.until(lambda: host.avatar_id in guest.view)
        await resident.until(lambda: resident.avatar_id in resident.view)
        await guest.sync()
        assert set(guest.view) == {guest.avatar_id, host.avatar_id}  # nobody from the lobby

        # the guest sees the event: its agenda, the timer, the tables open, its table and tags
        def seated() -> dict[str, Any] | None:
            st = event_state(guest)
            return st if st and st["tables_open"] and len(st["roster"]) == 2 else None

        st = await guest.until(seated)
        assert st["phase"] == "running" and st["items"][0][0] == "round"
        assert 0 < st["remaining_ms"] <= 30 * 60 * 1000
        tags = {row[0]: row for row in st["roster"]}
        assert tags[guest.avatar_id][1:4] == ["山田", "guest", "2027年度 内定者 A"]
        assert tags[host.avatar_id][2:4] == ["host", "人事課"]
        table = tags[guest.avatar_id][4]
        assert table in ev["tables"]

        # hosts see attendance live, and it is in the store already (written before WELCOME)
        att = await api(server, "GET", f"/staff/events/{ev['id']}/attendance")
        assert {p["name"] for p in att["present"]} == {"人事の田中", "山田"}
        stored = await server.app[STORE].records(attendance_stream(ev["id"]))
        assert {(r.data["name"], r.data["kind"]) for r in stored} == {
            ("人事の田中", "join"),
            ("山田", "join"),
        }

        # the guest leaves: the answer comes once the leave is committed
        await guest.send(Host(action="leave", args={}))
        note = await guest.reply(Notice)
        assert note.kind == "event_left"
        stored = await server.app[STORE].records(attendance_stream(ev["id"]))
        assert ("山田", "leave") in {(r.data["name"], r.data["kind"]) for r in stored}
        csv = await api(server, "GET", f"/staff/events/{ev['id']}/attendance.csv")
        lines = csv.strip().splitlines()
        assert lines[0] == "name,label,role,joined,left"
        yamada = next(line for line in lines if line.startswith("山田,"))
        assert yamada.split(",")[1:3] == ["2027年度 内定者 A", "guest"] and yamada.split(",")[4]


async def test_each_bad_invite_is_refused_with_its_own_reason(server: RunningServer) -> None:
    ev = await new_event(server, capacity=1)
    other = await new_event(server)
    later = await new_event(server, start=when(3 * 3600), end=when(4 * 3600))
    service = server.app[EVENTS]

    revoked = await invite(server, ev["id"])
    invs = await api(server, "GET", f"/staff/events/{ev['id']}/invites")
    rid = next(i["id"] for i in invs["invites"] if i["token"] == revoked)
    await api(server, "POST", f"/staff/events/{ev['id']}/invites/{rid}/revoke")

    expired_inv, expired = service.make_invite(
        service.events[ev["id"]], "guest", "", time.time() + 0.5, False, "test"
    )
    single = await invite(server, ev["id"], single_use=True)
    not_yet = await invite(server, later["id"])
    for_other = await invite(server, other["id"])

    async with Client(server.ws, "一人目", invite=single, event=ev["id"]):
        await until(lambda: time.time() > expired_inv.expires)
        cases = {
            CloseCode.INVITE_INVALID: {"invite": "v1.bm90LWEtdG9rZW4.c2ln", "event": ev["id"]},
            CloseCode.INVITE_REVOKED: {"invite": revoked, "event": ev["id"]},
            CloseCode.INVITE_EXPIRED: {"invite": expired, "event": ev["id"]},
            CloseCode.INVITE_OTHER_EVENT: {"invite": for_other, "event": ev["id"]},
            CloseCode.EVENT_NOT_STARTED: {"invite": not_yet, "event": later["id"]},
            CloseCode.INVITE_USED: {"invite": single, "event": ev["id"]},
            # capacity 1, and 一人目 is in
            CloseCode.EVENT_FULL: {"invite": await invite(server, ev["id"]), "event": ev["id"]},
        }
        for code, opts in cases.items():
            assert await refused(server, **opts) == (code, CLOSE_REASONS[code]), code

    locked = await new_event(server)
    host = await invite(server, locked["id"], "host")
    async with Client(server.ws, "主催", invite=host, event=locked["id"]) as h:
        await h.send(Host(action="lock", args={"locked": True}))
        assert (await h.reply(Notice)).kind == "event_done"
        code = CloseCode.EVENT_LOCKED
        assert await refused(
            server, invite=await invite(server, locked["id"]), event=locked["id"]
        ) == (
            code,
            CLOSE_REASONS[code],
        )
    token = await invite(server, other["id"])
    await api(server, "POST", f"/staff/events/{other['id']}/cancel")
    code = CloseCode.EVENT_OVER
    assert await refused(server, invite=token, event=other["id"]) == (code, CLOSE_REASONS[code])


def inside(pos: tuple[int, float, float] | None, box: tuple[float, float, float, float]) -> bool:
    return pos is not None and box[0] <= pos[1] <= box[2] and box[1] <= pos[2] <= box[3]


async def test_host_actions_reach_their_target(server: RunningServer) -> None:
    ev = await new_event(server)
    async with (
        Client(server.ws, "主催者", invite=await invite(server, ev["id"], "host")) as host,
        Client(server.ws, "佐藤", invite=await invite(server, ev["id"])) as guest,
        Client(server.ws, "鈴木", invite=await invite(server, ev["id"])) as other,
    ):
        await host.until(lambda: guest.avatar_id in host.view and other.avatar_id in host.view)
        # the round has begun (its shuffle seats everyone): from now on only the host moves people
        await guest.until(lambda: (st := event_state(guest)) and st["phase"] == "running")
        # move: the guest's own snapshot shows it at table 3
        await host.send(Host(action="move", args={"avatar": guest.avatar_id, "table": "table-3"}))
        assert (await host.reply(Notice)).kind == "event_done"
        await guest.until(lambda: inside(guest.position(), TABLE_3))
        assert any(isinstance(m, Notice) and m.kind == "moved" for m in guest.others)

        # mute: the guest is told, and its voice no longer reaches anyone
        service = server.app[VOICE]
        await host.send(Host(action="mute", args={"avatar": other.avatar_id}))
        await other.until(
            lambda: any(isinstance(m, Notice) and m.kind == "muted" for m in other.others)
        )
        before = service.counters.dropped_muted
        for seq in range(1, 6):
            await other.send(Voice(seq=seq, talking=True, megaphone=False, data=b"\x01" * 40))
        await other.sync()
        assert service.counters.dropped_muted == before + 5
        await host.sync()
        assert not any(
            who == other.avatar_id for m in host.messages(VoiceFrame) for who, _, _ in m.frames
        )

        # remove: closed with REMOVED and the host's reason
        await host.send(
            Host(action="remove", args={"avatar": other.avatar_id, "reason": "迷惑行為のため"})
        )
        assert await other.closed() == (CloseCode.REMOVED, "迷惑行為のため")
        await host.until(lambda: other.avatar_id not in host.view)

        # a guest may not use the host's tools
        await guest.send(Host(action="shuffle", args={}))
        err = await guest.reply(Error)
        assert err.code == "forbidden"


async def test_block_hides_the_blocked_avatar_from_the_blocker(server: RunningServer) -> None:
    async with Client(server.ws, "ブロックする人") as a, Client(server.ws, "される人") as b:
        await a.until(lambda: b.avatar_id in a.view and a.avatar_id in b.view)
        await a.send(Moderate(action="block", target=b.avatar_id, reason=""))
        await a.until(lambda: b.avatar_id not in a.view)
        await b.until(lambda: a.avatar_id not in b.view)  # both ways
        await a.send(Moderate(action="report", target=b.avatar_id, reason="暴言"))
        assert (await a.reply(Notice, timeout=100 * WAIT)).kind in ("blocked", "reported")
        reports = await until(lambda: _reports(server))
        assert reports[0]["name"] == "される人" and reports[0]["reason"] == "暴言"
        await a.send(Moderate(action="unblock", target=b.avatar_id, reason=""))
        await a.until(lambda: b.avatar_id in a.view)


async def _reports(srv: RunningServer) -> list[dict[str, Any]]:
    return (await api(srv, "GET", "/staff/moderation/reports"))["reports"]


async def test_staff_ban_refuses_the_device_again(server: RunningServer) -> None:
    async with Client(server.ws, "荒らし", device="device-0123456789") as c:
        inst = next(i for i in server.app[HALL].instances if c.avatar_id in i.sessions)
        body = {"action": "ban", "instance": inst.id, "avatar": c.avatar_id, "minutes": 10}
        await api(server, "POST", "/staff/moderation/actions", body)
        assert (await c.closed())[0] == CloseCode.BANNED
    code = CloseCode.BANNED
    assert await refused(server, device="device-0123456789") == (code, CLOSE_REASONS[code])


async def test_attendance_is_deleted_after_the_retention_period(server: RunningServer) -> None:
    ev = await new_event(server, start=when(-3 * 3600), end=when(-2 * 3600))
    kept = await new_event(server)
    service = server.app[EVENTS]
    outbox = server.app[OUTBOX]
    for e in (ev, kept):
        outbox.append(
            attendance_stream(e["id"]),
            "v-join",
            {"visit": "v", "kind": "join", "name": "山田", "label": "", "role": "guest", "at": 1.0},
        )
    await outbox.committed()
    assert service.purge(time.time() + 90 * 86400 - 3 * 3600) == []  # within the 90 days
    assert service.purge(time.time() + 90 * 86400) == [ev["id"]]  # ended 90 days ago: gone
    await outbox.committed()
    assert await server.app[STORE].records(attendance_stream(ev["id"])) == []
    assert len(await server.app[STORE].records(attendance_stream(kept["id"]))) == 1
    att = await api(server, "GET", f"/staff/events/{ev['id']}/attendance")
    assert att["visits"] == []
