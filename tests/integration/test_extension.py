"""The extension points work as docs/architecture.md says: its example feature, taken from the
page as it is written, mounted on a real server (and nothing else of ours), checked with real
WebSocket clients."""

from __future__ import annotations

import re
import types
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from server import features
from server.protocol.codes import CloseCode
from server.protocol.messages import Error, Notice, Question

from .client import Client
from .conftest import RunningServer, StartServer

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def example_feature() -> types.ModuleType:
    """The first Python block after "### A feature, complete", as a module."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("### A feature, complete") :]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found, "docs/architecture.md: the example feature's code block is missing"
    mod = types.ModuleType("desk")
    exec(compile(found.group(1), str(DOC), "exec"), mod.__dict__)
    return mod


@pytest.fixture
async def desk(monkeypatch: pytest.MonkeyPatch, start_server: StartServer) -> RunningServer:
    # the example answers QUESTION, which the briefing feature would take: mount it alone
    monkeypatch.setattr(features, "SETUPS", [example_feature().setup])
    return await start_server()


async def test_a_hello_hook_refuses_a_name_with_a_close_code_and_a_reason(
    desk: RunningServer,
) -> None:
    with pytest.raises(ConnectionClosed) as closed:
        await Client(desk.ws, name="Staff 田中").connect()
    rcvd = closed.value.rcvd
    assert rcvd is not None and rcvd.code == CloseCode.UNAUTHORIZED
    assert rcvd.reason == "this name is kept for staff; choose another"
    ok = Client(desk.ws, name="田中")
    await ok.connect()
    await ok.close()


async def test_join_tick_and_message_hooks_answer_a_resident(desk: RunningServer) -> None:
    a, b = Client(desk.ws, name="あ"), Client(desk.ws, name="い")
    await a.connect()  # fails unless WELCOME is the first frame: the join hook's greeting follows
    await b.connect()
    try:
        await a.until(lambda: any(n.kind == "desk_welcome" for n in a.messages(Notice)))

        def answers() -> list[dict[str, int]]:
            return [n.data["people"] for n in a.messages(Notice) if n.kind == "desk_answer"]

        async def ask() -> bool:
            await a.send(Question(briefing_id="desk", text="何人いますか"))
            before = len(answers())
            await a.until(lambda: len(answers()) > before)
            return answers()[-1].get("1f") == 2

        # the tick hook counts once a second: ask until the count has both avatars
        for _ in range(30):
            if await ask():
                break
        assert answers()[-1] == {"1f": 2, "2f": 0}
        await a.send(Question(briefing_id="elsewhere", text="?"))
        await a.until(lambda: any(e.code == "desk_unknown" for e in a.messages(Error)))
    finally:
        await a.close()
        await b.close()
