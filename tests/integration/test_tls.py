"""``emachi serve --tls-cert --tls-key``: HTTPS and WSS from the process itself."""

from __future__ import annotations

import asyncio
import re
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from websockets.asyncio.client import connect

from server.config import ROOT
from server.protocol.codes import PROTOCOL_VERSION
from server.protocol.messages import Hello, Welcome, decode
from tests.integration.client import WAIT

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl not installed")


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [OPENSSL or "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@needs_openssl
@pytest.mark.timeout(60)
async def test_serve_with_a_certificate_speaks_https_and_wss(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", "serve", "--port", "0", "--data-dir",
        str(tmp_path / "data"), "--tls-cert", str(cert), "--tls-key", str(key),
        "--staff-token", "t", cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 400 * WAIT)).decode()
        m = re.search(r"on https://127\.0\.0\.1:(\d+)/", line)
        assert m, line
        port = int(m.group(1))
        trust = ssl.create_default_context(cafile=str(cert))
        async with aiohttp.ClientSession() as http:
            r = await http.get(f"https://127.0.0.1:{port}/healthz", ssl=trust)
            assert r.status == 200 and (await r.json())["status"] == "ok"
        async with connect(f"wss://127.0.0.1:{port}/ws", ssl=trust) as ws:
            await ws.send(
                Hello(version=PROTOCOL_VERSION, name="安全", resume=None, opts={}).encode()
            )
            welcome = decode(await asyncio.wait_for(ws.recv(), 200 * WAIT))  # type: ignore[arg-type]
            assert isinstance(welcome, Welcome) and welcome.avatar_id >= 0
        # plain http on the TLS port is not served
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.ClientError):
                await http.get(f"http://127.0.0.1:{port}/healthz")
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 200 * WAIT)


def test_a_key_without_a_certificate_or_a_bad_file_is_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    for args, want in (
        (["--tls-key", str(bad)], "--tls-cert and --tls-key go together"),
        (["--tls-cert", str(bad), "--tls-key", str(bad)], "not a PEM certificate"),
        (["--tls-cert", str(tmp_path / "none.pem"), "--tls-key", str(bad)], "cannot read"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "server.cli", "serve", "--port", "0", *args],
            capture_output=True, text=True, timeout=60, cwd=ROOT,
        )  # fmt: skip
        assert done.returncode == 1
        assert want in done.stderr and "Traceback" not in done.stderr, done.stderr
