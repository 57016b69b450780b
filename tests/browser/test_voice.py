"""Spatial voice in real Chromium: a fake microphone plays a tone, the page encodes it with
WebCodecs, the server relays it, another page decodes and spatialises it, and the level is read
from an AnalyserNode after the panner and the gain, averaged over 1.5 s.

Each speaker is a Chromium of its own (``--use-file-for-fake-audio-capture`` is per browser):
A sings 440 Hz, C 660 Hz, so their voices are told apart by the FFT peaks of the mix. Capture
processing (echo cancellation, noise suppression, gain control) is off for the tests, or the
canceller and the suppressor would eat a steady tone. The server runs in this process, in a
thread, so the test can stand avatars where it needs them (as the integration tests do) and read
the relay's counters.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
import wave
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web

from server.app import create_app
from server.briefing.render import render_script
from server.briefing.script import parse_script
from server.config import Config
from server.keys import HALL, VOICE
from tests.browser.chromium import CHROMIUM
from tests.browser.conftest import (
    CHROMIUM_ARGS,
    PHONE,
    TEST_FLAG,
    WAIT,
    PageProblems,
    join,
    wait_for,
)

RATE = 44100  # what a laptop microphone often gives: the capture worklet resamples to 48 kHz
MEASURE_MS = 1500
HEARD = 0.01  # RMS after panner and gain: a voice heard at a few metres is about 0.1, silence 0
SILENT = 0.002
NEAR_IN_CORRIDOR = ((0, 66.0, 3.0), (0, 68.0, 3.0))  # both in the open corridor, 2 m apart
IN_BOOTH = (0, 73.0, 2.0)  # booth 1, 7 m from the listener in the corridor, behind its wall
LOBBY = ((0, 30.0, 25.0), (0, 32.0, 25.0), (0, 31.0, 27.0))
ON_STAGE = (1, 20.0, 3.0)
AUDITORIUM_CORNER = (1, 2.0, 24.0)  # 27 m from the stage: beyond its voice, inside its PA
BRIEFING = """\
format: emachi-briefing/1
id: voice-briefing
title: 声のテストの説明会
date: 2024-01-02
cast:
  - {avatar: chair, role: 委員長, name: 委員長, voice: ja-openjtalk, speed: 1.0}
segments:
  - speaker: chair
    slide: {title: 一枚目, bullets: [声]}
    narration: はじめます。
    pause_after: 0
"""
NARRATED = """\
format: emachi-briefing/1
id: voice-narrated
title: ナレーションの説明会
date: 2024-01-02
cast:
  - {avatar: chair, role: 委員長, name: 委員長, voice: ja-openjtalk, speed: 1.0}
segments:
  - speaker: chair
    slide: {title: 一枚目, bullets: [声]}
    narration: >-
      本日はお集まりいただきありがとうございます。これから説明会をはじめます。
      お手元の資料をご覧ください。質問は最後にまとめてお受けします。
    pause_after: 0
"""
AT_TABLE = (1, 51.0, 7.0)  # table 1 of the recruiting hall: an isolated zone on the stage's floor
TEST_OPTIONS = "window.emachiVoiceTest = { processing: false };"

pytestmark = pytest.mark.timeout(180)


def tone(path: Path, hz: float, seconds: float = 10.0) -> Path:
    """A stereo 16-bit WAV of a sine at ``hz`` (half of full scale), as a fake microphone plays it."""
    t = np.arange(int(RATE * seconds)) / RATE
    s = (0.5 * np.sin(2 * np.pi * hz * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.repeat(s, 2).tobytes())
    return path


class ThreadServer:
    """An emachi app on its own event loop in a thread (port 0), reachable from the test."""

    def __init__(
        self, data: Path, ssl_context: ssl.SSLContext | None = None, host: str = "127.0.0.1"
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.data = data
        self.app = create_app(Config(port=0, data_dir=data, staff_token="voice-test"))
        self.runner = web.AppRunner(self.app, shutdown_timeout=1.0)
        self.run(self.runner.setup())
        self.site = web.TCPSite(self.runner, host, 0, ssl_context=ssl_context)
        self.run(self.site.start())
        self.port = self.runner.addresses[0][1]
        self.url = f"{'https' if ssl_context else 'http'}://127.0.0.1:{self.port}"

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=40 * WAIT)

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the server's loop (between ticks) and return what it returns."""
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def go() -> None:
            try:
                done.set_result(fn())
            except Exception as e:  # noqa: BLE001 - handed to the test thread
                done.set_exception(e)

        self.loop.call_soon_threadsafe(go)
        return done.result(timeout=40 * WAIT)

    def place(self, page: Any, spot: tuple[int, float, float]) -> None:
        avatar = page.evaluate("window.emachi.state().avatarId")

        def go() -> None:
            for inst in self.app[HALL].instances:
                if avatar in inst.sessions:
                    inst.crowd.place(avatar, spot[0], spot[1], spot[2], 0.0)
                    return
            raise AssertionError(f"no avatar {avatar}")

        self.call(go)

    def frames_in(self) -> int:
        return int(self.call(lambda: self.app[VOICE].counters.frames_in))

    def stop(self) -> None:
        self.run(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=20 * WAIT)
        self.loop.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    s = ThreadServer(tmp_path_factory.mktemp("voice") / "data")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def tones(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("tones")
    return {"A": tone(d / "a440.wav", 440.0), "C": tone(d / "c660.wav", 660.0)}


def media_args(wav: Path | None, fake_ui: bool = True) -> list[str]:
    args = [
        *CHROMIUM_ARGS,
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-device-for-media-stream",
    ]
    if fake_ui:
        args.append("--use-fake-ui-for-media-stream")  # "allow" without a prompt
    if wav is not None:
        args.append(f"--use-file-for-fake-audio-capture={wav}")
    return args


@pytest.fixture(scope="module")
def browsers(tones: dict[str, Path]) -> Iterator[dict[str, Any]]:
    """A and C: speakers with their tones; 'plain': a listener whose browser refuses the mic."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launch = lambda args: pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)  # noqa: E731
        out = {
            "A": launch(media_args(tones["A"])),
            "C": launch(media_args(tones["C"])),
            "plain": launch(media_args(None, fake_ui=False)),
        }
        out["pw"] = pw
        yield out
        for k in ("A", "C", "plain"):
            out[k].close()


@pytest.fixture
def pages(browsers: dict[str, Any], server: ThreadServer) -> Iterator[Callable[..., Any]]:
    """``pages(kind, url=None, phone=False, srv=server)``: a page in browser ``kind`` (or a
    browser) with the test options, once its first frame is drawn; the test fails if any page
    logged an error or threw."""
    opened: list[tuple[Any, PageProblems]] = []

    def open_(kind: Any, url: str | None = None, *, phone: bool = False, srv: Any = server) -> Any:
        b = browsers[kind] if isinstance(kind, str) else kind
        size = PHONE if phone else {"width": 320, "height": 240}
        ctx = b.new_context(
            viewport=size, has_touch=phone, is_mobile=phone, device_scale_factor=1, locale="ja-JP"
        )
        ctx.add_init_script(TEST_FLAG)  # the page's test hooks (window.emachi)
        ctx.add_init_script(TEST_OPTIONS)
        page = ctx.new_page()
        problems = PageProblems()
        page.on("console", lambda m: problems.console(m))
        page.on("pageerror", lambda e: problems.page_error(e))
        target = url or srv.url + "/"
        if target.startswith("http://") and not target.startswith(srv.url):
            # a page at a LAN address over plain http is no secure context: Chromium says it
            # ignores the server's Cross-Origin-Opener-Policy there (what that test is about)
            problems.expected.append(
                re.compile(r"Cross-Origin-Opener-Policy header has been ignored")
            )
        opened.append((ctx, problems))
        page.goto(target)
        wait_for(page, "window.emachi && window.emachi.state().frames > 0", timeout=80 * WAIT)
        return page

    yield open_
    errors = [e for _, p in opened for e in p.errors]
    for ctx, _ in opened:
        ctx.close()
    assert not errors, "the pages logged errors:\n" + "\n".join(errors)


def mic_on(page: Any, open_mic: bool = True) -> None:
    """Turn the microphone on from the voice panel (past the "why" card), in open-mic mode."""
    page.click("#voice .voice-mic")
    page.click("#voice .voice-allow")
    wait_for(page, "window.emachiVoice.state().mic === 'on'")
    if open_mic and page.evaluate("window.emachiVoice.state().mode") != "open":
        page.click("#voice .voice-mode")
    wait_for(page, f"window.emachiVoice.state().talking === {str(open_mic).lower()}")


def avatar(page: Any) -> int:
    return int(page.evaluate("window.emachi.state().avatarId"))


def hears(page: Any, speaker: int, frames: int = 25) -> None:
    """Wait until ``page`` is subscribed to ``speaker`` and has decoded ``frames`` of them."""
    wait_for(
        page,
        f"(() => {{ const s = window.emachiVoice.state(); const c = s.channels && s.channels[{speaker}];"
        f" return {speaker} in s.subs && (c ? c.decoded >= {frames} : s.framesBy[{speaker}] >= {frames}); }})()",
    )


def measure(page: Any, freqs: tuple[float, ...] = (440.0, 660.0)) -> dict[str, Any]:
    return page.evaluate(  # type: ignore[no-any-return]
        "([ms, f]) => window.emachiVoice.measure(ms, f)", [MEASURE_MS, list(freqs)]
    )


def faded(page: Any, *ids: int, mix: bool = False) -> None:
    """Wait until the voices of ``ids`` (and the whole mix, with ``mix``) have faded below
    ``SILENT`` in a short window: a gain change is smoothed (50 ms) and a removed voice fades over
    300 ms, and on a 2-core machine the page's audio thread can run a moment late. A person hears
    the change at once; the test then asks that the silence holds over a full window."""
    deadline = time.monotonic() + 40 * WAIT
    while True:
        got = page.evaluate("([f]) => window.emachiVoice.measure(200, f)", [[]])
        quiet = all(got["rms"].get(str(i), 0.0) < SILENT for i in ids)
        if quiet and (not mix or got["mix"] < SILENT):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"still heard {40 * WAIT:.0f} s after the change: {got}")


def measure_heard(page: Any, *ids: int, tries: int = 4) -> dict[str, Any]:
    """A measurement in which every one of ``ids`` is heard (RMS above ``HEARD``), of at most
    ``tries``: on a 2-core machine shared with other work a speaker's browser can stall for a
    moment. Silence is never retried: it must hold in any window."""
    got: dict[str, Any] = {}
    for _ in range(tries):
        got = measure(page)
        if all(got["rms"].get(str(i), 0.0) > HEARD for i in ids):
            return got
    return got


def test_b_hears_a_near_and_nothing_from_a_booth_with_the_microphone_refused(
    pages: Callable[..., Any], server: ThreadServer
) -> None:
    a = pages("A")
    join(a, "あかね")
    b = pages("plain")
    join(b, "さくら")
    # B's browser says no to the microphone: B is told why, and still listens (and chats)
    b.click("#voice .voice-mic")
    b.click("#voice .voice-allow")
    wait_for(b, "window.emachiVoice.state().mic === 'refused'")
    assert "聞くこととチャットはそのまま使えます" in b.inner_text("#voice .voice-note")
    assert b.is_enabled("#chat-input")
    mic_on(a)
    server.place(b, NEAR_IN_CORRIDOR[0])
    server.place(a, NEAR_IN_CORRIDOR[1])
    ida, idb = avatar(a), avatar(b)
    hears(b, ida)
    near = measure_heard(b, ida)
    assert near["rms"][str(ida)] > HEARD, near
    assert near["bands"]["440"] > near["bands"]["660"] + 20, near
    wait_for(b, "window.emachiVoice.state().speakingText.includes('あかねさんが話しています')")
    # A is told who hears them
    wait_for(a, "document.querySelector('#voice .voice-reach').textContent.includes('さくら')")
    assert "（1人）" in a.inner_text("#voice .voice-reach")

    server.place(a, IN_BOOTH)  # 7 m from B, as audible by distance, but behind the booth's wall
    wait_for(b, f"!({ida} in window.emachiVoice.state().subs)")
    wait_for(
        a,
        "document.querySelector('#voice .voice-reach').textContent.includes('ブースの中の人だけ')",
    )
    wait_for(
        a,
        "document.querySelector('#voice .voice-reach').textContent.includes('だれにも聞こえていません')",
    )
    got_before = b.evaluate(f"window.emachiVoice.state().framesBy[{ida}] ?? 0")
    sent_before = server.frames_in()
    faded(b, ida, mix=True)
    booth = measure(b)
    assert server.frames_in() - sent_before >= 50  # A talked all along (50 frames a second)...
    assert (
        b.evaluate(f"window.emachiVoice.state().framesBy[{ida}] ?? 0") == got_before
    )  # ...to B: nothing
    assert booth["mix"] < SILENT and booth["rms"].get(str(ida), 0.0) < SILENT, booth
    assert idb not in (a.evaluate("window.emachiVoice.state().heard") or {"ids": []})["ids"]


def test_a_stage_voice_reaches_the_far_auditorium_and_a_watch_only_viewer(
    pages: Callable[..., Any], server: ThreadServer
) -> None:
    a = pages("A")
    join(a, "委員長")
    b = pages("C")
    join(b, "傍聴者")
    render_script(parse_script(BRIEFING, "voice.yaml"), server.data)  # not started: no narration
    viewer = pages("plain", f"{server.url}/briefing/voice-briefing")
    mic_on(a)
    mic_on(b, open_mic=False)  # B's mic is on but B does not talk: the mix goes through WebRTC
    server.place(a, ON_STAGE)
    server.place(b, AUDITORIUM_CORNER)
    ida = avatar(a)
    hears(b, ida)
    far = measure_heard(b, ida)
    assert far["rms"][str(ida)] > HEARD, far
    # the echo-safe route: the mix reaches the <audio> element through the loopback connection
    wait_for(b, "window.emachiVoice.state().route === 'webrtc'")
    wait_for(b, "window.emachiVoice.outputLevel() > 0.01")
    hears(viewer, ida)
    watched = measure_heard(viewer, ida)
    assert watched["rms"][str(ida)] > HEARD, watched
    assert watched["bands"]["440"] > watched["bands"]["660"] + 20, watched


def test_per_person_mute_on_a_phone_silences_one_of_two_speakers(
    pages: Callable[..., Any], server: ThreadServer
) -> None:
    a = pages("A")
    join(a, "あおい")
    c = pages("C")
    join(c, "ちはる")
    b = pages("plain", phone=True)
    join(b, "ゆう")
    # Drawing 390×844 px on the CPU (SwiftShader) 60 times a second, on 2 cores shared with the
    # speakers' browsers, starves this page's audio thread; a phone draws on its GPU. The hall was
    # drawn (the page is ready): from now on frames run but draw nothing.
    b.evaluate("window.emachi.app.view.render = () => {}")
    mic_on(a)
    mic_on(c)
    server.place(a, LOBBY[0])
    server.place(c, LOBBY[1])
    server.place(b, LOBBY[2])
    ida, idc = avatar(a), avatar(c)
    hears(b, ida)
    hears(b, idc)
    both = measure_heard(b, ida, idc)
    assert both["rms"][str(ida)] > HEARD and both["rms"][str(idc)] > HEARD, both
    assert both["bands"]["660"] > both["bands"]["440"] - 10 > -200, both
    b.click("#voice .voice-people-toggle")
    button = f"#voice .voice-person-mute[data-person-id='{idc}']"
    b.wait_for_selector(button)
    for sel in ("#voice .voice-mic", "#voice .voice-people-toggle", button):
        b.locator(sel).scroll_into_view_if_needed()
        box = b.locator(sel).bounding_box()
        assert box and box["height"] >= 44 and box["width"] >= 44, (sel, box)
    b.locator(button).tap()
    wait_for(b, f"document.querySelector(\"{button}\").getAttribute('aria-pressed') === 'true'")
    faded(b, idc)
    one = measure_heard(b, ida)
    assert one["rms"][str(ida)] > HEARD and one["rms"][str(idc)] < SILENT, one
    # C's 660 Hz peak leaves the mix; what stays there is the floor of A's voice (a starved
    # machine's concealment clicks spread it), well under A's own 440 Hz peak
    assert one["bands"]["660"] < one["bands"]["440"] - 10, (both, one)
    assert one["bands"]["660"] < both["bands"]["660"] - 6, (both, one)
    assert one["bands"]["440"] > both["bands"]["440"] - 6, (both, one)
    saved = b.evaluate("JSON.parse(localStorage.getItem('emachi.voice'))")
    assert saved["people"]["ちはる"]["muted"] is True  # remembered on this device


def _staff_briefing(server: ThreadServer, bid: str, action: str) -> None:
    req = urllib.request.Request(
        f"{server.url}/staff/briefings/{bid}/{action}",
        method="POST",
        headers={"Authorization": "Bearer voice-test"},
    )
    with urllib.request.urlopen(req, timeout=40 * WAIT) as r:
        assert r.status == 200, (action, r.status)


def test_the_narration_is_a_stage_voice_heard_across_the_auditorium_and_not_at_a_table(
    pages: Callable[..., Any], server: ThreadServer
) -> None:
    """The briefing's synthesized narration plays like a live stage voice: from the presenter's
    spot, at the gain the server tells each page (AUDIO_SUBS's stage), the PA gain in the far
    corner of the auditorium (24 m away, past the stage voice's 20 m), into the voice mix (so
    the echo-safe output carries it), and not at all at a table, an isolated zone on the same
    floor (phone size)."""
    render_script(parse_script(NARRATED, "narrated.yaml"), server.data)
    hall = pages("plain")
    join(hall, "客席の人")
    table = pages("plain", phone=True)
    join(table, "テーブルの人")
    server.place(hall, AUDITORIUM_CORNER)
    server.place(table, AT_TABLE)
    wait_for(hall, "(() => { const m = window.emachi.app.self(); return m && m.z > 20; })()")
    wait_for(table, "(() => { const m = window.emachi.app.self(); return m && m.x > 48; })()")
    _staff_briefing(server, "voice-narrated", "start")
    try:
        for page in (hall, table):
            wait_for(page, "window.emachiBriefing.sounding() > 0", timeout=60 * WAIT)
            wait_for(page, "window.emachiBriefing.stageGain() !== null")  # the server told it
        assert hall.evaluate("window.emachiBriefing.stageGain()") == pytest.approx(0.5)
        assert table.evaluate("window.emachiBriefing.stageGain()") == 0
        heard = hall.evaluate("window.emachiBriefing.narrationLevel(1500)")
        assert heard["shared"], heard  # in the voice's context and mix
        assert heard["gain"] == pytest.approx(0.5), heard  # the PA gain: beyond the distance
        assert heard["rms"] > HEARD, heard
        mix = hall.evaluate("window.emachiVoice.measure(1500, [])")
        assert mix["mix"] > HEARD, mix  # what goes to the echo-safe output holds the narration
        assert table.evaluate("window.emachiBriefing.sounding()") > 0
        quiet = table.evaluate("window.emachiBriefing.narrationLevel(1500)")
        assert table.evaluate("window.emachiBriefing.sounding()") > 0  # it played all along
        assert quiet["shared"], quiet
        assert quiet["gain"] == 0, quiet
        assert quiet["rms"] < SILENT, quiet
    finally:
        _staff_briefing(server, "voice-narrated", "end")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_voice_over_https_with_a_certificate_the_test_made(
    browsers: dict[str, Any], tones: dict[str, Path], tmp_path: Path, pages: Callable[..., Any]
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    srv = ThreadServer(tmp_path / "data", ssl_context=tls)
    # this browser alone trusts a certificate nobody signed
    b = browsers["pw"].chromium.launch(
        executable_path=CHROMIUM, headless=True,
        args=[*media_args(tones["A"]), "--ignore-certificate-errors"],
    )  # fmt: skip
    try:
        a = pages(b, srv=srv)
        assert a.url.startswith("https://") and a.evaluate("window.isSecureContext")
        join(a, "はると")
        listener = pages(b, srv=srv)
        join(listener, "みお")
        mic_on(a)
        srv.place(a, LOBBY[0])
        srv.place(listener, LOBBY[1])
        ida = avatar(a)
        hears(listener, ida)
        got = measure_heard(listener, ida)
        assert got["rms"][str(ida)] > HEARD, got
    finally:
        b.close()
        srv.stop()


def _lan_address() -> str | None:
    """This machine's non-loopback address (no packet leaves: a UDP connect only picks a route)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
            ip = s.getsockname()[0]
        except OSError:
            return None
    return None if ip.startswith("127.") else ip


def test_a_page_without_a_secure_context_says_why_there_is_no_microphone(
    browsers: dict[str, Any], tmp_path: Path, pages: Callable[..., Any]
) -> None:
    ip = _lan_address()
    if ip is None:
        pytest.skip("no non-loopback address to open the page at")
    srv = ThreadServer(tmp_path / "data", host=ip)
    try:
        page = pages("plain", f"http://{ip}:{srv.port}/", srv=srv)
        assert page.evaluate("window.isSecureContext") is False
        join(page, "ひなた")
        wait_for(page, "window.emachiVoice && window.emachiVoice.state().mic === 'insecure'")
        assert page.is_disabled("#voice .voice-mic")
        assert "安全な接続（https）" in page.inner_text("#voice .voice-note")
        page.click("#status .lang")
        assert "secure connection (https)" in page.inner_text("#voice .voice-note")
    finally:
        srv.stop()
