"""Three processes behind a real HAProxy (round robin, no stickiness), as docs/cluster.md runs them.

Each client connects to the balancer and lands wherever round robin sends it; what it notices is
still one city hall: a chat line said on one process reaches the people of the same instance on
the others, a question asked on one is in the staff console whichever process answers it, and a
staff action taken through the balancer reaches watch-only viewers on every process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server.keys import BRIEFINGS, CLUSTER, HALL
from server.protocol.messages import BriefingJoin, Chat, ChatMsg, Notice, Question
from tests.haproxy import HAProxy, StartHAProxy
from tests.integration.client import Client
from tests.integration.conftest import STAFF_TOKEN
from tests.integration.test_briefing import BID, until_state
from tests.tools import WAIT, until

from .conftest import PrivateRedis, StartNode
from .test_servers import _data_dir
from .test_servers import mounted as _mounted
from .test_servers import rendered as _rendered

mounted, rendered = _mounted, _rendered  # the fixtures of test_servers.py

pytestmark = pytest.mark.cluster


async def three(
    start_node: StartNode,
    start_haproxy: StartHAProxy,
    rendered: Path,
    tmp_path: Path,
    url: str,
) -> tuple[list[Any], HAProxy]:
    nodes = [
        await start_node(_data_dir(rendered, tmp_path / f"n{i}"), redis_url=url) for i in range(3)
    ]
    await until(lambda: all(_bus_up(n, 3) for n in nodes), 200 * WAIT)
    lb = await start_haproxy([("127.0.0.1", n.port) for n in nodes])
    return nodes, lb


def _bus_up(srv: Any, n: int) -> bool:
    c = srv.app[CLUSTER]
    return bool(c.connected and len(c.view.processes) == n)


def where(nodes: list[Any], name: str) -> int:
    """Which node a client named ``name`` landed on (-1: none yet)."""
    for i, n in enumerate(nodes):
        hall = n.app[HALL]
        if any(s.name == name for s in hall.sessions()):
            return i
    return -1


async def spread(lb: HAProxy, nodes: list[Any], names: list[str], **opts: Any) -> list[Client]:
    """Connect clients through the balancer until each of ``names`` is on a process of its own
    (round robin sends consecutive connections to different processes)."""
    out: list[Client] = []
    taken: set[int] = set()
    for name in names:
        for attempt in range(6):
            c = Client(lb.ws, name=f"{name}{attempt}", **opts)
            await c.connect()
            node = await until(lambda c=c: where(nodes, c.name) + 1, 100 * WAIT) - 1
            if node not in taken:
                taken.add(node)
                out.append(c)
                break
            await c.close()
        else:
            raise AssertionError(f"round robin never put {name} on a process of its own")
    return out


async def staff_lb(lb: HAProxy, method: str, path: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=100 * WAIT)) as http,
        http.request(
            method, lb.http + path, headers={"Authorization": f"Bearer {STAFF_TOKEN}"}
        ) as r,
    ):
        return r.status, await r.json()


async def test_a_chat_line_and_a_question_cross_processes_behind_haproxy(
    mounted: None,
    rendered: Path,
    start_node: StartNode,
    start_haproxy: StartHAProxy,
    tmp_path: Path,
    redis_server: PrivateRedis,
) -> None:
    nodes, lb = await three(start_node, start_haproxy, rendered, tmp_path, redis_server.url)
    # round robin sends the two to different processes; the second is redirected to the owner
    a, b = Client(lb.ws, name="あ"), Client(lb.ws, name="い")
    for c in (a, b):
        await c.connect()
    try:
        assert where(nodes, a.name) == where(nodes, b.name), "one instance, on its owner"
        await a.send(Chat(scope=0, text="受付はどちらですか"))
        await b.until(lambda: any(m.text == "受付はどちらですか" for m in b.messages(ChatMsg)))

        # a question from a viewer on one process; the console asks through the balancer
        await a.send(BriefingJoin(briefing_id=BID))
        await a.send(Question(briefing_id=BID, text="駐車場はありますか"))
        note = await a.reply(Notice)
        assert note.kind == "question_received"

        async def listed_by_every_process() -> bool:
            answers = []
            for _ in range(3):  # round robin: three requests, three processes
                status, got = await staff_lb(lb, "GET", f"/staff/briefings/{BID}/questions")
                answers.append(status == 200 and [q["text"] for q in got["questions"]])
            return all(x == ["駐車場はありますか"] for x in answers)

        await until(listed_by_every_process, 200 * WAIT)
        assert all(len(n.app[BRIEFINGS].briefings[BID].questions.items) == 1 for n in nodes)
    finally:
        for c in (a, b):
            await c.close()


async def test_a_staff_action_through_haproxy_reaches_watch_only_viewers_on_every_process(
    mounted: None,
    rendered: Path,
    start_node: StartNode,
    start_haproxy: StartHAProxy,
    tmp_path: Path,
    redis_server: PrivateRedis,
) -> None:
    nodes, lb = await three(start_node, start_haproxy, rendered, tmp_path, redis_server.url)
    viewers = await spread(lb, nodes, ["見", "観", "視"], mode="watch", briefing=BID)
    try:
        for v in viewers:
            await v.send(BriefingJoin(briefing_id=BID))
            await until_state(v, lambda s: "segments" in s)
        status, _ = await staff_lb(lb, "POST", f"/staff/briefings/{BID}/start")
        assert status == 200
        states = [await until_state(v, lambda s: s["state"] == "live", n=200) for v in viewers]
        assert len({(s["origin"], s["anchor"], s["rate"]) for s in states}) == 1, "one schedule"
    finally:
        for v in viewers:
            await v.close()
