"""Service counters on a real server with real WebSocket clients: two residents and one staff
member, the queue's order, the call, the booth, what the server forwards (voice and chat only
between the two), a ticket across a reconnect, and bad inputs refused and counted while another
client's snapshots carry on."""

from __future__ import annotations

import math
import time
from typing import Any

import aiohttp
import msgpack
from aiohttp import web

from server.cluster.bus import LocalBus
from server.cluster.chat import ChatRelay, channel_of
from server.counters.wire import CounterAction, CounterState
from server.keys import BUS, BUS_OUTBOX, CHAT_RELAY, CONFIG, COUNTERS, HALL, HOOKS
from server.protocol.messages import Chat, ChatMsg, Error, Notice
from tests.integration.client import Client
from tests.integration.conftest import STAFF_TOKEN, RunningServer, StartServer
from tests.integration.test_voice import OUT_OF_BOOTH, frames_from, place, talking
from tests.tools import WAIT, until

SHIMIN = "counter-shimin"  # world.toml: x 8, z 1.5, booths zone-booth-1 and -2


def state(c: Client) -> dict[str, Any]:
    """The newest COUNTER_STATE the client got ({} before the first)."""
    got = c.messages(CounterState)
    return got[-1].state if got else {}


def ticket(c: Client) -> dict[str, Any] | None:
    return state(c).get("ticket")


def counter(c: Client, cid: str = SHIMIN) -> dict[str, Any]:
    return next((x for x in state(c).get("counters", []) if x["id"] == cid), {})


async def act(c: Client, action: str, **args: Any) -> None:
    await c.send(CounterAction(action=action, args=args))


async def refused(c: Client, action: str, expect: str, **args: Any) -> Error:
    """Send ``action`` and take the ERROR it gets, whose code must be ``expect``."""
    await act(c, action, **args)
    err = await c.reply(Error)
    assert err.code == expect, err
    assert err.reason
    return err


def where(srv: RunningServer, c: Client) -> tuple[str, float, float]:
    inst = srv.app[HALL].instances[0]
    return inst.position(c.avatar_id)


def in_zone(srv: RunningServer, c: Client, zone_id: str) -> bool:
    zone = srv.app[HALL].world.zone(zone_id)
    assert zone is not None
    _, x, z = where(srv, c)
    return zone.contains(x, z)


