"""The voice relay's hand-packed VOICE_FRAME is the message's encoding; the JS builder agrees."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.protocol.messages import AudioSubs, Voice, VoiceFrame, decode
from server.voice.relay import _packb, pack_batch
from tests.unit.test_protocol_mirror import _run_js, node  # noqa: F401 (the fixture)


@pytest.mark.parametrize("n", [0, 1, 15, 16, 300])
def test_a_batch_packed_from_shared_frames_is_the_voice_frame_message(n: int) -> None:
    frames = [[i % 7, 1000 + i, bytes([i % 256]) * (i % 70)] for i in range(n)]
    packed = pack_batch([_packb(f) for f in frames])
    assert packed == VoiceFrame(frames).encode()
    assert decode(packed) == VoiceFrame(frames)


def test_js_voice_builder_makes_what_the_server_decodes(node: str, tmp_path: Path) -> None:  # noqa: F811
    script = """
const p = await import(client + '/protocol.js');
const bytes = p.encodeMessage(p.voice(42, true, false, new Uint8Array([1, 2, 3])));
console.log(JSON.stringify(Buffer.from(bytes).toString('hex')));
"""
    got = _run_js(node, script, None, tmp_path)
    assert isinstance(got, str)
    assert bytes.fromhex(got) == Voice(42, True, False, b"\x01\x02\x03").encode()


def test_js_reads_the_narrations_gain_from_audio_subs(node: str, tmp_path: Path) -> None:  # noqa: F811
    """The stage field of AUDIO_SUBS (the briefing narration's gain) reaches the page by name,
    and a message without a new gain gives null."""
    script = """
const p = await import(client + '/protocol.js');
const out = input.map((hex) => { const m = p.decodeMessage(Buffer.from(hex, 'hex'));
  return [m.name, m.add, m.remove, m.stage]; });
console.log(JSON.stringify(out));
"""
    frames = [AudioSubs([], [], 0.5).encode().hex(), AudioSubs([[3, 0.25]], [4]).encode().hex()]
    got = _run_js(node, script, frames, tmp_path)
    assert got == [["AUDIO_SUBS", [], [], 0.5], ["AUDIO_SUBS", [[3, 0.25]], [4], None]]
