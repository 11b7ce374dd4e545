"""A task's stdout or stderr from an offset: live from its site while the job runs, from the results once it
has been collected. Shared by ``squall job logs`` and the server's logs route."""

from __future__ import annotations

from pathlib import Path

from squall.job_types import JobPlan

from squall.sites.contract import Site
from squall.store import Store
from squall.job_types import FINAL


def log_chunk(store: Store, site: Site, plan: JobPlan, index: int, stream: str, offset: int) -> tuple[bytes, bool]:
    """What task ``index`` wrote to ``stream`` from ``offset``, and whether nothing more will come."""
    job = store.job(plan.job_id)
    chunk = None if job.phase in ("collect", "down", "done") else site.read_log(plan, index, stream, offset)
    if chunk is None:  # the job folder is gone: the collected copy is complete once the job is done
        collected = Path(job.results_dir) / "meta" / f"task-{index}" / f"{stream}.log"
        if job.phase != "done":
            return b"", False
        if not collected.exists():
            return b"", True
        with open(collected, "rb") as handle:
            handle.seek(offset)
            return handle.read(), True
    task = store.tasks(plan.job_id)[index]
    return chunk, task.status in FINAL and not chunk
