"""One controller per job, proven by an OS file lock.

The lock dies with its process, so after ``kill -9`` of a controller anyone
can tell the job is orphaned (and ``job attach`` can take it over) without
trusting a pid written in a file.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from squall.errors import Refused
from squall.paths import ensure_private_dir


class ControllerLock:
    def __init__(self, home: Path, job_id: str):
        self.path = ensure_private_dir(home / "locks") / f"{job_id}.lock"
        self.job_id = job_id
        self._handle = None

    def __enter__(self) -> "ControllerLock":
        self._handle, holder = _exclusive(self.path, wait=False)
        if self._handle is None:
            raise Refused(
                f"job {self.job_id} is already being driven by pid {holder}",
                hint="wait for it, or use 'squall job cancel' to stop the job",
            )
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
            raise Refused(f"stack {self.stack} is being changed by pid {holder}",
                          hint="wait for that run to finish, then try again")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
