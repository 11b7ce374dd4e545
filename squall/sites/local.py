"""The ``local`` site: this machine, no daemon, the embedded default.

Work areas live under ``<home>/sites/<name>/work/<job-id>/``, one folder per
task. Tasks are runtime processes in their own sessions, so they outlive a
crashed controller; the runtime's slot locks keep at most one task per core
(or per ``cpus`` cores) running, without any scheduler process.
"""

from __future__ import annotations

import errno
import json
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from squall.errors import InvalidInput, MissingDependency, Refused, SquallError
from squall.interrupts import uninterrupted
from squall.money.quotes import Quote
from squall.results import writing_results
from squall.runtime import runtime_path
from squall.runtime.squall_runtime import CONTAINER_RUNTIMES
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
from squall.sites.images import archive_engine, image_archive, loaded_image
from squall.store import Store
from squall.transfer import copy_with_digest, identity, sha256_file
from squall.workarea import (
    FINAL,
    KILL_GRACE,
    META_FILES,
    TaskStatus,
    collect_outputs,
    input_list,
    task_document,
    task_folder,
)

STAGE_RECORD = "staged.json"
LAUNCH_RECORD = "launch.json"
# The runtime process gets these from the controller's environment, nothing else.
# what the runtime gets from the controller's environment (the container engine's settings included; the
# payload's own environment is scrubbed by the runtime)
RUNTIME_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "CONTAINERS_CONF", "XDG_RUNTIME_DIR")


