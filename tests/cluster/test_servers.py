"""Two emachi servers sharing a private Redis: what residents and staff notice of the cluster.

A staff action on one process reaches the viewers on the other on the same schedule; /healthz and
/metrics count the people of both; when Redis goes away each server keeps serving its own clients,
and the briefing catches up when Redis is back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server import briefing, cluster, features
from server.briefing.render import render_script
from server.briefing.script import parse_script
from tests.integration.client import Client
from tests.integration.test_briefing import BID, SCRIPT, joined, staff, until_state
from tests.tools import WAIT, until

from .conftest import PrivateRedis, StartNode

pytestmark = pytest.mark.cluster

KEYS = ("state", "segment", "offset", "anchor", "rate", "origin")


@pytest.fixture
def mounted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Briefings and the cluster are mounted (the lead lists them in server/features.py)."""
    setups = list(features.SETUPS)
    for setup in (briefing.setup, cluster.setup):
        if setup not in setups:
            setups.append(setup)
    monkeypatch.setattr(features, "SETUPS", setups)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("rendered")
    render_script(parse_script(SCRIPT, "test.yaml"), data)
    return data


def _data_dir(rendered: Path, folder: Path) -> Path:
    """A data folder with the rendered briefing, as ``emachi briefing render`` leaves it."""
    (folder / "briefings").mkdir(parents=True)
    (folder / "briefings" / f"{BID}.json").write_bytes(
        (rendered / "briefings" / f"{BID}.json").read_bytes()
    )
    (folder / "assets").mkdir()
    for f in (rendered / "assets").iterdir():
        (folder / "assets" / f.name).write_bytes(f.read_bytes())
    return folder


async def pair(start_node: StartNode, rendered: Path, tmp_path: Path, url: str) -> tuple[Any, Any]:
    one = await start_node(_data_dir(rendered, tmp_path / "one"), redis_url=url)
    two = await start_node(_data_dir(rendered, tmp_path / "two"), redis_url=url)
    await until(lambda: _bus_up(one) and _bus_up(two), 200 * WAIT)
    return one, two


def _bus_up(srv: Any) -> bool:
    c = srv.app[cluster.CLUSTER]
    return c.connected and len(c.view.processes) == 2


HTTP_TIMEOUT = aiohttp.ClientTimeout(total=100 * WAIT)


async def get_json(srv: Any, path: str) -> Any:
    async with (
        aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http,
        http.get(srv.http + path) as r,
    ):
        assert r.status == 200
        return await r.json()


async def get_text(srv: Any, path: str) -> str:
    async with (
        aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http,
        http.get(srv.http + path) as r,
    ):
        assert r.status == 200
        return await r.text()


