"""Briefings on a real server: staff control the timeline, every viewer is told the same schedule,
watch-only viewers take no room in the hall, and the minutes are written at the end."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server import briefing, features
from server.briefing.render import render_script
from server.briefing.script import parse_script
from server.protocol.messages import (
    Briefing,
    BriefingJoin,
    Error,
    Notice,
    Question,
    Questions,
)

from .client import WAIT, Client, until
from .conftest import STAFF_TOKEN, RunningServer, StartServer

SCRIPT = """\
format: emachi-briefing/1
id: test-briefing
title: 結合テストの説明会
date: 2024-01-02
cast:
  - {avatar: clerk, role: 事務局, name: 情報システム課, voice: ja-openjtalk, speed: 1.0}
segments:
  - speaker: clerk
    slide: {title: 一枚目, bullets: [戦略1]}
    narration: 論点1は、戦略1と2にあたります。
    pause_after: 0.2
  - speaker: clerk
    slide: {title: 二枚目, bullets: [戦略2]}
    narration: 論点2を説明します。
    pause_after: 0.2
  - speaker: clerk
    slide: {title: 三枚目, bullets: [戦略3]}
    narration: 以上です。
    pause_after: 0
"""
BID = "test-briefing"
# a one-room world whose spawn is in the auditorium of a stage
SMALL_HALL = """\
format = 1
id = "small-hall"
name = { ja = "小ホール", en = "Small hall" }

[audio]
profile = { model = "inverse", ref_distance = 2.0, max_distance = 25.0, rolloff = 1.0 }

[[floors]]
id = "1f"
name = { ja = "1階", en = "1F" }
elevation = 0.0
outline = [[0, 0], [20, 0], [20, 20], [0, 20]]

[[zones]]
id = "zone-stage"
floor = "1f"
name = { ja = "ステージ", en = "Stage" }
polygon = [[5, 0], [15, 0], [15, 4], [5, 4]]
audio = "stage"
auditorium = "zone-seats"

[[zones]]
id = "zone-seats"
floor = "1f"
name = { ja = "客席", en = "Seats" }
polygon = [[0, 4], [20, 4], [20, 12], [0, 12]]
audio = "auditorium"

[[spawns]]
id = "spawn-seats"
floor = "1f"
x = 10.0
z = 8.0
yaw = 3.14159

[[stages]]
id = "stage"
floor = "1f"
zone = "zone-stage"
auditorium = "zone-seats"
screen = { x = 10.0, z = 0.4, y = 2.5, width = 6.0, height = 3.4, yaw = 0.0 }
speakers = [{ x = 10.0, z = 2.0, yaw = 0.0 }]
"""


@pytest.fixture
def mounted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make sure the feature is mounted (the lead lists it in server/features.py)."""
    if briefing.setup not in features.SETUPS:
        monkeypatch.setattr(features, "SETUPS", [*features.SETUPS, briefing.setup])


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("rendered")
    render_script(parse_script(SCRIPT, "test.yaml"), data)
    return data


@pytest.fixture
async def bserver(
    mounted: None, rendered: Path, start_server: StartServer, tmp_path: Path
) -> RunningServer:
    return await _start(start_server, rendered, tmp_path)


async def _start(
    start_server: StartServer, rendered: Path, tmp_path: Path, **kw: Any
) -> RunningServer:
    data = tmp_path / "data"
    (data / "briefings").mkdir(parents=True, exist_ok=True)
    (data / "briefings" / f"{BID}.json").write_bytes(
        (rendered / "briefings" / f"{BID}.json").read_bytes()
    )
    (data / "assets").mkdir(parents=True, exist_ok=True)
    for f in (rendered / "assets").iterdir():
        (data / "assets" / f.name).write_bytes(f.read_bytes())
    return await start_server(data_dir=data, **kw)


async def staff(
    srv: RunningServer, method: str, path: str, body: Any = None, token: str | None = STAFF_TOKEN
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, srv.http + path, json=body, headers=headers) as r,
    ):
        ctype = r.headers.get("Content-Type", "")
        return r.status, (await r.json() if "json" in ctype else await r.text())


