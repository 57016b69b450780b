"""One audience on two processes sharing a private Redis: chat, questions, attendance, minutes.

A chat line said on one process reaches the people of the same instance on the other (and a
nearby line only those near where it was said); a question asked on one process is in the
console of the other, and a staff move there reaches the asker; the minutes are written once
and count the viewers of both processes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from server import cluster
from server.cluster.chat import channel_of
from server.keys import BRIEFINGS, HALL
from server.protocol.messages import Chat, ChatMsg, Notice, Question, Questions
from tests.integration.client import Client
from tests.integration.test_briefing import BID, joined, staff, until_state
from tests.tools import WAIT, until

from .conftest import PrivateRedis, StartNode
from .test_servers import mounted as _mounted
from .test_servers import pair
from .test_servers import rendered as _rendered

mounted, rendered = _mounted, _rendered  # the fixtures of test_servers.py

pytestmark = pytest.mark.cluster


async def chat_heard(srv: Any, instance_id: str, url: str, listeners: int) -> None:
    """Wait until ``listeners`` processes listen to the instance's chat channel on Redis."""
    full = f"{srv.app[cluster.CLUSTER].prefix}bus:{channel_of(instance_id)}"
    r = aioredis.Redis.from_url(url)
    try:

        async def subscribed() -> bool:
            got = await r.pubsub_numsub(full)
            return bool(got and got[0][1] >= listeners)

        await until(subscribed, 200 * WAIT)
    finally:
        await r.aclose()


def lines(c: Client) -> list[ChatMsg]:
    return c.messages(ChatMsg)


async def test_a_chat_line_reaches_a_resident_who_came_in_through_the_other_process(
    mounted: None, rendered: Path, start_node: StartNode, tmp_path: Path, redis_server: PrivateRedis
) -> None:
    """Residents who reach different processes meet in one instance (the second is sent to its
    owner), so what one says reaches the other, once, in both scopes."""
    one, two = await pair(start_node, rendered, tmp_path, redis_server.url)
    a, b = Client(one.ws, name="あさ"), Client(two.ws, name="ひる")
    for c in (a, b):
        await c.connect()
    try:
        owners = [n for n in (one, two) if n.app[HALL].instances]
        assert len(owners) == 1, "one instance, on one process"
        inst = owners[0].app[HALL].instances[0]
        assert {s.name for s in inst.sessions.values()} == {"あさ", "ひる"}
        await a.send(Chat(scope=0, text="こんにちは、二階の窓口はどこですか"))
        await b.until(lambda: any(m.text.startswith("こんにちは") for m in lines(b)))
        got = next(m for m in lines(b) if m.text.startswith("こんにちは"))
        assert got.name == "あさ" and got.scope == 0
        await a.sync()
        assert [m.text for m in lines(a)] == ["こんにちは、二階の窓口はどこですか"], "once, here"
        # nearby: both stand at the entrance
        await b.send(Chat(scope=1, text="近くの人へ"))
        await a.until(lambda: any(m.text == "近くの人へ" and m.scope == 1 for m in lines(a)))
    finally:
        for c in (a, b):
            await c.close()


async def test_a_question_asked_on_one_process_is_in_the_console_of_the_other(
    mounted: None, rendered: Path, start_node: StartNode, tmp_path: Path, redis_server: PrivateRedis
) -> None:
    one, two = await pair(start_node, rendered, tmp_path, redis_server.url)
    asker = await joined(one, "問", mode="watch", briefing=BID)
    other = await joined(two, "見", mode="watch", briefing=BID)
    try:
        await staff(two, "POST", f"/staff/briefings/{BID}/start")
        await until_state(asker, lambda s: s["state"] == "live")
        await asker.send(Question(briefing_id=BID, text="申請はいつから？"))
        note = await asker.reply(Notice)
        assert note.kind == "question_received"
        qid = note.data["id"]

        async def in_console() -> list[dict[str, Any]]:
            _, q = await staff(two, "GET", f"/staff/briefings/{BID}/questions")
            return q["questions"]

        qs = await until(in_console, 200 * WAIT)
        assert [(q["id"], q["text"]) for q in qs] == [(qid, "申請はいつから？")]
        # staff put it on the screen from the other process's console: the asker sees it
        status, _ = await staff(two, "POST", f"/staff/briefings/{BID}/questions/{qid}/show")
        assert status == 200
        for c in (asker, other):
            s = await until_state(c, lambda s: s["question"] is not None, n=200)
            assert s["question"]["text"] == "申請はいつから？"
        await asker.until(lambda: any(m.questions for m in asker.messages(Questions)))
        _, mine = await staff(one, "GET", f"/staff/briefings/{BID}/questions")
        assert mine["questions"][0]["state"] == "shown", "the move reached the asker's process"
    finally:
        for c in (asker, other):
            await c.close()


async def test_one_set_of_minutes_counts_the_whole_clusters_attendance(
    mounted: None, rendered: Path, start_node: StartNode, tmp_path: Path, redis_server: PrivateRedis
) -> None:
    one, two = await pair(start_node, rendered, tmp_path, redis_server.url)
    viewers = [
        await joined(one, "一", mode="watch", briefing=BID),
        await joined(two, "二", mode="watch", briefing=BID),
        await joined(two, "三", mode="watch", briefing=BID),
        await joined(one, "四"),  # an avatar that asked for it
    ]
    try:
        await staff(one, "POST", f"/staff/briefings/{BID}/start")
        await staff(one, "POST", f"/staff/briefings/{BID}/pause")  # not played out meanwhile
        await until_state(viewers[2], lambda s: s["state"] == "paused", n=200)
        # the viewers' count staff see on either process is the cluster's

        async def counted(srv: Any) -> bool:
            _, state = await staff(srv, "GET", f"/staff/briefings/{BID}")
            return bool(state["viewers"] == {"hall": 1, "online": 3})

        for srv in (one, two):
            await until(lambda srv=srv: counted(srv), 200 * WAIT)
        status, ended = await staff(two, "POST", f"/staff/briefings/{BID}/end")
        assert status == 200 and ended["state"] == "ended"

        async def minutes(srv: Any) -> str | None:
            status, md = await staff(srv, "GET", f"/staff/briefings/{BID}/minutes")
            return md if status == 200 else None

        md_two = await until(lambda: minutes(two), 200 * WAIT)
        md_one = await until(lambda: minutes(one), 200 * WAIT)
        assert md_one == md_two, "one set of minutes, the same on every process"
        assert "4名 (ホール in the hall: 1名, オンライン online: 3名" in md_two
        assert re.search(r"最大同時 peak: 1 / 3", md_two)
        written = [srv.app[BRIEFINGS].finisher.__self__.minutes_written for srv in (one, two)]  # type: ignore[union-attr]
        assert written == [0, 1], "written once, by the process that handled the end"
    finally:
        for c in viewers:
            await c.close()
