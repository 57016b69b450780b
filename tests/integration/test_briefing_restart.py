"""A briefing survives a restart of the server: ``emachi serve`` as a real subprocess, a briefing
started by staff, SIGTERM (the drain), the same command again on the same data dir.

- drained while live: it is live again at the position it was cut (the sentence that was cut is
  said again whole; the time the server was away counts as a pause), its question and its
  attendance are still there, and staff are told it resumed;
- killed while live (no drain: where it was cut is unknown): it is ended as interrupted, staff
  are told, and the minutes of the interrupted run are written.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.briefing.render import render_script
from server.briefing.script import parse_script
from server.config import ROOT
from server.protocol.messages import BriefingJoin, Notice, Question

from .client import WAIT, Client

TOKEN = "restart-staff-token"
BID = "restart-briefing"
SCRIPT = """\
format: emachi-briefing/1
id: restart-briefing
title: 再起動テストの説明会
date: 2024-01-02
cast:
  - {avatar: clerk, role: 事務局, name: 情報システム課, voice: ja-openjtalk, speed: 1.0}
segments:
  - speaker: clerk
    slide: {title: 一枚目, bullets: [戦略1]}
    narration: 論点1は、戦略1と2にあたります。論点2は、戦略3にあたります。
    pause_after: 0.5
  - speaker: clerk
    slide: {title: 二枚目, bullets: [戦略2]}
    narration: 論点3を説明します。デジタル化の取り組みは、三つの段階で進めます。以上です。
    pause_after: 0
"""


class Serve:
    """``python -m server.cli serve`` on a data dir, started and stopped like an operator does."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.runs = 0

    def start(self) -> None:
        log = self.data / f"serve{self.runs}.log"
        self.runs += 1
        cmd = [sys.executable, "-m", "server.cli", "serve", "--port", "0"]
        cmd += ["--data-dir", str(self.data), "--staff-token", TOKEN]
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 600 * WAIT
        while time.monotonic() < deadline:
            m = re.search(r"http://127\.0\.0\.1:(\d+)/", log.read_text(errors="replace"))
            if m:
                self.url = f"http://127.0.0.1:{m.group(1)}"
                try:
                    self.get("/healthz")
                    return
                except OSError:
                    pass
            assert self.proc.poll() is None, log.read_text()
            time.sleep(2 * WAIT)
        raise AssertionError(f"the server did not start:\n{log.read_text()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        assert self.proc.wait(timeout=400 * WAIT) is not None

    def get(self, path: str) -> Any:
        req = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(req, timeout=100 * WAIT) as r:
            return json.loads(r.read())

    def post(self, path: str) -> Any:
        req = urllib.request.Request(
            self.url + path, method="POST", data=b"", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        with urllib.request.urlopen(req, timeout=100 * WAIT) as r:
            return json.loads(r.read())


def until(predicate: Any, timeout: float = 200 * WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(WAIT)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    data = tmp_path / "data"
    render_script(parse_script(SCRIPT, "restart.yaml"), data)
    s = Serve(data)
    yield s
    if s.proc is not None and s.proc.poll() is None:
        s.proc.kill()
        s.proc.wait()


def _sentence_starts(state: dict[str, Any]) -> list[float]:
    return [seg["start"] + c[0] for seg in state["segments"] for c in seg["captions"]]


async def _ask(url: str, text: str) -> None:
    async with Client(url.replace("http", "ws") + "/ws", mode="watch", briefing=BID) as viewer:
        await viewer.send(BriefingJoin(briefing_id=BID))
        await viewer.send(Question(briefing_id=BID, text=text))
        await viewer.until(
            lambda: any(n.kind == "question_received" for n in viewer.messages(Notice))
        )


def test_a_drained_live_briefing_goes_on_where_it_was(serve: Serve) -> None:
    serve.start()
    full = serve.get(f"/api/briefings/{BID}")
    starts = _sentence_starts(full)
    serve.post(f"/staff/briefings/{BID}/start")
    asyncio.run(_ask(serve.url, "資料はどこで見られますか？"))  # a viewer while live
    until(lambda: serve.get(f"/staff/briefings/{BID}")["position"] > 1.5)  # into the narration
    serve.stop(signal.SIGTERM)
    saved = json.loads((serve.data / "briefings" / "live" / f"{BID}.json").read_text())
    assert saved["drained"] is True and saved["timeline"]["state"] == "live"
    cut = saved["position"]
    assert 1.0 < cut < full["total"]

    serve.start()
    restarted = time.monotonic()
    state = serve.get(f"/staff/briefings/{BID}")
    since = time.monotonic() - restarted
    assert state["state"] == "live", state
    sentence = max(s for s in starts if s <= cut + 1e-6)
    # on the server's clock, minus nothing: from the start of the cut sentence, not from 0 and
    # not ahead by the seconds the server was away
    assert sentence - 0.05 <= state["position"] <= cut + since + 0.5, (state, cut, sentence)
    assert state["notice"]["kind"] == "resumed" and state["notice"]["down_s"] > 0
    questions = serve.get(f"/staff/briefings/{BID}/questions")["questions"]
    assert [q["text"] for q in questions] == ["資料はどこで見られますか？"]
    # the minutes of this run say it went through a restart and count the viewer of the first
    serve.post(f"/staff/briefings/{BID}/end")
    md = (
        urllib.request.urlopen(
            urllib.request.Request(
                f"{serve.url}/staff/briefings/{BID}/minutes",
                headers={"Authorization": f"Bearer {TOKEN}"},
            ),
            timeout=100 * WAIT,
        )
        .read()
        .decode()
    )
    assert "再起動 restart:" in md and "中断" not in md
    assert "オンライン online: 1名" in md
    serve.stop()


def test_a_briefing_killed_while_live_is_ended_as_interrupted_with_minutes(serve: Serve) -> None:
    serve.start()
    serve.post(f"/staff/briefings/{BID}/start")
    until(lambda: serve.get(f"/staff/briefings/{BID}")["position"] > 0.5)
    serve.stop(signal.SIGKILL)  # no drain: the last state saved is the start

    serve.start()
    state = serve.get(f"/staff/briefings/{BID}")
    assert state["state"] == "ended"
    assert state["interrupted"]["reason"] == "crashed"
    assert state["notice"]["kind"] == "interrupted"
    minutes = sorted((serve.data / "minutes").glob(f"{BID}-*.md"))
    assert len(minutes) == 1
    md = minutes[0].read_text(encoding="utf-8")
    assert "中断 interrupted:" in md and "再起動テストの説明会" in md
    # staff can run it again
    assert serve.post(f"/staff/briefings/{BID}/reset")["state"] == "scheduled"
    serve.stop()
