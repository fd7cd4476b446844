"""A real, throwaway PostgreSQL cluster for the store tests: `pg_server` (session) and `PgServer.new_database`.

The cluster lives in a temporary directory and listens only on a Unix socket there. initdb refuses to run as root,
so as root the server runs as the ``postgres`` user. Without initdb the tests fail (never skip): install
PostgreSQL with ``apt-get install postgresql`` (or ``make system-deps``).

    def test_something(pg_server):
        url = pg_server.new_database()  # postgresql://postgres@/nbtrack_1?host=/tmp/nbtrack-pg-.../socket
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def find_pg_bin() -> Path | None:
    """The directory holding initdb and pg_ctl: from PATH, else the newest /usr/lib/postgresql/*/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl", path=str(Path(found).resolve().parent)):
        return Path(found).resolve().parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0,
    )
    return Path(candidates[-1]).parent if candidates else None


class PgServer:
    """One running cluster. `new_database()` creates an empty database and returns its URL."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="nbtrack-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.log = self.root / "server.log"
        self.socket_dir.mkdir()
        self._as_postgres = os.geteuid() == 0
        self._counter = itertools.count(1)
        self._prefix = f"nbtrack_{os.getpid()}"
        if self._as_postgres:  # initdb and the server refuse root: hand the directory to the postgres user
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.socket_dir, "postgres", "postgres")

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\n{log}"
            )
        return result

    def start(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        options = " ".join(
            [
                "-c listen_addresses=''",
                f"-c unix_socket_directories={self.socket_dir}",
                "-c max_connections=300",
                "-c fsync=off",  # a throwaway cluster: durability across an OS crash is not under test
                "-c full_page_writes=off",
                "-c shared_buffers=64MB",
            ]
        )
        self._options = options
        self.resume()

    def resume(self) -> None:
        """Start the server (again) on its existing data directory."""
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            self._options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def pause(self) -> None:
        """Stop the server, keeping its data: clients see their connections drop, as in a restart."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql://postgres@/{database}?host={self.socket_dir}"

    def new_database(self) -> str:
        """Create an empty database; returns its URL."""
        import psycopg

        name = f"{self._prefix}_{next(self._counter)}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
                return self.url(name)
            except psycopg.errors.ObjectInUse:  # "source database is being accessed by other users"
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


@pytest.fixture(scope="session")
def pg_server():
    """A running throwaway PostgreSQL cluster, stopped at the end of the session."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.fail(
            "The PostgreSQL store tests need a real PostgreSQL server, and initdb was not found on PATH or under "
            "/usr/lib/postgresql/*/bin. Install it with `apt-get install postgresql` (or `make system-deps`).",
            pytrace=False,
        )
    server = PgServer(bin_dir)
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    yield server
    server.stop()
