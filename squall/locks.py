"""One controller per job, proven by an OS file lock.

The lock dies with its process, so after ``kill -9`` of a controller anyone
can tell the job is orphaned (and ``job attach`` can take it over) without
trusting a pid written in a file.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from squall.errors import Refused
from squall.paths import ensure_private_dir


class ControllerLock:
    def __init__(self, home: Path, job_id: str):
        self.path = ensure_private_dir(home / "locks") / f"{job_id}.lock"
        self.job_id = job_id
        self._handle = None

    def __enter__(self) -> "ControllerLock":
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise Refused(
                f"job {self.job_id} is already being driven by pid {holder}",
                hint="wait for it, or use 'squall job cancel' to stop the job",
            ) from None
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._handle is not None:
            self._handle.close()  # closing releases the flock
            self._handle = None


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
