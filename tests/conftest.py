"""Shared fixtures: a private Squall home per test and the real ``squall`` CLI.

Tests run the CLI as a real process (``python -m squall.cli.main``), the way a
user or CI does; nothing in the runner or the local site is mocked.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "wind-stats"


def pytest_configure(config) -> None:
    """As root (CI), Debian's bubblewrap is installed when missing: the local site sandboxes payloads with it,
    and the tests that try to escape the sandbox need it (without it they are skipped, saying so)."""
    if os.geteuid() == 0 and shutil.which("bwrap") is None and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-qq", "bubblewrap"], env=env, capture_output=True)


class Squall:
    """Runs ``squall`` against one private home, in one working folder."""

    def __init__(self, home: Path, cwd: Path, command: list[str] | None = None, database: str | None = None):
        self.home = home
        self.cwd = cwd
        self.command = command or [sys.executable, "-m", "squall.cli.main"]  # or an installed ``squall``
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SQUALL_")}
        self.env["SQUALL_HOME"] = str(home)
        self.database = database  # a PostgreSQL URL, or None: the SQLite file in the home
        if database:
            self.env["SQUALL_DATABASE_URL"] = database
        self.env["XDG_CONFIG_HOME"] = str(home.parent / "xdg-config")  # never the user's own config file

    def argv(self, *args: str) -> list[str]:
        return [*self.command, *args]

    def run(self, *args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.argv(*args), cwd=self.cwd, env={**self.env, **(env or {})},
            capture_output=True, text=True, timeout=timeout,
        )

    def json(self, *args: str, env: dict | None = None) -> tuple[int, dict]:
        proc = self.run(*args, "--output", "json", env=env)
        return proc.returncode, json.loads(proc.stdout)

    def start(self, *args: str, env: dict | None = None) -> subprocess.Popen:
        return subprocess.Popen(
            self.argv(*args), cwd=self.cwd, env={**self.env, **(env or {})},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    @property
    def work_root(self) -> Path:
        return self.home / "sites" / "local" / "work"

    def job_dir(self, job_id: str) -> Path:
        return self.work_root / f"squall-{job_id}"

    def work_areas(self) -> list[str]:
        """The job folders on the local site."""
        return sorted(p.name for p in self.work_root.glob("squall-*"))

    def job_count(self) -> int:
        """Jobs in the store; 0 when the store was never even created."""
        if not self.database and not (self.home / "squall.db").exists():
            return 0
        try:
            return self.query("SELECT COUNT(*) FROM jobs")[0][0]
        except (sqlite3.OperationalError, LookupError):  # created, but stopped before its first migration
            return 0

    def query(self, sql: str, *params) -> list[tuple]:
        if self.database:
            return [tuple(row) for row in _postgres_rows(self.database, sql, params)]
        with sqlite3.connect(self.home / "squall.db") as db:
            return db.execute(sql, params).fetchall()

    def wait_for(self, sql: str, *params, timeout: float = 30) -> tuple:
        """Poll the store until ``sql`` returns a row (the test's view of progress)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.database or (self.home / "squall.db").exists():
                try:
                    rows = self.query(sql, *params)
                except (sqlite3.OperationalError, LookupError):  # LookupError: no such table yet
                    rows = []
                if rows:
                    return rows[0]
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for: {sql} {params}")


def _postgres_rows(url: str, sql: str, params: tuple) -> list:
    """The test's own read of a PostgreSQL store (``?`` parameters, as the product's SQL)."""
    from sqlalchemy.exc import ProgrammingError

    from squall.database import PostgresDatabase

    database = _postgres_readers.get(url) or _postgres_readers.setdefault(url, PostgresDatabase(url))
    try:
        return database.rows(sql, params)
    except ProgrammingError as exc:  # the schema is not there yet
        raise LookupError(str(exc)) from None


_postgres_readers: dict = {}


@pytest.fixture(scope="session")
def postgres():
    """One private PostgreSQL server for the session, started when a test first needs it."""
    from tests.testbed.postgres import PostgresServer, ensure_installed

    ensure_installed()
    server = PostgresServer().start()
    yield server
    for reader in _postgres_readers.values():
        reader.close()
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, monkeypatch) -> str | None:
    """The store a test runs on — a module opts in with ``pytestmark = pytest.mark.usefixtures("database")``
    and runs once on each: the SQLite file in the home (None), and a fresh PostgreSQL database (its URL)."""
    if request.param == "sqlite":
        monkeypatch.delenv("SQUALL_DATABASE_URL", raising=False)
        return None
    url = request.getfixturevalue("postgres").new_database()
    monkeypatch.setenv("SQUALL_DATABASE_URL", url)  # for the test's own Store(...) and what it starts
    return url


