"""The ``hpc`` site: an HPC centre's login node over SSH, and its Slurm.

The job folder is ``<work_root>/squall-<job-id>/`` with one ``task-<i>/`` per
task, laid out exactly like the local site's, so the same runtime runs there.
All tasks go to Slurm as one job array named ``squall-<job-id>`` whose comment
carries the owner tags. The installed runtime also serves as the controller's
agent on the login node (``verify``, ``poll``, ``inventory``): one remote
command answers for every job at the site.
"""

from __future__ import annotations

import base64
import json
import posixpath
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from squall.errors import InvalidInput, MissingDependency, OutputsKept, Refused, SquallError
from squall.inventory import Partition, SiteInventory
from squall.jobs import TAG_VALUE
from squall.runtime import runtime_sha256, runtime_version
from squall.sites.base import (
    Capability,
    Claim,
    CollectedTask,
    JobPlan,
    LiveResource,
    Reporter,
    Site,
    TaskState,
)
from squall.sites.ssh import SshSession
from squall.spec import parse_walltime
from squall.store import Store
from squall.results import writing_results
from squall.templating import templates
from squall.transfer import cached_sha256, sha256_file
from squall.workarea import (
    KILL_GRACE,
    META_FILES,
    TaskStatus,
    collect_outputs,
    input_list,
    task_document,
    task_folder,
)

LEASE_ALLOWANCE = 600  # seconds past the expected end, for owner tags of a job without a lease yet
SLURM_MARGIN = 30  # Slurm's limit is the walltime plus this: the runtime times out first
SLURM_ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
               "BOOT_FAIL", "DEADLINE"}
LOST_AFTER = 120  # seconds after launch with neither a Slurm record nor a runtime status
CHUNK = 1 << 20
UPLOAD_CHANNELS = 4  # parallel SFTP channels over the one connection (about 2x one channel here)


