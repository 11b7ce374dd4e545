"""The local transport (``squall.sites.transports.contract``): this machine, its job folders under the Squall home.

The runtime is the package's own file, so there is nothing to install or
check. Its functions run in this process (stage, read, poll, start, stop,
list), the runtimes they start get a clean environment, and a start runs
under ``uninterrupted()``: a Ctrl-C never cuts it between launching a task
and recording it. Loading an image runs the runtime as a child in its own
session. Inputs are copied by the kernel, several files at once, and not
hashed (see ``LocalHost.stage``). Outputs are linked into the results folder
(copied across file systems), each checked against the runtime's manifest;
the work area keeps its link until ``down``.
Waiting for a state change is woken by a runtime's exit (a pidfd per runtime).
"""

from __future__ import annotations

import errno
import json
import os
import select
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from squall.errors import SquallError
from squall.interrupts import uninterrupted
from squall.results import writing_results
from squall.runtime import runtime_path, runtime_sha256
from squall.runtime import squall_runtime as runtime
from squall.sites.transports.contract import AGENT_TIMEOUT, ByteProgress, HostFacts, Transport, Upload
from squall.transfer import SourceDigests, copy_file, copy_unchanged, identity, sha256_file

# what a runtime started here gets from the controller's environment (the container engine's settings
# included); the payload's own environment is scrubbed by the runtime
RUNTIME_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "CONTAINERS_CONF", "XDG_RUNTIME_DIR")
COPIES_RECORD = ".squall-copies.json"  # in a job folder: the inputs copied there, and from what
COPIERS = 4  # files copied at once (the kernel copies release the GIL: every core works)


