"""The Kubernetes transport: a job's files, staged into its volume and collected from it through the stager
pod (the job stack makes both when the job has files: inputs or a script).

Each task's folder (``task-<i>/``: task.json, inputs.txt, the script, ``in/``)
travels as one tar stream, base64-encoded (exec's streams are text), read by
``head -c N`` so no end-of-input is needed; then the pod lists every file's
sha256 and each must equal what was sent. Collecting reads the runtime's
status, manifest and logs and the ``out/`` folder back as one tar stream, and
every output is checked against its manifest entry (size and sha256) before
it is written to the results folder. Streams are held in memory: fine for the
files a task stages and makes, not for tens of GB (a limit, stated in the README).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from pathlib import Path

import math
import time
from typing import TYPE_CHECKING

from squall.errors import SiteUnreachable, SquallError
from squall.results import writing_results
from squall.job_types import CollectedTask, JobPlan
from squall.sites.contract import Reporter
from squall.sites.kubernetes_api import JobApi
from squall.sites.workarea import META_FILES, collect_outputs, input_list, task_document, task_folder

VOLUME_MOUNT = "/work"  # the job volume in the stager pod (programs.clouds.kubernetes.VOLUME_MOUNT)
TASK_MOUNT = "/squall-task"  # a task's own folder, in its pod (programs.clouds.kubernetes.TASK_MOUNT)
UNPACK = 'mkdir -p "$2" && head -c "$1" | base64 -d | tar x -C "$2"'
DIGESTS = 'cd "$1" && find . -type f -exec sha256sum {} +'
PACK = 'cd "$1" && tar c $(ls -d status.json manifest.json stdout.log stderr.log out 2>/dev/null) | base64'
STAGER_WAIT = 300  # seconds for the stager pod to run (volume bound, image pulled)

if TYPE_CHECKING:
    from squall.sites.kubernetes_api import Cluster


def has_files(plan: JobPlan) -> bool:
    """Whether the job has files to stage (then it gets a volume and the runtime runs each task)."""
    return bool(plan.spec.inputs or plan.spec.script)


class JobVolume:
    """The job's volume (the organisation's ``job_stack.volume_class``), reached through its stager pod."""

    def __init__(self, site: str, cluster: "Cluster"):
        self.site, self.cluster = site, cluster

    def check(self, plan: JobPlan) -> list[str]:
        org = self.cluster.settings().org
        if has_files(plan) and not (org.job_stack and org.job_stack.volume_class):
            return [f"inputs/script: staging files needs a job volume; organisation {org.org} names no "
                    "job_stack.volume_class (a ReadWriteMany storage class)"]
        return []

    def work(self, plan: JobPlan) -> dict:
        """The volume the job stack makes: room for the inputs, the outputs and more (none without files)."""
        if not has_files(plan):
            return {}
        staged = sum(item.size for task in plan.tasks for item in task.inputs)
        return {"volume_gib": max(1, math.ceil(3 * staged / (1 << 30)))}

    def _stager(self, plan: JobPlan) -> str:
        return f"{self.cluster.job_name(plan)}-stager"

    def stage(self, plan: JobPlan, reporter: Reporter) -> None:
        """Each task's folder into the volume through the stager pod (nothing for a job without files)."""
        if not has_files(plan):
            return
        api, namespace, pod = self.cluster.api, self.cluster.namespace, self._stager(plan)
        deadline = time.monotonic() + STAGER_WAIT
        while not api.pod_running(namespace, pod):
            if time.monotonic() > deadline:
                raise SiteUnreachable(f"site {self.site!r}: the stager pod {namespace}/{pod} did not run "
                                      f"within {STAGER_WAIT} s", hint="is the volume's storage class ReadWriteMany?")
            time.sleep(2)
        total = sum(item.size for task in plan.tasks for item in task.inputs)
        sent = 0
        for task in plan.tasks:
            sent += stage_task(api, namespace, pod, plan, task.index)
            reporter.bytes_staged(min(sent, total), total)

    def collect(self, plan: JobPlan, indexes: list[int]) -> list[CollectedTask]:
        return [collect_task(self.cluster.api, self.cluster.namespace, self._stager(plan), plan, index)
                for index in indexes]


