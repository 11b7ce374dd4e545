"""Jobs as the store knows them: ids, plans, final status and the result report."""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from squall.sites.base import JobPlan, TaskPlan
from squall.spec import InputFile, ResolvedSpec, validate_spec
from squall.split import split_inputs
from squall.store import JobRow, Store, TaskRow


def new_job_id() -> str:
    """Short, sortable by day, random enough for concurrent submissions."""
    return f"{time.strftime('%y%m%d')}-{secrets.token_hex(3)}"


def owner_tags(job_id: str, project: str) -> dict[str, str]:
    return {
        "managed-by": "squall",
        "squall:org": os.environ.get("SQUALL_ORG", "default"),
        "squall:project": project,
        "squall:job": job_id,
    }


def new_plan(resolved: ResolvedSpec, job_id: str, results_root: Path, keep_remote: bool = False) -> JobPlan:
    spec = resolved.spec
    buckets = split_inputs(resolved.inputs, spec.split)
    return JobPlan(
        job_id=job_id,
        spec=spec,
        spec_dir=resolved.spec_dir,
        script=resolved.script,
        tasks=tuple(TaskPlan(i, tuple(bucket)) for i, bucket in enumerate(buckets)),
        results_dir=results_root.resolve() / job_id,
        tags=owner_tags(job_id, spec.project),
        keep_remote=keep_remote,
    )


def plan_from_store(job: JobRow, tasks: list[TaskRow]) -> JobPlan:
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
        tags=owner_tags(job.id, job.project),
        keep_remote=job.keep_remote,
    )


def final_status(tasks: list[TaskRow], cancelled: bool, error: str | None) -> str:
    states = {t.status for t in tasks}
    if cancelled:
        return "cancelled"
    if error or "failed" in states or not states <= {"succeeded", "timeout"}:
        return "failed"
    if "timeout" in states:
        return "timeout"
    return "succeeded"


@dataclass(frozen=True)
class JobResult:
    job: JobRow
    tasks: list[TaskRow]

    @classmethod
    def load(cls, store: Store, job_id: str) -> "JobResult":
        job = store.job(job_id)
        assert job is not None, job_id
        return cls(job, store.tasks(job_id))

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
                }
                for t in self.tasks
            ],
        }