# A viewer is the tests' ordinary client: every frame the server sends must decode.
Viewer = Client


def briefings(c: Client) -> list[dict[str, Any]]:
    return [m.state for m in c.messages(Briefing)]


async def until_state(
    c: Client, pred: Callable[[dict[str, Any]], bool], n: int = 100
) -> dict[str, Any]:
    await c.until(lambda: any(pred(s) for s in briefings(c)), timeout=n * WAIT)
    return next(s for s in reversed(briefings(c)) if pred(s))


def position(s: dict[str, Any], server_now: float) -> float:
    if s["state"] != "live":
        return s["offset"]
    return s["offset"] + (server_now - s["anchor"]) / 1000.0 * s["rate"]


async def joined(srv: RunningServer, name: str, **opts: Any) -> Client:
    c = Viewer(srv.ws, name=name, **opts)
    await c.connect()
    await c.send(BriefingJoin(briefing_id=BID))
    await until_state(c, lambda s: "segments" in s)
    return c


async def test_two_viewers_get_the_same_schedule_with_audio_they_can_fetch(
    bserver: RunningServer,
) -> None:
    a = await joined(bserver, "あ")
    b = await joined(bserver, "い", mode="watch", briefing=BID)
    try:
        first = briefings(a)[0]
        assert first["state"] == "scheduled" and len(first["segments"]) == 3
        assert first["segments"][1]["slide"]["title"] == "二枚目"
        assert first["segments"][0]["captions"][0][2] == "論点1は、戦略1と2にあたります。"
        status, _ = await staff(bserver, "POST", f"/staff/briefings/{BID}/start")
        assert status == 200
        sa = await until_state(a, lambda s: s["state"] == "live")
        sb = await until_state(b, lambda s: s["state"] == "live")
        keys = ("state", "segment", "offset", "anchor", "rate", "origin")
        assert {k: sa[k] for k in keys} == {k: sb[k] for k in keys}
        async with aiohttp.ClientSession() as http:
            for url in (first["segments"][0]["audio"], first["segments"][0]["visemes"]):
                async with http.get(bserver.http + url) as r:
                    assert r.status == 200
                    assert len(await r.read()) > 100
    finally:
        await a.close()
        await b.close()


async def test_pause_and_go_to_a_segment_reach_every_viewer(bserver: RunningServer) -> None:
    a = await joined(bserver, "あ")
    b = await joined(bserver, "い", mode="watch", briefing=BID)
    try:
        await staff(bserver, "POST", f"/staff/briefings/{BID}/start")
        status, paused = await staff(bserver, "POST", f"/staff/briefings/{BID}/pause")
        assert status == 200 and paused["state"] == "paused"
        for c in (a, b):
            s = await until_state(c, lambda s: s["state"] == "paused")
            assert s["offset"] == paused["offset"]
        status, moved = await staff(bserver, "POST", f"/staff/briefings/{BID}/seek", {"segment": 2})
        assert status == 200 and moved["segment"] == 2
        for c in (a, b):
            s = await until_state(c, lambda s: s["segment"] == 2)
            assert s["state"] == "paused" and s["offset"] == moved["offset"] > 0
        status, body = await staff(bserver, "POST", f"/staff/briefings/{BID}/seek", {"segment": 7})
        assert status == 409 and "segment" in body["reason"]
        status, _ = await staff(bserver, "POST", f"/staff/briefings/{BID}/pause")
        assert status == 409
    finally:
        await a.close()
        await b.close()


async def test_a_late_joiner_starts_at_the_current_point(bserver: RunningServer) -> None:
    await staff(bserver, "POST", f"/staff/briefings/{BID}/start")

    async def played() -> float | None:
        """The briefing's position once it has played for a while."""
        _, now = await staff(bserver, "GET", f"/staff/briefings/{BID}")
        return now["position"] if now["position"] >= 10 * WAIT else None

    before = await until(played)
    late = await joined(bserver, "遅", mode="watch", briefing=BID)
    try:
        s = briefings(late)[0]
        assert s["state"] == "live" and "segments" in s
        here = position(s, s["server_time"])
        assert here >= before
        _, now = await staff(bserver, "GET", f"/staff/briefings/{BID}")
        assert position(
            s, now["anchor"] if now["state"] != "live" else s["server_time"]
        ) == pytest.approx(here)
        assert 0 < here < now["position"] + 1e-6
    finally:
        await late.close()


