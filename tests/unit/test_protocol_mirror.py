"""clients/web/protocol.js mirrors server/protocol/codes.py: same message types, close codes, version."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from server.protocol.codes import (
    CLOSE_REASONS,
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    CloseCode,
    MsgType,
)
from server.protocol.messages import Ack, Chat, Hello, Input, Snapshot, decode
from server.protocol.snapshot import encode_sections
from tests.tools import missing, require

PROTOCOL_JS = Path(__file__).resolve().parents[2] / "clients" / "web" / "protocol.js"


def _frozen_table(source: str, name: str) -> dict[str, int]:
    m = re.search(rf"export const {name} = Object\.freeze\(\{{(.*?)\}}\);", source, re.S)
    assert m, f"{PROTOCOL_JS}: no `export const {name} = Object.freeze({{...}})`"
    body = re.sub(r"//[^\n]*", "", m.group(1))
    return {k: int(v) for k, v in re.findall(r"([A-Z_][A-Z0-9_]*)\s*:\s*(\d+)", body)}


def test_message_types_agree() -> None:
    js = _frozen_table(PROTOCOL_JS.read_text(encoding="utf-8"), "MsgType")
    assert js == {m.name: int(m) for m in MsgType}


def test_close_codes_agree() -> None:
    js = _frozen_table(PROTOCOL_JS.read_text(encoding="utf-8"), "CloseCode")
    assert js == {c.name: int(c) for c in CloseCode}


def test_close_reasons_agree() -> None:
    source = PROTOCOL_JS.read_text(encoding="utf-8")
    m = re.search(r"export const CLOSE_REASONS = Object\.freeze\(\{(.*?)\}\);", source, re.S)
    assert m, f"{PROTOCOL_JS}: no CLOSE_REASONS table"
    js = dict(re.findall(r"\[CloseCode\.([A-Z_]+)\]:\s*'([^']*)'", m.group(1)))
    assert js == {c.name: reason for c, reason in CLOSE_REASONS.items()}


def test_version_and_frame_limit_agree() -> None:
    source = PROTOCOL_JS.read_text(encoding="utf-8")
    assert re.search(rf"export const PROTOCOL_VERSION = {PROTOCOL_VERSION};", source)
    m = re.search(r"export const MAX_FRAME_BYTES = ([\d\s*]+);", source)
    assert m and eval(m.group(1), {}) == MAX_FRAME_BYTES  # noqa: S307 - digits and * only


# ---- the JS codec against the Python one (node >= 18: Debian 12's; required, see tests/tools.py) ----

CLIENT = PROTOCOL_JS.parent
NODE_MIN = (18, 0)


@pytest.fixture(scope="module")
def node() -> str:
    """Node.js, which runs the browser's codec modules as they are."""
    exe = require("node")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False).stdout
    m = re.match(r"v(\d+)\.(\d+)", out)
    if not m or (int(m.group(1)), int(m.group(2))) < NODE_MIN:
        missing(f"node >= {NODE_MIN[0]}.{NODE_MIN[1]} (found {out.strip() or 'nothing'} at {exe})")
    return exe


