"""The voice relay's hand-packed VOICE_FRAME is the message's encoding; the JS builder agrees."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.protocol.messages import AudioSubs, Voice, VoiceFrame, decode
from server.voice.relay import _packb, encode_subs, pack_batch, with_stage
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


def test_audio_subs_encoded_from_the_changes_are_the_message() -> None:
    """``encode_subs`` (one compiled pass over the changes' arrays) gives each row the bytes of
    ``AudioSubs(add, remove).encode()``, and ``with_stage`` those with a stage gain; ids in
    every MessagePack int width, and lists past 15 entries."""
    import numpy as np

    from world.audibility import Changes, Selection, changes

    rng = np.random.default_rng(3)
    widths = [0, 5, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**40]
    for k in (3, 8, 20):
        n = 50
        pool = np.array(sorted(set(widths) | set(rng.integers(0, 70000, 40).tolist())))

        def sel(n: int, k: int, pool: np.ndarray) -> Selection:
            ids = np.full((n, k), -1, np.int64)
            gains = np.zeros((n, k), np.float32)
            for r in range(n):
                m = int(rng.integers(0, k + 1))
                ids[r, :m] = np.sort(rng.choice(pool, m, replace=False))
                gains[r, :m] = rng.choice([1.0, 0.5, 0.3333, 1e-3, 0.01], m) * rng.uniform(
                    0.5, 1, m
                )
            return Selection(ids, gains)

        out, _ = changes(sel(n, k, pool), sel(n, k, pool))
        assert isinstance(out, Changes) and len(out) > 10
        data, off = encode_subs(out)
        for at, ch in enumerate(out):
            msg = data[off[at] : off[at + 1]]
            assert msg == AudioSubs([[i, g] for i, g in ch.add], ch.remove).encode()
            assert (
                with_stage(msg, 0.1234)
                == AudioSubs([[i, g] for i, g in ch.add], ch.remove, 0.1234).encode()
            )


def test_each_listeners_batch_packed_at_once_is_pack_batch_of_its_speakers_frames() -> None:
    """``_pack_rows`` gives each listener with frames ``pack_batch`` of its speakers' frames,
    speakers in the order they first spoke (their index), 0 to past 15 frames."""
    import numpy as np

    from server.voice.relay import _HEAD_U8, _pack_rows

    rng = np.random.default_rng(5)
    cap, k = 40, 8
    order = rng.permutation(cap)[:25]  # the speakers with frames, in the order they spoke
    frames = {
        int(s): [
            _packb([int(s), q, bytes(int(rng.integers(0, 80)))])
            for q in range(int(rng.integers(1, 6)))
        ]
        for s in order
    }
    pidx = np.full(cap + 1, -1, np.int64)
    pidx[order] = np.arange(len(order))
    parts = [b"".join(frames[int(s)]) for s in order]
    part_off = np.zeros(len(parts) + 1, np.int64)
    np.cumsum([len(x) for x in parts], out=part_off[1:])
    subs = np.full((30, k), cap, np.intp)
    for r in range(30):
        m = int(rng.integers(0, k + 1))
        subs[r, :m] = np.sort(rng.choice(cap, m, replace=False))
    counts = np.array([len(frames[int(s)]) for s in order], np.int64)
    joined = np.frombuffer(b"".join(parts), np.uint8)
    rows, off, nframes, buf = _pack_rows(subs, pidx, joined, part_off, counts, _HEAD_U8)
    data = buf.tobytes()
    want_rows = []
    for r in range(30):
        mine = sorted((int(pidx[s]), int(s)) for s in subs[r] if pidx[s] >= 0)
        elems = [e for _, s in mine for e in frames[s]]
        if elems:
            want_rows.append(r)
            j = len(want_rows) - 1
            assert data[off[j] : off[j + 1]] == pack_batch(elems)
            assert nframes[j] == len(elems)
    assert rows.tolist() == want_rows
    assert max(nframes) >= 16
