"""The SSH transport (``squall.sites.transports.contract``): one machine Squall reaches over SSH (optionally through a jump host), and what moves to it.

A remote site is a list of these (an HPC login node, a group of plain
machines, a cloud job's nodes) plus an executor. Each host runs the same
runtime file, installed by enrolment, as the controller's agent: one remote
command writes the small files of a job and says which inputs are missing,
reads many small files at once, polls, stops and lists. Inputs and outputs
travel over SFTP (no shell), resumably, each checked by size and sha256.
"""

from __future__ import annotations

import base64
import json
import posixpath
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from squall.errors import Interrupted, MissingDependency, OutputsKept, SquallError
from squall.results import writing_results
from squall.runtime import BUNDLE_DIGEST_SH, bundle_files, runtime_sha256, runtime_version
from squall.runtime.squall_runtime import part_of
from squall.sites.transports import bulk_upload
from squall.sites.transports.ssh_session import JumpConnection, SshSession
from squall.sites.transports.contract import AGENT_TIMEOUT, ByteProgress, HostFacts, Transport, Upload
from squall.transfer import SourceDigests, sha256_file

ANSWER_MARGIN = 20.0  # seconds past a remote wait's own length before its host counts as silent
CHUNK = 1 << 20
UPLOAD_CHANNELS = 4  # parallel SFTP channels over the one connection (about 2x one channel here)
RUNTIME_DIR = ".squall/runtime/current"  # under the account's home: the runtime bundle's folder
RUNTIME = f"{RUNTIME_DIR}/squall_runtime.py"