def _run_js(node: str, script: str, data: object, tmp_path: Path) -> object:
    """Run an ES module with the client's modules importable from ``client``; JSON in, JSON out.

    The client's ``.js`` files are ES modules with no package.json beside them; a copy in a
    folder marked ``"type": "module"`` lets every node from 18 on load them as the browser does.
    """
    client = tmp_path / "client"
    client.mkdir()
    (client / "package.json").write_text('{"type": "module"}')
    for f in CLIENT.glob("*.js"):
        shutil.copy(f, client / f.name)
    (tmp_path / "in.json").write_text(json.dumps(data))
    (tmp_path / "run.mjs").write_text(
        f"import * as fs from 'node:fs';\n"
        f"const input = JSON.parse(fs.readFileSync({json.dumps(str(tmp_path / 'in.json'))}, 'utf8'));\n"
        f"const client = {json.dumps(client.as_uri())};\n" + script
    )
    out = subprocess.run(
        [node, str(tmp_path / "run.mjs")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_js_builds_what_the_server_decodes(node: str, tmp_path: Path) -> None:
    """Same messages as the Python classes; same bytes except that JS packs a whole float as an
    integer (1.0 as 1), which the server's decoder takes as the float."""
    script = """
const p = await import(client + '/protocol.js');
const frames = [
  p.encodeMessage(p.input(3, 7, 0.5, -0.25, 1.0)),
  p.encodeMessage(p.hello('あ', null, { mode: 'avatar' })),
  p.encodeMessage(p.chat(1, 'こんにちは')),
  p.encodeMessage(p.ack(123456)),
];
console.log(JSON.stringify(frames.map((b) => Buffer.from(b).toString('hex'))));
"""
    got = _run_js(node, script, None, tmp_path)
    want = [
        Input(seq=3, ack_tick=7, mx=0.5, mz=-0.25, yaw=1.0).encode(),
        Hello(version=PROTOCOL_VERSION, name="あ", resume=None, opts={"mode": "avatar"}).encode(),
        Chat(scope=1, text="こんにちは").encode(),
        Ack(tick=123456).encode(),
    ]
    assert isinstance(got, list)
    assert [decode(bytes.fromhex(g)) for g in got] == [decode(w) for w in want]
    assert got[1:] == [w.hex() for w in want[1:]]


def test_js_rebuilds_the_views_the_server_encodes(node: str, tmp_path: Path) -> None:
    """A random walk of 12 avatars (some leave, some enter, some jump), each snapshot encoded
    against an older acknowledged tick, decoded by the browser's SnapshotStore: same views."""
    rng = np.random.default_rng(7)
    n = 12
    pos = rng.uniform(0, 5000, (n, 2)).astype(np.int64)
    yaw = rng.integers(0, 256, n)
    floor = np.zeros(n, np.int64)
    views: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    frames: list[str] = []
    for tick in range(1, 41):
        pos += rng.integers(-60, 61, (n, 2))
        pos[rng.random(n) < 0.05] += 400  # a jump past int8: sent in full
        yaw = (yaw + rng.integers(-3, 4, n) * (rng.random(n) < 0.5)) % 256
        floor[rng.random(n) < 0.03] ^= 1
        present = rng.random(n) > 0.15
        ids = np.flatnonzero(present).astype(np.uint16)
        q = np.stack([floor[ids], yaw[ids], pos[ids, 0], pos[ids, 1]], 1).astype(np.int32)
        views[tick] = (ids, q)
        base = 0 if tick == 1 else int(rng.integers(max(1, tick - 5), tick))
        ids_b, q_b = views.get(base, (np.empty(0, np.uint16), np.empty((0, 4), np.int32)))
        full, move, turn_move, turn, left, entered = encode_sections(ids, q, ids_b, q_b)
        info = [[int(i), f"p{i}", 0x336699 + int(i)] for i in entered.tolist()]
        snap = Snapshot(
            tick=tick,
            base_tick=base,
            last_seq=tick,
            server_time=1000.0 * tick,
            full=full,
            move=move,
            turn_move=turn_move,
            turn=turn,
            left=left,
            info=info,
            crowd=0,
        )
        frames.append(snap.encode().hex())
    script = """
const p = await import(client + '/protocol.js');
const { SnapshotStore } = await import(client + '/SnapshotStore.js');
const store = new SnapshotStore();
const out = [];
for (const hex of input) {
  const msg = p.decodeMessage(Buffer.from(hex, 'hex'));
  const state = store.apply(msg);
  out.push([...state.values()].sort((a, b) => a.id - b.id).map((r) => [r.id, r.floor, r.yaw, r.x, r.z]));
}
console.log(JSON.stringify({ views: out, names: [...store.people].map(([id, w]) => [id, w.name]) }));
"""
    got = _run_js(node, script, frames, tmp_path)
    assert isinstance(got, dict)
    for tick, view in enumerate(got["views"], start=1):
        ids, q = views[tick]
        want = [[int(i), *map(int, row)] for i, row in zip(ids.tolist(), q.tolist(), strict=True)]
        assert view == want, f"tick {tick}"
    assert all(name == f"p{i}" for i, name in got["names"])


def test_a_frame_of_an_unknown_type_is_refused(node: str, tmp_path: Path) -> None:
    script = """
const p = await import(client + '/protocol.js');
const { encode } = await import(client + '/msgpack.js');
let error = null;
try { p.decodeMessage(encode([63, 1, 2])); } catch (e) { error = e.message; }
console.log(JSON.stringify(error));
"""
    assert "unknown message type 63" in str(_run_js(node, script, None, tmp_path))