async def test_watch_only_viewers_take_no_room_in_the_hall(
    mounted: None, rendered: Path, start_server: StartServer, tmp_path: Path
) -> None:
    srv = await _start(start_server, rendered, tmp_path, capacity=1, max_instances=1)
    a = await joined(srv, "あ")
    try:
        full = Viewer(srv.ws, name="満")
        with pytest.raises(AssertionError, match="kind='queue'"):
            await full.connect()  # the hall is full: a place in its waiting line, no avatar
        await full.close()
        watchers = [await joined(srv, f"見{i}", mode="watch", briefing=BID) for i in range(3)]
        await staff(srv, "POST", f"/staff/briefings/{BID}/start")
        for w in watchers:
            s = await until_state(w, lambda s: s["state"] == "live")
            assert s["viewers"] == {"hall": 1, "online": 3}
            assert w.welcome is not None and w.welcome.instance == ""
        for w in watchers:
            await w.close()
    finally:
        await a.close()


async def test_questions_are_queued_for_staff_and_shown_to_everyone(bserver: RunningServer) -> None:
    a = await joined(bserver, "あ")
    b = await joined(bserver, "い", mode="watch", briefing=BID)
    try:
        await a.send(Question(briefing_id=BID, text="いつから使えますか？"))
        await a.until(lambda: any(n.kind == "question_received" for n in a.messages(Notice)))
        await a.send(Question(briefing_id=BID, text="あ" * 301))
        await a.until(lambda: any(e.code == "question_long" for e in a.messages(Error)))
        for i in range(4):  # three a minute are taken, the fourth is refused
            await b.send(Question(briefing_id=BID, text=f"質問{i}"))
        await b.until(lambda: any(e.code == "question_rate" for e in b.messages(Error)))
        status, q = await staff(bserver, "GET", f"/staff/briefings/{BID}/questions")
        assert status == 200
        assert [x["text"] for x in q["questions"]] == [
            "いつから使えますか？",
            "質問0",
            "質問1",
            "質問2",
        ]
        assert not a.messages(Questions), "viewers do not see the unmoderated queue"
        status, _ = await staff(bserver, "POST", f"/staff/briefings/{BID}/questions/1/show")
        assert status == 200
        for c in (a, b):
            await c.until(
                lambda c=c: any(
                    m.questions and m.questions[0]["text"] == "いつから使えますか？"
                    for m in c.messages(Questions)
                )
            )
            s = await until_state(c, lambda s: s["question"] is not None)
            assert s["question"]["id"] == 1
        status, _ = await staff(bserver, "POST", f"/staff/briefings/{BID}/questions/9/show")
        assert status == 404
    finally:
        await a.close()
        await b.close()


async def test_staff_routes_need_the_token(bserver: RunningServer) -> None:
    for token in (None, "wrong"):
        status, _ = await staff(bserver, "POST", f"/staff/briefings/{BID}/start", token=token)
        assert status == 401
    status, _ = await staff(bserver, "GET", f"/staff/briefings/{BID}", token=None)
    assert status == 401
    status, _ = await staff(bserver, "GET", f"/staff/briefings/{BID}/console", token=None)
    assert status == 401
    status, page = await staff(bserver, "GET", f"/staff/briefings/{BID}/console")
    assert status == 200 and "staff.js" in page
    status, listing = await staff(bserver, "GET", "/api/briefings", token=None)
    assert status == 200 and listing["briefings"][0]["state"] == "scheduled"
    status, public = await staff(bserver, "GET", f"/api/briefings/{BID}", token=None)
    assert status == 200 and [s["slide"]["title"] for s in public["segments"]] == [
        "一枚目",
        "二枚目",
        "三枚目",
    ]


