"""A throwaway PostgreSQL server for tests: Debian's server binaries, a fresh cluster in a short
temp dir, unix socket only (``listen_addresses=''``), stopped and deleted at the end.

``initdb`` and ``postgres`` refuse to run as root; as root every server command runs as the ``postgres``
system user (``runuser -u postgres --``) and the temp dir is handed over to that user first.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry import Store

_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name)
                   if p.parent.name.isdigit() else 0)
_SERVER_OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


def bin_dir() -> Path:
    """The newest installed server binaries (postgresql-15 on bookworm)."""
    for d in reversed(_BIN_DIRS):
        if (d / "initdb").exists() and (d / "pg_ctl").exists():
            return d
    raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: install the "
                       "'postgresql' package (scripts/bootstrap.sh test does)")


class PostgresServer:
    """One cluster: user ``app`` (trust authentication), database ``postgres``, socket in :attr:`root`."""

    def __init__(self) -> None:
        self.bin = bin_dir()
        self.as_root = os.geteuid() == 0
        # Keep the path short: the socket path (root/.s.PGSQL.5432) must fit in sun_path (107 bytes).
        self.root = Path(tempfile.mkdtemp(prefix="pg", dir="/tmp"))
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
        self.data = self.root / "data"
        self.log = self.root / "log"
        self._run("initdb", "-D", str(self.data), "-U", "app", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8",
                  "--no-sync")

    @property
    def url(self) -> str:
        """SQLAlchemy URL (psycopg 3) over the unix socket."""
        return f"postgresql+psycopg://app@/postgres?host={self.root}"

    @property
    def running(self) -> bool:
        return subprocess.run(self._command("pg_ctl", "-D", str(self.data), "status"), capture_output=True,
                              check=False).returncode == 0

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start",
                  "-o", f"-c listen_addresses='' -k {self.root} {_SERVER_OPTIONS}")

    def stop(self, mode: str = "fast") -> None:
        """``mode`` as pg_ctl's ``-m``: ``immediate`` drops every connection at once, like a crash."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def remove(self) -> None:
        if self.data.exists() and self.running:
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def _command(self, program: str, *args: str) -> list[str]:
        cmd = [str(self.bin / program), *args]
        return ["runuser", "-u", "postgres", "--", *cmd] if self.as_root else cmd

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run(self._command(program, *args), capture_output=True, check=False, cwd=self.root)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(f"{program} {' '.join(args)} failed ({done.returncode}):\n"
                               f"{done.stdout.decode(errors='replace')}{done.stderr.decode(errors='replace')}{log}")


@pytest.fixture(name="postgres")
def postgres_fixture() -> Iterator[PostgresServer]:
    """A running throwaway PostgreSQL; stopped and deleted after the test."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.remove()


@contextlib.contextmanager
def migrated_postgres() -> Iterator[PostgresServer]:
    """A running throwaway PostgreSQL with the registry's schema (every migration); removed at the end."""
    server = PostgresServer()
    try:
        server.start()
        store = Store(server.url)
        store.migrate()
        store.dispose()
        yield server
    finally:
        server.remove()
