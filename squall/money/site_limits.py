"""A site's own limits (a Slurm association's GrpTRES, a cloud project's Nova limits), beside Squall's quotas.

On a scheduler Squall compares one task with them: a task larger than a limit could never start (Slurm
would keep it pending for ever), so the job is refused before anything is created; a limit that is merely
used up now does not refuse a job that would run in turns, but caps how many of its tasks run at once in
the estimate. A cloud job stack creates all its machines at once, so there the whole job must fit in what
is available now (``check_job_fits_now``).
``squall quota show --site`` shows them, and a quota's available is the smaller of its own and the site's.
"""

from __future__ import annotations

from dataclasses import dataclass

from squall.errors import Refused
from squall.spec import Resources


@dataclass(frozen=True)
class SiteLimit:
    resource: str
    limit: int
    used: int
    source: str  # "Slurm association account=physics GrpTRES cpu"

    @property
    def available(self) -> int:
        return max(0, self.limit - self.used)

    def to_dict(self) -> dict:
        return {"resource": self.resource, "limit": self.limit, "used": self.used, "available": self.available,
                "source": self.source}


def task_demand(res: Resources) -> dict[str, int]:
    """What one task (one array element, on all its nodes) counts against the limits."""
    return {"cpus": res.cpus_per_node * res.nodes, "memory_mb": ((res.memory_bytes or 0) >> 20) * res.nodes,
            "gpus": res.gpus * res.nodes, "machines": res.nodes, "jobs": 1}


def check_task_fits(site: str, limits: list[SiteLimit], demand: dict[str, int]) -> None:
    """Refuse a job whose single task is larger than a limit: the site would never start it."""
    for limit in limits:
        if demand.get(limit.resource, 0) > limit.limit:
            raise Refused(f"quota: site {site!r}: one task needs {demand[limit.resource]} {limit.resource}, "
                          f"above the limit of {limit.limit} ({limit.source}); it could never start",
                          hint="ask for less per task, or ask the centre to raise the limit")


def concurrency(limits: list[SiteLimit], demand: dict[str, int]) -> int | None:
    """How many tasks can run at once under what is available now, at least one (a task that fits the limit
    starts when others free it; None: no limit applies)."""
    counts = [limit.available // demand[limit.resource] for limit in limits if demand.get(limit.resource)]
    return max(1, min(counts)) if counts else None


def check_job_fits_now(site: str, limits: list[SiteLimit], demand: dict[str, int]) -> None:
    """Refuse a job whose machines, all made at once, need more than the site has available now."""
    for limit in limits:
        if demand.get(limit.resource, 0) > limit.available:
            raise Refused(f"quota: site {site!r}: the job's machines need {demand[limit.resource]} "
                          f"{limit.resource}, {limit.available} available of {limit.limit} ({limit.source}); "
                          "creating them would fail",
                          hint="run fewer or smaller tasks at once, wait for other machines to go, or ask for a "
                               "larger project quota")