async def test_minutes_hold_the_narration_and_the_attendance(bserver: RunningServer) -> None:
    hall = [await joined(bserver, n) for n in ("あ", "い")]
    online = await joined(bserver, "う", mode="watch", briefing=BID)
    try:
        await staff(bserver, "POST", f"/staff/briefings/{BID}/start")
        await online.send(Question(briefing_id=BID, text="資料はどこで見られますか？"))
        await online.until(
            lambda: any(n.kind == "question_received" for n in online.messages(Notice))
        )
        await staff(bserver, "POST", f"/staff/briefings/{BID}/questions/1/answered")
        await staff(bserver, "POST", f"/staff/briefings/{BID}/seek", {"segment": 1})
        status, _ = await staff(bserver, "GET", f"/staff/briefings/{BID}/minutes")
        assert status == 409
        _, public = await staff(bserver, "GET", f"/api/briefings/{BID}", token=None)
        seg = public["segments"][1]
        heard = seg["start"] + seg["captions"][0][1]  # the end of segment 2's sentence

        async def past() -> bool:
            _, now = await staff(bserver, "GET", f"/staff/briefings/{BID}")
            return bool(now["position"] >= heard)

        await until(past, timeout=400 * WAIT)
        status, ended = await staff(bserver, "POST", f"/staff/briefings/{BID}/end")
        assert status == 200 and ended["state"] == "ended"
        await until_state(online, lambda s: s["state"] == "ended")
        status, md = await staff(bserver, "GET", f"/staff/briefings/{BID}/minutes")
        assert status == 200
        assert "結合テストの説明会" in md
        assert "論点2を説明します。" in md, "played through"
        assert "論点1は" not in md, "skipped at once: reached, not heard"
        assert "以上です。" not in md, "the third segment was never played"
        assert "3名 (ホール in the hall: 2名, オンライン online: 1名" in md
        assert "資料はどこで見られますか？ (回答済 answered)" in md
        files = sorted(p.suffix for p in (bserver.config.data_dir / "minutes").iterdir())
        assert files == [".html", ".md"]
        # a rehearsal's end is not the end: staff schedule it again for the real session
        status, again = await staff(bserver, "POST", f"/staff/briefings/{BID}/reset")
        assert status == 200 and again["state"] == "scheduled" and again["question"] is None
        await until_state(online, lambda s: s["state"] == "scheduled")
        status, _ = await staff(bserver, "POST", f"/staff/briefings/{BID}/reset")
        assert status == 409
    finally:
        for c in (*hall, online):
            await c.close()


async def test_a_briefing_played_to_the_end_ends_by_itself(bserver: RunningServer) -> None:
    w = await joined(bserver, "見", mode="watch", briefing=BID)
    try:
        await staff(bserver, "POST", f"/staff/briefings/{BID}/start")
        await staff(bserver, "POST", f"/staff/briefings/{BID}/seek", {"segment": 2})
        s = await until_state(w, lambda s: s["state"] == "ended", n=200)
        assert s["segment"] == 2
        assert list((bserver.config.data_dir / "minutes").glob("*.md"))
    finally:
        await w.close()


async def test_a_watch_only_hello_naming_the_briefing_is_told_when_it_starts(
    bserver: RunningServer,
) -> None:
    w = Viewer(bserver.ws, name="見", mode="watch", briefing=BID)
    other = Viewer(bserver.ws, name="他", mode="watch", briefing="another-briefing")
    await w.connect()
    await other.connect()
    try:
        await staff(bserver, "POST", f"/staff/briefings/{BID}/start")
        s = await until_state(w, lambda s: s["state"] == "live")
        assert len(s["segments"]) == 3, "the first BRIEFING a viewer gets carries the segments"
        await other.sync()  # the same loop wrote to every viewer, before this round trip
        assert not briefings(other), "a viewer of another briefing is not told"
    finally:
        await w.close()
        await other.close()