class LocalHost(Transport):
    owns_work_root = True  # the work root is inside this store's home
    remote = False
    poll_interval = 0.2  # a poll reads a few files; a runtime's exit wakes the wait anyway

    def __init__(self, name: str, work_root: Path):
        super().__init__(name, str(work_root))
        self.slots_dir = str(work_root.parent / "slots")  # every job of the site shares this machine's cores

    def __str__(self) -> str:
        return f"{self.name} (this machine)"

    def agent(self, *args: str, stdin: bytes | None = None, retry: bool = True,
              timeout: float = AGENT_TIMEOUT) -> dict:
        command, rest = args[0], list(args[1:])
        if command == "poll":
            return runtime.poll(rest[1:])  # "poll none JOB_DIR...": this machine has no scheduler
        if command == "stop":
            return runtime.stop(rest[0], remove=rest[1:] == ["remove"])
        if command == "inventory":
            return {"folders": runtime.job_folders(rest[0]), "jobs": []}
        if command == "peers":
            return runtime.peer_keys(rest[0], rest[1], json.loads(stdin or b"{}"))
        if command == "start":
            with uninterrupted():  # every runtime started is recorded before a signal is acted on
                return runtime.start(rest[0], [int(i) for i in rest[1:]], env=_runtime_env())
        return self._child(args, stdin)

    def _child(self, args: tuple[str, ...], stdin: bytes | None) -> dict:
        env = _runtime_env()
        with uninterrupted():
            done = subprocess.run([sys.executable, "-I", "-S", str(runtime_path()), *args], input=stdin or b"",
                                  env=env, capture_output=True, start_new_session=True)
        try:
            return json.loads(done.stdout)
        except ValueError:
            said = (done.stderr or done.stdout).decode(errors="replace").strip()[-500:]
            raise SquallError(f"the runtime's {args[0]} failed on this machine: {said}") from None

    def facts(self) -> HostFacts:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return HostFacts(str(Path.home()), os.cpu_count() or 1, memory >> 20, runtime_sha256())

    def check_runtime(self, site: str, facts: HostFacts) -> None:
        """The runtime is this package's own file."""

    def write_owner(self, job_dir: str, owner: dict, create: bool = False) -> None:
        folder = Path(job_dir)
        if create:
            folder.parent.mkdir(parents=True, exist_ok=True)
            folder.mkdir(mode=0o700, exist_ok=True)
        runtime.write_json(str(folder / "owner.json"), owner)

    # staging --------------------------------------------------------------------

    def stage(self, job_dir: str, files: dict[str, tuple[bytes, int]], uploads: list[Upload],
              digests: SourceDigests, progress: ByteProgress) -> None:
        """Write ``files``; copy each input by the kernel unless its copy still stands.

        No input is hashed here: a copy is the source as it was when its size,
        mtime and inode held from before to after the copy, which is all a
        sha256 of the source, taken just before, could prove about it. The
        record of the copies (``COPIES_RECORD``: each copy's size and
        mtime, its source's identity, the sha256 when known) tells a later
        staging which copies stand without reading a byte.
        """
        folder = Path(job_dir)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # as the runtime makes it on a remote host
        for rel, (data, mode) in files.items():
            target = Path(runtime.inside(job_dir, rel))
            target.parent.mkdir(parents=True, exist_ok=True)
            runtime.write_bytes_atomically(str(target), data, mode)
        targets = {u.rel: os.path.join(job_dir, u.rel) for u in uploads}  # strings: pathlib costs 15 us a file
        record = runtime.read_json(os.path.join(job_dir, COPIES_RECORD), {}) or {}
        todo = [u for u in uploads if not _copy_stands(record.get(u.rel), targets[u.rel], u, digests)]
        progress.set_missing(self, sum(u.size for u in todo))
        resolve = runtime.resolver(job_dir)  # each folder checked once: the inputs stay inside the job folder
        for parent in {os.path.dirname(resolve(u.rel)) for u in todo}:
            os.makedirs(parent, exist_ok=True)

        def copy(upload: Upload) -> tuple[str, dict]:
            target = targets[upload.rel]
            before = identity(upload.source.stat())
            sha256 = upload.sha256 or digests.known(upload.source)  # for the record: it outlives a touch
            with uninterrupted():
                copy_unchanged(upload.source, target, before)
            progress.add(self, upload.size)
            stat = os.stat(target)
            return upload.rel, {"copy": [stat.st_size, stat.st_mtime_ns], "source": list(before), "sha256": sha256}

        pool = ThreadPoolExecutor(COPIERS)
        copied: dict[str, dict] = {}
        try:
            for rel, entry in pool.map(copy, todo):
                copied[rel] = entry
        finally:  # on Ctrl-C the copies not yet started are dropped; what is done is recorded
            pool.shutdown(wait=True, cancel_futures=True)
            if copied:
                _remember_copies(job_dir, copied)

    # collecting -------------------------------------------------------------------

    def read_files(self, job_dir: str, rels: list[str]) -> dict[str, bytes | None]:
        found: dict[str, bytes | None] = {}
        for rel in rels:
            try:
                found[rel] = Path(runtime.inside(job_dir, rel)).read_bytes()
            except (OSError, ValueError):
                found[rel] = None
        return found

    def download(self, source: str, destination: Path, entry: dict) -> None:
        """Link one output into the results folder after checking it against the manifest (a copy across file
        systems). The work area keeps its own link until ``down``, so a file that vanishes from the results
        folder before collect ends can be collected again."""
        origin = Path(source)
        if origin.is_symlink() or not origin.is_file():
            raise ValueError("missing or not a regular file")
        if origin.stat().st_size != entry["size"] or sha256_file(origin) != entry["sha256"]:
            raise ValueError("size or sha256 differs from the manifest")
        with writing_results(destination):
            destination.parent.mkdir(parents=True, exist_ok=True)
            if destination.exists() and os.path.samefile(origin, destination):
                return  # linked by an interrupted collect
            linking = destination.with_name(f".{destination.name}.squall-link")
            try:
                linking.unlink(missing_ok=True)
                os.link(origin, linking)
                os.replace(linking, destination)
            except OSError as exc:
                linking.unlink(missing_ok=True)
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                    raise
                _copy_across(origin, destination, entry)

    def read_log(self, job_dir: str, path: str, offset: int) -> bytes | None:
        try:
            with open(path, "rb") as handle:
                handle.seek(offset)
                return handle.read()
        except FileNotFoundError:
            return b"" if Path(job_dir).is_dir() else None

    # waiting ------------------------------------------------------------------------

    def wait(self, job_dirs: list[str], timeout: float) -> bool:
        """Sleep until one of the jobs' runtimes exits (a pidfd each: True), or ``timeout`` (False)."""
        descriptors = []
        try:
            for job_dir in job_dirs:
                launch = runtime.read_json(os.path.join(job_dir, "launch.json"), {}) or {}
                for index, pid in (launch.get("pids") or {}).items():
                    if runtime.runtime_alive(pid, os.path.join(job_dir, f"task-{index}")):
                        try:
                            descriptors.append(os.pidfd_open(int(pid)))
                        except OSError:
                            return True  # it just exited: poll again now
            if descriptors:  # poll, not select: a busy process's descriptors may be numbered past 1024
                waiting = select.poll()
                for fd in descriptors:
                    waiting.register(fd, select.POLLIN)
                return bool(waiting.poll(timeout * 1000))
            time.sleep(timeout)
            return False
        finally:
            for fd in descriptors:
                os.close(fd)


def _runtime_env() -> dict[str, str]:
    return {key: os.environ[key] for key in RUNTIME_ENV if key in os.environ}


def _remember_copies(job_dir: str, copied: dict[str, dict]) -> None:
    """Add ``copied`` to the folder's record, as it is now (an image folder is shared by jobs)."""
    path = os.path.join(job_dir, COPIES_RECORD)
    record = runtime.read_json(path, {}) or {}
    record.update(copied)
    runtime.write_json(path, record)


def _copy_stands(entry: dict | None, target: str, upload: Upload, digests: SourceDigests) -> bool:
    """Whether ``target`` is still the copy ``entry`` records: its size and mtime unchanged, and its source
    either unchanged (size, mtime, inode) or now known to have the very sha256 copied (a touched file)."""
    if not isinstance(entry, dict):  # none, or a record of another form
        return False
    try:
        copy, source = os.stat(target), upload.source.stat()
    except OSError:
        return False
    if entry.get("copy") != [copy.st_size, copy.st_mtime_ns]:
        return False
    if entry.get("source") == list(identity(source)):
        return True
    return entry.get("sha256") is not None and entry["sha256"] == (upload.sha256 or digests.known(upload.source))


def _copy_across(source: Path, destination: Path, entry: dict) -> None:
    """Copy to another file system (the source stays until ``down``). A copy cut short (a full folder) leaves
    no half file behind."""
    if copy_file(source, destination) != entry["sha256"]:
        destination.unlink()
        raise ValueError("changed while being copied")

