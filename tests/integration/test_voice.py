"""Voice through a real server and real WebSocket clients: who gets which frames, and when."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import struct
from collections.abc import AsyncIterator

import aiohttp
import numpy as np
import pytest

from server.keys import HALL, VOICE
from server.protocol.codes import CloseCode
from server.protocol.messages import AudioSubs, Hello, Voice, VoiceFrame, VoiceHeard
from tests.integration.client import WAIT, Client
from tests.integration.conftest import STAFF_TOKEN, RunningServer, StartServer

PACKET = bytes(range(61))  # about what Opus makes of 20 ms at 24 kbit/s

LOBBY = (0, 30.0, 25.0)
NEAR_LOBBY = (0, 32.0, 25.0)
BOOTH = (0, 75.0, 3.0)
IN_BOOTH = (0, 73.0, 2.0)
OUT_OF_BOOTH = (0, 68.0, 3.0)  # the corridor, 2 m past the booth's wall
QUIET = (0, 70.0, 43.0)
NEAR_QUIET = (0, 71.0, 43.0)
UPSTAIRS = (1, 20.0, 40.0)


def place(srv: RunningServer, c: Client, spot: tuple[int, float, float]) -> None:
    """Stand an avatar somewhere (the test's stage directions; the sockets are real)."""
    for inst in srv.app[HALL].instances:
        s = inst.sessions.get(c.avatar_id)
        if s is not None and s.resume_token == c.resume:
            inst.crowd.place(c.avatar_id, spot[0], spot[1], spot[2], 0.0)
            return
    raise AssertionError("no such avatar")


def frames_from(c: Client, speaker: Client) -> list[tuple[int, bytes]]:
    return [
        (seq, data)
        for m in c.messages(VoiceFrame)
        for who, seq, data in m.frames
        if who == speaker.avatar_id
    ]


@contextlib.asynccontextmanager
async def talking(
    c: Client, every: float = 0.02, megaphone: bool = False
) -> AsyncIterator[list[int]]:
    """Send a 20 ms packet every 20 ms while the block runs; yields the seqs sent so far."""
    sent: list[int] = []

    async def run() -> None:
        seq = 0
        while True:
            seq += 1
            await c.send(Voice(seq=seq, talking=True, megaphone=megaphone, data=PACKET))
            sent.append(seq)
            await asyncio.sleep(every)

    task = asyncio.create_task(run())
    try:
        yield sent
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def test_frames_reach_subscribers_only(server: RunningServer) -> None:
    async with (
        Client(server.ws, "話す人") as a,
        Client(server.ws, "近くの人") as near,
        Client(server.ws, "ブースの人") as booth,
        Client(server.ws, "静かな人") as quiet,
        Client(server.ws, "二階の人") as upstairs,
    ):
        place(server, a, LOBBY)
        place(server, near, NEAR_LOBBY)
        place(server, booth, BOOTH)
        place(server, quiet, QUIET)
        place(server, upstairs, UPSTAIRS)
        async with talking(a) as sent:
            await near.until(lambda: len(frames_from(near, a)) >= 25)
            await asyncio.sleep(10 * WAIT)
        got = frames_from(near, a)
        assert all(data == PACKET for _, data in got)
        seqs = [s for s, _ in got]
        assert seqs == sorted(seqs) and set(seqs) <= set(sent)
        subs = near.messages(AudioSubs)
        assert subs and subs[0].add[0][0] == a.avatar_id and 0.5 < subs[0].add[0][1] <= 1.0
        for other in (booth, quiet, upstairs, a):
            assert frames_from(other, a) == []
            assert not any(a.avatar_id in [i for i, _ in m.add] for m in other.messages(AudioSubs))


async def test_a_listener_who_leaves_a_booth_stops_getting_its_frames_within_200_ms(
    server: RunningServer,
) -> None:
    loop = asyncio.get_running_loop()
    async with Client(server.ws, "相談員") as a, Client(server.ws, "相談者") as b:
        place(server, a, BOOTH)
        place(server, b, IN_BOOTH)
        arrivals: list[float] = []
        seen = 0

        def count() -> bool:
            nonlocal seen
            n = len(frames_from(b, a))
            if n > seen:
                arrivals.append(loop.time())
                seen = n
            return False

        async with talking(a):
            await b.until(lambda: len(frames_from(b, a)) >= 10)
            seen = len(frames_from(b, a))
            left_at = loop.time()
            place(server, b, OUT_OF_BOOTH)
            with contextlib.suppress(AssertionError):
                await b.until(count, timeout=20 * WAIT)  # 1 s more of A talking
        last = max(arrivals, default=left_at)
        assert last - left_at <= 0.2, f"frames kept coming {last - left_at:.3f} s after leaving"
        assert any(a.avatar_id in m.remove for m in b.messages(AudioSubs))


async def test_a_quiet_zone_speakers_frames_are_dropped(server: RunningServer) -> None:
    voice = server.app[VOICE]
    async with Client(server.ws, "静か") as a, Client(server.ws, "隣") as b:
        place(server, a, QUIET)
        place(server, b, NEAR_QUIET)
        async with talking(a):
            await b.until(lambda: voice.counters.dropped_quiet >= 20)
        assert frames_from(b, a) == []
        # and the same two, out in the lobby, hear each other
        place(server, a, LOBBY)
        place(server, b, NEAR_LOBBY)
        async with talking(a):
            await b.until(lambda: len(frames_from(b, a)) >= 5)


async def test_a_flooding_sender_is_closed_alone(server: RunningServer) -> None:
    async with Client(server.ws, "洪水") as a, Client(server.ws, "隣人") as b:
        place(server, a, LOBBY)
        place(server, b, NEAR_LOBBY)
        frame = Voice(seq=1, talking=True, megaphone=False, data=PACKET).encode()
        with contextlib.suppress(Exception):
            for _ in range(400):
                await a.send_raw(frame)
        code, reason = await a.closed()
        assert code == CloseCode.FLOOD and "voice frames" in reason
        before = b.snapshots
        await b.until(lambda: b.snapshots >= before + 10)
        assert b.close_code is None


async def test_oversized_and_muted_frames_are_dropped_and_counted(server: RunningServer) -> None:
    voice = server.app[VOICE]
    async with Client(server.ws, "大声") as a, Client(server.ws, "聞く") as b:
        place(server, a, LOBBY)
        place(server, b, NEAR_LOBBY)
        for seq in range(1, 6):
            await a.send(Voice(seq=seq, talking=True, megaphone=False, data=bytes(401)))
        await b.until(lambda: voice.counters.dropped_big >= 5)
        inst = server.app[HALL].instances[0]
        async with aiohttp.ClientSession() as http:
            r = await http.post(
                f"{server.http}/staff/voice/mute",
                json={"instance": inst.id, "avatar": a.avatar_id, "muted": True},
                headers={"Authorization": f"Bearer {STAFF_TOKEN}"},
            )
            assert r.status == 200
            refused = await http.post(
                f"{server.http}/staff/voice/mute",
                json={"instance": inst.id, "avatar": a.avatar_id},
            )
            assert refused.status == 401
        async with talking(a):
            await b.until(lambda: voice.counters.dropped_muted >= 10)
        assert frames_from(b, a) == []


async def test_the_megaphone_is_for_staff_only(server: RunningServer) -> None:
    async with (
        Client(server.ws, "係員", staff=STAFF_TOKEN) as host,
        Client(server.ws, "住民") as resident,
        Client(server.ws, "二階") as upstairs,
    ):
        place(server, host, LOBBY)
        place(server, resident, LOBBY[:1] + (40.0, 25.0))
        place(server, upstairs, UPSTAIRS)
        async with talking(resident, megaphone=True):
            await host.until(lambda: len(frames_from(host, resident)) >= 10)
        assert frames_from(upstairs, resident) == []  # not staff: an ordinary voice
        async with talking(host, megaphone=True):
            await upstairs.until(lambda: len(frames_from(upstairs, host)) >= 10)
        subs = [g for m in upstairs.messages(AudioSubs) for i, g in m.add if i == host.avatar_id]
        assert subs and subs[0] == 1.0


async def test_a_watch_only_viewer_hears_the_stage(server: RunningServer) -> None:
    async with (
        Client(server.ws, "委員") as member,
        Client(server.ws, "ロビー") as lobby,
        Client(server.ws, "視聴者", mode="watch") as viewer,
    ):
        place(server, member, (1, 20.0, 3.0))  # the committee stage
        place(server, lobby, LOBBY)
        async with talking(member):
            await viewer.until(lambda: len(frames_from(viewer, member)) >= 10)
        assert frames_from(lobby, member) == []
        assert server.app[HALL].population == 2  # the viewer took no place


async def test_a_speaker_in_a_booth_is_told_only_its_members_hear_them(
    server: RunningServer,
) -> None:
    async with (
        Client(server.ws, "相談員") as a,
        Client(server.ws, "相談者") as b,
        Client(server.ws, "廊下") as c,
    ):
        place(server, a, BOOTH)
        place(server, b, IN_BOOTH)
        place(server, c, OUT_OF_BOOTH)  # 5 m away, but outside the booth's walls
        async with talking(a):
            await a.until(lambda: any(m.count for m in a.messages(VoiceHeard)))
            heard = [m for m in a.messages(VoiceHeard) if m.count][-1]
            assert (heard.count, heard.ids) == (1, [b.avatar_id])
            place(server, b, OUT_OF_BOOTH[:2] + (5.0,))
            await a.until(lambda: a.messages(VoiceHeard)[-1].count == 0)
        assert not any(c.avatar_id in m.ids for m in a.messages(VoiceHeard))


def _masked_binary_frame(payload: bytes) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    head = bytes((0x82, 0x80 | n)) if n < 126 else struct.pack("!BBH", 0x82, 0x80 | 126, n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


@pytest.mark.timeout(30)
async def test_a_stalled_listener_delays_no_one_elses_audio(start_server: StartServer) -> None:
    srv = await start_server(send_buffer_limit=2048, socket_send_buffer=4096, slow_limit=60.0)
    voice = srv.app[VOICE]
    loop = asyncio.get_running_loop()
    async with Client(srv.ws, "話す") as a, Client(srv.ws, "聞く") as b:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, ("127.0.0.1", srv.port))
            key = base64.b64encode(os.urandom(16)).decode()
            await loop.sock_sendall(
                sock,
                (
                    f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                    f"Sec-WebSocket-Version: 13\r\n\r\n"
                ).encode(),
            )
            head = await loop.sock_recv(sock, 1024)
            assert head.startswith(b"HTTP/1.1 101"), head
            hello = Hello(version=1, name="止まった", resume=None, opts={}).encode()
            await loop.sock_sendall(sock, _masked_binary_frame(hello))
            inst = srv.app[HALL].instances[0]
            await b.until(lambda: len(inst.sessions) == 3)
            stalled = next(s for s in inst.sessions.values() if s.name == "止まった")
            place(srv, a, LOBBY)
            place(srv, b, NEAR_LOBBY)
            inst.crowd.place(stalled.avatar_id, 0, 31.0, 26.0, 0.0)
            # ...and it never reads again. Meanwhile B notes when each of A's frames arrives.
            arrivals: list[float] = []
            seen = 0

            def note() -> bool:
                nonlocal seen
                n = len(frames_from(b, a))
                arrivals.extend([loop.time()] * (n - seen))
                seen = n
                return voice.counters.dropped_slow >= 50 and n >= 100

            async with talking(a):
                await b.until(note, timeout=300 * WAIT)
            assert voice.counters.dropped_slow >= 50  # the stalled one was skipped, not queued
            gaps = [t1 - t0 for t0, t1 in zip(arrivals, arrivals[1:], strict=False)]
            assert max(gaps) < 0.2, f"B waited {max(gaps):.3f} s for A's audio"
            assert b.close_code is None
        finally:
            sock.close()


NARRATED = """\
format: emachi-briefing/1
id: voice-stage-gain
title: ナレーションの届き方
date: 2024-01-02
cast:
  - {avatar: chair, role: 委員長, name: 委員長, voice: ja-openjtalk, speed: 1.0}
  - {avatar: clerk, role: 事務局, name: 事務局, voice: ja-openjtalk, speed: 1.0}
segments:
  - speaker: chair
    slide: {title: 一枚目, bullets: [声]}
    narration: はじめます。
    pause_after: 30
  - speaker: clerk
    slide: {title: 二枚目, bullets: [声]}
    narration: つづけます。
    pause_after: 30
"""
AUDITORIUM_CORNER = (1, 2.0, 24.0)  # 23.8 m from the chair's spot: past the voice, in the PA
ON_STAGE = (1, 14.0, 5.5)  # 2 m in front of the chair's spot (14, 3.5); 4.5 m from the clerk's
AT_TABLE = (1, 51.0, 7.0)  # table 1: an isolated zone on the stage's floor


def stage_gain(c: Client) -> float | None:
    """The narration's gain the server last told ``c``, or None if it never did."""
    told = [m.stage for m in c.messages(AudioSubs) if m.stage is not None]
    return told[-1] if told else None


async def test_each_listener_is_told_the_narrations_gain_by_the_servers_rules(
    server: RunningServer,
) -> None:
    """While a briefing runs, every avatar is told how loud its narration is where they stand:
    the PA gain across the auditorium, by distance from the speaking presenter's spot on the
    stage (and again when the next presenter speaks, or they walk), nothing at a table, in a
    booth or in a quiet zone. A watch-only viewer is told nothing: its page plays it plainly."""
    from server.briefing.render import render_script
    from server.briefing.script import parse_script

    await asyncio.to_thread(
        render_script, parse_script(NARRATED, "narrated.yaml"), server.config.data_dir
    )
    bid = "voice-stage-gain"
    async with (
        Client(server.ws, "客席の人") as corner,
        Client(server.ws, "舞台の人") as front,
        Client(server.ws, "テーブルの人") as table,
        Client(server.ws, "ブースの人") as booth,
        Client(server.ws, "静かな人") as quiet,
        Client(server.ws, "視聴者", mode="watch", briefing=bid) as viewer,
    ):
        for c, spot in ((corner, AUDITORIUM_CORNER), (front, ON_STAGE), (table, AT_TABLE),
                        (booth, IN_BOOTH), (quiet, QUIET)):  # fmt: skip
            place(server, c, spot)
        avatars = (corner, front, table, booth, quiet)
        inst = server.app[HALL].instances[0]
        every = server.app[VOICE].every
        seen = inst.tick
        await corner.until(lambda: inst.tick >= seen + 3 * every)  # three voice updates
        assert all(stage_gain(c) is None for c in avatars)  # no briefing: nothing to tell

        async with aiohttp.ClientSession() as http:

            async def staff(action: str, body: object = None) -> None:
                url = f"{server.http}/staff/briefings/{bid}/{action}"
                headers = {"Authorization": f"Bearer {STAFF_TOKEN}"}
                async with http.post(url, json=body, headers=headers) as r:
                    assert r.status == 200, (action, await r.text())

            await staff("start")
            for c in avatars:
                await c.until(lambda c=c: stage_gain(c) is not None)
            assert stage_gain(corner) == pytest.approx(0.5)  # the PA, 23.8 m away
            assert stage_gain(front) == pytest.approx(1.0)  # 2 m: within the reference distance
            assert stage_gain(table) == 0.0
            assert stage_gain(booth) == 0.0
            assert stage_gain(quiet) == 0.0

            await staff("seek", {"segment": 1})  # the clerk speaks, from (18, 3.5)
            await front.until(lambda: stage_gain(front) != pytest.approx(1.0))
            assert stage_gain(front) == pytest.approx(2.0 / np.hypot(4.0, 2.0), rel=1e-3)
            place(server, table, AUDITORIUM_CORNER)  # walks from the table into the hall
            await table.until(lambda: stage_gain(table) == pytest.approx(0.5))
            assert stage_gain(corner) == pytest.approx(0.5)  # told once: it did not change
            assert len([m for m in corner.messages(AudioSubs) if m.stage is not None]) == 1
            await staff("end")
        assert not [m for m in viewer.messages(AudioSubs) if m.stage is not None]
