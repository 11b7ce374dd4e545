"""The transport part of a site: one machine that holds job folders, how files move to and from it, and how
its runtime is asked things. Two kinds: this machine (``local_host.LocalHost``) and a machine reached over
SSH, optionally through a jump host (``remote_host.RemoteHost``).

Every transport runs the same runtime file as the controller's agent (write a job's small files and say
which inputs are missing, read small files, start, poll, stop, list), so the executors and the assembled
site (``squall.sites.assembled``) never know which kind they talk to.
"""

from __future__ import annotations

import re
import threading
import time
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from squall.errors import SquallError
from squall.interrupts import uninterrupted
from squall.sites.contract import Reporter
from squall.transfer import SourceDigests

AGENT_TIMEOUT = 300.0  # seconds an agent call may go without an answer (a silent host: unreachable)

JOB_FOLDER = re.compile(r"^[0-9a-z-]+$")


@dataclass(frozen=True)
class Upload:
    """One input to send: its path in the job folder, where it comes from, and its size (its sha256 comes
    from ``SourceDigests``, or is given when already known, as for an image archive)."""

    rel: str
    source: Path
    size: int
    sha256: str | None = None

    def entry(self, digests: SourceDigests) -> dict:
        return {"path": self.rel, "size": self.size, "sha256": self.sha256 or digests.of(self.source)}


@dataclass(frozen=True)
class HostFacts:
    """What a host said about itself when the site was checked."""

    home: str
    cpus: int
    memory_mb: int
    runtime_sha256: str | None


class Transport(ABC):
    """One machine of a site: its job folders under ``work_root``, its runtime agent, files both ways."""

    slots_dir = "~/.squall/slots"  # the runtime's slot locks, shared by every job on the machine
    owns_work_root = False  # True: every folder under the work root is this store's (it lives in its home)
    remote = True  # a call costs a round trip (controllers share one poll per interval)
    poll_interval = 1.0  # seconds between polls while monitoring

    def __init__(self, name: str, work_root: str, declared: dict[str, int | None] | None = None):
        self.name = name
        self.work_root = work_root.rstrip("/")
        self.declared = declared or {}  # cpus, memory_mb, gpus the site gives this machine (None: ask it)

    def job_dir(self, job_id: str) -> str:
        if not JOB_FOLDER.match(job_id):
            raise SquallError(f"job id {job_id!r} is not a Squall job id")
        return f"{self.work_root}/squall-{job_id}"

    def check_job_dir(self, path: str) -> None:
        """Refuse any path that is not one of this machine's job folders (never remove anything else)."""
        if not re.match(rf"^{re.escape(self.work_root)}/squall-[0-9a-z-]+$", path):
            raise SquallError(f"refusing to remove {path!r}: not a Squall job folder under {self.work_root}")

    @abstractmethod
    def agent(self, *args: str, stdin: bytes | None = None, retry: bool = True,
              timeout: float = AGENT_TIMEOUT) -> dict:
        """One runtime agent call; its JSON answer (a host silent for ``timeout`` seconds: ``SiteUnreachable``)."""

    @abstractmethod
    def facts(self) -> HostFacts: ...

    @abstractmethod
    def check_runtime(self, site: str, facts: HostFacts) -> None:
        """Raise ``MissingDependency`` unless the machine runs this controller's very runtime file."""

    @abstractmethod
    def write_owner(self, job_dir: str, owner: dict, create: bool = False) -> None:
        """The job folder's owner marker (``owner.json``); ``create`` makes the folder."""

    def remove_dir(self, path: str) -> None:
        """Stop whatever the runtime started in a job folder and remove it (never anything else)."""
        self.check_job_dir(path)
        self.agent("stop", path, "remove")

    @abstractmethod
    def stage(self, job_dir: str, files: dict[str, tuple[bytes, int]], uploads: list[Upload],
              digests: SourceDigests, progress: "ByteProgress") -> None:
        """Write ``files`` and bring every input that is not already an exact copy; resumable."""

    @abstractmethod
    def read_files(self, job_dir: str, rels: list[str]) -> dict[str, bytes | None]: ...

    @abstractmethod
    def download(self, source: str, destination: Path, entry: dict) -> None:
        """Bring one output into the results folder, checked against its manifest ``entry``."""

    @abstractmethod
    def read_log(self, job_dir: str, path: str, offset: int) -> bytes | None:
        """A file of a job folder from ``offset``: b"" while it does not exist yet, None once the folder is gone."""

    def wait(self, job_dirs: list[str], timeout: float) -> bool:
        """Until a task of these jobs may have changed state (True), or ``timeout`` (False)."""
        time.sleep(timeout)
        return False

    def close(self) -> None:
        """Release connections."""


class ByteProgress:
    """Bytes staged, reported from several copying threads and hosts."""

    def __init__(self, reporter: Reporter, total: int):
        self.reporter, self.total = reporter, total
        self.left: dict[str, int] = {}  # host name -> bytes it still lacks
        self.lock = threading.Lock()

    def _report(self) -> None:
        self.reporter.bytes_staged(self.total - sum(self.left.values()), self.total)

    def set_missing(self, host: Transport, missing: int) -> None:
        """``host`` lacks ``missing`` bytes (asked again after a dropped connection)."""
        with self.lock:
            self.left[host.name] = missing
            self._report()

    def add(self, host: Transport, count: int) -> None:
        with self.lock:
            self.left[host.name] = max(0, self.left.get(host.name, 0) - count)
            self._report()

    def finish(self) -> None:
        self.reporter.bytes_staged(self.total, self.total)


def each_host(action, work: dict) -> dict:
    """``action(host, item)`` for every host at once (one thread per host); answers by host.

    One host runs inline. Threads are started with signals held (a Ctrl-C
    landing inside ``Thread.start`` leaves the thread half made); waiting for
    them can be interrupted.
    """
    if len(work) <= 1:
        return {host: action(host, item) for host, item in work.items()}
    with ThreadPoolExecutor(len(work)) as pool:
        with uninterrupted():
            futures = {host: pool.submit(action, host, item) for host, item in work.items()}
        return {host: future.result() for host, future in futures.items()}