def _chosen_database(request) -> str | None:
    return request.getfixturevalue("database") if "database" in request.fixturenames else None


@pytest.fixture
def squall(request, tmp_path: Path) -> Squall:
    work = tmp_path / "work"
    work.mkdir()
    return Squall(tmp_path / "home", work, database=_chosen_database(request))


@pytest.fixture
def store(request, tmp_path: Path):
    """A fresh Squall store in the test's own home (on the test's database, when it chose one)."""
    from squall.store import Store

    opened = Store(tmp_path / "home", url=_chosen_database(request))
    yield opened
    opened.close()


@pytest.fixture
def wind_example(tmp_path: Path) -> Path:
    """A private copy of the wind-stats example; returns its job.yaml."""
    target = tmp_path / "wind-stats"
    shutil.copytree(EXAMPLE, target)
    return target / "job.yaml"


@pytest.fixture
def make_spec(tmp_path: Path):
    """Write a job spec (and optional files) into a fresh folder; return its path."""

    def make(fields: dict, files: dict[str, str] | None = None, folder: str = "job") -> Path:
        root = tmp_path / folder
        root.mkdir(exist_ok=True)
        for name, content in (files or {}).items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(content)
        path = root / "job.yaml"
        path.write_text(yaml.safe_dump(fields))
        return path

    return make


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def communicate_or_show_stacks(proc: subprocess.Popen, timeout: float) -> tuple[str, str]:
    """``proc.communicate``; a process still running after ``timeout`` fails the test with its threads'
    stacks (py-spy), so a hang found once in CI says where it hung."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        spy = shutil.which("py-spy", path=str(Path(sys.executable).parent))
        stacks = subprocess.run([spy, "dump", "--pid", str(proc.pid)], capture_output=True, text=True).stdout \
            if spy else "(py-spy not installed)"
        kill_quietly(proc)
        out, err = proc.communicate()
        raise AssertionError(f"still running after {timeout} s; its stacks:\n{stacks}\nstderr:\n{err[-3000:]}") \
            from None


def kill_quietly(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def run_then_kill_9(squall: Squall, *args: str, env: dict | None = None) -> str:
    """Start ``squall job run ARGS``, wait until a task runs, ``kill -9`` the controller; return the job id."""
    controller = squall.start("job", "run", *args, env=env)
    try:
        job_id = squall.wait_for("SELECT job_id FROM tasks WHERE status = 'running'", timeout=60)[0]
        controller.send_signal(signal.SIGKILL)
        controller.wait()
    finally:
        kill_quietly(controller)
    return job_id


@pytest.fixture
def mounts(tmp_path: Path):
    """Mount small file systems for fault tests (a full or read-only results folder); root only."""
    if os.geteuid() != 0:
        pytest.skip("mounting a full or read-only file system needs root; CI runs as root")
    made: list[Path] = []

    class Mounts:
        def tmpfs(self, name: str, size: str = "2m") -> Path:
            target = tmp_path / f"mnt-{name}"
            target.mkdir()
            proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(target)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                pytest.skip(f"this machine refuses mounts (needed for a full/read-only folder): {proc.stderr.strip()}")
            made.append(target)
            return target

        def read_only(self, target: Path) -> None:
            subprocess.run(["mount", "-o", "remount,ro", str(target)], check=True)

    yield Mounts()
    for target in reversed(made):
        subprocess.run(["umount", "-l", str(target)], check=False)