async def test_an_audience_on_two_processes_gets_one_schedule_through_the_action_hook(
    mounted: None, rendered: Path, start_server: StartServer, tmp_path: Path
) -> None:
    from server.briefing.timeline import Action
    from server.keys import BRIEFINGS

    one = await _start(start_server, rendered, tmp_path / "one")
    two = await _start(start_server, rendered, tmp_path / "two")
    service_two = two.app[BRIEFINGS]

    def relay(bid: str, action: str, now: float, args: dict[str, Any]) -> None:
        # what the cluster bus does: publish on one process, apply on the others
        b = service_two.get(bid)
        assert b is not None
        service_two.act(b, Action(action), now=now, remote=True, **args)

    one.app[BRIEFINGS].on_action.append(relay)
    a = await joined(one, "あ", mode="watch", briefing=BID)
    b = await joined(two, "い", mode="watch", briefing=BID)
    try:
        await staff(one, "POST", f"/staff/briefings/{BID}/start")
        await staff(one, "POST", f"/staff/briefings/{BID}/seek", {"segment": 1})
        sa = await until_state(a, lambda s: s["segment"] == 1)
        sb = await until_state(b, lambda s: s["segment"] == 1)
        keys = ("state", "offset", "anchor", "rate", "origin")
        assert {k: sa[k] for k in keys} == {k: sb[k] for k in keys}
    finally:
        await a.close()
        await b.close()


async def test_an_avatar_elsewhere_in_the_hall_is_told_but_not_counted_as_attending(
    bserver: RunningServer,
) -> None:
    passer_by = Viewer(bserver.ws, name="通行人")
    await passer_by.connect()
    online = await joined(bserver, "見", mode="watch", briefing=BID)
    try:
        await staff(bserver, "POST", f"/staff/briefings/{BID}/start")
        s = await until_state(passer_by, lambda s: s["state"] == "live")
        assert "segments" in s, "the stage screen is part of the hall: every avatar is told"
        assert s["viewers"] == {"hall": 0, "online": 1}, "standing in the lobby is not attending"
        await passer_by.send(BriefingJoin(briefing_id=BID))  # opened the briefing: attending
        await staff(bserver, "POST", f"/staff/briefings/{BID}/pause")
        s = await until_state(online, lambda s: s["state"] == "paused")
        assert s["viewers"] == {"hall": 1, "online": 1}
    finally:
        await passer_by.close()
        await online.close()


async def test_an_avatar_in_the_auditorium_attends_without_saying_so(
    mounted: None, rendered: Path, start_server: StartServer, tmp_path: Path
) -> None:
    srv = await small_hall(start_server, rendered, tmp_path)
    seated = Viewer(srv.ws, name="着席")
    await seated.connect()
    try:
        await staff(srv, "POST", f"/staff/briefings/{BID}/start")
        await staff(srv, "POST", f"/staff/briefings/{BID}/pause")
        s = await until_state(seated, lambda s: s["state"] == "paused")
        assert s["viewers"] == {"hall": 1, "online": 0}
        await staff(srv, "POST", f"/staff/briefings/{BID}/end")
        _, md = await staff(srv, "GET", f"/staff/briefings/{BID}/minutes")
        assert "1名 (ホール in the hall: 1名, オンライン online: 0名" in md
    finally:
        await seated.close()