async def test_order_call_booth_and_nothing_leaks(start_server: StartServer) -> None:
    srv = await start_server(counters_always_open=True)
    async with (
        Client(srv.ws, "職員A", staff=STAFF_TOKEN) as staff,
        Client(srv.ws, "一番さん") as r1,
        Client(srv.ws, "二番さん") as r2,
        Client(srv.ws, "通りがかり") as outsider,
    ):
        await outsider.until(lambda: counter(outsider).get("status") == "closed")
        await refused(r1, "ticket", "counter_closed", counter=SHIMIN)
        await act(staff, "duty", counter=SHIMIN)
        await r1.until(lambda: counter(r1).get("status") == "open")
        assert counter(r1)["staff"] == ["職員A"] and counter(r1)["hours"] == "08:30-17:00"
        _, sx, sz = where(srv, staff)
        assert math.hypot(sx - 8.0, sz - 0.7) < 0.3  # behind the counter

        await act(r1, "ticket", counter=SHIMIN)
        await r1.until(lambda: (ticket(r1) or {}).get("position") == 1)
        await act(r2, "ticket", counter=SHIMIN)
        await r2.until(lambda: (ticket(r2) or {}).get("position") == 2)
        assert ticket(r1)["number"] == 1 and ticket(r2)["number"] == 2  # type: ignore[index]
        assert ticket(r2)["ahead"] == 1 and ticket(r2)["wait_s"] == 960  # type: ignore[index]
        await outsider.until(lambda: counter(outsider).get("waiting") == 2)
        assert ticket(outsider) is None and state(outsider)["desk"] is None
        await staff.until(lambda: len((state(staff).get("desk") or {}).get("queue", [])) == 2)
        assert [q["name"] for q in state(staff)["desk"]["queue"]] == ["一番さん", "二番さん"]

        await refused(r2, "accept", "not_called")  # a booth join without a call
        await act(staff, "call")
        call = await r1.reply(Notice)
        assert call.kind == "counter_call" and call.data["number"] == 1
        await r1.until(lambda: (ticket(r1) or {}).get("state") == "called")
        assert ticket(r1)["call_deadline_ms"] > 0  # type: ignore[index]
        await r2.until(lambda: (ticket(r2) or {}).get("position") == 1)
        await act(r1, "accept")
        await r1.until(lambda: state(r1).get("booth") is not None)
        booth = state(r1)["booth"]
        assert booth["with"] == "職員A" and booth["counter"] == SHIMIN
        await staff.until(lambda: (state(staff).get("desk") or {}).get("booth") is not None)
        assert state(staff)["booth"]["with"] == "一番さん"
        zone = booth["zone"]
        await until(lambda: in_zone(srv, r1, zone) and in_zone(srv, staff, zone))
        await outsider.until(lambda: counter(outsider).get("status") == "busy")
        place(srv, outsider, OUT_OF_BOOTH)  # right outside the booth's wall

        # chat: the booth's lines reach the two only; the lobby's do not reach them
        await r1.send(Chat(scope=0, text="相談です"))
        await r2.send(Chat(scope=0, text="ロビーから"))
        line = await staff.reply(ChatMsg)
        assert line.text == "相談です"
        for c in (r1, r2, outsider, staff):
            await c.sync()
        assert [m.text for m in r1.messages(ChatMsg)] == ["相談です"]
        assert [m.text for m in staff.messages(ChatMsg)] == []
        assert [m.text for m in r2.messages(ChatMsg)] == ["ロビーから"]
        assert [m.text for m in outsider.messages(ChatMsg)] == ["ロビーから"]

        # voice: the resident's frames reach the staff member, not the one outside the wall
        async with talking(r1):
            await staff.until(lambda: len(frames_from(staff, r1)) >= 10)
        await outsider.sync()
        assert frames_from(outsider, r1) == [] and frames_from(r2, r1) == []

        # the screen and the link, for both
        await act(staff, "screen", kind="kiosk", ref="kiosk-juminhyo")
        await r1.until(lambda: ((state(r1).get("booth") or {}).get("screen") or {}).get("kind"))
        assert state(r1)["booth"]["screen"]["panel"]["title"]["ja"] == "住民票の写し"
        await act(staff, "link", procedure="juminhyo", channel="graffer")
        await r1.until(lambda: (state(r1).get("booth") or {}).get("link"))
        link = state(r1)["booth"]["link"]
        assert "emachi_ref=" in link["url"] and link["qr_svg"].startswith("<svg")
        await refused(staff, "link", "link_unknown", procedure="juminhyo", channel="fax")
        await refused(r1, "screen", "not_staff", kind="kiosk", ref="kiosk-juminhyo")
        for bad in ({"kind": "slide", "ref": "briefing/\u00b2"}, {"kind": "film", "ref": "x"},
                    {"kind": "checklist", "query": ["moved"]},
                    {"kind": "checklist", "query": {"moved_from": {"a": 1}}},
                    {"kind": "kiosk", "ref": ["kiosk-juminhyo"]}):  # fmt: skip
            await staff.send(CounterAction(action="screen", args=bad))
            err = await staff.reply(Error)
            assert err.code in ("screen_unknown", "bad_args", "helper_query") and err.reason, bad
        assert staff.close_code is None

        await act(staff, "end")
        over = await r1.reply(Notice)
        assert over.kind == "counter_ticket" and over.data["state"] == "done"
        await r1.until(lambda: state(r1).get("booth") is None and ticket(r1) is None)
        _, x, z = where(srv, r1)
        assert math.hypot(x - 8.0, z - 4.0) < 0.3  # back before the counter
        await act(staff, "call")
        await r2.until(lambda: (ticket(r2) or {}).get("state") == "called")


async def test_the_ticket_survives_a_reconnect(start_server: StartServer) -> None:
    srv = await start_server(counters_always_open=True, resume_window=20 * WAIT)
    async with Client(srv.ws, "職員", staff=STAFF_TOKEN) as staff:
        await act(staff, "duty", counter=SHIMIN)
        r = Client(srv.ws, "住民")
        await r.connect()
        await r.until(lambda: counter(r).get("status") == "open")
        await act(r, "ticket", counter=SHIMIN)
        await r.until(lambda: ticket(r) is not None)
        number, token = ticket(r)["number"], r.resume  # type: ignore[index]
        await r.close()  # a reload: the avatar is kept, the ticket with it
        again = Client(srv.ws, "住民", resume=token)
        await again.connect()
        assert again.avatar_id == r.avatar_id
        await again.until(lambda: (ticket(again) or {}).get("number") == number)
        # gone past the resume window (the avatar is given up), within GONE_SECONDS: a hello
        # naming the old token gets a new avatar and the same ticket back
        token = again.resume
        await again.close()
        svc = srv.app[COUNTERS]
        await until(lambda: token in svc.orphans, 200 * WAIT)
        late = Client(srv.ws, "住民", resume=token)
        await late.connect()
        assert late.resume != token  # not resumed: a new avatar
        await late.until(lambda: (ticket(late) or {}).get("number") == number)
        await late.close()


