"""The locks that keep one controller per job, one shared poll per site and one operation per stack.

Each dies with its holder, so after ``kill -9`` of a controller anyone can tell the job is orphaned (and
``job attach`` can take it over) without trusting a pid written in a file. With the SQLite store they are
OS file locks in the home (one machine); with a PostgreSQL store, session advisory locks in the database,
so they hold across every machine sharing it (see ``locks_for``).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any, ContextManager, Iterator

from squall.errors import Refused
from squall.paths import ensure_private_dir

if TYPE_CHECKING:
    from squall.database import Database


def locks_for(home: Path, db: "Database") -> "FileLocks | AdvisoryLocks":
    """The store's locks: in the database when it is shared (PostgreSQL), else files in the home."""
    return AdvisoryLocks(db) if db.dialect == "postgresql" else FileLocks(home)


def _controller_refused(job_id: str, holder: str) -> Refused:
    return Refused(f"job {job_id} is already being driven by {holder}",
                   hint="wait for it, or use 'squall job cancel' to stop the job")


def _stack_refused(stack: str, holder: str) -> Refused:
    return Refused(f"stack {stack} is being changed by {holder}", hint="wait for that run to finish, then try again")


class ControllerLock:
    def __init__(self, home: Path, job_id: str):
        self.path = ensure_private_dir(home / "locks") / f"{job_id}.lock"
        self.job_id = job_id
        self._handle = None

    def __enter__(self) -> "ControllerLock":
        self._handle, holder = _exclusive(self.path, wait=False)
        if self._handle is None:
            raise _controller_refused(self.job_id, f"pid {holder}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._handle is not None:
            self._handle.close()  # closing releases the flock
            self._handle = None


def _exclusive(path: Path, wait: bool) -> tuple[IO[str] | None, str]:
    """The file locked by this process (our pid written in it), or None and the holder's pid."""
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        return None, holder
    handle.truncate(0)
    handle.write(str(os.getpid()))
    handle.flush()
    return handle, ""


def controller_alive(home: Path, job_id: str) -> bool:
    path = home / "locks" / f"{job_id}.lock"
    if not path.exists():
        return False
    with open(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
    return False


class PollLock:
    """Serialises the shared status poll of one site across controller processes."""

    def __init__(self, home: Path, site: str):
        self.path = ensure_private_dir(home / "locks") / f"poll-{site}.lock"
        self._handle = None

    def __enter__(self) -> "PollLock":
        self._handle = open(self.path, "a+")
        fcntl.flock(self._handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class StackLock:
    """One operation at a time on a stack, across processes.

    ``wait=False`` (CI environments) refuses at once, naming the holder;
    ``wait=True`` (a bank refill behind another) queues behind it.
    """

    def __init__(self, home: Path, stack: str, wait: bool = False):
        self.path = ensure_private_dir(home / "locks") / f"stack-{stack}.lock"
        self.stack, self.wait = stack, wait
        self._handle = None

    def __enter__(self) -> "StackLock":
        self._handle, holder = _exclusive(self.path, self.wait)
        if self._handle is None:
            raise _stack_refused(self.stack, f"pid {holder}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class FileLocks:
    """Locks for one machine: OS file locks under ``HOME/locks``."""

    def __init__(self, home: Path):
        self.home = home

    def controller(self, job_id: str) -> ContextManager[Any]:
        return ControllerLock(self.home, job_id)

    def controller_alive(self, job_id: str) -> bool:
        return controller_alive(self.home, job_id)

    def poll(self, site: str) -> ContextManager[Any]:
        return PollLock(self.home, site)

    def stack(self, stack: str, wait: bool = False) -> ContextManager[Any]:
        return StackLock(self.home, stack, wait)


class AdvisoryLocks:
    """Locks across machines: PostgreSQL session advisory locks, each on a connection of its own held for
    the lock's life. PostgreSQL releases them when that session ends (the process died, or its host did:
    TCP keep-alives end the session), so a dead controller's job is free to take over."""

    def __init__(self, db: "Database"):
        self.db = db

    def controller(self, job_id: str) -> ContextManager[None]:
        return self._held(f"controller:{job_id}", False, lambda holder: _controller_refused(job_id, holder))

    def controller_alive(self, job_id: str) -> bool:
        return self._holder(f"controller:{job_id}") is not None

    def poll(self, site: str) -> ContextManager[None]:
        return self._held(f"poll:{site}", True, None)

    def stack(self, stack: str, wait: bool = False) -> ContextManager[None]:
        return self._held(f"stack:{stack}", wait, lambda holder: _stack_refused(stack, holder))

    @contextmanager
    def _held(self, name: str, wait: bool, refused: Any) -> Iterator[None]:
        from sqlalchemy import text

        from squall.database import lock_key

        key = lock_key(name)
        connection = self.db.engine.connect()
        try:
            if wait:
                connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            elif not connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
                raise refused(self._holder(name) or "another process")
            connection.commit()  # a session lock outlives the transaction; none is left open meanwhile
            yield
        finally:
            _release(connection, key)

    def _holder(self, name: str) -> str | None:
        """Who holds NAME's lock (its ``application_name``: ``squall pid P on HOST``), or None."""
        from squall.database import lock_key

        key = lock_key(name) & 0xFFFFFFFFFFFFFFFF  # pg_locks splits a bigint key in two unsigned halves
        rows = self.db.rows(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
            "AND l.classid::bigint = ? AND l.objid::bigint = ?", (key >> 32, key & 0xFFFFFFFF))
        return (rows[0][0] or "another process") if rows else None


def _release(connection: Any, key: int) -> None:
    """Unlock and hand the connection back; a broken one is discarded (its session, and lock, end with it)."""
    from sqlalchemy import text

    try:
        connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        connection.commit()
    except Exception:  # noqa: BLE001 - the session is gone or unusable: closing it releases the lock
        connection.invalidate()
    finally:
        connection.close()
