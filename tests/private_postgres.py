"""A private PostgreSQL for the tests that need a real one (the records store on PostgreSQL).

Never the machine's own cluster on 5432: ``initdb`` (Debian's ``postgresql`` package, under
/usr/lib/postgresql/VERSION/bin) makes a data folder in a temporary folder once per session, and
``pg_ctl`` runs it on a free port, listening only on a unix socket in that folder, with trust
authentication for the user ``emachi``. initdb refuses to run as root, so under root the server
runs as ``postgres`` (or ``nobody``) in a folder that user owns.

``postgres_server`` is the session's: each test takes a database of its own from it
(``new_database``). ``own_postgres`` is one test's, a copy of the session's fresh data folder
(no second initdb, which takes seconds on a loaded machine), which the test may kill
(``pg_ctl stop -m immediate``: no shutdown checkpoint, crash recovery on the next start) and start
again. Both are stopped at the end. ``fsync=off``: a killed server loses nothing committed (the
kernel still has its writes); only a power cut would, and the tests do not cut power.
Without initdb the tests are skipped, or fail under ``CI=true`` (tests/tools.py).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.private_redis import free_port
from tests.tools import WAIT, require

__all__ = ["PrivatePostgres", "pg_tool", "postgres_server", "own_postgres"]

USER = "emachi"


def pg_tool(name: str) -> str:
    """The newest installed PostgreSQL's program ``name`` (Debian keeps them off PATH)."""

    def version(path: str) -> tuple[int, ...]:
        m = re.search(r"/postgresql/([\d.]+)/bin/", path)
        return tuple(int(x) for x in m.group(1).split(".")) if m else (0,)

    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=version)
    return found[-1] if found else require(name)


def _run_as() -> str | None:
    """Who runs the server: None (this user) unless this is root, whom initdb refuses."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    pytest.fail("running as root with neither a postgres nor a nobody user for initdb")


@dataclass(slots=True)
class PrivatePostgres:
    """One PostgreSQL server of the tests' own, in ``folder`` (data in ``data``, socket in
    ``sock``); may be killed and started again."""

    folder: Path
    user: str | None = field(default_factory=_run_as)
    port: int = field(default_factory=free_port)
    running: bool = False

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def sock(self) -> Path:
        return self.folder / "sock"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@/{database}?host={self.sock}&port={self.port}"

    def _cmd(self, *argv: str, timeout: float = 600 * WAIT) -> str:
        full = list(argv) if self.user is None else ["runuser", "-u", self.user, "--", *argv]
        done = subprocess.run(full, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            log = self.folder / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(
                f"{' '.join(argv[:2])} failed ({done.returncode}): {done.stderr.strip()}\n{tail}"
            )
        return done.stdout

    def _own(self, *paths: Path) -> None:
        if self.user is not None:
            pw = pwd.getpwnam(self.user)
            for p in paths:
                for root, dirs, files in os.walk(p):
                    for name in (root, *(os.path.join(root, n) for n in dirs + files)):
                        os.lchown(name, pw.pw_uid, pw.pw_gid)

    def init(self) -> None:
        """A new data folder (initdb: seconds on a loaded machine)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._own(self.folder)
        self._cmd(
            pg_tool("initdb"),
            "-D",
            str(self.data),
            "-U",
            USER,
            "--auth=trust",
            "--no-sync",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        )

    def copy_of(self, other: PrivatePostgres) -> None:
        """A data folder copied from ``other``'s (which must be stopped, or never started)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        shutil.copytree(other.data, self.data, symlinks=True)
        self.data.chmod(0o700)
        self._own(self.folder)

    def start(self) -> None:
        self.sock.mkdir(exist_ok=True)
        self._own(self.sock)
        options = " ".join(
            (
                "-c listen_addresses=''",
                f"-c unix_socket_directories='{self.sock}'",
                f"-p {self.port}",
                "-c fsync=off",
                "-c full_page_writes=off",
                "-c shared_buffers=16MB",
                "-c max_connections=50",
                "-c log_min_messages=warning",
            )
        )
        self._cmd(
            pg_tool("pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.folder / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; ``mode="immediate"`` kills it (as a crash: recovery on next start)."""
        if self.running:
            self._cmd(pg_tool("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")
            self.running = False

    def kill(self) -> None:
        self.stop("immediate")

    def _pids(self) -> list[int]:
        """The postmaster and every process it started (backends, writers)."""
        main = int((self.data / "postmaster.pid").read_text().split()[0])
        pids = [main]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                # the command may hold spaces and parentheses: the parent follows the last ")"
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == main:
                    pids.append(int(stat.parent.name))
        return pids

    def pause(self) -> None:
        """SIGSTOP the server: connections stay open and nothing answers (a hung machine)."""
        for pid in self._pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in self._pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def psql(self, sql: str, database: str = "postgres") -> str:
        return self._cmd(
            pg_tool("psql"),
            "-h",
            str(self.sock),
            "-p",
            str(self.port),
            "-U",
            USER,
            "-d",
            database,
            "-qAt",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        )

    def new_database(self) -> str:
        """A fresh empty database; returns its URL."""
        name = f"test_{uuid.uuid4().hex[:12]}"
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)


def _folder() -> Path:
    # not under pytest's tmp_path: that is private to this user (0700), and the server's user
    # must reach its socket folder; short, for the unix socket path's 107 bytes
    return Path(tempfile.mkdtemp(prefix="emachi-pg-"))


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[PrivatePostgres]:
    """One initdb for the session: the fresh data folder every private server starts from."""
    pg_tool("initdb")
    folder = _folder()
    folder.chmod(0o755)
    template = PrivatePostgres(folder / "template")
    try:
        template.init()
        yield template
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server(postgres_template: PrivatePostgres) -> Iterator[PrivatePostgres]:
    """The session's private PostgreSQL (tests that do not kill it share it, each in a database
    of its own: ``postgres_server.new_database()``)."""
    yield from _private(postgres_template)


@pytest.fixture
def own_postgres(postgres_template: PrivatePostgres) -> Iterator[PrivatePostgres]:
    """A private PostgreSQL for one test, which it may kill and start again."""
    yield from _private(postgres_template)


def _private(template: PrivatePostgres) -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres(_folder())
    pg.folder.chmod(0o755)
    try:
        pg.copy_of(template)
        pg.start()
        yield pg
    finally:
        with contextlib.suppress(Exception):
            pg.resume()
        with contextlib.suppress(Exception):
            pg.stop("immediate")
        shutil.rmtree(pg.folder, ignore_errors=True)