class LocalSite(Site):
    kind = "local"
    capabilities = frozenset({Capability.CONTAINERS, Capability.NETWORK_ISOLATION})

    def __init__(self, name: str, home: Path, store: Store):
        super().__init__(name)
        self.root = home / "sites" / name / "work"
        self.store = store
        self.cores = os.cpu_count() or 1
        self._children: dict[int, subprocess.Popen] = {}  # runtimes this process started

    # planning -------------------------------------------------------------

    def check(self, plan: JobPlan) -> None:
        self.check_processes(plan)
        res = plan.spec.resources
        if res.gpus and Capability.GPUS not in self.capabilities:
            raise Refused(
                f"resources.gpus: the {self.name!r} site has no GPUs",
                hint="choose a site with GPU partitions, or set gpus: 0",
            )
        if res.cpus > self.cores:
            raise Refused(f"resources.cpus: {res.cpus} asked, this machine has {self.cores} cores")
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        if res.memory_bytes and res.memory_bytes > memory:
            raise Refused(f"resources.memory: {res.memory} asked, this machine has {memory >> 20} MiB")
        if plan.spec.image:
            wanted = CONTAINER_RUNTIMES if plan.spec.runtime == "auto" else (plan.spec.runtime,)
            if not any(shutil.which(tool) for tool in wanted):
                raise MissingDependency(
                    f"runtime: no container runtime found on this machine (looked for {', '.join(wanted)})",
                    hint="install apptainer or podman, or drop 'image' to run the command directly",
                )
            if plan.spec.image_archive:
                archive_engine(self.name, plan.spec.runtime, self._engines())

    def _engines(self) -> list[str]:
        return [tool for tool in CONTAINER_RUNTIMES if shutil.which(tool)]

    def quote(self, plan: JobPlan) -> Quote:
        from squall.money.prices import Free

        return Quote(price=Free(), concurrency=self.slots(plan), queue_source="this machine: starts at once")

    def slots(self, plan: JobPlan) -> int:
        return max(1, self.cores // plan.spec.resources.cpus)

    def max_duration(self, plan: JobPlan) -> float:
        waves = math.ceil(len(plan.tasks) / self.slots(plan))
        return waves * (plan.walltime + KILL_GRACE)

    # lifecycle ------------------------------------------------------------

    def area(self, job_id: str) -> Path:
        return self.root / job_id

    def task_dir(self, plan: JobPlan, index: int) -> Path:
        return self.area(plan.job_id) / task_folder(index)

    def up(self, plan: JobPlan, claim: Claim) -> None:
        area = self.area(plan.job_id)
        claim("workarea", str(area))
        self.root.mkdir(parents=True, exist_ok=True)
        area.mkdir(mode=0o700, exist_ok=True)

    def stage(self, plan: JobPlan, reporter: Reporter) -> None:
        """Copy each task's inputs, skipping exact copies already in place."""
        area = self.area(plan.job_id)
        if not area.is_dir():
            raise SquallError(f"work area {area} is missing; the job cannot be staged")
        record_path = area / STAGE_RECORD
        staged = json.loads(record_path.read_text()) if record_path.exists() else {}
        sources = [item.path for task in plan.tasks for item in task.inputs]
        known = self.store.cached_digests([str(p) for p in sources])
        total = sum(item.size for task in plan.tasks for item in task.inputs)
        jobs: list[tuple[Path, Path, str]] = []
        for task in plan.tasks:
            folder = self.task_dir(plan, task.index)
            for name in ("in", "out", "tmp"):
                (folder / name).mkdir(parents=True, exist_ok=True)
            for item in task.inputs:
                target = folder / "in" / item.rel
                key = str(target.relative_to(area))
                if _still_staged(item.path, target, staged.get(key), known.get(str(item.path))):
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                jobs.append((item.path, target, key))
        done = total - sum(src.stat().st_size for src, _, _ in jobs)
        reporter.bytes_staged(done, total)
        pool = ThreadPoolExecutor(max_workers=4)
        digests: list[tuple[str, int, int, int, str]] = []
        try:
            for (source, target, key), (source_id, sha) in zip(jobs, pool.map(_copy, jobs)):
                staged[key] = {"size": source_id[0], "mtime_ns": target.stat().st_mtime_ns, "sha256": sha}
                digests.append((str(source), *source_id, sha))
                done += source_id[0]
                reporter.bytes_staged(done, total)
        finally:  # on Ctrl-C, drop the copies not yet started; keep what is done
            pool.shutdown(wait=True, cancel_futures=True)
            _write_json(record_path, staged)
            self.store.remember_digests(digests)
        container = self._container(plan)
        for task in plan.tasks:
            self._write_task(plan, task.index, [item.rel for item in task.inputs], container)

    def _container(self, plan: JobPlan) -> dict | None:
        """The task's container: an archive is loaded here first (once per digest) and run by its id."""
        spec = plan.spec
        if not spec.image:
            return None
        archive = image_archive(plan, self.store)
        if archive is None:
            return {"runtime": spec.runtime, "image": spec.image}
        engine = archive_engine(self.name, spec.runtime, self._engines())
        images = self.root.parent / "images"
        loading = subprocess.run(
            [sys.executable, str(runtime_path()), "image", engine, str(images), str(archive.path), archive.digest],
            env={key: os.environ[key] for key in RUNTIME_ENV if key in os.environ},
            capture_output=True, text=True)
        try:
            answer = json.loads(loading.stdout)
        except ValueError:
            answer = {"error": (loading.stderr or loading.stdout).strip()[-500:]}
        return {"runtime": engine, "image": loaded_image(answer, f"site {self.name!r}")}

    def _write_task(self, plan: JobPlan, index: int, inputs: list[str], container: dict | None) -> None:
        folder = self.task_dir(plan, index)
        (folder / "inputs.txt").write_bytes(input_list(inputs))
        if plan.script is not None:
            target = folder / "script" / plan.script.name
            target.parent.mkdir(exist_ok=True)
            shutil.copyfile(plan.script, target)
            target.chmod(0o700)
        task = task_document(
            plan, index, str(folder), heartbeat=2, container=container,
            slots={"dir": str(self.area(plan.job_id) / "slots"), "count": self.slots(plan)},
        )
        _write_json(folder / "task.json", task)

    def launch(self, plan: JobPlan) -> dict:
        env = {key: os.environ[key] for key in RUNTIME_ENV if key in os.environ}
        started = []
        for task in plan.tasks:
            folder = self.task_dir(plan, task.index)
            if (folder / LAUNCH_RECORD).exists() or (folder / "status.json").exists():
                continue  # launched before a controller crash: never run twice
            with uninterrupted(), open(folder / "runtime.log", "ab") as log:  # started and recorded, or neither
                proc = subprocess.Popen(
                    [sys.executable, "-I", "-S", str(runtime_path()), "run", str(folder)],
                    cwd=folder,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
                self._children[proc.pid] = proc
                _write_json(folder / LAUNCH_RECORD, {"pid": proc.pid, "at": time.time()})
            started.append(task.index)
        return {"started": started, "slots": self.slots(plan)}

    def poll(self, plans: list[JobPlan]) -> dict[str, list[TaskState]]:
        return {plan.job_id: [self._task_state(plan, t.index) for t in plan.tasks] for plan in plans}

    def _task_state(self, plan: JobPlan, index: int) -> TaskState:
        folder = self.task_dir(plan, index)
        status = _read_json(folder / "status.json")
        launch = _read_json(folder / LAUNCH_RECORD)
        if status is None:
            if launch is None:
                return TaskState(index, TaskStatus.PENDING)
            if self._runtime_alive(launch["pid"], folder):
                return TaskState(index, TaskStatus.QUEUED)
            return TaskState(index, TaskStatus.FAILED, error="runtime exited before writing its status")
        state = TaskState(
            index=index,
            state=status["state"],
            exit_code=status.get("exit_code"),
            wall_time=status.get("wall_time"),
            max_rss_kb=status.get("max_rss_kb"),
            network_isolated=status.get("network_isolated"),
            error=status.get("error"),
        )
        if not state.final and not self._runtime_alive(status["pid"], folder):
            state.state, state.error = TaskStatus.FAILED, "runtime process lost"
        return state

    def wait(self, plans: list[JobPlan], timeout: float) -> None:
        """Sleep until one of the jobs' runtime processes exits (a pidfd per runtime)."""
        descriptors = []
        try:
            for plan in plans:
                for task in plan.tasks:
                    pid = self._alive_runtime_pid(self.task_dir(plan, task.index))
                    if pid:
                        try:
                            descriptors.append(os.pidfd_open(pid))
                        except (ProcessLookupError, OSError):
                            return  # it just exited: poll again now
            if descriptors:
                select.select(descriptors, [], [], timeout)
            else:
                time.sleep(timeout)
        finally:
            for fd in descriptors:
                os.close(fd)

    def cancel(self, plan: JobPlan) -> None:
        for task in plan.tasks:
            folder = self.task_dir(plan, task.index)
            self._signal_runtime(folder, signal.SIGTERM)

    def collect(self, plan: JobPlan, indexes: list[int], reporter: Reporter) -> list[CollectedTask]:
        return [self._collect_task(plan, index) for index in indexes]

    def _collect_task(self, plan: JobPlan, index: int) -> CollectedTask:
        folder = self.task_dir(plan, index)
        meta = plan.results_dir / "meta" / task_folder(index)
        with writing_results(meta):
            meta.mkdir(parents=True, exist_ok=True)
            for name in META_FILES:
                if (folder / name).exists():
                    shutil.copyfile(folder / name, meta / name)

        def move(rel: str, destination: Path, entry: dict) -> None:
            _collect_file(_inside(folder / "out", rel), destination, entry)

        return collect_outputs(index, meta, plan.results_dir / task_folder(index), move)

    def down(self, plan: JobPlan) -> None:
        self._remove_area(self.area(plan.job_id))

    def keep(self, plan: JobPlan, until: float) -> None:
        """Stop the runtimes; the work area (and its outputs) stays under this home for ``job attach``."""
        self._stop_runtimes(self.area(plan.job_id))

    def _stop_runtimes(self, area: Path) -> None:
        tasks = sorted(area.glob("task-*")) if area.is_dir() else []
        for folder in tasks:
            self._signal_runtime(folder, signal.SIGTERM)
        deadline = time.monotonic() + KILL_GRACE + 2
        while any(self._alive_runtime_pid(f) for f in tasks) and time.monotonic() < deadline:
            time.sleep(0.05)
        for folder in tasks:
            self._signal_runtime(folder, signal.SIGKILL, payload_too=True)

    def _remove_area(self, area: Path) -> None:
        self._stop_runtimes(area)
        shutil.rmtree(area, ignore_errors=True)
        if area.exists():
            raise SquallError(f"could not remove work area {area}")

    # the runtime processes --------------------------------------------------

    def _runtime_alive(self, pid: int, folder: Path) -> bool:
        """True if ``pid`` is still this task's runtime (not an exited or reused pid)."""
        child = self._children.get(pid)
        if child is not None:  # ours: exact, even before the child has exec'd
            return child.poll() is None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return False
        return state != "Z" and str(folder).encode() in cmdline

    def _alive_runtime_pid(self, folder: Path) -> int | None:
        for record in (folder / "status.json", folder / LAUNCH_RECORD):
            data = _read_json(record)
            if data and self._runtime_alive(data["pid"], folder):
                return data["pid"]
        return None

    def _signal_runtime(self, folder: Path, signum: int, payload_too: bool = False) -> None:
        pid = self._alive_runtime_pid(folder)
        if pid:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass
        status = _read_json(folder / "status.json")
        if payload_too and status and status.get("pgid") and status["state"] not in FINAL:
            try:
                os.killpg(status["pgid"], signum)
            except (ProcessLookupError, PermissionError):
                pass

    # garbage collection and logs --------------------------------------------

    def live_resources(self) -> list[LiveResource]:
        if not self.root.is_dir():
            return []
        return [  # the work root is inside this store's home: everything in it is this store's
            LiveResource(self.name, "workarea", str(path), path.name, {"mtime": path.stat().st_mtime},
                         store_id=self.store.store_id)
            for path in sorted(self.root.iterdir())
            if path.is_dir()
        ]

    def remove(self, resource: LiveResource) -> None:
        self._remove_area(Path(resource.resource))

    def read_log(self, plan: JobPlan, index: int, stream: str, offset: int) -> bytes | None:
        path = self.task_dir(plan, index) / f"{stream}.log"
        try:
            with open(path, "rb") as handle:
                handle.seek(offset)
                return handle.read()
        except FileNotFoundError:
            return None if not self.area(plan.job_id).exists() else b""


def _copy(job: tuple[Path, Path, str]) -> tuple[tuple[int, int, int], str]:
    source, target, _ = job
    before = identity(source.stat())
    sha = copy_with_digest(source, target)
    if identity(source.stat()) != before:
        raise SquallError(f"input {source} changed while it was being staged")
    return before, sha


def _still_staged(source: Path, target: Path, record: dict | None, cached: tuple | None) -> bool:
    """True when ``target`` is an exact copy of ``source`` (same size and sha256).

    Both digests come from records kept when they were computed, valid while
    the file's size and mtime (and inode, for sources) are unchanged.
    """
    try:
        target_stat = target.stat()
    except FileNotFoundError:
        return False
    source_stat = source.stat()
    if target_stat.st_size != source_stat.st_size:
        return False
    source_sha = cached[3] if cached and cached[:3] == identity(source_stat) else sha256_file(source)
    if record and (record["size"], record["mtime_ns"]) == (target_stat.st_size, target_stat.st_mtime_ns):
        target_sha = record["sha256"]
    else:
        target_sha = sha256_file(target)
    return source_sha == target_sha


def _collect_file(source: Path, destination: Path, entry: dict) -> None:
    """Move one output after checking it against the runtime's manifest; resumable."""
    if destination.exists() and not source.exists():
        if destination.stat().st_size == entry["size"] and sha256_file(destination) == entry["sha256"]:
            return  # moved by an earlier, interrupted collect
    if source.is_symlink() or not source.is_file():
        raise ValueError("missing or not a regular file")
    if source.stat().st_size != entry["size"] or sha256_file(source) != entry["sha256"]:
        raise ValueError("size or sha256 differs from the manifest")
    with writing_results(destination):
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(source, destination)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            _copy_across(source, destination, entry)


def _copy_across(source: Path, destination: Path, entry: dict) -> None:
    """Copy to another file system; the source goes only once the copy is complete and verified."""
    partial = destination.with_name(f".{destination.name}.partial")
    try:
        digest = copy_with_digest(source, destination)
    except OSError:
        partial.unlink(missing_ok=True)
        raise
    if digest != entry["sha256"]:
        destination.unlink()
        raise ValueError("changed while being copied")
    source.unlink()


def _inside(root: Path, rel: str) -> Path:
    path = (root / rel).resolve()
    if root.resolve() not in path.parents:
        raise InvalidInput(f"{rel!r} escapes its folder")
    return path


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def _write_json(path: Path, data: dict) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(partial, path)
