"""A job's report as ``job run`` and ``job status`` show it (and the server answers it): its data, the exit
code its status means, and whether its payload was cut off the network, in words."""

from __future__ import annotations

from dataclasses import dataclass

from squall.errors import ExitCode
from squall.jobs import ORPHANED, JobResult, shown_status
from squall.store import Store


@dataclass(frozen=True)
class JobReport:
    data: dict  # what ``--output json`` prints
    exit_code: int
    isolation: str


def job_report(store: Store, job_id: str, journal: bool = False) -> JobReport:
    result = JobResult.load(store, job_id)
    data = result.to_dict()
    data["status"] = shown_status(result.job, store.locks)
    if data["status"] == ORPHANED:
        data["hint"] = f"no controller drives this job: 'squall job attach {data['id']}' resumes it"
    if journal:
        data["journal"] = [{"ts": e.ts, "phase": e.phase, "event": e.event, "detail": e.detail}
                           for e in store.journal(job_id)]
    return JobReport(data, _exit_code(data["status"], result.site_exit_code),
                     isolation_text(result.job.spec, data["network_isolated"]))


def _exit_code(status: str, site_exit_code: int | None) -> int:
    if status in ("pending", "running", "succeeded", ORPHANED):
        return int(ExitCode.OK)
    if status == "incomplete":  # outputs wait at the site for 'job attach' (unreachable now: exit 5)
        return site_exit_code or int(ExitCode.OUTPUTS_KEPT)
    return site_exit_code or int(ExitCode.JOB_FAILED)


def isolation_text(spec: dict, isolated: bool | None) -> str:
    """Whether the payload was cut off the network, and why not where it was not."""
    if isolated is None:
        return "unknown"
    if isolated:
        return "yes"
    resources = spec.get("resources") or {}
    if spec.get("mpi") or resources.get("nodes", 1) > 1 or resources.get("tasks_per_node", 1) > 1:
        return "no (the task's processes talk over the network)"
    return "no (not permitted here)"