def task_files(plan: JobPlan, index: int) -> dict[str, bytes | Path]:
    """Everything task ``index``'s folder holds before it runs: small files as bytes, inputs as paths."""
    task = next(t for t in plan.tasks if t.index == index)
    document = task_document(plan, index, TASK_MOUNT, container=None, heartbeat=5.0)
    document["isolate_network"] = False  # the job's NetworkPolicy isolates the pod; it has no CAP to unshare
    files: dict[str, bytes | Path] = {"task.json": json.dumps(document, indent=1).encode(),
                                      "inputs.txt": input_list([item.rel for item in task.inputs])}
    if plan.script is not None:
        files[f"script/{plan.script.name}"] = plan.script
    files.update({f"in/{item.rel}": item.path for item in task.inputs})
    return files


def _digest(content: bytes | Path) -> str:
    if isinstance(content, bytes):
        return hashlib.sha256(content).hexdigest()
    hasher = hashlib.sha256()
    with content.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def stage_task(api: JobApi, namespace: str, pod: str, plan: JobPlan, index: int) -> int:
    """Send task ``index``'s folder and check every file arrived whole; the bytes sent."""
    files = task_files(plan, index)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for rel, content in sorted(files.items()):
            mode = 0o700 if rel.startswith("script/") else 0o600  # as on every site: the script runs
            if isinstance(content, Path):
                info = archive.gettarinfo(content, arcname=rel)
                info.mode = mode
                with content.open("rb") as handle:
                    archive.addfile(info, handle)
            else:
                info = tarfile.TarInfo(rel)
                info.size, info.mode = len(content), mode
                archive.addfile(info, io.BytesIO(content))
    encoded = base64.b64encode(buffer.getvalue())
    folder = f"{VOLUME_MOUNT}/{task_folder(index)}"
    api.exec(namespace, pod, ["sh", "-c", UNPACK, "sh", str(len(encoded)), folder], stdin=encoded)
    listed = api.exec(namespace, pod, ["sh", "-c", DIGESTS, "sh", folder]).decode()
    there = {line[66:].removeprefix("./"): line[:64] for line in listed.splitlines() if len(line) > 66}
    wrong = sorted(rel for rel, content in files.items() if there.get(rel) != _digest(content))
    if wrong:
        raise SquallError(f"staging task {index} to {namespace}/{pod}: {', '.join(wrong[:5])} arrived damaged or not "
                          "at all")
    return len(buffer.getvalue())


def collect_task(api: JobApi, namespace: str, pod: str, plan: JobPlan, index: int) -> CollectedTask:
    """Task ``index``'s status, manifest, logs and outputs, each output checked against the manifest."""
    packed = api.exec(namespace, pod, ["sh", "-c", PACK, "sh", f"{VOLUME_MOUNT}/{task_folder(index)}"])
    archive = tarfile.open(fileobj=io.BytesIO(base64.b64decode(packed)), mode="r")
    meta = plan.results_dir / "meta" / task_folder(index)
    with writing_results(meta):
        meta.mkdir(parents=True, exist_ok=True)
        for name in META_FILES:
            member = _member(archive, name)
            if member is not None:
                (meta / name).write_bytes(member)

    def fetch(rel: str, destination: Path, entry: dict) -> None:
        data = _member(archive, f"out/{rel}")
        if data is None or len(data) != entry["size"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise ValueError("missing, or not what the manifest says (size or sha256)")
        with writing_results(destination):
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(data)

    return collect_outputs(index, _member(archive, "manifest.json"), plan.results_dir / task_folder(index), fetch)


def _member(archive: tarfile.TarFile, name: str) -> bytes | None:
    for candidate in (name, f"./{name}"):
        try:
            handle = archive.extractfile(candidate)
        except KeyError:
            continue
        return handle.read() if handle is not None else None
    return None