def same_schedule(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return {k: a[k] for k in KEYS} == {k: b[k] for k in KEYS}


async def test_a_staff_action_on_one_process_reaches_viewers_on_the_other_on_one_schedule(
    mounted: None, rendered: Path, start_node: StartNode, tmp_path: Path, redis_server: PrivateRedis
) -> None:
    one, two = await pair(start_node, rendered, tmp_path, redis_server.url)
    here = await joined(one, "あ", mode="watch", briefing=BID)
    watcher = await joined(two, "い", mode="watch", briefing=BID)
    avatar = await joined(two, "う")  # an avatar in the hall of the other process
    try:
        status, _ = await staff(one, "POST", f"/staff/briefings/{BID}/start")
        assert status == 200
        status, _ = await staff(one, "POST", f"/staff/briefings/{BID}/seek", {"segment": 1})
        assert status == 200
        s_here = await until_state(here, lambda s: s["state"] == "live" and s["segment"] == 1)
        s_watch = await until_state(watcher, lambda s: s["state"] == "live" and s["segment"] == 1)
        s_avatar = await until_state(avatar, lambda s: s["state"] == "live" and s["segment"] == 1)
        assert same_schedule(s_here, s_watch) and same_schedule(s_here, s_avatar)
        # and back: the staff of the other process pause it for everyone
        status, _ = await staff(two, "POST", f"/staff/briefings/{BID}/pause")
        assert status == 200
        s_here = await until_state(here, lambda s: s["state"] == "paused")
        s_watch = await until_state(watcher, lambda s: s["state"] == "paused")
        assert same_schedule(s_here, s_watch)
    finally:
        for c in (here, watcher, avatar):
            await c.close()


async def test_healthz_and_metrics_count_the_people_of_the_whole_cluster(
    mounted: None, rendered: Path, start_node: StartNode, tmp_path: Path, redis_server: PrivateRedis
) -> None:
    one, two = await pair(start_node, rendered, tmp_path, redis_server.url)
    a = Client(one.ws, name="あ")
    b = Client(two.ws, name="い")
    c = Client(two.ws, name="う")
    for x in (a, b, c):
        await x.connect()
    try:

        async def counted() -> dict[str, Any] | None:
            """/healthz of the first process once it counts everyone."""
            health = await get_json(one, "/healthz")
            return health if health["cluster"]["people"] == 3 else None

        health = await until(counted, 200 * WAIT)
        assert health["cluster"]["processes"] == 2 and health["cluster"]["redis"] == "ok"
        members = {m["id"]: m for m in health["cluster"]["members"]}
        # the three share one instance, on the process that owns it (the others were redirected)
        owner = one if a.served == one.ws else two
        assert {a.served, b.served, c.served} == {owner.ws}
        assert members[owner.app[cluster.CLUSTER].process_id]["people"] == 3
        assert health["people"] == (3 if owner is one else 0), "each process counts its own"

        async def scraped() -> str | None:
            text = await get_text(two, "/metrics")
            return text if "emachi_cluster_people 3" in text else None

        text = await until(scraped, 200 * WAIT)
        assert "emachi_cluster_processes 2" in text
    finally:
        for x in (a, b, c):
            await x.close()


async def test_one_process_alone_shows_no_cluster(mounted: None, start_node: StartNode) -> None:
    srv = await start_node()
    health = await get_json(srv, "/healthz")
    assert "cluster" not in health and health["status"] == "ok"


@pytest.mark.parametrize("outage", ["kill", "pause"])
async def test_without_redis_each_server_keeps_serving_and_the_briefing_catches_up(
    outage: str,
    mounted: None,
    rendered: Path,
    start_node: StartNode,
    tmp_path: Path,
    own_redis: PrivateRedis,
) -> None:
    one, two = await pair(start_node, rendered, tmp_path, own_redis.url)
    here = await joined(one, "あ", mode="watch", briefing=BID)
    there = await joined(two, "い", mode="watch", briefing=BID)
    walker = Client(two.ws, name="歩")
    await walker.connect()
    try:
        await staff(one, "POST", f"/staff/briefings/{BID}/start")
        await until_state(there, lambda s: s["state"] == "live")

        if outage == "kill":
            own_redis.kill()
        else:
            own_redis.pause()
        # the servers notice, and go on serving their own clients
        await until(lambda: not two.app[cluster.CLUSTER].connected, 200 * WAIT)
        seen = walker.snapshots
        await walker.until(lambda: walker.snapshots > seen + 20)
        health = await get_json(two, "/healthz")
        assert health["status"] == "ok" and health["cluster"]["redis"] == "unreachable"
        status, _ = await staff(one, "POST", f"/staff/briefings/{BID}/pause")
        assert status == 200, "a staff action still works on its own process"
        await until_state(here, lambda s: s["state"] == "paused")

        if outage == "kill":
            own_redis.start()
        else:
            own_redis.resume()
        # back: the other process learns the pause it missed, without another action
        s_there = await until_state(there, lambda s: s["state"] == "paused", n=400)
        s_here = await until_state(here, lambda s: s["state"] == "paused")
        assert same_schedule(s_here, s_there)
        await until(
            lambda: one.app[cluster.CLUSTER].connected and two.app[cluster.CLUSTER].connected,
            400 * WAIT,
        )
        # and the bus carries new actions again
        await staff(one, "POST", f"/staff/briefings/{BID}/resume")
        s_there = await until_state(
            there, lambda s: s["state"] == "live" and s["anchor"] > s_here["anchor"]
        )
        s_here = await until_state(here, lambda s: s["state"] == "live")
        assert same_schedule(s_here, s_there)
        assert walker.error is None and walker.close_code is None
    finally:
        for c in (here, there, walker):
            await c.close()


async def test_a_process_that_joins_during_a_briefing_shows_it_where_it_is(
    mounted: None, rendered: Path, start_node: StartNode, tmp_path: Path, redis_server: PrivateRedis
) -> None:
    one = await start_node(_data_dir(rendered, tmp_path / "one"), redis_url=redis_server.url)
    here = await joined(one, "あ", mode="watch", briefing=BID)
    try:
        await staff(one, "POST", f"/staff/briefings/{BID}/start")
        await staff(one, "POST", f"/staff/briefings/{BID}/seek", {"segment": 2})
        await staff(one, "POST", f"/staff/briefings/{BID}/pause")
        s_here = await until_state(here, lambda s: s["state"] == "paused")
        # a second process starts later (a scale-out): it asks the cluster where briefings are
        two = await start_node(_data_dir(rendered, tmp_path / "two"), redis_url=redis_server.url)
        late = await joined(two, "い", mode="watch", briefing=BID)
        try:
            s_late = await until_state(late, lambda s: s["state"] == "paused")
            assert s_late["segment"] == 2
            assert same_schedule(s_here, s_late)
        finally:
            await late.close()
    finally:
        await here.close()


async def test_a_briefing_run_again_after_a_rehearsal_reaches_the_other_process(
    mounted: None, rendered: Path, start_node: StartNode, tmp_path: Path, redis_server: PrivateRedis
) -> None:
    one, two = await pair(start_node, rendered, tmp_path, redis_server.url)
    there = await joined(two, "い", mode="watch", briefing=BID)
    try:
        await staff(one, "POST", f"/staff/briefings/{BID}/start")
        await staff(one, "POST", f"/staff/briefings/{BID}/end")
        await until_state(there, lambda s: s["state"] == "ended")
        status, _ = await staff(one, "POST", f"/staff/briefings/{BID}/reset")
        assert status == 200
        await until_state(there, lambda s: s["state"] == "scheduled")
        status, started = await staff(one, "POST", f"/staff/briefings/{BID}/start")
        assert status == 200
        s_there = await until_state(
            there, lambda s: s["state"] == "live" and s["anchor"] == started["anchor"]
        )
        assert s_there["origin"] == started["origin"]
    finally:
        await there.close()
