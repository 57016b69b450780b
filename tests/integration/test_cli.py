"""The ``emachi`` command as an operator meets it: help, world check, a bad world, a taken port."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from server.config import ROOT

EMACHI = [sys.executable, "-m", "server.cli"]
BROKEN = """format = 1
id = "broken"
name = { ja = "壊れた", en = "Broken" }
[audio]
profile = { model = "inverse", ref_distance = 2.0, max_distance = 25.0, rolloff = 1.0 }
[[floors]]
id = "1f"
name = { ja = "1階", en = "1F" }
elevation = 0
outline = [[0, 0], [10, 0], [10, 10], [0, 10]]
[[spawns]]
id = "s"
floor = "1f"
x = 5
z = 5
yaw = 0
[[zones]]
id = "z"
floor = "1f"
name = { ja = "z", en = "z" }
polygon = [[1, 1], [4, 1]]
audio = "loud"
"""


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EMACHI, *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_help_lists_every_command() -> None:
    out = run("--help").stdout
    for command in ("serve", "world", "assets", "briefing"):
        assert command in out
    serve = run("serve", "--help").stdout
    for option in ("--port", "--capacity", "--world", "--data-dir", "--staff-token", "--tick-rate"):
        assert option in serve


def test_world_check_passes_the_shipped_hall() -> None:
    done = run("world", "check", "worlds/machida-city-hall")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok" in done.stdout


def test_a_broken_world_is_one_line_per_problem_and_no_traceback(tmp_path: Path) -> None:
    world = tmp_path / "world.toml"
    world.write_text(BROKEN, encoding="utf-8")
    for args in (("world", "check", str(world)), ("serve", "--world", str(world), "--port", "0")):
        done = run(*args)
        assert done.returncode != 0
        text = done.stdout + done.stderr
        assert "Traceback" not in text
        lines = [
            line
            for line in done.stdout.splitlines() + done.stderr.splitlines()
            if str(world) in line
        ]
        assert any("zones[0].polygon" in line for line in lines), text
        assert any("zones[0].audio" in line and "loud" in line for line in lines), text


def test_a_taken_port_is_said_plainly() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        done = run("serve", "--port", str(port))
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr
