"""Real headless Chromium (Debian's /usr/bin/chromium, never a downloaded browser) against a real
``emachi serve`` subprocess on a free port.

Fixtures for every browser test (kiosk and briefing tests use them too):

- ``emachi`` (module scope): a running server, ``.url`` (``http://127.0.0.1:PORT``), ``.port``,
  ``.staff_token``, ``.data_dir``; ``start_emachi(*args)`` starts another one with extra CLI flags
  (e.g. ``"--capacity", "1"``), stopped at the end of the test;
- ``browser`` (module scope): the Playwright Chromium;
- ``open_page(url=None, *, phone=False, width=640, height=480)``: a new context and page; at the
  end of the test the test **fails if the page logged a console error or threw** (unless declared
  with ``open_page.expect(page, regex)``);
- ``join(page, name)``: enters the hall from the first screen and waits for the own avatar;
- ``wait_for(page, js, timeout=...)``: waits for a JS expression to be truthy, in steps of ``WAIT``.

Waits are multiples of ``WAIT``. A page opened for a test exposes ``window.emachi`` (see
clients/web/TestHooks.js): ``state()``, ``self()``, ``others()``, ``dropConnection()``, ``app``.
Visitors' pages do not: ``open_page`` turns the hooks on with the ``emachi.test`` flag in
``localStorage`` (``TEST_FLAG``), set before any script of the page runs.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import tools
from tests.browser.chromium import CHROMIUM
from tests.browser.chromium import CHROMIUM_ARGS as BASE_ARGS
from tests.tools import require

ROOT = Path(__file__).resolve().parents[2]
EMACHI = ROOT / ".venv" / "bin" / "emachi"
CHROMIUM_ARGS = [
    *BASE_ARGS,
    "--disable-renderer-backgrounding",
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
]
WAIT = 5 * tools.WAIT  # 0.25 s: the one unit of every wait in browser tests (a page is slow)
SERVER_START = 80 * WAIT
PAGE_READY = 80 * WAIT
PHONE = {"width": 390, "height": 844}

# turns the client's test hooks on (clients/web/TestHooks.js) in every page of a test's context
TEST_FLAG = "try { localStorage.setItem('emachi.test', '1'); } catch (e) { /* opaque origin */ }"

# feature modules the client tries to load (clients/web/features.js); a 404 for one that is not
# written yet is expected and not an error of the page
FEATURE_FILES = {"/client/kiosk/feature.js", "/client/briefing/feature.js"}

pytestmark = pytest.mark.browser


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session", autouse=True)
def chromium_installed() -> None:
    """Debian's Chromium, before any server starts: skipped without it, a failure under CI=true."""
    require(CHROMIUM)


@dataclass(slots=True)
class EmachiServer:
    """A running ``emachi serve`` subprocess."""

    proc: subprocess.Popen[bytes]
    url: str
    port: int
    staff_token: str
    data_dir: Path
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40 * WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _healthy(port: int) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=4 * WAIT) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _start_server(tmp: Path, *args: str) -> EmachiServer:
    if not EMACHI.exists():
        pytest.fail(f"{EMACHI} is missing: run `.venv/bin/pip install -e .`")
    tmp.mkdir(parents=True, exist_ok=True)
    log = tmp / "serve.log"
    token = secrets.token_urlsafe(16)
    data = tmp / "data"
    cmd = [
        str(EMACHI),
        "serve",
        "--port",
        "0",
        "--data-dir",
        str(data),
        f"--staff-token={token}",  # a token may begin with "-"
        *args,
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + SERVER_START
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", text)
        if m and _healthy(int(m.group(1))):
            port = int(m.group(1))
            return EmachiServer(proc, f"http://127.0.0.1:{port}", port, token, data, log)
        if proc.poll() is not None:
            pytest.fail(f"emachi serve exited with {proc.returncode}:\n{text}")
        time.sleep(WAIT / 5)
    proc.kill()
    pytest.fail(f"emachi serve did not print its URL within {SERVER_START} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def emachi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmachiServer]:
    server = _start_server(tmp_path_factory.mktemp("emachi"))
    yield server
    server.stop()


@pytest.fixture
def start_emachi(tmp_path: Path) -> Iterator[Callable[..., EmachiServer]]:
    started: list[EmachiServer] = []

    def start(*args: str) -> EmachiServer:
        s = _start_server(tmp_path / f"server{len(started)}", *args)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Chromium for the tests of one module. Module scope, not session: the sync Playwright API
    keeps an event loop running in the main thread while it is open, which would break the
    asyncio tests (pytest-asyncio) that run after it in the same session."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@dataclass(slots=True)
class PageProblems:
    """What a page logged as an error; checked when the test ends."""

    errors: list[str] = field(default_factory=list)
    expected: list[re.Pattern[str]] = field(default_factory=list)

    def console(self, msg: object) -> None:
        if msg.type != "error":  # type: ignore[attr-defined]
            return
        url = (msg.location or {}).get("url", "")  # type: ignore[attr-defined]
        path = re.sub(r"^https?://[^/]+", "", url)
        if (
            path in FEATURE_FILES
            and not (ROOT / "clients" / "web" / path.removeprefix("/client/")).exists()
        ):
            return
        text = msg.text  # type: ignore[attr-defined]
        if any(p.search(text) for p in self.expected):
            return
        self.errors.append(f"console error: {text} ({url})")

    def page_error(self, err: object) -> None:
        self.errors.append(f"uncaught: {err}")


class PageOpener:
    """``open_page(url=None, *, phone=False, width=640, height=480)`` opens a page and waits for its
    first frame; ``open_page.expect(page, regex)`` declares a console error the test provokes on
    purpose (e.g. Chromium's "WebSocket connection ... failed" while the network is cut)."""

    def __init__(self, browser: object, emachi: EmachiServer) -> None:
        self.browser = browser
        self.emachi = emachi
        self.contexts: list[tuple[object, PageProblems]] = []
        self.problems: dict[int, PageProblems] = {}

    def expect(self, page: object, pattern: str) -> None:
        self.problems[id(page)].expected.append(re.compile(pattern))

    def __call__(
        self, url: str | None = None, *, phone: bool = False, width: int = 640, height: int = 480
    ) -> object:
        size = PHONE if phone else {"width": width, "height": height}
        ctx = self.browser.new_context(  # type: ignore[attr-defined]
            viewport=size,
            has_touch=phone,
            is_mobile=phone,
            device_scale_factor=1,
            locale="ja-JP",
        )
        ctx.add_init_script(TEST_FLAG)  # type: ignore[attr-defined]
        page = ctx.new_page()
        problems = PageProblems()
        page.on("console", lambda m: problems.console(m))
        page.on("pageerror", lambda e: problems.page_error(e))
        self.contexts.append((ctx, problems))
        self.problems[id(page)] = problems
        page.goto(url or self.emachi.url + "/")
        wait_for(page, "window.emachi && window.emachi.state().frames > 0", timeout=PAGE_READY)
        return page

    def close(self) -> list[str]:
        errors = [e for _, p in self.contexts for e in p.errors]
        for ctx, _ in self.contexts:
            ctx.close()  # type: ignore[attr-defined]
        return errors


@pytest.fixture
def open_page(browser: object, emachi: EmachiServer) -> Iterator[PageOpener]:
    opener = PageOpener(browser, emachi)
    yield opener
    errors = opener.close()
    assert not errors, "the page logged errors:\n" + "\n".join(errors)


def wait_for(page: object, js: str, timeout: float = 80 * WAIT, arg: object = None) -> object:
    """Wait until ``js`` (an expression or a function of ``arg``) is truthy; returns its value.

    Polled from here with ``page.evaluate`` rather than ``page.wait_for_function``: the latter
    compiles an expression inside the page with ``eval``, which the pages' CSP refuses.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(js, arg)  # type: ignore[attr-defined]
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout:.1f} s: {js}")
        page.wait_for_timeout(WAIT * 1000 / 2)  # type: ignore[attr-defined]


def join(page: object, name: str) -> dict[str, object]:
    """Enter the hall from the first screen under ``name``; returns the own avatar as drawn."""
    page.fill("#join-name", name)  # type: ignore[attr-defined]
    page.click("#join button[type=submit]")  # type: ignore[attr-defined]
    wait_for(page, "window.emachi.state().state === 'connected' && window.emachi.self() !== null")
    return page.evaluate("window.emachi.self()")  # type: ignore[attr-defined, no-any-return]


@pytest.fixture(name="join")
def join_fixture() -> Callable[[object, str], dict[str, object]]:
    return join


@pytest.fixture(name="wait_for")
def wait_for_fixture() -> Callable[..., object]:
    return wait_for


__all__ = ["CHROMIUM_ARGS", "PHONE", "WAIT", "EmachiServer", "join", "wait_for"]


class TcpProxy:
    """A loopback TCP proxy in front of the server, so a test can cut the connections for real
    (the browser sees its WebSocket drop, the server sees the peer vanish) and refuse new ones."""

    def __init__(self, target_port: int) -> None:
        import socket
        import threading

        self._socket = socket
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.refusing = False
        self.conns: list[object] = []
        self.lock = threading.Lock()
        self.closed = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        import threading

        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.refusing:
                client.close()
                continue
            try:
                upstream = self._socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: object, dst: object) -> None:
        try:
            while data := src.recv(65536):  # type: ignore[attr-defined]
                dst.sendall(data)  # type: ignore[attr-defined]
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(self._socket.SHUT_RDWR)  # type: ignore[attr-defined]

    def cut(self) -> None:
        """Drop every open connection at once, as a network failure would."""
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(self._socket.SHUT_RDWR)  # type: ignore[attr-defined]
            s.close()  # type: ignore[attr-defined]

    def close(self) -> None:
        self.closed = True
        self.cut()
        self.listener.close()


@pytest.fixture
def tcp_proxy(emachi: EmachiServer) -> Iterator[TcpProxy]:
    proxy = TcpProxy(emachi.port)
    yield proxy
    proxy.close()