class HpcSite(Site):
    kind = "hpc"
    capabilities = frozenset({Capability.CONTAINERS, Capability.GPUS})
    shared_poll = True
    poll_interval = 1.0

    def __init__(self, name: str, home: Path, store: Store, inventory: SiteInventory):
        super().__init__(name)
        self.store = store
        self.site_inventory = inventory
        self.work_root = inventory.vars.squall_work_root.rstrip("/")
        login = inventory.login
        jump = inventory.vars.squall_jump_host
        self.ssh = SshSession(login.ansible_host, login.ansible_port, login.ansible_user,
                              inventory.key_path, home / "known_hosts", on_retry=self._note_retry,
                              jump=jump.hop if jump else None)
        self._home: str | None = None

    def _note_retry(self, what: str, error: Exception) -> None:
        self.store.record(None, "ssh", "retry", site=self.name, action=what, error=repr(error))

    # paths ------------------------------------------------------------------

    def job_dir(self, job_id: str) -> str:
        if not re.match(r"^[0-9a-z-]+$", job_id):
            raise InvalidInput(f"job id {job_id!r} is not a Squall job id")
        return f"{self.work_root}/squall-{job_id}"

    @property
    def runtime(self) -> str:
        if self._home is None:
            self._home = self.ssh.run(["printenv", "HOME"]).strip()
        return f"{self._home}/.squall/runtime/current/squall_runtime.py"

    def _agent(self, *args: str, stdin: bytes | None = None) -> dict:
        return json.loads(self.ssh.run(["python3", self.runtime, *args], stdin=stdin))

    # planning -----------------------------------------------------------------

    def check(self, plan: JobPlan) -> None:
        self.partition_for(plan)
        spec = plan.spec
        if spec.image:
            allowed = self.site_inventory.vars.squall_container_runtimes
            if not allowed or (spec.runtime != "auto" and spec.runtime not in allowed):
                raise Refused(f"runtime: site {self.name!r} allows {allowed or 'no container runtime'}, "
                              f"not {spec.runtime}")
        # One round trip for both: a fixed script, no value of ours in it.
        home, _, installed = self.ssh.run(
            ["sh", "-c", 'echo "$HOME"; sha256sum < "$HOME/.squall/runtime/current/squall_runtime.py" '
                         '2>/dev/null || echo missing']).partition("\n")
        self._home = home.strip()
        if installed.startswith("missing"):
            raise MissingDependency(f"site {self.name!r} has no Squall runtime installed",
                                    hint=f"squall site enrol {self.name}")
        installed = installed.split()[0]
        if installed != runtime_sha256():
            version = self.ssh.run(["python3", self.runtime, "version"], check=False).strip()
            raise MissingDependency(
                f"site {self.name!r} runs Squall runtime {version or '?'} ({installed[:12]}), this controller "
                f"needs {runtime_version()} ({runtime_sha256()[:12]})",
                hint=f"squall site enrol {self.name}",
            )

    def partition_for(self, plan: JobPlan) -> Partition:
        res = plan.spec.resources
        reasons = []
        for partition in self.site_inventory.vars.squall_partitions:
            if res.walltime_seconds > parse_walltime(partition.max_walltime):
                reasons.append(f"{partition.name}: walltime above {partition.max_walltime}")
            elif res.cpus > partition.max_cpus_per_task:
                reasons.append(f"{partition.name}: more than {partition.max_cpus_per_task} cpus")
            elif res.gpus and (partition.name not in self.site_inventory.vars.squall_gpu_partitions
                               or res.gpus > partition.gpus_per_node):
                reasons.append(f"{partition.name}: not {res.gpus} GPUs")
            else:
                return partition
        raise Refused(f"resources: no partition of site {self.name!r} fits ({'; '.join(reasons)})")

    def max_duration(self, plan: JobPlan) -> float:
        return plan.walltime + SLURM_MARGIN + KILL_GRACE

    # lifecycle ------------------------------------------------------------------

    def up(self, plan: JobPlan, claim: Claim) -> None:
        job_dir = self.job_dir(plan.job_id)
        claim("jobdir", job_dir)
        claim("slurm", f"squall-{plan.job_id}")  # the array launch will submit under this name
        self._write_owner(plan, self._expiry(plan), create=True)

    def _expiry(self, plan: JobPlan) -> float:
        """What owner tags at the site say: the job's lease expiry (what this store's gc goes by)."""
        leases = self.store.leases(job_id=plan.job_id)
        if leases:
            return max(lease.expires_at for lease in leases)
        return time.time() + self.max_duration(plan) + LEASE_ALLOWANCE

    def _write_owner(self, plan: JobPlan, expires: float, create: bool = False) -> None:
        """The job folder's owner marker (``owner.json``: the owner tags and expiry), in one remote call.

        Another store's gc reads it to leave this folder alone until it expires.
        """
        job_dir = self.job_dir(plan.job_id)
        owner = json.dumps({**plan.tags, "squall:expires": str(int(expires))}).encode()
        script = ('{ [ -z "$2" ] || mkdir -p -m 700 -- "$1"; } && [ -d "$1" ] '
                  '&& cat > "$1/.owner.json.tmp" && mv -f -- "$1/.owner.json.tmp" "$1/owner.json"')
        self.ssh.run(["sh", "-c", script, "sh", job_dir, "create" if create else ""], stdin=owner)

    def stage(self, plan: JobPlan, reporter: Reporter) -> None:
        """Upload every input that is not already an exact copy (size and sha256), resumably.

        One agent call writes the small files and says which inputs are missing
        (and how much of each already arrived); the missing ones then travel
        over parallel SFTP channels. After a dropped connection the agent is
        asked again, so only what is still missing is sent.
        """
        job_dir = self.job_dir(plan.job_id)
        items = [(task.index, item) for task in plan.tasks for item in task.inputs]
        digests = cached_sha256(self.store, [item.path for _, item in items])
        manifest = [{"path": f"{task_folder(i)}/in/{item.rel}", "size": item.size, "sha256": digests[item.path]}
                    for i, item in items]
        sources = {entry["path"]: item.path for entry, (_, item) in zip(manifest, items)}
        files = {"job.sh": (self.batch_script(plan).encode(), 0o700)}
        for task in plan.tasks:
            files.update(self._task_files(plan, task.index, [item.rel for item in task.inputs]))
        small = {rel: {"data": base64.b64encode(data).decode(), "mode": mode} for rel, (data, mode) in files.items()}
        todo = self._agent("stage", job_dir, stdin=json.dumps({"files": small, "inputs": manifest}).encode())
        progress = _ByteProgress(reporter, sum(e["size"] for e in manifest))

        def upload_missing() -> None:
            nonlocal todo
            if todo is None:  # after a dropped connection: what is still missing?
                todo = self._agent("stage", job_dir, stdin=json.dumps({"files": {}, "inputs": manifest}).encode())
            progress.set_missing(sum(e["size"] for e in manifest if e["path"] in todo["missing"]))
            current, todo = todo, None
            self._upload_parallel([(sources[rel], f"{job_dir}/{rel}", current["partial"].get(rel, 0))
                                   for rel in current["missing"]], progress)

        if todo["missing"]:
            self.ssh.retrying(upload_missing, "upload")
            left = self._agent("stage", job_dir, stdin=json.dumps({"files": {}, "inputs": manifest}).encode())
            if left["missing"]:
                raise SquallError(f"staging to {self.name}: {len(left['missing'])} inputs differ after upload: "
                                  f"{left['missing'][:3]}")
        progress.finish()

    def _upload_parallel(self, uploads: list[tuple[Path, str, int]], progress: "_ByteProgress") -> None:
        """Send files (appending from the offset given, for a resumed upload) over parallel SFTP channels.

        A file is written in place: until the agent has checked its size and
        sha256 nothing uses it, and a short one is resumed from its size.
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
                            progress.add(len(block))
            finally:
                sftp.close()

        with ThreadPoolExecutor(len(lanes)) as pool:
            for future in [pool.submit(lane, batch) for batch in lanes]:
                future.result()

    def _task_files(self, plan: JobPlan, index: int, inputs: list[str]) -> dict[str, tuple[bytes, int]]:
        """``task-<i>/`` files other than inputs: task.json, inputs.txt, the script."""
        name = task_folder(index)
        files: dict[str, tuple[bytes, int]] = {}
        if plan.script is not None:
            files[f"{name}/script/{plan.script.name}"] = (plan.script.read_bytes(), 0o700)
        spec = plan.spec
        allowed = self.site_inventory.vars.squall_container_runtimes
        container = None
        if spec.image:
            container = {"runtime": allowed[0] if spec.runtime == "auto" else spec.runtime, "image": spec.image}
        task = task_document(plan, index, f"{self.job_dir(plan.job_id)}/{name}", container=container, heartbeat=5)
        files[f"{name}/inputs.txt"] = (input_list(inputs), 0o600)
        files[f"{name}/task.json"] = (json.dumps(task, indent=1).encode(), 0o600)
        return files

    def batch_script(self, plan: JobPlan) -> str:
        res = plan.spec.resources
        expires = int(self._expiry(plan))
        tags = plan.tags
        comment = (f"squall-job={plan.job_id},org={tags['squall:org']},project={tags['squall:project']},"
                   f"store={tags['squall:store']},expires={expires}")
        seconds = plan.walltime + SLURM_MARGIN
        return templates().get_template("slurm/array.sh.j2").render(
            job_id=plan.job_id, slurm_name=f"squall-{plan.job_id}", comment=comment, tasks=len(plan.tasks),
            partition=self.partition_for(plan).name, cpus=res.cpus,
            memory_mb=(res.memory_bytes or 0) // (1 << 20), gpus=res.gpus,
            slurm_time=f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}",
            job_dir=self.job_dir(plan.job_id), runtime=self.runtime,
        )

    def launch(self, plan: JobPlan) -> dict:
        """One array for every task; a job already submitted under this name is never submitted again."""
        return self._agent("submit", self.job_dir(plan.job_id), f"squall-{plan.job_id}")

    def poll(self, plans: list[JobPlan]) -> dict[str, list[TaskState]]:
        """Every task of every job in ``plans``, from one remote command."""
        answer = self._agent("poll", *[self.job_dir(p.job_id) for p in plans])
        slurm: dict[str, dict[int, dict]] = {}
        for record in answer["slurm"]:
            for index in _array_indexes(record.get("ArrayTaskId")):
                slurm.setdefault(record["JobName"], {})[index] = record
        result = {}
        for plan in plans:
            job = answer["jobs"].get(self.job_dir(plan.job_id))
            if job is None:  # every job polled was launched: its folder existed
                vanished = (f"the job folder {self.job_dir(plan.job_id)} vanished at site {self.name!r} "
                            "(removed by someone else, e.g. another store's gc); its outputs are lost")
                result[plan.job_id] = [TaskState(t.index, TaskStatus.FAILED, error=vanished, job_error=vanished)
                                       for t in plan.tasks]
                continue
            records = slurm.get(f"squall-{plan.job_id}", {})
            lost = job["launched_at"] is not None and answer["now"] - job["launched_at"] > LOST_AFTER
            result[plan.job_id] = [
                _task_state(t.index, job["tasks"].get(str(t.index)), records.get(t.index), lost)
                for t in plan.tasks
            ]
        return result

    def cancel(self, plan: JobPlan) -> None:
        self.ssh.run(["scancel", f"--name=squall-{plan.job_id}", f"--user={self.site_inventory.login.ansible_user}"])

    def collect(self, plan: JobPlan, indexes: list[int], reporter: Reporter) -> list[CollectedTask]:
        """Each task's status, manifest and logs in one remote call; then its outputs, verified."""
        found = self._agent("read", self.job_dir(plan.job_id),
                            stdin=json.dumps([f"{task_folder(i)}/{n}" for i in indexes for n in META_FILES]).encode())
        collected = []
        for index in indexes:
            meta = plan.results_dir / "meta" / task_folder(index)
            with writing_results(meta):
                meta.mkdir(parents=True, exist_ok=True)
                for name in META_FILES:
                    data = found.get(f"{task_folder(index)}/{name}")
                    if data is not None:
                        (meta / name).write_bytes(base64.b64decode(data))
            out = f"{self.job_dir(plan.job_id)}/{task_folder(index)}/out"

            def download(rel: str, destination: Path, entry: dict, out: str = out) -> None:
                self._download(f"{out}/{rel}", destination, entry)

            collected.append(collect_outputs(index, meta, plan.results_dir / task_folder(index), download))
        return collected

    def _download(self, source: str, destination: Path, entry: dict) -> None:
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

    def down(self, plan: JobPlan) -> None:
        """Cancel whatever still runs and remove the job folder, in one remote call."""
        folder = [] if plan.keep_remote else [self.job_dir(plan.job_id)]
        self._agent("teardown", f"squall-{plan.job_id}", *folder)

    def keep(self, plan: JobPlan, until: float) -> None:
        """Cancel what still runs; the folder stays, its owner marker says until when."""
        self._agent("teardown", f"squall-{plan.job_id}")
        self._write_owner(plan, until)

    def _remove_dir(self, path: str) -> None:
        if not re.match(rf"^{re.escape(self.work_root)}/squall-[0-9a-z-]+$", path):
            raise SquallError(f"refusing to remove {path!r}: not a Squall job folder under {self.work_root}")
        self.ssh.run(["rm", "-rf", "--", path])

    # garbage collection and logs ----------------------------------------------

    def live_resources(self) -> list[LiveResource]:
        """Squall's job folders and Slurm jobs on the account, with the owner tags each carries."""
        found = self._agent("inventory", self.work_root)
        live = []
        for f in found["folders"]:
            owner = f.get("owner") or {}
            live.append(LiveResource(self.name, "jobdir", f["path"], f["name"].removeprefix("squall-"),
                                     {"mtime": f["mtime"]}, *_owner(owner.get("squall:store"),
                                                                    owner.get("squall:expires"))))
        for j in found["jobs"]:
            tags = dict(part.split("=", 1) for part in j["comment"].split(",") if "=" in part)
            live.append(LiveResource(self.name, "slurm", j["name"], j["name"].removeprefix("squall-"),
                                     {"slurm_job": j["id"], "comment": j["comment"], "state": j["state"]},
                                     *_owner(tags.get("store"), tags.get("expires"))))
        return live

    def remove(self, resource: LiveResource) -> None:
        if resource.kind == "slurm":
            self.ssh.run(["scancel", f"--name={resource.resource}", f"--user={self.site_inventory.login.ansible_user}"])
        elif resource.kind == "jobdir":
            self._remove_dir(resource.resource)

    def read_log(self, plan: JobPlan, index: int, stream: str, offset: int) -> bytes | None:
        path = f"{self.job_dir(plan.job_id)}/{task_folder(index)}/{stream}.log"

        def attempt() -> bytes | None:
            sftp = self.ssh.sftp()
            try:
                with sftp.open(path, "rb") as handle:
                    handle.seek(offset)
                    return handle.read()
            except FileNotFoundError:
                try:
                    sftp.stat(self.job_dir(plan.job_id))
                    return b""
                except FileNotFoundError:
                    return None

        return self.ssh.retrying(attempt, "read log")

    def close(self) -> None:
        self.ssh.close()