class RemoteHost(Transport):
    def __init__(self, name: str, ssh: SshSession, work_root: str, declared: dict[str, int | None] | None = None):
        super().__init__(name, work_root, declared)
        self.ssh = ssh
        self._home: str | None = None
        self._asking_home = threading.Lock()
        self._polled_at = 0.0  # when this controller's last poll began, by the host's clock

    def __str__(self) -> str:
        return f"{self.name} ({self.ssh.user}@{self.ssh.host}:{self.ssh.port})"

    # paths and the agent ------------------------------------------------

    def runtime(self, retry: bool = True) -> str:
        with self._asking_home:  # threads asking ahead and the host check share one answer
            if self._home is None:
                home = self.ssh.run(["printenv", "HOME"], retry=retry).strip()
                if not home.startswith("/"):
                    raise SquallError(f"host {self}: the account's HOME is {home!r}, not a folder")
                self._home = home
        return f"{self._home}/{RUNTIME}"

    def agent(self, *args: str, stdin: bytes | None = None, retry: bool = True,
              timeout: float = AGENT_TIMEOUT) -> dict:
        """One call of the runtime's agent, kept running on the host between calls (``runtime serve``)."""
        answer = json.loads(self.ssh.call(["python3", "-I", "-S", self.runtime(retry), "serve"], list(args), stdin,
                                          retry, timeout))
        if args[0] == "poll":
            self._polled_at = answer["started"]  # the host's clock: what ``wait`` compares status files with
        return answer

    def wait(self, job_dirs: list[str], timeout: float) -> bool:
        """Until a task's status file is replaced on the host (the runtime looks a few times a second, there),
        or ``timeout``: a task's end is seen at once, while the scheduler is asked no more often. A status
        file written since this controller's last poll began ends it at once (that poll may have missed it;
        after a poll shared by another controller, one poll more is the cost). A host that
        does not answer is not retried here: the wait lasts its timeout and the poll that follows says what
        became of the host."""
        started = time.monotonic()
        try:
            waited = min(timeout, 60)
            return self.agent("wait", f"{waited:.3f}", f"{self._polled_at:.6f}", *job_dirs, retry=False,
                              timeout=waited + ANSWER_MARGIN)["changed"]
        except Interrupted:
            raise
        except SquallError:
            time.sleep(max(0.0, timeout - (time.monotonic() - started)))
            return False

    def facts(self) -> HostFacts:
        """Home, CPUs, memory and the installed runtime bundle's digest, in one round trip (a fixed script)."""
        out = self.ssh.run(["sh", "-c", 'echo "$HOME"; nproc; sed -n "s/^MemTotal: *\\([0-9]*\\).*/\\1/p" '
                                        f'/proc/meminfo; cd "$HOME/{RUNTIME_DIR}" 2>/dev/null && [ -f squall_runtime.py ] '
                                        f'&& {BUNDLE_DIGEST_SH} || echo missing'])
        home, cpus, memory_kb, installed = (out.splitlines() + ["", "", "", "missing"])[:4]
        if not home.strip().startswith("/"):
            raise SquallError(f"host {self}: no answer to the host check (got {out.strip()[:100]!r})")
        with self._asking_home:
            self._home = home.strip()
        return HostFacts(self._home, int(cpus or 1), int(memory_kb or 0) // 1024,
                         None if installed.startswith("missing") else installed.split()[0])

    def check_runtime(self, site: str, facts: HostFacts) -> None:
        """The host runs this controller's very runtime file, or the site needs enrolling again."""
        if facts.runtime_sha256 is None:
            raise MissingDependency(f"site {site!r}: host {self} has no Squall runtime installed",
                                    hint=f"squall site enrol {site}")
        if facts.runtime_sha256 != runtime_sha256():
            version = self.ssh.run(["python3", self.runtime(), "version"], check=False).strip()
            raise MissingDependency(
                f"site {site!r}: host {self} runs Squall runtime {version or '?'} ({facts.runtime_sha256[:12]}), "
                f"this controller needs {runtime_version()} ({runtime_sha256()[:12]})",
                hint=f"squall site enrol {site}",
            )

    def install_runtime(self) -> bool:
        """Push this controller's runtime bundle over SFTP unless the host already has those very files
        (machines made for one job have none): into a fresh folder, checked by digest before it replaces the
        version's folder and becomes ``current``. Returns whether it was sent."""
        facts = self.facts()
        if facts.runtime_sha256 == runtime_sha256():
            return False
        folder = f"{facts.home}/.squall/runtime/{runtime_version()}"
        part = f"{folder}.part"
        self.ssh.run(["sh", "-c", 'rm -rf -- "$1" && mkdir -p -m 700 -- "$1/schedulers"', "sh", part])
        for name, source in bundle_files().items():
            self.ssh.retrying(lambda s=source, n=name: self.ssh.sftp().put(str(s), f"{part}/{n}"), "runtime upload")
        script = (f'cd "$1" && [ "$({BUNDLE_DIGEST_SH})" = "$2" ] && chmod 755 squall_runtime.py '
                  '&& rm -rf -- "$3" && mv -f -- "$1" "$3" && ln -sfn -- "$3" "$4"')
        out = self.ssh.run(["sh", "-c", script, "sh", part, runtime_sha256(), folder,
                            f"{facts.home}/.squall/runtime/current"], check=False)
        if self.facts().runtime_sha256 != runtime_sha256():
            raise SquallError(f"host {self}: the runtime arrived damaged (sha256 mismatch) {out.strip()}".rstrip())
        return True

    # the job folder ---------------------------------------------------------

    def write_owner(self, job_dir: str, owner: dict, create: bool = False) -> None:
        """The job folder's owner marker (``owner.json``), in one remote call; ``create`` makes the folder.

        Another store's gc reads it to leave this folder alone until it expires.
        """
        script = ('{ [ -z "$2" ] || mkdir -p -m 700 -- "$1"; } && [ -d "$1" ] '
                  '&& cat > "$1/.owner.json.tmp" && mv -f -- "$1/.owner.json.tmp" "$1/owner.json"')
        self.ssh.run(["sh", "-c", script, "sh", job_dir, "create" if create else ""], stdin=json.dumps(owner).encode())

    # staging ------------------------------------------------------------------

    def stage(self, job_dir: str, files: dict[str, tuple[bytes, int]], uploads: list[Upload],
              digests: SourceDigests, progress: ByteProgress) -> None:
        """Write ``files`` and upload every input that is not already an exact copy, resumably.

        One agent call writes the small files and says which inputs are missing
        (and how much of each already arrived); the missing ones then travel as
        one tar stream through OpenSSH (``bulk_upload``), or over parallel SFTP
        channels, which also resume a file partly there. After a dropped
        connection the agent is asked again, so only what is still missing is sent.
        """
        digests.all([u.source for u in uploads if not u.sha256])  # every core, before the agent needs them
        manifest = [u.entry(digests) for u in uploads]
        sources = {u.rel: u.source for u in uploads}
        small = {rel: {"data": base64.b64encode(data).decode(), "mode": mode} for rel, (data, mode) in files.items()}
        todo = self.agent("stage", job_dir, stdin=json.dumps({"files": small, "inputs": manifest}).encode())

        def upload_missing() -> None:
            nonlocal todo
            if todo is None:  # after a dropped connection: what is still missing?
                todo = self.agent("stage", job_dir, stdin=json.dumps({"files": {}, "inputs": manifest}).encode())
            progress.set_missing(self, sum(e["size"] for e in manifest if e["path"] in todo["missing"]))
            current, todo = todo, None
            resumed = [rel for rel in current["missing"] if current["partial"].get(rel)]
            whole = [rel for rel in current["missing"] if not current["partial"].get(rel)]
            if whole and bulk_upload.available():  # packed and encrypted by OpenSSH and tar, off this process
                bulk_upload.upload(self.ssh, job_dir, [(sources[rel], part_of(rel)) for rel in whole],
                                   lambda count: progress.add(self, count))
                whole = []
            self._upload_parallel([(sources[rel], f"{job_dir}/{part_of(rel)}", current["partial"].get(rel, 0))
                                   for rel in resumed + whole], progress)

        if todo["missing"]:
            self.ssh.retrying(upload_missing, "upload")
            left = self.agent("stage", job_dir, stdin=json.dumps({"files": {}, "inputs": manifest}).encode())
            if left["missing"]:
                raise SquallError(f"staging to {self}: {len(left['missing'])} inputs differ after upload: "
                                  f"{left['missing'][:3]}")

    def _upload_parallel(self, uploads: list[tuple[Path, str, int]], progress: ByteProgress) -> None:
        """Send files (appending from the offset given, for a resumed upload) over parallel SFTP channels.

        A file is written under its upload name (``part_of``): the agent moves it under its own once its size
        and sha256 are right, and a short one is resumed from its size.
        """
        if not uploads:
            return
        transport = self.ssh.transport()
        lanes = [uploads[i::UPLOAD_CHANNELS] for i in range(min(UPLOAD_CHANNELS, len(uploads)))]

        def lane(batch: list[tuple[Path, str, int]]) -> None:
            import paramiko

            sftp = paramiko.SFTPClient.from_transport(transport)
            try:
                for source, target, offset in batch:
                    offset = offset if offset <= source.stat().st_size else 0
                    with open(source, "rb") as src, sftp.open(target, "ab" if offset else "wb") as dst:
                        dst.set_pipelined(True)
                        src.seek(offset)
                        while block := src.read(CHUNK):
                            dst.write(block)
                            progress.add(self, len(block))
            finally:
                sftp.close()

        with ThreadPoolExecutor(len(lanes)) as pool:
            for future in [pool.submit(lane, batch) for batch in lanes]:
                future.result()

    # collecting -----------------------------------------------------------------

    def read_files(self, job_dir: str, rels: list[str]) -> dict[str, bytes | None]:
        found = self.agent("read", job_dir, stdin=json.dumps(rels).encode())
        return {rel: None if data is None else base64.b64decode(data) for rel, data in found.items()}

    def download(self, source: str, destination: Path, entry: dict) -> None:
        """Fetch one file, resuming a partial copy; verify its size and sha256 against the manifest ``entry``.

        Only the results folder is written: any error writing there is
        ``OutputsKept`` (the job's files stay at the site), never retried as a
        dropped connection.
        """
        if destination.exists() and destination.stat().st_size == entry["size"] \
                and sha256_file(destination) == entry["sha256"]:
            return
        partial = destination.with_name(f".{destination.name}.partial")
        with writing_results(destination):
            destination.parent.mkdir(parents=True, exist_ok=True)
            local = open(partial, "ab")

        def attempt() -> None:
            sftp = self.ssh.sftp()
            offset = local.tell()  # resume after a dropped connection, or an earlier controller
            with sftp.open(source, "rb") as src:
                src.prefetch()
                src.seek(offset)
                while block := src.read(CHUNK):
                    with writing_results(destination):
                        local.write(block)

        try:
            try:
                self.ssh.retrying(attempt, f"download {posixpath.basename(source)}")
            finally:
                with writing_results(destination):
                    local.close()
        except OutputsKept:
            partial.unlink(missing_ok=True)  # a full or read-only folder: no half file left behind
            raise
        if (partial.stat().st_size != entry["size"] or sha256_file(partial) != entry["sha256"]):
            partial.unlink()
            raise ValueError("size or sha256 differs from the runtime's manifest")
        with writing_results(destination):
            partial.replace(destination)

    def read_log(self, job_dir: str, path: str, offset: int) -> bytes | None:
        """A file of a job folder from ``offset``: b"" while it does not exist yet, None once the folder is gone."""

        def attempt() -> bytes | None:
            sftp = self.ssh.sftp()
            try:
                with sftp.open(path, "rb") as handle:
                    handle.seek(offset)
                    return handle.read()
            except FileNotFoundError:
                try:
                    sftp.stat(job_dir)
                    return b""
                except FileNotFoundError:
                    return None

        return self.ssh.retrying(attempt, "read log")

    def close(self) -> None:
        self.ssh.close()


def inventory_hosts(name: str, home: Path, store, inventory) -> list[RemoteHost]:
    """The inventory's hosts as SSH transports (through its jump host, if any)."""
    hop = inventory.vars.squall_jump_host
    jump = JumpConnection(hop.hop, home / "known_hosts") if hop else None  # one connection for every host

    def note_retry(what: str, error: Exception) -> None:
        store.record(None, "ssh", "retry", site=name, action=what, error=repr(error))

    return [RemoteHost(host_name, SshSession(host.ansible_host, host.ansible_port, host.ansible_user,
                                             inventory.key_of(host), home / "known_hosts", on_retry=note_retry,
                                             jump=jump),
                       inventory.vars.squall_work_root,
                       {key: getattr(host, f"squall_{key}", None) for key in ("cpus", "memory_mb", "gpus")})
            for host_name, host in inventory.hosts]