async def test_bad_inputs_are_refused_and_counted_while_others_carry_on(
    start_server: StartServer,
) -> None:
    srv = await start_server(counters_always_open=True)
    async with (
        Client(srv.ws, "見ている人") as watcher,
        Client(srv.ws, "職員", staff=STAFF_TOKEN) as staff,
        Client(srv.ws, "住民") as r,
    ):
        await act(staff, "duty", counter=SHIMIN)
        await r.until(lambda: counter(r).get("status") == "open")
        seen = watcher.snapshots
        await refused(r, "accept", "not_called")
        await refused(r, "duty", "not_staff", counter=SHIMIN)
        await refused(r, "ticket", "counter_unknown", counter="counter-nowhere")
        await refused(r, "ticket", "bad_args", counter=7)
        await refused(r, "fly", "action_unknown")
        for _ in range(5):  # a ticket flood: take and leave, over and over
            await act(r, "ticket", counter=SHIMIN)
            await act(r, "leave")
        await refused(r, "ticket", "ticket_rate", counter=SHIMIN)
        for _ in range(5):  # guessing a reservation code
            await refused(r, "enter", "code_unknown", code="AAAAA-AAAAA")
        await refused(r, "enter", "code_rate", code="BBBBB-BBBBB")
        # the limit is the address's (as the per-address connection limit counts it), not the
        # connection's: another page from the same address is refused too
        mine = srv.app[HALL].instances[0].sessions[r.avatar_id]
        assert mine.address == "127.0.0.1"
        async with Client(srv.ws, "同じ家の人") as same:
            await refused(same, "enter", "code_rate", code="CCCCC-CCCCC")
        await watcher.until(lambda: watcher.snapshots > seen + 20)  # the others carry on
        assert watcher.close_code is None and r.close_code is None
        async with aiohttp.ClientSession() as http, http.get(f"{srv.http}/metrics") as resp:
            text = await resp.text()
        for reason, n in (
            ("ticket_rate", 1),
            ("not_called", 1),
            ("code_unknown", 5),
            ("code_rate", 2),
            ("not_staff", 1),
        ):
            assert f'emachi_counters_refused_total{{reason="{reason}"}} {n:.1f}' in text, reason


async def test_the_staff_pass_makes_a_signed_in_page_staff(start_server: StartServer) -> None:
    srv = await start_server(counters_always_open=True)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{srv.http}/staff/counters/pass") as resp:
            assert resp.status == 401
        async with http.get(
            f"{srv.http}/staff/counters/pass", headers={"Authorization": f"Bearer {STAFF_TOKEN}"}
        ) as resp:
            assert resp.status == 200
            given = (await resp.json())["pass"]
    async with (
        Client(srv.ws, "窓口の人", staff_pass=given) as staff,
        Client(srv.ws, "偽物", staff_pass=given[:-2] + "00") as fake,
    ):
        await act(staff, "duty", counter=SHIMIN)
        await staff.until(lambda: (state(staff).get("desk") or {}).get("counter") == SHIMIN)
        await refused(fake, "duty", "not_staff", counter=SHIMIN)


async def test_a_booth_and_the_other_processes_do_not_hear_each_other(
    start_server: StartServer,
) -> None:
    """The chat relay of a cluster, on the in-process bus: a line said in a booth is not sent to
    the other processes (the lobby's is), and a line from another process reaches the lobby
    here but not the two in the booth."""

    def relayed(app: web.Application) -> None:  # what a clustered process mounts
        relay = ChatRelay(app[BUS], app[BUS_OUTBOX], app[CONFIG].aoi_radius, app[HOOKS].route_chat)
        app[HOOKS].on_create(relay.on_create)
        app[HOOKS].on_dispose(relay.on_dispose)
        for inst in app[HALL].instances:
            relay.on_create(inst)
        app[CHAT_RELAY] = relay

    srv = await start_server(counters_always_open=True, configure=relayed)
    bus = srv.app[BUS]
    assert isinstance(bus, LocalBus)
    other = LocalBus(hub=bus.hub)  # another process of the same city
    heard: list[str] = []
    async with (
        Client(srv.ws, "職員A", staff=STAFF_TOKEN) as staff,
        Client(srv.ws, "相談者") as r,
        Client(srv.ws, "ロビーの人") as lobby,
    ):
        channel = channel_of(srv.app[HALL].instances[0].id)
        other.subscribe(channel, lambda data: heard.append(msgpack.unpackb(data)[2]))
        await act(staff, "duty", counter=SHIMIN)
        await r.until(lambda: counter(r).get("status") == "open")
        await act(r, "ticket", counter=SHIMIN)
        await r.until(lambda: ticket(r) is not None)
        await act(staff, "call")
        await r.until(lambda: (ticket(r) or {}).get("state") == "called")
        await act(r, "accept")
        await r.until(lambda: state(r).get("booth") is not None)

        await r.send(Chat(scope=0, text="ここだけの話"))
        await staff.until(lambda: [m.text for m in staff.messages(ChatMsg)] == ["ここだけの話"])
        await lobby.send(Chat(scope=0, text="ロビーから"))
        await until(lambda: "ロビーから" in heard)
        assert heard == ["ロビーから"], "the booth's line stayed on this process"

        line = ["遠くの人", 0, "別の階から", time.time() * 1000.0, 0, 0.0, 0.0]
        await other.publish(channel, msgpack.packb(line, use_bin_type=True))
        await lobby.until(lambda: "別の階から" in [m.text for m in lobby.messages(ChatMsg)])
        for c in (r, staff):
            await c.sync()
        assert [m.text for m in r.messages(ChatMsg)] == ["ここだけの話"]
        assert [m.text for m in staff.messages(ChatMsg)] == ["ここだけの話"]