class _ByteProgress:
    """Bytes staged, reported from several upload threads."""

    def __init__(self, reporter: Reporter, total: int):
        self.reporter, self.total, self.done = reporter, total, total
        self.lock = threading.Lock()

    def set_missing(self, missing: int) -> None:
        with self.lock:
            self.done = self.total - missing
        self.reporter.bytes_staged(self.done, self.total)

    def add(self, count: int) -> None:
        with self.lock:
            self.done += count
            done = self.done
        self.reporter.bytes_staged(done, self.total)

    def finish(self) -> None:
        self.reporter.bytes_staged(self.total, self.total)


def _owner(store_id: object, expires: object) -> tuple[str | None, float | None]:
    """Owner tags as found at the site (anyone with the account can write them): checked, never trusted."""
    store = store_id if isinstance(store_id, str) and TAG_VALUE.fullmatch(store_id) else None
    try:
        return store, float(expires)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return store, None


def _array_indexes(text: str | None) -> list[int]:
    """``"3"`` -> [3]; ``"0-3%2"`` or ``"1,4-5"`` -> every index named."""
    if not text or text == "N/A":
        return []
    indexes: list[int] = []
    for part in text.split("%")[0].strip("[]").split(","):
        if "-" in part:
            low, high = part.split("-", 1)
            indexes.extend(range(int(low), int(high) + 1))
        elif part.isdigit():
            indexes.append(int(part))
    return indexes