async def staff_until(
    srv: RunningServer, pred: Callable[[dict[str, Any]], bool], n: int = 100
) -> dict[str, Any]:
    """The staff view of the briefing, polled until ``pred`` holds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + n * WAIT
    while True:
        _, state = await staff(srv, "GET", f"/staff/briefings/{BID}")
        if pred(state):
            return state
        assert loop.time() < end, f"timed out; last state: {state}"
        await asyncio.sleep(WAIT)


async def small_hall(
    start_server: StartServer, rendered: Path, tmp_path: Path, **kw: Any
) -> RunningServer:
    world = tmp_path / "small-hall"  # spawns in the seats
    world.mkdir()
    (world / "world.toml").write_text(SMALL_HALL, encoding="utf-8")
    catalog = Path(__file__).resolve().parents[2] / "worlds" / "machida-city-hall" / "catalog"
    (world / "catalog").symlink_to(catalog)  # the kiosk feature loads one with every world
    return await _start(start_server, rendered, tmp_path, world=world, **kw)


async def test_the_audience_is_who_stands_in_the_seats_now(
    mounted: None, rendered: Path, start_server: StartServer, tmp_path: Path
) -> None:
    srv = await small_hall(start_server, rendered, tmp_path)
    seated = Viewer(srv.ws, name="着席")
    await seated.connect()
    try:
        await staff(srv, "POST", f"/staff/briefings/{BID}/start")
        await staff(srv, "POST", f"/staff/briefings/{BID}/pause")  # counted, and it cannot end
        await staff_until(srv, lambda s: s["viewers"] == {"hall": 1, "online": 0})
        await seated.move(0.0, 1.0)  # walk out of the seats (z 4-12) towards the back wall
        await seated.until(lambda: (p := seated.position()) is not None and p[2] > 13.0)
        await seated.move(0.0, 0.0)
        await staff_until(srv, lambda s: s["viewers"]["hall"] == 0)
        await seated.move(0.0, -1.0)  # and back in
        await seated.until(lambda: (p := seated.position()) is not None and p[2] < 10.0)
        await seated.move(0.0, 0.0)
        await staff_until(srv, lambda s: s["viewers"]["hall"] == 1)
        await seated.close()  # the socket drops: no longer attending, though resumable
        await staff_until(srv, lambda s: s["viewers"]["hall"] == 0)
        await staff(srv, "POST", f"/staff/briefings/{BID}/end")
        _, md = await staff(srv, "GET", f"/staff/briefings/{BID}/minutes")
        assert "1名 (ホール in the hall: 1名, オンライン online: 0名" in md, "one person, once"
    finally:
        await seated.close()


async def test_a_watch_only_viewer_that_leaves_is_uncounted_and_forgotten(
    bserver: RunningServer,
) -> None:
    from server.keys import BRIEFINGS

    stays = await joined(bserver, "残", mode="watch", briefing=BID)
    leaves = await joined(bserver, "去", mode="watch", briefing=BID)
    try:
        await staff(bserver, "POST", f"/staff/briefings/{BID}/start")
        await staff_until(bserver, lambda s: s["viewers"] == {"hall": 0, "online": 2})
        await leaves.close()
        await staff_until(bserver, lambda s: s["viewers"] == {"hall": 0, "online": 1})
        service = bserver.app[BRIEFINGS]
        b = service.get(BID)
        assert b is not None and len(b.viewers) == 1 and not service.watching[BID] - b.viewers
        await staff(bserver, "POST", f"/staff/briefings/{BID}/end")
        _, md = await staff(bserver, "GET", f"/staff/briefings/{BID}/minutes")
        assert "オンライン online: 2名" in md, "who left still attended"
    finally:
        await stays.close()
        await leaves.close()


async def test_a_briefing_paused_near_its_end_ends_only_after_it_is_resumed(
    bserver: RunningServer,
) -> None:
    w = await joined(bserver, "見", mode="watch", briefing=BID)
    try:
        await staff(bserver, "POST", f"/staff/briefings/{BID}/start")
        await staff(bserver, "POST", f"/staff/briefings/{BID}/seek", {"segment": 2})
        _, paused = await staff(bserver, "POST", f"/staff/briefings/{BID}/pause")
        left = paused["total"] - paused["offset"]
        await asyncio.sleep(10 * WAIT)  # a pause of half a second: the end moves that much
        status, resumed = await staff(bserver, "POST", f"/staff/briefings/{BID}/resume")
        assert status == 200, "it did not end while paused"
        s = await until_state(w, lambda s: s["state"] == "ended", n=200)
        # played the rest after the resume: not ended at the time set before the pause
        assert s["ended_at"] - resumed["anchor"] >= left * 1000.0 - 1.0
    finally:
        await w.close()
