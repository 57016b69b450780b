"""Resume across a restart in a cluster: the seats wait in Redis for the resume window, and the
process that takes the instance over (here the same one, started again) gives them back."""

from __future__ import annotations

from pathlib import Path

from tests.integration.process import ServeProcess
from tests.integration.test_resume_restart import restart_and_resume
from tests.private_redis import PrivateRedis
from tests.private_redis import free_port as _free_port

RESUME_WINDOW_MS = 30_000  # Config.resume_window


async def test_a_clustered_process_gives_its_avatars_back_after_a_restart(
    own_redis: PrivateRedis, tmp_path: Path
) -> None:
    import redis.asyncio as aioredis

    port = _free_port()
    srv = ServeProcess(tmp_path / "data", ("--redis", own_redis.url), listen=port)
    key = "emachi:seats:machida-city-hall#1"

    async def in_redis() -> None:
        """Between the two runs: the seats are in Redis, expiring with the resume window, the
        instance's lease was given up at the drain, and nothing of them is in the data dir."""
        r = aioredis.Redis.from_url(own_redis.url)
        try:
            assert 0 < await r.pttl(key) <= RESUME_WINDOW_MS
            assert await r.hlen(key) > 0
            assert await r.get("emachi:lease:machida-city-hall#1") is None
        finally:
            await r.aclose()
        assert not (tmp_path / "data" / "records.sqlite3").exists()

    await restart_and_resume(srv, in_redis, said="resumable here after a takeover")
