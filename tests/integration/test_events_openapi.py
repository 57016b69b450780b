"""schemathesis against the served OpenAPI document of the staff events API finds no 500
(bounded: a few examples per operation and a time budget)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.integration.conftest import STAFF_TOKEN, StartServer
from tests.tools import require_module

EXAMPLES = 5
BUDGET = 20  # seconds schemathesis may spend generating and sending


async def test_schemathesis_finds_no_server_error(
    start_server: StartServer, tmp_path: Path
) -> None:
    require_module("schemathesis")
    srv = await start_server()
    cli = Path(sys.executable).with_name("st")
    proc = await asyncio.create_subprocess_exec(
        str(cli),
        "run",
        f"{srv.http}/staff/events/openapi.json",
        "-H",
        f"Authorization: Bearer {STAFF_TOKEN}",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        str(EXAMPLES),
        "--max-time",
        str(BUDGET),
        "--seed",
        "10",
        "--no-shrink",
        "--report-dir",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), BUDGET * 3)
    text = out.decode("utf-8", "replace")
    assert proc.returncode == 0, text[-4000:]
    assert "passed" in text and "Server error" not in text, text[-4000:]
