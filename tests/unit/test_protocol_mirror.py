"""clients/web/protocol.js mirrors server/protocol/codes.py: same message types, close codes, version."""

from __future__ import annotations

import re
from pathlib import Path

from server.protocol.codes import (
    CLOSE_REASONS,
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    CloseCode,
    MsgType,
)

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