def _task_state(index: int, status: dict | None, record: dict | None, lost: bool) -> TaskState:
    """Combine the runtime's status (exact) with Slurm's state (for what the runtime cannot say)."""
    slurm_state = (record or {}).get("JobState")
    if status is not None:
        state = TaskState(index, status["state"], status.get("exit_code"), status.get("wall_time"),
                          status.get("max_rss_kb"), status.get("network_isolated"), status.get("error"))
        if not state.final and slurm_state in SLURM_ENDED:
            state.state = _slurm_final(slurm_state)
            state.error = f"Slurm ended the task: {slurm_state}"
        return state
    if slurm_state in SLURM_ENDED:
        return TaskState(index, _slurm_final(slurm_state), error=f"Slurm: {slurm_state} ({record.get('Reason')}) before the runtime ran")
    if slurm_state in ("PENDING", "CONFIGURING", "REQUEUED"):
        return TaskState(index, TaskStatus.QUEUED)
    if slurm_state:
        return TaskState(index, TaskStatus.RUNNING)
    if lost:
        return TaskState(index, TaskStatus.FAILED, error="neither Slurm nor the runtime knows this task any more")
    return TaskState(index, TaskStatus.PENDING)


def _slurm_final(slurm_state: str) -> TaskStatus:
    return {"TIMEOUT": TaskStatus.TIMEOUT, "CANCELLED": TaskStatus.CANCELLED}.get(slurm_state, TaskStatus.FAILED)
