"""What the runtime's own files say of a task, shared by every executor that reads them: a task's state from
its ``status.json``, and what ends a job whose folder is gone from a host."""

from __future__ import annotations

from squall.job_types import JobPlan, TaskState
from squall.sites.transports.contract import Transport


def vanished(host: Transport, plan: JobPlan, site: str) -> str:
    """What ends a job whose folder is gone from a host."""
    return (f"the job folder {host.job_dir(plan.job_id)} vanished at site {site!r} (host {host.name}; "
            "removed by someone else, e.g. another store's gc); its outputs are lost")


def status_state(index: int, status: dict) -> TaskState:
    """A task's state as the runtime's ``status.json`` says it."""
    return TaskState(index, status["state"], status.get("exit_code"), status.get("wall_time"),
                     status.get("max_rss_kb"), status.get("network_isolated"), status.get("error"))
