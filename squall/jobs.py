"""Jobs as the store knows them: ids, plans, final status and the result report."""

from __future__ import annotations

import json

import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from squall.errors import InvalidInput
from squall.locks import AdvisoryLocks, FileLocks
from squall.results import write_report
from squall.slugs import SLUG
from squall.job_types import JobPlan, TaskPlan
from squall.spec import InputFile, ResolvedSpec, validate_spec
from squall.split import split_inputs
from squall.store import JobRow, Store, TaskRow
from squall.job_types import UNFINISHED, TaskStatus


def new_job_id() -> str:
    """Short, sortable by day, random enough for concurrent submissions."""
    return f"{time.strftime('%y%m%d')}-{secrets.token_hex(3)}"


# Owner tags reach batch-script directives, remote command lines and cloud tags: every value must match.
TAG_VALUE = SLUG


def owner_tags(job_id: str, org: str, project: str, store_id: str) -> dict[str, str]:
    """Who owns a job's resources: gc removes only what carries its own store id (or is past expiry)."""
    tags = {
        "managed-by": "squall",
        "squall:org": org,
        "squall:project": project,
        "squall:job": job_id,
        "squall:store": store_id,
    }
    for key, value in tags.items():
        if not TAG_VALUE.fullmatch(value):
            raise InvalidInput(f"{key}: {value!r} is not a valid owner tag value")
    return tags


def new_plan(resolved: ResolvedSpec, job_id: str, results_root: Path, store_id: str,
             keep_remote: bool = False, org: str = "default") -> JobPlan:
    spec = resolved.spec
    buckets = split_inputs(resolved.inputs, spec.split)
    return JobPlan(
        job_id=job_id,
        spec=spec,
        spec_dir=resolved.spec_dir,
        script=resolved.script,
        tasks=tuple(TaskPlan(i, tuple(bucket)) for i, bucket in enumerate(buckets)),
        results_dir=results_root.resolve() / job_id,
        tags=owner_tags(job_id, org, spec.project, store_id),
        keep_remote=keep_remote,
    )


def plan_from_store(job: JobRow, tasks: list[TaskRow], store_id: str) -> JobPlan:
    """Rebuild the plan a crashed controller was using, from the store alone."""
    spec = validate_spec(job.spec, source=f"job {job.id}")
    spec_dir = Path(job.spec_dir)
    return JobPlan(
        job_id=job.id,
        spec=spec,
        spec_dir=spec_dir,
        script=(spec_dir / spec.script).resolve() if spec.script else None,
        tasks=tuple(
            TaskPlan(t.idx, tuple(InputFile(rel, spec_dir / rel, size) for rel, size in t.inputs))
            for t in tasks
        ),
        results_dir=Path(job.results_dir),
        tags=owner_tags(job.id, job.org, job.project, store_id),  # as submitted, whatever $SQUALL_ORG is now
        keep_remote=job.keep_remote,
    )


def final_status(tasks: list[TaskRow], cancelled: bool, error: str | None) -> str:
    states = {t.status for t in tasks}
    if cancelled:
        return TaskStatus.CANCELLED
    if error or TaskStatus.FAILED in states or not states <= {TaskStatus.SUCCEEDED, TaskStatus.TIMEOUT}:
        return TaskStatus.FAILED
    if TaskStatus.TIMEOUT in states:
        return TaskStatus.TIMEOUT
    return TaskStatus.SUCCEEDED


def settle_job(store: Store, job_id: str) -> None:
    """Settle the finished job and journal what it cost (a live client sees the cost before the end)."""
    from squall.money.settlement import settle_job as settle  # the money package imports this one's neighbours

    record = settle(store, job_id)
    if record is not None:
        store.record(job_id, "money", "settled", cost=record["cost"], emissions_gco2e=record["emissions_gco2e"])


