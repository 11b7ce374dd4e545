"""A private PostgreSQL server from Debian's packages, in a temporary folder, for the store's tests.

PostgreSQL refuses to run as root, so the server runs as ``nobody`` in a folder it owns, listening on
127.0.0.1 only (a free port) with trust authentication for its one role. ``stop`` ends it and removes
the folder. Each test takes a fresh database (``new_database``), so tests never see each other's rows.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

BIN = Path("/usr/lib/postgresql/15/bin")
RUN_AS = "nobody"
ROLE = "squall"


def available() -> str | None:
    """Why a server cannot be started here, or None."""
    if not (BIN / "postgres").is_file():
        return f"PostgreSQL 15 is not installed ({BIN}): apt-get install postgresql"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "runuser is missing (PostgreSQL must not run as root)"
    return None


class PostgresServer:
    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="squall-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self._names = itertools.count()

    def _as_owner(self, *argv: str) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", RUN_AS, "--"] if os.geteuid() == 0 else []
        return subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=120, check=True)

    def start(self) -> "PostgresServer":
        if os.geteuid() == 0:
            shutil.chown(self.folder, RUN_AS)
        self.folder.chmod(0o755)
        self._as_owner(str(BIN / "initdb"), "-D", str(self.data), "-U", ROLE, "--auth=trust", "-E", "UTF8",
                       "--no-sync")
        self._run_server()
        return self

    def _run_server(self) -> None:
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -k {self.folder} "
                   "-c max_connections=300 -c synchronous_commit=off -c fsync=off")
        self._as_owner(str(BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "server.log"),
                       "-o", options, "-w", "-t", "60", "start")

    def down(self) -> None:
        """Every database process ends at once (an outage); ``up`` starts the server again on its data.

        This server runs with ``synchronous_commit=off`` (speed): the WAL writer is given a second first,
        so the outage loses no committed write, as on a server that syncs each commit."""
        time.sleep(1.0)
        self._as_owner(str(BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def up(self) -> None:
        self._run_server()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database's URL."""
        name = f"t{os.getpid()}_{next(self._names)}"
        self._as_owner(str(BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", ROLE, "-d", "postgres",
                       "-q", "-c", f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        try:
            self._as_owner(str(BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        except subprocess.CalledProcessError:
            pass  # not running: nothing to stop
        shutil.rmtree(self.folder, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ensure_installed() -> None:
    """Debian's PostgreSQL, installed with apt when missing (as root), or the test is skipped saying why."""
    import pytest

    if available() is None:
        return
    if os.geteuid() != 0:
        pytest.skip(f"{available()}; not root, so it cannot be installed here")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql-15"], env=env, check=True, capture_output=True)
    subprocess.run(["pg_ctlcluster", "15", "main", "stop"], capture_output=True)  # the package's own: not ours
    if available() is not None:
        pytest.fail(available())
