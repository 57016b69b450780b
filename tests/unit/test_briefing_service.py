"""The live briefing's messages: what a viewer is sent fits in one frame, however long the script."""

from __future__ import annotations


def test_a_long_briefing_sends_its_segments_by_http_so_every_frame_fits() -> None:
    from server.briefing.service import LiveBriefing
    from server.protocol.codes import MAX_FRAME_BYTES
    from server.protocol.messages import Briefing, decode

    def doc(n: int, chars: int) -> dict:
        seg = {
            "speaker": "a",
            "name": "n",
            "role": "r",
            "duration": 60.0,
            "pause_after": 1.0,
            "audio": "0" * 64,
            "audio_opus": None,
            "visemes": "1" * 64,
            "slide": {"title": "t", "bullets": ["箇条書き" * 40] * 12, "image": None, "alt": ""},
        }
        return {
            "id": "long",
            "title": "長い説明会",
            "date": "2024-01-02",
            "cast": [],
            "segments": [
                {**seg, "index": i, "start": 61.0 * i, "captions": [[0.0, 60.0, "字" * chars]]}
                for i in range(n)
            ],
        }

    short, long = LiveBriefing(doc(2, 100)), LiveBriefing(doc(40, 4000))
    assert "segments" in short.state_json(0.0, full=True)
    state = long.state_json(0.0, full=True)
    assert "segments" not in state and state["segments_url"] == "/api/briefings/long"
    frame = Briefing(state=state).encode()
    assert len(frame) < MAX_FRAME_BYTES
    assert decode(frame).state["segments_url"] == "/api/briefings/long"