def close_job(store: Store, job_id: str, error: str | None, cancelled: bool) -> str:
    """Give a job its final status (from its tasks), journal it and write ``job.json``; return the status.

    Used by the controller at the end of ``down`` and by ``gc`` when a
    controller died after a complete collect.
    """
    tasks = store.tasks(job_id)
    unfinished = {t.idx: {"status": TaskStatus.CANCELLED} for t in tasks if t.status in UNFINISHED}
    if unfinished and (cancelled or error):
        store.update_tasks(job_id, unfinished)
        tasks = store.tasks(job_id)
    status = final_status(tasks, cancelled, error)
    isolated = [t.network_isolated for t in tasks if t.network_isolated is not None]
    store.update_job(job_id, phase="done", status=status, error=error, finished_at=time.time(),
                     network_isolated=all(isolated) if isolated else None)
    settle_job(store, job_id)
    store.record(job_id, "done", status, error=error)
    results_dir = Path(store.job(job_id).results_dir)  # type: ignore[union-attr]
    if results_dir.is_dir() and not write_report(results_dir, JobResult.load(store, job_id).to_dict()):
        store.record(job_id, "done", "report-not-written", path=str(results_dir / "job.json"))
    return status


def cancel_unstarted(store: Store, job_id: str, reason: str) -> None:
    """End a job that never reached ``up`` (nothing exists for it) as cancelled, saying why."""
    store.update_job(job_id, phase="done", status=TaskStatus.CANCELLED, error=reason, finished_at=time.time())
    settle_job(store, job_id)  # releases its holds: nothing ran, nothing is charged
    store.record(job_id, "done", TaskStatus.CANCELLED, error=reason)


ORPHANED = "orphaned"  # shown, never stored: a job in progress whose controller process is gone


def uncollected(store: Store, job_id: str) -> list[int]:
    """The tasks of a launched job whose outputs were never collected: whatever phase the journal reached,
    and whatever state the store last saw (a controller that died before its first poll saw none), each may
    have finished at the site with outputs that exist nowhere else."""
    if not any(e.phase == "launch" and e.event == "begin" for e in store.journal(job_id)):
        return []
    return [task.idx for task in store.tasks(job_id) if task.outputs is None]


def shown_status(job: JobRow, locks: "FileLocks | AdvisoryLocks") -> str:
    """The status to show: ``orphaned`` for a job past its plan, unfinished, with no live controller.

    The store keeps ``running`` (the job is resumable as it is); a user sees
    that nothing drives it and that ``squall job attach`` would.
    """
    if job.status in ("pending", "running") and job.phase != "plan" and not locks.controller_alive(job.id):
        return ORPHANED
    return job.status


@dataclass(frozen=True)
class JobResult:
    job: JobRow
    tasks: list[TaskRow]
    usage: dict | None = None  # the usage record, once the job is settled
    site_exit_code: int | None = None  # the job failed (or waits for attach) as its site was unreachable: 5

    @classmethod
    def load(cls, store: Store, job_id: str) -> "JobResult":
        job = store.job(job_id)
        assert job is not None, job_id
        usage = store.rows("SELECT record FROM usage WHERE job_id = ?", (job_id,))
        codes = [e.detail["exit_code"] for e in store.journal(job_id) if e.event == "error" and "exit_code" in e.detail]
        return cls(job, store.tasks(job_id), json.loads(usage[0][0]) if usage else None,
                   codes[-1] if codes and job.status in ("failed", "incomplete") else None)

    def cost(self) -> dict:
        """The estimate the job was admitted with, and what it cost (once settled)."""
        estimate = (self.job.estimate or {}).get("site_estimate") or {}
        estimated = estimate.get("cost")
        return {"estimated": {k: estimated[k] for k in ("likely", "max")} if isinstance(estimated, dict)
                else estimated,
                "actual": self.usage["cost"]["actual"] if self.usage else None,
                "emissions_gco2e": self.usage["emissions_gco2e"] if self.usage else None}

    def to_dict(self) -> dict:
        """The stable machine-readable report of ``job run`` and ``job status``."""
        job = self.job
        return {
            "id": job.id,
            "name": job.name,
            "status": job.status,
            "phase": job.phase,
            "site": job.site,
            "project": job.project,
            "results": job.results_dir,
            "error": job.error,
            "network_isolated": job.network_isolated,
            "created_at": job.created_at,
            "finished_at": job.finished_at,
            "cost": self.cost(),
            "tasks": [
                {
                    "index": t.idx,
                    "status": t.status,
                    "exit_code": t.exit_code,
                    "wall_time": t.wall_time,
                    "max_rss_kb": t.max_rss_kb,
                    "outputs": t.outputs,
                    "network_isolated": t.network_isolated,
                    "stderr_tail": t.stderr_tail,
                    "error": t.error,
                }
                for t in self.tasks
            ],
        }
