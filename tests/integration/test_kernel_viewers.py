"""The cluster bench's viewers (bench/kernel_viewers.py) on a real server: plain-socket watch-only
viewers in processes of their own join a briefing, answer the server's Pings so that the liveness
sweep keeps them, and each notes the BRIEFING a staff action causes, by kernel receive time."""

from __future__ import annotations

from pathlib import Path

from bench.kernel_viewers import ViewerPool
from tests.tools import until

from .client import WAIT
from .conftest import STAFF_TOKEN, StartServer
from .test_briefing import BID, _start, mounted, rendered

__all__ = ["mounted", "rendered"]  # the fixtures, used by name


async def test_viewers_stay_through_pings_and_time_each_staff_action(
    mounted: None, rendered: Path, start_server: StartServer, tmp_path: Path
) -> None:
    # pinged after 0.1 s of quiet, closed after 0.5 s: a viewer that does not answer is gone
    srv = await _start(start_server, rendered, tmp_path, ping_after=0.1, silent_limit=0.5)
    pool = ViewerPool(srv.ws, BID, procs=2)
    try:
        await pool.connect(6, timeout=100 * WAIT)
        assert pool.connected == 6, pool.failed

        async def answered_a_second_of_pings() -> bool:
            return all(c["pongs"] >= 3 * 10 for c in await pool.counters())

        await until(answered_a_second_of_pings, timeout=200 * WAIT)
        t = await pool.time_actions(srv.http, STAFF_TOKEN, 2, wait=100 * WAIT, pause=0.0)
        counters = await pool.counters()
    finally:
        await pool.close()
    assert [c["ready"] for c in counters] == [3, 3]
    assert [c["closed_by_server"] for c in counters] == [0, 0]
    assert t["statuses"] == [200] and t["missed"] == 0
    assert len(t["last"]) == len(t["handled_last"]) == 2
    for k in range(2):  # after the POST began, and in the kernel before Python read it
        assert 0 < t["first"][k] <= t["last"][k] <= t["handled_last"][k]
    assert all(c["unstamped_reads"] == 0 for c in counters)
