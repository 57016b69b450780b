"""``emachi serve`` as a child process, the way an operator runs it (for restart and pause tests)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from server.config import ROOT
from tests.integration.client import WAIT

STAFF_TOKEN = "process-test-token"
_SERVING = re.compile(r"serving \S+ on http://([\d.]+):(\d+)/")


@dataclass(slots=True)
class ServeProcess:
    """``python -m server.cli serve --port LISTEN --data-dir DATA_DIR ARGS``; output in ``log``."""

    data_dir: Path
    args: tuple[str, ...] = ()
    #: the port to ask for (0: any free one, told in the output)
    listen: int = 0
    log: Path = field(init=False)
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0

    def __post_init__(self) -> None:
        self.log = self.data_dir.parent / f"{self.data_dir.name}-serve.log"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def start(self, timeout: float = 400 * WAIT) -> None:
        """Start it and wait for the line that says where it serves (up to 400 waits)."""
        start = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "server.cli",
                    "serve",
                    "--port",
                    str(self.listen),
                    "--data-dir",
                    str(self.data_dir),
                    "--staff-token",
                    STAFF_TOKEN,
                    *self.args,
                ],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=os.environ.copy(),
            )
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = _SERVING.search(self.log.read_bytes()[start:].decode("utf-8", "replace"))
            if m is not None:
                self.port = int(m[2])
                return
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"emachi serve exited with {self.proc.returncode}:\n{self.output()}"
                )
            await asyncio.sleep(WAIT)
        raise AssertionError(f"emachi serve did not say where it serves:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text("utf-8", "replace")

    async def terminate(self, timeout: float = 200 * WAIT) -> int:
        """SIGTERM, as a service manager would, and wait for the exit."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        end = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > end:
                self.proc.kill()
                raise AssertionError("emachi serve did not exit after SIGTERM")
            await asyncio.sleep(WAIT)
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
