"""A job's work area, the same at every site: task folders, ``task.json``, task states, and the collect.

Every site lays a job out the same way, so the one runtime runs anywhere::

    <job folder>/task-<i>/in/        the task's inputs      (inputs.txt lists them)
                         out/       what the payload writes (the manifest covers it)
                         tmp/       its TMPDIR and HOME
                         script/    the spec's script, when it has one
                         task.json  what the runtime runs (format TASK_FORMAT)
                         status.json manifest.json stdout.log stderr.log   (written by the runtime)

Collecting a task means: read its manifest, then bring each listed output
into the results folder through a site's own ``fetch`` (a local move or an
SFTP download), every file checked against the manifest's size and sha256.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from squall.env_seconds import env_seconds
from squall.errors import InvalidInput
from squall.interrupts import uninterrupted
from squall.results import writing_results

if TYPE_CHECKING:
    from squall.job_types import CollectedTask, JobPlan

TASK_FORMAT = 1  # task.json's layout; the runtime refuses another (squall_runtime.TASK_FORMAT)
KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL of a payload's process group
DEFAULT_LEASE_MARGIN = 600.0


def lease_margin() -> float:
    """Seconds past a job's latest possible end before its lease counts as expired — and before a host that
    stopped answering is given up on (its tasks cannot be running any more)."""
    return env_seconds("SQUALL_LEASE_MARGIN", DEFAULT_LEASE_MARGIN)

META_FILES = ("status.json", "manifest.json", "stdout.log", "stderr.log")


def task_folder(index: int) -> str:
    return f"task-{index}"


def input_list(inputs: list[str]) -> bytes:
    """``inputs.txt``: one input a line, relative to the task folder (names never hold a line break)."""
    return "".join(f"in/{rel}\n" for rel in inputs).encode()


def payload_command(plan: "JobPlan", script_path: str) -> list[str]:
    """The payload's argv; ``script_path`` is where the spec's script lies in the task folder."""
    spec = plan.spec
    if plan.script is not None:
        return [script_path] if plan.script.read_bytes()[:2] == b"#!" else ["/bin/sh", script_path]
    if isinstance(spec.command, str):
        return ["/bin/sh", "-c", spec.command]
    return list(spec.command or [])


def task_document(plan: "JobPlan", index: int, folder: str, *, container: dict | None, heartbeat: float,
                  slots: dict | None = None) -> dict:
    """``task.json`` of task ``index`` whose folder is ``folder`` (as the runtime will see it)."""
    script = f"{folder}/script/{plan.script.name}" if plan.script is not None else ""
    document = {
        "format": TASK_FORMAT,
        "job_id": plan.job_id,
        "index": index,
        "count": len(plan.tasks),
        "command": payload_command(plan, script),
        "walltime": plan.walltime,
        "kill_grace": KILL_GRACE,
        "outputs": plan.spec.outputs,
        "isolate_network": True,
        "heartbeat": heartbeat,
        "container": container,
    }
    if slots is not None:
        document["slots"] = slots
    return document


Fetch = Callable[[str, Path, dict], None]  # (output path relative to out/, destination, manifest entry)


def collect_outputs(index: int, manifest_text: bytes | None, target: Path, fetch: Fetch) -> "CollectedTask":
    """Bring task ``index``'s outputs listed in its manifest (as the site holds it; None: it has none) into
    ``target``, each verified by ``fetch``.

    A file that fails its check ends the task's collect with the reason; a
    results folder that cannot take a file raises ``OutputsKept`` (the runner
    keeps the job's files at the site). A signal waits for the file in hand.
    The manifest is the site's, not the copy in ``meta/``: that one may vanish
    with the results folder while the collect runs.
    """
    from squall.job_types import CollectedTask

    with writing_results(target):
        target.mkdir(parents=True, exist_ok=True)
    if manifest_text is None:
        return CollectedTask(index, 0, 0, error="no output manifest")
    manifest = json.loads(manifest_text)
    files = size = 0
    root = target.resolve()
    for entry in manifest["files"]:
        rel = entry["path"]
        destination = (root / rel).resolve()
        if root not in destination.parents:
            return CollectedTask(index, files, size, error=f"output {rel!r} escapes its folder")
        try:
            with uninterrupted():
                fetch(rel, destination, entry)
        except (InvalidInput, ValueError, OSError) as exc:
            return CollectedTask(index, files, size, error=f"output {rel!r}: {exc}")
        files += 1
        size += entry["size"]
    return CollectedTask(index, files, size)
